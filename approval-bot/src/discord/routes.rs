//! The signed endpoint Discord calls in `http` mode (the application's "Interactions Endpoint URL"), as an axum
//! router to mount at `/discord`: `POST /discord/interactions`.
//!
//! Every request's Ed25519 signature is checked on the raw body before anything is parsed; a failure answers
//! `401` (Discord itself probes the endpoint with bad signatures and expects exactly that), is logged and is
//! recorded in the gateway's audit session.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gateway_core::record::{AUDIT_SESSION, EventKind};
use serde_json::{Value, json};
use tracing::Instrument;

use super::interactions::Interactions;
use super::signature::{self, PublicKey, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER};

/// Largest body we accept from Discord (interactions are a few KiB).
const MAX_BODY_BYTES: usize = 256 * 1024;

struct RouteState {
    interactions: Arc<Interactions>,
    public_key: Option<PublicKey>,
}

/// The router (paths relative to where it is mounted); it carries its own state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(
    interactions: Arc<Interactions>,
    public_key: Option<PublicKey>,
) -> Router<S> {
    let state = Arc::new(RouteState { interactions, public_key });
    Router::new()
        .route("/interactions", post(interactions_endpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl RouteState {
    /// Verify Discord's signature; on failure, audit and build the 401.
    async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
        let checked = match &self.public_key {
            None => Err(SignatureError::NoKey),
            Some(key) => signature::verify(
                key,
                header(headers, TIMESTAMP_HEADER),
                header(headers, SIGNATURE_HEADER),
                body,
                signature::now_s(),
            ),
        };
        let Err(e) = checked else { return Ok(()) };
        let reason = e.to_string();
        tracing::warn!(%reason, "discord request refused: bad signature");
        let recorded = self
            .interactions
            .gateway()
            .recorder()
            .append(
                AUDIT_SESSION,
                None,
                EventKind::AuthFailed,
                &json!({
                    "reason": format!("discord signature: {reason}"),
                    "context": "discord /discord/interactions",
                }),
            )
            .await;
        if let Err(e) = recorded {
            tracing::error!(error = %e, "could not record refused discord request in the audit session");
        }
        Err((StatusCode::UNAUTHORIZED, "invalid request signature").into_response())
    }
}

async fn interactions_endpoint(State(state): State<Arc<RouteState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = state.verify(&headers, &body).await {
        return refused;
    }
    let interaction: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")).into_response(),
    };
    let kind = interaction.get("type").and_then(Value::as_u64).unwrap_or(0);
    let span = tracing::info_span!("discord_interaction", kind, transport = "http");
    let answer = state.interactions.handle(&interaction).instrument(span).await;
    axum::Json(answer).into_response()
}
