//! Shared set-up for the Slack tests: a real gateway (SQLite store, SQLite target, shipped policies) with the
//! Slack bot's notifier attached and pointed at the fake Slack, the bot's router served on loopback, and
//! helpers that click buttons as Slack would (signed form posts).

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::Arc;
use std::time::Duration;

use airlock_tests::fake_slack::{APP_TOKEN, BOT_TOKEN, Call, FakeSlack};
use approval_bot::slack::{RetryPolicy, SlackBot, signature};
use gateway_core::approval::ApprovalState;
use gateway_core::pipeline::{Caller, Gateway, SqlRequest, ToolOutcome, ToolRequest};
use serde_json::Value;

pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// Mapped people: alice (dba), bob (oncall), mallory (not an approver), and a Slack account mapped to the
/// requesting agent's own subject.
pub const ALICE: &str = "UALICE";
pub const BOB: &str = "UBOB";
pub const MALLORY: &str = "UMALLORY";
pub const REQUESTER: &str = "UAGENTOWNER";
pub const NOBODY: &str = "UNOBODY";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub gw: Arc<Gateway>,
    pub caller: Caller,
    pub fake: FakeSlack,
    pub bot: SlackBot,
    /// Base URL of the served router (`http://127.0.0.1:port`), routes under `/slack`.
    pub url: String,
    pub target: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Default)]
pub struct Options {
    /// Replaces the `approval: {…}` of the shipped `approve-unbounded-writes` rule (e.g. a quorum of 2).
    pub approval: Option<&'static str>,
    pub socket_mode: bool,
}

pub async fn env(opts: Options) -> Env {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let target = format!("sqlite://{}/target.db?mode=rwc", dir.path().display());
    airlock_tests::exec(&target, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1), (2), (3);").await;
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let policies = if let Some(approval) = opts.approval {
        let p = dir.path().join("policies");
        std::fs::create_dir(&p).expect("mkdir");
        let yaml = std::fs::read_to_string(shipped.join("default.yaml")).expect("default policy");
        let from = "approval: { approvers: [dba, oncall], quorum: 1, timeout: 15m }";
        assert!(yaml.contains(from), "shipped policy changed; update this test");
        let yaml = yaml.replacen(from, approval, 1);
        std::fs::write(p.join("default.yaml"), yaml).expect("write policy");
        p
    } else {
        shipped
    };
    let mode = if opts.socket_mode {
        format!("mode = \"socket\"\napp_token = {{ inline = \"{APP_TOKEN}\" }}")
    } else {
        format!("mode = \"http\"\nsigning_secret = {{ inline = \"{SIGNING_SECRET}\" }}")
    };
    let toml = format!(
        r##"
[store]
url = "sqlite://{store}/airlock.db"
[policy]
dir = "{policies}"
[approval]
in_call_wait = "100ms"
max_await = "20s"
default_channel = "#airlock-approvals"
[slack]
bot_token = {{ inline = "{BOT_TOKEN}" }}
api_base_url = "{api}"
{mode}
[[humans]]
subject = "alice@example.com"
groups = ["dba"]
slack_user = "{ALICE}"
[[humans]]
subject = "bob@example.com"
groups = ["oncall"]
slack_user = "{BOB}"
[[humans]]
subject = "mallory@example.com"
groups = ["support"]
slack_user = "{MALLORY}"
[[humans]]
subject = "test-agent"
groups = ["dba", "admin"]
slack_user = "{REQUESTER}"
[connections.t]
kind = "sqlite"
url = "{target}"
"##,
        store = dir.path().display(),
        policies = policies.display(),
        api = fake.api_base_url(),
    );
    let config = gateway_core::config::Config::parse(&toml, "slack-test.toml", Vec::new()).expect("config");
    let slack = config.slack.clone().expect("[slack]");
    let retry = RetryPolicy { backoff: Duration::from_millis(20), ..RetryPolicy::default() };
    let bot = SlackBot::with_retry(&slack, retry).expect("slack bot");
    // The ordering the binary follows: notifier into the gateway, then share it, then routes / socket mode.
    let gw = Arc::new(Gateway::start(config).await.expect("gateway").with_notifier(bot.notifier()));
    let identity = gateway_core::identity::Identity::agent("test-agent", &["agents"]);
    let session_id = gw.open_session(&identity, "test", "slack-tests").await.expect("session");
    let app = axum::Router::new().nest("/slack", bot.router(gw.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    Env { dir, gw, caller: Caller { identity, session_id }, fake, bot, url, target, server, http }
}

impl Env {
    /// Send `DELETE FROM t` (held by `approve-unbounded-writes`); returns the outcome.
    pub async fn delete_all(&self) -> ToolOutcome {
        let req =
            ToolRequest::Sql(SqlRequest { connection: "t".into(), query: "DELETE FROM t".into(), max_rows: None });
        self.gw.call(&self.caller, req).await
    }

    /// Send `DELETE FROM t`, expect it held, wait for the Slack post; returns the approval id.
    pub async fn held_delete(&self) -> String {
        let out = self.delete_all().await;
        assert_eq!(out.status.as_str(), "pending_approval", "{:?}", out.message);
        let id = out.approval_id.expect("approval id");
        self.fake.wait_calls("chat.postMessage", 1).await;
        id
    }

    pub async fn rows(&self) -> i64 {
        airlock_tests::count(&self.target, "SELECT count(*) FROM t").await
    }

    pub async fn state(&self, id: &str) -> ApprovalState {
        self.gw.broker().get(id).await.expect("store").expect("approval").state
    }

    /// The request message's `(channel, ts)` as the fake answered it.
    pub fn request_message(&self) -> (String, String) {
        self.fake.request_message()
    }

    /// POST a signed interaction, as Slack does; returns the HTTP status.
    pub async fn post_interaction(&self, payload: &Value) -> u16 {
        self.post_interaction_answer(payload).await.0
    }

    /// POST a signed interaction; returns the HTTP status and the body of the answer.
    pub async fn post_interaction_answer(&self, payload: &Value) -> (u16, String) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
        let ts = signature::now_s().to_string();
        let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
        let r = self
            .http
            .post(format!("{}/slack/interactions", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TIMESTAMP_HEADER, &ts)
            .header(signature::SIGNATURE_HEADER, &sig)
            .body(body)
            .send()
            .await
            .expect("post to router");
        (r.status().as_u16(), r.text().await.expect("answer body"))
    }

    pub async fn post_raw(&self, path: &str, body: String, ts: &str, sig: &str) -> u16 {
        self.http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TIMESTAMP_HEADER, ts)
            .header(signature::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            .expect("post to router")
            .status()
            .as_u16()
    }

    /// A user clicks a button on the request message.
    pub async fn click(&self, user: &str, action_id: &str, approval_id: &str) -> u16 {
        self.post_interaction(&self.block_actions(user, action_id, approval_id)).await
    }

    /// A `block_actions` payload shaped like Slack's.
    pub fn block_actions(&self, user: &str, action_id: &str, approval_id: &str) -> Value {
        self.fake.block_actions(user, action_id, approval_id)
    }

    /// Submit the deny modal that `views.open` number `nth` (0-based) opened, as `user`, with `reason`.
    pub async fn submit_deny_modal(&self, nth: usize, user: &str, reason: &str) -> u16 {
        self.post_interaction(&self.deny_submission(nth, user, reason).await).await
    }

    /// The `view_submission` payload for [`Env::submit_deny_modal`].
    pub async fn deny_submission(&self, nth: usize, user: &str, reason: &str) -> Value {
        self.fake.deny_submission(nth, user, reason).await
    }

    /// Wait for the `n`-th ephemeral reply (1-based) and return all so far.
    pub async fn ephemerals(&self, n: usize) -> Vec<Call> {
        self.fake.wait_calls("chat.postEphemeral", n).await
    }

    /// Wait (bounded) until the approval is in `state`.
    pub async fn wait_state(&self, id: &str, state: ApprovalState) {
        for _ in 0..300 {
            if self.state(id).await == state {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("approval {id} never reached {state:?}; it is {:?}", self.state(id).await);
    }
}
