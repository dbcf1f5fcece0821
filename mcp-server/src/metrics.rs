//! Prometheus `/metrics` ([`gateway_core::metrics`]): on the main listener behind a bearer token
//! (`[metrics] token`), and/or on a separate listen address without one (`[metrics] listen`, meant for an
//! internal interface the scraper reaches). Without `[metrics]` nothing is served.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gateway_core::pipeline::Gateway;
use gateway_core::record::{AUDIT_SESSION, EventKind};
use gateway_core::vault::Secret;
use serde_json::json;
use subtle::ConstantTimeEq as _;
use tokio_util::sync::CancellationToken;

/// The exposition format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct MetricsState {
    gateway: Arc<Gateway>,
    /// `None` on the separate listener (its address is the access control).
    token: Option<Arc<Secret>>,
}

/// `GET /metrics` for the main listener when `[metrics] token` is set; otherwise no route (404).
pub fn routes<S: Clone + Send + Sync + 'static>(gateway: Arc<Gateway>) -> anyhow::Result<Router<S>> {
    let Some(token) = gateway.config().metrics.as_ref().and_then(|m| m.token.as_ref()) else {
        return Ok(Router::new());
    };
    let token = token.resolve("metrics.token").context("[metrics] token")?;
    let state = MetricsState { gateway, token: Some(Arc::new(token)) };
    Ok(Router::new().route("/metrics", get(metrics)).with_state(state))
}

/// Serve `GET /metrics` (only) on `[metrics] listen`, until `stop` fires. Fails when the address cannot be bound.
pub async fn spawn_listener(
    gateway: Arc<Gateway>,
    stop: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = gateway.config().metrics.as_ref().and_then(|m| m.listen.clone()) else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} ([metrics] listen)"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics on /metrics");
    let app = Router::new().route("/metrics", get(metrics)).with_state(MetricsState { gateway, token: None });
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics listener failed");
        }
    })))
}

async fn metrics(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            let reason = if presented.is_empty() { "no bearer token" } else { "wrong bearer token" };
            tracing::warn!(reason, "metrics scrape refused");
            let payload = json!({ "reason": reason, "context": "metrics" });
            if let Err(e) = state.gateway.recorder().append(AUDIT_SESSION, None, EventKind::AuthFailed, &payload).await
            {
                tracing::error!(error = %e, "could not record a refused metrics scrape");
            }
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"airlock-metrics\""))],
                "metrics need the [metrics] token: Authorization: Bearer <token>\n",
            )
                .into_response();
        }
    }
    match state.gateway.metrics_text().await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: store unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable; metrics not rendered\n").into_response()
        }
    }
}
