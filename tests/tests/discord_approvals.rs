//! Held calls approved in Discord, end to end through the real binary: `airlock serve` with `[discord]` pointed
//! at the fake Discord, an MCP client (rmcp) as the agent, and clicks arriving as Ed25519-signed interactions
//! on `/discord/interactions`, signed with the fake application's key as Discord signs them (or, in gateway mode,
//! as `INTERACTION_CREATE` dispatches on the fake's Gateway WebSocket).
#![allow(clippy::unwrap_used)]

mod common;

use airlock_tests::airlock::{Airlock, Server, store_events};
use airlock_tests::fake_discord::{self, APPLICATION_ID, CHANNEL_ID, Failure, FakeDiscord};
use approval_bot::discord::messages::{APPROVE_PREFIX, DENY_MODAL_PREFIX, DENY_PREFIX, REASON_INPUT};
use approval_bot::discord::signature;
use common::{Client, SHOP_SQL, assert_chains_verify, http_client, seen, sql, structured};
use gateway_core::approval::{ApprovalState, VoteRefusal};
use ring::signature::Ed25519KeyPair;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

/// Discord user ids (snowflakes). alice is a DBA; every fixture maps her.
const ALICE: &str = "1000000000000000001";
const BOB: &str = "1000000000000000002";
/// A Discord account mapped to the agent's own subject.
const AGENT_OWNER: &str = "1000000000000000003";
/// Nobody in `[[humans]]`.
const NOBODY: &str = "1000000000000000009";
/// The agent's token name, hence its subject.
const AGENT: &str = "autogen-ci";
const SHIPPED_APPROVAL: &str = "approval: { approvers: [dba, oncall], quorum: 1, timeout: 15m }";

struct Fixture {
    fake: FakeDiscord,
    airlock: Airlock,
    token: String,
    server: Server,
    http: reqwest::Client,
    _target_dir: tempfile::TempDir,
}

#[derive(Default)]
struct Options {
    /// Replaces the shipped `approval: {…}` of `approve-unbounded-writes`.
    approval: Option<String>,
    /// `[[humans]]` entries besides alice (TOML).
    humans: String,
    /// Extra configuration (e.g. a `[slack]` section); `[approval] default_channel` is Discord's unless given.
    default_channel: Option<String>,
    extra: String,
    /// `mode = "gateway"` (no public key, no gateway_url: the bot asks `GET /gateway/bot`).
    gateway_mode: bool,
    /// HELLO's heartbeat interval in the fake's Gateway.
    heartbeat: Option<std::time::Duration>,
}

fn human(subject: &str, groups: &str, discord_user: &str) -> String {
    format!("\n[[humans]]\nsubject = \"{subject}\"\ngroups = {groups}\ndiscord_user = \"{discord_user}\"\n")
}

impl Fixture {
    async fn start(opts: Options) -> Self {
        let fake = FakeDiscord::start().await;
        if let Some(h) = opts.heartbeat {
            fake.set_heartbeat_interval(h);
        }
        let target_dir = tempfile::tempdir().unwrap();
        let target = Airlock::sqlite_target(target_dir.path());
        airlock_tests::exec(&target.url, SHOP_SQL).await;
        let airlock = Airlock::new(target, None);
        if let Some(approval) = &opts.approval {
            let policy = airlock.dir.path().join("policies/default.yaml");
            let yaml = std::fs::read_to_string(&policy).unwrap();
            assert!(yaml.contains(SHIPPED_APPROVAL), "shipped policy changed; update this test");
            std::fs::write(&policy, yaml.replacen(SHIPPED_APPROVAL, approval, 1)).unwrap();
        }
        let default_channel = opts.default_channel.clone().unwrap_or_else(|| format!("discord:{CHANNEL_ID}"));
        let mode = if opts.gateway_mode {
            "mode = \"gateway\"".to_owned()
        } else {
            format!("mode = \"http\"\npublic_key = \"{}\"", fake.public_key_hex())
        };
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(&format!(
            "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\ndefault_channel = \"{default_channel}\"\n\n\
             [discord]\nbot_token = {{ inline = \"{}\" }}\napplication_id = \"{APPLICATION_ID}\"\n\
             {mode}\napi_base_url = \"{}\"\n{}{}{}",
            fake_discord::BOT_TOKEN,
            fake.api_base_url(),
            opts.extra,
            human("alice@example.com", "[\"dba\"]", ALICE),
            opts.humans,
        ));
        std::fs::write(&airlock.config, config).unwrap();
        let token = airlock.create_token(AGENT, "agents");
        let server = airlock.serve();
        Self { fake, airlock, token, server, http: reqwest::Client::new(), _target_dir: target_dir }
    }

    async fn client(&self) -> Client {
        http_client(&self.server, &self.token).await
    }

    /// Send the unbounded `DELETE FROM orders`, expect it held and posted to Discord; returns the approval id
    /// and the session id.
    async fn held_delete(&self, client: &Client) -> (String, String) {
        let held = sql(client, "DELETE FROM orders").await;
        assert_eq!(structured(&held)["status"], "pending_approval", "{}\n{}", seen(&held), self.server.log());
        self.fake.wait_calls("create_message", 1).await;
        let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
        (id, structured(&held)["session_id"].as_str().unwrap().to_owned())
    }

    async fn await_approval(&self, client: &Client, id: &str) -> CallToolResult {
        let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
        client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap()
    }

    async fn rows(&self) -> i64 {
        airlock_tests::count(&self.airlock.target.url, "SELECT count(*) FROM orders").await
    }

    /// The approval's `(state, notifier_ref)` as the store has it.
    async fn approval_row(&self, id: &str) -> (String, Option<String>) {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.airlock.store_url).await.unwrap();
        let row = sqlx::query("SELECT state, notifier_ref FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        (row.try_get(0).unwrap(), row.try_get(1).unwrap())
    }

    async fn state(&self, id: &str) -> String {
        self.approval_row(id).await.0
    }

    async fn notifier_ref(&self, id: &str) -> Option<String> {
        self.approval_row(id).await.1
    }

    /// POST `body` to `/discord/interactions` with the given signature headers; returns status and answer.
    async fn post(&self, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("http://{}/discord/interactions", self.server.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("post interaction: {e}\n{}", self.server.log()));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Send an interaction signed by the fake's application key, now, as Discord does.
    async fn interact(&self, interaction: &Value) -> (u16, Value) {
        let body = interaction.to_string();
        let (ts, sig) = self.fake.sign(signature::now_s(), body.as_bytes());
        self.post(&body, &[(signature::TIMESTAMP_HEADER, &ts), (signature::SIGNATURE_HEADER, &sig)]).await
    }

    async fn approve(&self, user: &str, id: &str) -> (u16, Value) {
        self.interact(&self.fake.component(user, &format!("{APPROVE_PREFIX}{id}"))).await
    }

    async fn deny_click(&self, user: &str, id: &str) -> (u16, Value) {
        self.interact(&self.fake.component(user, &format!("{DENY_PREFIX}{id}"))).await
    }
}

/// An ephemeral answer (type 4, flag 64) with `text`.
fn ephemeral(text: &str) -> Value {
    json!({ "type": 4, "data": { "content": text, "flags": 64, "allowed_mentions": { "parse": [] } } })
}

const DEFERRED_UPDATE: u64 = 6;

#[tokio::test]
async fn approve_in_discord_runs_the_call_once_edits_the_message_and_replies_with_the_replay_link() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, session) = f.held_delete(&client).await;
    assert_eq!(f.rows().await, 3, "nothing runs before approval");

    // The request: posted with the bot token to the rule's channel, the details in an embed, the buttons
    // carrying the approval id, and the message reference stored with the approval.
    let post = &f.fake.calls_of("create_message")[0];
    assert!(post.authorized, "Authorization: Bot <token>");
    assert_eq!(post.path, format!("/channels/{CHANNEL_ID}/messages"));
    let embed = serde_json::to_string(&post.body["embeds"]).unwrap();
    for needle in [AGENT, "DELETE FROM orders", "approve-unbounded-writes", "shop", "sql_query", "dba, oncall", "<t:"] {
        assert!(embed.contains(needle), "{needle} missing from {embed}");
    }
    let buttons = post.body["components"][0]["components"].as_array().unwrap();
    assert_eq!((buttons[0]["style"].as_u64(), buttons[0]["label"].as_str()), (Some(3), Some("Approve")));
    assert_eq!(buttons[0]["custom_id"], format!("{APPROVE_PREFIX}{id}"));
    assert_eq!((buttons[1]["style"].as_u64(), buttons[1]["label"].as_str()), (Some(4), Some("Deny")));
    assert_eq!(buttons[1]["custom_id"], format!("{DENY_PREFIX}{id}"));
    assert!(buttons[2]["url"].as_str().unwrap().ends_with(&format!("/approvals/{id}")), "review link");
    assert_eq!(post.body["allowed_mentions"], json!({ "parse": [] }), "nobody is pinged");
    let (channel, message) = f.fake.request_message();
    assert_eq!(f.notifier_ref(&id).await, Some(format!("discord:{channel}:{message}")));

    // alice approves: a deferred update (the message is edited for everyone), and the agent gets the result.
    let (status, answer) = f.approve(ALICE, &id).await;
    assert_eq!((status, answer["type"].as_u64()), (200, Some(DEFERRED_UPDATE)), "{answer}");
    let done = f.await_approval(&client, &id).await;
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains("alice@example.com"), "{}", seen(&done));
    assert_eq!(f.rows().await, 0);
    assert_eq!(f.state(&id).await, ApprovalState::Executed.as_str());

    // The request message is edited in place: the decision, and no buttons.
    let edit = f.fake.wait_calls("edit_message", 1).await.remove(0);
    assert_eq!(edit.path, format!("/channels/{channel}/messages/{message}"));
    assert_eq!(edit.body["components"], json!([]), "buttons removed");
    let edited = serde_json::to_string(&edit.body["embeds"]).unwrap();
    assert!(edited.contains("Approved") && edited.contains("alice@example.com"), "{edited}");

    // The outcome is a reply to the request message, with the replay link.
    let posts = f.fake.wait_calls("create_message", 2).await;
    let reply = &posts[1];
    assert_eq!(reply.body["message_reference"]["message_id"], message.as_str());
    let text = reply.body["content"].as_str().unwrap();
    assert!(text.contains(&format!("/sessions/{session}")), "{text}");

    // A late click (double click, or someone else) runs nothing more and is told why.
    airlock_tests::exec(&f.airlock.target.url, "INSERT INTO orders (id, customer_id, amount_cents) VALUES (9, 1, 1)")
        .await;
    let done_already = VoteRefusal::AlreadyDecided { state: ApprovalState::Executed }.explain();
    assert_eq!(f.approve(ALICE, &id).await, (200, ephemeral(&done_already)));
    assert_eq!(f.rows().await, 1, "the approved DELETE ran exactly once");
    client.cancel().await.unwrap();
    assert_chains_verify(&f.airlock, &session);
}

#[tokio::test]
async fn concurrent_double_click_executes_once() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    let (a, b) = tokio::join!(f.approve(ALICE, &id), f.approve(ALICE, &id));
    let mut types = [a.1["type"].as_u64(), b.1["type"].as_u64()];
    types.sort();
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(types, [Some(4), Some(DEFERRED_UPDATE)], "one click decides, the other is told: {a:?} {b:?}");
    let refused = if a.1["type"] == 4 { &a.1 } else { &b.1 };
    assert_eq!(refused["data"]["flags"], 64);
    let done = f.await_approval(&client, &id).await;
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    let results = store_events(&f.airlock.store_url, "result").await;
    let executed = results.iter().filter(|r| r.to_string().contains(&id)).count();
    assert_eq!(executed, 1, "one execution recorded: {results:#?}");
    assert_eq!(f.rows().await, 0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn deny_opens_a_modal_and_its_reason_reaches_the_agent_and_nothing_runs() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    let (status, modal) = f.deny_click(ALICE, &id).await;
    assert_eq!((status, modal["type"].as_u64()), (200, Some(9)), "a MODAL answer: {modal}");
    assert_eq!(modal["data"]["custom_id"], format!("{DENY_MODAL_PREFIX}{id}"));
    let input = &modal["data"]["components"][0]["components"][0];
    assert_eq!((input["type"].as_u64(), input["custom_id"].as_str()), (Some(4), Some(REASON_INPUT)));
    assert_eq!(input["required"], true);
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str(), "clicking Deny alone decides nothing");

    let reason = "not during business hours";
    let submit = f.fake.modal_submit(ALICE, modal["data"]["custom_id"].as_str().unwrap(), REASON_INPUT, reason);
    let (status, answer) = f.interact(&submit).await;
    assert_eq!((status, answer["type"].as_u64()), (200, Some(DEFERRED_UPDATE)), "{answer}");
    let out = f.await_approval(&client, &id).await;
    assert_eq!(out.is_error, Some(true), "{}", seen(&out));
    assert_eq!(structured(&out)["status"], "denied", "{}", seen(&out));
    assert!(seen(&out).contains("alice@example.com") && seen(&out).contains(reason), "{}", seen(&out));
    assert_eq!(f.rows().await, 3, "nothing executed");

    let edit = f.fake.wait_calls("edit_message", 1).await.remove(0);
    let edited = serde_json::to_string(&edit.body["embeds"]).unwrap();
    assert!(edited.contains("Denied") && edited.contains(reason), "{edited}");
    assert_eq!(edit.body["components"], json!([]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn self_approval_and_unmapped_users_are_refused_with_an_ephemeral_explanation() {
    let humans =
        format!("{}{}", human(AGENT, "[\"dba\"]", AGENT_OWNER), human("bob@example.com", "[\"support\"]", BOB));
    let f = Fixture::start(Options { humans, ..Options::default() }).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;

    assert_eq!(f.approve(AGENT_OWNER, &id).await, (200, ephemeral(&VoteRefusal::SelfApproval.explain())));
    let not_approver = VoteRefusal::NotAnApprover { approvers: vec!["dba".into(), "oncall".into()] }.explain();
    assert_eq!(f.approve(BOB, &id).await, (200, ephemeral(&not_approver)));
    let unknown = ephemeral(&VoteRefusal::UnknownUser.explain());
    assert_eq!(f.approve(NOBODY, &id).await, (200, unknown.clone()));
    assert_eq!(f.deny_click(NOBODY, &id).await, (200, unknown), "no modal for an unmapped user");

    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());
    assert!(f.fake.calls_of("edit_message").is_empty());
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn forged_stale_and_unsigned_requests_are_refused_with_an_audit_event() {
    let f = Fixture::start(Options::default()).await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    let body = f.fake.component(ALICE, &format!("{APPROVE_PREFIX}{id}")).to_string();
    let now = signature::now_s();

    // Signed with another key.
    let other =
        Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap().as_ref())
            .unwrap();
    let forged = signature::sign(&other, &now.to_string(), body.as_bytes());
    let headers = |ts: &str, sig: &str| {
        [(signature::TIMESTAMP_HEADER, ts.to_owned()), (signature::SIGNATURE_HEADER, sig.to_owned())]
    };
    let post = |h: [(&'static str, String); 2], b: String| {
        let f = &f;
        async move { f.post(&b, &[(h[0].0, h[0].1.as_str()), (h[1].0, h[1].1.as_str())]).await.0 }
    };
    assert_eq!(post(headers(&now.to_string(), &forged), body.clone()).await, 401);
    // Signed by the application's key, but six minutes old, or six minutes ahead.
    let (ts, sig) = f.fake.sign(now - 6 * 60, body.as_bytes());
    assert_eq!(post(headers(&ts, &sig), body.clone()).await, 401);
    let (ts, sig) = f.fake.sign(now + 6 * 60, body.as_bytes());
    assert_eq!(post(headers(&ts, &sig), body.clone()).await, 401);
    // A valid signature over another body does not carry over.
    let (ts, sig) = f.fake.sign(now, body.as_bytes());
    assert_eq!(post(headers(&ts, &sig), format!("{body} ")).await, 401);
    // No signature at all.
    assert_eq!(f.post(&body, &[]).await.0, 401);

    let audit = store_events(&f.airlock.store_url, "auth_failed").await;
    let refused = audit.iter().filter(|e| e.to_string().contains("discord signature")).count();
    assert_eq!(refused, 5, "{audit:#?}");

    // Nothing changed; the genuine request (same body, valid signature) then works.
    assert_eq!(f.state(&id).await, ApprovalState::Pending.as_str());
    assert_eq!(f.rows().await, 3);
    let (status, answer) =
        f.post(&body, &[(signature::TIMESTAMP_HEADER, &ts), (signature::SIGNATURE_HEADER, &sig)]).await;
    assert_eq!((status, answer["type"].as_u64()), (200, Some(DEFERRED_UPDATE)), "{answer}");
    let done = f.await_approval(&client, &id).await;
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn ping_is_answered_with_pong_only_when_signed() {
    let f = Fixture::start(Options::default()).await;
    assert_eq!(f.interact(&f.fake.ping()).await, (200, json!({ "type": 1 })));
    // Discord checks that an endpoint refuses bad signatures before accepting its URL.
    let body = f.fake.ping().to_string();
    let (ts, _) = f.fake.sign(signature::now_s(), body.as_bytes());
    let zero = "0".repeat(128);
    assert_eq!(f.post(&body, &[(signature::TIMESTAMP_HEADER, &ts), (signature::SIGNATURE_HEADER, &zero)]).await.0, 401);
}

#[tokio::test]
async fn rate_limited_and_failing_posts_are_retried_and_the_request_still_posted() {
    let f = Fixture::start(Options::default()).await;
    f.fake.fail_next("create_message", Failure::RateLimited(0.4));
    f.fake.fail_next("create_message", Failure::Status(502, "Bad Gateway", 0));
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    let statuses: Vec<u16> = f.fake.calls_of("create_message").iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![429, 502, 200]);
    let (channel, message) = f.fake.request_message();
    assert_eq!(f.notifier_ref(&id).await, Some(format!("discord:{channel}:{message}")));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn discord_error_on_post_fails_the_held_call_closed_with_discords_message() {
    let f = Fixture::start(Options::default()).await;
    f.fake.fail_next("create_message", Failure::Status(403, "Missing Access", 50001));
    let client = f.client().await;
    let out = sql(&client, "DELETE FROM orders").await;
    let msg = seen(&out);
    assert!(msg.contains("could not be posted") && msg.contains("Missing Access (50001)"), "{msg}");
    assert_eq!(f.fake.calls_of("create_message").len(), 1, "a 403 is not retried");
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn rule_channel_picks_the_platform_slack_by_default_and_discord_for_discord_channels() {
    // Slack is configured too and is the default channel; only the rule naming a discord: channel goes there.
    let slack = airlock_tests::fake_slack::FakeSlack::start().await;
    let extra = format!(
        "\n[slack]\nbot_token = {{ inline = \"{}\" }}\nsigning_secret = {{ inline = \"s3cret\" }}\n\
         api_base_url = \"{}\"\n",
        airlock_tests::fake_slack::BOT_TOKEN,
        slack.api_base_url()
    );
    let approval =
        format!("approval: {{ approvers: [dba, oncall], quorum: 1, timeout: 15m, channel: \"discord:{CHANNEL_ID}\" }}");
    let f = Fixture::start(Options {
        approval: Some(approval),
        default_channel: Some("#airlock-approvals".into()),
        extra,
        ..Options::default()
    })
    .await;
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    assert!(slack.calls_of("chat.postMessage").is_empty(), "the discord: channel did not go to Slack");
    assert!(f.notifier_ref(&id).await.unwrap_or_default().starts_with("discord:"));

    // A call held by another rule (schema changes; no channel of its own) goes to the default channel: Slack.
    let held = sql(&client, "CREATE TABLE audit_copy (id INTEGER)").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let posted = slack.wait_calls("chat.postMessage", 1).await;
    assert_eq!(posted[0].body["channel"], "#airlock-approvals");
    assert_eq!(f.fake.calls_of("create_message").len(), 1, "nothing more went to Discord");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn airlock_slash_command_is_registered_and_answered() {
    let f = Fixture::start(Options::default()).await;
    let registered = f.fake.wait_calls("register_commands", 1).await.remove(0);
    assert!(registered.authorized);
    assert_eq!(registered.path, format!("/applications/{APPLICATION_ID}/commands"));
    let command = &registered.body[0];
    assert_eq!((command["name"].as_str(), command["type"].as_u64()), (Some("airlock"), Some(1)));
    let option = &command["options"][0];
    assert_eq!(
        (option["name"].as_str(), option["type"].as_u64(), option["required"].as_bool()),
        (Some("command"), Some(3), Some(true))
    );

    // The option's text runs as the shared admin command; `help` answers privately (ephemeral) and inline.
    let (status, answer) = f.interact(&f.fake.command(ALICE, "help")).await;
    assert_eq!((status, answer["type"].as_u64(), answer["data"]["flags"].as_u64()), (200, Some(4), Some(64)));
    assert!(answer["data"]["content"].as_str().unwrap().contains("policy list"), "{answer}");
    // An unmapped Discord user is refused by the command model, and the refusal is audited with the channel.
    let (_, refused) = f.interact(&f.fake.command(NOBODY, "policy list")).await;
    assert!(refused["data"]["content"].as_str().unwrap().contains("not mapped"), "{refused}");
    let audit = store_events(&f.airlock.store_url, "admin_command").await;
    let discord: Vec<&Value> = audit.iter().filter(|e| e["platform"] == "discord").collect();
    assert_eq!(discord.len(), 2, "{audit:#?}");
    assert_eq!(discord[0]["channel"], format!("discord:{CHANNEL_ID}"));
    assert_eq!((discord[1]["user_id"].as_str(), discord[1]["outcome"].as_str()), (Some(NOBODY), Some("refused")));
}

#[tokio::test]
async fn gateway_mode_receives_interactions_heartbeats_and_resumes_after_reconnect() {
    let f = Fixture::start(Options {
        gateway_mode: true,
        heartbeat: Some(std::time::Duration::from_millis(300)),
        ..Options::default()
    })
    .await;
    // The URL comes from GET /gateway/bot; IDENTIFY carries the bot token and asks for no intents.
    let identify = f.fake.wait_frames(2, 1).await.remove(0);
    assert_eq!(identify["d"]["token"], fake_discord::BOT_TOKEN);
    assert_eq!(identify["d"]["intents"], 0);
    assert!(f.fake.calls_of("gateway_bot")[0].authorized);
    let client = f.client().await;
    let (id, _) = f.held_delete(&client).await;
    // Heartbeats flow at the announced interval (and are acknowledged, or the bot would reconnect).
    f.fake.wait_frames(1, 2).await;
    assert_eq!(f.fake.gateways_opened(), 1, "acknowledged heartbeats keep the connection");

    // Deny arrives as INTERACTION_CREATE; the answer (the modal) goes to the interaction callback.
    let click = f.fake.component(ALICE, &format!("{DENY_PREFIX}{id}"));
    f.fake.push_interaction(click.clone()).await;
    let callback = f.fake.wait_calls("interaction_callback", 1).await.remove(0);
    assert_eq!(
        callback.path,
        format!("/interactions/{}/{}/callback", click["id"].as_str().unwrap(), click["token"].as_str().unwrap())
    );
    assert_eq!(callback.body["type"], 9, "{}", callback.body);
    let modal_id = callback.body["data"]["custom_id"].as_str().unwrap().to_owned();

    // Discord asks for a reconnect: the bot resumes the session (same id, last sequence number).
    f.fake.push_gateway(json!({ "op": 7, "d": null })).await;
    let resume = f.fake.wait_frames(6, 1).await.remove(0);
    assert_eq!(resume["d"]["session_id"], fake_discord::SESSION_ID);
    assert!(resume["d"]["seq"].as_u64().is_some_and(|s| s >= 2), "{resume}");
    assert_eq!(f.fake.gateways_opened(), 2);
    assert_eq!(f.fake.frames().iter().filter(|fr| fr["op"] == 2).count(), 1, "resumed, not identified again");

    // The reason arrives on the resumed session and denies the call.
    let reason = "wrong database";
    f.fake.push_interaction(f.fake.modal_submit(ALICE, &modal_id, REASON_INPUT, reason)).await;
    let answered = f.fake.wait_calls("interaction_callback", 2).await;
    assert_eq!(answered[1].body["type"], DEFERRED_UPDATE, "{}", answered[1].body);
    let out = f.await_approval(&client, &id).await;
    assert_eq!(structured(&out)["status"], "denied", "{}", seen(&out));
    assert!(seen(&out).contains(reason), "{}", seen(&out));
    assert_eq!(f.rows().await, 3);
    client.cancel().await.unwrap();
}
