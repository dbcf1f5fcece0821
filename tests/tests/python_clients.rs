//! The official Python MCP SDKs (1.x with AutoGen's McpWorkbench, and 2.x) against the real `airlock`, over
//! streamable HTTP with a bearer token and over stdio. The scripts live in `tests/python/`; `scripts/test`
//! creates the virtualenvs from `tests/python/requirements-mcp{1,2}.txt` and exports their interpreters.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use airlock_tests::airlock::{Airlock, airlock_bin};
use common::SHOP_SQL;

fn python(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set. Run the suite with scripts/test, which creates the Python virtualenvs from \
             tests/python/requirements-*.txt, or set {var} to a python that has them installed."
        )
    })
}

async fn run_script(var: &str, script: &str) {
    let python = python(var);
    let dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(dir.path());
    airlock_tests::exec(&target.url, SHOP_SQL).await;
    let airlock = Airlock::new(target, None);
    let token = airlock.create_token("python-agent", "agents");
    let server = airlock.serve();
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let out = Command::new(&python)
        .arg(scripts.join(script))
        .arg(airlock_bin())
        .arg(&airlock.config)
        .arg(server.mcp_url())
        .arg(&token)
        .current_dir(&scripts)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    println!("{stdout}");
    // Every session the Python clients opened verifies.
    let verify = airlock.run(&["sessions", "verify", "--all"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM orders").await, 3);
}

#[tokio::test]
async fn python_mcp_1x_and_autogen_work_over_http_and_stdio() {
    run_script("AIRLOCK_TEST_PYTHON_MCP1", "client_mcp1.py").await;
}

#[tokio::test]
async fn python_mcp_2x_works_over_http_and_stdio() {
    run_script("AIRLOCK_TEST_PYTHON_MCP2", "client_mcp2.py").await;
}
