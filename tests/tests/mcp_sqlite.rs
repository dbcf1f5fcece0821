//! The `airlock` binary end to end, over both MCP transports, with a SQLite store and a SQLite target.
#![allow(clippy::unwrap_used)]

mod common;

use airlock_tests::airlock::{Airlock, http_request, store_events};
use common::*;

async fn installation() -> (Airlock, String) {
    let dir = tempfile::tempdir().unwrap();
    let target = Airlock::sqlite_target(dir.path());
    airlock_tests::exec(&target.url, SHOP_SQL).await;
    let airlock = Airlock::new(target, None);
    // Keep the target's directory alive as long as the installation.
    std::mem::forget(dir);
    let token = airlock.create_token("autogen-ci", "agents");
    (airlock, token)
}

#[tokio::test]
async fn tools_are_listed_with_descriptions_and_schemas_over_both_transports() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    for (label, client) in
        [("http", http_client(&server, &token).await), ("stdio", stdio_client(&airlock, &token).await)]
    {
        let info = client.peer_info().expect("server info");
        assert_eq!(info.server_info.as_ref().map(|s| s.name.as_str()), Some("airlock"), "{label}");
        assert_eq!(info.protocol_version.to_string(), "2025-11-25", "{label}");
        let tools = client.list_all_tools().await.unwrap();
        let sql = tools.iter().find(|t| t.name == "sql_query").expect("sql_query");
        let description = sql.description.as_deref().unwrap_or_default();
        assert!(description.contains("masked") && description.contains("blocked"), "{label}: {description}");
        let schema = serde_json::Value::Object((*sql.input_schema).clone());
        assert_eq!(schema["required"], serde_json::json!(["connection", "query"]), "{label}: {schema}");
        assert!(schema["properties"]["max_rows"].is_object(), "{label}: {schema}");
        assert!(tools.iter().any(|t| t.name == "list_connections"), "{label}");
        for (name, required) in [
            ("ssh_run", serde_json::json!(["connection", "command"])),
            ("kube_exec", serde_json::json!(["connection", "namespace", "pod", "command"])),
        ] {
            let tool = tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{label}: {name} listed"));
            let schema = serde_json::Value::Object((*tool.input_schema).clone());
            assert_eq!(schema["required"], required, "{label}: {schema}");
            let description = tool.description.as_deref().unwrap_or_default();
            assert!(description.contains("exit_code") && description.contains("pending_approval"), "{description}");
        }
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn await_approval_of_an_unknown_id_is_an_error_that_reveals_nothing() {
    let (airlock, token) = installation().await;
    let client = stdio_client(&airlock, &token).await;
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "await_approval"));
    let args = serde_json::json!({"approval_id": "no-such-approval", "wait_s": 1}).as_object().cloned().unwrap();
    let r =
        client.call_tool(rmcp::model::CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(r.is_error, Some(true), "{}", seen(&r));
    assert!(seen(&r).contains("unknown approval"), "{}", seen(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn list_connections_shows_the_shop() {
    let (airlock, token) = installation().await;
    let client = stdio_client(&airlock, &token).await;
    let r = client.call_tool(rmcp::model::CallToolRequestParams::new("list_connections")).await.unwrap();
    assert_eq!(r.is_error, Some(false));
    assert_eq!(structured(&r)["connections"][0]["name"], "shop");
    assert!(seen(&r).contains("shop (sqlite, use sql_query)"), "{}", seen(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn select_with_pii_comes_back_masked_over_both_transports() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    for (label, client) in
        [("http", http_client(&server, &token).await), ("stdio", stdio_client(&airlock, &token).await)]
    {
        let r = sql(&client, "SELECT name, email FROM customers WHERE id = 1").await;
        assert_eq!(r.is_error, Some(false), "{label}: {}", seen(&r));
        let everything = seen(&r);
        assert!(everything.contains("Ada Lovelace"), "{label}: {everything}");
        assert!(!everything.contains(ADA_EMAIL), "{label}: e-mail leaked: {everything}");
        assert!(everything.contains("status: completed, 1 row(s)"), "{label}: text status line: {everything}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn drop_table_is_blocked_and_table_survives() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    for (label, client) in
        [("http", http_client(&server, &token).await), ("stdio", stdio_client(&airlock, &token).await)]
    {
        let r = sql(&client, "DROP TABLE customers").await;
        assert_eq!(r.is_error, Some(true), "{label}: {}", seen(&r));
        assert_eq!(structured(&r)["status"], "blocked", "{label}");
        assert_eq!(structured(&r)["rule"], "block-destructive-ddl", "{label}");
        assert!(seen(&r).contains("never run for agents"), "{label}: reason missing: {}", seen(&r));
        assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM customers").await, 2, "{label}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn delete_without_where_fails_closed_and_no_row_is_deleted() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    for (label, client) in
        [("http", http_client(&server, &token).await), ("stdio", stdio_client(&airlock, &token).await)]
    {
        let r = sql(&client, "DELETE FROM orders").await;
        assert_eq!(r.is_error, Some(true), "{label}: {}", seen(&r));
        assert!(seen(&r).contains("approve-unbounded-writes"), "{label}: {}", seen(&r));
        assert_eq!(airlock_tests::count(&airlock.target.url, "SELECT count(*) FROM orders").await, 3, "{label}");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn every_call_is_recorded_in_a_session_whose_chain_verifies() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    let http = http_client(&server, &token).await;
    let http_session = governance_scenario(&http, &airlock.target.url, "http").await;
    http.cancel().await.unwrap();
    let stdio = stdio_client(&airlock, &token).await;
    let stdio_session = governance_scenario(&stdio, &airlock.target.url, "stdio").await;
    stdio.cancel().await.unwrap();
    assert_ne!(http_session, stdio_session, "one recorded session per MCP session");

    // Three calls per session: each has a request and a result event, bound to the session's identity.
    let requests = store_events(&airlock.store_url, "request").await;
    let results = store_events(&airlock.store_url, "result").await;
    assert_eq!(requests.len(), 6, "{requests:?}");
    assert_eq!(results.len(), 6, "{results:?}");
    assert!(requests.iter().all(|r| r["identity"]["subject"] == "autogen-ci"), "{requests:?}");
    let statuses: Vec<&str> = results.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "blocked").count(), 2, "{statuses:?}");
    let starts = store_events(&airlock.store_url, "session_start").await;
    assert!(starts.iter().any(|s| s.to_string().contains("airlock-e2e")), "client name recorded: {starts:?}");
    assert!(!results.iter().any(|r| r.to_string().contains(ADA_EMAIL)), "the record holds masked data only");

    assert_chains_verify(&airlock, &http_session);
    assert_chains_verify(&airlock, &stdio_session);
    let out = airlock.run(&["sessions", "verify", &http_session]);
    assert!(out.status.success());
}

#[tokio::test]
async fn bad_token_gets_401_with_www_authenticate_and_an_auth_failed_event() {
    let (airlock, _token) = installation().await;
    let server = airlock.serve();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let (status, response) = http_request(server.addr, "POST", "/mcp", &headers, body).unwrap();
    assert_eq!(status, 401, "{response}");
    assert!(response.to_ascii_lowercase().contains("www-authenticate: bearer"), "{response}");

    let mut with_bad = headers.to_vec();
    with_bad.push(("Authorization", "Bearer alk_000000000000_deadbeef"));
    let (status, _) = http_request(server.addr, "POST", "/mcp", &with_bad, body).unwrap();
    assert_eq!(status, 401);

    // The rmcp client sees the refusal too, and nothing was executed.
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(server.mcp_url())
            .auth_header("alk_nope_nope".to_owned()),
    );
    assert!(rmcp::ServiceExt::serve(TestClient, transport).await.is_err());

    let failures = store_events(&airlock.store_url, "auth_failed").await;
    assert!(failures.len() >= 3, "{failures:?}");
    assert!(failures.iter().any(|f| f["reason"] == "no token presented"), "{failures:?}");
    assert!(failures.iter().any(|f| f["context"].as_str().is_some_and(|c| c.starts_with("http "))), "{failures:?}");
    assert!(store_events(&airlock.store_url, "request").await.is_empty(), "nothing may run unauthenticated");
}

#[tokio::test]
async fn stdio_without_a_valid_token_exits_non_zero_and_is_audited() {
    let (airlock, token) = installation().await;
    let missing = airlock.command(&["mcp", "--stdio"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("AIRLOCK_TOKEN is not set"), "{stderr}");
    assert!(missing.stdout.is_empty(), "stdout is reserved for MCP");

    let revoked = airlock.run(&["token", "revoke", "autogen-ci"]);
    assert!(revoked.status.success());
    let refused = airlock
        .command(&["mcp", "--stdio"])
        .env("AIRLOCK_TOKEN", &token)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"));

    let failures = store_events(&airlock.store_url, "auth_failed").await;
    assert!(failures.iter().any(|f| f["context"] == "stdio" && f["reason"] == "token revoked"), "{failures:?}");
    assert!(failures.iter().any(|f| f["context"] == "stdio" && f["reason"] == "no token presented"), "{failures:?}");
}

#[tokio::test]
async fn revoking_a_token_cuts_off_its_open_session() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    let client = http_client(&server, &token).await;
    assert_eq!(sql(&client, "SELECT 1").await.is_error, Some(false));
    assert!(airlock.run(&["token", "revoke", "autogen-ci"]).status.success());
    // The next HTTP request is refused at the door.
    let args = serde_json::json!({"connection": "shop", "query": "SELECT 1"}).as_object().cloned().unwrap();
    let after = client.call_tool(rmcp::model::CallToolRequestParams::new("sql_query").with_arguments(args)).await;
    assert!(after.is_err() || after.is_ok_and(|r| r.is_error == Some(true)));
}

#[tokio::test]
async fn foreign_host_header_is_refused() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    let auth = format!("Bearer {token}");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
    let headers = [
        ("Host", "evil.example"),
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let (status, response) = http_request(server.addr, "POST", "/mcp", &headers, body).unwrap();
    assert_eq!(status, 403, "{response}");

    let origin = [
        ("Origin", "http://evil.example"),
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let (status, response) = http_request(server.addr, "POST", "/mcp", &origin, body).unwrap();
    assert_eq!(status, 403, "{response}");
}

#[tokio::test]
async fn oversized_request_body_is_refused() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    let auth = format!("Bearer {token}");
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"{}","version":"1"}}}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let (status, response) = http_request(server.addr, "POST", "/mcp", &headers, &big).unwrap();
    assert_eq!(status, 413, "{}", &response[..response.len().min(300)]);
}

#[tokio::test]
async fn healthz_answers_without_a_token_and_reports_the_store() {
    let (airlock, _token) = installation().await;
    let server = airlock.serve();
    let (status, response) = http_request(server.addr, "GET", "/healthz", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(response.contains(r#""status":"ok""#), "{response}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let (airlock, token) = installation().await;
    let server = airlock.serve();
    let client = http_client(&server, &token).await;
    assert_eq!(sql(&client, "SELECT 1").await.is_error, Some(false));
    let log_path = server.log_path.clone();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(log.contains("stopped cleanly"), "{log}");
}
