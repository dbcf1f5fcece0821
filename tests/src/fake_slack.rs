//! A fake Slack Web API + Socket Mode server for the approval-bot tests.
//!
//! It speaks Slack's wire protocol as far as the bot uses it: `POST /api/{method}` with a bearer token and a
//! JSON or form body, answered like Slack (`{"ok": true, "ts": …, "channel": …}` or `{"ok": false, "error": …}`,
//! `429` with `Retry-After`), and a Socket Mode WebSocket that sends `hello`, pushes envelopes and records the
//! acks. Every request is recorded so tests can assert on what the bot posted. Product code reaches it only
//! through `[slack] api_base_url`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// The bot token the fake accepts for Web API calls.
pub const BOT_TOKEN: &str = "xoxb-fake-bot-token";
/// The app-level token the fake accepts for `apps.connections.open`.
pub const APP_TOKEN: &str = "xapp-fake-app-token";
/// The channel id the fake gives channels posted to by name (`#airlock-approvals`).
pub const CHANNEL_ID: &str = "C0APPROVALS";

/// One Web API request as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The body, as JSON (form bodies become an object of strings).
    pub body: Value,
    /// The bearer token was the right one for the method.
    pub authorized: bool,
    /// What the fake answered: HTTP status and body.
    pub status: u16,
    pub answer: Value,
}

/// A scripted failure for the next call of a method.
#[derive(Debug, Clone)]
pub enum Failure {
    /// `200 {"ok": false, "error": code}`.
    Error(String),
    /// `429` with `Retry-After: secs`.
    RateLimited(u64),
    /// An HTTP error status (e.g. 503).
    Status(u16),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    failures: HashMap<String, VecDeque<Failure>>,
    acks: Vec<String>,
    socket: Option<mpsc::UnboundedSender<String>>,
    sockets_opened: usize,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: Notify,
    ts: AtomicU64,
    base: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake Slack. Dropping it stops the server.
pub struct FakeSlack {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const WAIT: Duration = Duration::from_secs(15);

impl FakeSlack {
    /// Start on 127.0.0.1 on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake slack");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            changed: Notify::new(),
            ts: AtomicU64::new(100),
            base: format!("http://{addr}"),
        });
        let app = axum::Router::new()
            .route("/api/{method}", post(api))
            .route("/socket", any(socket))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { shared, task }
    }

    /// What to put in `[slack] api_base_url`.
    pub fn api_base_url(&self) -> String {
        format!("{}/api", self.shared.base)
    }

    /// Answer the next call of `method` with `failure` (queued; one per call).
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.shared.lock().failures.entry(method.to_owned()).or_default().push_back(failure);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Calls of one method so far.
    /// The approval request message's `(channel, ts)` as this fake answered `chat.postMessage`.
    pub fn request_message(&self) -> (String, String) {
        let post = self.calls_of("chat.postMessage").into_iter().find(|c| c.body.get("blocks").is_some());
        let a = post.expect("request posted").answer;
        (a["channel"].as_str().unwrap_or("").to_owned(), a["ts"].as_str().unwrap_or("").to_owned())
    }

    /// A `block_actions` payload shaped like Slack's: `user` clicked `action_id` on the request message.
    pub fn block_actions(&self, user: &str, action_id: &str, approval_id: &str) -> Value {
        let (channel, ts) = self.request_message();
        json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T0FAKE" },
            "api_app_id": "A0FAKE",
            "token": "legacy-verification-token",
            "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": "1234567890.0987654321.abcdef0123456789",
            "team": { "id": "T0FAKE", "domain": "airlock-test" },
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": { "id": channel, "name": "airlock-approvals" },
            "message": { "type": "message", "ts": ts, "text": "Approval needed" },
            "state": { "values": {} },
            "response_url": "https://hooks.slack.com/actions/T0FAKE/1/abc",
            "actions": [{
                "action_id": action_id, "block_id": "airlock_decision",
                "text": { "type": "plain_text", "text": "Approve", "emoji": true },
                "value": approval_id, "type": "button", "action_ts": "1700000001.000200",
            }],
        })
    }

    /// The `view_submission` of the deny modal that `views.open` number `nth` (0-based) opened, as `user`
    /// giving `reason`.
    pub async fn deny_submission(&self, nth: usize, user: &str, reason: &str) -> Value {
        let opened = self.wait_calls("views.open", nth + 1).await;
        let view = &opened[nth].body["view"];
        json!({
            "type": "view_submission",
            "team": { "id": "T0FAKE", "domain": "airlock-test" },
            "user": { "id": user, "username": user.to_lowercase(), "team_id": "T0FAKE" },
            "api_app_id": "A0FAKE",
            "token": "legacy-verification-token",
            "trigger_id": "1234567890.0987654321.fedcba",
            "view": {
                "id": "V0FAKE", "team_id": "T0FAKE", "type": "modal",
                "blocks": view["blocks"], "private_metadata": view["private_metadata"],
                "callback_id": view["callback_id"],
                "state": { "values": { "airlock_reason": { "airlock_reason": { "type": "plain_text_input", "value": reason } } } },
                "hash": "1700000002.abc", "title": view["title"], "submit": view["submit"], "close": view["close"],
            },
            "response_urls": [],
        })
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Wait (bounded) until `done` holds for the calls recorded; returns them. Panics with `what` on timeout.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake slack: timed out waiting for {what}; calls: {:#?}", self.calls());
            }
        }
    }

    /// Wait until `n` successful calls of `method` were made; returns those calls.
    pub async fn wait_calls(&self, method: &str, n: usize) -> Vec<Call> {
        let ok = |c: &Call| c.method == method && c.answer.get("ok") == Some(&Value::Bool(true));
        let calls = self.wait_for(&format!("{n} x {method}"), |cs| cs.iter().filter(|c| ok(c)).count() >= n).await;
        calls.into_iter().filter(ok).collect()
    }

    /// Push an `interactive` envelope with `payload` to the connected Socket Mode client; returns its
    /// envelope id. Waits (bounded) for a client to connect.
    pub async fn push_interactive(&self, payload: Value) -> String {
        let id = format!("env-{}", self.shared.ts.fetch_add(1, Ordering::SeqCst));
        self.push(json!({
            "envelope_id": id, "type": "interactive", "payload": payload, "accepts_response_payload": false,
        }))
        .await;
        id
    }

    /// Push any message (e.g. `{"type": "disconnect", "reason": "refresh_requested"}`) to the connected Socket
    /// Mode client. Waits (bounded) for a client to connect.
    pub async fn push(&self, message: Value) {
        let text = message.to_string();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.shared.lock();
                if let Some(tx) = inner.socket.clone() {
                    if tx.send(text.clone()).is_ok() {
                        return;
                    }
                    inner.socket = None; // that client is gone; wait for the next one
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake slack: no socket mode client connected");
            }
        }
    }

    /// Wait until `n` Socket Mode connections have been opened in total.
    pub async fn wait_sockets(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().sockets_opened >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake slack: only {} socket mode connection(s) opened, wanted {n}", self.sockets_opened());
            }
        }
    }

    /// Wait until the client acked envelope `id`.
    pub async fn wait_ack(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().acks.iter().any(|a| a == id) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake slack: envelope {id} was not acked; acks: {:?}", self.shared.lock().acks);
            }
        }
    }

    /// How many Socket Mode connections were opened.
    pub fn sockets_opened(&self) -> usize {
        self.shared.lock().sockets_opened
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body = parse_body(&headers, &body);
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = if method == "apps.connections.open" { APP_TOKEN } else { BOT_TOKEN };
    let authorized = token == expected;
    let failure = shared.lock().failures.get_mut(&method).and_then(VecDeque::pop_front);
    let ts = || format!("1700000000.{:06}", shared.ts.fetch_add(1, Ordering::SeqCst));
    let channel = match body.get("channel").and_then(Value::as_str) {
        Some(c) if c.starts_with('#') => CHANNEL_ID.to_owned(),
        Some(c) => c.to_owned(),
        None => String::new(),
    };
    let (status, answer, retry_after) = match (authorized, failure) {
        (false, _) => (200, json!({ "ok": false, "error": "invalid_auth" }), None),
        (true, Some(Failure::Error(code))) => (200, json!({ "ok": false, "error": code }), None),
        (true, Some(Failure::RateLimited(secs))) => (429, json!({ "ok": false, "error": "ratelimited" }), Some(secs)),
        (true, Some(Failure::Status(s))) => (s, json!({ "ok": false, "error": "fake_http_error" }), None),
        (true, None) => {
            let answer = match method.as_str() {
                "chat.postMessage" => {
                    json!({ "ok": true, "channel": channel, "ts": ts(), "message": { "text": body.get("text") } })
                }
                "chat.update" => {
                    json!({ "ok": true, "channel": channel, "ts": body.get("ts"), "text": body.get("text") })
                }
                "chat.postEphemeral" => json!({ "ok": true, "message_ts": ts() }),
                "views.open" => json!({ "ok": true, "view": { "id": "V0FAKE", "type": "modal" } }),
                "apps.connections.open" => {
                    json!({ "ok": true, "url": format!("{}/socket?ticket=fake", shared.base.replacen("http", "ws", 1)) })
                }
                _ => json!({ "ok": false, "error": "unknown_method" }),
            };
            (200, answer, None)
        }
    };
    {
        let mut inner = shared.lock();
        inner.calls.push(Call { method, body, authorized, status, answer: answer.clone() });
    }
    shared.changed.notify_waiters();
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(answer)).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}

async fn socket(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(shared, socket))
}

async fn serve_socket(shared: Arc<Shared>, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    {
        let mut inner = shared.lock();
        inner.socket = Some(tx.clone());
        inner.sockets_opened += 1;
    }
    shared.changed.notify_waiters();
    let hello = json!({ "type": "hello", "num_connections": 1, "connection_info": { "app_id": "A0FAKE" } });
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    relay(&shared, &mut socket, &mut rx).await;
    // Stop routing pushes to this connection (unless a newer one has already taken its place).
    let mut inner = shared.lock();
    if inner.socket.as_ref().is_some_and(|s| s.same_channel(&tx)) {
        inner.socket = None;
    }
}

async fn relay(shared: &Shared, socket: &mut WebSocket, rx: &mut mpsc::UnboundedReceiver<String>) {
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(text) = out else { return };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => {
                let Some(Ok(msg)) = incoming else { return };
                if let Message::Text(t) = msg {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if let Some(id) = v.get("envelope_id").and_then(Value::as_str) {
                        shared.lock().acks.push(id.to_owned());
                        shared.changed.notify_waiters();
                    }
                }
            }
        }
    }
}
