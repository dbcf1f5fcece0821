//! MCP clients (rmcp) for the end-to-end tests, and the governance scenario every target must pass.
#![allow(dead_code, clippy::unwrap_used)]

use airlock_tests::airlock::{Airlock, Server, airlock_bin};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, Implementation};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

/// The customer whose personal data must never come back in clear.
pub const ADA_EMAIL: &str = "ada.lovelace@example.com";
pub const ADA_CARD: &str = "4111111111111111";

/// Schema and rows of the test shop, in SQL every target accepts.
pub const SHOP_SQL: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL,
                        card_number VARCHAR(32) NOT NULL);
INSERT INTO customers (id, name, email, card_number) VALUES
  (1, 'Ada Lovelace', 'ada.lovelace@example.com', '4111111111111111'),
  (2, 'Grace Hopper', 'grace.hopper@example.net', '5500005555555559');
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount_cents INTEGER NOT NULL);
INSERT INTO orders (id, customer_id, amount_cents) VALUES (1, 1, 1299), (2, 1, 4500), (3, 2, 999);
";

/// A client that names itself, so sessions record who connected.
#[derive(Clone, Default)]
pub struct TestClient;

impl ClientHandler for TestClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(Default::default(), Implementation::new("airlock-e2e", "1.0"))
    }
}

pub type Client = RunningService<RoleClient, TestClient>;

/// MCP over streamable HTTP with a bearer token.
pub async fn http_client(server: &Server, token: &str) -> Client {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.mcp_url()).auth_header(token.to_owned()),
    );
    TestClient.serve(transport).await.unwrap_or_else(|e| panic!("MCP over HTTP: {e}\n{}", server.log()))
}

/// MCP over stdio: `airlock --config … mcp --stdio` with `AIRLOCK_TOKEN`.
pub async fn stdio_client(airlock: &Airlock, token: &str) -> Client {
    let cmd = tokio::process::Command::new(airlock_bin()).configure(|c| {
        c.arg("--config")
            .arg(&airlock.config)
            .args(["mcp", "--stdio"])
            .env("AIRLOCK_TOKEN", token)
            .env("AIRLOCK_LOG", "warn");
    });
    TestClient.serve(TokioChildProcess::new(cmd).expect("spawn airlock mcp --stdio")).await.expect("MCP over stdio")
}

/// Call `sql_query` on connection `shop`.
pub async fn sql(client: &Client, query: &str) -> CallToolResult {
    let args = json!({ "connection": "shop", "query": query }).as_object().cloned().unwrap();
    client.call_tool(CallToolRequestParams::new("sql_query").with_arguments(args)).await.expect("sql_query call")
}

/// Everything the agent sees: the text blocks and the structured content.
pub fn seen(r: &CallToolResult) -> String {
    let text: Vec<&str> = r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.as_str())).collect();
    format!("{}\n{}", text.join("\n"), r.structured_content.as_ref().map(Value::to_string).unwrap_or_default())
}

pub fn structured(r: &CallToolResult) -> &Value {
    r.structured_content.as_ref().expect("structured content")
}

/// The scenario every target and transport must pass: tools listed; PII masked; DROP blocked and the table
/// still there; DELETE without WHERE failing closed with nothing deleted. Returns the session id used.
pub async fn governance_scenario(client: &Client, target_url: &str, label: &str) -> String {
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"sql_query") && names.contains(&"list_connections"), "{label}: tools {names:?}");

    let r = sql(client, "SELECT id, name, email, card_number FROM customers ORDER BY id").await;
    assert_eq!(r.is_error, Some(false), "{label}: select failed: {}", seen(&r));
    let s = structured(&r);
    assert_eq!(s["status"], "completed", "{label}");
    assert_eq!(s["row_count"], 2, "{label}: {s}");
    assert!(s["rows"][0].to_string().contains("Ada Lovelace"), "{label}: unmasked columns stay readable: {s}");
    let everything = seen(&r);
    assert!(!everything.contains(ADA_EMAIL), "{label}: e-mail leaked: {everything}");
    assert!(!everything.contains(ADA_CARD), "{label}: card number leaked: {everything}");
    assert!(structured(&r)["masked"].as_object().is_some_and(|m| !m.is_empty()), "{label}: masking not reported");
    let session = s["session_id"].as_str().expect("session id").to_owned();

    let r = sql(client, "DROP TABLE orders").await;
    assert_eq!(r.is_error, Some(true), "{label}: DROP was not an error: {}", seen(&r));
    assert_eq!(structured(&r)["status"], "blocked", "{label}");
    assert!(seen(&r).contains("block-destructive-ddl"), "{label}: rule not named: {}", seen(&r));
    assert_eq!(airlock_tests::count(target_url, "SELECT count(*) FROM orders").await, 3, "{label}: orders gone");

    let r = sql(client, "DELETE FROM orders").await;
    assert_eq!(r.is_error, Some(true), "{label}: unbounded DELETE was not refused: {}", seen(&r));
    assert_ne!(structured(&r)["status"], "completed", "{label}");
    assert!(seen(&r).contains("approve-unbounded-writes"), "{label}: rule not named: {}", seen(&r));
    assert_eq!(airlock_tests::count(target_url, "SELECT count(*) FROM orders").await, 3, "{label}: rows deleted");
    session
}

/// `airlock sessions verify --all` exits 0 and names the session.
pub fn assert_chains_verify(airlock: &Airlock, session: &str) {
    let out = airlock.run(&["sessions", "verify", "--all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("{session}: ok")), "session {session} not verified:\n{stdout}");
}
