//! The pipeline end to end against a real SQLite target and a SQLite store, with the shipped default policy.

use std::path::{Path, PathBuf};

use gateway_core::config::Config;
use gateway_core::identity::Identity;
use gateway_core::pipeline::{CallStatus, Caller, Gateway, SqlRequest, ToolOutcome, ToolRequest};
use gateway_core::record::AUDIT_SESSION;
use sqlx::Connection;

const CUSTOMER_EMAIL: &str = "grace.hopper@example.com";
const GATEWAY_PASSWORD: &str = "sup3r-s3cret-target-pw";

struct Fixture {
    dir: tempfile::TempDir,
    gateway: Gateway,
    caller: Caller,
}

fn shipped_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

async fn shop_db(path: &Path) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("create shop db");
    let mut sql = String::from(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT UNIQUE, ssn TEXT, note TEXT, photo BLOB);\n",
    );
    sql.push_str(&format!(
        "INSERT INTO customers VALUES (1, 'Grace Hopper', '{CUSTOMER_EMAIL}', '123-45-6789', 'vip', X'00FF10');\n"
    ));
    for i in 2..=20 {
        sql.push_str(&format!(
            "INSERT INTO customers VALUES ({i}, 'Customer {i}', 'c{i}@example.org', '219-09-{i:04}', 'n', NULL);\n"
        ));
    }
    sql.push_str(&format!(
        "INSERT INTO customers VALUES (99, 'Leak', 'leak@example.net', NULL, 'pw is {GATEWAY_PASSWORD}', NULL);\n"
    ));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.expect("seed");
}

async fn fixture_with(extra_connection_toml: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = dir.path().join("shop.db");
    shop_db(&shop).await;
    let toml = format!(
        r#"
[store]
url = "sqlite://{store}"
[policy]
dir = "{policies}"
[connections.shop]
kind = "sqlite"
description = "Demo shop"
url = "sqlite://{shop}"
password = {{ inline = "{GATEWAY_PASSWORD}" }}
{extra_connection_toml}
"#,
        store = dir.path().join("airlock.db").display(),
        policies = shipped_policies().display(),
        shop = shop.display(),
    );
    let config = Config::parse(&toml, "test.toml", Vec::new()).expect("config");
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let identity = Identity::agent("test-agent", &["agents"]);
    let session_id = gateway.open_session(&identity, "test", "pipeline-tests").await.expect("session");
    Fixture { dir, gateway, caller: Caller { identity, session_id } }
}

async fn fixture() -> Fixture {
    fixture_with("").await
}

async fn sql(f: &Fixture, query: &str) -> ToolOutcome {
    sql_on(f, "shop", query, None).await
}

async fn sql_on(f: &Fixture, connection: &str, query: &str, max_rows: Option<u32>) -> ToolOutcome {
    f.gateway
        .call(&f.caller, ToolRequest::Sql(SqlRequest { connection: connection.into(), query: query.into(), max_rows }))
        .await
}

async fn shop_count(f: &Fixture, query: &str) -> i64 {
    let url = format!("sqlite://{}", f.dir.path().join("shop.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("open shop");
    sqlx::query_scalar(sqlx::AssertSqlSafe(query.to_owned())).fetch_one(&mut c).await.expect("count")
}

async fn all_payloads(f: &Fixture, session: &str) -> String {
    let events = f.gateway.recorder().events(session).await.expect("events");
    events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn drop_table_is_blocked_and_never_reaches_the_database() {
    let f = fixture().await;
    let out = sql(&f, "DROP TABLE customers").await;
    assert_eq!(out.status, CallStatus::Blocked, "{out:?}");
    assert_eq!(out.rule.as_deref(), Some("block-destructive-ddl"));
    assert!(out.message.as_deref().unwrap_or("").contains("DROP"), "{out:?}");
    assert_eq!(shop_count(&f, "SELECT count(*) FROM customers").await, 21);
}

#[tokio::test]
async fn select_with_pii_is_masked_in_the_result_and_in_the_record() {
    let f = fixture().await;
    let out = sql(&f, "SELECT id, name, email, ssn FROM customers WHERE id = 1").await;
    assert_eq!(out.status, CallStatus::Completed, "{out:?}");
    let result = out.sql.as_ref().expect("sql result");
    assert_eq!(result.row_count, 1);
    let shown = serde_json::to_string(&result.rows).expect("json");
    assert!(shown.contains("Grace Hopper"), "non-PII stays readable: {shown}");
    assert!(!shown.contains(CUSTOMER_EMAIL), "email leaked: {shown}");
    assert!(!shown.contains("123-45-6789"), "ssn leaked: {shown}");
    assert!(out.masked.total() >= 2, "{:?}", out.masked);
    let recorded = all_payloads(&f, &f.caller.session_id).await;
    assert!(recorded.contains("Grace Hopper"));
    assert!(!recorded.contains(CUSTOMER_EMAIL) && !recorded.contains("123-45-6789"), "record leaked PII");
}

#[tokio::test]
async fn pii_in_the_statement_is_masked_in_the_record() {
    let f = fixture().await;
    let out = sql(&f, &format!("SELECT id FROM customers WHERE email = '{CUSTOMER_EMAIL}'")).await;
    assert_eq!(out.status, CallStatus::Completed, "{out:?}");
    assert!(!all_payloads(&f, &f.caller.session_id).await.contains(CUSTOMER_EMAIL));
}

#[tokio::test]
async fn delete_without_where_fails_closed_without_an_approver() {
    let f = fixture().await;
    let out = sql(&f, "DELETE FROM customers").await;
    assert_eq!(out.status, CallStatus::Error, "{out:?}");
    assert_eq!(out.rule.as_deref(), Some("approve-unbounded-writes"));
    assert!(out.message.as_deref().unwrap_or("").contains("no approval channel"), "{out:?}");
    assert_eq!(shop_count(&f, "SELECT count(*) FROM customers").await, 21);
}

#[tokio::test]
async fn bounded_write_is_allowed_and_reports_rows_affected() {
    let f = fixture().await;
    let out = sql(&f, "UPDATE customers SET note = 'gold' WHERE id = 2").await;
    assert_eq!(out.status, CallStatus::Completed, "{out:?}");
    assert_eq!(out.sql.as_ref().map(|s| s.rows_affected), Some(1));
    assert_eq!(shop_count(&f, "SELECT count(*) FROM customers WHERE note = 'gold'").await, 1);
}

#[tokio::test]
async fn every_call_is_recorded_in_order_with_a_valid_chain() {
    let f = fixture().await;
    sql(&f, "SELECT 1").await;
    sql(&f, "DROP TABLE customers").await;
    let events = f.gateway.recorder().events(&f.caller.session_id).await.expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["session_start", "request", "decision", "result", "request", "decision", "result"],
        "request and decision precede the result of each call"
    );
    let report = f.gateway.recorder().verify(&f.caller.session_id).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events, 7);
}

#[tokio::test]
async fn tampering_with_a_stored_event_is_detected_at_that_event() {
    let f = fixture().await;
    sql(&f, "SELECT name FROM customers WHERE id = 2").await;
    let pool = f.gateway.store().pool();
    // The store refuses updates; an attacker with database access has to remove the guard first.
    let refused = sqlx::query("UPDATE events SET payload = '{}' WHERE seq = 2").execute(pool).await;
    assert!(refused.is_err(), "append-only trigger must refuse updates");
    sqlx::query("DROP TRIGGER events_no_update").execute(pool).await.expect("drop trigger");
    sqlx::query(
        "UPDATE events SET payload = replace(payload, 'customers', 'payments') WHERE session_id = $1 AND seq = 2",
    )
    .bind(&f.caller.session_id)
    .execute(pool)
    .await
    .expect("tamper");
    let report = f.gateway.recorder().verify(&f.caller.session_id).await.expect("verify");
    assert_eq!(report.broken.map(|b| b.seq), Some(2));
}

#[tokio::test]
async fn unknown_connection_is_refused_named_and_recorded() {
    let f = fixture().await;
    let out = sql_on(&f, "prod-billing", "SELECT 1", None).await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.as_deref().unwrap_or("").contains("prod-billing"), "{out:?}");
    let recorded = all_payloads(&f, &f.caller.session_id).await;
    assert!(recorded.contains("prod-billing") && recorded.contains("unknown connection"), "{recorded}");
}

#[tokio::test]
async fn oversized_statement_is_refused_before_parsing_and_recorded() {
    let f = fixture().await;
    let big = format!("SELECT '{}'", "x".repeat(300 * 1024));
    let out = sql(&f, &big).await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.as_deref().unwrap_or("").contains("limit"), "{out:?}");
    let events = f.gateway.recorder().events(&f.caller.session_id).await.expect("events");
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("result"));
    assert!(events.iter().all(|e| e.payload.len() < 64 * 1024), "the record keeps a preview, not the whole input");
}

#[tokio::test]
async fn row_cap_truncates_and_says_so() {
    let f = fixture().await;
    let out = sql_on(&f, "shop", "SELECT id FROM customers ORDER BY id", Some(5)).await;
    let r = out.sql.expect("result");
    assert_eq!(r.row_count, 5);
    assert!(r.truncated);
    let full = sql(&f, "SELECT id FROM customers").await.sql.expect("result");
    assert_eq!(full.row_count, 21);
    assert!(!full.truncated);
}

#[tokio::test]
async fn byte_cap_truncates_large_results() {
    let f = fixture_with("max_output_bytes = 200").await;
    let out = sql(&f, "SELECT name, note FROM customers").await;
    let r = out.sql.expect("result");
    assert!(r.truncated && r.row_count < 21, "{r:?}");
}

#[tokio::test]
async fn read_only_connection_is_enforced_by_the_database() {
    let f = fixture_with("read_only = true").await;
    let out = sql(&f, "UPDATE customers SET note = 'x' WHERE id = 3").await;
    assert_eq!(out.status, CallStatus::Error, "policy allows it, the database refuses it: {out:?}");
    assert!(out.message.as_deref().unwrap_or("").to_lowercase().contains("readonly"), "{out:?}");
    assert_eq!(shop_count(&f, "SELECT count(*) FROM customers WHERE note = 'x'").await, 0);
    let read = sql(&f, "SELECT count(*) AS n FROM customers").await;
    assert_eq!(read.status, CallStatus::Completed, "{read:?}");
}

#[tokio::test]
async fn gateway_credentials_are_scrubbed_from_results_whatever_the_policy() {
    let f = fixture().await;
    let out = sql(&f, "SELECT note FROM customers WHERE id = 99").await;
    let shown = serde_json::to_string(&out.sql.expect("result").rows).expect("json");
    assert!(!shown.contains(GATEWAY_PASSWORD), "{shown}");
    assert!(out.masked.0.get("credential").copied().unwrap_or(0) >= 1, "{:?}", out.masked);
    assert!(!all_payloads(&f, &f.caller.session_id).await.contains(GATEWAY_PASSWORD));
}

#[tokio::test]
async fn binary_and_invalid_utf8_values_come_back_as_flagged_hex() {
    let f = fixture().await;
    let out = sql(&f, "SELECT photo FROM customers WHERE id = 1").await;
    let r = out.sql.expect("result");
    assert!(r.binary_values);
    assert_eq!(r.rows[0][0], serde_json::json!("\\x00ff10"));
}

#[tokio::test]
async fn nul_bytes_and_deep_nesting_never_crash_the_gateway() {
    let f = fixture().await;
    let nul = sql(&f, "SELECT 1\0; DROP TABLE customers").await;
    assert_ne!(nul.status, CallStatus::Completed, "rule {:?}", nul.rule);
    let deep = format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let out = sql(&f, &deep).await;
    assert_ne!(out.status, CallStatus::Completed, "too deep to judge, so not executed (rule {:?})", out.rule);
    assert_eq!(shop_count(&f, "SELECT count(*) FROM customers").await, 21);
    assert!(f.gateway.recorder().verify(&f.caller.session_id).await.expect("verify").is_valid());
}

#[tokio::test]
async fn revoked_token_cuts_off_an_open_session() {
    let f = fixture().await;
    let token = f.gateway.tokens().create("ci-bot", &["agents".into()]).await.expect("token");
    let identity = f.gateway.authenticate(Some(&token.token), "test").await.expect("authenticates");
    let session_id = f.gateway.open_session(&identity, "test", "t").await.expect("session");
    let caller = Caller { identity, session_id };
    let req = || ToolRequest::Sql(SqlRequest { connection: "shop".into(), query: "SELECT 1".into(), max_rows: None });
    assert_eq!(f.gateway.call(&caller, req()).await.status, CallStatus::Completed);
    f.gateway.tokens().revoke("ci-bot").await.expect("revoke");
    let out = f.gateway.call(&caller, req()).await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.as_deref().unwrap_or("").contains("revoked"), "{out:?}");
}

#[tokio::test]
async fn failed_authentication_is_refused_and_recorded_with_its_reason() {
    let f = fixture().await;
    assert!(f.gateway.authenticate(Some("alk_nope_nope"), "http 127.0.0.1").await.is_err());
    assert!(f.gateway.authenticate(None, "stdio").await.is_err());
    let events = f.gateway.recorder().events(AUDIT_SESSION).await.expect("audit events");
    let failures: Vec<_> = events.iter().filter(|e| e.kind == "auth_failed").collect();
    assert_eq!(failures.len(), 2);
    assert!(failures[0].payload.contains("unknown token") && failures[1].payload.contains("no token"));
    assert!(f.gateway.recorder().verify(AUDIT_SESSION).await.expect("verify").is_valid());
}

#[tokio::test]
async fn list_connections_shows_only_what_policy_could_allow() {
    let f = fixture().await;
    let listed = f.gateway.list_connections(&f.caller.identity);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "shop");
    assert_eq!(listed[0].kind, "sqlite");
}

#[tokio::test]
async fn concurrent_calls_in_one_session_keep_one_valid_chain() {
    let f = fixture().await;
    let calls = (0..16).map(|i| sql_on(&f, "shop", if i % 2 == 0 { "SELECT 1" } else { "DROP TABLE customers" }, None));
    let outs = futures_util::future::join_all(calls).await;
    assert_eq!(outs.iter().filter(|o| o.status == CallStatus::Completed).count(), 8);
    let report = f.gateway.recorder().verify(&f.caller.session_id).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.events, 1 + 16 * 3);
}
