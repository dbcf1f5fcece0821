//! The replay / review web UI: server-rendered pages for people (reviewers, approvers, admins), beside MCP in
//! `airlock serve`.
//!
//! Everything shown was written by an agent or a target, so it is treated as hostile: templates autoescape, the
//! only script is a static file (`/static/app.js`) that writes text with `textContent`, and a strict
//! Content-Security-Policy forbids inline script and style. State-changing requests are POSTs that need the
//! session cookie, the session's CSRF token and an allowed Origin.

mod auth;
mod inbox;
mod oidc_login;
mod pages;
mod replay;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use gateway_core::pipeline::Gateway;
use serde::Serialize;

use auth::WebSession;
pub use auth::{Accounts, Role};
pub use inbox::InboxNotifier;
pub use users::users;

/// The header every web response carries: nothing from elsewhere, no inline script or style, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// State of the web handlers.
#[derive(Clone)]
pub struct Web {
    gateway: Arc<Gateway>,
    accounts: Accounts,
    templates: Arc<minijinja::Environment<'static>>,
    /// Origins a state-changing request may come from.
    origins: Arc<Vec<String>>,
    cookie_name: &'static str,
    cookie_secure: bool,
    /// The `[web.oidc]` provider, when people may sign in there.
    oidc: Option<Arc<oidc_login::OidcLogin>>,
}

/// The web UI's routes, or none when `[web] enabled = false`. `origins` are the allowed browser origins. Fails
/// when `[web.oidc]` is configured but unusable (its client secret or CA file cannot be read).
pub fn routes<S: Clone + Send + Sync + 'static>(
    gateway: Arc<Gateway>,
    origins: Vec<String>,
) -> anyhow::Result<Router<S>> {
    let config = gateway.config();
    if !config.web.enabled {
        return Ok(Router::new());
    }
    let cookie_secure = config.web.cookie_secure_for(&config.server.public_url);
    let web = Web {
        accounts: Accounts::new(gateway.store().clone()),
        templates: Arc::new(templates()),
        origins: Arc::new(origins),
        // `__Host-` makes browsers refuse the cookie unless it is Secure, host-only and for path `/`.
        cookie_name: if cookie_secure { "__Host-airlock_session" } else { "airlock_session" },
        cookie_secure,
        oidc: oidc_login::OidcLogin::new(config)?,
        gateway,
    };
    Ok(Router::new()
        .route("/", get(|| async { Redirect::to("/sessions") }))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/login/oidc", get(oidc_login::start))
        .route("/login/oidc/callback", get(oidc_login::callback))
        .route("/logout", post(pages::logout))
        .route("/sessions", get(pages::sessions))
        .route("/sessions/{id}", get(pages::replay))
        .route("/sessions/{id}/export.json", get(pages::export_json))
        .route("/sessions/{id}/export.cast", get(pages::export_cast))
        .route("/approvals", get(pages::approvals))
        .route("/approvals/{id}", get(pages::approval))
        .route("/approvals/{id}/vote", post(pages::vote))
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("static/app.js")) }),
        )
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", include_str!("static/app.css")) }))
        .route_layer(middleware::from_fn_with_state(web.clone(), check_origin))
        .layer(middleware::map_response(security_headers))
        .with_state(web))
}

/// The page templates, compiled into the binary.
const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("sessions.html", include_str!("templates/sessions.html")),
    ("replay.html", include_str!("templates/replay.html")),
    ("approvals.html", include_str!("templates/approvals.html")),
];

fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    // Names end in `.html`, so minijinja escapes every `{{ … }}` for HTML (its default for that extension).
    for (name, source) in TEMPLATES {
        // A syntax error is caught by the unit test below; at run time the page answers 500.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "web template does not compile");
        }
    }
    env
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it browsers send `Origin: null` on our own form POSTs, which the Origin check
    // (rightly) refuses. `same-origin` still sends nothing to other sites (URLs carry session ids).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Pages hold recorded data: keep them out of shared and back-button caches.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A POST must come from one of our own pages: its Origin (or, lacking one, its Referer) must be allowed.
/// Browsers send Origin on every cross-site POST, so a forged form from elsewhere never gets this far.
async fn check_origin(State(web): State<Web>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !origin_allowed(request.headers(), &web.origins) {
        return WebError::Forbidden("cross-origin request refused").into_response();
    }
    next.run(request).await
}

fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
        let referer = headers.get(header::REFERER)?.to_str().ok()?;
        let (scheme, rest) = referer.split_once("://")?;
        Some(format!("{scheme}://{}", rest.split('/').next()?))
    });
    origin.is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(&o)))
}

// === errors ===

/// Every way a web request fails, mapped to a response in one place.
#[derive(Debug)]
pub enum WebError {
    /// No (live) session: GETs go to the login page, everything else gets 401.
    SignInRequired {
        method: Method,
        path: String,
    },
    Forbidden(&'static str),
    NotFound,
    BadRequest(String),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for WebError {
    fn from(e: E) -> Self {
        WebError::Internal(e.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::SignInRequired { method, path } => {
                if method == Method::GET {
                    let next = serde_urlencoded::to_string([("next", path.as_str())]).unwrap_or_default();
                    return Redirect::to(&format!("/login?{next}")).into_response();
                }
                (StatusCode::UNAUTHORIZED, "Please sign in.".to_owned())
            }
            WebError::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_owned()),
            WebError::NotFound => (StatusCode::NOT_FOUND, "Not found.".to_owned()),
            WebError::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
            WebError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "web request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong; the details are in the server log.".into())
            }
        };
        // The error page stands alone (no session, no layout), so it renders even when the request had neither.
        let env = minijinja::Environment::new();
        let body = env
            .render_named_str("error.html", include_str!("templates/error.html"), minijinja::context! { message })
            .unwrap_or_else(|_| "error".to_owned());
        (status, Html(body)).into_response()
    }
}

pub type WebResult<T> = Result<T, WebError>;

// === signed-in user ===

/// The signed-in person, extracted from the session cookie; handlers that take it are closed to anonymous users.
pub struct User(WebSession);

impl User {
    pub fn require(&self, role: Role) -> WebResult<()> {
        if self.0.role >= role { Ok(()) } else { Err(WebError::Forbidden("your role does not allow this")) }
    }

    /// Check the form's CSRF token against the session's.
    pub fn check_csrf(&self, presented: &str) -> WebResult<()> {
        if self.0.csrf_matches(presented) { Ok(()) } else { Err(WebError::Forbidden("missing or wrong CSRF token")) }
    }
}

/// What every page's header needs to know about the viewer.
#[derive(Serialize)]
pub struct Viewer {
    subject: String,
    role: Role,
    csrf: String,
    can_vote: bool,
}

impl User {
    fn viewer(&self) -> Viewer {
        Viewer {
            subject: self.0.identity.subject.clone(),
            role: self.0.role,
            csrf: self.0.csrf.clone(),
            can_vote: self.0.role >= Role::Approver,
        }
    }
}

impl FromRequestParts<Web> for User {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Self::Rejection> {
        let anonymous = || WebError::SignInRequired {
            method: parts.method.clone(),
            path: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        };
        let Some(cookie) = cookie(&parts.headers, web.cookie_name) else { return Err(anonymous()) };
        match web.accounts.session(web.gateway.config(), &cookie).await? {
            Some(session) => Ok(User(session)),
            None => Err(anonymous()),
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

impl Web {
    fn render(&self, name: &str, ctx: minijinja::Value) -> WebResult<Html<String>> {
        let template = self.templates.get_template(name)?;
        Ok(Html(template.render(ctx)?))
    }

    /// `Set-Cookie` for a new session. HttpOnly: scripts never see it. SameSite=Lax rather than Strict: replay
    /// links are opened from Slack, and Strict would drop the cookie on that first navigation; Lax still keeps
    /// it off cross-site POSTs, and every POST also needs the CSRF token and an allowed Origin.
    fn session_cookie(&self, value: &str, max_age_s: i64) -> String {
        let secure = if self.cookie_secure { "; Secure" } else { "" };
        format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}", self.cookie_name)
    }
}

/// Ids in paths are generated by Airlock (UUIDs, hex); anything else is refused before it reaches a query.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile() {
        let mut env = minijinja::Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn origins_are_checked_from_origin_or_referer() {
        let allowed = vec!["http://127.0.0.1:8080".to_owned()];
        let mut h = HeaderMap::new();
        assert!(!origin_allowed(&h, &allowed));
        h.insert(header::REFERER, HeaderValue::from_static("http://127.0.0.1:8080/approvals"));
        assert!(origin_allowed(&h, &allowed));
        h.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_allowed(&h, &allowed));
    }

    #[test]
    fn ids_are_validated() {
        assert!(valid_id("0193a8f2-7c1d-7000-8000-000000000000"));
        assert!(!valid_id("../etc/passwd"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
    }
}
