//! `airlock serve`: one axum app. MCP (streamable HTTP) is mounted on `/mcp` behind bearer authentication;
//! `/healthz` is open; approval webhooks (`/slack/…`) are signed by the chat platform. The web UI ([`crate::web`])
//! mounts beside them with its own sign-in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use gateway_core::config::ServerConfig;
use gateway_core::pipeline::Gateway;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::approvals::Approvals;
use crate::shutdown;
use crate::tools::{ToolsFactory, Transport};

/// The header a trusted agent names the human it acts for with (see `[identity] on_behalf_of_groups`).
const ON_BEHALF_OF_HEADER: &str = "x-airlock-on-behalf-of";

/// How long shutdown waits for in-flight tool calls before closing connections anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// State shared by the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    /// Set once shutdown begins: new MCP requests get 503 while in-flight calls finish.
    draining: Arc<AtomicBool>,
}

/// Build the whole HTTP app. `sessions` ends every MCP session (and its SSE streams) when cancelled.
pub fn app(
    gateway: Arc<Gateway>,
    approvals: &Approvals,
    calls: TaskTracker,
    sessions: CancellationToken,
) -> anyhow::Result<(Router, AppState)> {
    let state = AppState { gateway, draining: Arc::new(AtomicBool::new(false)) };
    let server = &state.gateway.config().server;
    let router = Router::new()
        .merge(mcp_routes(state.clone(), calls, sessions))
        .merge(crate::metrics::routes(state.gateway.clone())?)
        .merge(approvals.routes(state.gateway.clone()))
        .merge(crate::web::routes(state.gateway.clone(), allowed_origins(server))?)
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(server.max_body_bytes))
        .with_state(state.clone());
    Ok((router, state))
}

/// `/mcp`: rmcp's streamable HTTP service, with Host/Origin checks from the configuration, behind
/// [`require_bearer`].
fn mcp_routes(state: AppState, calls: TaskTracker, sessions: CancellationToken) -> Router<AppState> {
    let server = &state.gateway.config().server;
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts(server))
        .with_allowed_origins(allowed_origins(server))
        .enforce_origin_validation()
        .with_max_request_body_bytes(server.max_body_bytes)
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_cancellation_token(sessions);
    if server.allowed_hosts.iter().any(|h| h == "*") {
        config = config.disable_allowed_hosts();
    }
    let factory = ToolsFactory::new(state.gateway.clone(), calls);
    let service = StreamableHttpService::new(
        move || Ok(factory.session(Transport::Http)),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .route_service("/mcp", service)
        .route_layer(middleware::from_fn(session_end_no_content))
        .route_layer(middleware::from_fn_with_state(state, require_bearer))
}

/// rmcp answers a session's closing `DELETE /mcp` with 202; the Python MCP SDK 1.x logs anything but 200, 204 or
/// 405 as a failed termination. 204 says the same thing (closed, nothing to return) to every client.
async fn session_end_no_content(request: Request, next: Next) -> Response {
    let delete = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
        *response.body_mut() = axum::body::Body::empty();
    }
    response
}

/// Every MCP request (POST, GET, DELETE) must carry `Authorization: Bearer <token>`. A refusal is a 401 with
/// `WWW-Authenticate: Bearer` and an audit event; nothing reaches the tools.
async fn require_bearer(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "airlock is shutting down\n")
            .into_response();
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_owned());
    // A trusted agent may name the human it acts for; the gateway refuses it from anyone else.
    let on_behalf_of = match req.headers().get(ON_BEHALF_OF_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.trim().to_owned()),
        // Not visible ASCII: refused like any other bad assertion (an empty name fails the gateway's check).
        Some(Err(_)) => Some(String::new()),
    };
    let context = format!("http {peer}");
    match state.gateway.authenticate_on_behalf(presented.as_deref(), on_behalf_of.as_deref(), &context).await {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(gateway_core::Error::Auth(_)) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"airlock\""))],
            "invalid token: a valid Airlock API token or OIDC JWT is required: Authorization: Bearer <token>\n",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "authentication unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "authentication is unavailable (store down); nothing was executed\n")
                .into_response()
        }
    }
}

/// 200 when the store answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.gateway.store().ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "store": e.to_string() })))
            .into_response(),
    }
}

/// Serve until SIGINT/SIGTERM; then refuse new MCP requests, let in-flight calls finish (and be recorded),
/// close the MCP sessions and stop.
pub async fn serve(gateway: Arc<Gateway>, approvals: &Approvals) -> anyhow::Result<()> {
    let listen = gateway.config().server.listen.clone();
    let calls = TaskTracker::new();
    let sessions = CancellationToken::new();
    let (router, state) = app(gateway.clone(), approvals, calls.clone(), sessions.child_token())?;
    let _metrics = crate::metrics::spawn_listener(gateway.clone(), sessions.child_token()).await?;
    let audit_sinks = gateway_core::audit::sinks(&gateway.config().audit, false)?;
    let _audit = gateway_core::audit::spawn_delivery(gateway.store().clone(), audit_sinks, sessions.child_token());
    let _background = approvals.spawn_background(gateway.clone(), sessions.child_token());
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, public_url = %gateway.config().server.public_url, "airlock listening: MCP on /mcp");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            let signal = shutdown::signal().await;
            tracing::info!(signal, in_flight = calls.len(), "shutting down: finishing in-flight calls");
            state.draining.store(true, Ordering::SeqCst);
            calls.close();
            if tokio::time::timeout(DRAIN_TIMEOUT, calls.wait()).await.is_err() {
                tracing::warn!(in_flight = calls.len(), "in-flight calls did not finish in time");
            }
            // Give the last responses a moment to leave before their streams are closed.
            tokio::time::sleep(Duration::from_millis(200)).await;
            sessions.cancel();
        })
        .await?;
    gateway.store().close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Loopback names plus the public URL's host, unless the configuration lists hosts itself.
fn allowed_hosts(server: &ServerConfig) -> Vec<String> {
    if !server.allowed_hosts.is_empty() {
        return server.allowed_hosts.clone();
    }
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    if let Some(host) = url_host(&server.public_url)
        && !hosts.contains(&host)
    {
        hosts.push(host);
    }
    hosts
}

/// The public URL's origin, unless the configuration lists origins itself. Requests without an Origin
/// header (CLI and SDK clients) always pass; browsers always send one.
fn allowed_origins(server: &ServerConfig) -> Vec<String> {
    if !server.allowed_origins.is_empty() {
        return server.allowed_origins.clone();
    }
    url_origin(&server.public_url).into_iter().collect()
}

/// `https://airlock.example.com:8443/x` → `https://airlock.example.com:8443`.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// `https://airlock.example.com:8443/x` → `airlock.example.com`; `http://[::1]:80` → `::1`.
fn url_host(url: &str) -> Option<String> {
    let origin = url_origin(url)?;
    let authority = origin.split_once("://")?.1;
    let host = if let Some(rest) = authority.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Some(host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_host_and_origin_are_derived() {
        assert_eq!(url_origin("https://a.example.com:8443/base").as_deref(), Some("https://a.example.com:8443"));
        assert_eq!(url_host("https://a.example.com:8443/base").as_deref(), Some("a.example.com"));
        assert_eq!(url_host("http://[::1]:8080").as_deref(), Some("::1"));
        assert_eq!(url_host("not a url"), None);
    }

    #[test]
    fn default_hosts_are_loopback_plus_public_host_and_config_wins() {
        let mut server = ServerConfig { public_url: "https://airlock.example.com".into(), ..Default::default() };
        assert_eq!(allowed_hosts(&server), ["localhost", "127.0.0.1", "::1", "airlock.example.com"]);
        assert_eq!(allowed_origins(&server), ["https://airlock.example.com"]);
        server.allowed_hosts = vec!["gw.internal".into()];
        assert_eq!(allowed_hosts(&server), ["gw.internal"]);
    }
}
