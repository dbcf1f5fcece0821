//! Evidence for auditors: a session exported as JSON with every event and its hashes (verifiable by a third
//! party without Airlock's store), and command output as an asciicast v2 recording.
//!
//! An export carries the chain head: whoever holds the head (e.g. it was posted with the approval, or noted at
//! export time) can tell that nothing was altered, removed or appended since. [`verify_export`] recomputes the
//! chain exactly as `airlock sessions verify` does on the store.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::error::{Error, Result};
use crate::record::{ChainReport, GENESIS_HASH, Recorder, StoredEvent, verify_events};
use crate::store::now_ms;

/// The format tag of session exports.
pub const EXPORT_FORMAT: &str = "airlock.session.v1";

/// Who opened a session, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub created_ms: i64,
    pub subject: String,
    pub identity_kind: String,
    pub groups: Vec<String>,
    pub transport: String,
    pub client: String,
}

/// The chain summary an export carries, to be compared with a trusted copy of the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainSummary {
    pub algorithm: String,
    pub genesis: String,
    pub events: usize,
    pub head: Option<String>,
}

/// A whole session, as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionExport {
    pub format: String,
    pub exported_at_ms: i64,
    pub session: SessionRow,
    pub chain: ChainSummary,
    /// Every event, in order, with its payload exactly as hashed.
    pub events: Vec<StoredEvent>,
}

impl Recorder {
    /// The stored row of a session.
    pub async fn session_row(&self, session_id: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT id, created_ms, subject, identity_kind, groups_json, transport, client FROM sessions WHERE id = $1",
        )
        .bind(session_id)
        .fetch_optional(self.store().pool())
        .await?;
        row.map(|r| {
            let groups: String = r.try_get(4)?;
            Ok(SessionRow {
                id: r.try_get(0)?,
                created_ms: r.try_get(1)?,
                subject: r.try_get(2)?,
                identity_kind: r.try_get(3)?,
                groups: serde_json::from_str(&groups).map_err(|e| Error::Record(e.to_string()))?,
                transport: r.try_get(5)?,
                client: r.try_get(6)?,
            })
        })
        .transpose()
    }

    /// Export a session with every event and its hashes. `None` when there is no such session.
    pub async fn export(&self, session_id: &str) -> Result<Option<SessionExport>> {
        let Some(session) = self.session_row(session_id).await? else { return Ok(None) };
        let events = self.events(session_id).await?;
        Ok(Some(SessionExport {
            format: EXPORT_FORMAT.to_owned(),
            exported_at_ms: now_ms(),
            session,
            chain: ChainSummary {
                algorithm: "sha256(prev_hash || [session_id,seq,call_id,ts_ms,kind,payload])".to_owned(),
                genesis: GENESIS_HASH.to_owned(),
                events: events.len(),
                head: events.last().map(|e| e.hash.clone()),
            },
            events,
        }))
    }
}

/// Verify an exported session: recompute its chain, and check it ends at the head the export states.
pub fn verify_export(export: &SessionExport) -> std::result::Result<ChainReport, String> {
    if export.format != EXPORT_FORMAT {
        return Err(format!("unknown export format {:?} (expected {EXPORT_FORMAT})", export.format));
    }
    let report = verify_events(&export.session.id, &export.events);
    if report.is_valid() && (report.head != export.chain.head || report.events != export.chain.events) {
        return Err(format!(
            "the events verify, but end at {:?} after {} event(s) while the export states head {:?} after {}: \
             events were removed from or added to the end",
            report.head, report.events, export.chain.head, export.chain.events
        ));
    }
    Ok(report)
}

/// Command output of a session (or of one call) as an asciicast v2 recording: a header line, then
/// `[seconds, "o", text]` lines. Frames keep their original timing; calls follow each other at the time their
/// requests were recorded. `None` when there is no command output.
pub fn asciicast(export: &SessionExport, call_id: Option<&str>) -> Option<String> {
    let mut start_ms: Option<i64> = None;
    let mut title = None;
    let mut lines = Vec::new();
    let mut call_base: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for e in &export.events {
        let Some(call) = e.call_id.as_deref() else { continue };
        if call_id.is_some_and(|c| c != call) {
            continue;
        }
        let payload: Value = serde_json::from_str(&e.payload).unwrap_or(Value::Null);
        match e.kind.as_str() {
            "request" => {
                call_base.insert(call, e.ts_ms);
                if title.is_none() {
                    title = payload["statement"].as_str().map(|s| format!("{}: {s}", payload["connection"]));
                }
            }
            "output" => {
                let base = *call_base.get(call).unwrap_or(&e.ts_ms);
                let start = *start_ms.get_or_insert(base);
                for frame in payload["frames"].as_array().into_iter().flatten() {
                    let (Some(ms), Some(text)) = (frame[0].as_i64(), frame[2].as_str()) else { continue };
                    let at = (base - start + ms).max(0) as f64 / 1000.0;
                    // Commands run without a terminal print bare `\n`; a terminal player needs `\r\n`.
                    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
                    lines.push(json!([at, "o", text]).to_string());
                }
            }
            _ => {}
        }
    }
    let start = start_ms?;
    let header = json!({
        "version": 2,
        "width": 120,
        "height": 40,
        "timestamp": start / 1000,
        "title": title.unwrap_or_else(|| format!("airlock session {}", export.session.id)),
        "env": { "TERM": "xterm-256color" },
    });
    let mut out = header.to_string();
    for l in lines {
        out.push('\n');
        out.push_str(&l);
    }
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::event_hash;

    fn export_of(payloads: &[(&str, Option<&str>, i64, Value)]) -> SessionExport {
        let mut prev = GENESIS_HASH.to_owned();
        let events: Vec<StoredEvent> = payloads
            .iter()
            .enumerate()
            .map(|(i, (kind, call, ts, payload))| {
                let payload = crate::record::canonical_json(payload);
                let seq = i as i64 + 1;
                let hash = event_hash(&prev, "s1", seq, *call, *ts, kind, &payload);
                let e = StoredEvent {
                    session_id: "s1".into(),
                    seq,
                    call_id: call.map(str::to_owned),
                    ts_ms: *ts,
                    kind: (*kind).into(),
                    payload,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect();
        SessionExport {
            format: EXPORT_FORMAT.into(),
            exported_at_ms: 0,
            session: SessionRow {
                id: "s1".into(),
                created_ms: 0,
                subject: "a".into(),
                identity_kind: "agent".into(),
                groups: vec![],
                transport: "stdio".into(),
                client: "t".into(),
            },
            chain: ChainSummary {
                algorithm: String::new(),
                genesis: GENESIS_HASH.into(),
                events: events.len(),
                head: events.last().map(|e| e.hash.clone()),
            },
            events,
        }
    }

    fn sample() -> SessionExport {
        export_of(&[
            ("session_start", None, 1_000, json!({})),
            ("request", Some("c1"), 2_000, json!({"connection": "web", "statement": "echo hi"})),
            ("output", Some("c1"), 2_600, json!({"frames": [[0, "o", "hi\n"], [1500, "e", "oops\n"]]})),
            ("result", Some("c1"), 3_600, json!({"status": "completed"})),
        ])
    }

    #[test]
    fn an_intact_export_verifies_and_tampering_is_reported() {
        let export = sample();
        assert!(verify_export(&export).expect("verifies").is_valid());
        let mut altered = export.clone();
        altered.events[2].payload = altered.events[2].payload.replace("hi", "ho");
        assert_eq!(verify_export(&altered).expect("report").broken.map(|b| b.seq), Some(3));
        let mut truncated = export.clone();
        truncated.events.pop();
        assert!(verify_export(&truncated).unwrap_err().contains("removed from or added to the end"));
    }

    #[test]
    fn asciicast_keeps_frame_timing_and_terminal_newlines() {
        let cast = asciicast(&sample(), None).expect("output");
        let mut lines = cast.lines();
        let header: Value = serde_json::from_str(lines.next().expect("header")).expect("json");
        assert_eq!(header["version"], 2);
        assert_eq!(header["title"], "\"web\": echo hi");
        let frames: Vec<Value> = lines.map(|l| serde_json::from_str(l).expect("frame")).collect();
        assert_eq!(frames, vec![json!([0.0, "o", "hi\r\n"]), json!([1.5, "o", "oops\r\n"])]);
        assert!(asciicast(&sample(), Some("other")).is_none());
    }
}
