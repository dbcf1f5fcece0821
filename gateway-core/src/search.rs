//! Search over recorded tool calls, for the replay UI's `/sessions` page.
//!
//! The recorder keeps one `call_index` row per call, written in the same transaction as the call's events
//! ([`index_event`], called from [`Recorder::append_all`]): a `request` inserts it (status `pending`), a
//! `decision` sets the rule, each `output` appends its (masked) text up to [`OUTPUT_CAP`] characters, and a
//! `result` sets status, rule, finish time and approval id. The index is never evidence (the chain is) and holds
//! only what the events hold, which is masked already.
//!
//! Full text covers the masked statement and output: SQLite FTS5 (`call_fts`, external content over
//! `call_index`) and Postgres `tsvector` (`simple` configuration, GIN index). The user's text is always searched
//! as one phrase of whole words, bound as a parameter: on SQLite it is quoted as an FTS5 string (so FTS syntax
//! such as `OR`, `NEAR(`, `*` or a stray `"` is just text), on Postgres it goes through `phraseto_tsquery`,
//! which accepts any input. Word boundaries follow each backend's tokenizer (FTS5 `unicode61` splits
//! `alice@example.com` into three words; Postgres keeps it as one), and the query is tokenized the same way as
//! the text, so a phrase that was recorded is found on both.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::error::Result;
use crate::record::{EventKind, Recorder};
use crate::store::Backend;

/// Characters of the masked statement kept per call for search (the chain keeps all of it).
pub const STATEMENT_CAP: usize = 16_384;

/// Characters of masked command output kept per call for full-text search (the chain keeps all of it).
///
/// With [`STATEMENT_CAP`], at most 64 Ki characters of text per call: Postgres refuses a `tsvector` over 1 MB,
/// and 64 Ki characters of distinct multi-byte words (the worst case) make about 0.8 MB, so indexing can never
/// fail, and with it the recording of a call.
pub const OUTPUT_CAP: usize = 49_152;

/// Largest page size; larger requests are capped.
pub const MAX_PER_PAGE: u32 = 200;

/// Page size used when a query asks for 0.
pub const DEFAULT_PER_PAGE: u32 = 50;

/// A search over recorded calls. Every filter is optional and they combine with AND; empty strings count as
/// absent (HTML forms send them). Results are newest first: by start time, or, for text searches on SQLite, by
/// recording order (the same but for calls started within the same few milliseconds by concurrent writers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallQuery {
    /// Exact subject (agent identity) of the caller.
    pub subject: Option<String>,
    /// Exact name of the human the agent acted for.
    pub on_behalf_of: Option<String>,
    /// Exact connection name.
    pub connection: Option<String>,
    /// Exact tool name (`sql_query`, `ssh_run`, `kube_exec`).
    pub tool: Option<String>,
    /// Exact status: `pending` (no result yet), `completed`, `blocked`, `pending_approval`, `denied`, `expired`,
    /// `error`.
    pub status: Option<String>,
    /// Exact name of the deciding policy rule.
    pub rule: Option<String>,
    /// Calls that started at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Calls that started before this time (ms since the epoch, exclusive).
    pub until_ms: Option<i64>,
    /// Words that must appear, as a phrase, in the masked statement or output.
    pub text: Option<String>,
    /// Calls of one session.
    pub session_id: Option<String>,
    /// 0-based page number.
    pub page: u32,
    /// Calls per page: 0 means [`DEFAULT_PER_PAGE`], more than [`MAX_PER_PAGE`] is capped.
    pub per_page: u32,
}

/// One call in a search result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call_id: String,
    pub session_id: String,
    pub subject: String,
    /// The human the agent acted for, when it said.
    pub on_behalf_of: Option<String>,
    pub connection: String,
    pub tool: String,
    /// `pending` until the result is recorded, then the result's status.
    pub status: String,
    pub rule: Option<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// The masked statement, first 500 characters.
    pub statement: String,
    pub approval_id: Option<String>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPage {
    pub calls: Vec<CallSummary>,
    pub page: u32,
    /// The page size actually used (after the default and the cap).
    pub per_page: u32,
    /// True when a further page has at least one call.
    pub has_more: bool,
}

/// Postgres refuses NUL in text; the events keep it (escaped in JSON), the index drops it.
fn clean(text: &str) -> Cow<'_, str> {
    if text.contains('\0') { Cow::Owned(text.replace('\0', "")) } else { Cow::Borrowed(text) }
}

fn str_at<'a>(payload: &'a Value, pointer: &str) -> Option<&'a str> {
    payload.pointer(pointer).and_then(Value::as_str)
}

/// The first `max` characters of `text`.
fn head_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Update the call index for one event being appended in `conn`'s transaction: at most one statement per
/// event, and none for events that do not change the index (votes, session start, ...). An error aborts the
/// append, so the index and the chain stay in step.
pub(crate) async fn index_event(
    conn: &mut sqlx::AnyConnection,
    session_id: &str,
    call_id: Option<&str>,
    kind: EventKind,
    ts_ms: i64,
    payload: &Value,
) -> Result<()> {
    let Some(call_id) = call_id else { return Ok(()) };
    match kind {
        EventKind::Request => {
            // ON CONFLICT: a call id is indexed once; and a unique violation here must never be mistaken by
            // append_all for a chain conflict between replicas.
            sqlx::query(
                "INSERT INTO call_index (call_id, session_id, subject, connection, tool, status, started_ms, \
                 statement, on_behalf_of) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8) \
                 ON CONFLICT (call_id) DO NOTHING",
            )
            .bind(call_id)
            .bind(session_id)
            .bind(clean(str_at(payload, "/identity/subject").unwrap_or_default()).into_owned())
            .bind(clean(str_at(payload, "/connection").unwrap_or_default()).into_owned())
            .bind(clean(str_at(payload, "/tool").unwrap_or_default()).into_owned())
            .bind(ts_ms)
            .bind(head_chars(&clean(str_at(payload, "/statement").unwrap_or_default()), STATEMENT_CAP).to_owned())
            .bind(str_at(payload, "/identity/on_behalf_of").map(|h| clean(h).into_owned()))
            .execute(conn)
            .await?;
        }
        EventKind::Decision => {
            let Some(rule) = str_at(payload, "/rule") else { return Ok(()) };
            sqlx::query("UPDATE call_index SET rule = $1 WHERE call_id = $2")
                .bind(clean(rule).into_owned())
                .bind(call_id)
                .execute(conn)
                .await?;
        }
        EventKind::Output => {
            let mut text = String::new();
            for frame in payload.get("frames").and_then(Value::as_array).into_iter().flatten() {
                if let Some(t) = frame.get(2).and_then(Value::as_str) {
                    text.push_str(t);
                }
                if text.len() >= OUTPUT_CAP * 4 {
                    // Enough for any remaining room (a character is at most 4 bytes).
                    break;
                }
            }
            if text.is_empty() {
                return Ok(());
            }
            let text = head_chars(&clean(&text), OUTPUT_CAP).to_owned();
            // Rows already at the cap are left alone (and so is their FTS entry). The cap is an i32: Postgres has
            // substr(text, integer, integer), not a bigint variant.
            let cap = OUTPUT_CAP as i32;
            sqlx::query(
                "UPDATE call_index SET output = substr(output || $1, 1, $2) WHERE call_id = $3 AND length(output) < $4",
            )
            .bind(text)
            .bind(cap)
            .bind(call_id)
            .bind(cap)
            .execute(conn)
            .await?;
        }
        EventKind::Result => {
            let status = str_at(payload, "/status").unwrap_or("error");
            sqlx::query(
                "UPDATE call_index SET status = $1, rule = COALESCE($2, rule), finished_ms = $3, \
                 approval_id = COALESCE($4, approval_id) WHERE call_id = $5",
            )
            .bind(clean(status).into_owned())
            .bind(str_at(payload, "/rule").map(|r| clean(r).into_owned()))
            .bind(ts_ms)
            .bind(str_at(payload, "/approval_id").map(|a| clean(a).into_owned()))
            .bind(call_id)
            .execute(conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The user's text as one FTS5 phrase: a double-quoted string (inner quotes doubled) is never FTS syntax.
fn fts5_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

enum Arg {
    Text(String),
    Int(i64),
}

/// A filter value, or `None` when absent or blank.
fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Recorder {
    /// Recorded calls matching `q`, newest first, one page at a time.
    pub async fn search_calls(&self, q: &CallQuery) -> Result<CallPage> {
        let per_page = match q.per_page {
            0 => DEFAULT_PER_PAGE,
            n => n.min(MAX_PER_PAGE),
        };
        // Only fixed fragments are appended to the SQL; every value is a bound parameter.
        let mut sql = String::from(
            "SELECT call_id, session_id, subject, connection, tool, status, rule, started_ms, finished_ms, \
             substr(statement, 1, 500), approval_id, on_behalf_of FROM call_index WHERE 1 = 1",
        );
        let mut args = Vec::new();
        let mut filter = |fragment: &str, arg: Arg| {
            args.push(arg);
            sql.push_str(&fragment.replace("$?", &format!("${}", args.len())));
        };
        // SQLite text searches are driven by the FTS match list in descending rowid (= recording) order, which
        // stops at the page's end instead of sorting every match of a common word (300 ms on 100k calls). The
        // unary `+` keeps the planner from preferring a filter column's index over that list.
        let fts_driven = self.store().backend() == Backend::Sqlite && present(&q.text).is_some();
        let prefix = if fts_driven { " AND +" } else { " AND " };
        for (column, value) in [
            ("subject = $?", &q.subject),
            ("on_behalf_of = $?", &q.on_behalf_of),
            ("connection = $?", &q.connection),
            ("tool = $?", &q.tool),
            ("status = $?", &q.status),
            ("rule = $?", &q.rule),
            ("session_id = $?", &q.session_id),
        ] {
            if let Some(v) = present(value) {
                filter(&format!("{prefix}{column}"), Arg::Text(clean(v).into_owned()));
            }
        }
        if let Some(since) = q.since_ms {
            filter(&format!("{prefix}started_ms >= $?"), Arg::Int(since));
        }
        if let Some(until) = q.until_ms {
            filter(&format!("{prefix}started_ms < $?"), Arg::Int(until));
        }
        if let Some(text) = present(&q.text) {
            let text = clean(text);
            match self.store().backend() {
                Backend::Sqlite => filter(
                    " AND id IN (SELECT rowid FROM call_fts WHERE call_fts MATCH $?)",
                    Arg::Text(fts5_phrase(&text)),
                ),
                Backend::Postgres => filter(" AND fts @@ phraseto_tsquery('simple', $?)", Arg::Text(text.into_owned())),
            }
        }
        // One row more than the page tells whether another page exists.
        let order =
            if fts_driven { " ORDER BY id DESC LIMIT $?" } else { " ORDER BY started_ms DESC, call_id DESC LIMIT $?" };
        filter(order, Arg::Int(i64::from(per_page) + 1));
        filter(" OFFSET $?", Arg::Int(i64::from(q.page) * i64::from(per_page)));

        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.store().pool()).await?;
        let has_more = rows.len() > per_page as usize;
        let calls = rows
            .iter()
            .take(per_page as usize)
            .map(|r| {
                Ok(CallSummary {
                    call_id: r.try_get(0)?,
                    session_id: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    connection: r.try_get(3)?,
                    tool: r.try_get(4)?,
                    status: r.try_get(5)?,
                    rule: r.try_get(6)?,
                    started_ms: r.try_get(7)?,
                    finished_ms: r.try_get(8)?,
                    statement: r.try_get(9)?,
                    approval_id: r.try_get(10)?,
                    on_behalf_of: r.try_get(11)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CallPage { calls, page: q.page, per_page, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_one_fts5_string() {
        assert_eq!(fts5_phrase("a b"), "\"a b\"");
        assert_eq!(fts5_phrase("say \"hi\" OR x*"), "\"say \"\"hi\"\" OR x*\"");
    }

    #[test]
    fn head_chars_counts_characters_not_bytes() {
        assert_eq!(head_chars("héllo", 2), "hé");
        assert_eq!(head_chars("ab", 5), "ab");
    }
}
