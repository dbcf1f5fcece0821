//! Gateway outcomes → MCP tool results, in one place: structured content for programs, and a compact text
//! rendering (one status line, then a small table) for text-only models such as AutoGen's.

use gateway_core::mask::MaskCounts;
use gateway_core::pipeline::{CallStatus, ConnectionInfo, ExecResult, SqlResult, ToolOutcome};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Value, json};

/// Cells longer than this are shortened in the text rendering (structured content keeps them whole).
const MAX_CELL_CHARS: usize = 120;

/// The result of a `sql_query`, `ssh_run`, `kube_exec` or `await_approval` call. Anything but `completed` or `pending_approval` is an error result.
pub fn outcome(o: &ToolOutcome) -> CallToolResult {
    let mut structured = json!({
        "status": o.status,
        "session_id": o.session_id,
        "call_id": o.call_id,
        "replay_url": o.replay_url,
        "masked": o.masked.0,
    });
    if let Some(rule) = &o.rule {
        structured["rule"] = json!(rule);
    }
    if let Some(message) = &o.message {
        structured["message"] = json!(message);
    }
    if let Some(id) = &o.approval_id {
        structured["approval_id"] = json!(id);
    }
    if let Some(ms) = o.expires_at_ms {
        structured["expires_at_ms"] = json!(ms);
    }
    if !o.approved_by.is_empty() {
        structured["approved_by"] = json!(o.approved_by);
    }
    if let Some(sql) = &o.sql {
        structured["columns"] = json!(sql.columns.iter().map(|c| &c.name).collect::<Vec<_>>());
        structured["column_types"] = json!(sql.columns.iter().map(|c| &c.type_name).collect::<Vec<_>>());
        structured["rows"] = json!(sql.rows);
        structured["row_count"] = json!(sql.row_count);
        structured["rows_affected"] = json!(sql.rows_affected);
        structured["truncated"] = json!(sql.truncated);
        if let Some(t) = &sql.truncation {
            structured["truncation"] = json!(t);
        }
    }
    if let Some(exec) = &o.exec {
        structured["stdout"] = json!(exec.stdout);
        structured["stderr"] = json!(exec.stderr);
        structured["exit_code"] = json!(exec.exit_code);
        if let Some(sig) = &exec.signal {
            structured["signal"] = json!(sig);
        }
        structured["truncated"] = json!(exec.truncated);
        structured["timed_out"] = json!(exec.timed_out);
        structured["non_utf8"] = json!(exec.non_utf8);
        structured["duration_ms"] = json!(exec.duration_ms);
    }

    let mut text = status_line(o);
    if let Some(sql) = &o.sql
        && !sql.columns.is_empty()
    {
        text.push('\n');
        text.push_str(&table(sql));
    }
    if let Some(exec) = &o.exec {
        text.push_str(&output_blocks(exec));
    }
    let is_error = !matches!(o.status, CallStatus::Completed | CallStatus::PendingApproval);
    result(text, structured, is_error)
}

/// The result of `list_connections`.
pub fn connections(list: &[ConnectionInfo], session_id: &str) -> CallToolResult {
    let mut text = if list.is_empty() {
        "No connections are available to you.".to_owned()
    } else {
        format!("{} connection(s) available:", list.len())
    };
    for c in list {
        text.push_str(&format!(
            "\n- {} ({}, use {}{}{}){}",
            c.name,
            c.kind,
            c.tool,
            if c.read_only { ", read-only" } else { "" },
            if c.namespaces.is_empty() { String::new() } else { format!(", namespaces {}", c.namespaces.join(" ")) },
            if c.description.is_empty() { String::new() } else { format!(": {}", c.description) }
        ));
    }
    let structured = json!({ "status": CallStatus::Completed, "session_id": session_id, "connections": list });
    result(text, structured, false)
}

/// A call refused before it reached the pipeline (session bound to another identity, store down).
pub fn refused(message: &str) -> CallToolResult {
    let structured = json!({ "status": CallStatus::Error, "message": message });
    result(format!("status: error. {message}"), structured, true)
}

fn result(text: String, structured: Value, is_error: bool) -> CallToolResult {
    let mut r = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    r.structured_content = Some(structured);
    r
}

fn status_line(o: &ToolOutcome) -> String {
    let mut line = format!("status: {}", o.status.as_str());
    match (&o.sql, o.status) {
        (Some(sql), CallStatus::Completed) => {
            if sql.columns.is_empty() {
                line.push_str(&format!(", {} row(s) affected", sql.rows_affected));
            } else {
                line.push_str(&format!(", {} row(s)", sql.row_count));
            }
            if let Some(t) = &sql.truncation {
                line.push_str(&format!(
                    ", truncated at the {} (ask for fewer rows or narrow the query)",
                    match t {
                        gateway_core::connector::Truncation::Rows(n) => format!("{n}-row limit"),
                        gateway_core::connector::Truncation::Bytes(n) => format!("{n}-byte output limit"),
                    }
                ));
            }
        }
        _ => {
            if let Some(rule) = &o.rule
                && o.status != CallStatus::Completed
            {
                line.push_str(&format!(", rule {rule}"));
            }
        }
    }
    if !o.masked.is_empty() {
        line.push_str(&format!(", masked: {}", masked_summary(&o.masked)));
    }
    line.push('.');
    if let Some(message) = &o.message {
        line.push(' ');
        line.push_str(message);
        if !message.ends_with('.') {
            line.push('.');
        }
    }
    if let Some(id) = &o.approval_id
        && o.status == CallStatus::PendingApproval
        && !o.message.as_deref().unwrap_or_default().contains("await_approval")
    {
        line.push_str(&format!(" Approval {id} is pending; call await_approval with this approval_id for the result."));
    }
    if !o.approved_by.is_empty() {
        line.push_str(&format!(" Approved by {}.", o.approved_by.join(", ")));
    }
    line.push_str(&format!(" Replay: {}", o.replay_url));
    line
}

/// stdout and stderr as fenced blocks (a fence longer than any backtick run inside, so output cannot close it).
fn output_blocks(exec: &ExecResult) -> String {
    let mut out = String::new();
    for (name, text) in [("stdout", &exec.stdout), ("stderr", &exec.stderr)] {
        if text.is_empty() {
            if name == "stdout" {
                out.push_str("\nstdout: (empty)");
            }
            continue;
        }
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        out.push_str(&format!("\n{name}:\n{fence}\n{}\n{fence}", text.trim_end_matches('\n')));
    }
    out
}

fn masked_summary(counts: &MaskCounts) -> String {
    counts.0.iter().map(|(k, n)| format!("{k} x{n}")).collect::<Vec<_>>().join(", ")
}

fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    if s.chars().count() > MAX_CELL_CHARS {
        let cut: String = s.chars().take(MAX_CELL_CHARS).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// A markdown table: models read it well and it stays compact.
fn table(sql: &SqlResult) -> String {
    let mut out = String::new();
    let header: Vec<String> = sql.columns.iter().map(|c| c.name.replace('|', "\\|")).collect();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in &sql.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    if sql.rows.is_empty() {
        out.push_str("(no rows)\n");
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::connector::SqlColumn;

    fn sample(status: CallStatus) -> ToolOutcome {
        ToolOutcome {
            status,
            session_id: "s1".into(),
            call_id: "c1".into(),
            replay_url: "http://x/sessions/s1#call-c1".into(),
            rule: None,
            message: None,
            sql: None,
            exec: None,
            masked: MaskCounts::default(),
            approval_id: None,
            expires_at_ms: None,
            approved_by: Vec::new(),
        }
    }

    #[test]
    fn blocked_call_is_an_error_naming_rule_and_reason() {
        let mut o = sample(CallStatus::Blocked);
        o.rule = Some("block-destructive-ddl".into());
        o.message = Some("DROP is never run".into());
        let r = outcome(&o);
        assert_eq!(r.is_error, Some(true));
        let text = &r.content[0].as_text().expect("text").text;
        assert!(text.contains("blocked") && text.contains("block-destructive-ddl") && text.contains("never run"));
        let s = r.structured_content.expect("structured");
        assert_eq!(s["status"], "blocked");
        assert_eq!(s["rule"], "block-destructive-ddl");
    }

    #[test]
    fn command_output_renders_fenced_with_exit_status() {
        let mut o = sample(CallStatus::Completed);
        o.message = Some("exit 3".into());
        o.exec = Some(ExecResult {
            stdout: "has ``` inside\n".into(),
            stderr: "boom\n".into(),
            exit_code: Some(3),
            ..Default::default()
        });
        let r = outcome(&o);
        assert_eq!(r.is_error, Some(false), "a command that ran is not a tool error, whatever its exit status");
        let text = &r.content[0].as_text().expect("text").text;
        assert!(text.starts_with("status: completed. exit 3."), "{text}");
        assert!(text.contains("stdout:\n````\nhas ``` inside\n````"), "{text}");
        assert!(text.contains("stderr:\n```\nboom\n```"), "{text}");
        let s = r.structured_content.expect("structured");
        assert_eq!(s["exit_code"], 3);
        assert_eq!(s["stderr"], "boom\n");
    }

    #[test]
    fn completed_select_renders_a_table_and_structured_rows() {
        let mut o = sample(CallStatus::Completed);
        o.rule = Some("allow-reads".into());
        o.masked.add("email", 1);
        o.sql = Some(SqlResult {
            columns: vec![
                SqlColumn { name: "id".into(), type_name: "INT".into() },
                SqlColumn { name: "email".into(), type_name: "TEXT".into() },
            ],
            rows: vec![vec![json!(1), json!("[EMAIL]")], vec![json!(2), Value::Null]],
            row_count: 2,
            rows_affected: 0,
            truncated: false,
            truncation: None,
            binary_values: false,
        });
        let r = outcome(&o);
        assert_eq!(r.is_error, Some(false));
        let text = &r.content[0].as_text().expect("text").text;
        assert!(text.starts_with("status: completed, 2 row(s), masked: email x1."), "{text}");
        assert!(text.contains("| id | email |") && text.contains("| 2 | NULL |"), "{text}");
        assert!(!text.contains("allow-reads"), "rules are only named when they refuse: {text}");
        let s = r.structured_content.expect("structured");
        assert_eq!(s["columns"], json!(["id", "email"]));
        assert_eq!(s["row_count"], 2);
        assert_eq!(s["masked"]["email"], 1);
    }
}
