//! Web sign-in at an OpenID Connect provider (`[web.oidc]`): the authorization code flow with PKCE (RFC 7636)
//! and a nonce.
//!
//! `GET /login/oidc` stores the flow (state hashed, PKCE verifier, nonce, where to go next) in the store, so any
//! replica can finish it, and sends the browser to the provider. `GET /login/oidc/callback` spends the flow once,
//! trades the code for tokens at the token endpoint (https only, rustls on ring), verifies the ID token with the
//! provider's keys ([`Verifier`]: signature, `iss`, `aud` = our client id, `exp`), checks its nonce, and maps its
//! subject and groups claims to a web session. Every refusal is an `auth_failed` audit event naming its cause; no
//! code, token, verifier or secret is ever logged or recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use gateway_core::config::Config;
use gateway_core::oidc::{OidcConfig, Verifier, WebOidcConfig, claim, tls_config, valid_on_behalf_of};
use gateway_core::record::{AUDIT_SESSION, EventKind};
use gateway_core::store::now_ms;
use gateway_core::vault::Secret;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::Mutex;

use super::auth::{Credential, Refusal, random_token, sha256_hex};
use super::pages::safe_next;
use super::{Web, WebError, WebResult, cookie};

/// A sign-in must come back from the provider within this long.
const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// The provider's endpoints are looked up again after this long.
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(3600);
/// Time limit of one request to the provider.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or token response accepted.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Binds a sign-in to the browser that started it: it holds the flow's `state`, which the callback must carry.
/// Without it, anyone could send a victim their own callback link and sign the victim in as themselves (login
/// CSRF, RFC 6749 §10.12). Path-scoped to the callback, HttpOnly, and `SameSite=Lax`, which browsers send on the
/// provider's top-level redirect back.
const FLOW_COOKIE: &str = "airlock_oidc_flow";
const FLOW_COOKIE_PATH: &str = "/login/oidc";

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The provider's endpoints, from its discovery document.
#[derive(Clone)]
struct Endpoints {
    authorization: String,
    token: String,
    loaded_at: Instant,
}

/// The configured provider: settings, the resolved client secret, the ID-token verifier and an HTTPS client.
pub struct OidcLogin {
    config: WebOidcConfig,
    client_secret: Option<Secret>,
    redirect_uri: String,
    verifier: Verifier,
    http: HttpsClient,
    endpoints: Mutex<Option<Endpoints>>,
}

/// A refused callback: what the audit event says, and what the browser is told.
struct Refused {
    status: StatusCode,
    subject: Option<String>,
    reason: String,
    message: &'static str,
}

impl Refused {
    fn new(status: StatusCode, reason: impl Into<String>, message: &'static str) -> Self {
        Self { status, subject: None, reason: reason.into(), message }
    }
}

const START_AGAIN: &str = "This sign-in attempt is unknown, already used or expired. Please sign in again.";
const PROVIDER_FAILED: &str = "The sign-in provider did not complete the sign-in. Please try again later.";
const NOT_VERIFIED: &str = "Sign-in failed: the sign-in provider's answer could not be verified.";

impl OidcLogin {
    /// The provider of `[web.oidc]`, or `None` when it is not configured. No network yet: the discovery document
    /// is read at the first sign-in.
    pub fn new(config: &Config) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(c) = &config.web.oidc else { return Ok(None) };
        let client_secret = c.client_secret.as_ref().map(|r| r.resolve("web.oidc.client_secret")).transpose()?;
        let tls = tls_config(c.ca_cert.as_deref()).map_err(|e| anyhow::anyhow!("[web.oidc] ca_cert: {e}"))?;
        // https only: the code, the verifier and the secret must not travel in clear.
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let verifier = Verifier::new(&OidcConfig { issuers: vec![c.issuer_config()] })?;
        Ok(Some(Arc::new(Self {
            config: c.clone(),
            client_secret,
            redirect_uri: format!("{}/login/oidc/callback", config.server.public_url.trim_end_matches('/')),
            verifier,
            http,
            endpoints: Mutex::new(None),
        })))
    }

    /// The button text on the login page.
    pub fn label(&self) -> &str {
        &self.config.label
    }

    /// The authorization and token endpoints, from the cached discovery document.
    async fn endpoints(&self) -> Result<Endpoints, String> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref().filter(|e| e.loaded_at.elapsed() < DISCOVERY_MAX_AGE) {
            return Ok(e.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let request = hyper::Request::get(&url)
            .header(header::ACCEPT, "application/json")
            .body(Full::default())
            .map_err(|e| format!("{url}: {e}"))?;
        let (status, doc) = self.send(request, &url).await?;
        if status != StatusCode::OK {
            return Err(format!("{url}: HTTP {status}"));
        }
        // The document must be about this issuer (OIDC Discovery §4.3).
        if doc.get("issuer").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(format!("discovery at {url} names another issuer"));
        }
        let endpoint = |name: &str| match doc.get(name).and_then(Value::as_str) {
            Some(u) if u.starts_with("https://") => Ok(u.to_owned()),
            Some(u) => Err(format!("{name} {u} is not https")),
            None => Err(format!("discovery at {url} has no {name}")),
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            loaded_at: Instant::now(),
        };
        *cached = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// One request to the provider: its status and JSON body (`null` when the body is not JSON).
    async fn send(&self, request: hyper::Request<Full<Bytes>>, url: &str) -> Result<(StatusCode, Value), String> {
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{url}: no answer within {FETCH_TIMEOUT:?}"))?
    }

    /// Trade the authorization code for the ID token (RFC 6749 §4.1.3, with the PKCE verifier).
    async fn redeem(&self, token_endpoint: &str, code: &str, code_verifier: &str) -> Result<String, String> {
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", code_verifier),
        ])
        .map_err(|e| e.to_string())?;
        let mut request = hyper::Request::post(token_endpoint)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some(secret) = &self.client_secret {
            // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined and base64-encoded.
            let credentials = format!("{}:{}", form_encode(&self.config.client_id), form_encode(secret.expose()));
            request = request.header(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode(credentials)));
        }
        let request = request.body(Full::new(Bytes::from(form))).map_err(|e| e.to_string())?;
        let (status, body) = self.send(request, token_endpoint).await?;
        if status != StatusCode::OK {
            // `error` is a short registered code (`invalid_grant`…), safe to record; the description is not shown.
            let error = body.get("error").and_then(Value::as_str).map(short).unwrap_or_default();
            return Err(format!("token endpoint answered HTTP {status} {error}").trim_end().to_owned());
        }
        match body.get("id_token").and_then(Value::as_str) {
            Some(t) => Ok(t.to_owned()),
            None => Err("token endpoint answered without an id_token".into()),
        }
    }

    /// Check the ID token and map it to a person: `(subject, groups)`.
    async fn person(&self, id_token: &str, nonce: &str) -> Result<(String, Vec<String>), Refused> {
        let refused = |reason: String| Refused::new(StatusCode::FORBIDDEN, reason, NOT_VERIFIED);
        let identity = self.verifier.verify(id_token).await.map_err(|e| refused(format!("ID token refused: {e}")))?;
        // The signature held, so the payload is the provider's word; read the claims the verifier does not map.
        let claims = payload(id_token).ok_or_else(|| refused("ID token payload is not a JSON object".into()))?;
        let presented = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(refused("ID token nonce does not match this sign-in".into()));
        }
        let claim_name = &self.config.subject_claim;
        let subject = match claim(&claims, claim_name) {
            Some(Value::String(s)) if valid_on_behalf_of(s) => s.clone(),
            _ => return Err(refused(format!("ID token has no usable {} claim", short(claim_name)))),
        };
        // An address the provider has not verified could be anyone's.
        if claim_name == "email" && claims.get("email_verified") == Some(&Value::Bool(false)) {
            return Err(Refused { subject: Some(subject), ..refused("ID token email is not verified".into()) });
        }
        Ok((subject, identity.groups))
    }
}

/// The claims of a JWT, without any check (the caller verified it).
fn payload(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1)?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn form_encode(value: &str) -> String {
    let encoded = serde_urlencoded::to_string([("", value)]).unwrap_or_default();
    encoded.strip_prefix('=').unwrap_or(&encoded).to_owned()
}

/// A value from the provider, short and quoted, for an audit reason.
fn short(s: &str) -> String {
    format!("{:?}", s.chars().take(80).collect::<String>())
}

/// A PKCE code verifier: 256 random bits as 43 base64url characters (RFC 7636 §4.1).
fn code_verifier() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `BASE64URL(SHA256(verifier))`, the S256 challenge.
fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `Set-Cookie` for the flow cookie (empty value and age 0: remove it).
fn flow_cookie(web: &Web, state: &str, max_age_s: i64) -> String {
    let secure = if web.cookie_secure { "; Secure" } else { "" };
    format!("{FLOW_COOKIE}={state}; Path={FLOW_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}")
}

/// A plain page with a message and a status, like the web UI's other error pages.
fn message_page(status: StatusCode, message: &str) -> Response {
    let env = minijinja::Environment::new();
    let body = env
        .render_named_str("error.html", include_str!("templates/error.html"), minijinja::context! { message })
        .unwrap_or_else(|_| "error".to_owned());
    (status, Html(body)).into_response()
}

// === handlers ===

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /login/oidc?next=…`: remember the flow and send the browser to the provider.
#[tracing::instrument(name = "web_oidc_start", skip_all)]
pub async fn start(State(web): State<Web>, Query(q): Query<StartQuery>) -> WebResult<Response> {
    let Some(oidc) = web.oidc.clone() else { return Err(WebError::NotFound) };
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "OIDC discovery failed");
            return Ok(message_page(StatusCode::BAD_GATEWAY, PROVIDER_FAILED));
        }
    };
    let state = random_token();
    let nonce = random_token();
    let verifier = code_verifier();
    let now = now_ms();
    let pool = web.gateway.store().pool();
    // Abandoned sign-ins are swept opportunistically; there are few of them.
    sqlx::query("DELETE FROM web_oidc_flows WHERE expires_ms <= $1").bind(now).execute(pool).await?;
    sqlx::query(
        "INSERT INTO web_oidc_flows (state_hash, code_verifier, nonce, next, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(sha256_hex(&state))
    .bind(&verifier)
    .bind(&nonce)
    .bind(safe_next(q.next.as_deref()))
    .bind(now)
    .bind(now + FLOW_LIFETIME_MS)
    .execute(pool)
    .await?;
    let scope = oidc.config.scopes.join(" ");
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", oidc.config.client_id.as_str()),
        ("redirect_uri", oidc.redirect_uri.as_str()),
        ("scope", scope.as_str()),
        ("state", state.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", code_challenge(&verifier).as_str()),
        ("code_challenge_method", "S256"),
    ])?;
    let separator = if endpoints.authorization.contains('?') { '&' } else { '?' };
    let location = format!("{}{separator}{query}", endpoints.authorization);
    let flow_cookie = flow_cookie(&web, &state, FLOW_LIFETIME_MS / 1000);
    Ok((StatusCode::FOUND, [(header::LOCATION, location), (header::SET_COOKIE, flow_cookie)]).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /login/oidc/callback?code&state` (or `?error=…`): finish the flow and open a web session.
#[tracing::instrument(name = "web_oidc_callback", skip_all)]
pub async fn callback(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> WebResult<Response> {
    let Some(oidc) = web.oidc.clone() else { return Err(WebError::NotFound) };
    let config = web.gateway.config();
    let browser_state = cookie(&headers, FLOW_COOKIE);
    // Whatever the outcome, the flow cookie has done its job.
    let clear = flow_cookie(&web, "", 0);
    let refused = match finish(&web, &oidc, q, browser_state.as_deref()).await? {
        Ok((subject, groups, next)) => {
            let credential = Credential::Oidc { subject, groups };
            match web.accounts.sign_in(config, &credential).await? {
                Ok(human) => {
                    let lifetime = config.web.session_lifetime.0;
                    let id =
                        web.accounts.open_session(&human.subject, &credential, lifetime.as_millis() as i64).await?;
                    tracing::info!(subject = %human.subject, method = "oidc", "web sign-in");
                    let cookie = web.session_cookie(&id, lifetime.as_secs() as i64);
                    let cookies = AppendHeaders([(header::SET_COOKIE, clear), (header::SET_COOKIE, cookie)]);
                    return Ok((cookies, Redirect::to(&next)).into_response());
                }
                Err((subject, refusal)) => Refused {
                    status: StatusCode::FORBIDDEN,
                    subject,
                    reason: refusal.reason().to_owned(),
                    message: if refusal == Refusal::NoRole {
                        "You are signed in at the provider, but your groups give no access to Airlock."
                    } else {
                        NOT_VERIFIED
                    },
                },
            }
        }
        Err(refused) => refused,
    };
    web.gateway
        .recorder()
        .append(
            AUDIT_SESSION,
            None,
            EventKind::AuthFailed,
            &json!({ "context": "web oidc login", "subject": refused.subject, "reason": refused.reason }),
        )
        .await?;
    Ok(([(header::SET_COOKIE, clear)], message_page(refused.status, refused.message)).into_response())
}

/// Spend the flow named by `state`, redeem the code and check the ID token: `(subject, groups, next)`.
async fn finish(
    web: &Web,
    oidc: &OidcLogin,
    q: CallbackQuery,
    browser_state: Option<&str>,
) -> anyhow::Result<Result<(String, Vec<String>, String), Refused>> {
    let bad_request = |reason: &str| Ok(Err(Refused::new(StatusCode::BAD_REQUEST, reason, START_AGAIN)));
    let Some(state) = q.state.filter(|s| !s.is_empty()) else { return bad_request("callback without state") };
    // Checked before the flow is touched: someone else's callback link neither signs this browser in nor spends
    // the flow.
    if !browser_state.is_some_and(|b| bool::from(b.as_bytes().ct_eq(state.as_bytes()))) {
        return bad_request("state was not started in this browser (flow cookie missing or different)");
    }
    let pool = web.gateway.store().pool();
    let hash = sha256_hex(&state);
    let row = sqlx::query("SELECT code_verifier, nonce, next, expires_ms FROM web_oidc_flows WHERE state_hash = $1")
        .bind(&hash)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return bad_request("unknown or already used state") };
    // Deleting is what spends the flow: of two racing callbacks only the one whose delete took the row goes on.
    let spent = sqlx::query("DELETE FROM web_oidc_flows WHERE state_hash = $1").bind(&hash).execute(pool).await?;
    if spent.rows_affected() != 1 {
        return bad_request("unknown or already used state");
    }
    let (verifier, nonce, next, expires_ms): (String, String, String, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
    if expires_ms <= now_ms() {
        return bad_request("state expired (the sign-in took longer than 10 minutes)");
    }
    if let Some(error) = q.error {
        let reason = format!("provider answered error {}", short(&error));
        return Ok(Err(Refused::new(StatusCode::FORBIDDEN, reason, "The sign-in provider refused the sign-in.")));
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else { return bad_request("callback without code") };
    let provider_failed = |reason: String| Ok(Err(Refused::new(StatusCode::BAD_GATEWAY, reason, PROVIDER_FAILED)));
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => return provider_failed(format!("discovery failed: {e}")),
    };
    let id_token = match oidc.redeem(&endpoints.token, &code, &verifier).await {
        Ok(t) => t,
        Err(e) => return provider_failed(format!("token exchange failed: {e}")),
    };
    Ok(oidc.person(&id_token, &nonce).await.map(|(subject, groups)| (subject, groups, next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifier_and_challenge_follow_rfc_7636() {
        let v = code_verifier();
        assert_eq!(v.len(), 43);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(v, code_verifier());
        // base64url without padding of SHA-256, as computed independently (Python's hashlib).
        assert_eq!(code_challenge(&"a".repeat(43)), "ZtNPunH49FD35FWYhT5Tv8I7vRKQJ8uxMaL0_9eHjNA");
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/d"), "a+b%3Ac%2Fd");
        assert_eq!(form_encode("airlock"), "airlock");
    }
}
