//! The web UI in a real browser: headless Chromium (Debian's `chromium`) driven by `tests/browser/ui.test.mjs`
//! (playwright-core), against the real `airlock serve`. Signs in, opens a session's replay, sees the masked table
//! and recorded HTML rendered inert (no script ran, the title is unchanged), approves a held DELETE in the inbox
//! and sees it decided. Writes `docs/screenshots/replay.png` and `docs/screenshots/inbox.png`.
//!
//! Needs `/usr/bin/chromium` (or `AIRLOCK_TEST_CHROMIUM`), node and `tests/browser/node_modules` (or
//! `AIRLOCK_TEST_BROWSER_DIR`): `scripts/test` installs them. Missing, the test fails (it never skips).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;

use airlock_tests::airlock::{Airlock, Server};
use common::{http_client, seen, sql, structured};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

const ALICE: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "correct horse battery staple";
const GRACE_EMAIL: &str = "grace.hopper@example.com";
const ADA_EMAIL: &str = "ada.lovelace@example.com";
const IMG_XSS: &str = "<img src=x onerror=\"document.title='pwned'\">";
const SCRIPT_XSS: &str = "<script>window.__pwned=1</script>";

/// The project directory with `node_modules/playwright-core` and the script, and the Chromium binary.
fn browser_setup() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("AIRLOCK_TEST_BROWSER_DIR").map_or_else(|| root.join("browser"), PathBuf::from);
    let chromium =
        std::env::var_os("AIRLOCK_TEST_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        chromium.is_file(),
        "{} is missing: run scripts/test (it installs Debian's chromium) or set AIRLOCK_TEST_CHROMIUM",
        chromium.display()
    );
    assert!(
        dir.join("node_modules/playwright-core/package.json").is_file(),
        "{}/node_modules/playwright-core is missing: run scripts/test (it runs npm ci there) or set \
         AIRLOCK_TEST_BROWSER_DIR",
        dir.display()
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(node.is_ok_and(|o| o.status.success()), "node is missing: run scripts/test");
    (dir, chromium)
}

/// `[[humans]]` alice (group dba, an approver) with a password.
fn add_alice(airlock: &Airlock) {
    let mut child = airlock
        .command(&["users", "add", ALICE, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{ALICE_PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "users add: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `ui.test.mjs` signed in as alice with `vars` in its environment; asserts it succeeded, returns its JSON.
async fn run_browser(server: &Server, vars: &[(&str, &str)]) -> serde_json::Value {
    let (browser_dir, chromium) = browser_setup();
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(browser_dir.join("ui.test.mjs"))
        .current_dir(&browser_dir)
        .env("AIRLOCK_UI_USER", ALICE)
        .env("AIRLOCK_UI_PASSWORD", ALICE_PASSWORD)
        .env("AIRLOCK_UI_CHROMIUM", &chromium)
        .kill_on_drop(true);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(180), cmd.output())
        .await
        .expect("the browser script did not finish in 180 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON from ui.test.mjs\nstdout:\n{stdout}\nstderr:\n{stderr}"));
    assert!(
        out.status.success() && report["ok"] == true,
        "browser test failed ({}): {report:#}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    eprintln!("browser script took {:?}: {report}", started.elapsed());
    report
}

#[tokio::test]
async fn browser_replay_is_masked_and_inert_and_the_inbox_approves() {
    browser_setup();
    let target_dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(target_dir.path());
    let seed = format!(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, email VARCHAR(200) NOT NULL);
         INSERT INTO customers (id, name, email) VALUES
           (1, 'Grace Hopper', '{GRACE_EMAIL}'),
           (2, '{}', '{ADA_EMAIL}'),
           (3, '{SCRIPT_XSS}', 'mallory@example.org');",
        IMG_XSS.replace('\'', "''")
    );
    airlock_tests::exec(&target.url, &seed).await;
    let airlock = Airlock::new(target, None);
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"60s\"\n\n[web]\napproval_inbox = true\n\
         approver_groups = [\"dba\"]\n\n[[humans]]\nsubject = \"{ALICE}\"\ngroups = [\"dba\"]\n"
    ));
    std::fs::write(&airlock.config, config).unwrap();
    add_alice(&airlock);
    let token = airlock.create_token("browser-agent", "agents");
    let server = airlock.serve();

    // The agent: a masked SELECT, a statement carrying XSS, and an unbounded DELETE held for approval.
    let client = http_client(&server, &token).await;
    let r = sql(&client, "SELECT id, name, email FROM customers ORDER BY id").await;
    assert_eq!(structured(&r)["status"], "completed", "{}", seen(&r));
    let session = structured(&r)["session_id"].as_str().unwrap().to_owned();
    let xss = format!("SELECT '{SCRIPT_XSS}' AS s, '{}' AS i", IMG_XSS.replace('\'', "''"));
    let r = sql(&client, &xss).await;
    assert_eq!(structured(&r)["status"], "completed", "{}", seen(&r));
    let held = sql(&client, "DELETE FROM customers").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let approval = structured(&held)["approval_id"].as_str().unwrap().to_owned();

    let screenshots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    let base = format!("http://{}", server.addr);
    let raw = format!("{GRACE_EMAIL},{ADA_EMAIL}");
    let report = run_browser(
        &server,
        &[
            ("AIRLOCK_UI_BASE", base.as_str()),
            ("AIRLOCK_UI_SESSION", &session),
            ("AIRLOCK_UI_APPROVAL", &approval),
            ("AIRLOCK_UI_MASKED", "g***@example.com"),
            ("AIRLOCK_UI_RAW", &raw),
            ("AIRLOCK_UI_SCREENSHOTS", screenshots.to_str().unwrap()),
        ],
    )
    .await;
    let steps: Vec<_> = report["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["login", "replay", "approve"]);
    assert_eq!(report["steps"][1]["pwned"], "undefined");
    for shot in ["replay.png", "inbox.png"] {
        let len = std::fs::metadata(screenshots.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "screenshot {shot} not written");
    }

    // Approved in the browser: the agent gets its result and the DELETE ran.
    let args = json!({"approval_id": approval, "wait_s": 30}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains(ALICE), "approver named: {}", seen(&done));
    assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM customers").await, 0);
    client.cancel().await.unwrap();
}

/// Command output recorded from a real sshd plays back in the replay page's terminal player. Needs root and the
/// SSH test user, like tests/tests/ssh_targets.rs (scripts/test prepares both).
#[tokio::test]
async fn browser_plays_back_recorded_ssh_output() {
    browser_setup();
    let sshd = airlock_tests::sshd::Sshd::start().unwrap_or_else(|e| panic!("the SSH tests need a real sshd: {e}"));
    let target_dir = tempfile::tempdir().unwrap();
    let airlock = Airlock::new(Airlock::sqlite_target(target_dir.path()), None);
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "\n[connections.web]\nkind = \"ssh\"\ndescription = \"test web host\"\nurl = \"ssh://{}@127.0.0.1:{}\"\n\
         private_key = {{ file = {:?} }}\nhost_key = {:?}\n\n[web]\nreviewer_groups = [\"dba\"]\n\n\
         [[humans]]\nsubject = \"{ALICE}\"\ngroups = [\"dba\"]\n",
        sshd.user(),
        sshd.port(),
        sshd.client_key_path().display().to_string(),
        sshd.host_key_line()
    ));
    std::fs::write(&airlock.config, config).unwrap();
    add_alice(&airlock);
    let token = airlock.create_token("browser-agent", "agents");
    let server = airlock.serve();
    let client = http_client(&server, &token).await;
    let args = json!({"connection": "web", "command": "echo first-line; sleep 1; echo airlock-playback-done"});
    let r = client
        .call_tool(CallToolRequestParams::new("ssh_run").with_arguments(args.as_object().cloned().unwrap()))
        .await
        .unwrap();
    assert_eq!(structured(&r)["status"], "completed", "{}", seen(&r));
    let session = structured(&r)["session_id"].as_str().unwrap().to_owned();
    client.cancel().await.unwrap();

    let base = format!("http://{}", server.addr);
    let report = run_browser(
        &server,
        &[
            ("AIRLOCK_UI_MODE", "terminal"),
            ("AIRLOCK_UI_BASE", base.as_str()),
            ("AIRLOCK_UI_SESSION", &session),
            ("AIRLOCK_UI_TERMINAL_TEXT", "airlock-playback-done"),
        ],
    )
    .await;
    let shown = report["steps"][1]["shown"].as_str().unwrap();
    assert!(shown.contains("first-line") && shown.contains("airlock-playback-done"), "{report}");
}
