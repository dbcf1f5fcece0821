//! The recorder: append-only, hash-chained events per session.
//!
//! Each event's hash is `sha256(prev_hash ‖ canonical event)`, hex-encoded, where `prev_hash` is the previous
//! event's hash in the same session (64 zeros for the first) and the canonical event is the JSON array
//! `[session_id, seq, call_id|null, ts_ms, kind, payload]` with `payload` embedded as the exact stored text
//! (itself canonical JSON: object keys sorted, no whitespace). Anyone with the rows can recompute the chain
//! offline; changing, removing or reordering a row breaks it at that row.
//!
//! Only masked data is ever passed in: the pipeline masks before it records.
//!
//! Each append also maintains the search index of calls (`call_index`, see [`crate::search`]) in the same
//! transaction; the index is derived data, outside the chain and its hashes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::store::{Store, now_ms};

/// The hash that precedes the first event of a session.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The id of the gateway's own audit session, for events that belong to no client session (failed
/// authentication before a session exists, start-up).
pub const AUDIT_SESSION: &str = "00000000-0000-0000-0000-000000000000";

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A session began: who, over which transport.
    SessionStart,
    /// A tool call arrived (committed before anything executes).
    Request,
    /// The policy decision for a call.
    Decision,
    /// A call was held for approval.
    ApprovalRequested,
    /// A human voted (or was refused).
    ApprovalVote,
    /// The approval was decided: approved, denied or expired.
    ApprovalDecided,
    /// A chunk of streamed output (SSH / kube).
    Output,
    /// The call's final result (masked), status and counts.
    Result,
    /// Authentication was refused.
    AuthFailed,
    /// A whole session was purged past its retention (in the gateway's audit session).
    SessionPurged,
    /// A session was opened through a signed replay link, without signing in (in the gateway's audit session).
    ReplayLinkOpened,
    /// An admin slash command ran or was refused (in the gateway's audit session).
    AdminCommand,
    /// An admin stored a new policy version (overlay), in the gateway's audit session.
    PolicyChanged,
    /// An admin froze an identity (in the gateway's audit session).
    IdentityFrozen,
    /// An admin unfroze an identity (in the gateway's audit session).
    IdentityUnfrozen,
    /// A call of a frozen identity was refused (in the gateway's audit session; the call is in its own).
    FrozenCallRefused,
}

impl EventKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SessionStart => "session_start",
            EventKind::Request => "request",
            EventKind::Decision => "decision",
            EventKind::ApprovalRequested => "approval_requested",
            EventKind::ApprovalVote => "approval_vote",
            EventKind::ApprovalDecided => "approval_decided",
            EventKind::Output => "output",
            EventKind::Result => "result",
            EventKind::AuthFailed => "auth_failed",
            EventKind::SessionPurged => "session_purged",
            EventKind::ReplayLinkOpened => "replay_link_opened",
            EventKind::AdminCommand => "admin_command",
            EventKind::PolicyChanged => "policy_changed",
            EventKind::IdentityFrozen => "identity_frozen",
            EventKind::IdentityUnfrozen => "identity_unfrozen",
            EventKind::FrozenCallRefused => "frozen_call_refused",
        }
    }
}

/// A stored event, as read back.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StoredEvent {
    pub session_id: String,
    pub seq: i64,
    pub call_id: Option<String>,
    pub ts_ms: i64,
    pub kind: String,
    /// Canonical JSON text, exactly as hashed.
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Where a chain stopped being valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// Sequence number of the first event that does not verify.
    pub seq: i64,
    pub reason: String,
}

/// Result of verifying one session's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub session_id: String,
    pub events: usize,
    /// Hash of the last event (the chain head), if any.
    pub head: Option<String>,
    pub broken: Option<BrokenLink>,
}

impl ChainReport {
    /// True when every link verified.
    pub fn is_valid(&self) -> bool {
        self.broken.is_none()
    }
}

/// Information recorded when a session starts.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: String,
    pub identity: Identity,
    /// `stdio` or `http`.
    pub transport: String,
    /// Client name/version as announced in MCP `initialize`, if known.
    pub client: String,
}

#[derive(Debug, Clone)]
struct Head {
    seq: i64,
    hash: String,
}

type HeadSlot = Arc<tokio::sync::Mutex<Option<Head>>>;

/// Appends and verifies events. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    store: Store,
    // One lock per session serialises appends within this process; the (session_id, seq) primary key arbitrates
    // between processes (replicas), and a conflict reloads the head and retries.
    heads: Arc<Mutex<HashMap<String, HeadSlot>>>,
    /// `[audit]` sinks: each streamed event gets an outbox row per sink, in the append's transaction.
    audit_sinks: Arc<Vec<String>>,
}

/// Serialize `value` as canonical JSON: object keys sorted, no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(inner) = map.get(k) {
                        write(inner, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// The chain hash of one event.
pub fn event_hash(
    prev_hash: &str,
    session_id: &str,
    seq: i64,
    call_id: Option<&str>,
    ts_ms: i64,
    kind: &str,
    payload: &str,
) -> String {
    let canonical = format!(
        "[{},{},{},{},{},{}]",
        Value::String(session_id.to_owned()),
        seq,
        call_id.map_or_else(|| "null".to_owned(), |c| Value::String(c.to_owned()).to_string()),
        ts_ms,
        Value::String(kind.to_owned()),
        payload
    );
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// Verify a sequence of events of one session, in order. Used on the store and on exported files alike.
pub fn verify_events(session_id: &str, events: &[StoredEvent]) -> ChainReport {
    let mut prev = GENESIS_HASH.to_owned();
    let mut broken = None;
    for (i, e) in events.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let reason = if e.session_id != session_id {
            Some(format!("event belongs to session {}", e.session_id))
        } else if e.seq != expected_seq {
            Some(format!("expected sequence {expected_seq}, found {} (event missing or reordered)", e.seq))
        } else if e.prev_hash != prev {
            Some("prev_hash does not match the previous event's hash".to_owned())
        } else if event_hash(&prev, &e.session_id, e.seq, e.call_id.as_deref(), e.ts_ms, &e.kind, &e.payload) != e.hash
        {
            Some("hash does not match the event's content (event altered)".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            broken = Some(BrokenLink { seq: e.seq, reason });
            break;
        }
        prev = e.hash.clone();
    }
    ChainReport {
        session_id: session_id.to_owned(),
        events: events.len(),
        head: events.last().map(|e| e.hash.clone()),
        broken,
    }
}

// === impl Recorder ===

impl Recorder {
    /// A recorder over `store`.
    pub fn new(store: Store) -> Self {
        Self { store, heads: Arc::default(), audit_sinks: Arc::default() }
    }

    /// Also write audit-stream outbox rows for these sinks (see [`crate::audit`]).
    pub fn with_audit_sinks(mut self, sinks: Vec<String>) -> Self {
        self.audit_sinks = Arc::new(sinks);
        self
    }

    /// Record the start of a session (a `sessions` row plus a chained `session_start` event).
    pub async fn start_session(&self, info: &SessionInfo) -> Result<()> {
        let groups = serde_json::to_string(&info.identity.groups).map_err(|e| Error::Record(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sessions (id, created_ms, subject, identity_kind, groups_json, transport, client) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&info.id)
        .bind(now_ms())
        .bind(&info.identity.subject)
        .bind(info.identity.kind.as_str())
        .bind(groups)
        .bind(&info.transport)
        .bind(&info.client)
        .execute(self.store.pool())
        .await?;
        let payload = serde_json::json!({
            "identity": info.identity,
            "transport": info.transport,
            "client": info.client,
        });
        self.append(&info.id, None, EventKind::SessionStart, &payload).await?;
        Ok(())
    }

    /// Make sure the gateway's audit session exists (idempotent).
    pub async fn ensure_audit_session(&self) -> Result<()> {
        let exists = sqlx::query("SELECT 1 FROM sessions WHERE id = $1")
            .bind(AUDIT_SESSION)
            .fetch_optional(self.store.pool())
            .await?
            .is_some();
        if !exists {
            let info = SessionInfo {
                id: AUDIT_SESSION.to_owned(),
                identity: Identity::gateway(),
                transport: "internal".into(),
                client: "airlock".into(),
            };
            // Two processes starting at once may race here; the loser's insert fails on the primary key.
            if let Err(e) = self.start_session(&info).await {
                let still_missing = sqlx::query("SELECT 1 FROM sessions WHERE id = $1")
                    .bind(AUDIT_SESSION)
                    .fetch_optional(self.store.pool())
                    .await?
                    .is_none();
                if still_missing {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Append one event and commit it. Returns its sequence number and hash.
    pub async fn append(
        &self,
        session_id: &str,
        call_id: Option<&str>,
        kind: EventKind,
        payload: &Value,
    ) -> Result<(i64, String)> {
        self.append_all(session_id, call_id, &[(kind, payload)]).await
    }

    /// Append several events of one call in a single transaction (one commit, one fsync): they become durable
    /// together, in order. Returns the last event's sequence number and hash.
    pub async fn append_all(
        &self,
        session_id: &str,
        call_id: Option<&str>,
        events: &[(EventKind, &Value)],
    ) -> Result<(i64, String)> {
        let payloads: Vec<(EventKind, String, &Value)> =
            events.iter().map(|(k, p)| (*k, canonical_json(p), *p)).collect();
        let slot = {
            let mut heads = self.heads.lock().map_err(|_| Error::Record("recorder lock poisoned".into()))?;
            heads.entry(session_id.to_owned()).or_default().clone()
        };
        let mut head = slot.lock().await;
        for _attempt in 0..8 {
            let (mut seq, mut prev_hash) = match head.as_ref() {
                Some(h) => (h.seq, h.hash.clone()),
                None => self.load_head(session_id).await?,
            };
            let mut tx = self.store.pool().begin().await?;
            let mut conflict = false;
            for (kind, payload, value) in &payloads {
                seq += 1;
                let ts = now_ms();
                let hash = event_hash(&prev_hash, session_id, seq, call_id, ts, kind.as_str(), payload);
                let inserted = sqlx::query(
                    "INSERT INTO events (session_id, seq, call_id, ts_ms, kind, payload, prev_hash, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(session_id)
                .bind(seq)
                .bind(call_id)
                .bind(ts)
                .bind(kind.as_str())
                .bind(payload)
                .bind(&prev_hash)
                .bind(&hash)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => prev_hash = hash,
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        conflict = true;
                        break;
                    }
                    Err(e) => {
                        *head = None;
                        return Err(e.into());
                    }
                }
                // The search index is written in the same transaction, so it never diverges from the chain: if
                // it cannot be written, the event is not recorded either.
                if let Err(e) = crate::search::index_event(&mut tx, session_id, call_id, *kind, ts, value).await {
                    *head = None;
                    return Err(e);
                }
                // So is the audit stream's outbox: what is recorded is streamed, and nothing else.
                let queued =
                    crate::audit::enqueue(&mut tx, &self.audit_sinks, session_id, seq, call_id, *kind, ts, value).await;
                if let Err(e) = queued {
                    *head = None;
                    return Err(e);
                }
            }
            if conflict {
                // Another replica appended to this session: reload the head and try again.
                drop(tx);
                *head = None;
                continue;
            }
            if let Err(e) = tx.commit().await {
                *head = None;
                return Err(e.into());
            }
            *head = Some(Head { seq, hash: prev_hash.clone() });
            return Ok((seq, prev_hash));
        }
        Err(Error::Record(format!("session {session_id}: chain head kept moving; gave up after 8 attempts")))
    }

    async fn load_head(&self, session_id: &str) -> Result<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM events WHERE session_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(session_id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(match row {
            Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
            None => (0, GENESIS_HASH.to_owned()),
        })
    }

    /// Every event of a session, in order.
    pub async fn events(&self, session_id: &str) -> Result<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT session_id, seq, call_id, ts_ms, kind, payload, prev_hash, hash FROM events \
             WHERE session_id = $1 ORDER BY seq",
        )
        .bind(session_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    session_id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    call_id: r.try_get(2)?,
                    ts_ms: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    payload: r.try_get(5)?,
                    prev_hash: r.try_get(6)?,
                    hash: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Events of one tool call, in order.
    pub async fn call_events(&self, call_id: &str) -> Result<Vec<StoredEvent>> {
        let session: Option<String> = sqlx::query("SELECT session_id FROM events WHERE call_id = $1 LIMIT 1")
            .bind(call_id)
            .fetch_optional(self.store.pool())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(session) = session else { return Ok(Vec::new()) };
        Ok(self.events(&session).await?.into_iter().filter(|e| e.call_id.as_deref() == Some(call_id)).collect())
    }

    /// Recompute a session's chain from the store and report the first broken link.
    pub async fn verify(&self, session_id: &str) -> Result<ChainReport> {
        Ok(verify_events(session_id, &self.events(session_id).await?))
    }

    /// The store the recorder writes to.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Drop the cached chain head of a session (after it was purged).
    pub(crate) fn forget(&self, session_id: &str) {
        if let Ok(mut heads) = self.heads.lock() {
            heads.remove(session_id);
        }
    }

    /// Ids of every recorded session, oldest first.
    pub async fn session_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM sessions ORDER BY created_ms, id").fetch_all(self.store.pool()).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#);
    }

    fn chain(n: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let payload = format!("{{\"n\":{seq}}}");
                let hash = event_hash(&prev, "s", seq, Some("c"), 1000 + seq, "request", &payload);
                let e = StoredEvent {
                    session_id: "s".into(),
                    seq,
                    call_id: Some("c".into()),
                    ts_ms: 1000 + seq,
                    kind: "request".into(),
                    payload,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies_and_reports_its_head() {
        let events = chain(5);
        let report = verify_events("s", &events);
        assert!(report.is_valid(), "{report:?}");
        assert_eq!(report.head.as_deref(), Some(events[4].hash.as_str()));
    }

    #[test]
    fn altered_payload_breaks_the_chain_at_that_event() {
        let mut events = chain(5);
        events[2].payload = "{\"n\":999}".into();
        assert_eq!(verify_events("s", &events).broken.map(|b| b.seq), Some(3));
    }

    #[test]
    fn removed_event_breaks_the_chain_where_it_was() {
        let mut events = chain(5);
        events.remove(1);
        assert_eq!(verify_events("s", &events).broken.map(|b| b.seq), Some(3));
    }

    #[test]
    fn rehashed_forgery_is_caught_by_the_next_link() {
        // An attacker who rewrites event 2 and recomputes its hash still breaks event 3's prev_hash.
        let mut events = chain(4);
        events[1].payload = "{\"n\":\"forged\"}".into();
        events[1].hash =
            event_hash(&events[1].prev_hash, "s", 2, Some("c"), events[1].ts_ms, "request", &events[1].payload);
        let report = verify_events("s", &events);
        assert_eq!(report.broken.map(|b| b.seq), Some(3));
    }
}
