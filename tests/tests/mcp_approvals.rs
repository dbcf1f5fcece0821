//! A held call end to end through the real binary: `airlock serve` with the Slack bot pointed at the fake Slack.
//! The agent's unbounded DELETE waits (with MCP progress notifications), returns `pending_approval`; a DBA
//! clicks Approve in Slack (a signed interaction to `/slack/interactions`); `await_approval` returns the
//! executed result.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_tests::airlock::{Airlock, http_request};
use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
use approval_bot::slack::signature;
use common::{SHOP_SQL, assert_chains_verify, seen, structured};
use rmcp::model::{
    CallToolRequestParams, ClientConfig, Implementation, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::json;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ALICE: &str = "UALICE";

#[derive(Clone, Default)]
struct ProgressCounter(Arc<AtomicUsize>);

impl ClientHandler for ProgressCounter {
    async fn on_progress(&self, _: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(Default::default(), Implementation::new("airlock-e2e-approvals", "1.0"))
    }
}

#[tokio::test]
async fn held_delete_is_approved_in_slack_and_await_approval_returns_the_executed_result() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(dir.path());
    airlock_tests::exec(&target.url, SHOP_SQL).await;
    let airlock = Airlock::new(target, None);
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "\n[approval]\nin_call_wait = \"2s\"\nmax_await = \"30s\"\n\n[slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\n\
         signing_secret = {{ inline = \"{SIGNING_SECRET}\" }}\nmode = \"http\"\napi_base_url = \"{}\"\n\n\
         [[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\"]\nslack_user = \"{ALICE}\"\n",
        fake.api_base_url()
    ));
    std::fs::write(&airlock.config, config).unwrap();
    let token = airlock.create_token("autogen-ci", "agents");
    let server = airlock.serve();

    let progress = ProgressCounter::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url()).auth_header(token.clone()),
    );
    let client = progress.clone().serve(transport).await.unwrap();

    // 1. The unbounded DELETE is held: progress while it waits, then pending_approval (not an error).
    let args = json!({"connection": "shop", "query": "DELETE FROM orders"}).as_object().cloned().unwrap();
    let mut params = CallToolRequestParams::new("sql_query").with_arguments(args);
    let mut meta = RequestMetaObject::default();
    meta.set_progress_token(ProgressToken(NumberOrString::Number(7)));
    params.meta = Some(meta);
    let held = client.call_tool(params).await.unwrap();
    assert_eq!(held.is_error, Some(false), "{}", seen(&held));
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    assert!(seen(&held).contains("await_approval"), "the agent is told what to do next: {}", seen(&held));
    let approval_id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    assert!(progress.0.load(Ordering::SeqCst) >= 1, "no progress notifications while held");
    assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM orders").await, 3);

    // 2. A DBA approves in Slack: the signed interaction reaches Airlock's /slack/interactions.
    let post = fake.wait_calls("chat.postMessage", 1).await.remove(0);
    let channel = post.answer["channel"].as_str().unwrap_or_default().to_owned();
    let ts = post.answer["ts"].as_str().unwrap_or_default().to_owned();
    let payload = json!({
        "type": "block_actions",
        "user": { "id": ALICE, "username": "alice", "name": "alice", "team_id": "T0FAKE" },
        "api_app_id": "A0FAKE", "token": "legacy", "trigger_id": "1.2.3",
        "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
        "team": { "id": "T0FAKE", "domain": "airlock-test" },
        "channel": { "id": channel, "name": "airlock-approvals" },
        "message": { "type": "message", "ts": ts, "text": "Approval needed" },
        "state": { "values": {} },
        "response_url": "https://hooks.slack.com/actions/T0FAKE/1/abc",
        "actions": [{ "action_id": approval_bot::slack::blocks::APPROVE_ACTION, "block_id": "airlock_decision",
                      "text": { "type": "plain_text", "text": "Approve" }, "value": approval_id,
                      "type": "button", "action_ts": "1700000001.000200" }],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let now = signature::now_s().to_string();
    let sig = signature::sign(SIGNING_SECRET, &now, body.as_bytes());
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        (signature::TIMESTAMP_HEADER, now.as_str()),
        (signature::SIGNATURE_HEADER, sig.as_str()),
    ];
    let (status, response) = http_request(server.addr, "POST", "/slack/interactions", &headers, &body).unwrap();
    assert_eq!(status, 200, "{response}\n{}", server.log());

    // 3. await_approval returns the executed result, with who approved it.
    let args = json!({"approval_id": approval_id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(done.is_error, Some(false), "{}", seen(&done));
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains("alice@example.com"), "approver named: {}", seen(&done));
    assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM orders").await, 0);
    client.cancel().await.unwrap();

    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    assert_chains_verify(&airlock, &session);
}
