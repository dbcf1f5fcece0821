//! Airlock's Slack request signing agrees with Slack's own code: the official `slack_sdk`'s
//! `SignatureVerifier` accepts our signatures (and rejects tampered ones), and we accept its signatures.
//!
//! Needs `$AIRLOCK_TEST_PYTHON_SLACK`: a Python with `slack_sdk` from `tests/python/requirements-slack.txt`
//! (`scripts/test` creates it). Without it the test fails rather than skipping silently.

use std::io::Write;
use std::process::{Command, Stdio};

use approval_bot::slack::signature;
use serde_json::{Value, json};

const SECRET: &str = "e0d4c1bd3e8b0e0a1a7f0c4d2b9f8a77";

fn python() -> String {
    std::env::var("AIRLOCK_TEST_PYTHON_SLACK").unwrap_or_else(|_| {
        panic!(
            "AIRLOCK_TEST_PYTHON_SLACK is not set. Run the suite with scripts/test (it creates a venv from \
             tests/python/requirements-slack.txt), or point it at a python that has slack_sdk installed."
        )
    })
}

fn bodies() -> Vec<String> {
    let payload = json!({
        "type": "block_actions", "user": { "id": "U1" },
        "actions": [{ "action_id": "airlock_approve", "value": "apr_0192" }],
        "note": "ünïcødé ✓, spaces & symbols +%=",
    });
    vec![
        serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form"),
        json!({ "type": "url_verification", "challenge": "abc" }).to_string(),
        "line one\nline two\r\n\ttabbed".to_owned(),
        String::new(),
    ]
}

#[test]
fn signatures_agree_with_the_official_slack_sdk() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/test_slack_signature.py");
    let now = signature::now_s().to_string();
    let mut verify: Vec<Value> = bodies()
        .iter()
        .map(|b| json!({ "timestamp": now, "body": b, "signature": signature::sign(SECRET, &now, b.as_bytes()) }))
        .collect();
    // Controls: slack_sdk must reject a signature over another body and a stale one.
    verify
        .push(json!({ "timestamp": now, "body": "tampered", "signature": signature::sign(SECRET, &now, b"original") }));
    let stale = (signature::now_s() - 600).to_string();
    verify.push(json!({ "timestamp": stale, "body": "x", "signature": signature::sign(SECRET, &stale, b"x") }));
    let sign: Vec<Value> = bodies().iter().map(|b| json!({ "timestamp": now, "body": b })).collect();

    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let input = json!({ "secret": SECRET, "verify": verify, "sign": sign }).to_string();
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("python runs");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("python prints JSON");

    let n = bodies().len();
    let verified: Vec<bool> = serde_json::from_value(answer["verified"].clone()).expect("verified list");
    assert_eq!(verified, [vec![true; n], vec![false, false]].concat(), "slack_sdk's verdict on our signatures");

    let theirs: Vec<String> = serde_json::from_value(answer["signatures"].clone()).expect("signatures list");
    assert_eq!(theirs.len(), n);
    for (body, sig) in bodies().iter().zip(&theirs) {
        assert_eq!(
            signature::verify(SECRET, Some(&now), Some(sig), body.as_bytes(), signature::now_s()),
            Ok(()),
            "we reject slack_sdk's signature for {body:?}"
        );
        assert_eq!(sig, &signature::sign(SECRET, &now, body.as_bytes()));
    }
}
