//! The signed webhook endpoints Slack calls in `http` mode, as an axum router to mount at `/slack`:
//! `POST /slack/interactions` (buttons, modals), `POST /slack/commands` (`/airlock …` slash commands) and
//! `POST /slack/events` (URL verification).
//!
//! Every request's signature is checked on the raw body before anything is parsed; a failure answers `401`,
//! is logged and is recorded in the gateway's audit session.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gateway_core::record::{AUDIT_SESSION, EventKind};
use gateway_core::vault::Secret;
use serde_json::{Value, json};

use super::interactions::Interactions;
use super::signature::{self, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};

/// Largest body we accept from Slack (interaction payloads are a few KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;

struct RouteState {
    interactions: Arc<Interactions>,
    signing_secret: Option<Secret>,
    api: super::SlackApi,
}

/// The router (paths relative to where it is mounted). Generic over the outer app's state so it can be
/// nested into any router; it carries its own state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    interactions: Arc<Interactions>,
    signing_secret: Option<Secret>,
    api: super::SlackApi,
) -> Router<S> {
    let state = Arc::new(RouteState { interactions, signing_secret, api });
    Router::new()
        .route("/interactions", post(interactions_endpoint))
        .route("/commands", post(commands_endpoint))
        .route("/events", post(events_endpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl RouteState {
    /// Verify Slack's signature; on failure, audit and build the 401.
    async fn verify(&self, endpoint: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
        let checked = match &self.signing_secret {
            None => Err(SignatureError::NoSecret),
            Some(secret) => signature::verify(
                secret.expose(),
                header(headers, TIMESTAMP_HEADER),
                header(headers, SIGNATURE_HEADER),
                body,
                signature::now_s(),
            ),
        };
        let Err(e) = checked else { return Ok(()) };
        let reason = e.to_string();
        tracing::warn!(endpoint, %reason, "slack request refused: bad signature");
        let recorded = self
            .interactions
            .gateway()
            .recorder()
            .append(
                AUDIT_SESSION,
                None,
                EventKind::AuthFailed,
                &json!({ "reason": format!("slack signature: {reason}"), "context": format!("slack {endpoint}") }),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record refused slack request in the audit session");
        }
        Err((StatusCode::UNAUTHORIZED, "invalid slack signature").into_response())
    }
}

async fn interactions_endpoint(State(state): State<Arc<RouteState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = state.verify("/slack/interactions", &headers, &body).await {
        return refused;
    }
    // Interactions arrive form-encoded: `payload=<url-encoded JSON>`.
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad form body: {e}")).into_response(),
    };
    let Some((_, payload)) = form.into_iter().find(|(k, _)| k == "payload") else {
        return (StatusCode::BAD_REQUEST, "no payload field").into_response();
    };
    let payload: Value = match serde_json::from_str(&payload) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("payload is not JSON: {e}")).into_response(),
    };
    // Ack at once (Slack gives us 3 s); the vote runs in a spawned task. An empty 200 also closes a modal.
    match state.interactions.dispatch(payload) {
        Ok(None) => StatusCode::OK.into_response(),
        Ok(Some(answer)) => axum::Json(answer).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn events_endpoint(State(state): State<Arc<RouteState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = state.verify("/slack/events", &headers, &body).await {
        return refused;
    }
    let event: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")).into_response(),
    };
    if event.get("type").and_then(Value::as_str) == Some("url_verification") {
        let challenge = event.get("challenge").cloned().unwrap_or(Value::Null);
        return axum::Json(json!({ "challenge": challenge })).into_response();
    }
    // We subscribe to no events yet; acknowledge so Slack does not retry.
    StatusCode::OK.into_response()
}

/// `/airlock …` slash commands (Slack's "Slash Commands" Request URL): a signed form post; the answer is the
/// JSON message Slack shows (ephemeral unless it announces a change).
async fn commands_endpoint(State(state): State<Arc<RouteState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = state.verify("/slack/commands", &headers, &body).await {
        return refused;
    }
    let cmd: crate::commands::slack::SlashCommand = match serde_urlencoded::from_bytes(&body) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad slash command body: {e}")).into_response(),
    };
    let gateway = state.interactions.gateway().clone();
    axum::Json(crate::commands::slack::answer_http(state.api.clone(), gateway, cmd).await).into_response()
}
