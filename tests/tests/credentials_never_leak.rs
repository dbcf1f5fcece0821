//! The target's credentials live only in the gateway. An agent that tries to make them appear (echoing them, a
//! row that holds them, an error that quotes them, a held write that carries them to Slack) never sees them, and
//! neither does anyone else: not in tool results, the recorded events, the search index, the audit stream, the
//! server's debug log, the Slack messages, the replay page or the metrics.
#![allow(clippy::unwrap_used)]

mod common;

use airlock_tests::airlock::{Airlock, Target};
use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
use approval_bot::slack::blocks::APPROVE_ACTION;
use approval_bot::slack::signature;
use common::{http_client, seen, sql, structured};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

/// The target database's password (Postgres on loopback uses trust auth, so it is carried but not needed).
const TARGET_PASSWORD: &str = "Pg-Target-Secret-7f3a9c41";
const SIGNING_SECRET: &str = "slack-signing-secret-0d9e";
const METRICS_TOKEN: &str = "metrics-token-51c7aa";
const ALICE_SLACK: &str = "UALICE";
const ALICE_DISCORD: &str = "1500000000000000001";

#[tokio::test]
async fn target_credentials_never_reach_agents_records_logs_or_chat() {
    let target_db = airlock_tests::postgres_db().await;
    airlock_tests::exec(
        &target_db.url,
        &format!(
            "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL);
             INSERT INTO notes VALUES (1, 'ops runbook: db password is {TARGET_PASSWORD} (rotate!)'), (2, 'nothing');"
        ),
    )
    .await;
    let slack = FakeSlack::start().await;
    let airlock = Airlock::new(Target { kind: "postgres", url: target_db.url.clone() }, None);
    let audit_file = airlock.dir.path().join("audit.jsonl");
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    // Right after `[connections.shop]`: the password belongs to the target connection.
    config.push_str(&format!(
        "password = {{ inline = \"{TARGET_PASSWORD}\" }}\n\n\
         [approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\n\n\
         [slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\napi_base_url = \"{}\"\nmode = \"http\"\n\
         signing_secret = {{ inline = \"{SIGNING_SECRET}\" }}\n\n\
         [metrics]\ntoken = {{ inline = \"{METRICS_TOKEN}\" }}\n\n\
         [audit]\nfile = \"{}\"\n\n\
         [[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\", \"admin\"]\nslack_user = \"{ALICE_SLACK}\"\n",
        slack.api_base_url(),
        audit_file.display()
    ));
    std::fs::write(&airlock.config, config).unwrap();
    let token = airlock.create_token("autogen-ci", "agents");
    let server = airlock.serve_with_env(&[("AIRLOCK_LOG", "debug")]);
    let client = http_client(&server, &token).await;

    // Everything the agent gets back.
    let mut agent_saw = String::new();
    for attempt in [
        format!("SELECT '{TARGET_PASSWORD}' AS echoed"),
        "SELECT id, body FROM notes ORDER BY id".to_owned(),
        format!("SELECT * FROM \"table_{TARGET_PASSWORD}\""),
        format!("SELECT CAST('{TARGET_PASSWORD}' AS INTEGER)"),
        format!("SELECT upper('{TARGET_PASSWORD}') AS shouted, md5('x') AS h"),
        // Slower than sqlx's slow-statement threshold (1 s), which it would log at warn, statement and all.
        format!("SELECT pg_sleep(1.1) IS NULL AS slept, '{TARGET_PASSWORD}' AS echoed"),
    ] {
        let r = sql(&client, &attempt).await;
        agent_saw.push_str(&seen(&r));
        agent_saw.push_str(&structured(&r).to_string());
    }
    assert!(agent_saw.contains("[CREDENTIAL]"), "the scrubber left no trace: {agent_saw}");

    // A held write that carries the secret goes to Slack, is approved there, and runs.
    let held = sql(&client, &format!("UPDATE notes SET body = 'reset to {TARGET_PASSWORD}'")).await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    agent_saw.push_str(&seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    slack.wait_calls("chat.postMessage", 1).await;
    let payload = slack.block_actions(ALICE_SLACK, APPROVE_ACTION, &id);
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let ts = signature::now_s().to_string();
    let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
    let clicked = reqwest::Client::new()
        .post(format!("http://{}/slack/interactions", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(signature::TIMESTAMP_HEADER, ts)
        .header(signature::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    agent_saw.push_str(&seen(&done));
    // The write really carried the secret into the target: masking is about what leaves, not what runs.
    assert_eq!(
        airlock_tests::count(
            &target_db.url,
            &format!("SELECT count(*) FROM notes WHERE body LIKE '%{TARGET_PASSWORD}'")
        )
        .await,
        2
    );
    slack.wait_calls("chat.postMessage", 2).await;

    // Every place the secret could surface.
    let chat = serde_json::to_string(&slack.calls().iter().map(|c| &c.body).collect::<Vec<_>>()).unwrap();
    assert!(chat.contains("UPDATE notes"), "the request was posted: {chat}");
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.addr))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let store = sqlx::AnyPool::connect(&airlock.store_url).await.unwrap();
    let events: Vec<String> = sqlx::query_scalar("SELECT payload FROM events").fetch_all(&store).await.unwrap();
    let indexed: Vec<String> =
        sqlx::query_scalar("SELECT statement || ' ' || output FROM call_index").fetch_all(&store).await.unwrap();
    let outbox: Vec<String> = sqlx::query_scalar("SELECT body FROM audit_outbox").fetch_all(&store).await.unwrap();
    store.close().await;
    assert!(events.iter().any(|e| e.contains("UPDATE notes")), "the store holds the calls");
    client.cancel().await.ok();
    // The audit file is written by the delivery loop; wait until it has caught up with the approved call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&audit_file).unwrap_or_default().contains("approval.approved") {
        assert!(std::time::Instant::now() < deadline, "the audit file never caught up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(log.contains("DEBUG") || log.contains("debug"), "the log ran at debug level");

    assert_nowhere(
        &[
            ("tool results", agent_saw.clone()),
            ("recorded events", events.join("\n")),
            ("search index", indexed.join("\n")),
            ("audit outbox", outbox.join("\n")),
            ("audit file", std::fs::read_to_string(&audit_file).unwrap_or_default()),
            ("server log", log.clone()),
            ("slack messages", chat.clone()),
            ("metrics", metrics.clone()),
        ],
        &[TARGET_PASSWORD, SIGNING_SECRET, METRICS_TOKEN, BOT_TOKEN],
    );
}

/// No `secret` (nor the password upper-cased) appears in any of `places`; a failure shows the offending lines with
/// the secret blanked out.
fn assert_nowhere(places: &[(&str, String)], secrets: &[&str]) {
    for (place, text) in places {
        for secret in secrets {
            let lines: Vec<String> =
                text.lines().filter(|l| l.contains(secret)).map(|l| l.replace(secret, "<SECRET>")).collect();
            assert!(lines.is_empty(), "a secret appears in the {place}:\n{}", lines.join("\n"));
        }
        // Nor a case-changed copy (the `upper(…)` attempt): the scrubber matches case-insensitively.
        assert!(!text.contains(&TARGET_PASSWORD.to_uppercase()), "the upper-cased password appears in the {place}");
    }
}

/// The same for Discord: a held write carrying the target's password is posted to Discord, approved there, and the
/// password is in no message Airlock sent to Discord, no interaction answer, no result and no log line.
#[tokio::test]
async fn target_credentials_never_reach_discord() {
    use airlock_tests::fake_discord::{self, APPLICATION_ID, CHANNEL_ID, FakeDiscord};
    use approval_bot::discord::messages::APPROVE_PREFIX;
    let target_db = airlock_tests::postgres_db().await;
    airlock_tests::exec(
        &target_db.url,
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes VALUES (1, 'x');",
    )
    .await;
    let discord = FakeDiscord::start().await;
    let airlock = Airlock::new(Target { kind: "postgres", url: target_db.url.clone() }, None);
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "password = {{ inline = \"{TARGET_PASSWORD}\" }}\n\n\
         [approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\ndefault_channel = \"discord:{CHANNEL_ID}\"\n\n\
         [discord]\nbot_token = {{ inline = \"{}\" }}\napplication_id = \"{APPLICATION_ID}\"\nmode = \"http\"\n\
         public_key = \"{}\"\napi_base_url = \"{}\"\n\n\
         [[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\"]\ndiscord_user = \"{ALICE_DISCORD}\"\n",
        fake_discord::BOT_TOKEN,
        discord.public_key_hex(),
        discord.api_base_url(),
    ));
    std::fs::write(&airlock.config, config).unwrap();
    let token = airlock.create_token("autogen-ci", "agents");
    let server = airlock.serve_with_env(&[("AIRLOCK_LOG", "debug")]);
    let client = http_client(&server, &token).await;

    let held = sql(&client, &format!("UPDATE notes SET body = 'reset to {TARGET_PASSWORD}'")).await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    discord.wait_calls("create_message", 1).await;
    let body = discord.component(ALICE_DISCORD, &format!("{APPROVE_PREFIX}{id}")).to_string();
    let (ts, sig) = discord.sign(approval_bot::discord::signature::now_s(), body.as_bytes());
    let clicked = reqwest::Client::new()
        .post(format!("http://{}/discord/interactions", server.addr))
        .header("content-type", "application/json")
        .header(approval_bot::discord::signature::TIMESTAMP_HEADER, ts)
        .header(approval_bot::discord::signature::SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(clicked.status(), 200);
    let answer = clicked.text().await.unwrap();
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    discord.wait_calls("create_message", 2).await;
    client.cancel().await.ok();
    let sent = serde_json::to_string(&discord.calls().iter().map(|c| &c.body).collect::<Vec<_>>()).unwrap();
    assert!(sent.contains("UPDATE notes") && sent.contains("[CREDENTIAL]"), "the request was posted, scrubbed: {sent}");
    assert_nowhere(
        &[
            ("tool results", format!("{}{}", seen(&held), seen(&done))),
            ("discord messages", sent),
            ("interaction answer", answer),
            ("server log", server.log()),
        ],
        &[TARGET_PASSWORD, fake_discord::BOT_TOKEN],
    );
}
