//! The page handlers: sign-in, the session list, replay and exports, and the review inbox.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use gateway_core::approval::{ApprovalRecord, VoteDecision, VoteOutcome, VoteSource};
use gateway_core::evidence::asciicast;
use gateway_core::record::{AUDIT_SESSION, EventKind};
use gateway_core::search::{CallQuery, DEFAULT_PER_PAGE};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{Credential, Role};
use super::replay::{self, format_ms, visible};
use super::{User, Web, WebError, WebResult, cookie, valid_id};

// === sign-in ===

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    token: Option<String>,
}

/// The login form; with `?token=` (a login link) a one-button form that spends the link on POST, so that link
/// previews (chat unfurlers fetching the URL) cannot use it up.
pub async fn login_page(State(web): State<Web>, Query(q): Query<LoginQuery>) -> WebResult<Response> {
    let next = safe_next(q.next.as_deref());
    let (sso, sso_next) = sso(&web, &next);
    Ok(web
        .render("login.html", context! { next, sso, sso_next, token => q.token, error => None::<String> })?
        .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

pub async fn login(State(web): State<Web>, Form(form): Form<LoginForm>) -> WebResult<Response> {
    let credential = if form.token.is_empty() {
        Credential::Password { subject: form.subject.trim().to_owned(), password: form.password }
    } else {
        Credential::LoginLink { token: form.token.trim().to_owned() }
    };
    let config = web.gateway.config();
    let next = safe_next(Some(&form.next));
    match web.accounts.sign_in(config, &credential).await? {
        Ok(human) => {
            let lifetime = config.web.session_lifetime.0;
            let id = web.accounts.open_session(&human.subject, &credential, lifetime.as_millis() as i64).await?;
            tracing::info!(subject = %human.subject, "web sign-in");
            let cookie = web.session_cookie(&id, lifetime.as_secs() as i64);
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        Err((subject, refusal)) => {
            web.gateway
                .recorder()
                .append(
                    AUDIT_SESSION,
                    None,
                    EventKind::AuthFailed,
                    &json!({ "context": "web login", "subject": subject, "reason": refusal.reason() }),
                )
                .await?;
            // One message for every refusal: the page does not tell which accounts exist.
            let (sso, sso_next) = sso(&web, &next);
            let page = web.render(
                "login.html",
                context! { next, sso, sso_next, token => None::<String>, error => "Sign-in failed: unknown user, wrong password, \
                or an expired login link." },
            )?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

/// The SSO button's label and its `next` query value (percent-encoded), when `[web.oidc]` is configured.
fn sso(web: &Web, next: &str) -> (Option<String>, String) {
    let label = web.oidc.as_ref().map(|o| o.label().to_owned());
    (label, serde_urlencoded::to_string([("next", next)]).unwrap_or_default())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(web): State<Web>,
    user: User,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> WebResult<Response> {
    user.check_csrf(&form.csrf)?;
    if let Some(id) = cookie(&headers, web.cookie_name) {
        web.accounts.close_session(&id).await?;
    }
    let expired = web.session_cookie("", 0);
    Ok(([(header::SET_COOKIE, expired)], Redirect::to("/login")).into_response())
}

/// Only local paths: `next` must not send a freshly signed-in user to another site.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/sessions".to_owned(),
    }
}

// === sessions ===

/// The search form, as the browser sends it: every field optional, times as `datetime-local` values (UTC).
#[derive(Deserialize, Serialize, Default)]
pub struct SearchForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    on_behalf_of: String,
    #[serde(default)]
    connection: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    page: u32,
}

#[derive(Serialize)]
struct CallRow {
    call_id: String,
    session_id: String,
    subject: String,
    on_behalf_of: Option<String>,
    connection: String,
    tool: String,
    status: String,
    rule: String,
    started: String,
    statement: String,
    approval_id: Option<String>,
}

/// `/sessions`: recorded calls, newest first, filtered by identity, connection, tool, status, rule, time range
/// and words in the (masked) statement or output.
pub async fn sessions(State(web): State<Web>, user: User, Query(form): Query<SearchForm>) -> WebResult<Response> {
    user.require(Role::Reviewer)?;
    let time = |field: &str, value: &str| {
        (!value.is_empty())
            .then(|| {
                parse_datetime(value)
                    .ok_or_else(|| WebError::BadRequest(format!("{field}: expected YYYY-MM-DDTHH:MM (UTC)")))
            })
            .transpose()
    };
    let opt = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let query = CallQuery {
        subject: opt(&form.subject),
        on_behalf_of: opt(&form.on_behalf_of),
        connection: opt(&form.connection),
        tool: opt(&form.tool),
        status: opt(&form.status),
        rule: opt(&form.rule),
        since_ms: time("since", &form.since)?,
        until_ms: time("until", &form.until)?,
        text: opt(&form.text),
        session_id: None,
        page: form.page,
        per_page: DEFAULT_PER_PAGE,
    };
    let found = web.gateway.recorder().search_calls(&query).await?;
    let calls: Vec<CallRow> = found
        .calls
        .into_iter()
        .map(|c| CallRow {
            call_id: c.call_id,
            session_id: c.session_id,
            subject: c.subject,
            on_behalf_of: c.on_behalf_of,
            connection: c.connection,
            tool: c.tool,
            status: c.status,
            rule: c.rule.unwrap_or_default(),
            started: format_ms(c.started_ms),
            statement: visible(&c.statement),
            approval_id: c.approval_id,
        })
        .collect();
    // Paging links keep the filters; serde_urlencoded escapes them for the query string.
    let link = |page: u32| {
        let mut f = SearchForm { page, ..Default::default() };
        f.subject.clone_from(&form.subject);
        f.on_behalf_of.clone_from(&form.on_behalf_of);
        f.connection.clone_from(&form.connection);
        f.tool.clone_from(&form.tool);
        f.status.clone_from(&form.status);
        f.rule.clone_from(&form.rule);
        f.since.clone_from(&form.since);
        f.until.clone_from(&form.until);
        f.text.clone_from(&form.text);
        format!("/sessions?{}", serde_urlencoded::to_string(&f).unwrap_or_default())
    };
    let prev = (found.page > 0).then(|| link(found.page - 1));
    let next = found.has_more.then(|| link(found.page + 1));
    let statuses = ["completed", "blocked", "pending_approval", "denied", "expired", "error", "pending"];
    Ok(web
        .render(
            "sessions.html",
            context! { viewer => user.viewer(), calls, f => form, prev, next, statuses,
            audit => user.require(Role::Admin).is_ok().then_some(AUDIT_SESSION) },
        )?
        .into_response())
}

/// `YYYY-MM-DDTHH:MM[:SS]` (a `datetime-local` value, read as UTC) → ms since the epoch.
fn parse_datetime(value: &str) -> Option<i64> {
    let (date, time) = value.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    let second = t.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400) + hour * 3600 + minute * 60 + second) * 1000)
}

/// A session the viewer may read: a well-formed id, and the gateway's audit session only for admins. Anything
/// else is "not found", so an id tells a reviewer nothing beyond what they may see.
fn readable(user: &User, id: &str) -> WebResult<()> {
    user.require(Role::Reviewer)?;
    if !valid_id(id) || (id == AUDIT_SESSION && user.require(Role::Admin).is_err()) {
        return Err(WebError::NotFound);
    }
    Ok(())
}

/// `?exp=…&sig=…` of a signed replay link (`[web] signed_link_channels`).
#[derive(Deserialize, Default)]
pub struct LinkQuery {
    exp: Option<i64>,
    sig: Option<String>,
}

/// Who is reading a session: a signed-in reviewer, or the holder of a signed link to this one session.
enum Reader {
    User(User),
    Link { query: String, expires: String },
}

/// Let a reader in: a signed-in user needs the reviewer role; without a sign-in, a valid signed link for exactly
/// this session (never the audit session) opens it, read-only, and the opening is recorded. No link and no
/// sign-in: off to the login page, as before.
async fn reader(web: &Web, user: Result<User, WebError>, id: &str, link: LinkQuery) -> WebResult<Reader> {
    let (exp, sig) = match (user, link) {
        (Ok(user), _) => {
            readable(&user, id)?;
            return Ok(Reader::User(user));
        }
        (Err(_), LinkQuery { exp: Some(exp), sig: Some(sig) }) => (exp, sig),
        (Err(anonymous), _) => return Err(anonymous),
    };
    if !valid_id(id) || id == AUDIT_SESSION {
        return Err(WebError::NotFound);
    }
    let checked = web.gateway.replay_links().verify(id, exp, &sig, gateway_core::store::now_ms());
    let (kind, payload) = match checked {
        Ok(()) => (EventKind::ReplayLinkOpened, json!({ "session_id": id, "expires": exp })),
        Err(refusal) => (
            EventKind::AuthFailed,
            json!({ "reason": format!("replay link: {refusal}"), "context": format!("web /sessions/{id}") }),
        ),
    };
    // The opening (or the refusal) is on record before anything is shown; if it cannot be recorded, nothing is.
    web.gateway.recorder().append(AUDIT_SESSION, None, kind, &payload).await?;
    match checked {
        Ok(()) => Ok(Reader::Link {
            query: format!("?{}", serde_urlencoded::to_string([("exp", exp.to_string()), ("sig", sig)])?),
            expires: format_ms(exp.saturating_mul(1000)),
        }),
        Err(gateway_core::links::LinkRefusal::Expired) => {
            Err(WebError::Forbidden("this replay link has expired; sign in to see the session"))
        }
        Err(gateway_core::links::LinkRefusal::BadSignature) => {
            Err(WebError::Forbidden("this replay link is not valid"))
        }
    }
}

pub async fn replay(
    State(web): State<Web>,
    user: Result<User, WebError>,
    Path(id): Path<String>,
    Query(link): Query<LinkQuery>,
) -> WebResult<Response> {
    let reader = reader(&web, user, &id, link).await?;
    let Some(export) = web.gateway.recorder().export(&id).await? else { return Err(WebError::NotFound) };
    let chain = web.gateway.recorder().verify(&id).await?;
    let view = replay::view(&export, &chain);
    let ctx = match &reader {
        Reader::User(user) => context! { viewer => user.viewer(), s => view, link_query => "" },
        Reader::Link { query, expires } => context! { s => view, link_query => query, link_expires => expires },
    };
    Ok(web.render("replay.html", ctx)?.into_response())
}

pub async fn export_json(
    State(web): State<Web>,
    user: Result<User, WebError>,
    Path(id): Path<String>,
    Query(link): Query<LinkQuery>,
) -> WebResult<Response> {
    reader(&web, user, &id, link).await?;
    let Some(export) = web.gateway.recorder().export(&id).await? else { return Err(WebError::NotFound) };
    let body = serde_json::to_string_pretty(&export)?;
    Ok(download("application/json", &format!("airlock-session-{id}.json"), body))
}

pub async fn export_cast(
    State(web): State<Web>,
    user: Result<User, WebError>,
    Path(id): Path<String>,
    Query(link): Query<LinkQuery>,
) -> WebResult<Response> {
    reader(&web, user, &id, link).await?;
    let Some(export) = web.gateway.recorder().export(&id).await? else { return Err(WebError::NotFound) };
    let Some(cast) = asciicast(&export, None) else {
        return Err(WebError::BadRequest("this session has no command output to export as asciicast".into()));
    };
    Ok(download("application/x-asciicast", &format!("airlock-session-{id}.cast"), cast))
}

fn download(content_type: &'static str, filename: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

// === approvals ===

#[derive(Serialize)]
struct ApprovalView {
    id: String,
    state: &'static str,
    requester: String,
    connection: String,
    tool: String,
    statement: String,
    rule: String,
    reason: String,
    approvers: Vec<String>,
    quorum: u32,
    approvals: usize,
    created: String,
    expires: String,
    replay: String,
    votes: Vec<VoteView>,
}

#[derive(Serialize)]
struct VoteView {
    voter: String,
    decision: VoteDecision,
    reason: Option<String>,
    source: String,
    at: String,
}

fn approval_view(rec: &ApprovalRecord) -> ApprovalView {
    ApprovalView {
        id: rec.id.clone(),
        state: rec.state.as_str(),
        requester: match &rec.requester.on_behalf_of {
            Some(human) => format!("{} on behalf of {human}", rec.requester.subject),
            None => rec.requester.subject.clone(),
        },
        connection: rec.connection.clone(),
        tool: rec.tool.clone(),
        statement: visible(&rec.display),
        rule: rec.rule.clone(),
        reason: rec.requirement.reason.clone(),
        approvers: rec.requirement.approvers.clone(),
        quorum: rec.requirement.quorum,
        approvals: rec.votes.iter().filter(|v| v.decision == VoteDecision::Approve).count(),
        created: format_ms(rec.created_ms),
        expires: format_ms(rec.expires_ms),
        replay: format!("/sessions/{}#call-{}", rec.session_id, rec.call_id),
        votes: rec
            .votes
            .iter()
            .map(|v| VoteView {
                voter: v.voter.clone(),
                decision: v.decision,
                reason: v.reason.as_deref().map(visible),
                source: v.source.clone(),
                at: format_ms(v.ts_ms),
            })
            .collect(),
    }
}

/// The review inbox: every pending approval, oldest first.
pub async fn approvals(State(web): State<Web>, user: User) -> WebResult<Response> {
    inbox(&web, &user, None, StatusCode::OK).await
}

async fn inbox(web: &Web, user: &User, notice: Option<(bool, String)>, status: StatusCode) -> WebResult<Response> {
    user.require(Role::Reviewer)?;
    let pending: Vec<ApprovalView> = web.gateway.broker().pending(None).await?.iter().map(approval_view).collect();
    let page = web.render(
        "approvals.html",
        context! { viewer => user.viewer(), approvals => pending, single => false,
        notice => notice.map(|(ok, text)| context! { ok, text }) },
    )?;
    Ok((status, page).into_response())
}

/// One approval in any state (the link in the chat message).
pub async fn approval(State(web): State<Web>, user: User, Path(id): Path<String>) -> WebResult<Response> {
    user.require(Role::Reviewer)?;
    if !valid_id(&id) {
        return Err(WebError::NotFound);
    }
    let Some(rec) = web.gateway.broker().get(&id).await? else { return Err(WebError::NotFound) };
    let page = web.render(
        "approvals.html",
        context! { viewer => user.viewer(), approvals => vec![approval_view(&rec)], single => true,
        notice => None::<()> },
    )?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct VoteForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

/// A vote from the inbox: the same [`gateway_core::pipeline::Gateway::vote`] as Slack's buttons, so
/// self-approval, approver groups, quorum and expiry behave the same.
pub async fn vote(
    State(web): State<Web>,
    user: User,
    Path(id): Path<String>,
    Form(form): Form<VoteForm>,
) -> WebResult<Response> {
    // CSRF first: a forged request learns nothing, not even whether the role would have sufficed.
    user.check_csrf(&form.csrf)?;
    user.require(Role::Approver)?;
    if !valid_id(&id) {
        return Err(WebError::NotFound);
    }
    let decision = match form.decision.as_str() {
        "approve" => VoteDecision::Approve,
        "deny" => VoteDecision::Deny,
        _ => return Err(WebError::BadRequest("decision must be approve or deny".into())),
    };
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    let outcome = web.gateway.vote(&id, &user.0.identity, decision, reason, VoteSource::Web).await?;
    let (status, notice) = match outcome {
        VoteOutcome::Counted { state, approvals, quorum } => (
            StatusCode::OK,
            (
                true,
                match state.is_decided() {
                    true => format!("Your vote was counted; the request is now {}.", state.as_str()),
                    false => format!("Your vote was counted ({approvals} of {quorum} approvals)."),
                },
            ),
        ),
        VoteOutcome::Refused(refusal) => (StatusCode::CONFLICT, (false, refusal.explain())),
    };
    inbox(&web, &user, Some(notice), status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_local_values_are_utc_ms() {
        assert_eq!(parse_datetime("1970-01-01T00:00"), Some(0));
        assert_eq!(parse_datetime("2025-11-21T04:40:00"), Some(1_763_700_000_000));
        assert_eq!(parse_datetime("2025-13-01T00:00"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/approvals")), "/approvals");
        assert_eq!(safe_next(Some("//evil.example")), "/sessions");
        assert_eq!(safe_next(Some("https://evil.example")), "/sessions");
        assert_eq!(safe_next(Some("/\\evil")), "/sessions");
    }
}
