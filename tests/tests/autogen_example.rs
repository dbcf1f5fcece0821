//! The AutoGen example (`examples/autogen/oncall_assistant.py`) end to end, as its README runs it: AutoGen's
//! AssistantAgent and McpWorkbench with the scripted model (`--scripted`, `examples/autogen/scenarios.py`),
//! against the real `airlock` binary with a real Postgres target, over stdio and over streamable HTTP. The
//! example prints every tool result the model sees and its answer; the tests read that transcript (line by line
//! while the agent runs, so a human can click in the fake Slack while the agent waits) and check the target.
//!
//! The Python comes from `$AIRLOCK_TEST_PYTHON_MCP1`, the venv `scripts/test` builds from
//! `tests/python/requirements-mcp1.txt` (the same pins as `examples/autogen/requirements.txt`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use airlock_tests::airlock::{Airlock, Server, Target, airlock_bin};
use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
use airlock_tests::sshd::Sshd;
use approval_bot::slack::blocks::{APPROVE_ACTION, DENY_ACTION};
use approval_bot::slack::signature;
use common::{ADA_CARD, ADA_EMAIL, SHOP_SQL};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
/// The on-call DBA's Slack account (group `dba`, approvers of `approve-unbounded-writes`).
const ALICE: &str = "UALICE";
/// The example's token name, hence the agent's subject.
const AGENT: &str = "oncall-assistant";
/// Bounds every wait on the example's output: a failing example fails the test, it never hangs it.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(120);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/autogen")
}

fn python() -> String {
    std::env::var("AIRLOCK_TEST_PYTHON_MCP1").unwrap_or_else(|_| {
        panic!(
            "AIRLOCK_TEST_PYTHON_MCP1 is not set. Run the suite with scripts/test, which creates the venv \
             target/py/mcp1 from tests/python/requirements-mcp1.txt (AutoGen 0.7.5, mcp 1.30.0), or set it to a \
             python that has examples/autogen/requirements.txt installed."
        )
    })
}

/// An Airlock installation whose `shop` connection is a fresh Postgres database with the test shop.
struct Install {
    airlock: Airlock,
    token: String,
    fake: Option<FakeSlack>,
}

impl Install {
    /// `extra` TOML goes at the end of `airlock.toml`; with `slack`, approvals go to the fake Slack (HTTP mode).
    async fn new(slack: bool, extra: &str) -> Self {
        let db = airlock_tests::postgres_db().await;
        airlock_tests::exec(&db.url, SHOP_SQL).await;
        let airlock = Airlock::new(Target { kind: "postgres", url: db.url }, None);
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push('\n');
        config.push_str(extra);
        let fake = if slack { Some(FakeSlack::start().await) } else { None };
        if let Some(fake) = &fake {
            config.push_str(&format!(
                "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"60s\"\n\n[slack]\nbot_token = {{ inline = \"{BOT_TOKEN}\" }}\n\
                 signing_secret = {{ inline = \"{SIGNING_SECRET}\" }}\nmode = \"http\"\napi_base_url = \"{}\"\n\n\
                 [[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\"]\nslack_user = \"{ALICE}\"\n",
                fake.api_base_url()
            ));
        }
        std::fs::write(&airlock.config, config).unwrap();
        let token = airlock.create_token(AGENT, "agents");
        Self { airlock, token, fake }
    }

    fn fake(&self) -> &FakeSlack {
        self.fake.as_ref().expect("installed with slack")
    }

    async fn orders(&self) -> i64 {
        airlock_tests::count(&self.airlock.target.url, "SELECT count(*) FROM orders").await
    }

    /// Start the example on `scenario`, over HTTP to `server` or over stdio (it starts `airlock mcp --stdio`).
    fn run(&self, scenario: &str, server: Option<&Server>) -> Run {
        let python = python();
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(example_dir().join("oncall_assistant.py")).args(["--scripted", "--scenario", scenario]);
        match server {
            Some(server) => cmd.args(["--transport", "http", "--url", &server.mcp_url()]),
            None => cmd
                .args(["--transport", "stdio", "--airlock"])
                .arg(airlock_bin())
                .arg("--config")
                .arg(&self.airlock.config),
        };
        for (k, _) in std::env::vars() {
            if k.starts_with("AIRLOCK_") || k.starts_with("OPENAI_") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .env("AIRLOCK_TOKEN", &self.token)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.airlock.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        Run { scenario: scenario.to_owned(), child, lines, transcript: String::new(), stderr }
    }

    /// `airlock sessions verify --all` passes: every session the example opened is intact.
    fn assert_sessions_verify(&self) {
        let out = self.airlock.run(&["sessions", "verify", "--all"]);
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A human clicks a button on the approval request in Slack: a signed interaction to `/slack/interactions`.
    async fn click(&self, server: &Server, user: &str, action_id: &str, approval_id: &str) {
        let payload = self.fake().block_actions(user, action_id, approval_id);
        self.interact(server, &payload).await;
    }

    async fn interact(&self, server: &Server, payload: &serde_json::Value) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = signature::now_s().to_string();
        let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
        let status = reqwest::Client::new()
            .post(format!("http://{}/slack/interactions", server.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(signature::TIMESTAMP_HEADER, &ts)
            .header(signature::SIGNATURE_HEADER, &sig)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("post to /slack/interactions: {e}\n{}", server.log()))
            .status();
        assert_eq!(status, 200, "{}", server.log());
    }
}

/// The example running: its stdout is read as it prints.
struct Run {
    scenario: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    transcript: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl Run {
    /// Read until a line contains `needle`; returns that line.
    async fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = match tokio::time::timeout(OUTPUT_TIMEOUT, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => {
                    panic!("{}: the example ended before printing {needle:?}:\n{}", self.scenario, self.transcript)
                }
                Ok(Err(e)) => panic!("{}: reading the example's output: {e}", self.scenario),
                Err(_) => panic!("{}: no {needle:?} after {OUTPUT_TIMEOUT:?}:\n{}", self.scenario, self.transcript),
            };
            self.transcript.push_str(&line);
            self.transcript.push('\n');
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Read to the end and wait for the example to exit successfully; returns everything it printed.
    async fn finish(mut self) -> Transcript {
        let rest = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.transcript.push_str(&line);
                self.transcript.push('\n');
            }
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(OUTPUT_TIMEOUT, rest)
            .await
            .unwrap_or_else(|_| panic!("{}: the example did not finish:\n{}", self.scenario, self.transcript));
        let stderr = self.stderr.await.unwrap();
        assert!(
            status.success(),
            "{}: the example failed ({status}):\n{}\nstderr:\n{stderr}",
            self.scenario,
            self.transcript
        );
        println!("{}", self.transcript);
        Transcript(self.transcript)
    }
}

/// What the example printed: `>>> call …` for each tool call, `<<< result …` and the indented text the model saw,
/// `=== oncall:` and the agent's answer.
struct Transcript(String);

impl Transcript {
    fn has(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    fn calls(&self, tool: &str) -> usize {
        self.0.lines().filter(|l| l.starts_with(&format!(">>> call {tool} "))).count()
    }

    /// The agent's final answer.
    fn answer(&self) -> &str {
        let (_, answer) = self.0.rsplit_once("=== oncall:\n").unwrap_or_else(|| panic!("no answer:\n{}", self.0));
        answer
    }
}

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The approval id in a printed `pending_approval` result.
fn approval_id(line: &str) -> String {
    let (_, rest) = line.split_once("approval_id \"").unwrap_or_else(|| panic!("no approval id in {line:?}"));
    rest.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn masked_select_over_stdio_shows_the_agent_masked_emails_only() {
    let install = Install::new(false, "").await;
    let out = install.run("masked-select", None).finish().await;
    assert_eq!(out.calls("list_connections"), 1, "{out}");
    assert!(out.has("- shop (postgres, use sql_query)"), "{out}");
    assert!(out.has("<<< result sql_query (ok)") && out.has("status: completed, 2 row(s), masked: email x2"), "{out}");
    assert!(out.has("| 1 | Ada Lovelace | a***@example.com |"), "names stay readable, e-mails are masked:\n{out}");
    for raw in [ADA_EMAIL, "grace.hopper@example.net", ADA_CARD] {
        assert!(!out.has(raw), "{raw} reached the agent:\n{out}");
    }
    assert!(out.answer().contains("a***@example.com"), "{out}");
    install.assert_sessions_verify();
}

#[tokio::test]
async fn blocked_drop_over_http_is_reported_with_its_rule_and_not_retried() {
    let install = Install::new(false, "").await;
    let server = install.airlock.serve();
    let out = install.run("blocked-drop", Some(&server)).finish().await;
    assert!(out.has("<<< result sql_query (error)\n    status: blocked, rule block-destructive-ddl."), "{out}");
    assert_eq!(out.calls("sql_query"), 1, "the agent sent the statement once:\n{out}");
    let answer = out.answer();
    assert!(answer.contains("block-destructive-ddl") && answer.contains("DROP and TRUNCATE are never run"), "{out}");
    assert_eq!(install.orders().await, 3, "the table is still there with its rows");
    install.assert_sessions_verify();
}

#[tokio::test]
async fn held_delete_over_http_is_approved_in_slack_and_the_agent_gets_the_executed_result() {
    let install = Install::new(true, "").await;
    let server = install.airlock.serve();
    let mut run = install.run("approval-delete", Some(&server));

    // The agent is told to wait for a human; the request is in Slack and nothing ran yet.
    let pending = run.wait_for("status: pending_approval").await;
    let id = approval_id(&pending);
    install.fake().wait_calls("chat.postMessage", 1).await;
    assert_eq!(install.orders().await, 3);

    // The DBA approves; the agent's await_approval returns the executed (recorded) result.
    install.click(&server, ALICE, APPROVE_ACTION, &id).await;
    let out = run.finish().await;
    assert_eq!(out.calls("sql_query"), 1, "the held statement is not resent:\n{out}");
    assert!(out.has(&format!(">>> call await_approval {{\"approval_id\": \"{id}\"")), "{out}");
    assert!(out.has("<<< result await_approval (ok)\n    status: completed, 3 row(s) affected."), "{out}");
    assert!(out.has("Approved by alice@example.com."), "{out}");
    assert!(out.answer().starts_with("Done: 3 row(s) affected"), "{out}");
    assert_eq!(install.orders().await, 0, "the approved DELETE ran");
    install.assert_sessions_verify();
}

#[tokio::test]
async fn held_delete_over_http_denied_in_slack_is_reported_with_the_reason() {
    let install = Install::new(true, "").await;
    let server = install.airlock.serve();
    let mut run = install.run("approval-delete", Some(&server));
    let id = approval_id(&run.wait_for("status: pending_approval").await);
    install.fake().wait_calls("chat.postMessage", 1).await;

    // Deny opens the reason modal; the submitted reason is what the agent reports.
    install.click(&server, ALICE, DENY_ACTION, &id).await;
    let reason = "not during the sale, take a backup first";
    let submission = install.fake().deny_submission(0, ALICE, reason).await;
    install.interact(&server, &submission).await;
    let out = run.finish().await;
    assert!(out.has("<<< result await_approval (error)\n    status: denied"), "{out}");
    let answer = out.answer();
    assert!(answer.contains("alice@example.com denied the request") && answer.contains(reason), "{out}");
    assert_eq!(out.calls("sql_query"), 1, "{out}");
    assert_eq!(install.orders().await, 3, "nothing ran");
    install.assert_sessions_verify();
}

#[tokio::test]
async fn ssh_uptime_over_stdio_completes_with_exit_code_0() {
    let sshd = Sshd::start().unwrap_or_else(|e| panic!("the SSH tests need a real sshd: {e}"));
    let web = format!(
        "[connections.web]\nkind = \"ssh\"\ndescription = \"test web host\"\nurl = \"ssh://{}@127.0.0.1:{}\"\n\
         private_key = {{ file = {:?} }}\nhost_key = {:?}\n",
        sshd.user(),
        sshd.port(),
        sshd.client_key_path().display().to_string(),
        sshd.host_key_line()
    );
    let install = Install::new(false, &web).await;
    let out = install.run("ssh-uptime", None).finish().await;
    assert!(out.has(">>> call ssh_run {\"connection\": \"web\", \"command\": \"uptime\"}"), "{out}");
    assert!(out.has("<<< result ssh_run (ok)\n    status: completed. exit 0."), "{out}");
    assert!(out.has("load average"), "uptime's output reached the agent:\n{out}");
    assert!(out.answer().starts_with("Done: exit 0"), "{out}");
    install.assert_sessions_verify();
}

/// The README's "Use with AutoGen" snippet is the marked region of the example these tests run, verbatim.
#[test]
fn readme_shows_the_snippet_the_example_runs() {
    let example = std::fs::read_to_string(example_dir().join("oncall_assistant.py")).unwrap();
    let (_, rest) = example.split_once("# [readme-snippet]\n").expect("snippet start marker in the example");
    let (snippet, _) = rest.split_once("# [/readme-snippet]").expect("snippet end marker in the example");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let (_, section) = readme.split_once("\n## Use with AutoGen\n").expect("README section \"Use with AutoGen\"");
    let section = section.split("\n## ").next().unwrap();
    assert!(
        section.contains(&format!("```python\n{snippet}```")),
        "README.md's \"Use with AutoGen\" must show examples/autogen/oncall_assistant.py's region between \
         `# [readme-snippet]` and `# [/readme-snippet]` verbatim, in a ```python block; copy it over:\n{snippet}"
    );
}
