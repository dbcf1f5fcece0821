//! A fake Discord for the approval-bot tests: the REST API (v10) as far as the bot uses it, and the signing side
//! of interactions.
//!
//! REST: `POST /api/v10/channels/{id}/messages`, `PATCH /api/v10/channels/{id}/messages/{id}`,
//! `POST /api/v10/interactions/{id}/{token}/callback`, `PATCH /api/v10/webhooks/{app}/{token}/messages/@original`,
//! `POST /api/v10/webhooks/{app}/{token}`, `PUT /api/v10/applications/{app}/commands`, `GET /api/v10/gateway/bot`,
//! answered with Discord's shapes (message objects with snowflake ids, `{"message", "code"}` errors, `429` with
//! a JSON `retry_after` in float seconds and the `X-RateLimit-*` headers). Bot routes require
//! `Authorization: Bot <token>`; interaction and webhook routes are authorised by the token in their path, as in
//! Discord. Every request is recorded for assertions.
//!
//! Gateway: a WebSocket at `/gateway` (the URL `GET /gateway/bot` hands out) speaking the Gateway protocol as far
//! as interactions need it: HELLO, IDENTIFY (checks the token; READY with a session id and resume URL, or close
//! 4004), RESUME (RESUMED), heartbeats answered with ACKs, and `INTERACTION_CREATE` dispatches and RECONNECT
//! pushed by tests. Every frame the client sends is recorded.
//!
//! Signing: the fake owns an Ed25519 application key (made fresh per fake); tests put [`FakeDiscord::public_key_hex`]
//! in `[discord] public_key` and send interactions signed with [`FakeDiscord::sign`], as Discord would.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "fake-discord-bot-token.Gx1.abc";
/// The application id the fake knows.
pub const APPLICATION_ID: &str = "1200000000000000001";
/// The one text channel that exists (post to `discord:{CHANNEL_ID}`).
pub const CHANNEL_ID: &str = "1300000000000000001";
/// The guild the channel is in.
pub const GUILD_ID: &str = "1400000000000000001";

/// One REST request as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which route: `create_message`, `edit_message`, `interaction_callback`, `edit_original`, `followup`,
    /// `register_commands`, `gateway_bot`.
    pub route: &'static str,
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The request carried the right credentials for its route.
    pub authorized: bool,
    /// What the fake answered: HTTP status and body.
    pub status: u16,
    pub answer: Value,
}

/// A scripted failure for the next call of a route.
#[derive(Debug, Clone)]
pub enum Failure {
    /// `429` with `{"retry_after": secs}` and the rate-limit headers.
    RateLimited(f64),
    /// An HTTP error status with Discord's error body (`{"message", "code"}`).
    Status(u16, &'static str, u32),
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    failures: HashMap<&'static str, VecDeque<Failure>>,
    /// Messages by id, as created / last edited.
    messages: HashMap<String, Value>,
    /// Frames the Gateway client sent, in order.
    frames: Vec<Value>,
    /// The live Gateway session's outbox (after READY or RESUMED).
    gateway: Option<mpsc::UnboundedSender<String>>,
    gateways_opened: usize,
}

/// The session id READY hands out.
pub const SESSION_ID: &str = "fake-session-0001";

struct Shared {
    inner: Mutex<Inner>,
    changed: Notify,
    next_id: AtomicU64,
    seq: AtomicU64,
    heartbeat_ms: AtomicU64,
    ws_url: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snowflake(&self) -> String {
        self.next_id.fetch_add(1, Ordering::SeqCst).to_string()
    }
}

/// A running fake Discord. Dropping it stops the server.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    base: String,
    key: Ed25519KeyPair,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const WAIT: Duration = Duration::from_secs(15);

type Answer = (u16, Value);

impl FakeDiscord {
    /// Start on 127.0.0.1 on a free port, with a fresh application key.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake discord");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            inner: Mutex::default(),
            changed: Notify::new(),
            next_id: AtomicU64::new(1_500_000_000_000_000_001),
            seq: AtomicU64::new(1),
            heartbeat_ms: AtomicU64::new(41_250),
            ws_url: format!("{}/gateway", base.replacen("http", "ws", 1)),
        });
        let app = axum::Router::new()
            .route("/api/v10/channels/{channel}/messages", post(create_message))
            .route("/api/v10/channels/{channel}/messages/{message}", patch(edit_message))
            .route("/api/v10/interactions/{id}/{token}/callback", post(interaction_callback))
            .route("/api/v10/webhooks/{app}/{token}/messages/@original", patch(edit_original))
            .route("/api/v10/webhooks/{app}/{token}", post(followup))
            .route("/api/v10/applications/{app}/commands", put(register_commands))
            .route("/api/v10/gateway/bot", get(gateway_bot))
            .route("/gateway", get(gateway_socket))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate application key");
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("application key");
        Self { shared, base, key, task }
    }

    /// What to put in `[discord] api_base_url`.
    pub fn api_base_url(&self) -> String {
        format!("{}/api/v10", self.base)
    }

    /// What to put in `[discord] public_key`.
    pub fn public_key_hex(&self) -> String {
        to_hex(self.key.public_key().as_ref())
    }

    /// `(X-Signature-Timestamp, X-Signature-Ed25519)` for `body` sent at `timestamp`, as Discord signs.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> (String, String) {
        let ts = timestamp.to_string();
        let mut message = ts.as_bytes().to_vec();
        message.extend_from_slice(body);
        (ts, to_hex(self.key.sign(&message).as_ref()))
    }

    /// The Gateway WebSocket URL (also what `GET /gateway/bot` answers).
    pub fn gateway_url(&self) -> String {
        self.shared.ws_url.clone()
    }

    /// The `heartbeat_interval` HELLO announces to connections opened from now on.
    pub fn set_heartbeat_interval(&self, interval: Duration) {
        self.shared.heartbeat_ms.store(interval.as_millis() as u64, Ordering::SeqCst);
    }

    /// Frames the Gateway client sent so far.
    pub fn frames(&self) -> Vec<Value> {
        self.shared.lock().frames.clone()
    }

    /// Wait (bounded) until the client sent `n` frames with opcode `op`; returns them.
    pub async fn wait_frames(&self, op: u64, n: usize) -> Vec<Value> {
        let of = |fs: Vec<Value>| fs.into_iter().filter(|f| f["op"].as_u64() == Some(op)).collect::<Vec<_>>();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let frames = of(self.frames());
            if frames.len() >= n {
                return frames;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake discord: timed out waiting for {n} gateway frame(s) op {op}; got {:#?}", self.frames());
            }
        }
    }

    /// How many Gateway connections were opened.
    pub fn gateways_opened(&self) -> usize {
        self.shared.lock().gateways_opened
    }

    /// Send a Gateway payload to the live session (waits, bounded, for one).
    pub async fn push_gateway(&self, payload: Value) {
        let text = payload.to_string();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.shared.lock();
                if let Some(tx) = inner.gateway.clone() {
                    if tx.send(text.clone()).is_ok() {
                        return;
                    }
                    inner.gateway = None;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake discord: no live gateway session");
            }
        }
    }

    /// Deliver an interaction as an `INTERACTION_CREATE` dispatch on the Gateway.
    pub async fn push_interaction(&self, interaction: Value) {
        let s = self.shared.seq.fetch_add(1, Ordering::SeqCst);
        self.push_gateway(json!({ "op": 0, "t": "INTERACTION_CREATE", "s": s, "d": interaction })).await;
    }

    /// Answer the next call of `route` with `failure` (queued; one per call).
    pub fn fail_next(&self, route: &'static str, failure: Failure) {
        self.shared.lock().failures.entry(route).or_default().push_back(failure);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// Calls of one route so far.
    pub fn calls_of(&self, route: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.route == route).collect()
    }

    /// Wait (bounded) until `n` successful calls of `route` were made; returns those calls.
    pub async fn wait_calls(&self, route: &str, n: usize) -> Vec<Call> {
        let ok = |c: &Call| c.route == route && (200..300).contains(&c.status);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls: Vec<Call> = self.calls().into_iter().filter(ok).collect();
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("fake discord: timed out waiting for {n} x {route}; calls: {:#?}", self.calls());
            }
        }
    }

    /// The approval request message (the first created message with buttons): `(channel_id, message_id)`.
    pub fn request_message(&self) -> (String, String) {
        let post = self
            .calls_of("create_message")
            .into_iter()
            .find(|c| c.status == 200 && c.body.get("components").is_some())
            .expect("request message posted");
        (str_of(&post.answer, "channel_id"), str_of(&post.answer, "id"))
    }

    fn interaction(&self, kind: u8, user: &str, data: Value, with_message: bool) -> Value {
        let mut v = json!({
            "id": self.shared.snowflake(),
            "application_id": APPLICATION_ID,
            "type": kind,
            "token": format!("aW50ZXJhY3Rpb246{}", self.shared.snowflake()),
            "version": 1,
            "guild_id": GUILD_ID,
            "channel_id": CHANNEL_ID,
            "channel": { "id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "airlock-approvals" },
            "member": {
                "user": { "id": user, "username": format!("user{user}"), "discriminator": "0", "global_name": null },
                "roles": [], "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "permissions": "2248473465835073",
            },
            "app_permissions": "2248473465835073",
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": { "0": GUILD_ID },
            "context": 0,
            "data": data,
        });
        if with_message {
            let (_, id) = self.request_message();
            if let Some(m) = self.shared.lock().messages.get(&id).cloned() {
                v["message"] = m;
            }
        }
        v
    }

    /// A MESSAGE_COMPONENT interaction: `user` clicked the button with `custom_id` on the request message.
    pub fn component(&self, user: &str, custom_id: &str) -> Value {
        self.interaction(3, user, json!({ "custom_id": custom_id, "component_type": 2 }), true)
    }

    /// A MODAL_SUBMIT interaction: `user` submitted the modal `custom_id` with `reason` in its text input.
    pub fn modal_submit(&self, user: &str, custom_id: &str, input_id: &str, reason: &str) -> Value {
        let data = json!({
            "custom_id": custom_id,
            "components": [{ "type": 1, "components": [{ "type": 4, "custom_id": input_id, "value": reason }] }],
        });
        self.interaction(5, user, data, true)
    }

    /// An APPLICATION_COMMAND interaction: `/airlock command:<text>`.
    pub fn command(&self, user: &str, text: &str) -> Value {
        let data = json!({
            "id": "1600000000000000001", "name": "airlock", "type": 1,
            "options": [{ "name": "command", "type": 3, "value": text }],
        });
        self.interaction(2, user, data, false)
    }

    /// A PING interaction (what Discord sends when the endpoint URL is saved).
    pub fn ping(&self) -> Value {
        json!({ "id": self.shared.snowflake(), "application_id": APPLICATION_ID, "type": 1,
                "token": "aW50ZXJhY3Rpb246cGluZw", "version": 1 })
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn str_of(v: &Value, field: &str) -> String {
    v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn bot_authorized(headers: &HeaderMap) -> bool {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Bot {BOT_TOKEN}"))
}

fn error(status: u16, message: &str, code: u32) -> Answer {
    (status, json!({ "message": message, "code": code }))
}

/// Record the call and answer it: a queued failure first, then auth, then `ok` (the route's real work).
fn respond(
    shared: &Shared,
    route: &'static str,
    method: Method,
    path: String,
    authorized: bool,
    body: Value,
    ok: impl FnOnce(&Shared, &Value) -> Answer,
) -> Response {
    let failure = shared.lock().failures.get_mut(route).and_then(VecDeque::pop_front);
    let mut retry_after = None;
    let (status, answer) = match (authorized, failure) {
        (false, _) => error(401, "401: Unauthorized", 0),
        (true, Some(Failure::RateLimited(secs))) => {
            retry_after = Some(secs);
            (429, json!({ "message": "You are being rate limited.", "retry_after": secs, "global": false }))
        }
        (true, Some(Failure::Status(s, message, code))) => error(s, message, code),
        (true, None) => ok(shared, &body),
    };
    shared.lock().calls.push(Call {
        route,
        method: method.to_string(),
        path,
        body,
        authorized,
        status,
        answer: answer.clone(),
    });
    shared.changed.notify_waiters();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, axum::Json(answer)).into_response()
    };
    if let Some(secs) = retry_after {
        let h = response.headers_mut();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        for (name, value) in [
            ("retry-after", format!("{}", secs.ceil() as u64)),
            ("x-ratelimit-limit", "5".to_owned()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset", format!("{:.3}", now + secs)),
            ("x-ratelimit-reset-after", format!("{secs:.3}")),
            ("x-ratelimit-bucket", "fakebucket0123456789abcdef".to_owned()),
            ("x-ratelimit-scope", "user".to_owned()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
    }
    response
}

fn json_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// A message object as Discord returns it.
fn message(shared: &Shared, id: String, channel: &str, body: &Value) -> Value {
    json!({
        "id": id,
        "channel_id": channel,
        "type": if body.get("message_reference").is_some() { 19 } else { 0 },
        "author": { "id": APPLICATION_ID, "username": "Airlock", "bot": true, "discriminator": "0" },
        "content": body.get("content").cloned().unwrap_or(Value::String(String::new())),
        "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "message_reference": body.get("message_reference").cloned().unwrap_or(Value::Null),
        "timestamp": "2026-11-21T18:40:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [], "attachments": [],
        "pinned": false, "flags": 0,
        "nonce": shared.snowflake(),
    })
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/channels/{channel}/messages");
    respond(&shared, "create_message", Method::POST, path, bot_authorized(&headers), json_body(&body), |s, b| {
        if channel != CHANNEL_ID {
            return error(404, "Unknown Channel", 10003);
        }
        if b.get("content").is_none() && b.get("embeds").is_none() {
            return error(400, "Cannot send an empty message", 50006);
        }
        let id = s.snowflake();
        let m = message(s, id.clone(), &channel, b);
        s.lock().messages.insert(id, m.clone());
        (200, m)
    })
}

async fn edit_message(
    State(shared): State<Arc<Shared>>,
    Path((channel, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/channels/{channel}/messages/{id}");
    respond(&shared, "edit_message", Method::PATCH, path, bot_authorized(&headers), json_body(&body), |s, b| {
        let mut inner = s.lock();
        let Some(m) = inner.messages.get_mut(&id).filter(|m| m["channel_id"] == channel.as_str()) else {
            return error(404, "Unknown Message", 10008);
        };
        for key in ["content", "embeds", "components"] {
            if let Some(v) = b.get(key) {
                m[key] = v.clone();
            }
        }
        m["edited_timestamp"] = json!("2026-11-21T18:41:00.000000+00:00");
        (200, m.clone())
    })
}

async fn interaction_callback(
    State(shared): State<Arc<Shared>>,
    Path((id, token)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/interactions/{id}/{token}/callback");
    respond(&shared, "interaction_callback", Method::POST, path, true, json_body(&body), |_, b| {
        if b.get("type").and_then(Value::as_u64).is_none() {
            return error(400, "Invalid Form Body", 50035);
        }
        (204, Value::Null)
    })
}

async fn edit_original(
    State(shared): State<Arc<Shared>>,
    Path((app, token)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/webhooks/{app}/{token}/messages/@original");
    respond(&shared, "edit_original", Method::PATCH, path, app == APPLICATION_ID, json_body(&body), |s, b| {
        let id = s.snowflake();
        (200, message(s, id, CHANNEL_ID, b))
    })
}

async fn followup(
    State(shared): State<Arc<Shared>>,
    Path((app, token)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/webhooks/{app}/{token}");
    respond(&shared, "followup", Method::POST, path, app == APPLICATION_ID, json_body(&body), |s, b| {
        let id = s.snowflake();
        (200, message(s, id, CHANNEL_ID, b))
    })
}

async fn register_commands(
    State(shared): State<Arc<Shared>>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/applications/{app}/commands");
    let authorized = bot_authorized(&headers) && app == APPLICATION_ID;
    respond(&shared, "register_commands", Method::PUT, path, authorized, json_body(&body), |s, b| {
        let Some(list) = b.as_array() else { return error(400, "Invalid Form Body", 50035) };
        let registered: Vec<Value> = list
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c["id"] = json!(s.snowflake());
                c["application_id"] = json!(APPLICATION_ID);
                c["version"] = json!(s.snowflake());
                c
            })
            .collect();
        (200, Value::Array(registered))
    })
}

async fn gateway_bot(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let path = "/gateway/bot".to_owned();
    respond(&shared, "gateway_bot", Method::GET, path, bot_authorized(&headers), Value::Null, |shared, _| {
        let limit = json!({ "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1 });
        (200, json!({ "url": shared.ws_url, "shards": 1, "session_start_limit": limit }))
    })
}

async fn gateway_socket(State(shared): State<Arc<Shared>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_gateway(shared, socket))
}

async fn serve_gateway(shared: Arc<Shared>, mut socket: WebSocket) {
    shared.lock().gateways_opened += 1;
    shared.changed.notify_waiters();
    let interval = shared.heartbeat_ms.load(Ordering::SeqCst);
    let hello = json!({ "op": 10, "s": null, "t": null, "d": { "heartbeat_interval": interval } });
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    loop {
        tokio::select! {
            out = rx.recv() => {
                let Some(text) = out else { break };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => continue,
                };
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                shared.lock().frames.push(frame.clone());
                shared.changed.notify_waiters();
                let Some(reply) = gateway_reply(&shared, &frame) else { continue };
                if reply["op"] == 4004 {
                    let close = CloseFrame { code: 4004, reason: "Authentication failed.".into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    break;
                }
                let live = reply["t"] == "READY" || reply["t"] == "RESUMED";
                if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                    break;
                }
                if live {
                    shared.lock().gateway = Some(tx.clone());
                    shared.changed.notify_waiters();
                }
            }
        }
    }
    let mut inner = shared.lock();
    if inner.gateway.as_ref().is_some_and(|g| g.same_channel(&tx)) {
        inner.gateway = None;
    }
}

/// The fake's answer to one client frame (`{"op": 4004}` stands for "close with 4004").
fn gateway_reply(shared: &Shared, frame: &Value) -> Option<Value> {
    let token_ok = frame.pointer("/d/token").and_then(Value::as_str) == Some(BOT_TOKEN);
    let seq = || shared.seq.fetch_add(1, Ordering::SeqCst);
    match frame["op"].as_u64()? {
        1 => Some(json!({ "op": 11 })),
        2 if !token_ok => Some(json!({ "op": 4004 })),
        2 => Some(json!({ "op": 0, "t": "READY", "s": seq(), "d": {
            "v": 10, "session_id": SESSION_ID, "resume_gateway_url": shared.ws_url,
            "user": { "id": APPLICATION_ID, "username": "Airlock", "bot": true, "discriminator": "0" },
            "guilds": [], "application": { "id": APPLICATION_ID, "flags": 0 },
        } })),
        6 if token_ok && frame.pointer("/d/session_id").and_then(Value::as_str) == Some(SESSION_ID) => {
            Some(json!({ "op": 0, "t": "RESUMED", "s": seq(), "d": null }))
        }
        6 => Some(json!({ "op": 9, "d": false })),
        _ => None,
    }
}
