//! Step 4 of the pipeline, and what follows a human's decision: holding a call for approval, waiting in-call
//! with progress, `await_approval`, votes, running approved calls exactly once, and the sweep that expires
//! requests and picks up approved calls after a restart.

use std::sync::Arc;

use serde_json::json;

use super::{CallStatus, Caller, Gateway, Progress, ToolOutcome, ToolRequest, classify_and_decide};
use crate::approval::broker::{NewApproval, arguments_digest};
use crate::approval::{
    ApprovalBroker, ApprovalNotice, ApprovalRecord, ApprovalState, ApprovalUpdate, VoteDecision, VoteOutcome,
    VoteSource,
};
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityKind};
use crate::mask::{MaskCounts, Masker};
use crate::policy::{ApprovalRequirement, Decision, Verdict};
use crate::record::EventKind;

#[derive(Debug, Clone, Copy)]
enum NotifyKind {
    Decided,
    Finished,
}

// === impl Gateway (held calls) ===

impl Gateway {
    /// Step 4: persist the approval, ask the humans, and wait in-call (with progress) up to `in_call_wait`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn hold(
        &self,
        caller: &Caller,
        call_id: &str,
        request: &ToolRequest,
        statement: &str,
        decision: &Decision,
        requirement: ApprovalRequirement,
        mut out: ToolOutcome,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ToolOutcome> {
        let Some(notifier) = &self.notifier else {
            // Nobody can approve: fail closed.
            out.status = CallStatus::Error;
            out.message = Some(format!(
                "policy rule {:?} requires approval ({}; approvers: {}), but no approval channel is configured, \
                 so nothing was executed",
                decision.rule,
                requirement.reason.trim_end_matches('.'),
                requirement.approvers.join(", ")
            ));
            self.record_result(&mut out, None).await?;
            return Ok(out);
        };
        let channel = requirement.channel.clone().unwrap_or_else(|| self.config.approval.default_channel.clone());
        let arguments = serde_json::to_value(request).map_err(|e| Error::Record(e.to_string()))?;
        let rec = self
            .broker
            .create(NewApproval {
                session_id: caller.session_id.clone(),
                call_id: call_id.to_owned(),
                requester: caller.identity.clone(),
                connection: request.connection().to_owned(),
                tool: request.tool().as_str().to_owned(),
                arguments,
                display: statement.to_owned(),
                rule: decision.rule.clone(),
                policy_version: decision.policy_version.clone(),
                requirement: requirement.clone(),
                channel,
            })
            .await?;
        self.recorder
            .append(
                &caller.session_id,
                Some(call_id),
                EventKind::ApprovalRequested,
                &json!({
                    "approval_id": rec.id, "approvers": requirement.approvers, "quorum": requirement.quorum,
                    "expires_ms": rec.expires_ms, "digest": rec.digest, "rule": rec.rule, "channel": rec.channel,
                }),
            )
            .await?;
        let notice = self.notice(&rec);
        match notifier.request_approval(&notice).await {
            Ok(Some(reference)) => self.broker.set_notifier_ref(&rec.id, &reference).await?,
            Ok(None) => {}
            Err(e) => {
                // The request could not reach any human: fail closed and say why.
                self.broker.transition(&rec.id, ApprovalState::Pending, ApprovalState::Expired).await?;
                out.status = CallStatus::Error;
                out.message = Some(format!(
                    "policy rule {:?} requires approval, but the approval request could not be posted ({e}); \
                     nothing was executed",
                    decision.rule
                ));
                self.record_result(&mut out, None).await?;
                return Ok(out);
            }
        }
        let waited = self.wait_for_approval(&rec.id, self.config.approval.in_call_wait.0, progress).await?;
        Ok(self.approval_outcome(waited.as_ref().unwrap_or(&rec)))
    }

    async fn wait_for_approval(
        &self,
        id: &str,
        wait: std::time::Duration,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Option<ApprovalRecord>> {
        let total = wait.as_secs_f64();
        self.broker
            .wait_settled(id, wait, |remaining| {
                progress(Progress {
                    progress: total - remaining.as_secs_f64(),
                    total: Some(total),
                    message: format!("waiting for human approval ({:.0} s left in this call)", remaining.as_secs_f64()),
                })
            })
            .await
    }

    /// What the agent sees for an approval in its current state.
    fn approval_outcome(&self, rec: &ApprovalRecord) -> ToolOutcome {
        let mut out = self.empty_outcome(&rec.session_id, &rec.call_id);
        out.rule = Some(rec.rule.clone());
        out.approval_id = Some(rec.id.clone());
        out.expires_at_ms = Some(rec.expires_ms);
        match rec.state {
            ApprovalState::Executed => {
                if let Some(stored) =
                    rec.outcome.as_ref().and_then(|o| serde_json::from_value::<ToolOutcome>(o.clone()).ok())
                {
                    out = stored;
                    out.approval_id = Some(rec.id.clone());
                } else {
                    out.message = Some("the approved call ran, but its outcome could not be read".into());
                }
                out.approved_by =
                    rec.votes.iter().filter(|v| v.decision == VoteDecision::Approve).map(|v| v.voter.clone()).collect();
            }
            ApprovalState::Denied => {
                let deny = rec.votes.iter().find(|v| v.decision == VoteDecision::Deny);
                out.status = CallStatus::Denied;
                out.message = Some(match deny {
                    Some(v) => format!(
                        "denied by {}: {}; nothing was executed. Do not send the same call again.",
                        v.voter,
                        v.reason.as_deref().unwrap_or("no reason given")
                    ),
                    None => "denied; nothing was executed".into(),
                });
            }
            ApprovalState::Expired => {
                out.status = CallStatus::Expired;
                out.message = Some(format!(
                    "the approval request expired without a decision (approvers: {}); nothing was executed",
                    rec.requirement.approvers.join(", ")
                ));
            }
            ApprovalState::Approved | ApprovalState::Executing => {
                // Approved: the call runs (or is about to) exactly once. The agent must wait for it, and must
                // not be told that nothing ran: it might send the call again.
                let approvers: Vec<&str> = rec
                    .votes
                    .iter()
                    .filter(|v| v.decision == VoteDecision::Approve)
                    .map(|v| v.voter.as_str())
                    .collect();
                out.status = CallStatus::PendingApproval;
                out.approved_by = approvers.iter().map(|v| (*v).to_owned()).collect();
                out.message = Some(format!(
                    "approved by {}; the call is running now. Call await_approval with approval_id {:?} again for \
                     its result; do not send the call again.",
                    approvers.join(", "),
                    rec.id
                ));
            }
            ApprovalState::Pending => {
                let approvals = rec.votes.iter().filter(|v| v.decision == VoteDecision::Approve).count();
                out.status = CallStatus::PendingApproval;
                out.message = Some(format!(
                    "held for human approval by policy rule {:?} ({}); {} of {} approval(s) from {} so far. \
                     Call await_approval with approval_id {:?} to wait for the result; nothing has run yet.",
                    rec.rule,
                    rec.requirement.reason.trim_end_matches('.'),
                    approvals,
                    rec.requirement.quorum,
                    rec.requirement.approvers.join(", "),
                    rec.id
                ));
            }
        }
        out
    }

    /// `await_approval`: wait (capped) for a held call of the caller's and return its outcome.
    pub async fn await_approval(
        &self,
        caller: &Caller,
        approval_id: &str,
        wait: Option<std::time::Duration>,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> ToolOutcome {
        let unknown = |msg: String| {
            let mut o = self.empty_outcome(&caller.session_id, "");
            o.message = Some(msg);
            o
        };
        let rec = match self.broker.get(approval_id).await {
            Ok(Some(r)) => r,
            Ok(None) => return unknown(format!("unknown approval {approval_id:?}")),
            Err(e) => return unknown(format!("{e}; try again")),
        };
        // Only the requester (or an admin) may see an approval; others learn nothing, not even that it exists.
        if rec.requester.subject != caller.identity.subject && !caller.identity.groups.iter().any(|g| g == "admin") {
            return unknown(format!("unknown approval {approval_id:?}"));
        }
        let cap = self.config.approval.max_await.0;
        let wait = wait.unwrap_or(cap).min(cap);
        match self.wait_for_approval(approval_id, wait, progress).await {
            Ok(Some(r)) => self.approval_outcome(&r),
            Ok(None) => unknown(format!("unknown approval {approval_id:?}")),
            Err(e) => unknown(format!("{e}; try again")),
        }
    }

    /// A human's vote (from Slack, Discord, the web or the CLI). Records it, tells the notifier when it decided
    /// the approval, and starts the approved call.
    pub async fn vote(
        self: &Arc<Self>,
        approval_id: &str,
        voter: &Identity,
        decision: VoteDecision,
        reason: Option<&str>,
        source: VoteSource,
    ) -> Result<VoteOutcome> {
        let before = self.broker.get(approval_id).await?;
        let outcome = self.broker.vote(approval_id, voter, decision, reason, source).await?;
        let Some(rec) = before else { return Ok(outcome) };
        self.recorder
            .append(
                &rec.session_id,
                Some(&rec.call_id),
                EventKind::ApprovalVote,
                &json!({
                    "approval_id": approval_id, "voter": voter.subject, "decision": decision,
                    "reason": reason, "source": source.as_str(), "outcome": outcome,
                }),
            )
            .await?;
        if let VoteOutcome::Counted { state, .. } = &outcome
            && matches!(state, ApprovalState::Approved | ApprovalState::Denied)
        {
            self.after_decision(approval_id).await?;
        }
        Ok(outcome)
    }

    /// Record and announce a decision; start the call when approved.
    pub(crate) async fn after_decision(self: &Arc<Self>, approval_id: &str) -> Result<()> {
        let Some(rec) = self.broker.get(approval_id).await? else { return Ok(()) };
        let deciders: Vec<String> = rec.votes.iter().map(|v| v.voter.clone()).collect();
        let reason = rec.votes.iter().find(|v| v.decision == VoteDecision::Deny).and_then(|v| v.reason.clone());
        self.recorder
            .append(
                &rec.session_id,
                Some(&rec.call_id),
                EventKind::ApprovalDecided,
                &json!({ "approval_id": rec.id, "state": rec.state, "by": deciders, "reason": reason }),
            )
            .await?;
        if matches!(rec.state, ApprovalState::Denied | ApprovalState::Expired) {
            // The call's story ends here: record its result.
            let mut out = self.approval_outcome(&rec);
            self.record_result(&mut out, None).await?;
        }
        self.notify(&rec, NotifyKind::Decided, deciders, reason, None);
        if rec.state == ApprovalState::Approved {
            let me = self.clone();
            let id = rec.id.clone();
            tokio::spawn(async move {
                if let Err(e) = me.execute_approved(&id).await {
                    tracing::error!(approval = %id, error = %e, "approved call failed");
                }
            });
        }
        Ok(())
    }

    /// Run an approved call exactly once: claim it, re-check policy, execute, mask, record, store the outcome.
    pub async fn execute_approved(self: &Arc<Self>, approval_id: &str) -> Result<()> {
        if !self.broker.claim_execution(approval_id).await? {
            return Ok(()); // someone else has it (another click, waiter or replica)
        }
        let Some(rec) = self.broker.get(approval_id).await? else { return Ok(()) };
        let started = std::time::Instant::now();
        let mut out = self.empty_outcome(&rec.session_id, &rec.call_id);
        out.rule = Some(rec.rule.clone());
        out.approval_id = Some(rec.id.clone());
        let request: Option<ToolRequest> = serde_json::from_value(rec.arguments.clone()).ok();
        let intact = arguments_digest(&rec.tool, &rec.connection, &rec.arguments) == rec.digest;
        let conn = self.config.connections.get(&rec.connection);
        let frozen = self.admin.frozen_for(&rec.requester);
        let out = match (request, conn, intact, frozen) {
            // Approved before its requester was frozen, not yet run: containment wins over the approval.
            (Some(_), Some(_), true, Some(f)) => {
                out.status = CallStatus::Blocked;
                out.rule = Some(crate::admin::FROZEN_RULE.to_owned());
                out.message = Some(format!(
                    "approved, but identity {} is frozen by {}: {}; nothing was executed",
                    f.subject, f.actor, f.reason
                ));
                self.record_result(&mut out, None).await?;
                out
            }
            (Some(request), Some(conn), true, None) => {
                // The approval authorises this exact call under today's policy: if policy now blocks it, it does
                // not run.
                let (classification, decision) =
                    classify_and_decide(&self.policies(), &self.config, conn, &rec.requester, &request);
                let masker = Masker::new(&decision.mask, &self.hash_key, self.scrubber.clone())
                    .map_err(|e| Error::Mask(e.to_string()))?;
                if let Verdict::Block { message } = &decision.verdict {
                    out.status = CallStatus::Blocked;
                    out.rule = Some(decision.rule.clone());
                    out.message =
                        Some(format!("approved, but policy rule {:?} now blocks it: {message}", decision.rule));
                    self.record_result(&mut out, None).await?;
                    out
                } else {
                    self.execute_and_record(out, &classification, &request, &masker, MaskCounts::default(), &|_| {})
                        .await?
                }
            }
            _ => {
                out.message = Some("the approved call could not be reconstructed exactly; nothing was executed".into());
                self.record_result(&mut out, None).await?;
                out
            }
        };
        self.metrics().call_finished(
            &rec.tool,
            out.status.as_str(),
            out.rule.as_deref(),
            started.elapsed(),
            &out.masked,
        );
        let stored = serde_json::to_value(&out).map_err(|e| Error::Record(e.to_string()))?;
        self.broker.finish_execution(approval_id, &stored).await?;
        let summary = match (&out.status, &out.sql, &out.exec) {
            (CallStatus::Completed, Some(sql), _) if sql.rows_affected > 0 || sql.row_count == 0 => {
                format!("completed: {} row(s) affected", sql.rows_affected)
            }
            (CallStatus::Completed, Some(sql), _) => format!("completed: {} row(s) returned", sql.row_count),
            (status, _, Some(exec)) => format!("{}: {}", status.as_str(), exec.status_line()),
            (status, _, _) => format!("{}: {}", status.as_str(), out.message.as_deref().unwrap_or("")),
        };
        let deciders = rec.votes.iter().map(|v| v.voter.clone()).collect();
        self.notify(&rec, NotifyKind::Finished, deciders, None, Some(summary));
        Ok(())
    }

    /// One sweep of background duties: expire overdue approvals, and run approved calls nobody claimed
    /// (e.g. after a restart). `airlock serve` runs it every second.
    pub async fn sweep(self: &Arc<Self>) -> Result<()> {
        // Admin changes made on another replica (policy overlay, frozen list), when NOTIFY missed them.
        self.admin.refresh().await?;
        for id in self.broker.expire_overdue().await? {
            self.after_decision(&id).await?;
        }
        for id in self.broker.approved_unclaimed().await? {
            self.execute_approved(&id).await?;
        }
        Ok(())
    }

    /// The approval broker.
    pub fn broker(&self) -> &ApprovalBroker {
        &self.broker
    }

    /// The human identity of a chat user, if mapped in `humans`.
    pub fn human_by_chat(&self, platform: VoteSource, user_id: &str) -> Option<Identity> {
        self.config
            .humans
            .iter()
            .find(|h| match platform {
                VoteSource::Slack => h.slack_user.as_deref() == Some(user_id),
                VoteSource::Discord => h.discord_user.as_deref() == Some(user_id),
                VoteSource::Web | VoteSource::Cli => h.subject == user_id,
            })
            .map(|h| Identity {
                subject: h.subject.clone(),
                groups: h.groups.clone(),
                kind: IdentityKind::Human,
                token_id: None,
                on_behalf_of: None,
            })
    }

    /// The notice humans see for an approval.
    pub fn notice(&self, rec: &ApprovalRecord) -> ApprovalNotice {
        let base = self.config.server.public_url.trim_end_matches('/');
        ApprovalNotice {
            approval_id: rec.id.clone(),
            session_id: rec.session_id.clone(),
            call_id: rec.call_id.clone(),
            requester: rec.requester.subject.clone(),
            on_behalf_of: rec.requester.on_behalf_of.clone(),
            connection: rec.connection.clone(),
            tool: rec.tool.clone(),
            statement: rec.display.clone(),
            rule: rec.rule.clone(),
            requirement: rec.requirement.clone(),
            channel: rec.channel.clone(),
            created_at_ms: rec.created_ms,
            expires_at_ms: rec.expires_ms,
            replay_url: format!("{}#call-{}", self.replay_url_for_channel(&rec.session_id, &rec.channel), rec.call_id),
            review_url: format!("{base}/approvals/{}", rec.id),
        }
    }

    fn notify(
        &self,
        rec: &ApprovalRecord,
        kind: NotifyKind,
        decided_by: Vec<String>,
        reason: Option<String>,
        outcome: Option<String>,
    ) {
        if matches!(kind, NotifyKind::Decided) {
            let waited = crate::store::now_ms().saturating_sub(rec.created_ms).max(0).unsigned_abs();
            self.metrics().approval_decided(rec.state.as_str(), std::time::Duration::from_millis(waited));
        }
        let Some(notifier) = self.notifier.clone() else { return };
        let update = ApprovalUpdate {
            notice: self.notice(rec),
            state: rec.state,
            decided_by,
            reason,
            at_ms: crate::store::now_ms(),
            outcome,
            notifier_ref: rec.notifier_ref.clone(),
        };
        // Posting back is best effort and must not hold up the call.
        tokio::spawn(async move {
            let r = match kind {
                NotifyKind::Decided => notifier.approval_decided(&update).await,
                NotifyKind::Finished => notifier.call_finished(&update).await,
            };
            if let Err(e) = r {
                tracing::warn!(approval = %update.notice.approval_id, error = %e, "could not post approval update");
            }
        });
    }
}
