//! The replay page's view of a session: its calls, each with a timeline of every recorded event, the masked
//! result (a table for SQL, timed terminal frames for SSH / kube), masking counts, and the chain's integrity.
//!
//! Values are passed to the template as plain strings and escaped there; terminal text additionally loses its
//! ANSI escape sequences here, so the player shows exactly the characters that were printed, never controls.

use std::collections::BTreeMap;

use gateway_core::evidence::SessionExport;
use gateway_core::record::ChainReport;
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
pub struct SessionView {
    id: String,
    subject: String,
    identity_kind: String,
    groups: Vec<String>,
    /// The human the agent acted for, from the session's start event.
    on_behalf_of: Option<String>,
    transport: String,
    client: String,
    created: String,
    integrity: Integrity,
    calls: Vec<CallView>,
    /// Events outside any call (session start, audit entries).
    session_events: Vec<Entry>,
    has_output: bool,
}

#[derive(Serialize)]
struct Integrity {
    ok: bool,
    events: usize,
    head: Option<String>,
    broken_seq: Option<i64>,
    reason: Option<String>,
}

#[derive(Serialize, Default)]
struct CallView {
    call_id: String,
    tool: String,
    connection: String,
    statement: String,
    subject: String,
    status: String,
    rule: String,
    message: String,
    started: String,
    entries: Vec<Entry>,
    table: Option<Table>,
    /// `[[ms, stream, text], …]` as JSON, for the player (an attribute value, escaped by the template).
    frames: Option<String>,
    frame_count: usize,
    masked: Vec<(String, u64)>,
}

#[derive(Serialize)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    truncated: bool,
    rows_affected: u64,
}

#[derive(Serialize)]
struct Entry {
    seq: i64,
    at: String,
    kind: String,
    text: String,
}

pub fn view(export: &SessionExport, chain: &ChainReport) -> SessionView {
    let mut calls: Vec<CallView> = Vec::new();
    let mut session_events = Vec::new();
    let mut frames: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut on_behalf_of = None;
    for e in &export.events {
        // A payload that is not JSON (a tampered row) is still listed, as text.
        let payload: Value = serde_json::from_str(&e.payload).unwrap_or_else(|_| Value::String(e.payload.clone()));
        if e.kind == "session_start"
            && let Some(human) = payload["identity"]["on_behalf_of"].as_str()
        {
            on_behalf_of = Some(visible(human));
        }
        let entry = Entry {
            seq: e.seq,
            at: format_ms(e.ts_ms),
            kind: e.kind.clone(),
            text: visible(&summary(&e.kind, &payload)),
        };
        let Some(call_id) = &e.call_id else {
            session_events.push(entry);
            continue;
        };
        let index = match calls.iter().position(|c| &c.call_id == call_id) {
            Some(i) => i,
            None => {
                calls.push(CallView { call_id: call_id.clone(), started: entry.at.clone(), ..Default::default() });
                calls.len() - 1
            }
        };
        let call = &mut calls[index];
        match e.kind.as_str() {
            "request" => {
                call.tool = text(&payload["tool"]);
                call.connection = text(&payload["connection"]);
                call.statement = visible(&text(&payload["statement"]));
                call.subject = text(&payload["identity"]["subject"]);
            }
            "decision" => call.rule = text(&payload["rule"]),
            "output" => {
                let list = frames.entry(call_id.clone()).or_default();
                for f in payload["frames"].as_array().into_iter().flatten() {
                    list.push(serde_json::json!([f[0], f[1], strip_ansi(f[2].as_str().unwrap_or(""))]));
                }
            }
            "result" => {
                call.status = text(&payload["status"]);
                call.message = visible(&text(&payload["message"]));
                if let Some(rule) = payload["rule"].as_str() {
                    call.rule = rule.to_owned();
                }
                call.masked = payload["masked"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
                    .unwrap_or_default();
                call.table = table(&payload["sql"]);
            }
            _ => {}
        }
        call.entries.push(entry);
    }
    let has_output = !frames.is_empty();
    for call in &mut calls {
        if let Some(list) = frames.remove(&call.call_id) {
            call.frame_count = list.len();
            call.frames = Some(Value::Array(list).to_string());
        }
    }
    SessionView {
        id: export.session.id.clone(),
        subject: export.session.subject.clone(),
        identity_kind: export.session.identity_kind.clone(),
        groups: export.session.groups.clone(),
        on_behalf_of,
        transport: export.session.transport.clone(),
        client: export.session.client.clone(),
        created: format_ms(export.session.created_ms),
        integrity: Integrity {
            ok: chain.is_valid(),
            events: chain.events,
            head: chain.head.clone(),
            broken_seq: chain.broken.as_ref().map(|b| b.seq),
            reason: chain.broken.as_ref().map(|b| b.reason.clone()),
        },
        calls,
        session_events,
        has_output,
    }
}

fn table(sql: &Value) -> Option<Table> {
    let columns = sql["columns"].as_array()?.iter().map(|c| text(&c["name"])).collect();
    let rows = sql["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().into_iter().flatten().map(cell).collect())
        .collect();
    Some(Table {
        columns,
        rows,
        truncated: sql["truncated"].as_bool().unwrap_or(false),
        rows_affected: sql["rows_affected"].as_u64().unwrap_or(0),
    })
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => visible(s),
        other => other.to_string(),
    }
}

/// A string field, or empty.
fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_default()
}

/// One line per event for the timeline.
fn summary(kind: &str, p: &Value) -> String {
    match kind {
        "session_start" => {
            format!("session opened by {} over {}", text(&p["identity"]["subject"]), text(&p["transport"]))
        }
        "request" => format!("{} on {}: {}", text(&p["tool"]), text(&p["connection"]), text(&p["statement"])),
        "decision" => format!("policy: {} by rule {}", text(&p["verdict"]["action"]), text(&p["rule"])),
        "approval_requested" => format!(
            "approval requested from {} (quorum {}), expires {}",
            join(&p["approvers"]),
            p["quorum"],
            p["expires_ms"].as_i64().map(format_ms).unwrap_or_default()
        ),
        "approval_vote" => {
            let reason = p["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default();
            let refused = match p["outcome"]["result"].as_str() {
                Some("refused") => format!(" (refused: {})", text(&p["outcome"]["refusal"])),
                _ => String::new(),
            };
            format!("{} voted {} via {}{reason}{refused}", text(&p["voter"]), text(&p["decision"]), text(&p["source"]))
        }
        "approval_decided" => {
            let reason = p["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default();
            format!("approval {} by {}{reason}", text(&p["state"]), join(&p["by"]))
        }
        "output" => {
            let frames = p["frames"].as_array().map_or(0, Vec::len);
            format!("{frames} output frame(s)")
        }
        "result" => {
            let mut s = format!("result: {}", text(&p["status"]));
            if let Some(m) = p["message"].as_str() {
                s.push_str(&format!(" — {m}"));
            }
            if let Some(n) = p["sql"]["row_count"].as_u64() {
                s.push_str(&format!(" ({n} row(s), {} affected)", p["sql"]["rows_affected"]));
            }
            s
        }
        "auth_failed" => format!("authentication refused ({}): {}", text(&p["context"]), text(&p["reason"])),
        _ => match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

fn join(v: &Value) -> String {
    v.as_array().into_iter().flatten().map(text).collect::<Vec<_>>().join(", ")
}

/// Remove ANSI escape sequences (CSI, OSC, and two-byte escapes) and other C0 controls except newline, carriage
/// return and tab: a replayed terminal shows text, never acts on control codes.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (and DCS, PM, APC, SOS): until BEL or ST (ESC \).
                Some(']' | 'P' | '^' | '_' | 'X') => {
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\r' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Control characters (ESC of ANSI sequences, NUL, backspace…) as their visible Unicode pictures (`␛`), so
/// statements and cells show that they were there without a terminal or browser acting on them.
pub fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            '\u{7f}' => '\u{2421}',
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC` (no time-zone database needed).
pub fn format_ms(ms: i64) -> String {
    let (year, month, day, hour, minute, second, milli) = gateway_core::store::utc_fields(ms);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{milli:03} UTC")
}

#[cfg(test)]
mod tests {
    use gateway_core::evidence::{ChainSummary, SessionRow};
    use gateway_core::record::StoredEvent;
    use serde_json::json;

    use super::*;

    fn event(seq: i64, kind: &str, payload: Value) -> StoredEvent {
        StoredEvent {
            session_id: "s1".into(),
            seq,
            call_id: Some("c1".into()),
            ts_ms: 1_000 + seq,
            kind: kind.into(),
            payload: payload.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// Command output with markup and escape sequences reaches the page only as an escaped attribute value of
    /// plain text frames, which app.js writes with `textContent`.
    #[test]
    fn terminal_output_is_inert_in_the_rendered_page() {
        let export = SessionExport {
            format: "airlock.session.v1".into(),
            exported_at_ms: 0,
            session: SessionRow {
                id: "s1".into(),
                created_ms: 0,
                subject: "agent".into(),
                identity_kind: "agent".into(),
                groups: vec![],
                transport: "http".into(),
                client: "<b>client</b>".into(),
            },
            chain: ChainSummary { algorithm: String::new(), genesis: String::new(), events: 3, head: None },
            events: vec![
                event(1, "request", json!({"tool": "ssh_run", "connection": "web-1", "statement": "cat x"})),
                event(
                    2,
                    "output",
                    json!({"frames": [[0, "o", "\u{1b}[31m<script>alert(1)</script>\n"], [250, "e", "\"onerror=x"]]}),
                ),
                event(3, "result", json!({"status": "completed", "masked": {"email": 2}})),
            ],
        };
        let chain = ChainReport {
            session_id: "s1".into(),
            events: 3,
            head: None,
            broken: Some(gateway_core::record::BrokenLink { seq: 2, reason: "hash mismatch".into() }),
        };
        let v = view(&export, &chain);
        let frames: Value = serde_json::from_str(v.calls[0].frames.as_deref().unwrap_or("")).unwrap_or_default();
        assert_eq!(frames[0], json!([0, "o", "<script>alert(1)</script>\n"]), "ANSI stripped, text kept");
        let env = super::super::templates();
        let viewer = json!({"subject": "r", "role": "reviewer", "csrf": "t", "can_vote": false});
        let html = env
            .get_template("replay.html")
            .and_then(|t| t.render(minijinja::context! { viewer, s => v }))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!html.contains("<script>alert") && !html.contains("<b>client"), "{html}");
        assert!(html.contains("data-frames=\"[[0,&quot;o&quot;,&quot;&lt;script&gt;"), "{html}");
        assert!(!html.contains('\u{1b}'));
        assert!(html.contains("Chain broken at event 2: hash mismatch"));
        assert!(html.contains("email: 2"));
    }

    #[test]
    fn the_human_an_agent_acted_for_is_shown() {
        let mut start = event(1, "session_start", json!({"identity": {"subject": "ci:bot", "on_behalf_of": "alice"}}));
        start.call_id = None;
        let export = SessionExport {
            format: "airlock.session.v1".into(),
            exported_at_ms: 0,
            session: SessionRow {
                id: "s1".into(),
                created_ms: 0,
                subject: "ci:bot".into(),
                identity_kind: "agent".into(),
                groups: vec![],
                transport: "http".into(),
                client: "c".into(),
            },
            chain: ChainSummary { algorithm: String::new(), genesis: String::new(), events: 1, head: None },
            events: vec![start],
        };
        let chain = ChainReport { session_id: "s1".into(), events: 1, head: None, broken: None };
        let v = view(&export, &chain);
        assert_eq!(v.on_behalf_of.as_deref(), Some("alice"));
        let viewer = json!({"subject": "r", "role": "reviewer", "csrf": "t", "can_vote": false});
        let html = super::super::templates()
            .get_template("replay.html")
            .and_then(|t| t.render(minijinja::context! { viewer, s => v }))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(html.contains("(agent) on behalf of alice"), "{html}");
    }

    #[test]
    fn ansi_sequences_and_controls_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[31mred\u{1b}[0m ok\n"), "red ok\n");
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}x\u{1b}]8;;http://e\u{1b}\\y"), "xy");
        assert_eq!(strip_ansi("a\u{0}b\u{8}c\td"), "abc\td");
    }

    #[test]
    fn controls_become_visible_pictures() {
        assert_eq!(visible("red\u{1b}[31m\u{0}\n"), "red\u{241b}[31m\u{2400}\n");
    }

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_ms(1_763_700_000_123), "2025-11-21 04:40:00.123 UTC");
    }
}
