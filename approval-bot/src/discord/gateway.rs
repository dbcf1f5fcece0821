//! Gateway mode: Airlock keeps a Discord Gateway WebSocket open instead of Discord calling Airlock (no public
//! URL needed), and receives interactions as `INTERACTION_CREATE` dispatches.
//!
//! The protocol as far as we need it (<https://discord.com/developers/docs/events/gateway>): connect to
//! `{url}?v=10&encoding=json`, receive HELLO (op 10) with `heartbeat_interval`, then IDENTIFY (op 2, intents 0:
//! interactions need none) or RESUME (op 6) a previous session; heartbeat (op 1, with the last sequence number)
//! every interval and expect an ACK (op 11) before the next, else the connection is a zombie and we reconnect.
//! Reconnect (op 7) and resumable closes resume; INVALID_SESSION (op 9) with `d: false` and non-resumable close
//! codes identify afresh; authentication and intent close codes (4004, 4010–4014) stop the task with an error
//! log, since retrying cannot fix them. Interactions are answered through
//! `POST /interactions/{id}/{token}/callback` with the same handler as the HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::api::{Auth, DiscordApi};
use super::interactions::Interactions;
use crate::error::{Error, Result};
use crate::slack::api::tls_config;

const OP_DISPATCH: u64 = 0;
const OP_HEARTBEAT: u64 = 1;
const OP_IDENTIFY: u64 = 2;
const OP_RESUME: u64 = 6;
const OP_RECONNECT: u64 = 7;
const OP_INVALID_SESSION: u64 = 9;
const OP_HELLO: u64 = 10;
const OP_HEARTBEAT_ACK: u64 = 11;

/// A running Gateway connection. Stops when its cancellation token is cancelled or when dropped.
#[must_use = "dropping the task stops the Discord gateway connection"]
#[derive(Debug)]
pub struct GatewayTask {
    handle: Option<tokio::task::JoinHandle<()>>,
    cancel: CancellationToken,
}

impl GatewayTask {
    /// Ask the task to stop (it closes the WebSocket).
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Wait until the task has stopped.
    pub async fn stopped(mut self) {
        if let Some(h) = self.handle.take()
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "discord gateway task failed");
        }
    }
}

impl Drop for GatewayTask {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What survives a reconnect so it can be resumed.
#[derive(Debug, Default)]
struct Session {
    id: Option<String>,
    resume_url: Option<String>,
    seq: Option<u64>,
}

/// How one connection ended.
enum End {
    /// Reconnect at once, resuming if there is a session.
    Reconnect,
    /// Stop for good (cancelled, or a close code that retrying cannot fix).
    Stop,
}

/// Start the Gateway loop; it reconnects (resuming when it can) with backoff until `cancel` fires.
pub(crate) fn spawn(
    api: DiscordApi,
    gateway_url: Option<String>,
    interactions: Arc<Interactions>,
    cancel: CancellationToken,
) -> GatewayTask {
    let cancel = cancel.child_token();
    let token = cancel.clone();
    let handle = tokio::spawn(
        async move {
            let mut session = Session::default();
            let mut backoff = Duration::from_millis(500);
            loop {
                let ended = tokio::select! {
                    _ = token.cancelled() => return,
                    r = connect_and_serve(&api, gateway_url.as_deref(), &interactions, &mut session, &token) => r,
                };
                match ended {
                    Ok(End::Stop) => return,
                    Ok(End::Reconnect) => backoff = Duration::from_millis(500),
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "discord gateway dropped");
                        tokio::select! {
                            _ = token.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        .instrument(tracing::info_span!("discord_gateway")),
    );
    GatewayTask { handle: Some(handle), cancel }
}

fn with_query(url: &str) -> String {
    let base = url.trim_end_matches('/');
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}v=10&encoding=json")
}

/// Close so that the session stays resumable (Discord invalidates it on 1000 / 1001).
async fn close_for_resume<S>(ws: &mut S)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let frame = CloseFrame { code: CloseCode::Library(4000), reason: "reconnecting".into() };
    let _ = ws.send(Message::Close(Some(frame))).await;
}

async fn gateway_url(api: &DiscordApi, configured: Option<&str>, session: &Session) -> Result<String> {
    if let Some(url) = session.resume_url.as_deref().filter(|_| session.id.is_some()) {
        return Ok(url.to_owned());
    }
    if let Some(url) = configured {
        return Ok(url.to_owned());
    }
    let answer = api.call(Method::GET, "/gateway/bot", None).await?;
    answer
        .get("url")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::DiscordPayload { context: "GET /gateway/bot".into(), message: "no url in answer".into() })
}

/// Close codes after which reconnecting cannot help (bad token, bad intents, …).
fn fatal(code: u16) -> bool {
    matches!(code, 4004 | 4010 | 4011 | 4012 | 4013 | 4014)
}

/// Close codes after which the session cannot be resumed.
fn not_resumable(code: u16) -> bool {
    matches!(code, 4007 | 4009)
}

/// One WebSocket connection, from HELLO until it ends.
async fn connect_and_serve(
    api: &DiscordApi,
    configured_url: Option<&str>,
    interactions: &Arc<Interactions>,
    session: &mut Session,
    cancel: &CancellationToken,
) -> Result<End> {
    let url = with_query(&gateway_url(api, configured_url, session).await?);
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls_config()?));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, Some(connector))
        .await
        .map_err(|e| Error::DiscordGateway(format!("connect: {e}")))?;
    let send = |v: Value| Message::text(v.to_string());

    // HELLO first: it says how often to heartbeat.
    let hello = next_json(&mut ws).await?;
    if hello.get("op").and_then(Value::as_u64) != Some(OP_HELLO) {
        return Err(Error::DiscordGateway("first message was not HELLO".into()));
    }
    let interval_ms = hello.pointer("/d/heartbeat_interval").and_then(Value::as_u64).unwrap_or(41_250).max(100);
    let interval = Duration::from_millis(interval_ms);

    let token = api.bot_token().expose().to_owned();
    let greeting = match (&session.id, session.seq) {
        (Some(id), Some(seq)) => {
            tracing::info!("discord gateway: resuming session");
            json!({ "op": OP_RESUME, "d": { "token": token, "session_id": id, "seq": seq } })
        }
        _ => json!({
            "op": OP_IDENTIFY,
            "d": {
                "token": token,
                // Interactions arrive whatever the intents; we subscribe to nothing else.
                "intents": 0,
                "properties": { "os": std::env::consts::OS, "browser": "airlock", "device": "airlock" },
            },
        }),
    };
    ws.send(send(greeting)).await.map_err(|e| Error::DiscordGateway(format!("identify: {e}")))?;

    // Discord asks for the first heartbeat after `interval * jitter`; half an interval is within that.
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + interval / 2, interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut acked = true;
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(End::Stop);
            }
            _ = heartbeat.tick() => {
                if !acked {
                    // No ACK since the last heartbeat: the connection is dead even if TCP does not know yet.
                    tracing::warn!("discord gateway: heartbeat not acknowledged; reconnecting");
                    close_for_resume(&mut ws).await;
                    return Ok(End::Reconnect);
                }
                acked = false;
                ws.send(send(json!({ "op": OP_HEARTBEAT, "d": session.seq }))).await
                    .map_err(|e| Error::DiscordGateway(format!("heartbeat: {e}")))?;
                continue;
            }
            m = ws.next() => m,
        };
        let text = match msg {
            None => return Err(Error::DiscordGateway("connection closed".into())),
            Some(Err(e)) => return Err(Error::DiscordGateway(e.to_string())),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map_or(1000, |f| u16::from(f.code));
                let reason = frame.as_ref().map(|f| f.reason.to_string()).unwrap_or_default();
                if fatal(code) {
                    tracing::error!(code, %reason, "discord gateway closed for good; check the bot token and intents");
                    return Ok(End::Stop);
                }
                if not_resumable(code) {
                    *session = Session::default();
                }
                return Err(Error::DiscordGateway(format!("closed by discord: {code} {reason}")));
            }
            Some(Ok(_)) => continue,
        };
        let event: Value = match serde_json::from_str(text.as_str()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "gateway message is not JSON; ignored");
                continue;
            }
        };
        if let Some(s) = event.get("s").and_then(Value::as_u64) {
            session.seq = Some(s);
        }
        match event.get("op").and_then(Value::as_u64) {
            Some(OP_DISPATCH) => dispatch(api, interactions, session, &event),
            Some(OP_HEARTBEAT) => {
                ws.send(send(json!({ "op": OP_HEARTBEAT, "d": session.seq })))
                    .await
                    .map_err(|e| Error::DiscordGateway(format!("heartbeat: {e}")))?;
            }
            Some(OP_HEARTBEAT_ACK) => acked = true,
            Some(OP_RECONNECT) => {
                tracing::info!("discord asked to reconnect");
                close_for_resume(&mut ws).await;
                return Ok(End::Reconnect);
            }
            Some(OP_INVALID_SESSION) => {
                if event.get("d").and_then(Value::as_bool) != Some(true) {
                    *session = Session::default();
                }
                tracing::info!("discord gateway: invalid session; reconnecting");
                close_for_resume(&mut ws).await;
                // Discord asks for a short random wait before identifying again.
                tokio::time::sleep(Duration::from_secs(1)).await;
                return Ok(End::Reconnect);
            }
            _ => {}
        }
    }
}

async fn next_json<S>(ws: &mut S) -> Result<Value>
where
    S: futures_util::Stream<Item = std::result::Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).map_err(|e| Error::DiscordGateway(format!("not JSON: {e}")));
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(Error::DiscordGateway(format!("closed before HELLO: {frame:?}")));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(Error::DiscordGateway(e.to_string())),
            None => return Err(Error::DiscordGateway("connection closed before HELLO".into())),
        }
    }
}

/// Handle one dispatch: remember READY's session, answer interactions in the background.
fn dispatch(api: &DiscordApi, interactions: &Arc<Interactions>, session: &mut Session, event: &Value) {
    let data = event.get("d").cloned().unwrap_or(Value::Null);
    match event.get("t").and_then(Value::as_str).unwrap_or_default() {
        "READY" => {
            session.id = data.get("session_id").and_then(Value::as_str).map(str::to_owned);
            session.resume_url = data.get("resume_gateway_url").and_then(Value::as_str).map(str::to_owned);
            tracing::info!("discord gateway ready");
        }
        "RESUMED" => tracing::info!("discord gateway session resumed"),
        "INTERACTION_CREATE" => {
            let (Some(id), Some(token)) =
                (data.get("id").and_then(Value::as_str), data.get("token").and_then(Value::as_str))
            else {
                tracing::warn!("INTERACTION_CREATE without id or token; ignored");
                return;
            };
            let path = format!("/interactions/{id}/{token}/callback");
            let (api, interactions) = (api.clone(), interactions.clone());
            let kind = data.get("type").and_then(Value::as_u64).unwrap_or(0);
            let span = tracing::info_span!("discord_interaction", kind, transport = "gateway");
            tokio::spawn(
                async move {
                    let answer = interactions.handle(&data).await;
                    if let Err(e) = api.call_as(Method::POST, &path, Some(&answer), Auth::None).await {
                        tracing::warn!(error = %e, "could not answer the discord interaction");
                    }
                }
                .instrument(span),
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_urls_get_version_and_encoding() {
        assert_eq!(with_query("wss://gateway.discord.gg"), "wss://gateway.discord.gg?v=10&encoding=json");
        assert_eq!(with_query("wss://gateway.discord.gg/"), "wss://gateway.discord.gg?v=10&encoding=json");
        assert_eq!(with_query("ws://127.0.0.1:1/gateway"), "ws://127.0.0.1:1/gateway?v=10&encoding=json");
    }

    #[test]
    fn auth_close_codes_stop_and_others_reconnect() {
        assert!(fatal(4004) && fatal(4014));
        assert!(!fatal(4000) && !fatal(1001));
        assert!(not_resumable(4009) && !not_resumable(4000));
    }
}
