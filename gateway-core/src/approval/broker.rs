//! The durable approval broker.
//!
//! State machine: `pending → approved | denied | expired`, then `approved → executing → executed`. Every
//! transition is a compare-and-swap on the `state` column (`UPDATE … WHERE state = 'pending'`), so concurrent
//! clicks, concurrent waiters and several replicas agree on one outcome and an approval executes at most once.
//! Votes have the primary key (approval, voter), so one person counts once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::policy::ApprovalRequirement;
use crate::store::{Store, now_ms};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Expired,
    /// Claimed by one executor; the call is running.
    Executing,
    /// The call ran; `outcome_json` holds its (masked) outcome.
    Executed,
}

impl ApprovalState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Expired => "expired",
            ApprovalState::Executing => "executing",
            ApprovalState::Executed => "executed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => ApprovalState::Pending,
            "approved" => ApprovalState::Approved,
            "denied" => ApprovalState::Denied,
            "expired" => ApprovalState::Expired,
            "executing" => ApprovalState::Executing,
            "executed" => ApprovalState::Executed,
            other => return Err(Error::Record(format!("unknown approval state {other:?} in store"))),
        })
    }

    /// No further decision can change it.
    pub fn is_decided(self) -> bool {
        self != ApprovalState::Pending
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteDecision {
    Approve,
    Deny,
}

/// Where a vote came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteSource {
    Slack,
    Discord,
    Web,
    Cli,
}

impl VoteSource {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VoteSource::Slack => "slack",
            VoteSource::Discord => "discord",
            VoteSource::Web => "web",
            VoteSource::Cli => "cli",
        }
    }
}

/// One vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub voter: String,
    pub decision: VoteDecision,
    pub reason: Option<String>,
    pub source: String,
    pub ts_ms: i64,
}

/// Why a vote changed nothing. Each has a polite explanation for the clicker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "refusal")]
pub enum VoteRefusal {
    UnknownApproval,
    UnknownUser,
    SelfApproval,
    NotAnApprover { approvers: Vec<String> },
    AlreadyVoted,
    AlreadyDecided { state: ApprovalState },
    Expired,
    ReasonRequired,
}

impl VoteRefusal {
    /// A sentence for the person who clicked.
    pub fn explain(&self) -> String {
        match self {
            VoteRefusal::UnknownApproval => "This approval request does not exist (or is not visible to you).".into(),
            VoteRefusal::UnknownUser => {
                "Your chat account is not mapped to an Airlock identity, so you cannot approve. Ask an admin to add you to `humans` in airlock.toml.".into()
            }
            VoteRefusal::SelfApproval => "You requested this call, so you cannot approve it yourself.".into(),
            VoteRefusal::NotAnApprover { approvers } => {
                format!("Only members of {} may decide this request.", approvers.join(", "))
            }
            VoteRefusal::AlreadyVoted => "You have already voted on this request; your vote counts once.".into(),
            VoteRefusal::AlreadyDecided { state } => format!("This request was already decided: {}.", state.as_str()),
            VoteRefusal::Expired => "This request has expired; nothing was executed.".into(),
            VoteRefusal::ReasonRequired => "Please give a reason when you deny a request.".into(),
        }
    }
}

/// The result of a vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum VoteOutcome {
    /// Counted; `state` is the approval's state afterwards (still pending until quorum).
    Counted {
        state: ApprovalState,
        approvals: u32,
        quorum: u32,
    },
    Refused(VoteRefusal),
}

/// An approval as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub id: String,
    pub session_id: String,
    pub call_id: String,
    pub requester: Identity,
    pub connection: String,
    pub tool: String,
    /// Exact arguments, for execution only. Never shown.
    #[serde(skip_serializing)]
    pub arguments: serde_json::Value,
    /// Masked statement, for display.
    pub display: String,
    pub digest: String,
    pub rule: String,
    pub policy_version: String,
    pub requirement: ApprovalRequirement,
    pub channel: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub state: ApprovalState,
    pub decided_ms: Option<i64>,
    /// The executed call's masked outcome (JSON of the pipeline's outcome).
    pub outcome: Option<serde_json::Value>,
    pub notifier_ref: Option<String>,
    pub votes: Vec<Vote>,
}

/// What to persist for a new approval.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub session_id: String,
    pub call_id: String,
    pub requester: Identity,
    pub connection: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub display: String,
    pub rule: String,
    pub policy_version: String,
    pub requirement: ApprovalRequirement,
    pub channel: String,
}

/// The digest that binds an approval to exactly these arguments.
pub fn arguments_digest(tool: &str, connection: &str, arguments: &serde_json::Value) -> String {
    let canonical = crate::record::canonical_json(&serde_json::json!([tool, connection, arguments]));
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// Persists approvals and votes, and wakes waiters.
#[derive(Debug, Clone)]
pub struct ApprovalBroker {
    store: Store,
    wakers: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

/// Postgres NOTIFY channel for approval state changes across replicas.
const NOTIFY_CHANNEL: &str = "airlock_approvals";

const COLUMNS: &str = "id, session_id, call_id, requester_json, connection, tool, arguments_json, display, digest, \
                       rule, policy_version, requirement_json, channel, created_ms, expires_ms, state, decided_ms, \
                       outcome_json, notifier_ref";

fn json_err(e: serde_json::Error) -> Error {
    Error::Record(format!("approval JSON: {e}"))
}

// === impl ApprovalBroker ===

impl ApprovalBroker {
    /// A broker over `store`.
    pub fn new(store: Store) -> Self {
        Self { store, wakers: Arc::default() }
    }

    fn waker(&self, id: &str) -> Arc<Notify> {
        match self.wakers.lock() {
            Ok(mut m) => m.entry(id.to_owned()).or_default().clone(),
            Err(poisoned) => poisoned.into_inner().entry(id.to_owned()).or_default().clone(),
        }
    }

    /// Tell other replicas (Postgres store) that `id` changed. Best effort: waiters also re-read every second.
    async fn announce(&self, id: &str) {
        if self.store.backend() == crate::store::Backend::Postgres
            && let Err(e) =
                sqlx::query("SELECT pg_notify($1, $2)").bind(NOTIFY_CHANNEL).bind(id).execute(self.store.pool()).await
        {
            tracing::warn!(approval = id, error = %e, "pg_notify failed; other replicas will notice within a second");
        }
    }

    /// With a Postgres store, listen for approval changes made by other replicas and wake local waiters at
    /// once. Reconnects on failure; runs until the runtime stops.
    pub fn spawn_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.store.backend() != crate::store::Backend::Postgres {
            return None;
        }
        let broker = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(broker.store.url()).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN failed");
                        } else {
                            while let Ok(n) = listener.recv().await {
                                broker.wake(n.payload());
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "approval listener cannot connect; retrying"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    /// Wake everyone waiting on `id` in this process.
    pub fn wake(&self, id: &str) {
        self.waker(id).notify_waiters();
    }

    /// Persist a new pending approval.
    pub async fn create(&self, new: NewApproval) -> Result<ApprovalRecord> {
        let id = format!("apr_{}", uuid::Uuid::now_v7().simple());
        let created_ms = now_ms();
        let expires_ms = created_ms + new.requirement.timeout.as_millis() as i64;
        let digest = arguments_digest(&new.tool, &new.connection, &new.arguments);
        sqlx::query(
            "INSERT INTO approvals (id, session_id, call_id, requester, requester_json, connection, tool, \
             arguments_json, display, digest, rule, policy_version, requirement_json, channel, created_ms, \
             expires_ms, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'pending')",
        )
        .bind(&id)
        .bind(&new.session_id)
        .bind(&new.call_id)
        .bind(&new.requester.subject)
        .bind(serde_json::to_string(&new.requester).map_err(json_err)?)
        .bind(&new.connection)
        .bind(&new.tool)
        .bind(serde_json::to_string(&new.arguments).map_err(json_err)?)
        .bind(&new.display)
        .bind(&digest)
        .bind(&new.rule)
        .bind(&new.policy_version)
        .bind(serde_json::to_string(&new.requirement).map_err(json_err)?)
        .bind(&new.channel)
        .bind(created_ms)
        .bind(expires_ms)
        .execute(self.store.pool())
        .await?;
        self.get(&id).await?.ok_or_else(|| Error::Record("approval vanished after insert".into()))
    }

    /// Remember where the notifier posted the request.
    pub async fn set_notifier_ref(&self, id: &str, reference: &str) -> Result<()> {
        sqlx::query("UPDATE approvals SET notifier_ref = $1 WHERE id = $2")
            .bind(reference)
            .bind(id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Load one approval with its votes. A pending approval past its expiry reads as `expired` at once (fail
    /// closed: no vote counts any more); [`ApprovalBroker::expire_overdue`] makes that durable and lets the
    /// gateway record and announce it.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalRecord>> {
        let Some(mut rec) = self.load(id).await? else { return Ok(None) };
        if rec.state == ApprovalState::Pending && now_ms() >= rec.expires_ms {
            rec.state = ApprovalState::Expired;
        }
        Ok(Some(rec))
    }

    async fn load(&self, id: &str) -> Result<Option<ApprovalRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM approvals WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut rec = record_from_row(&row)?;
        rec.votes = self.votes(id).await?;
        Ok(Some(rec))
    }

    async fn votes(&self, id: &str) -> Result<Vec<Vote>> {
        let rows = sqlx::query(
            "SELECT voter, decision, reason, source, ts_ms FROM approval_votes WHERE approval_id = $1 ORDER BY ts_ms, voter",
        )
        .bind(id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let decision: String = r.try_get(1)?;
                Ok(Vote {
                    voter: r.try_get(0)?,
                    decision: if decision == "approve" { VoteDecision::Approve } else { VoteDecision::Deny },
                    reason: r.try_get(2)?,
                    source: r.try_get(3)?,
                    ts_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Compare-and-swap the state; true when this caller made the transition.
    pub async fn transition(&self, id: &str, from: ApprovalState, to: ApprovalState) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE approvals SET state = $1, decided_ms = COALESCE(decided_ms, $2) WHERE id = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(now_ms())
        .bind(id)
        .bind(from.as_str())
        .execute(self.store.pool())
        .await?;
        let changed = done.rows_affected() == 1;
        if changed {
            self.wake(id);
            self.announce(id).await;
        }
        Ok(changed)
    }

    /// Cast a vote by a human identity. Applies every rule; never changes a decided approval.
    pub async fn vote(
        &self,
        id: &str,
        voter: &Identity,
        decision: VoteDecision,
        reason: Option<&str>,
        source: VoteSource,
    ) -> Result<VoteOutcome> {
        use VoteRefusal::*;
        let Some(rec) = self.get(id).await? else { return Ok(VoteOutcome::Refused(UnknownApproval)) };
        match rec.state {
            ApprovalState::Pending => {}
            ApprovalState::Expired => return Ok(VoteOutcome::Refused(Expired)),
            state => return Ok(VoteOutcome::Refused(AlreadyDecided { state })),
        }
        // The requester can never approve their own call, whatever their groups.
        if voter.subject == rec.requester.subject {
            return Ok(VoteOutcome::Refused(SelfApproval));
        }
        if !voter.groups.iter().any(|g| rec.requirement.approvers.contains(g)) {
            return Ok(VoteOutcome::Refused(NotAnApprover { approvers: rec.requirement.approvers.clone() }));
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if decision == VoteDecision::Deny && reason.is_none() {
            return Ok(VoteOutcome::Refused(ReasonRequired));
        }
        let inserted = sqlx::query(
            "INSERT INTO approval_votes (approval_id, voter, decision, reason, source, ts_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&voter.subject)
        .bind(match decision {
            VoteDecision::Approve => "approve",
            VoteDecision::Deny => "deny",
        })
        .bind(reason)
        .bind(source.as_str())
        .bind(now_ms())
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(VoteOutcome::Refused(AlreadyVoted));
            }
            Err(e) => return Err(e.into()),
        }
        let votes = self.votes(id).await?;
        let approvals = votes.iter().filter(|v| v.decision == VoteDecision::Approve).count() as u32;
        let quorum = rec.requirement.quorum;
        let target = match decision {
            VoteDecision::Deny => Some(ApprovalState::Denied),
            VoteDecision::Approve if approvals >= quorum => Some(ApprovalState::Approved),
            VoteDecision::Approve => None,
        };
        if let Some(to) = target {
            self.transition(id, ApprovalState::Pending, to).await?;
        }
        let state = self.load(id).await?.map(|r| r.state).unwrap_or(ApprovalState::Pending);
        Ok(VoteOutcome::Counted { state, approvals, quorum })
    }

    /// Deny a pending approval on an admin's authority (freezing its requester), bypassing the approver
    /// rules: records a deny vote by `by` with `reason`, then moves it to `denied`. False when it was no longer
    /// pending.
    pub async fn force_deny(&self, id: &str, by: &str, reason: &str, source: VoteSource) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO approval_votes (approval_id, voter, decision, reason, source, ts_ms) VALUES ($1, $2, 'deny', $3, $4, $5)",
        )
        .bind(id)
        .bind(by)
        .bind(reason)
        .bind(source.as_str())
        .bind(now_ms())
        .execute(self.store.pool())
        .await;
        match inserted {
            // The admin had already voted on it: the denial still stands, without a second vote.
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
            Err(e) => return Err(e.into()),
        }
        self.transition(id, ApprovalState::Pending, ApprovalState::Denied).await
    }

    /// Claim the right to execute an approved call. Exactly one caller ever gets `true`.
    pub async fn claim_execution(&self, id: &str) -> Result<bool> {
        self.transition(id, ApprovalState::Approved, ApprovalState::Executing).await
    }

    /// Store the executed call's masked outcome and mark it executed.
    pub async fn finish_execution(&self, id: &str, outcome: &serde_json::Value) -> Result<()> {
        sqlx::query("UPDATE approvals SET state = 'executed', outcome_json = $1 WHERE id = $2 AND state = 'executing'")
            .bind(serde_json::to_string(outcome).map_err(json_err)?)
            .bind(id)
            .execute(self.store.pool())
            .await?;
        self.wake(id);
        self.announce(id).await;
        Ok(())
    }

    /// Wait until the approval leaves `pending`/`approved`/`executing` or `timeout` passes; returns the record
    /// as it then stands. Wakes on in-process notification, and re-reads the store at least every second so a
    /// decision taken by another replica is seen promptly.
    pub async fn wait_settled(
        &self,
        id: &str,
        timeout: Duration,
        mut tick: impl FnMut(Duration),
    ) -> Result<Option<ApprovalRecord>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let waker = self.waker(id);
        loop {
            let notified = waker.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some(rec) = self.get(id).await? else { return Ok(None) };
            let settled = matches!(rec.state, ApprovalState::Denied | ApprovalState::Expired | ApprovalState::Executed);
            let now = tokio::time::Instant::now();
            if settled || now >= deadline {
                return Ok(Some(rec));
            }
            let remaining = deadline - now;
            tick(remaining);
            let step = remaining
                .min(Duration::from_secs(1))
                .min(Duration::from_millis((rec.expires_ms - now_ms()).max(1) as u64));
            let _ = tokio::time::timeout(step, notified).await;
        }
    }

    /// Expire every pending approval past its expiry; returns their ids.
    pub async fn expire_overdue(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM approvals WHERE state = 'pending' AND expires_ms <= $1")
            .bind(now_ms())
            .fetch_all(self.store.pool())
            .await?;
        let mut expired = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            if self.transition(&id, ApprovalState::Pending, ApprovalState::Expired).await? {
                expired.push(id);
            }
        }
        Ok(expired)
    }

    /// Approved calls that nobody has claimed (e.g. the replica that took the vote died before executing).
    pub async fn approved_unclaimed(&self) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT id FROM approvals WHERE state = 'approved'").fetch_all(self.store.pool()).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Pending approvals, oldest first, optionally only those of one channel.
    pub async fn pending(&self, channel: Option<&str>) -> Result<Vec<ApprovalRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE state = 'pending' AND expires_ms > $1 ORDER BY created_ms"
        )))
        .bind(now_ms())
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let mut rec = record_from_row(row)?;
            if channel.is_some_and(|c| c != rec.channel) {
                continue;
            }
            rec.votes = self.votes(&rec.id).await?;
            out.push(rec);
        }
        Ok(out)
    }
}

fn record_from_row(row: &sqlx::any::AnyRow) -> Result<ApprovalRecord> {
    let requester: String = row.try_get(3)?;
    let arguments: String = row.try_get(6)?;
    let requirement: String = row.try_get(11)?;
    let state: String = row.try_get(15)?;
    let outcome: Option<String> = row.try_get(17)?;
    Ok(ApprovalRecord {
        id: row.try_get(0)?,
        session_id: row.try_get(1)?,
        call_id: row.try_get(2)?,
        requester: serde_json::from_str(&requester).map_err(json_err)?,
        connection: row.try_get(4)?,
        tool: row.try_get(5)?,
        arguments: serde_json::from_str(&arguments).map_err(json_err)?,
        display: row.try_get(7)?,
        digest: row.try_get(8)?,
        rule: row.try_get(9)?,
        policy_version: row.try_get(10)?,
        requirement: serde_json::from_str(&requirement).map_err(json_err)?,
        channel: row.try_get::<Option<String>, _>(12)?.unwrap_or_default(),
        created_ms: row.try_get(13)?,
        expires_ms: row.try_get(14)?,
        state: ApprovalState::parse(&state)?,
        decided_ms: row.try_get(16)?,
        outcome: outcome.map(|o| serde_json::from_str(&o)).transpose().map_err(json_err)?,
        notifier_ref: row.try_get(18)?,
        votes: Vec::new(),
    })
}
