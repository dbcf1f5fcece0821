//! The audit stream, against the real binary on a Postgres store: typed events reach a webhook sink (signed
//! with HMAC) and a JSON-lines file through the store's outbox. The sink fails at first, Airlock is killed
//! (SIGKILL) while events wait and started again, the sink recovers: every event arrives, once per id after
//! dedupe, in order per session, and the webhook and the file carry the same events.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_tests::airlock::Airlock;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{SHOP_SQL, http_client, seen, sql, structured};
use hmac::Mac;
use serde_json::Value;

const SECRET: &str = "siem-signing-secret-4b1d";
const HEC_TOKEN: &str = "hec-token-77aa";

/// A SIEM's HTTP collector: refuses the first `fail_first` requests with 503, then accepts; checks every
/// request's signature and token; keeps every event received (repeats included) in arrival order.
#[derive(Default)]
struct Sink {
    fail_first: AtomicUsize,
    requests: AtomicUsize,
    bad_signatures: AtomicUsize,
    events: Mutex<Vec<Value>>,
}

async fn collect(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = sink.requests.fetch_add(1, Ordering::SeqCst);
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.", header("x-airlock-timestamp")).as_bytes());
    mac.update(&body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    if header("x-airlock-signature") != expected || header("authorization") != format!("Splunk {HEC_TOKEN}") {
        sink.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if n < sink.fail_first.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // Splunk HEC batch: one `{"time", "source", "sourcetype", "event"}` object per line.
    let text = String::from_utf8(body.to_vec()).unwrap();
    let mut events = sink.events.lock().unwrap();
    for line in text.lines() {
        let wrapper: Value = serde_json::from_str(line).unwrap();
        assert_eq!(wrapper["sourcetype"], "airlock:audit");
        events.push(wrapper["event"].clone());
    }
    StatusCode::OK
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_survive_a_failing_siem_and_a_killed_gateway_and_arrive_once_in_order() {
    let sink = Arc::new(Sink { fail_first: AtomicUsize::new(3), ..Sink::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/services/collector/event", listener.local_addr().unwrap());
    let app =
        axum::Router::new().route("/services/collector/event", axum::routing::post(collect)).with_state(sink.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let target_dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(target_dir.path());
    airlock_tests::exec(&target.url, SHOP_SQL).await;
    let store = airlock_tests::postgres_db().await;
    let airlock = Airlock::new(target, Some(store.url.clone()));
    let file = airlock.dir.path().join("audit.jsonl");
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "\n[audit]\nfile = \"{}\"\nlease = \"2s\"\n\n[[audit.webhooks]]\nname = \"siem\"\nurl = \"{hook}\"\nformat = \"splunk_hec\"\n\
         token = {{ inline = \"{HEC_TOKEN}\" }}\nsecret = {{ inline = \"{SECRET}\" }}\nbatch = 3\ntimeout = \"1s\"\n",
        file.display()
    ));
    std::fs::write(&airlock.config, config).unwrap();
    let token = airlock.create_token("autogen-ci", "agents");

    // First life: a masked read, a blocked DROP and a refused token, while the SIEM answers 503.
    let mut server = airlock.serve();
    let client = http_client(&server, &token).await;
    let read = sql(&client, "SELECT name, email FROM customers ORDER BY id").await;
    assert_eq!(structured(&read)["status"], "completed", "{}", seen(&read));
    let ddl = sql(&client, "DROP TABLE customers").await;
    assert_eq!(structured(&ddl)["status"], "blocked", "{}", seen(&ddl));
    let refused = airlock_tests::airlock::http_request(
        server.addr,
        "POST",
        "/mcp",
        &[("authorization", "Bearer alk_not_a_real_token"), ("content-type", "application/json")],
        "{}",
    )
    .unwrap();
    assert_eq!(refused.0, 401);
    wait_until("two refused deliveries", || sink.requests.load(Ordering::SeqCst) >= 2).await;
    assert!(sink.events.lock().unwrap().is_empty(), "nothing was accepted yet");
    client.cancel().await.ok();
    // Killed outright: no shutdown hook runs, its lease on the sinks runs out (2 s here). The events wait in the
    // store.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Second life: one more call; the SIEM recovers after its third refusal.
    let server = airlock.serve();
    let client = http_client(&server, &token).await;
    let again = sql(&client, "SELECT count(*) AS n FROM orders").await;
    assert_eq!(structured(&again)["status"], "completed", "{}", seen(&again));
    client.cancel().await.ok();

    // Everything the store streamed for the webhook, by id, from the outbox itself.
    let expected: BTreeSet<String> = {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&store.url).await.unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM audit_outbox WHERE sink = 'webhook:siem'")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        ids.into_iter().collect()
    };
    let received_ids = || sink.events.lock().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<String> = received_ids();
        if got.is_superset(&expected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every event reached the SIEM: {} requests; missing {:?}\nlog:\n{}",
            sink.requests.load(Ordering::SeqCst),
            expected.difference(&got).collect::<Vec<_>>(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.requests.load(Ordering::SeqCst) >= 4, "three refusals, then deliveries");
    assert_eq!(sink.bad_signatures.load(Ordering::SeqCst), 0, "every request was signed with the secret");

    let events = sink.events.lock().unwrap().clone();
    // Repeats (at least once) are the same event: dedupe by id keeps exactly one of each.
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for e in &events {
        let id = e["id"].as_str().unwrap().to_owned();
        if let Some(first) = by_id.get(&id) {
            assert_eq!(first, e, "a repeated id carries the same event");
        } else {
            by_id.insert(id, e.clone());
        }
    }
    // In order per session: first arrivals have increasing seq within each session.
    let mut last_seq: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen_ids = BTreeSet::new();
    for e in &events {
        if !seen_ids.insert(e["id"].as_str().unwrap().to_owned()) {
            continue;
        }
        let (session, seq) = (e["session_id"].as_str().unwrap().to_owned(), e["seq"].as_i64().unwrap());
        if let Some(prev) = last_seq.insert(session.clone(), seq) {
            assert!(seq >= prev, "session {session}: seq {seq} after {prev}");
        }
    }
    let types: BTreeSet<&str> = by_id.values().map(|e| e["type"].as_str().unwrap()).collect();
    for ty in ["tool_call.completed", "tool_call.masked", "tool_call.blocked", "auth.failed"] {
        assert!(types.contains(ty), "{ty} missing from {types:?}");
    }
    // A blocked call names who, where, what and the rule; the masked read carries no raw e-mail.
    let blocked = by_id.values().find(|e| e["type"] == "tool_call.blocked").unwrap();
    assert_eq!(blocked["call"]["subject"], "autogen-ci");
    assert_eq!(blocked["call"]["connection"], "shop");
    assert_eq!(blocked["call"]["statement"], "DROP TABLE customers");
    assert_eq!(blocked["data"]["rule"], "block-destructive-ddl");
    let stream = serde_json::to_string(&events).unwrap();
    assert!(!stream.contains("ada.lovelace@example.com"), "unmasked data in the audit stream");
    assert!(!stream.contains("alk_not_a_real_token"), "a presented token in the audit stream");

    // The file sink got the same events, as JSON lines.
    wait_until("the file sink", || {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let ids: BTreeSet<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        ids == by_id.keys().cloned().collect::<BTreeSet<_>>()
    })
    .await;
    drop(server);
}
