//! The same governance over real Postgres and MariaDB targets, and with Postgres as Airlock's own store.
#![allow(clippy::unwrap_used)]

mod common;

use airlock_tests::airlock::{Airlock, Target, store_events};
use common::*;

/// Both transports against one installation; every session's chain verifies afterwards.
async fn governed_over_both_transports(airlock: &Airlock) {
    let token = airlock.create_token("autogen-ci", "agents");
    let server = airlock.serve();
    let http = http_client(&server, &token).await;
    let http_session = governance_scenario(&http, &airlock.target.url, &format!("{} http", airlock.target.kind)).await;
    http.cancel().await.unwrap();
    let stdio = stdio_client(airlock, &token).await;
    let stdio_session =
        governance_scenario(&stdio, &airlock.target.url, &format!("{} stdio", airlock.target.kind)).await;
    stdio.cancel().await.unwrap();
    assert_chains_verify(airlock, &http_session);
    assert_chains_verify(airlock, &stdio_session);
    assert_eq!(store_events(&airlock.store_url, "result").await.len(), 6);
}

#[tokio::test]
async fn postgres_target_is_masked_blocked_and_recorded_over_both_transports() {
    let db = airlock_tests::postgres_db().await;
    airlock_tests::exec(&db.url, SHOP_SQL).await;
    let airlock = Airlock::new(Target { kind: "postgres", url: db.url }, None);
    governed_over_both_transports(&airlock).await;
}

#[tokio::test]
async fn mariadb_target_is_masked_blocked_and_recorded_over_both_transports() {
    let Some(db) = airlock_tests::mysql_db("mariadb_target_is_masked_blocked_and_recorded_over_both_transports").await
    else {
        return;
    };
    airlock_tests::exec(&db.url, SHOP_SQL).await;
    let airlock = Airlock::new(Target { kind: "mysql", url: db.url }, None);
    governed_over_both_transports(&airlock).await;
}

#[tokio::test]
async fn postgres_store_records_sessions_that_verify() {
    let store = airlock_tests::postgres_db().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(dir.path());
    airlock_tests::exec(&target.url, SHOP_SQL).await;
    let airlock = Airlock::new(target, Some(store.url.clone()));
    governed_over_both_transports(&airlock).await;
    // The events really are in Postgres, and a bad token is audited there too.
    let server = airlock.serve();
    let (status, _) =
        airlock_tests::airlock::http_request(server.addr, "POST", "/mcp", &[("Authorization", "Bearer x")], "")
            .unwrap();
    assert_eq!(status, 401);
    assert!(!store_events(&store.url, "auth_failed").await.is_empty());
    assert!(!store_events(&store.url, "session_start").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_call_finish_and_records_it() {
    let db = airlock_tests::postgres_db().await;
    airlock_tests::exec(&db.url, SHOP_SQL).await;
    let airlock = Airlock::new(Target { kind: "postgres", url: db.url.clone() }, None);
    let token = airlock.create_token("autogen-ci", "agents");
    let mut server = airlock.serve();
    let client = http_client(&server, &token).await;
    let call = tokio::spawn(async move {
        let r = sql(&client, "SELECT 42 AS answer, pg_sleep(2) AS slept").await;
        (r, client)
    });
    // Wait (bounded) until the statement is running on the target, then ask Airlock to stop.
    let running = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()",
        db.name
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while airlock_tests::count(&db.url, &running).await == 0 {
        assert!(std::time::Instant::now() < deadline, "the call never reached Postgres:\n{}", server.log());
        tokio::task::yield_now().await;
    }
    server.send_sigterm();
    let (result, _client) = call.await.unwrap();
    assert_eq!(result.is_error, Some(false), "in-flight call was cut off: {}", seen(&result));
    assert_eq!(structured(&result)["rows"][0][0].to_string().trim_matches('"'), "42");
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "exit status {status}");
    let results = store_events(&airlock.store_url, "result").await;
    assert!(results.iter().any(|r| r["status"] == "completed"), "the in-flight call's result was not recorded");
}
