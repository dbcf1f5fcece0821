//! The pipeline against real Postgres and MariaDB targets, and the recorder on a Postgres store.

use airlock_tests::{SEED_SQL, count, exec, gateway, mysql_db, postgres_db, sql};
use gateway_core::pipeline::CallStatus;

fn pg_connection(url: &str, extra: &str) -> String {
    format!("[connections.pg]\nkind = \"postgres\"\nurl = \"{url}\"\nstatement_timeout = \"1s\"\n{extra}\n")
}

fn my_connection(url: &str, extra: &str) -> String {
    format!("[connections.my]\nkind = \"mysql\"\nurl = \"{url}\"\nstatement_timeout = \"1s\"\n{extra}\n")
}

#[tokio::test]
async fn postgres_select_is_masked_drop_is_blocked_and_delete_all_fails_closed() {
    let db = postgres_db().await;
    exec(&db.url, SEED_SQL).await;
    let (_d, gw, caller) = gateway(None, &pg_connection(&db.url, "")).await;

    let out = sql(&gw, &caller, "pg", "SELECT id, name, email, ssn FROM customers ORDER BY id").await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    let r = out.sql.expect("rows");
    assert_eq!(r.row_count, 3);
    assert_eq!(r.rows[0][0], serde_json::json!(1), "integers stay numbers");
    let text = serde_json::to_string(&r.rows).expect("json");
    assert!(
        text.contains("Grace Hopper") && !text.contains("grace.hopper@example.com") && !text.contains("123-45-6789"),
        "{text}"
    );

    let drop = sql(&gw, &caller, "pg", "DROP TABLE customers").await;
    assert_eq!(drop.status, CallStatus::Blocked);
    let delete = sql(&gw, &caller, "pg", "DELETE FROM customers").await;
    assert_eq!(delete.status, CallStatus::Error, "fails closed without an approver");
    assert_eq!(count(&db.url, "SELECT count(*) FROM customers").await, 3);
    assert!(gw.recorder().verify(&caller.session_id).await.expect("verify").is_valid());
}

#[tokio::test]
async fn postgres_read_only_connection_is_enforced_by_the_database() {
    let db = postgres_db().await;
    exec(&db.url, SEED_SQL).await;
    let (_d, gw, caller) = gateway(None, &pg_connection(&db.url, "read_only = true")).await;
    let out = sql(&gw, &caller, "pg", "UPDATE customers SET note = 'x' WHERE id = 1").await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.as_deref().unwrap_or("").contains("read-only transaction"), "{:?}", out.message);
    // Reads still work, and the connection is not left in a broken transaction.
    for _ in 0..3 {
        assert_eq!(sql(&gw, &caller, "pg", "SELECT count(*) FROM customers").await.status, CallStatus::Completed);
    }
    assert_eq!(count(&db.url, "SELECT count(*) FROM customers WHERE note = 'x'").await, 0);
}

#[tokio::test]
async fn postgres_statement_timeout_stops_the_query_and_says_so() {
    let db = postgres_db().await;
    let (_d, gw, caller) = gateway(None, &pg_connection(&db.url, "")).await;
    let out = sql(&gw, &caller, "pg", "SELECT pg_sleep(10)").await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.as_deref().unwrap_or("").contains("statement timeout"), "{:?}", out.message);
    assert_eq!(sql(&gw, &caller, "pg", "SELECT 1").await.status, CallStatus::Completed);
}

#[tokio::test]
async fn postgres_bytea_and_big_results_are_capped_and_flagged() {
    let db = postgres_db().await;
    let (_d, gw, caller) = gateway(None, &pg_connection(&db.url, "max_rows = 100")).await;
    let bin = sql(&gw, &caller, "pg", "SELECT '\\x00ff'::bytea AS b, true AS t, 1.5::float8 AS f").await;
    let r = bin.sql.expect("rows");
    assert_eq!(r.rows[0], vec![serde_json::json!("\\x00ff"), serde_json::json!(true), serde_json::json!(1.5)]);
    let big = sql(&gw, &caller, "pg", "SELECT g FROM generate_series(1, 1000000) g").await;
    let r = big.sql.expect("rows");
    assert_eq!(r.row_count, 100);
    assert!(r.truncated);
    assert_eq!(sql(&gw, &caller, "pg", "SELECT 1").await.status, CallStatus::Completed, "pool still healthy");
}

#[tokio::test]
async fn mariadb_select_is_masked_drop_is_blocked_and_read_only_is_enforced() {
    let Some(db) = mysql_db("mariadb_select_is_masked_drop_is_blocked_and_read_only_is_enforced").await else {
        return;
    };
    exec(&db.url, SEED_SQL).await;
    let (_d, gw, caller) = gateway(None, &my_connection(&db.url, "")).await;
    let out = sql(&gw, &caller, "my", "SELECT id, name, email, ssn FROM customers ORDER BY id").await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    let r = out.sql.expect("rows");
    assert_eq!(r.rows[0][0], serde_json::json!(1));
    let text = serde_json::to_string(&r.rows).expect("json");
    assert!(text.contains("Grace Hopper") && !text.contains("grace.hopper@example.com"), "{text}");
    assert_eq!(sql(&gw, &caller, "my", "DROP TABLE customers").await.status, CallStatus::Blocked);
    assert_eq!(sql(&gw, &caller, "my", "DELETE FROM customers").await.status, CallStatus::Error);
    assert_eq!(count(&db.url, "SELECT count(*) FROM customers").await, 3);

    let (_d2, ro, caller2) = gateway(None, &my_connection(&db.url, "read_only = true")).await;
    let out = sql(&ro, &caller2, "my", "UPDATE customers SET note = 'x' WHERE id = 1").await;
    assert_eq!(out.status, CallStatus::Error, "the database refuses the write");
    assert!(out.message.as_deref().unwrap_or("").to_lowercase().contains("read only"), "{:?}", out.message);
    assert_eq!(count(&db.url, "SELECT count(*) FROM customers WHERE note = 'x'").await, 0);
}

#[tokio::test]
async fn mariadb_statement_timeout_stops_the_query() {
    let Some(db) = mysql_db("mariadb_statement_timeout_stops_the_query").await else { return };
    let (_d, gw, caller) = gateway(None, &my_connection(&db.url, "")).await;
    let out = sql(&gw, &caller, "my", "SELECT SLEEP(10) AS s").await;
    // MariaDB interrupts SLEEP and reports 1 instead of an error; either way it ends near the limit.
    let finished_fast = out.status == CallStatus::Error
        || out.sql.as_ref().is_some_and(|r| r.rows.first().and_then(|row| row.first()) == Some(&serde_json::json!(1)));
    assert!(finished_fast, "{out:?}");
}

#[tokio::test]
async fn postgres_store_records_verifiable_chains_and_detects_tampering() {
    let store_db = postgres_db().await;
    let target = postgres_db().await;
    exec(&target.url, SEED_SQL).await;
    let (_d, gw, caller) = gateway(Some(&store_db.url), &pg_connection(&target.url, "")).await;
    sql(&gw, &caller, "pg", "SELECT name FROM customers").await;
    sql(&gw, &caller, "pg", "DROP TABLE customers").await;
    let report = gw.recorder().verify(&caller.session_id).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events, 7);

    let refused = sqlx::query("UPDATE events SET payload = '{}' WHERE seq = 3").execute(gw.store().pool()).await;
    assert!(refused.is_err(), "append-only trigger refuses updates on Postgres too");
    exec(
        &store_db.url,
        &format!(
            "ALTER TABLE events DISABLE TRIGGER events_append_only;
             UPDATE events SET payload = replace(payload, 'DROP', 'DRIP') WHERE session_id = '{}' AND seq = 5;",
            caller.session_id
        ),
    )
    .await;
    let report = gw.recorder().verify(&caller.session_id).await.expect("verify");
    assert_eq!(report.broken.map(|b| b.seq), Some(5));
}

struct NoopNotifier;

#[gateway_core::approval::async_trait]
impl gateway_core::approval::Notifier for NoopNotifier {
    async fn request_approval(
        &self,
        _: &gateway_core::approval::ApprovalNotice,
    ) -> gateway_core::Result<Option<String>> {
        Ok(None)
    }
    async fn approval_decided(&self, _: &gateway_core::approval::ApprovalUpdate) -> gateway_core::Result<()> {
        Ok(())
    }
    async fn call_finished(&self, _: &gateway_core::approval::ApprovalUpdate) -> gateway_core::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn approval_on_one_replica_releases_the_agent_waiting_on_another() {
    use gateway_core::approval::{VoteDecision, VoteSource};
    use gateway_core::pipeline::{Gateway, SqlRequest, ToolRequest};
    use std::sync::Arc;
    let store = postgres_db().await;
    let target = postgres_db().await;
    exec(&target.url, SEED_SQL).await;
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let toml = format!(
        "[store]\nurl = \"{}\"\n[policy]\ndir = \"{}\"\n[approval]\nin_call_wait = \"30s\"\n{}\n[[humans]]\nsubject = \"alice\"\ngroups = [\"dba\"]\n",
        store.url,
        policies.display(),
        pg_connection(&target.url, "")
    );
    let cfg = || gateway_core::config::Config::parse(&toml, "t.toml", Vec::new()).expect("config");
    let replica_a = Arc::new(Gateway::start(cfg()).await.expect("a").with_notifier(Arc::new(NoopNotifier)));
    let replica_b = Arc::new(Gateway::start(cfg()).await.expect("b").with_notifier(Arc::new(NoopNotifier)));
    let agent = gateway_core::identity::Identity::agent("autogen-ci", &["agents"]);
    let session_id = replica_a.open_session(&agent, "test", "replicas").await.expect("session");
    let caller = gateway_core::pipeline::Caller { identity: agent, session_id };
    let a = replica_a.clone();
    let held = tokio::spawn(async move {
        let req = SqlRequest { connection: "pg".into(), query: "DELETE FROM customers".into(), max_rows: None };
        a.call(&caller, ToolRequest::Sql(req)).await
    });
    // The approval appears in the shared store; approve it on replica B.
    let id = loop {
        if let Some(p) = replica_b.broker().pending(None).await.expect("pending").first() {
            break p.id.clone();
        }
        tokio::task::yield_now().await;
    };
    let alice = replica_b.human_by_chat(VoteSource::Web, "alice").expect("alice");
    replica_b.vote(&id, &alice, VoteDecision::Approve, None, VoteSource::Web).await.expect("vote");
    let out = held.await.expect("join");
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    assert_eq!(count(&target.url, "SELECT count(*) FROM customers").await, 0);
}
