//! Retention: sessions whose last event is older than their retention are purged **whole** (events, approvals,
//! the search index's rows, the session row) in one transaction, never in part. Each purge leaves a permanent
//! row in `session_purges` (the database allows deleting a session's events only when that row exists) and a
//! `session_purged` event in the gateway's audit session, with the purged chain's head so the purge itself is
//! evidence.
//!
//! A session's retention is the longest of the retentions of the connections it used (a connection's
//! `retention_days`, else `retention.days`); when any of them keeps forever, so does the session. Sessions
//! with an approval still pending or running are kept until it ends. The audit session is never purged.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;

use crate::config::Config;
use crate::error::Result;
use crate::record::{AUDIT_SESSION, EventKind, Recorder};

const DAY_MS: i64 = 86_400_000;

/// One purged (or, in a dry run, purgeable) session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PurgedSession {
    pub session_id: String,
    pub subject: String,
    pub events: i64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Hash of the session's last event when it was purged.
    pub head: Option<String>,
    pub retention_days: u32,
    pub connections: Vec<String>,
}

/// Days a session that used `connections` is kept; `None`: forever.
fn session_retention(config: &Config, connections: &BTreeSet<String>) -> Option<u32> {
    if connections.is_empty() {
        return config.retention.days;
    }
    let mut longest = 0;
    for name in connections {
        let days = config.connections.get(name).and_then(|c| c.retention_days).or(config.retention.days)?;
        longest = longest.max(days);
    }
    Some(longest)
}

/// Purge every session past its retention at `now_ms`; with `dry_run`, only report what would be purged.
pub async fn purge_expired(
    recorder: &Recorder,
    config: &Config,
    now_ms: i64,
    dry_run: bool,
) -> Result<Vec<PurgedSession>> {
    let shortest = config.connections.values().filter_map(|c| c.retention_days).chain(config.retention.days).min();
    let Some(shortest) = shortest else { return Ok(Vec::new()) };
    let pool = recorder.store().pool();
    let candidates = sqlx::query(
        "SELECT e.session_id, MIN(e.ts_ms), MAX(e.ts_ms), COUNT(*), s.subject FROM events e \
         JOIN sessions s ON s.id = e.session_id WHERE e.session_id <> $1 \
         GROUP BY e.session_id, s.subject HAVING MAX(e.ts_ms) < $2",
    )
    .bind(AUDIT_SESSION)
    .bind(now_ms - i64::from(shortest) * DAY_MS)
    .fetch_all(pool)
    .await?;
    let mut purged = Vec::new();
    for row in candidates {
        let session_id: String = row.try_get(0)?;
        let (first_ms, last_ms, events): (i64, i64, i64) = (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
        let subject: String = row.try_get(4)?;
        let requests = sqlx::query("SELECT payload FROM events WHERE session_id = $1 AND kind = 'request'")
            .bind(&session_id)
            .fetch_all(pool)
            .await?;
        let connections: BTreeSet<String> = requests
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter_map(|p| serde_json::from_str::<Value>(&p).ok())
            .filter_map(|p| p["connection"].as_str().map(str::to_owned))
            .collect();
        let Some(days) = session_retention(config, &connections) else { continue };
        if last_ms >= now_ms - i64::from(days) * DAY_MS {
            continue;
        }
        let open_approvals = sqlx::query(
            "SELECT COUNT(*) FROM approvals WHERE session_id = $1 AND state IN ('pending', 'approved', 'executing')",
        )
        .bind(&session_id)
        .fetch_one(pool)
        .await?
        .try_get::<i64, _>(0)?;
        if open_approvals > 0 {
            continue;
        }
        let head: Option<String> =
            sqlx::query("SELECT hash FROM events WHERE session_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(&session_id)
                .fetch_optional(pool)
                .await?
                .map(|r| r.try_get(0))
                .transpose()?;
        let session = PurgedSession {
            session_id,
            subject,
            events,
            first_ms,
            last_ms,
            head,
            retention_days: days,
            connections: connections.into_iter().collect(),
        };
        if !dry_run {
            purge_one(recorder, &session, now_ms).await?;
        }
        purged.push(session);
    }
    Ok(purged)
}

/// Delete one whole session in a transaction that first records the purge, then append the audit event.
async fn purge_one(recorder: &Recorder, s: &PurgedSession, now_ms: i64) -> Result<()> {
    let mut tx = recorder.store().pool().begin().await?;
    sqlx::query(
        "INSERT INTO session_purges (session_id, purged_ms, subject, events, first_ms, last_ms, head_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.session_id)
    .bind(now_ms)
    .bind(&s.subject)
    .bind(s.events)
    .bind(s.first_ms)
    .bind(s.last_ms)
    .bind(&s.head)
    .execute(&mut *tx)
    .await?;
    for statement in [
        "DELETE FROM approval_votes WHERE approval_id IN (SELECT id FROM approvals WHERE session_id = $1)",
        "DELETE FROM approvals WHERE session_id = $1",
        // The search index (and, through its triggers, SQLite's FTS index) goes with the session.
        "DELETE FROM call_index WHERE session_id = $1",
        "DELETE FROM events WHERE session_id = $1",
        "DELETE FROM sessions WHERE id = $1",
    ] {
        sqlx::query(statement).bind(&s.session_id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    recorder.forget(&s.session_id);
    tracing::info!(session = %s.session_id, events = s.events, days = s.retention_days, "session purged past retention");
    recorder
        .append(
            AUDIT_SESSION,
            None,
            EventKind::SessionPurged,
            &json!({
                "session_id": s.session_id,
                "subject": s.subject,
                "events": s.events,
                "first_ms": s.first_ms,
                "last_ms": s.last_ms,
                "head": s.head,
                "retention_days": s.retention_days,
                "connections": s.connections,
            }),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_kept_for_the_longest_retention_of_its_connections() {
        let text = "[retention]\ndays = 30\n\
                    [connections.a]\nkind = \"sqlite\"\nurl = \"sqlite://a.db\"\nretention_days = 7\n\
                    [connections.b]\nkind = \"sqlite\"\nurl = \"sqlite://b.db\"\nretention_days = 90\n\
                    [connections.c]\nkind = \"sqlite\"\nurl = \"sqlite://c.db\"\n";
        let config = Config::parse(text, "t.toml", Vec::new()).expect("config");
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(session_retention(&config, &set(&[])), Some(30));
        assert_eq!(session_retention(&config, &set(&["a"])), Some(7));
        assert_eq!(session_retention(&config, &set(&["a", "c"])), Some(30));
        assert_eq!(session_retention(&config, &set(&["a", "b"])), Some(90));
        assert_eq!(session_retention(&config, &set(&["gone"])), Some(30), "unknown connections use the global");
        let forever = Config::parse(
            "[connections.a]\nkind = \"sqlite\"\nurl = \"sqlite://a.db\"\nretention_days = 7\n",
            "t.toml",
            Vec::new(),
        )
        .expect("config");
        assert_eq!(session_retention(&forever, &set(&["a"])), Some(7));
        assert_eq!(session_retention(&forever, &set(&[])), None, "no global retention: kept forever");
    }
}
