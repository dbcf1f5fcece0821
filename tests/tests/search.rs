//! Search over recorded calls (the backend of the web UI's `/sessions` page), on SQLite and Postgres stores:
//! every filter, combinations, paging, full text over masked statements and command output, masked values not
//! findable by their raw value, hostile search text, retention purging the index, and the migration's backfill
//! of calls recorded before the index existed.

use airlock_tests::airlock::Airlock;
use gateway_core::config::Config;
use gateway_core::identity::Identity;
use gateway_core::pipeline::{CallStatus, Caller, Gateway, SqlRequest, ToolRequest};
use gateway_core::record::{EventKind, Recorder};
use gateway_core::search::{CallPage, CallQuery, CallSummary};
use serde_json::json;
use sqlx::Row;

async fn caller(gw: &Gateway, subject: &str) -> Caller {
    let identity = Identity::agent(subject, &["agents"]);
    let session_id = gw.open_session(&identity, "test", "search").await.expect("session");
    Caller { identity, session_id }
}

async fn sql(gw: &Gateway, c: &Caller, query: &str) -> CallStatus {
    let req = ToolRequest::Sql(SqlRequest { connection: "shop".into(), query: query.into(), max_rows: None });
    gw.call(c, req).await.status
}

async fn search(rec: &Recorder, q: CallQuery) -> CallPage {
    rec.search_calls(&q).await.unwrap_or_else(|e| panic!("search {q:?}: {e}"))
}

fn ids(calls: &[CallSummary]) -> Vec<&str> {
    calls.iter().map(|c| c.call_id.as_str()).collect()
}

/// Record an `ssh_run` call with command output directly through the recorder (no sshd needed), leaving it
/// without a result so its `pending` status can be seen; returns its call id.
async fn record_command(rec: &Recorder, c: &Caller, command: &str, output: &[&str]) -> String {
    let call_id = uuid::Uuid::now_v7().to_string();
    let request = json!({"tool": "ssh_run", "connection": "web", "statement": command, "identity": c.identity});
    let decision = json!({"verdict": {"action": "allow"}, "rule": "allow-read-only-shell"});
    rec.append_all(&c.session_id, Some(&call_id), &[(EventKind::Request, &request), (EventKind::Decision, &decision)])
        .await
        .expect("request");
    for (i, text) in output.iter().enumerate() {
        let frames = json!({"frames": [[i * 10, "o", text], [i * 10 + 1, "e", ""]]});
        rec.append(&c.session_id, Some(&call_id), EventKind::Output, &frames).await.expect("output");
    }
    call_id
}

async fn finish(rec: &Recorder, c: &Caller, call_id: &str) {
    let result = json!({"status": "completed", "rule": "allow-read-only-shell", "approval_id": null, "exec_ms": 3});
    rec.append(&c.session_id, Some(call_id), EventKind::Result, &result).await.expect("result");
}

#[tokio::test]
async fn calls_are_found_by_every_filter_by_text_and_page_by_page() {
    for (store, _target, airlock) in Airlock::on_each_store().await {
        let config = Config::load(&airlock.config).expect("config");
        let gw = Gateway::start(config).await.expect("gateway");
        let rec = gw.recorder();
        let alice = caller(&gw, "alice-bot").await;
        // bob acts for a human (an OIDC claim or a trusted agent's header in real life).
        let bob = {
            let mut identity = Identity::agent("bob-bot", &["agents"]);
            identity.on_behalf_of = Some("jane@example.com".into());
            let session_id = gw.open_session(&identity, "test", "search").await.expect("session");
            Caller { identity, session_id }
        };
        let carol = caller(&gw, "carol-bot").await;

        assert_eq!(sql(&gw, &alice, "SELECT 'zebracorn' AS animal").await, CallStatus::Completed, "{store}");
        assert_eq!(sql(&gw, &alice, "DROP TABLE customers").await, CallStatus::Blocked, "{store}");
        // Masked before it is recorded: the raw address is in neither the chain nor the index.
        assert_eq!(sql(&gw, &bob, "SELECT 'jane.doe@corp.example' AS email").await, CallStatus::Completed);
        for n in 0..5 {
            assert_eq!(sql(&gw, &bob, &format!("SELECT {n} AS n")).await, CallStatus::Completed, "{store}");
        }
        let ssh = record_command(rec, &carol, "uptime", &["load average: haystack\r\n", "second chunk\r\n"]).await;

        let all = search(rec, CallQuery::default()).await;
        assert_eq!(all.calls.len(), 9, "{store}: {all:?}");
        assert!(!all.has_more && all.page == 0 && all.per_page == 50, "{store}: defaults");
        assert!(all.calls.windows(2).all(|w| w[0].started_ms >= w[1].started_ms), "{store}: newest first");
        assert_eq!(all.calls[0].call_id, ssh, "{store}: the newest call comes first");
        assert_eq!(all.calls[0].status, "pending", "{store}: no result yet");
        assert_eq!(all.calls[0].rule.as_deref(), Some("allow-read-only-shell"), "{store}: rule from the decision");
        assert_eq!(all.calls[0].finished_ms, None);

        let q = |f: fn(&mut CallQuery)| {
            let mut q = CallQuery::default();
            f(&mut q);
            q
        };
        let page = search(rec, q(|q| q.subject = Some("alice-bot".into()))).await;
        assert_eq!(page.calls.len(), 2, "{store}: subject");
        assert!(page.calls.iter().all(|c| c.subject == "alice-bot" && c.session_id == alice.session_id));
        let page = search(rec, q(|q| q.on_behalf_of = Some("jane@example.com".into()))).await;
        assert_eq!(page.calls.len(), 6, "{store}: on behalf of");
        assert!(
            page.calls.iter().all(|c| c.subject == "bob-bot" && c.on_behalf_of.as_deref() == Some("jane@example.com"))
        );
        assert!(all.calls.iter().filter(|c| c.subject != "bob-bot").all(|c| c.on_behalf_of.is_none()), "{store}");
        let page = search(rec, q(|q| q.session_id = Some(String::new()))).await;
        assert_eq!(page.calls.len(), 9, "{store}: an empty filter (as forms send) is no filter");
        let page = search(rec, CallQuery { session_id: Some(bob.session_id.clone()), ..CallQuery::default() }).await;
        assert_eq!(page.calls.len(), 6, "{store}: session");
        let page = search(rec, q(|q| q.connection = Some("web".into()))).await;
        assert_eq!(ids(&page.calls), [ssh.as_str()], "{store}: connection");
        let page = search(rec, q(|q| q.tool = Some("sql_query".into()))).await;
        assert_eq!(page.calls.len(), 8, "{store}: tool");
        let blocked = search(rec, q(|q| q.status = Some("blocked".into()))).await;
        assert_eq!(blocked.calls.len(), 1, "{store}: status");
        let drop = &blocked.calls[0];
        assert!(drop.statement.contains("DROP TABLE") && drop.finished_ms.is_some(), "{store}: {drop:?}");
        let rule = drop.rule.clone().expect("a blocked call names its rule");
        let page = search(rec, CallQuery { rule: Some(rule.clone()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), [drop.call_id.as_str()], "{store}: rule {rule}");
        let page = search(rec, q(|q| q.status = Some("no-such-status".into()))).await;
        assert!(page.calls.is_empty(), "{store}");

        // Time range: since is inclusive, until exclusive.
        let middle = all.calls[4].started_ms;
        let since = search(rec, CallQuery { since_ms: Some(middle), ..CallQuery::default() }).await;
        let until = search(rec, CallQuery { until_ms: Some(middle), ..CallQuery::default() }).await;
        assert!(since.calls.iter().all(|c| c.started_ms >= middle), "{store}");
        assert!(until.calls.iter().all(|c| c.started_ms < middle), "{store}");
        assert_eq!(since.calls.len() + until.calls.len(), 9, "{store}: the range splits the calls");
        assert!(!until.calls.is_empty() && !since.calls.is_empty(), "{store}");

        // Combinations.
        let page = search(
            rec,
            q(|q| {
                q.subject = Some("alice-bot".into());
                q.status = Some("completed".into());
                q.tool = Some("sql_query".into());
            }),
        )
        .await;
        assert_eq!(page.calls.len(), 1, "{store}: combined");
        assert!(page.calls[0].statement.contains("zebracorn"), "{store}");
        let page = search(
            rec,
            q(|q| {
                q.subject = Some("alice-bot".into());
                q.text = Some("haystack".into());
            }),
        )
        .await;
        assert!(page.calls.is_empty(), "{store}: text combined with another caller's subject");

        // Full text: a word of a statement, a word of command output, a phrase across output chunks.
        let page = search(rec, q(|q| q.text = Some("zebracorn".into()))).await;
        assert_eq!(page.calls.len(), 1, "{store}: word in a statement");
        assert_eq!(page.calls[0].subject, "alice-bot");
        let page = search(rec, q(|q| q.text = Some("HAYSTACK".into()))).await;
        assert_eq!(ids(&page.calls), [ssh.as_str()], "{store}: word in output, any case");
        let page = search(rec, CallQuery { text: Some("second chunk".into()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), [ssh.as_str()], "{store}: phrase in a later output event");
        let page = search(rec, CallQuery { text: Some("chunk second".into()), ..CallQuery::default() }).await;
        assert!(page.calls.is_empty(), "{store}: a phrase, not a bag of words");
        // The masked address is findable by neither the whole raw value nor its masked-away parts.
        for raw in ["jane.doe@corp.example", "jane.doe", "jane"] {
            let page = search(rec, CallQuery { text: Some(raw.into()), ..CallQuery::default() }).await;
            assert!(page.calls.is_empty(), "{store}: raw masked value {raw:?} found: {page:?}");
        }
        // Hostile or odd text is searched as text, never an error.
        for text in
            ["\"", "zebra\"corn", "a OR b", "NEAR(a b)", "*", "x*", "-", "^a", "'; DROP TABLE call_index; --", "\0"]
        {
            let page = search(rec, CallQuery { text: Some(text.into()), ..CallQuery::default() }).await;
            assert!(page.calls.is_empty(), "{store}: {text:?} matched {page:?}");
        }
        let page = search(rec, CallQuery { text: Some("\"zebracorn\"".into()), ..CallQuery::default() }).await;
        assert_eq!(page.calls.len(), 1, "{store}: quotes are punctuation");

        // The result arrives: status and finish time follow.
        finish(rec, &carol, &ssh).await;
        let page = search(rec, q(|q| q.tool = Some("ssh_run".into()))).await;
        assert_eq!((page.calls[0].status.as_str(), page.calls[0].finished_ms.is_some()), ("completed", true));

        // Paging: every call exactly once, newest first, has_more until the last page.
        let mut seen = Vec::new();
        for page_no in 0..5 {
            let page = search(rec, CallQuery { page: page_no, per_page: 2, ..CallQuery::default() }).await;
            assert_eq!((page.page, page.per_page), (page_no, 2));
            assert_eq!(page.has_more, page_no < 4, "{store}: page {page_no}");
            assert_eq!(page.calls.len(), if page_no < 4 { 2 } else { 1 }, "{store}: page {page_no}");
            seen.extend(page.calls.into_iter().map(|c| c.call_id));
        }
        assert_eq!(seen, ids(&all.calls), "{store}: pages concatenate to the whole list");
        let beyond = search(rec, CallQuery { page: 9, per_page: 2, ..CallQuery::default() }).await;
        assert!(beyond.calls.is_empty() && !beyond.has_more, "{store}");
        let capped = search(rec, CallQuery { per_page: 10_000, ..CallQuery::default() }).await;
        assert_eq!(capped.per_page, 200, "{store}: per_page is capped");
    }
}

async fn index_rows(gw: &Gateway, session: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM call_index WHERE session_id = $1")
        .bind(session)
        .fetch_one(gw.store().pool())
        .await
        .expect("count")
        .try_get::<i64, _>(0)
        .expect("n")
}

#[tokio::test]
async fn a_purged_session_leaves_nothing_in_the_index() {
    const DAY_MS: i64 = 86_400_000;
    for (store, _target, airlock) in Airlock::on_each_store().await {
        let mut text = std::fs::read_to_string(&airlock.config).expect("config");
        text.push_str("\n[retention]\ndays = 7\n");
        std::fs::write(&airlock.config, text).expect("write");
        let config = Config::load(&airlock.config).expect("config");
        let gw = Gateway::start(config.clone()).await.expect("gateway");
        let rec = gw.recorder();
        let c = caller(&gw, "purged-bot").await;
        assert_eq!(sql(&gw, &c, "SELECT 'zebracorn'").await, CallStatus::Completed, "{store}");
        let ssh = record_command(rec, &c, "uptime", &["haystack\r\n"]).await;
        finish(rec, &c, &ssh).await;
        assert_eq!(index_rows(&gw, &c.session_id).await, 2, "{store}");

        let later = gateway_core::store::now_ms() + 8 * DAY_MS;
        let purged = gateway_core::retention::purge_expired(rec, &config, later, false).await.expect("purge");
        assert!(purged.iter().any(|p| p.session_id == c.session_id), "{store}: {purged:?}");
        assert_eq!(index_rows(&gw, &c.session_id).await, 0, "{store}: index rows go with the session");
        for text in ["zebracorn", "haystack"] {
            let page = search(rec, CallQuery { text: Some(text.into()), ..CallQuery::default() }).await;
            assert!(page.calls.is_empty(), "{store}: {text} still found after the purge");
        }
        if store == "sqlite" {
            // The FTS index agrees with its content table: the purged rows' terms are gone too.
            sqlx::query("INSERT INTO call_fts (call_fts) VALUES ('integrity-check')")
                .execute(gw.store().pool())
                .await
                .expect("FTS index in step with call_index");
        }
    }
}

/// Stores created before the index: the migration indexes the calls already recorded.
#[tokio::test]
async fn the_migration_indexes_calls_recorded_before_it() {
    use std::borrow::Cow;
    use std::path::Path;
    for (store, _target, airlock) in Airlock::on_each_store().await {
        let s = gateway_core::store::Store::connect(&airlock.store_url, None).await.expect("store");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(store);
        let mut before = sqlx::migrate::Migrator::new(dir.as_path()).await.expect("migrations");
        // Everything before 0004 (the index).
        before.migrations = Cow::Owned(before.migrations.iter().filter(|m| m.version < 4).cloned().collect());
        before.run(s.pool()).await.expect("old migrations");
        // Events as older versions recorded them (the index only reads payloads; hashes are not checked here).
        let events: [(&str, i64, &str, i64, &str, String); 8] = [
            ("s1", 1, "c1", 1000, "request", json!({"tool": "sql_query", "connection": "shop", "statement": "SELECT zebracorn", "identity": {"subject": "old-bot"}}).to_string()),
            ("s1", 2, "c1", 1001, "decision", json!({"rule": "allow-reads", "verdict": {"action": "allow"}}).to_string()),
            ("s1", 3, "c1", 1002, "result", json!({"status": "completed", "rule": "allow-reads", "approval_id": null}).to_string()),
            ("s1", 4, "c2", 2000, "request", json!({"tool": "ssh_run", "connection": "web", "statement": "uptime", "identity": {"subject": "old-bot"}}).to_string()),
            ("s1", 5, "c2", 2001, "decision", json!({"rule": "needs-approval", "verdict": {"action": "require_approval"}}).to_string()),
            ("s1", 6, "c2", 2002, "output", json!({"frames": [[0, "o", "load "], [1, "e", "haystack\u{0}"]]}).to_string()),
            ("s1", 7, "c2", 2003, "result", json!({"status": "pending_approval", "rule": "needs-approval", "approval_id": "a1"}).to_string()),
            ("s1", 8, "c3", 3000, "request", json!({"tool": "sql_query", "connection": "shop", "statement": "SELECT 1"}).to_string()),
        ];
        sqlx::query("INSERT INTO sessions (id, created_ms, subject, identity_kind, groups_json, transport, client) VALUES ('s1', 1, 'session-subject', 'agent', '[]', 'test', '')")
            .execute(s.pool())
            .await
            .expect("session");
        for (session, seq, call, ts, kind, payload) in events {
            sqlx::query(
                "INSERT INTO events (session_id, seq, call_id, ts_ms, kind, payload, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, '', '')",
            )
            .bind(session)
            .bind(seq)
            .bind(call)
            .bind(ts)
            .bind(kind)
            .bind(payload)
            .execute(s.pool())
            .await
            .expect("event");
        }
        s.migrate().await.expect("migrates with the index");
        let rec = Recorder::new(s.clone());
        let all = search(&rec, CallQuery::default()).await;
        assert_eq!(ids(&all.calls), ["c3", "c2", "c1"], "{store}: {all:?}");
        let [c3, c2, c1] = &all.calls[..] else { panic!("three calls") };
        assert_eq!((c3.status.as_str(), c3.subject.as_str(), c3.rule.as_deref()), ("pending", "session-subject", None));
        assert_eq!(
            (c2.status.as_str(), c2.rule.as_deref(), c2.approval_id.as_deref(), c2.finished_ms),
            ("pending_approval", Some("needs-approval"), Some("a1"), Some(2003)),
            "{store}"
        );
        assert_eq!((c1.status.as_str(), c1.subject.as_str(), c1.tool.as_str()), ("completed", "old-bot", "sql_query"));
        let page = search(&rec, CallQuery { text: Some("load haystack".into()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), ["c2"], "{store}: output backfilled, frames in order");
        let page = search(&rec, CallQuery { text: Some("zebracorn".into()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), ["c1"], "{store}: statements backfilled");
        s.close().await;
    }
}

/// The worst case for a Postgres `tsvector` (which refuses more than 1 MB): tens of thousands of distinct
/// multi-byte words in both statement and output. The index caps its text, so the call is still recorded.
#[tokio::test]
async fn a_statement_of_distinct_words_beyond_the_index_caps_is_still_recorded() {
    let ranges = [(0x4E00_u32, 20_900_u32), (0xAC00, 11_170), (0x2_0000, 42_000)];
    let words: Vec<String> =
        ranges.iter().flat_map(|&(start, n)| (start..start + n).filter_map(char::from_u32).map(String::from)).collect();
    let text = words.join(" ");
    for (store, _target, airlock) in Airlock::on_each_store().await {
        let config = Config::load(&airlock.config).expect("config");
        let gw = Gateway::start(config).await.expect("gateway");
        let rec = gw.recorder();
        let c = caller(&gw, "huge-bot").await;
        let call = record_command(rec, &c, &text, &[text.as_str(), text.as_str()]).await;
        finish(rec, &c, &call).await;
        let page = search(rec, CallQuery { subject: Some("huge-bot".into()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), [call.as_str()], "{store}");
        assert_eq!(page.calls[0].statement.chars().count(), 500, "{store}: a 500-character preview");
        // The first word is indexed; the statement's last words are past the cap (they stay in the chain).
        let page = search(rec, CallQuery { text: Some(words[0].clone()), ..CallQuery::default() }).await;
        assert_eq!(ids(&page.calls), [call.as_str()], "{store}");
        assert!(rec.verify(&c.session_id).await.expect("verify").is_valid(), "{store}");
    }
}
