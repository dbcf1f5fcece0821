//! A small Slack Web API client: JSON POSTs to `{api_base_url}/{method}` with a bearer token, retried with
//! backoff on network errors and `5xx`, honouring `429` + `Retry-After`; `{"ok": false}` answers become
//! [`Error::Api`] carrying Slack's error code.
//!
//! Why not slack-morphism's client: its hyper connector is HTTPS-only (tests talk to a local fake over HTTP)
//! and brings a second WebSocket stack; the five methods we call do not need it. Why hyper and not reqwest:
//! reqwest's provider-less rustls feature would unify into every other reqwest user of the workspace.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::vault::Secret;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::error::{Error, Result};

/// How hard to try before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time.
    pub backoff: Duration,
    /// Longest `Retry-After` we wait for; a longer one fails the call (a held agent call should not hang).
    pub max_retry_after: Duration,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Slack Web API client (cheap to clone).
#[derive(Clone)]
pub struct SlackApi {
    inner: Arc<ApiInner>,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

struct ApiInner {
    http: HttpClient,
    base_url: String,
    bot_token: Secret,
    app_token: Option<Secret>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens stay out of debug output.
        f.debug_struct("SlackApi").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

/// The TLS configuration for Slack: rustls with the ring provider and the platform's trust store.
pub fn tls_config() -> Result<rustls::ClientConfig> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_platform_verifier()
        .map_err(|e| Error::Config(format!("TLS trust store: {e}")))
        .map(|b| b.with_no_client_auth())
}

// === impl SlackApi ===

impl SlackApi {
    /// A client for `base_url` (e.g. `https://slack.com/api`).
    pub fn new(base_url: &str, bot_token: Secret, app_token: Option<Secret>, retry: RetryPolicy) -> Result<Self> {
        // http:// is allowed so tests (and a local Slack proxy) can be reached; Slack itself is https.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .build();
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(ApiInner {
                http,
                base_url: base_url.trim_end_matches('/').to_owned(),
                bot_token,
                app_token,
                retry,
            }),
        })
    }

    /// The Web API base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Call `method` with the bot token; returns Slack's whole answer when `ok` is true.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value> {
        self.call_with(method, &self.inner.bot_token, body).await
    }

    /// `apps.connections.open` with the app-level token: the Socket Mode WebSocket URL.
    pub async fn open_socket(&self) -> Result<String> {
        let token = self
            .inner
            .app_token
            .as_ref()
            .ok_or_else(|| Error::Config("slack.app_token is required for socket mode".into()))?;
        let answer = self.call_with("apps.connections.open", token, &json!({})).await?;
        answer.get("url").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| Error::Payload {
            context: "apps.connections.open".into(),
            message: "no url in answer".into(),
        })
    }

    async fn call_with(&self, method: &str, token: &Secret, body: &Value) -> Result<Value> {
        let span = tracing::debug_span!("slack_api", method);
        self.call_inner(method, token, body).instrument(span).await
    }

    async fn call_inner(&self, method: &str, token: &Secret, body: &Value) -> Result<Value> {
        let retry = &self.inner.retry;
        let url = format!("{}/{method}", self.inner.base_url);
        let mut backoff = retry.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= retry.attempts;
            let response = match self.send(&url, token, body).await {
                Ok(r) => r,
                Err(message) if !last => {
                    tracing::warn!(attempt, error = %message, "slack request failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(message) => return Err(Error::Transport { method: method.into(), message }),
            };
            let (status, headers, bytes) = response;
            if status == hyper::StatusCode::TOO_MANY_REQUESTS {
                // Slack says how long to wait; without a header, fall back to our backoff.
                let wait = headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(backoff, Duration::from_secs);
                if last || wait > retry.max_retry_after {
                    return Err(Error::RateLimited { method: method.into(), retry_after_s: wait.as_secs() });
                }
                tracing::warn!(attempt, retry_after_ms = wait.as_millis() as u64, "slack rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                if last {
                    return Err(Error::Status { method: method.into(), status: status.as_u16() });
                }
                tracing::warn!(attempt, status = status.as_u16(), "slack server error; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Status { method: method.into(), status: status.as_u16() });
            }
            let answer: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Payload { context: method.into(), message: e.to_string() })?;
            if answer.get("ok").and_then(Value::as_bool) != Some(true) {
                let error = answer.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_owned();
                return Err(Error::Api { method: method.into(), error });
            }
            if let Some(w) = answer.get("warning").and_then(Value::as_str) {
                tracing::debug!(warning = w, "slack warning");
            }
            return Ok(answer);
        }
    }

    /// One POST, under the request timeout; returns status, headers and the whole body.
    async fn send(
        &self,
        url: &str,
        token: &Secret,
        body: &Value,
    ) -> std::result::Result<(hyper::StatusCode, hyper::HeaderMap, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        let payload = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let request = hyper::Request::post(url)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(hyper::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(hyper::header::USER_AGENT, concat!("airlock-approval-bot/", env!("CARGO_PKG_VERSION")))
            .body(http_body_util::Full::new(bytes::Bytes::from(payload)))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.inner.http.request(request).await.map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((parts.status, parts.headers, bytes))
        };
        tokio::time::timeout(self.inner.retry.request_timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.inner.retry.request_timeout))?
    }
}
