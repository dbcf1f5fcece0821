//! Admin changes at run time (the `/airlock` slash commands): policy overlay versions and frozen identities.
//!
//! Both live in the store, so every replica sees the same thing: the replica that makes a change applies it at
//! once; the others hear about it through Postgres `LISTEN/NOTIFY` and, as a fallback (and on SQLite), from
//! the 1 s sweep, which compares the latest policy version number and re-reads the (tiny) frozen list.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::approval::VoteSource;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::pipeline::Gateway;
use crate::policy::PolicySet;
use crate::policy::overlay::{self, Overlay, RuleOverride};
use crate::record::{AUDIT_SESSION, EventKind};
use crate::store::{Backend, Store, now_ms};

/// The rule reported for calls refused because their identity is frozen.
pub const FROZEN_RULE: &str = "identity-frozen";

/// Postgres NOTIFY channel for admin changes (payload: `policy` or `frozen`).
const NOTIFY_CHANNEL: &str = "airlock_admin";

/// One stored policy version.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyVersion {
    pub version: i64,
    pub actor: String,
    pub created_at_ms: i64,
    /// The command that made it (`policy set allow-reads block`).
    pub command: String,
    /// The whole overlay as of this version.
    pub overlay: Overlay,
    /// What changed from the previous version, one line per rule.
    pub diff: String,
}

/// A frozen identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrozenIdentity {
    pub subject: String,
    pub reason: String,
    pub actor: String,
    pub at_ms: i64,
}

/// The gateway's view of the admin layer: the base policy files, the overlay version applied, the frozen list.
/// Shared with the NOTIFY listener, so it holds its own handles.
#[derive(Debug, Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    base: Vec<(PathBuf, String)>,
    policies: Arc<RwLock<Arc<PolicySet>>>,
    applied: AtomicI64,
    overlay: RwLock<Overlay>,
    frozen: RwLock<BTreeMap<String, FrozenIdentity>>,
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Record(format!("admin JSON: {e}"))
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(g) => g.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut g) => *g = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

// === store ===

async fn latest_version(store: &Store) -> Result<i64> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM policy_versions").fetch_one(store.pool()).await?;
    Ok(row.try_get::<i64, _>(0)?)
}

fn version_from_row(row: &sqlx::any::AnyRow) -> Result<PolicyVersion> {
    let overlay: String = row.try_get(4)?;
    Ok(PolicyVersion {
        version: row.try_get(0)?,
        actor: row.try_get(1)?,
        created_at_ms: row.try_get(2)?,
        command: row.try_get(3)?,
        overlay: serde_json::from_str(&overlay).map_err(json_err)?,
        diff: row.try_get(5)?,
    })
}

const VERSION_COLUMNS: &str = "version, actor, created_at_ms, command, overlay_json, diff";

/// One stored policy version (0 is the empty overlay: the files alone).
pub async fn load_version(store: &Store, version: i64) -> Result<Option<PolicyVersion>> {
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {VERSION_COLUMNS} FROM policy_versions WHERE version = $1")))
            .bind(version)
            .fetch_optional(store.pool())
            .await?;
    row.as_ref().map(version_from_row).transpose()
}

/// The newest policy versions first, at most `limit`.
pub async fn history(store: &Store, limit: i64) -> Result<Vec<PolicyVersion>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {VERSION_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(version_from_row).collect()
}

/// The overlay in force: the latest version's (empty when there is none).
pub async fn latest_overlay(store: &Store) -> Result<(i64, Overlay)> {
    let v = latest_version(store).await?;
    if v == 0 {
        return Ok((0, Overlay::new()));
    }
    Ok(load_version(store, v).await?.map(|p| (p.version, p.overlay)).unwrap_or_default())
}

async fn load_frozen(store: &Store) -> Result<BTreeMap<String, FrozenIdentity>> {
    let rows =
        sqlx::query("SELECT subject, reason, actor, at_ms FROM frozen_identities").fetch_all(store.pool()).await?;
    let mut out = BTreeMap::new();
    for r in rows {
        let f = FrozenIdentity {
            subject: r.try_get(0)?,
            reason: r.try_get(1)?,
            actor: r.try_get(2)?,
            at_ms: r.try_get(3)?,
        };
        out.insert(f.subject.clone(), f);
    }
    Ok(out)
}

/// `airlock policy export`: the effective policy (files in `dir` + the store's latest overlay) as one YAML
/// file, and the overlay version it reflects.
pub async fn export(store: &Store, dir: &std::path::Path) -> Result<(String, i64)> {
    let base = overlay::read_sources(dir)?;
    let (version, ov) = latest_overlay(store).await?;
    let header = format!(
        "Exported by `airlock policy export` from {} and admin policy version {version}.\n\
         Review it, then replace the policy files with it to make the chat changes part of the base layer.",
        dir.display()
    );
    Ok((overlay::export_yaml(&base, &ov, &header)?, version))
}

// === impl AdminState ===

impl AdminState {
    /// Read the base policy files; nothing from the store yet (see [`AdminState::refresh`]).
    pub(crate) fn new(store: Store, base: Vec<(PathBuf, String)>, policies: Arc<RwLock<Arc<PolicySet>>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                base,
                policies,
                applied: AtomicI64::new(0),
                overlay: RwLock::new(Overlay::new()),
                frozen: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Re-read the frozen list, and apply the latest overlay if its version is not the one in force. Cheap:
    /// two small queries.
    pub async fn refresh(&self) -> Result<()> {
        write(&self.inner.frozen, load_frozen(&self.inner.store).await?);
        let latest = latest_version(&self.inner.store).await?;
        if latest != self.inner.applied.load(Ordering::SeqCst) {
            let (version, ov) = latest_overlay(&self.inner.store).await?;
            self.apply(version, ov)?;
        }
        Ok(())
    }

    /// Build and install the effective set for `ov`. A failure keeps the set in force.
    fn apply(&self, version: i64, ov: Overlay) -> Result<()> {
        let (set, orphans) = overlay::effective(&self.inner.base, &ov)?;
        if !orphans.is_empty() {
            tracing::warn!(version, rules = ?orphans, "policy overlay names rules the policy files no longer have; ignored");
        }
        write(&self.inner.policies, Arc::new(set));
        write(&self.inner.overlay, ov);
        self.inner.applied.store(version, Ordering::SeqCst);
        tracing::info!(version, "policy overlay applied");
        Ok(())
    }

    /// With a Postgres store, apply other replicas' changes as soon as they are made. Reconnects on failure.
    pub(crate) fn spawn_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.store.backend() != Backend::Postgres {
            return None;
        }
        let state = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect(state.inner.store.url()).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
                            tracing::warn!(error = %e, "LISTEN airlock_admin failed");
                        } else {
                            while listener.recv().await.is_ok() {
                                if let Err(e) = state.refresh().await {
                                    tracing::warn!(error = %e, "could not apply another replica's admin change");
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "admin listener cannot connect; retrying"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    async fn announce_change(&self, what: &str) {
        if self.inner.store.backend() == Backend::Postgres
            && let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(what)
                .execute(self.inner.store.pool())
                .await
        {
            tracing::warn!(error = %e, "pg_notify failed; other replicas will notice within a second");
        }
    }

    /// The overlay in force and its version.
    pub fn overlay(&self) -> (i64, Overlay) {
        (self.inner.applied.load(Ordering::SeqCst), read(&self.inner.overlay))
    }

    /// Whether calls of `identity` are refused (its subject, or the human it acts for, is frozen).
    pub fn frozen_for(&self, identity: &Identity) -> Option<FrozenIdentity> {
        let frozen = match self.inner.frozen.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        frozen.get(&identity.subject).or_else(|| identity.on_behalf_of.as_ref().and_then(|h| frozen.get(h))).cloned()
    }

    /// Every frozen identity.
    pub fn frozen(&self) -> Vec<FrozenIdentity> {
        read(&self.inner.frozen).into_values().collect()
    }
}

// === impl Gateway (admin) ===

impl Gateway {
    /// Change one rule (an overlay entry) and store the result as a new policy version, applied at once.
    /// Unknown rules are refused with close names; the effective set is validated like a file first.
    pub async fn policy_set(
        &self,
        actor: &Identity,
        rule: &str,
        change: RuleOverride,
        command: &str,
    ) -> Result<PolicyVersion> {
        let admin = self.admin();
        let policies = self.policies();
        if !policies.rules().iter().any(|r| r.rule.name == rule) {
            let names: Vec<&str> = policies.rules().iter().map(|r| r.rule.name.as_str()).collect();
            let close = overlay::close_names(rule, names.iter().copied());
            let hint = if close.is_empty() {
                format!("known rules: {}", names.join(", "))
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            return Err(Error::AdminChange(format!("no policy rule named {rule:?}; {hint}")));
        }
        let (_, mut ov) = admin.overlay();
        ov.insert(rule.to_owned(), change);
        self.store_overlay(actor, ov, command).await
    }

    /// Store a new version whose overlay equals `version`'s (0: the policy files alone).
    pub async fn policy_rollback(&self, actor: &Identity, version: i64, command: &str) -> Result<PolicyVersion> {
        let ov = if version == 0 {
            Overlay::new()
        } else {
            load_version(self.store(), version)
                .await?
                .ok_or_else(|| Error::AdminChange(format!("no policy version {version}; see `policy history`")))?
                .overlay
        };
        self.store_overlay(actor, ov, command).await
    }

    async fn store_overlay(&self, actor: &Identity, ov: Overlay, command: &str) -> Result<PolicyVersion> {
        let admin = self.admin();
        // Catch up first, so the diff and the version number are against what is really latest.
        admin.refresh().await?;
        let (current, before) = admin.overlay();
        // Validated exactly like policy files, before anything is stored.
        overlay::effective(&admin.inner.base, &ov)
            .map_err(|e| Error::AdminChange(format!("the change would make the policy invalid: {e}")))?;
        let v = PolicyVersion {
            version: current + 1,
            actor: actor.subject.clone(),
            created_at_ms: now_ms(),
            command: command.to_owned(),
            diff: overlay::diff(&before, &ov),
            overlay: ov,
        };
        let inserted = sqlx::query(
            "INSERT INTO policy_versions (version, actor, created_at_ms, command, overlay_json, diff) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(v.version)
        .bind(&v.actor)
        .bind(v.created_at_ms)
        .bind(&v.command)
        .bind(serde_json::to_string(&v.overlay).map_err(json_err)?)
        .bind(&v.diff)
        .execute(self.store().pool())
        .await;
        match inserted {
            Ok(_) => {}
            // Another admin stored this version number a moment ago: do not overwrite their change.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                let _ = admin.refresh().await;
                return Err(Error::AdminChange(
                    "another policy change was stored at the same moment; check `policy list` and try again".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        }
        admin.apply(v.version, v.overlay.clone())?;
        self.recorder()
            .append(
                AUDIT_SESSION,
                None,
                EventKind::PolicyChanged,
                &json!({
                    "version": v.version, "actor": v.actor, "command": v.command, "diff": v.diff,
                    "overlay": v.overlay, "policy_version": self.policies().version(),
                }),
            )
            .await?;
        admin.announce_change("policy").await;
        Ok(v)
    }

    /// Stored policy versions, newest first.
    pub async fn policy_history(&self, limit: i64) -> Result<Vec<PolicyVersion>> {
        history(self.store(), limit).await
    }

    /// Freeze `subject`: from now on its calls are refused before classification, and its pending approvals
    /// are denied (by `actor`, reason `frozen: …`), waking the agents waiting on them. Returns the denied ids.
    pub async fn freeze(
        self: &Arc<Self>,
        actor: &Identity,
        subject: &str,
        reason: &str,
        source: VoteSource,
    ) -> Result<Vec<String>> {
        let at_ms = now_ms();
        let upsert = match self.store().backend() {
            Backend::Postgres => {
                "INSERT INTO frozen_identities (subject, reason, actor, at_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (subject) DO UPDATE SET reason = EXCLUDED.reason, actor = EXCLUDED.actor, at_ms = EXCLUDED.at_ms"
            }
            Backend::Sqlite => {
                "INSERT OR REPLACE INTO frozen_identities (subject, reason, actor, at_ms) VALUES ($1, $2, $3, $4)"
            }
        };
        sqlx::query(upsert)
            .bind(subject)
            .bind(reason)
            .bind(&actor.subject)
            .bind(at_ms)
            .execute(self.store().pool())
            .await?;
        let admin = self.admin();
        // Refuse new calls first, then deny what is already waiting.
        admin.refresh().await?;
        admin.announce_change("frozen").await;
        let deny_reason = format!("frozen: {reason}");
        let mut denied = Vec::new();
        for rec in self.broker().pending(None).await? {
            let hit = rec.requester.subject == subject || rec.requester.on_behalf_of.as_deref() == Some(subject);
            if hit && self.broker().force_deny(&rec.id, &actor.subject, &deny_reason, source).await? {
                self.after_decision(&rec.id).await?;
                denied.push(rec.id);
            }
        }
        self.recorder()
            .append(
                AUDIT_SESSION,
                None,
                EventKind::IdentityFrozen,
                &json!({ "subject": subject, "reason": reason, "actor": actor.subject, "denied_approvals": denied }),
            )
            .await?;
        Ok(denied)
    }

    /// Unfreeze `subject`; false when it was not frozen.
    pub async fn unfreeze(&self, actor: &Identity, subject: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM frozen_identities WHERE subject = $1")
            .bind(subject)
            .execute(self.store().pool())
            .await?;
        let admin = self.admin();
        admin.refresh().await?;
        admin.announce_change("frozen").await;
        let was = done.rows_affected() > 0;
        if was {
            self.recorder()
                .append(
                    AUDIT_SESSION,
                    None,
                    EventKind::IdentityUnfrozen,
                    &json!({ "subject": subject, "actor": actor.subject }),
                )
                .await?;
        }
        Ok(was)
    }

    /// Recent sessions, newest first: all, or those of one identity subject, or those with calls on one
    /// connection; optionally only those started at or after `since_ms`.
    pub async fn recent_sessions(
        &self,
        filter: Option<&str>,
        since_ms: Option<i64>,
        limit: i64,
    ) -> Result<Vec<SessionSummary>> {
        let rows = sqlx::query(
            "SELECT s.id, s.created_ms, s.subject, s.transport, \
                    (SELECT COUNT(*) FROM call_index c WHERE c.session_id = s.id) \
             FROM sessions s \
             WHERE s.id <> $1 AND s.created_ms >= $2 \
               AND ($3 = '' OR s.subject = $3 OR s.id IN (SELECT session_id FROM call_index WHERE connection = $3)) \
             ORDER BY s.created_ms DESC LIMIT $4",
        )
        .bind(AUDIT_SESSION)
        .bind(since_ms.unwrap_or(0))
        .bind(filter.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                Ok(SessionSummary {
                    replay_url: self.replay_url(&id),
                    id,
                    created_ms: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    transport: r.try_get(3)?,
                    calls: r.try_get(4)?,
                })
            })
            .collect()
    }
}

/// A session as `/airlock sessions` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub created_ms: i64,
    pub subject: String,
    pub transport: String,
    pub calls: i64,
    pub replay_url: String,
}
