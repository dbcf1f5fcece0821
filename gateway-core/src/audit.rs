//! The audit stream: typed audit events (`tool_call.completed`, `approval.denied`, `auth.failed`, …) as JSON
//! lines on stdout or in a file, and to webhook sinks (generic JSON or Splunk HEC, HMAC-signed), through a
//! durable outbox in the store.
//!
//! **Enqueue.** The recorder calls [`enqueue`] inside the transaction that appends an event to a session's chain.
//! Events that belong in the stream become one `audit_outbox` row per configured sink, so the stream is exactly
//! the recorded history: if the row cannot be written, the event is not recorded either (and the call fails
//! closed), and nothing recorded is missing from the stream.
//!
//! **Deliver.** [`spawn_delivery`] runs one loop per sink. A sink is delivered by one replica at a time (a lease
//! row in `leases`), in outbox id order, in batches; a failed batch is retried with exponential backoff
//! (1 s doubling to 60 s) until it goes through, and later rows wait behind it, so order per session holds.
//! Rows are marked delivered after the sink accepted them: delivery is at least once, and every event carries a
//! stable `id` (`<session>/<seq>/<type>`) for the receiver to drop repeats.
//!
//! Everything streamed was recorded masked; credentials never reach the stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row as _;
use tokio_util::sync::CancellationToken;

use crate::config::HumanDuration;
use crate::error::{Error, Result};
use crate::record::EventKind;
use crate::store::{Store, now_ms, rfc3339};
use crate::vault::{CredentialRef, Secret};

/// Delivered rows are kept this long (for inspection), then deleted.
const KEEP_DELIVERED: Duration = Duration::from_secs(24 * 3600);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How often an idle sink looks for new rows.
const POLL: Duration = Duration::from_millis(250);

// === configuration ===

/// `[audit]`: where typed audit events go. Nothing configured: nothing is streamed (the chain still has it all).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// JSON lines on standard output (not with `airlock mcp --stdio`, whose stdout carries MCP).
    pub stdout: bool,
    /// JSON lines appended to this file.
    pub file: Option<PathBuf>,
    /// HTTP sinks (SIEMs).
    pub webhooks: Vec<WebhookConfig>,
    /// How long a replica's claim on a sink lasts unless renewed (it renews it every poll). When a replica dies
    /// without shutting down, another takes its sinks over after this long. Must exceed twice every webhook's
    /// `timeout`, so a slow delivery never loses its lease midway. Default 30 s.
    pub lease: HumanDuration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { stdout: false, file: None, webhooks: Vec::new(), lease: HumanDuration(Duration::from_secs(30)) }
    }
}

/// One `[[audit.webhooks]]` sink.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name (letters, digits, `-`, `_`): the sink's identity in the outbox. Renaming a sink starts it afresh.
    pub name: String,
    /// Where to POST. `https://`, or `http://` to a loopback address only.
    pub url: String,
    /// `json` (a JSON array of events per POST) or `splunk_hec` (HEC event objects, `Authorization: Splunk …`).
    #[serde(default)]
    pub format: WebhookFormat,
    /// Sent as `Authorization: Bearer <token>` (`json`) or `Authorization: Splunk <token>` (`splunk_hec`).
    pub token: Option<CredentialRef>,
    /// Key of the HMAC-SHA256 signature in `X-Airlock-Signature` (over `<timestamp>.<body>`).
    pub secret: Option<CredentialRef>,
    /// A PEM CA to trust instead of the platform's roots (a SIEM with a private CA).
    pub ca_cert: Option<PathBuf>,
    /// Events per POST (default 100).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Per-request time limit (default 10 s).
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_batch() -> usize {
    100
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Json,
    SplunkHec,
}

impl AuditConfig {
    /// The sink names rows are written for: `stdout`, `file`, `webhook:<name>`.
    pub fn sink_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.stdout {
            names.push("stdout".to_owned());
        }
        if self.file.is_some() {
            names.push("file".to_owned());
        }
        names.extend(self.webhooks.iter().map(|w| format!("webhook:{}", w.name)));
        names
    }

    /// Check the section; the error names the key.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |k: &str| format!("audit.webhooks[{i}].{k}");
            if w.name.is_empty() || !w.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err((key("name"), "use letters, digits, - and _".into()));
            }
            if !seen.insert(w.name.as_str()) {
                return Err((key("name"), format!("{:?} is used twice", w.name)));
            }
            let url = url::Url::parse(&w.url).map_err(|e| (key("url"), format!("{:?}: {e}", w.url)))?;
            let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1"));
            match url.scheme() {
                "https" => {}
                "http" if loopback => {}
                _ => return Err((key("url"), "must be https:// (plain http only to a loopback address)".into())),
            }
            if w.batch == 0 {
                return Err((key("batch"), "must be at least 1".into()));
            }
            if self.lease.0 < w.timeout.0 * 2 {
                return Err((
                    "audit.lease".into(),
                    format!("must be at least twice audit.webhooks[{i}].timeout ({} s)", w.timeout.as_secs()),
                ));
            }
        }
        Ok(())
    }
}

// === typed events ===

/// The typed audit events a recorded event stands for (none: not part of the stream).
pub fn types_of(kind: EventKind, payload: &Value) -> Vec<&'static str> {
    let str_at = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
    match kind {
        EventKind::Result => {
            let mut types = vec![match str_at("status") {
                "completed" => "tool_call.completed",
                "error" => "tool_call.error",
                // blocked, denied, expired: the call did not run (the approval.* event says why).
                _ => "tool_call.blocked",
            }];
            if payload.get("masked").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
                types.push("tool_call.masked");
            }
            types
        }
        EventKind::ApprovalRequested => vec!["approval.requested"],
        EventKind::ApprovalDecided => match str_at("state") {
            "approved" => vec!["approval.approved"],
            "denied" => vec!["approval.denied"],
            "expired" => vec!["approval.expired"],
            _ => Vec::new(),
        },
        EventKind::PolicyChanged => vec!["policy.changed"],
        EventKind::IdentityFrozen => vec!["identity.frozen"],
        EventKind::IdentityUnfrozen => vec!["identity.unfrozen"],
        EventKind::AuthFailed => vec!["auth.failed"],
        EventKind::SessionPurged => vec!["session.purged"],
        _ => Vec::new(),
    }
}

/// Write the outbox rows for one recorded event, inside the recorder's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    sinks: &[String],
    session_id: &str,
    seq: i64,
    call_id: Option<&str>,
    kind: EventKind,
    ts_ms: i64,
    payload: &Value,
) -> Result<()> {
    if sinks.is_empty() {
        return Ok(());
    }
    let types = types_of(kind, payload);
    if types.is_empty() {
        return Ok(());
    }
    // Who called what, from the call's search row (written earlier in this call's history, and in this very
    // transaction for the request): a SIEM wants it on the result without joining events itself.
    let call = match call_id {
        Some(id) => sqlx::query("SELECT subject, connection, tool, statement, rule FROM call_index WHERE call_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| {
                json!({
                    "subject": row.try_get::<String, _>(0).ok(),
                    "connection": row.try_get::<String, _>(1).ok(),
                    "tool": row.try_get::<String, _>(2).ok(),
                    "statement": row.try_get::<String, _>(3).ok(),
                    "rule": row.try_get::<Option<String>, _>(4).ok().flatten(),
                })
            }),
        None => None,
    };
    for ty in types {
        let event_id = format!("{session_id}/{seq}/{ty}");
        let body = json!({
            "id": event_id,
            "type": ty,
            "time": rfc3339(ts_ms),
            "ts_ms": ts_ms,
            "session_id": session_id,
            "seq": seq,
            "call_id": call_id,
            "call": call,
            "data": payload,
        })
        .to_string();
        for sink in sinks {
            // DO NOTHING: a unique violation here must never look like a chain conflict to the recorder.
            sqlx::query(
                "INSERT INTO audit_outbox (sink, event_id, session_id, created_ms, body) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sink, event_id) DO NOTHING",
            )
            .bind(sink)
            .bind(&event_id)
            .bind(session_id)
            .bind(ts_ms)
            .bind(&body)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Undelivered rows per sink (the `/metrics` backlog gauge).
pub async fn backlog(store: &Store) -> Result<Vec<(String, i64)>> {
    let rows =
        sqlx::query("SELECT sink, count(*) FROM audit_outbox WHERE delivered_ms IS NULL GROUP BY sink ORDER BY sink")
            .fetch_all(store.pool())
            .await?;
    rows.iter().map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?))).collect()
}

// === delivery ===

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Where one sink's events go.
enum Target {
    Stdout,
    File(PathBuf),
    Webhook(Box<Webhook>),
}

struct Webhook {
    config: WebhookConfig,
    token: Option<Secret>,
    secret: Option<Secret>,
    http: HttpsClient,
}

/// A configured sink, ready to deliver.
pub struct Sink {
    name: String,
    target: Target,
    batch: i64,
    lease: Duration,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Build the sinks of `[audit]` (credentials resolved, TLS set up); `stdio` refuses the stdout sink.
pub fn sinks(config: &AuditConfig, stdio: bool) -> Result<Vec<Sink>> {
    let cfg_err = |key: String, message: String| Error::Config { file: "[audit]".into(), key, message };
    let mut sinks = Vec::new();
    if config.stdout {
        if stdio {
            return Err(cfg_err(
                "audit.stdout".into(),
                "stdout carries MCP under `airlock mcp --stdio`: use audit.file there".into(),
            ));
        }
        sinks.push(Sink { name: "stdout".into(), target: Target::Stdout, batch: 500, lease: config.lease.0 });
    }
    if let Some(path) = &config.file {
        sinks.push(Sink { name: "file".into(), target: Target::File(path.clone()), batch: 500, lease: config.lease.0 });
    }
    for (i, w) in config.webhooks.iter().enumerate() {
        let owner = |k: &str| format!("audit.webhooks[{i}].{k}");
        let token = w.token.as_ref().map(|r| r.resolve(&owner("token"))).transpose()?;
        let secret = w.secret.as_ref().map(|r| r.resolve(&owner("secret"))).transpose()?;
        let tls = crate::oidc::tls_config(w.ca_cert.as_deref()).map_err(|m| cfg_err(owner("ca_cert"), m))?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        sinks.push(Sink {
            name: format!("webhook:{}", w.name),
            batch: i64::try_from(w.batch).unwrap_or(100),
            lease: config.lease.0,
            target: Target::Webhook(Box::new(Webhook { config: w.clone(), token, secret, http })),
        });
    }
    Ok(sinks)
}

/// Deliver every sink until `stop` fires: one task per sink.
pub fn spawn_delivery(store: Store, sinks: Vec<Sink>, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let owner = uuid::Uuid::new_v4().to_string();
    sinks
        .into_iter()
        .map(|sink| {
            let (store, owner, stop) = (store.clone(), owner.clone(), stop.clone());
            tokio::spawn(async move { deliver_loop(store, Arc::new(sink), owner, stop).await })
        })
        .collect()
}

async fn deliver_loop(store: Store, sink: Arc<Sink>, owner: String, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    let mut next_cleanup = tokio::time::Instant::now();
    loop {
        let wait = match deliver_once(&store, &sink, &owner).await {
            Ok(Some(n)) if n > 0 => {
                backoff = BACKOFF_MIN;
                Duration::ZERO // more may be waiting
            }
            Ok(_) => {
                backoff = BACKOFF_MIN;
                POLL
            }
            Err(e) => {
                tracing::warn!(sink = %sink.name, error = %e, retry_in_s = backoff.as_secs(), "audit delivery failed");
                let wait = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                wait
            }
        };
        if tokio::time::Instant::now() >= next_cleanup {
            next_cleanup = tokio::time::Instant::now() + Duration::from_secs(600);
            let before = now_ms() - KEEP_DELIVERED.as_millis() as i64;
            if let Err(e) = sqlx::query("DELETE FROM audit_outbox WHERE sink = $1 AND delivered_ms < $2")
                .bind(&sink.name)
                .bind(before)
                .execute(store.pool())
                .await
            {
                tracing::warn!(sink = %sink.name, error = %e, "could not delete delivered audit rows");
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    // A clean shutdown hands the sink over at once instead of making the next replica wait out the lease.
    if let Err(e) = store.release_lease(&format!("audit:{}", sink.name), &owner).await {
        tracing::warn!(sink = %sink.name, error = %e, "could not release the audit sink lease");
    }
}

/// Deliver one batch if this replica holds the lease: `Ok(None)` when it does not, `Ok(Some(n))` rows delivered.
async fn deliver_once(store: &Store, sink: &Sink, owner: &str) -> Result<Option<usize>> {
    if !store.take_lease(&format!("audit:{}", sink.name), owner, sink.lease).await? {
        return Ok(None);
    }
    let rows =
        sqlx::query("SELECT id, body FROM audit_outbox WHERE sink = $1 AND delivered_ms IS NULL ORDER BY id LIMIT $2")
            .bind(&sink.name)
            .bind(sink.batch)
            .fetch_all(store.pool())
            .await?;
    if rows.is_empty() {
        return Ok(Some(0));
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut bodies = Vec::with_capacity(rows.len());
    for row in &rows {
        ids.push(row.try_get::<i64, _>(0)?);
        bodies.push(row.try_get::<String, _>(1)?);
    }
    if let Err(message) = send(sink, &bodies).await {
        // Counted on the batch's first row, the one holding the others up.
        let _ = sqlx::query("UPDATE audit_outbox SET attempts = attempts + 1 WHERE id = $1")
            .bind(ids[0])
            .execute(store.pool())
            .await;
        return Err(Error::Target { connection: format!("audit sink {}", sink.name), message });
    }
    let now = now_ms();
    let mut tx = store.pool().begin().await?;
    for id in &ids {
        sqlx::query("UPDATE audit_outbox SET delivered_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(ids.len()))
}

/// Hand a batch (JSON texts, in order) to the sink. The error is a message for the log.
async fn send(sink: &Sink, bodies: &[String]) -> std::result::Result<(), String> {
    match &sink.target {
        Target::Stdout => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            for b in bodies {
                writeln!(out, "{b}").map_err(|e| format!("stdout: {e}"))?;
            }
            out.flush().map_err(|e| format!("stdout: {e}"))
        }
        Target::File(path) => {
            use tokio::io::AsyncWriteExt as _;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let mut text = String::with_capacity(bodies.iter().map(|b| b.len() + 1).sum());
            for b in bodies {
                text.push_str(b);
                text.push('\n');
            }
            file.write_all(text.as_bytes()).await.map_err(|e| format!("{}: {e}", path.display()))?;
            // Marked delivered only once the lines are on disk.
            file.sync_data().await.map_err(|e| format!("{}: {e}", path.display()))
        }
        Target::Webhook(w) => post(w, bodies).await,
    }
}

/// The HTTP body for a batch in the sink's format.
fn webhook_body(format: WebhookFormat, bodies: &[String]) -> String {
    match format {
        // A JSON array of the events, in order.
        WebhookFormat::Json => format!("[{}]", bodies.join(",")),
        // HEC's batch form: event objects one after another, each wrapping an event.
        WebhookFormat::SplunkHec => bodies
            .iter()
            .map(|b| {
                let event: Value = serde_json::from_str(b).unwrap_or(Value::String(b.clone()));
                let time = event.get("ts_ms").and_then(Value::as_i64).unwrap_or(0) as f64 / 1000.0;
                json!({ "time": time, "source": "airlock", "sourcetype": "airlock:audit", "event": event }).to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// `v1=<hex>`: HMAC-SHA256 over `<timestamp>.<body>` (the timestamp lets receivers refuse replays).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post(w: &Webhook, bodies: &[String]) -> std::result::Result<(), String> {
    let body = webhook_body(w.config.format, bodies);
    let timestamp = now_ms() / 1000;
    let mut request = hyper::Request::post(&w.config.url)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-airlock-timestamp", timestamp.to_string());
    if let Some(secret) = &w.secret {
        request =
            request.header("x-airlock-signature", signature(secret.expose().as_bytes(), timestamp, body.as_bytes()));
    }
    if let Some(token) = &w.token {
        let scheme = match w.config.format {
            WebhookFormat::Json => "Bearer",
            WebhookFormat::SplunkHec => "Splunk",
        };
        request = request.header(hyper::header::AUTHORIZATION, format!("{scheme} {}", token.expose()));
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|e| format!("request: {e}"))?;
    let response = tokio::time::timeout(w.config.timeout.0, w.http.request(request))
        .await
        .map_err(|_| format!("no answer within {} s", w.config.timeout.as_secs()))?
        .map_err(|e| format!("{e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect())
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).chars().take(200).collect::<String>())
        .unwrap_or_default();
    Err(format!("HTTP {status}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_events_map_to_typed_audit_events() {
        let result = json!({ "status": "completed", "masked": { "email": 2 } });
        assert_eq!(types_of(EventKind::Result, &result), ["tool_call.completed", "tool_call.masked"]);
        assert_eq!(types_of(EventKind::Result, &json!({ "status": "blocked", "masked": {} })), ["tool_call.blocked"]);
        assert_eq!(types_of(EventKind::Result, &json!({ "status": "error" })), ["tool_call.error"]);
        assert_eq!(types_of(EventKind::ApprovalDecided, &json!({ "state": "expired" })), ["approval.expired"]);
        assert!(types_of(EventKind::Output, &json!({})).is_empty(), "output frames are not streamed");
        assert!(types_of(EventKind::Request, &json!({})).is_empty());
    }

    #[test]
    fn webhook_urls_must_be_https_unless_loopback() {
        let hook = |url: &str| AuditConfig {
            webhooks: vec![WebhookConfig {
                name: "siem".into(),
                url: url.into(),
                format: WebhookFormat::Json,
                token: None,
                secret: None,
                ca_cert: None,
                batch: 10,
                timeout: default_timeout(),
            }],
            ..AuditConfig::default()
        };
        assert!(hook("https://siem.example/hook").validate().is_ok());
        assert!(hook("http://127.0.0.1:9000/hook").validate().is_ok());
        let (key, _) = hook("http://siem.example/hook").validate().unwrap_err();
        assert_eq!(key, "audit.webhooks[0].url");
    }

    #[test]
    fn hec_batches_wrap_each_event_with_its_time() {
        let body =
            webhook_body(WebhookFormat::SplunkHec, &[r#"{"id":"a","ts_ms":1500}"#.into(), r#"{"id":"b"}"#.into()]);
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["time"], 1.5);
        assert_eq!(lines[0]["event"]["id"], "a");
        assert_eq!(lines[1]["sourcetype"], "airlock:audit");
        assert_eq!(webhook_body(WebhookFormat::Json, &[r#"{"id":"a"}"#.into()]), r#"[{"id":"a"}]"#);
    }

    #[test]
    fn signatures_cover_timestamp_and_body() {
        let s = signature(b"k", 1700000000, b"[]");
        assert!(s.starts_with("v1=") && s.len() == 3 + 64);
        assert_ne!(s, signature(b"k", 1700000001, b"[]"));
        assert_ne!(s, signature(b"k", 1700000000, b"[ ]"));
    }
}
