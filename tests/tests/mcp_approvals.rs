//! Held calls end to end through the real binary: `airlock serve` with the Slack bot pointed at the fake Slack,
//! an MCP client (rmcp) as the agent, and clicks arriving as signed Slack interactions on `/slack/interactions`.
//! The agent's unbounded DELETE waits (with MCP progress notifications) and returns `pending_approval`; what the
//! humans do in Slack (approve, deny with a reason, nothing, the wrong people, forged requests, double clicks, a
//! restart in between, a quorum of two) decides what `await_approval` tells the agent and what runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_tests::airlock::{Airlock, Server, store_events};
use airlock_tests::fake_slack::{BOT_TOKEN, Call, FakeSlack};
use approval_bot::slack::blocks::{APPROVE_ACTION, DENY_ACTION};
use approval_bot::slack::signature;
use common::{Client, SHOP_SQL, assert_chains_verify, http_client, seen, sql, structured};
use gateway_core::approval::{ApprovalState, VoteRefusal};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, Implementation, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// alice is a DBA; every fixture maps her.
const ALICE: &str = "UALICE";
const BOB: &str = "UBOB";
const MALLORY: &str = "UMALLORY";
/// A Slack account mapped to the agent's own subject (the token name).
const AGENT_OWNER: &str = "UAGENTOWNER";
/// The agent's token name, hence its subject.
const AGENT: &str = "autogen-ci";
/// The shipped approval of `approve-unbounded-writes`, replaced by tests that need another one.
const SHIPPED_APPROVAL: &str = "approval: { approvers: [dba, oncall], quorum: 1, timeout: 15m }";

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

/// An Airlock installation (SQLite store and target with the test shop) serving with Slack in HTTP mode against
/// the fake Slack, and an agent token for `autogen-ci`.
struct Fixture {
    fake: FakeSlack,
    airlock: Airlock,
    token: String,
    server: Option<Server>,
    http: reqwest::Client,
    _target_dir: tempfile::TempDir,
}

#[derive(Default)]
struct Options {
    /// Replaces the shipped `approval: {…}` of `approve-unbounded-writes` in the installation's policy file.
    approval: Option<&'static str>,
    /// `[[humans]]` entries besides alice (TOML).
    humans: String,
}

/// A `[[humans]]` entry.
fn human(subject: &str, groups: &str, slack_user: &str) -> String {
    format!("\n[[humans]]\nsubject = \"{subject}\"\ngroups = {groups}\nslack_user = \"{slack_user}\"\n")
}

impl Fixture {
    async fn start(opts: Options) -> Self {
        let fake = FakeSlack::start().await;
        let target_dir = tempfile::tempdir().unwrap();
        let target = Airlock::sqlite_target(target_dir.path());
        airlock_tests::exec(&target.url, SHOP_SQL).await;
        let airlock = Airlock::new(target, None);
        if let Some(approval) = opts.approval {
            // The harness copies the shipped policy into `<dir>/policies` (`[policy] dir = "policies"`).
            let policy = airlock.dir.path().join("policies/default.yaml");
            let yaml = std::fs::read_to_string(&policy).unwrap();
            assert!(yaml.contains(SHIPPED_APPROVAL), "shipped policy changed; update this test");
            std::fs::write(&policy, yaml.replacen(SHIPPED_APPROVAL, approval, 1)).unwrap();
        }
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(&format!(
            "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\n\n[slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\n\
             signing_secret = {{ inline = \"{SIGNING_SECRET}\" }}\nmode = \"http\"\napi_base_url = \"{}\"\n{}{}",
            fake.api_base_url(),
            human("alice@example.com", "[\"dba\"]", ALICE),
            opts.humans,
        ));
        std::fs::write(&airlock.config, config).unwrap();
        let token = airlock.create_token(AGENT, "agents");
        let server = Some(airlock.serve());
        Self { fake, airlock, token, server, http: reqwest::Client::new(), _target_dir: target_dir }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Stop `airlock serve` (SIGTERM, waited for) and start it again on the same configuration and store.
    fn restart(&mut self) {
        let server = self.server.take().unwrap();
        let log_path = server.log_path.clone();
        let status = server.terminate();
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        assert!(status.success(), "airlock serve did not stop cleanly on SIGTERM ({status}):\n{log}");
        self.server = Some(self.airlock.serve());
    }

    /// A new MCP client with the agent's token.
    async fn client(&self) -> Client {
        http_client(self.server(), &self.token).await
    }

    /// Send the unbounded `DELETE FROM orders`, expect it held, wait for the Slack request message; returns the
    /// approval id and the session id.
    async fn held_delete(&self, client: &Client) -> (String, String) {
        let held = sql(client, "DELETE FROM orders").await;
        assert_eq!(held.is_error, Some(false), "{}", seen(&held));
        assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
        self.fake.wait_calls("chat.postMessage", 1).await;
        let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
        (id, structured(&held)["session_id"].as_str().unwrap().to_owned())
    }

    async fn await_approval(&self, client: &Client, id: &str, wait_s: u64) -> CallToolResult {
        let args = json!({"approval_id": id, "wait_s": wait_s}).as_object().cloned().unwrap();
        client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap()
    }

    async fn rows(&self) -> i64 {
        airlock_tests::count(&self.airlock.target.url, "SELECT count(*) FROM orders").await
    }

    /// The approval's state as the store has it.
    async fn state(&self, id: &str) -> String {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.airlock.store_url).await.unwrap();
        let row = sqlx::query("SELECT state FROM approvals WHERE id = $1").bind(id).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row.try_get(0).unwrap()
    }

    /// The request message's `(channel, ts)` as the fake answered it.
    fn request_message(&self) -> (String, String) {
        self.fake.request_message()
    }

    /// A `block_actions` payload shaped like Slack's: `user` clicked `action_id` on the request message.
    fn block_actions(&self, user: &str, action_id: &str, approval_id: &str) -> Value {
        self.fake.block_actions(user, action_id, approval_id)
    }

    /// The `view_submission` of the deny modal that `views.open` number `nth` (0-based) opened.
    async fn deny_submission(&self, nth: usize, user: &str, reason: &str) -> Value {
        self.fake.deny_submission(nth, user, reason).await
    }

    /// POST `payload` to `/slack/interactions` signed with `secret` at time `ts`; returns the HTTP status.
    async fn post_signed(&self, payload: &Value, secret: &str, ts: i64) -> u16 {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = ts.to_string();
        let sig = signature::sign(secret, &ts, body.as_bytes());
        self.http
            .post(format!("http://{}/slack/interactions", self.server().addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TIMESTAMP_HEADER, &ts)
            .header(signature::SIGNATURE_HEADER, &sig)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("post to /slack/interactions: {e}\n{}", self.server().log()))
            .status()
            .as_u16()
    }

    /// POST `payload` signed as Slack would; returns the HTTP status.
    async fn interact(&self, payload: &Value) -> u16 {
        self.post_signed(payload, SIGNING_SECRET, signature::now_s()).await
    }

    /// `user` clicks a button on the request message.
    async fn click(&self, user: &str, action_id: &str, approval_id: &str) -> u16 {
        self.interact(&self.block_actions(user, action_id, approval_id)).await
    }

    /// Wait for `n` ephemeral replies; returns their texts.
    async fn ephemerals(&self, n: usize) -> Vec<(String, String)> {
        let calls = self.fake.wait_calls("chat.postEphemeral", n).await;
        calls.iter().map(|c| (str_of(c, "user"), str_of(c, "text"))).collect()
    }

    /// Wait for the request message to be updated; returns the first update's blocks as JSON text.
    async fn updated_message(&self) -> String {
        let update = self.fake.wait_calls("chat.update", 1).await.remove(0);
        let (channel, ts) = self.request_message();
        assert_eq!((str_of(&update, "channel"), str_of(&update, "ts")), (channel, ts), "the request message");
        serde_json::to_string(&update.body["blocks"]).unwrap()
    }

    /// Replies in the request message's thread so far.
    fn thread_replies(&self) -> Vec<Call> {
        self.fake.calls_of("chat.postMessage").into_iter().filter(|c| c.body.get("thread_ts").is_some()).collect()
    }
}

fn str_of(call: &Call, field: &str) -> String {
    call.body[field].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn held_delete_is_approved_in_slack_and_await_approval_returns_the_executed_result() {
    let f = Fixture::start(Options::default()).await;
    let progress = ProgressCounter::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(f.server().mcp_url()).auth_header(f.token.clone()),
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
    assert_eq!(f.rows().await, 3);

    // 2. A DBA approves in Slack: the signed interaction reaches Airlock's /slack/interactions.
    f.fake.wait_calls("chat.postMessage", 1).await;
    assert_eq!(f.click(ALICE, APPROVE_ACTION, &approval_id).await, 200, "{}", f.server().log());

    // 3. await_approval returns the executed result, with who approved it.
    let args = json!({"approval_id": approval_id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(done.is_error, Some(false), "{}", seen(&done));
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains("alice@example.com"), "approver named: {}", seen(&done));
    assert_eq!(f.rows().await, 0);
    client.cancel().await.unwrap();

    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    assert_chains_verify(&f.airlock, &session);
}

#[tokio::test]
async fn deny_with_reason_reaches_the_agent_and_nothing_runs() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    // Deny opens the reason modal; the click alone decides nothing.
    assert_eq!(f.click(ALICE, DENY_ACTION, &id).await, 200);
    let opened = f.fake.wait_calls("views.open", 1).await;
    assert_eq!(opened[0].body["view"]["type"], "modal");
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());

    let reason = "not during business hours";
    assert_eq!(f.interact(&f.deny_submission(0, ALICE, reason).await).await, 200);
    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(out.is_error, Some(true), "{}", seen(&out));
    assert_eq!(structured(&out)["status"], "denied", "{}", seen(&out));
    assert!(seen(&out).contains("alice@example.com") && seen(&out).contains(reason), "{}", seen(&out));
    assert_eq!(f.rows().await, 3, "nothing executed");

    let blocks = f.updated_message().await;
    assert!(blocks.contains("Denied") && blocks.contains(reason), "{blocks}");
    assert!(!blocks.contains(APPROVE_ACTION), "buttons removed: {blocks}");
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn expiry_without_a_click_tells_the_agent_expired() {
    let f = Fixture::start(Options {
        approval: Some("approval: { approvers: [dba, oncall], quorum: 1, timeout: 3s }"),
        ..Options::default()
    })
    .await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(out.is_error, Some(true), "{}", seen(&out));
    assert_eq!(structured(&out)["status"], "expired", "{}", seen(&out));
    assert!(seen(&out).contains("nothing was executed"), "{}", seen(&out));
    assert_eq!(f.rows().await, 3);

    let blocks = f.updated_message().await;
    assert!(blocks.contains("Expired") && !blocks.contains(APPROVE_ACTION), "{blocks}");

    // A late click is told, and runs nothing.
    assert_eq!(f.click(ALICE, APPROVE_ACTION, &id).await, 200);
    assert_eq!(f.ephemerals(1).await, vec![(ALICE.to_owned(), VoteRefusal::Expired.explain())]);
    assert_eq!(f.state(&id).await, ApprovalState::Expired.as_str());
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn self_approval_and_non_approvers_are_refused() {
    let humans =
        format!("{}{}", human(AGENT, "[\"dba\"]", AGENT_OWNER), human("mallory@example.com", "[\"support\"]", MALLORY));
    let f = Fixture::start(Options { humans, ..Options::default() }).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    // The agent's own subject, although a DBA, cannot approve its own call.
    assert_eq!(f.click(AGENT_OWNER, APPROVE_ACTION, &id).await, 200);
    let eph = f.ephemerals(1).await;
    assert_eq!(eph, vec![(AGENT_OWNER.to_owned(), VoteRefusal::SelfApproval.explain())]);

    // Someone outside the approver groups is told which groups may approve.
    assert_eq!(f.click(MALLORY, APPROVE_ACTION, &id).await, 200);
    let eph = f.ephemerals(2).await;
    let not_approver = VoteRefusal::NotAnApprover { approvers: vec!["dba".into(), "oncall".into()] }.explain();
    assert_eq!(eph[1], (MALLORY.to_owned(), not_approver));

    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());
    let out = f.await_approval(&client, &id, 1).await;
    assert_eq!(structured(&out)["status"], "pending_approval", "{}", seen(&out));
    assert!(f.fake.calls_of("chat.update").is_empty(), "the request message is unchanged");
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn forged_or_stale_signatures_are_rejected_with_401() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    let approve = f.block_actions(ALICE, APPROVE_ACTION, &id);
    let now = signature::now_s();

    assert_eq!(f.post_signed(&approve, "not-the-signing-secret", now).await, 401, "wrong secret");
    assert_eq!(f.post_signed(&approve, SIGNING_SECRET, now - 6 * 60).await, 401, "6 minutes old");

    // Both refusals are audited; nothing else changed.
    let refused: Vec<Value> = store_events(&f.airlock.store_url, "auth_failed")
        .await
        .into_iter()
        .filter(|ev| ev.to_string().contains("slack signature"))
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());
    assert!(f.fake.calls_of("chat.postEphemeral").is_empty() && f.fake.calls_of("chat.update").is_empty());
    assert_eq!(f.rows().await, 3);

    // The same click, properly signed, is accepted (the route works; the refusals were the signatures).
    assert_eq!(f.post_signed(&approve, SIGNING_SECRET, now).await, 200);
    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(structured(&out)["status"], "completed", "{}", seen(&out));
    assert_eq!(f.rows().await, 0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn double_click_executes_once() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    let (a, b) = tokio::join!(f.click(ALICE, APPROVE_ACTION, &id), f.click(ALICE, APPROVE_ACTION, &id));
    assert_eq!((a, b), (200, 200));
    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(structured(&out)["status"], "completed", "{}", seen(&out));
    assert_eq!(f.rows().await, 0);

    // The second click was handled (refused: already voted or already decided) …
    let eph = f.ephemerals(1).await;
    assert_eq!(eph[0].0, ALICE);
    // … and the outcome went into the thread exactly once, from one execution.
    f.fake.wait_for("the thread reply", |calls| calls.iter().any(|c| c.body.get("thread_ts").is_some())).await;
    let replies = f.thread_replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(str_of(&replies[0], "text").contains("completed: 3 row(s) affected"), "{replies:#?}");
    let executions = store_events(&f.airlock.store_url, "result")
        .await
        .into_iter()
        .filter(|ev| ev["approval_id"] == id.as_str() && ev["status"] == "completed")
        .count();
    assert_eq!(executions, 1, "one execution recorded");
    assert_eq!(f.fake.calls_of("chat.postEphemeral").len(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn pending_approval_survives_a_restart_of_airlock() {
    let mut f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, session) = f.held_delete(&client).await;
    drop(client);

    f.restart();
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str(), "{}", f.server().log());
    assert_eq!(f.rows().await, 3);

    // The click reaches the new process, which runs the call held by the old one.
    assert_eq!(f.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let client = f.client().await;
    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(out.is_error, Some(false), "{}\n{}", seen(&out), f.server().log());
    assert_eq!(structured(&out)["status"], "completed", "{}", seen(&out));
    assert!(seen(&out).contains("alice@example.com"), "{}", seen(&out));
    assert_eq!(f.rows().await, 0);
    let blocks = f.updated_message().await;
    assert!(blocks.contains("Approved") && blocks.contains("alice@example.com"), "{blocks}");
    client.cancel().await.unwrap();
    assert_chains_verify(&f.airlock, &session);
}

#[tokio::test]
async fn quorum_two_needs_two_different_people() {
    let f = Fixture::start(Options {
        approval: Some("approval: { approvers: [dba, oncall], quorum: 2, timeout: 15m }"),
        humans: human("bob@example.com", "[\"dba\"]", BOB),
    })
    .await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    // One approval is counted, not enough.
    assert_eq!(f.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let eph = f.ephemerals(1).await;
    assert!(eph[0].1.contains("1 of 2"), "{eph:?}");
    // The same person again does not count twice.
    assert_eq!(f.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let eph = f.ephemerals(2).await;
    assert_eq!(eph[1], (ALICE.to_owned(), VoteRefusal::AlreadyVoted.explain()));
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());
    let out = f.await_approval(&client, &id, 1).await;
    assert_eq!(structured(&out)["status"], "pending_approval", "{}", seen(&out));
    assert_eq!(f.rows().await, 3);

    // A second DBA makes the quorum: the call runs.
    assert_eq!(f.click(BOB, APPROVE_ACTION, &id).await, 200);
    let out = f.await_approval(&client, &id, 20).await;
    assert_eq!(structured(&out)["status"], "completed", "{}", seen(&out));
    assert!(seen(&out).contains("alice@example.com") && seen(&out).contains("bob@example.com"), "{}", seen(&out));
    assert_eq!(f.rows().await, 0);
    client.cancel().await.unwrap();
}
