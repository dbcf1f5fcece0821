//! `ssh_run` and `kube_exec` end to end through the real `airlock` binary, as an agent sees them: an MCP client
//! (rmcp) over streamable HTTP or stdio, a real OpenSSH server on loopback (`airlock_tests::sshd`), the fake
//! Kubernetes API server (`airlock_tests::fake_kube`), and for held commands the fake Slack with signed clicks
//! on `/slack/interactions`. Every "dangerous" command here is one Airlock blocks or holds; a marker file the
//! command would create proves it never ran.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlock_tests::airlock::{Airlock, Server, store_events};
use airlock_tests::fake_kube::{FakeKube, FakePod};
use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
use airlock_tests::sshd::Sshd;
use approval_bot::slack::blocks::{APPROVE_ACTION, DENY_ACTION};
use approval_bot::slack::signature;
use common::{assert_chains_verify, http_client, seen, stdio_client, structured};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, Implementation, ProgressNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// An AWS access key id the masker recognises.
const AWS_KEY: &str = "AKIAZ7QW3ERT5YUI2OPL";
/// The agent's token name, hence its subject.
const AGENT: &str = "autogen-ci";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The Slack account of the on-call engineer (group `oncall`, the approvers of `approve-other-commands`).
const ONCALL: &str = "UONCALL";
const ONCALL_SUBJECT: &str = "oncall@example.com";

/// An Airlock installation (shipped policies, SQLite store, the harness's `shop` connection) with `extra` TOML
/// appended to its `airlock.toml`.
struct Install {
    airlock: Airlock,
    _shop: tempfile::TempDir,
}

impl Install {
    fn new(extra: &str) -> Self {
        let shop = tempfile::tempdir().unwrap();
        let airlock = Airlock::new(Airlock::sqlite_target(shop.path()), None);
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push('\n');
        config.push_str(extra);
        std::fs::write(&airlock.config, config).unwrap();
        Self { airlock, _shop: shop }
    }
}

fn start_sshd() -> Sshd {
    Sshd::start().unwrap_or_else(|e| panic!("the SSH tests need a real sshd: {e}"))
}

/// Connection `web`: the test sshd, key authentication, its host key pinned.
fn ssh_connection(sshd: &Sshd) -> String {
    format!(
        "[connections.web]\nkind = \"ssh\"\ndescription = \"test web host\"\nurl = \"ssh://{}@127.0.0.1:{}\"\n\
         private_key = {{ file = {:?} }}\nhost_key = {:?}\n",
        sshd.user(),
        sshd.port(),
        sshd.client_key_path().display().to_string(),
        sshd.host_key_line()
    )
}

/// A file in the login user's home that a command under test would create; unique per test.
fn marker(sshd: &Sshd) -> PathBuf {
    sshd.home().join(format!("airlock-e2e-marker-{}", uuid::Uuid::new_v4().simple()))
}

async fn call(client: &Peer<RoleClient>, tool: &'static str, args: Value) -> CallToolResult {
    let args = args.as_object().cloned().unwrap();
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool} call: {e}"))
}

async fn ssh(client: &Peer<RoleClient>, command: &str) -> CallToolResult {
    call(client, "ssh_run", json!({ "connection": "web", "command": command })).await
}

/// The text content (what a text-only model reads).
fn text(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

/// The connection named `name` in a `list_connections` result.
fn connection<'a>(r: &'a CallToolResult, name: &str) -> &'a Value {
    let list = structured(r)["connections"].as_array().unwrap_or_else(|| panic!("no connections: {}", seen(r)));
    list.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("{name} not listed: {}", seen(r)))
}

#[tokio::test]
async fn ssh_run_over_http_returns_output_and_exit_code_and_blocks_destructive_commands() {
    let sshd = start_sshd();
    let install = Install::new(&ssh_connection(&sshd));
    let token = install.airlock.create_token(AGENT, "agents");
    let server = install.airlock.serve();
    let client = http_client(&server, &token).await;

    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"ssh_run") && names.contains(&"kube_exec"), "{names:?}");

    // The agent finds the host and the tool it takes.
    let listed = call(&client, "list_connections", json!({})).await;
    assert_eq!(listed.is_error, Some(false), "{}", seen(&listed));
    let web = connection(&listed, "web");
    assert_eq!((web["kind"].as_str(), web["tool"].as_str()), (Some("ssh"), Some("ssh_run")), "{web}");
    assert!(text(&listed).contains("- web (ssh, use ssh_run): test web host"), "{}", text(&listed));

    // A command that ran is a success whatever its exit status; stdout, stderr and exit_code are separate.
    let r = ssh(&client, "echo ok; echo err >&2; exit 3").await;
    assert_eq!(r.is_error, Some(false), "{}\n{}", seen(&r), server.log());
    let s = structured(&r);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!((s["stdout"].as_str(), s["stderr"].as_str()), (Some("ok\n"), Some("err\n")), "{s}");
    assert_eq!(s["exit_code"], 3, "{s}");
    assert_eq!((s["truncated"].as_bool(), s["timed_out"].as_bool()), (Some(false), Some(false)), "{s}");
    let session = s["session_id"].as_str().unwrap().to_owned();
    let replay = s["replay_url"].as_str().unwrap();
    assert!(replay.starts_with(&format!("http://{}/sessions/{session}#call-", server.addr)), "{replay}");
    let t = text(&r);
    assert!(t.starts_with("status: completed. exit 3."), "{t}");
    assert!(t.contains("stdout:\n```\nok\n```") && t.contains("stderr:\n```\nerr\n```"), "{t}");

    // A destructive line is refused before it reaches the host, with the rule named so the model can adapt.
    let marker = marker(&sshd);
    let r = ssh(&client, &format!("touch {}; rm -rf /", marker.display())).await;
    assert_eq!(r.is_error, Some(true), "{}", seen(&r));
    assert_eq!(structured(&r)["status"], "blocked", "{}", seen(&r));
    assert_eq!(structured(&r)["rule"], "block-destructive-commands", "{}", seen(&r));
    assert!(text(&r).contains("block-destructive-commands"), "{}", text(&r));
    assert!(structured(&r).get("exit_code").is_none(), "nothing ran: {}", seen(&r));
    assert!(!marker.exists(), "the blocked command ran on the host");

    client.cancel().await.unwrap();
    assert_chains_verify(&install.airlock, &session);
}

#[tokio::test]
async fn kube_exec_over_stdio_returns_the_exit_code_masks_secrets_and_refuses_other_namespaces() {
    let fake =
        FakeKube::start(vec![FakePod::new("shop", "web-0", &["app"]), FakePod::new("default", "debug", &["debug"])])
            .await;
    let shop = tempfile::tempdir().unwrap();
    let ca = shop.path().join("fake-kube-ca.pem");
    std::fs::write(&ca, fake.ca_pem()).unwrap();
    let install = Install::new(&format!(
        "[connections.cluster]\nkind = \"kubernetes\"\ndescription = \"test cluster\"\nurl = \"{}\"\nca_cert = {:?}\n\
         token = {{ inline = {:?} }}\nnamespaces = [\"shop\", \"kube-*\"]\n",
        fake.url(),
        ca.display().to_string(),
        fake.token()
    ));
    let token = install.airlock.create_token(AGENT, "agents");
    let client = stdio_client(&install.airlock, &token).await;
    let exec = |namespace: &str, pod: &str, argv: &[&str]| json!({ "connection": "cluster", "namespace": namespace, "pod": pod, "command": argv });

    let listed = call(&client, "list_connections", json!({})).await;
    let cluster = connection(&listed, "cluster");
    assert_eq!((cluster["kind"].as_str(), cluster["tool"].as_str()), (Some("kubernetes"), Some("kube_exec")));
    assert_eq!(cluster["namespaces"], json!(["shop", "kube-*"]), "{cluster}");

    // The exit status comes back from the status channel; a non-zero one is not a tool error.
    let r = call(&client, "kube_exec", exec("shop", "web-0", &["sh", "-c", "echo out; echo err >&2; exit 4"])).await;
    assert_eq!(r.is_error, Some(false), "{}", seen(&r));
    let s = structured(&r);
    assert_eq!((s["status"].as_str(), s["exit_code"].as_i64()), (Some("completed"), Some(4)), "{s}");
    assert_eq!((s["stdout"].as_str(), s["stderr"].as_str()), (Some("out\n"), Some("err\n")), "{s}");
    assert!(text(&r).starts_with("status: completed. exit 4."), "{}", text(&r));

    // A secret the pod prints is masked, and so is the gateway's own cluster token.
    std::fs::write(
        fake.workdir().join("leak.txt"),
        format!("aws_access_key_id = {AWS_KEY}\ncluster token {}\nfine line\n", fake.token()),
    )
    .unwrap();
    let r = call(&client, "kube_exec", exec("shop", "web-0", &["cat", "leak.txt"])).await;
    assert_eq!(r.is_error, Some(false), "{}", seen(&r));
    let s = structured(&r);
    assert_eq!(s["exit_code"], 0, "{s}");
    assert!(s["stdout"].as_str().unwrap().contains("fine line"), "{s}");
    let everything = seen(&r);
    assert!(!everything.contains(AWS_KEY), "AWS key leaked: {everything}");
    assert!(!everything.contains(&fake.token()), "the cluster token leaked: {everything}");
    assert!(s["masked"]["aws_key"].as_u64() >= Some(1), "{s}");
    assert!(text(&r).contains("masked: "), "the model is told values were masked: {}", text(&r));

    // A namespace outside the connection's list is refused before anything reaches the cluster.
    let before = fake.execs().len();
    let r = call(&client, "kube_exec", exec("default", "debug", &["uptime"])).await;
    assert_eq!(r.is_error, Some(true), "{}", seen(&r));
    assert_eq!(structured(&r)["status"], "error", "{}", seen(&r));
    assert!(text(&r).contains("does not allow namespace \"default\""), "{}", text(&r));
    assert_eq!(fake.execs().len(), before, "{:?}", fake.execs());
    assert_eq!(before, 2, "both allowed calls reached the pod: {:?}", fake.execs());

    let session = structured(&r)["session_id"].as_str().unwrap().to_owned();
    client.cancel().await.unwrap();
    assert_chains_verify(&install.airlock, &session);
    let recorded = serde_json::to_string(&store_events(&install.airlock.store_url, "output").await).unwrap();
    assert!(recorded.contains("fine line") && !recorded.contains(AWS_KEY), "recorded masked: {recorded}");
}

/// `airlock serve` with the Slack bot (HTTP mode) on the fake Slack and an on-call human, connection `web` on
/// the test sshd, and an MCP client with the agent's token.
struct Held {
    sshd: Sshd,
    slack: FakeSlack,
    install: Install,
    server: Server,
    client: common::Client,
    http: reqwest::Client,
}

impl Held {
    async fn start() -> Self {
        let sshd = start_sshd();
        let slack = FakeSlack::start().await;
        let install = Install::new(&format!(
            "{}\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\n\n[slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\n\
             signing_secret = {{ inline = \"{SIGNING_SECRET}\" }}\nmode = \"http\"\napi_base_url = \"{}\"\n\n\
             [[humans]]\nsubject = \"{ONCALL_SUBJECT}\"\ngroups = [\"oncall\"]\nslack_user = \"{ONCALL}\"\n",
            ssh_connection(&sshd),
            slack.api_base_url()
        ));
        let token = install.airlock.create_token(AGENT, "agents");
        let server = install.airlock.serve();
        let client = http_client(&server, &token).await;
        Self { sshd, slack, install, server, client, http: reqwest::Client::new() }
    }

    /// Send `command`, expect it held by `approve-other-commands`; wait for the Slack request; returns the
    /// approval id.
    async fn held(&self, command: &str) -> String {
        let r = ssh(&self.client, command).await;
        assert_eq!(r.is_error, Some(false), "{}\n{}", seen(&r), self.server.log());
        let s = structured(&r);
        assert_eq!(s["status"], "pending_approval", "{s}");
        assert_eq!(s["rule"], "approve-other-commands", "{s}");
        assert!(text(&r).contains("await_approval"), "the agent is told what to do next: {}", text(&r));
        // The approvers see the tool, the host and the exact command.
        let posted = self.slack.wait_calls("chat.postMessage", 1).await;
        let blocks = posted[0].body["blocks"].to_string();
        assert!(blocks.contains("ssh_run on web") && blocks.contains(command), "{blocks}");
        s["approval_id"].as_str().unwrap().to_owned()
    }

    /// POST `payload` to `/slack/interactions`, signed as Slack would; returns the HTTP status.
    async fn interact(&self, payload: &Value) -> u16 {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = signature::now_s().to_string();
        let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
        self.http
            .post(format!("http://{}/slack/interactions", self.server.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TIMESTAMP_HEADER, &ts)
            .header(signature::SIGNATURE_HEADER, &sig)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("post to /slack/interactions: {e}\n{}", self.server.log()))
            .status()
            .as_u16()
    }

    async fn await_approval(&self, id: &str) -> CallToolResult {
        call(&self.client, "await_approval", json!({ "approval_id": id, "wait_s": 20 })).await
    }

    /// Logins sshd accepted so far.
    fn logins(&self) -> usize {
        self.sshd.log().matches("Accepted publickey").count()
    }
}

/// The uid of a user, from the passwd database.
fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_held_ssh_command_runs_on_the_host_once_oncall_approves_in_slack() {
    let h = Held::start().await;
    let marker = marker(&h.sshd);
    let command = format!("touch {}", marker.display());
    let id = h.held(&command).await;
    assert!(!marker.exists(), "nothing runs while the command is held");
    assert_eq!(h.logins(), 0, "the gateway has not even logged in: {}", h.sshd.log());

    assert_eq!(h.interact(&h.slack.block_actions(ONCALL, APPROVE_ACTION, &id)).await, 200, "{}", h.server.log());
    let done = h.await_approval(&id).await;
    let created = marker.exists();
    let owner = std::fs::metadata(&marker).map(|m| m.uid()).ok();
    remove(&marker);
    assert_eq!(done.is_error, Some(false), "{}\n{}", seen(&done), h.server.log());
    let s = structured(&done);
    assert_eq!((s["status"].as_str(), s["exit_code"].as_i64()), (Some("completed"), Some(0)), "{s}");
    assert_eq!(s["approved_by"], json!([ONCALL_SUBJECT]), "{s}");
    assert!(text(&done).contains(&format!("Approved by {ONCALL_SUBJECT}")), "{}", text(&done));
    assert!(created, "the approved command did not run on the host");
    assert_eq!(owner, Some(uid_of(&h.sshd.user())), "created by sshd as the login user");
    assert_eq!(h.logins(), 1, "{}", h.sshd.log());

    // The approvers are told how it ended, in the request's thread.
    let replies = h
        .slack
        .wait_for("the thread reply", |calls| {
            calls.iter().any(|c| c.method == "chat.postMessage" && c.body.get("thread_ts").is_some())
        })
        .await;
    let reply = replies.iter().find(|c| c.body.get("thread_ts").is_some()).unwrap();
    assert!(reply.body["text"].as_str().unwrap_or_default().contains("completed: exit 0"), "{:#?}", reply.body);
    let session = s["session_id"].as_str().unwrap().to_owned();
    h.client.cancel().await.unwrap();
    assert_chains_verify(&h.install.airlock, &session);
}

#[tokio::test]
async fn a_denied_ssh_command_never_runs_and_the_agent_gets_the_reason() {
    let h = Held::start().await;
    let marker = marker(&h.sshd);
    let id = h.held(&format!("touch {}", marker.display())).await;

    // Deny opens the reason modal; its submission decides.
    assert_eq!(h.interact(&h.slack.block_actions(ONCALL, DENY_ACTION, &id)).await, 200, "{}", h.server.log());
    let reason = "not during the incident freeze";
    assert_eq!(h.interact(&h.slack.deny_submission(0, ONCALL, reason).await).await, 200, "{}", h.server.log());
    let out = h.await_approval(&id).await;
    let created = marker.exists();
    remove(&marker);
    assert_eq!(out.is_error, Some(true), "{}", seen(&out));
    assert_eq!(structured(&out)["status"], "denied", "{}", seen(&out));
    assert!(text(&out).contains(ONCALL_SUBJECT) && text(&out).contains(reason), "{}", text(&out));
    assert!(structured(&out).get("exit_code").is_none(), "{}", seen(&out));
    assert!(!created, "the denied command ran on the host");
    assert_eq!(h.logins(), 0, "the gateway never logged in: {}", h.sshd.log());
    h.client.cancel().await.unwrap();
}

/// Files a test leaves in the login user's home, removed however the test ends.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(|p| remove(p));
    }
}

/// While an approved command is still running, `await_approval` must not tell the agent "nothing has run yet"
/// (it once did, rendering `Executing` like `Pending`): an agent that believes it may send the command again, a
/// second run of a write on a production host. It says who approved and that the call is running.
#[tokio::test]
async fn await_approval_while_the_approved_command_runs_does_not_claim_nothing_has_run() {
    let h = Held::start().await;
    let marker = marker(&h.sshd);
    let release = h.sshd.home().join(format!("airlock-e2e-release-{}", uuid::Uuid::new_v4().simple()));
    let _cleanup = RemoveOnDrop(vec![marker.clone(), release.clone()]);
    // Runs until the test creates `release`: the call is certainly still executing when asked about below.
    let command = format!("touch {}; while [ ! -e {} ]; do sleep 0.1; done", marker.display(), release.display());
    let id = h.held(&command).await;
    assert_eq!(h.interact(&h.slack.block_actions(ONCALL, APPROVE_ACTION, &id)).await, 200, "{}", h.server.log());

    // Wait (bounded) until the approved command has started on the host.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !marker.exists() {
        assert!(std::time::Instant::now() < deadline, "the approved command never started:\n{}", h.server.log());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let running = call(&h.client, "await_approval", json!({ "approval_id": id, "wait_s": 1 })).await;
    let says = seen(&running);
    assert_ne!(structured(&running)["status"], "completed", "the command cannot have finished: {says}");

    std::fs::write(&release, "").unwrap();
    let done = h.await_approval(&id).await;
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert_eq!(structured(&done)["exit_code"], 0, "{}", seen(&done));
    // Checked last, so the command above still ends cleanly when this fails.
    assert!(!says.contains("nothing has run"), "the command is running on the host, but the agent is told: {says}");
    assert!(says.contains("running now") && says.contains("do not send the call again"), "{says}");
    h.client.cancel().await.unwrap();
}

/// Records the progress notifications a client receives.
#[derive(Clone, Default)]
struct ProgressLog(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl ClientHandler for ProgressLog {
    async fn on_progress(&self, p: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push(p);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(Default::default(), Implementation::new("airlock-e2e-commands", "1.0"))
    }
}

#[tokio::test]
async fn slow_output_sends_progress_and_is_recorded_as_timed_frames() {
    let sshd = start_sshd();
    let install = Install::new(&ssh_connection(&sshd));
    let token = install.airlock.create_token(AGENT, "agents");
    let server = install.airlock.serve();
    let log = ProgressLog::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url()).auth_header(token),
    );
    let client = log.clone().serve(transport).await.unwrap();

    // Output that keeps coming for more than a second. rmcp's client puts a progress token of its own (a
    // per-peer counter) on every request, replacing any set by the caller, so the token is not chosen here.
    let command = "for i in 1 2 3; do echo $i; sleep 0.7; done";
    let args = json!({ "connection": "web", "command": command }).as_object().cloned().unwrap();
    let params = CallToolRequestParams::new("ssh_run").with_arguments(args);
    let r = client.call_tool(params).await.unwrap();
    let received = log.0.lock().unwrap().clone();
    assert_eq!(r.is_error, Some(false), "{}\n{}", seen(&r), server.log());
    let s = structured(&r);
    assert_eq!((s["stdout"].as_str(), s["exit_code"].as_i64()), (Some("1\n2\n3\n"), Some(0)), "{s}");

    // Progress arrived before the result, about the output.
    let about_output: Vec<_> =
        received.iter().filter(|p| p.message.as_deref().is_some_and(|m| m.contains("bytes of output"))).collect();
    assert!(!about_output.is_empty(), "no output progress before the result: {received:?}");
    assert!(about_output.iter().all(|p| p.progress_token == about_output[0].progress_token), "{received:?}");
    // Progress counts bytes received (6 in all: "1\n2\n3\n").
    assert!(about_output.iter().all(|p| p.progress > 0.0 && p.progress <= 6.0), "{about_output:?}");

    // The record: output frames `[ms, "o", text]` timed as the output came, and the result's exit code.
    let frames: Vec<Value> = store_events(&install.airlock.store_url, "output")
        .await
        .iter()
        .flat_map(|ev| ev["frames"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(frames.iter().all(|f| f[0].is_u64() && (f[1] == "o" || f[1] == "e") && f[2].is_string()), "{frames:?}");
    let stdout: String = frames.iter().filter(|f| f[1] == "o").map(|f| f[2].as_str().unwrap()).collect();
    assert_eq!(stdout, "1\n2\n3\n", "{frames:?}");
    let at = |line: &str| {
        frames
            .iter()
            .find(|f| f[2].as_str().unwrap().contains(line))
            .and_then(|f| f[0].as_u64())
            .unwrap_or_else(|| panic!("no frame with {line:?}: {frames:?}"))
    };
    assert!(at("3") >= at("1") + 1000, "frames are timed as the output came (two 0.7 s sleeps apart): {frames:?}");
    let results = store_events(&install.airlock.store_url, "result").await;
    let result = results.iter().find(|ev| ev["status"] == "completed" && ev["exec"].is_object()).unwrap();
    assert_eq!(result["exec"]["exit_code"], 0, "{result}");
    assert_eq!(result["exec"]["stdout_bytes"], 6, "{result}");
    let session = s["session_id"].as_str().unwrap().to_owned();
    client.cancel().await.unwrap();
    assert_chains_verify(&install.airlock, &session);
}
