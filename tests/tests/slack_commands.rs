//! `/airlock …` admin slash commands end to end through the real binary: `airlock serve` (Postgres store unless
//! a test says otherwise) with the Slack bot pointed at the fake Slack, signed slash-command POSTs on
//! `/slack/commands` shaped like Slack's, and an MCP client (rmcp) as the agent whose calls show what the
//! commands changed.
#![allow(clippy::unwrap_used)]

mod common;
mod slack_support;

use airlock_tests::airlock::{Airlock, Server, store_events};
use airlock_tests::fake_slack::{BOT_TOKEN, CHANNEL_ID, FakeSlack};
use approval_bot::slack::signature;
use common::{Client, SHOP_SQL, http_client, seen, sql, structured};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// Mapped people: root (admin), alice (dba, approver), mallory (support: may read, not change).
const ROOT: &str = "UROOT";
const ALICE: &str = "UALICE";
const MALLORY: &str = "UMALLORY";
/// Not in `[[humans]]`.
const STRANGER: &str = "USTRANGER";
/// The agent's token name, hence its subject.
const AGENT: &str = "autogen-ci";
const AUDIT_CHANNEL: &str = "#airlock-audit";
/// The shipped rule that lets `SELECT` through.
const READS_RULE: &str = "allow-reads-and-bounded-writes";

struct Fixture {
    fake: FakeSlack,
    airlock: Airlock,
    token: String,
    server: Server,
    http: reqwest::Client,
    _target_dir: tempfile::TempDir,
}

/// What a slash command got back: the HTTP status and Slack's message fields.
#[derive(Debug)]
struct Answer {
    status: u16,
    response_type: String,
    text: String,
}

impl Fixture {
    async fn start(postgres: bool) -> Self {
        let fake = FakeSlack::start().await;
        let target_dir = tempfile::tempdir().unwrap();
        let target = Airlock::sqlite_target(target_dir.path());
        airlock_tests::exec(&target.url, SHOP_SQL).await;
        let store = if postgres { Some(airlock_tests::postgres_db().await.url) } else { None };
        let airlock = Airlock::new(target, store);
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(&format!(
            "\n[approval]\nin_call_wait = \"200ms\"\nmax_await = \"30s\"\naudit_channel = \"{AUDIT_CHANNEL}\"\n\n\
             [slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\nsigning_secret = {{ inline = \"{SIGNING_SECRET}\" }}\n\
             mode = \"http\"\napi_base_url = \"{}\"\n\
             [[humans]]\nsubject = \"root@example.com\"\ngroups = [\"admin\"]\nslack_user = \"{ROOT}\"\n\
             [[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\"]\nslack_user = \"{ALICE}\"\n\
             [[humans]]\nsubject = \"mallory@example.com\"\ngroups = [\"support\"]\nslack_user = \"{MALLORY}\"\n",
            fake.api_base_url(),
        ));
        std::fs::write(&airlock.config, config).unwrap();
        let token = airlock.create_token(AGENT, "agents");
        let server = airlock.serve();
        Self { fake, airlock, token, server, http: reqwest::Client::new(), _target_dir: target_dir }
    }

    async fn client(&self) -> Client {
        http_client(&self.server, &self.token).await
    }

    /// `user` types `/airlock <text>` in the approvals channel: a signed form POST like Slack's.
    async fn command(&self, user: &str, text: &str) -> Answer {
        command_on(&self.http, &self.server, user, text).await
    }

    /// `command`, expecting a private answer; returns its text.
    async fn private(&self, user: &str, text: &str) -> String {
        let a = self.command(user, text).await;
        assert_eq!((a.status, a.response_type.as_str()), (200, "ephemeral"), "/airlock {text}: {a:?}");
        a.text
    }

    /// Announcements posted to the audit channel so far, waiting for at least `n`.
    async fn announcements(&self, n: usize) -> Vec<String> {
        let calls = self
            .fake
            .wait_for(&format!("{n} announcement(s)"), |cs| {
                cs.iter().filter(|c| c.method == "chat.postMessage" && c.body["channel"] == AUDIT_CHANNEL).count() >= n
            })
            .await;
        calls
            .iter()
            .filter(|c| c.method == "chat.postMessage" && c.body["channel"] == AUDIT_CHANNEL)
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    async fn await_approval(&self, client: &Client, id: &str) -> CallToolResult {
        let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
        client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap()
    }

    /// Send the unbounded `DELETE FROM orders` (held by policy); returns the approval id.
    async fn held_delete(&self, client: &Client) -> String {
        let held = sql(client, "DELETE FROM orders").await;
        assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
        structured(&held)["approval_id"].as_str().unwrap().to_owned()
    }
}

async fn command_on(http: &reqwest::Client, server: &Server, user: &str, text: &str) -> Answer {
    let body = serde_urlencoded::to_string([
        ("token", "deprecated-verification-token"),
        ("team_id", "T0001"),
        ("team_domain", "example"),
        ("channel_id", CHANNEL_ID),
        ("channel_name", "airlock-approvals"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/airlock"),
        ("text", text),
        ("api_app_id", "A0001"),
        ("response_url", "https://hooks.slack.invalid/commands/T0001/1/abc"),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ])
    .unwrap();
    let ts = signature::now_s().to_string();
    let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
    let r = http
        .post(format!("http://{}/slack/commands", server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(signature::TIMESTAMP_HEADER, &ts)
        .header(signature::SIGNATURE_HEADER, &sig)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("post to /slack/commands: {e}\n{}", server.log()));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    Answer {
        status,
        response_type: v["response_type"].as_str().unwrap_or_default().to_owned(),
        text: v["text"].as_str().unwrap_or_default().to_owned(),
    }
}

fn status(r: &CallToolResult) -> String {
    structured(r)["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn non_admins_are_refused_ephemerally_and_every_refusal_is_audited() {
    let f = Fixture::start(true).await;
    let refused = f.private(MALLORY, &format!("policy set {READS_RULE} block")).await;
    assert!(refused.contains("Only admins") && refused.contains("mallory@example.com"), "{refused}");
    let refused = f.private(MALLORY, "freeze autogen-ci").await;
    assert!(refused.contains("Only admins"), "{refused}");
    let stranger = f.private(STRANGER, "policy list").await;
    assert!(stranger.contains("not mapped"), "{stranger}");
    // Read-only commands are fine for any mapped human.
    let list = f.private(MALLORY, "policy list").await;
    assert!(list.contains(READS_RULE) && list.contains("allow"), "{list}");

    // Nothing changed: reads still go through.
    let client = f.client().await;
    assert_eq!(status(&sql(&client, "SELECT id FROM orders").await), "completed");

    let events = store_events(&f.airlock.store_url, "admin_command").await;
    let outcomes: Vec<(String, String)> = events
        .iter()
        .map(|e| (e["user_id"].as_str().unwrap_or("").to_owned(), e["outcome"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (MALLORY.to_owned(), "refused".to_owned()),
            (MALLORY.to_owned(), "refused".to_owned()),
            (STRANGER.to_owned(), "refused".to_owned()),
            (MALLORY.to_owned(), "ok".to_owned()),
        ]
    );
    assert_eq!(events[0]["command"], "policy set");
    assert!(store_events(&f.airlock.store_url, "policy_changed").await.is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn policy_set_applies_at_once_history_shows_it_and_rollback_restores_it() {
    let f = Fixture::start(true).await;
    let client = f.client().await;
    assert_eq!(status(&sql(&client, "SELECT id FROM orders").await), "completed");

    // A typo is refused, naming the close rule.
    let typo = f.private(ROOT, "policy set allow-reads-and-bounded-write block").await;
    assert!(typo.contains("no policy rule named") && typo.contains(READS_RULE), "{typo}");

    // A change that would not load as a policy file is refused and stores nothing.
    let invalid = f.private(ROOT, &format!("policy set {READS_RULE} require_approval")).await;
    assert!(invalid.contains("would make the policy invalid") && invalid.contains("approvers"), "{invalid}");

    // Set: the same MCP session is blocked by the very next call.
    let set = f.private(ROOT, &format!("policy set {READS_RULE} block")).await;
    assert!(set.contains("v1") && set.contains(AUDIT_CHANNEL), "{set}");
    let blocked = sql(&client, "SELECT id FROM orders").await;
    assert_eq!(status(&blocked), "blocked", "{}", seen(&blocked));
    assert_eq!(structured(&blocked)["rule"], READS_RULE);
    let announced = f.announcements(1).await;
    assert!(
        announced[0].contains("root@example.com") && announced[0].contains("(policy file) → block"),
        "{announced:?}"
    );

    // `policy export` writes the effective policy; `policy check` accepts it, and it has the change.
    let export = f.airlock.dir.path().join("exported.yaml");
    let out = f.airlock.run(&["policy", "export", "--output", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let check_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&export, check_dir.path().join("effective.yaml")).unwrap();
    let check = f.airlock.run(&["policy", "check", "--dir", check_dir.path().to_str().unwrap()]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let exported = gateway_core::policy::load_dir(check_dir.path()).unwrap();
    let rule = exported.rules().iter().find(|r| r.rule.name == READS_RULE).unwrap();
    assert_eq!(rule.rule.action, Some(gateway_core::policy::Action::Block));

    // History: who, when, the command and the diff.
    let history = f.private(MALLORY, "policy history").await;
    assert!(history.contains("*v1*") && history.contains("root@example.com"), "{history}");
    assert!(history.contains(&format!("policy set {READS_RULE} block")), "{history}");
    assert!(history.contains(&format!("{READS_RULE}: (policy file) → block")), "{history}");
    assert!(history.contains(" UTC"), "when: {history}");

    // Rollback to version 0 (the files alone): reads pass again, as version 2.
    let rolled = f.private(ROOT, "policy rollback 0").await;
    assert!(rolled.contains("v2"), "{rolled}");
    assert_eq!(status(&sql(&client, "SELECT id FROM orders").await), "completed");
    let history = f.private(ROOT, "policy history").await;
    assert!(history.contains(&format!("{READS_RULE}: block → (policy file)")), "{history}");
    f.announcements(2).await;

    let changes = store_events(&f.airlock.store_url, "policy_changed").await;
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0]["actor"], "root@example.com");
    client.cancel().await.unwrap();
}

/// On the SQLite store: freeze refuses the identity's next call in an open session and denies its pending
/// approval, waking the agent waiting on it; unfreeze restores it.
#[tokio::test]
async fn freeze_blocks_an_agent_mid_session_and_denies_its_pending_approvals() {
    let f = Fixture::start(false).await;
    let client = f.client().await;
    let waiter = f.client().await;
    assert_eq!(status(&sql(&client, "SELECT id FROM orders").await), "completed");
    let approval = f.held_delete(&client).await;

    // The agent waits on its approval while an admin freezes it.
    let waiting = f.await_approval(&waiter, &approval);
    let freeze = async {
        f.fake.wait_calls("chat.postMessage", 1).await; // the approval request went out
        f.private(ROOT, "freeze autogen-ci leaked token").await
    };
    let (denied, reply) = tokio::join!(waiting, freeze);
    assert!(reply.contains("frozen") && reply.contains(&approval), "{reply}");
    assert_eq!(status(&denied), "denied", "{}", seen(&denied));
    assert!(seen(&denied).contains("frozen: leaked token"), "{}", seen(&denied));
    assert!(seen(&denied).contains("root@example.com"), "{}", seen(&denied));

    // The same session is refused before classification.
    let refused = sql(&client, "SELECT id FROM orders").await;
    assert_eq!(status(&refused), "blocked", "{}", seen(&refused));
    assert!(
        seen(&refused).contains("identity autogen-ci is frozen by root@example.com: leaked token"),
        "{}",
        seen(&refused)
    );
    assert_eq!(airlock_tests::count(&f.airlock.target.url, "SELECT count(*) FROM orders").await, 3);
    let frozen = f.private(MALLORY, "frozen").await;
    assert!(frozen.contains("autogen-ci") && frozen.contains("leaked token"), "{frozen}");
    let announced = f.announcements(1).await;
    assert!(announced[0].contains("autogen-ci") && announced[0].contains("leaked token"), "{announced:?}");

    // Unfreeze: calls go through policy again.
    f.private(ROOT, "unfreeze autogen-ci").await;
    assert_eq!(status(&sql(&client, "SELECT id FROM orders").await), "completed");
    assert_eq!(f.private(ROOT, "frozen").await, "No identity is frozen.");

    assert_eq!(store_events(&f.airlock.store_url, "identity_frozen").await.len(), 1);
    assert_eq!(store_events(&f.airlock.store_url, "identity_unfrozen").await.len(), 1);
    let refusals = store_events(&f.airlock.store_url, "frozen_call_refused").await;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["subject"], AGENT);
    client.cancel().await.unwrap();
    waiter.cancel().await.unwrap();
}

#[tokio::test]
async fn pending_approve_and_deny_work_from_the_slash_command() {
    let f = Fixture::start(true).await;
    let client = f.client().await;
    let first = f.held_delete(&client).await;
    f.fake.wait_calls("chat.postMessage", 1).await;

    let pending = f.private(ALICE, "pending").await;
    assert!(pending.contains(&first) && pending.contains("DELETE FROM orders"), "{pending}");
    // Not an approver: the broker's rules apply to slash commands too.
    let refused = f.private(MALLORY, &format!("approve {first}")).await;
    assert!(refused.contains("Only members of"), "{refused}");
    let approved = f.private(ALICE, &format!("approve {first}")).await;
    assert!(approved.contains("Approved"), "{approved}");
    let done = f.await_approval(&client, &first).await;
    assert_eq!(status(&done), "completed", "{}", seen(&done));

    let second = f.held_delete(&client).await;
    f.fake.wait_calls("chat.postMessage", 3).await; // request 1, its outcome, request 2
    let denied = f.private(ALICE, &format!("deny {second} not during the incident")).await;
    assert!(denied.contains("Denied"), "{denied}");
    let done = f.await_approval(&client, &second).await;
    assert_eq!(status(&done), "denied", "{}", seen(&done));
    assert!(seen(&done).contains("not during the incident"), "{}", seen(&done));
    assert_eq!(f.private(ALICE, "pending").await, "No open approvals in this channel.");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sessions_lists_replay_links() {
    let f = Fixture::start(true).await;
    let client = f.client().await;
    let r = sql(&client, "SELECT id FROM orders").await;
    let session = structured(&r)["session_id"].as_str().unwrap().to_owned();
    let list = f.private(MALLORY, &format!("sessions {AGENT} 1h")).await;
    assert!(list.contains(&format!("/sessions/{session}")) && list.contains(AGENT), "{list}");
    let one = f.private(MALLORY, &format!("session {session}")).await;
    assert!(one.contains("SELECT id FROM orders") && one.contains("completed"), "{one}");
    assert_eq!(f.private(MALLORY, "sessions nobody-at-all").await, "No matching sessions.");
    client.cancel().await.unwrap();
}

/// Two `airlock serve` on one Postgres store: a change made through A governs calls through B.
#[tokio::test]
async fn a_change_on_one_replica_governs_the_other() {
    let f = Fixture::start(true).await;
    let b = f.airlock.serve();
    let client_b = http_client(&b, &f.token).await;
    assert_eq!(status(&sql(&client_b, "SELECT id FROM orders").await), "completed");
    f.private(ROOT, &format!("policy set {READS_RULE} block")).await;
    f.private(ROOT, "freeze someone-else containment drill").await;
    // B hears of it by NOTIFY (or its 1 s sweep); wait for B's frozen list, then B's call is blocked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = sql(&client_b, "SELECT id FROM orders").await;
        if status(&r) == "blocked" {
            assert_eq!(structured(&r)["rule"], READS_RULE, "{}", seen(&r));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "replica B never applied the change:\n{}", b.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let frozen = command_on(&f.http, &b, MALLORY, "frozen").await;
    assert!(frozen.text.contains("someone-else"), "{frozen:?}");
    client_b.cancel().await.unwrap();
}

/// Socket Mode: a `slash_commands` envelope is acked at once and answered through the Web API, ephemerally.
#[tokio::test]
async fn socket_mode_slash_command_is_acked_and_answered_ephemerally() {
    let e = slack_support::env(slack_support::Options { socket_mode: true, ..Default::default() }).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = e.bot.spawn_socket_mode(e.gw.clone(), cancel.clone());
    e.fake.wait_sockets(1).await;
    let payload = json!({
        "token": "deprecated", "team_id": "T0001", "channel_id": CHANNEL_ID, "channel_name": "airlock-approvals",
        "user_id": slack_support::MALLORY, "user_name": "mallory", "command": "/airlock", "text": "policy list",
        "response_url": "https://hooks.slack.invalid/commands/1", "trigger_id": "1.2.3",
    });
    e.fake
        .push(json!({ "envelope_id": "env-cmd-1", "type": "slash_commands", "payload": payload,
                      "accepts_response_payload": true }))
        .await;
    e.fake.wait_ack("env-cmd-1").await;
    let reply = e.fake.wait_calls("chat.postEphemeral", 1).await.remove(0);
    assert_eq!(reply.body["user"], slack_support::MALLORY);
    assert_eq!(reply.body["channel"], CHANNEL_ID);
    let text = reply.body["text"].as_str().unwrap_or_default();
    assert!(text.contains("approve-unbounded-writes"), "{text}");
    task.stop();
    task.stopped().await;
}

/// Without `[approval] audit_channel`, a change is announced by answering in the channel for everyone; reads
/// stay private.
#[tokio::test]
async fn without_an_audit_channel_changes_are_answered_in_channel() {
    use approval_bot::commands::{Invocation, Platform, run};
    let e = slack_support::env(slack_support::Options::default()).await;
    let inv = |text: &str| Invocation {
        platform: Platform::Slack,
        user_id: slack_support::REQUESTER.into(),
        channel: CHANNEL_ID.into(),
        text: text.into(),
    };
    let change = run(&e.gw, inv("freeze someone-else drill")).await;
    assert!(!change.ephemeral && change.text.contains("someone-else"), "{change:?}");
    let read = run(&e.gw, inv("frozen")).await;
    assert!(read.ephemeral && read.text.contains("drill"), "{read:?}");
    assert!(e.fake.calls_of("chat.postMessage").is_empty(), "nothing posted on its own");
}
