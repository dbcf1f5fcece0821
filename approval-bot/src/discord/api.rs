//! A small Discord REST client: JSON requests to `{api_base_url}{path}` with `Authorization: Bot <token>`,
//! retried with backoff on network errors and `5xx`, honouring `429` + `retry_after` (seconds, a float, in the
//! JSON body; the `Retry-After` header as a fallback). Any other error status fails at once with Discord's own
//! message and code (`Unknown Channel (10003)`).
//!
//! Same transport as the Slack client (hyper on rustls with the ring provider), same [`RetryPolicy`].

use std::sync::Arc;
use std::time::Duration;

use gateway_core::vault::Secret;
use hyper::Method;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{Error, Result};
pub use crate::slack::api::RetryPolicy;
use crate::slack::api::tls_config;

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// Discord REST client (cheap to clone).
#[derive(Clone)]
pub struct DiscordApi {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    http: HttpClient,
    base_url: String,
    bot_token: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for DiscordApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("DiscordApi").field("base_url", &self.inner.base_url).finish_non_exhaustive()
    }
}

/// Whether a request carries the bot token. Interaction callbacks and webhook edits are authorised by the
/// interaction token in their path; sending the bot token there is unnecessary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Bot,
    None,
}

/// Discord's error body: `{"message": "Unknown Channel", "code": 10003}`.
fn discord_message(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    match (v.get("message").and_then(Value::as_str), v.get("code").and_then(Value::as_i64)) {
        (Some(m), Some(c)) => format!("{m} ({c})"),
        (Some(m), None) => m.to_owned(),
        _ => String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
    }
}

/// How long a `429` asks us to wait: the body's `retry_after` (seconds, float), else the `Retry-After` header.
fn retry_after(headers: &hyper::HeaderMap, bytes: &[u8]) -> Option<Duration> {
    let from_body = serde_json::from_slice::<Value>(bytes).ok().and_then(|v| v.get("retry_after")?.as_f64());
    let from_header = || headers.get(hyper::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok();
    from_body.or_else(from_header).filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

// === impl DiscordApi ===

impl DiscordApi {
    /// A client for `base_url` (e.g. `https://discord.com/api/v10`).
    pub fn new(base_url: &str, bot_token: Secret, retry: RetryPolicy) -> Result<Self> {
        // http:// is allowed so tests can reach a local fake; Discord itself is https.
        let tls = tls_config().map_err(|e| Error::DiscordConfig(e.to_string()))?;
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self {
            inner: Arc::new(ApiInner { http, base_url: base_url.trim_end_matches('/').to_owned(), bot_token, retry }),
        })
    }

    /// The REST base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The bot token (the Gateway's IDENTIFY carries it).
    pub(crate) fn bot_token(&self) -> &Secret {
        &self.inner.bot_token
    }

    /// `method path` with the bot token; returns Discord's JSON answer (`Null` for `204 No Content`).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        self.call_as(method, path, body, Auth::Bot).await
    }

    /// [`DiscordApi::call`], choosing whether the bot token is sent.
    pub async fn call_as(&self, method: Method, path: &str, body: Option<&Value>, auth: Auth) -> Result<Value> {
        // The route without ids or tokens, for logs and errors (interaction tokens are secrets).
        let route = route_of(path);
        let span = tracing::debug_span!("discord_api", %method, route = %route);
        self.call_inner(method, path, &route, body, auth).instrument(span).await
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        route: &str,
        body: Option<&Value>,
        auth: Auth,
    ) -> Result<Value> {
        let retry = &self.inner.retry;
        let url = format!("{}{path}", self.inner.base_url);
        let route_name = || format!("{method} {route}");
        let mut backoff = retry.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= retry.attempts;
            let (status, headers, bytes) = match self.send(&method, &url, body, auth).await {
                Ok(r) => r,
                Err(message) if !last => {
                    tracing::warn!(attempt, error = %message, "discord request failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(message) => return Err(Error::DiscordTransport { route: route_name(), message }),
            };
            if status == hyper::StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&headers, &bytes).unwrap_or(backoff);
                if last || wait > retry.max_retry_after {
                    return Err(Error::DiscordRateLimited {
                        route: route_name(),
                        retry_after_ms: wait.as_millis() as u64,
                    });
                }
                tracing::warn!(attempt, retry_after_ms = wait.as_millis() as u64, "discord rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() {
                if last {
                    return Err(Error::DiscordStatus {
                        route: route_name(),
                        status: status.as_u16(),
                        message: discord_message(&bytes),
                    });
                }
                tracing::warn!(attempt, status = status.as_u16(), "discord server error; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            if !status.is_success() {
                return Err(Error::DiscordStatus {
                    route: route_name(),
                    status: status.as_u16(),
                    message: discord_message(&bytes),
                });
            }
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes)
                .map_err(|e| Error::DiscordPayload { context: route_name(), message: e.to_string() });
        }
    }

    /// One request, under the request timeout; returns status, headers and the whole body.
    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        auth: Auth,
    ) -> std::result::Result<(hyper::StatusCode, hyper::HeaderMap, bytes::Bytes), String> {
        use http_body_util::BodyExt;
        let payload = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let mut request = hyper::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(hyper::header::USER_AGENT, concat!("DiscordBot (airlock, ", env!("CARGO_PKG_VERSION"), ")"));
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if auth == Auth::Bot {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bot {}", self.inner.bot_token.expose()));
        }
        let request =
            request.body(http_body_util::Full::new(bytes::Bytes::from(payload))).map_err(|e| e.to_string())?;
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

/// `/webhooks/123/aW50ZXJhY3Rpb24…/messages/@original` → `/webhooks/{id}/{token}/messages/@original`: ids and
/// tokens never reach logs or error messages.
fn route_of(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // In `/webhooks/{application}/{token}` and `/interactions/{id}/{token}` the third segment is a token.
    let tokened = matches!(segs.first(), Some(&"webhooks") | Some(&"interactions"));
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        out.push('/');
        if tokened && i == 2 {
            out.push_str("{token}");
        } else if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("{id}");
        } else {
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_in_logs_carry_no_ids_or_tokens() {
        assert_eq!(route_of("/channels/123/messages"), "/channels/{id}/messages");
        assert_eq!(route_of("/channels/123/messages/456"), "/channels/{id}/messages/{id}");
        assert_eq!(
            route_of("/webhooks/99/aW50ZXJhY3Rpb24/messages/@original"),
            "/webhooks/{id}/{token}/messages/@original"
        );
        assert_eq!(route_of("/interactions/77/secret-token/callback"), "/interactions/{id}/{token}/callback");
        assert_eq!(route_of("/applications/99/commands"), "/applications/{id}/commands");
    }

    #[test]
    fn retry_after_comes_from_the_body_as_float_seconds_then_the_header() {
        let headers = hyper::HeaderMap::new();
        let body = br#"{"message":"You are being rate limited.","retry_after":0.25,"global":false}"#;
        assert_eq!(retry_after(&headers, body), Some(Duration::from_millis(250)));
        let mut headers = hyper::HeaderMap::new();
        headers.insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, b"not json"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&hyper::HeaderMap::new(), b"{}"), None);
    }

    #[test]
    fn discord_errors_keep_their_message_and_code() {
        assert_eq!(discord_message(br#"{"message":"Unknown Channel","code":10003}"#), "Unknown Channel (10003)");
    }
}
