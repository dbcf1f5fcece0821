//! Socket Mode: Airlock dials Slack instead of Slack calling Airlock (no public URL needed).
//!
//! `apps.connections.open` (app-level token) gives a WebSocket URL; Slack then sends envelopes: `hello`,
//! `interactive` (the same payloads as the HTTP endpoint), `events_api`, `slash_commands`, and `disconnect`
//! when it wants us to reconnect. Every envelope with an `envelope_id` is acked first (Slack redelivers
//! unacked ones), then interactive payloads go to the shared handler.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::api::{SlackApi, tls_config};
use super::interactions::Interactions;
use crate::error::{Error, Result};

/// A running Socket Mode connection. Stops when its cancellation token is cancelled or when dropped.
#[must_use = "dropping the task stops Socket Mode"]
#[derive(Debug)]
pub struct SocketModeTask {
    handle: Option<tokio::task::JoinHandle<()>>,
    cancel: CancellationToken,
}

impl SocketModeTask {
    /// Ask the task to stop (it closes the WebSocket).
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Wait until the task has stopped (after [`SocketModeTask::stop`] or the parent token's cancellation).
    pub async fn stopped(mut self) {
        if let Some(h) = self.handle.take()
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "socket mode task failed");
        }
    }
}

impl Drop for SocketModeTask {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Start the Socket Mode loop; it reconnects with backoff until `cancel` fires.
pub(crate) fn spawn(api: SlackApi, interactions: Arc<Interactions>, cancel: CancellationToken) -> SocketModeTask {
    let cancel = cancel.child_token();
    let token = cancel.clone();
    let handle = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(500);
        loop {
            let session = tokio::select! {
                _ = token.cancelled() => return,
                r = connect_and_serve(&api, &interactions, &token) => r,
            };
            match session {
                // Slack asked us to reconnect (or closed cleanly): do it now.
                Ok(()) => backoff = Duration::from_millis(500),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "slack socket mode dropped");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
    SocketModeTask { handle: Some(handle), cancel }
}

/// One WebSocket session: returns `Ok` when Slack asks us to reconnect, `Err` on failure.
async fn connect_and_serve(api: &SlackApi, interactions: &Arc<Interactions>, cancel: &CancellationToken) -> Result<()> {
    let url = api.open_socket().await?;
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(tls_config()?));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, Some(connector))
        .await
        .map_err(|e| Error::Socket(format!("connect: {e}")))?;
    tracing::info!("slack socket mode connected");
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            m = ws.next() => m,
        };
        let text = match msg {
            None => return Err(Error::Socket("connection closed".into())),
            Some(Err(e)) => return Err(Error::Socket(e.to_string())),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(frame))) => {
                return Err(Error::Socket(format!("closed by slack: {frame:?}")));
            }
            // tungstenite answers pings itself; binary frames are not part of the protocol.
            Some(Ok(_)) => continue,
        };
        let envelope: Value = match serde_json::from_str(text.as_str()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "socket mode message is not JSON; ignored");
                continue;
            }
        };
        let kind = envelope.get("type").and_then(Value::as_str).unwrap_or("");
        // Interactive payloads are dispatched before the ack so an immediate answer (a modal validation error)
        // can ride on it; dispatching only parses and spawns, so the ack still goes out at once.
        let answer = match kind {
            "interactive" => {
                let payload = envelope.get("payload").cloned().unwrap_or(Value::Null);
                interactions.dispatch(payload).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "socket mode interaction ignored");
                    None
                })
            }
            _ => None,
        };
        if let Some(id) = envelope.get("envelope_id").and_then(Value::as_str) {
            let ack = match answer {
                Some(payload) => json!({ "envelope_id": id, "payload": payload }),
                None => json!({ "envelope_id": id }),
            };
            ws.send(Message::text(ack.to_string())).await.map_err(|e| Error::Socket(format!("ack: {e}")))?;
        }
        match kind {
            "hello" => tracing::debug!("slack socket mode hello"),
            "disconnect" => {
                tracing::info!(reason = ?envelope.get("reason"), "slack asked to reconnect");
                let _ = ws.close(None).await;
                return Ok(());
            }
            "interactive" => {}
            // Acked above; the command runs in the background and replies through the Web API.
            "slash_commands" => crate::commands::slack::spawn_socket(
                api.clone(),
                interactions.gateway().clone(),
                envelope.get("payload").unwrap_or(&Value::Null),
            ),
            other => tracing::debug!(kind = other, "socket mode envelope acked and ignored"),
        }
    }
}
