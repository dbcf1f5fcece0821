//! Web UI sign-in at an OpenID Connect provider (`[web.oidc]`, authorization code + PKCE), against the real
//! binary and `airlock_tests::fake_oidc` (HTTPS with its own CA, `/authorize` and `/token`). The browser is
//! played by hand: a client that follows no redirects takes Airlock's 302 to the provider, the fake's
//! `/authorize` step runs in-process (the tests' HTTP client has no TLS), and its redirect back is fetched from
//! Airlock. Roles come from the ID token's groups; people need not be `[[humans]]`; local sign-in stays.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::process::Stdio;

use airlock_tests::airlock::{Airlock, Server, store_events};
use airlock_tests::fake_oidc::{FakeOidc, Misbehaviour};
use common::{Client, SHOP_SQL, http_client, seen, sql, structured};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

const CLIENT_ID: &str = "airlock-web";
const LABEL: &str = "Sign in with Example SSO";
/// A local account, in `[[humans]]` with a password (group `dba`: approver).
const ALICE: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "correct horse battery staple";
/// People who exist only at the provider.
const OLGA: &str = "olga@example.com";
const RUDI: &str = "rudi@example.com";
const NOBODY: &str = "nobody@example.com";
const CLIENT_SECRET: &str = "s3cret-of-the-confidential-client";

struct Fixture {
    oidc: FakeOidc,
    airlock: Airlock,
    server: Server,
    token: String,
    http: reqwest::Client,
    _store: Option<airlock_tests::TestDb>,
    _target_dir: tempfile::TempDir,
}

/// What a response looked like.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    /// The `Set-Cookie` values whose cookie name contains `name`.
    fn set_cookies(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.split('=').next().is_some_and(|n| n.contains(name)))
            .map(str::to_owned)
            .collect()
    }

    /// The `Set-Cookie` of the web session, if one was opened.
    fn session_set_cookie(&self) -> Option<String> {
        self.set_cookies("airlock_session").pop()
    }

    /// `name=value` of the session cookie set.
    fn cookie(&self) -> String {
        self.session_set_cookie().expect("a session cookie").split(';').next().unwrap().to_owned()
    }

    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl Fixture {
    /// SQLite shop, the web inbox as approval channel, `[web]` roles from groups `auditors` (reviewer) and `dba`
    /// (approver), `[web.oidc]` at the fake (with `oidc_extra` appended), alice as a local account.
    async fn start(oidc_extra: &str, env: &[(&str, &str)], store: Option<airlock_tests::TestDb>) -> Self {
        let oidc = FakeOidc::start().await;
        let target_dir = tempfile::tempdir().unwrap();
        let target = Airlock::sqlite_target(target_dir.path());
        airlock_tests::exec(&target.url, SHOP_SQL).await;
        let airlock = Airlock::new(target, store.as_ref().map(|db| db.url.clone()));
        let ca = airlock.dir.path().join("idp-ca.pem");
        std::fs::write(&ca, oidc.ca_pem()).unwrap();
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(&format!(
            "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\n\n[web]\napproval_inbox = true\n\
             reviewer_groups = [\"auditors\"]\napprover_groups = [\"dba\"]\n\n\
             [web.oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nca_cert = {:?}\nlabel = \"{LABEL}\"\n\
             {oidc_extra}\n\n[[humans]]\nsubject = \"{ALICE}\"\ngroups = [\"dba\"]\n",
            oidc.issuer(),
            ca.display().to_string(),
        ));
        std::fs::write(&airlock.config, config).unwrap();
        let mut child = airlock
            .command(&["users", "add", ALICE, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{ALICE_PASSWORD}\n").as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "users add: {}", String::from_utf8_lossy(&out.stderr));
        let token = airlock.create_token("autogen-ci", "agents");
        let server = airlock.serve_with_env(env);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { oidc, airlock, server, token, http, _store: store, _target_dir: target_dir }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut req = self.http.get(format!("{}{path}", self.origin()));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let response = req.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Page { status, headers, body: response.text().await.unwrap() }
    }

    async fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(format!("{}{path}", self.origin()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .header("origin", self.origin())
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Page { status, headers, body: response.text().await.unwrap() }
    }

    /// Click the SSO button (`next`), sign in at the provider as `email` in `groups`: the callback path the
    /// provider sends the browser back to (not fetched yet), and the flow cookie the browser holds.
    async fn to_provider_and_back(&self, email: &str, groups: &[&str], next: &str) -> (String, String) {
        self.oidc.set_user(email, groups);
        let start =
            self.get(&format!("/login/oidc?{}", serde_urlencoded::to_string([("next", next)]).unwrap()), None).await;
        assert_eq!(start.status, 302, "{}", start.body);
        let flow = start.set_cookies("airlock_oidc_flow").pop().expect("a flow cookie");
        assert!(flow.contains("HttpOnly") && flow.contains("SameSite=Lax"), "{flow}");
        let back = self.oidc.authorize(&start.header("location"));
        let path = back.strip_prefix(&self.origin()).unwrap_or_else(|| panic!("redirected back to {back}")).to_owned();
        (path, flow.split(';').next().unwrap().to_owned())
    }

    /// The whole sign-in: the callback's answer.
    async fn sso(&self, email: &str, groups: &[&str], next: &str) -> Page {
        let (callback, flow) = self.to_provider_and_back(email, groups, next).await;
        self.get(&callback, Some(&flow)).await
    }

    async fn audit(&self) -> Vec<Value> {
        store_events(&self.airlock.store_url, "auth_failed").await
    }

    async fn client(&self) -> Client {
        http_client(&self.server, &self.token).await
    }
}

fn has_refusal(audit: &[Value], subject: Option<&str>, reason_part: &str) -> bool {
    audit.iter().any(|e| {
        e["context"] == "web oidc login"
            && subject.is_none_or(|s| e["subject"] == s)
            && e["reason"].as_str().is_some_and(|r| r.contains(reason_part))
    })
}

/// `value` with its last character changed.
fn tampered(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let last = chars.pop().unwrap();
    chars.push(if last == '0' { '1' } else { '0' });
    chars.into_iter().collect()
}

/// The `state` of a callback path.
fn state_of(callback: &str) -> String {
    let after = callback.split_once("state=").unwrap().1;
    after.split('&').next().unwrap().to_owned()
}

#[tokio::test]
async fn login_page_offers_sso_and_local_sign_in_still_works() {
    let f = Fixture::start("", &[], None).await;
    let login = f.get("/login?next=/approvals", None).await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains(LABEL), "{}", login.body);
    assert!(login.body.contains("href=\"/login/oidc?next=%2Fapprovals\""), "{}", login.body);
    assert!(login.body.contains("name=\"password\""), "the local form stays: {}", login.body);

    let page = f
        .http
        .post(format!("{}/login", f.origin()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", f.origin())
        .body(
            serde_urlencoded::to_string([("subject", ALICE), ("password", ALICE_PASSWORD), ("next", "/sessions")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 303);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let sessions = f.get("/sessions", Some(&cookie)).await;
    assert_eq!(sessions.status, 200);
    assert!(sessions.body.contains(ALICE), "{}", sessions.body);
}

#[tokio::test]
async fn sso_sign_in_gives_a_provider_only_reviewer_a_session() {
    let f = Fixture::start("", &[], None).await;
    let page = f.sso(RUDI, &["auditors", "staff"], "/sessions?tool=sql_query").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), "/sessions?tool=sql_query");
    let set_cookie = page.session_set_cookie().unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "cookie lacks {flag}: {set_cookie}");
    }
    let rudi = page.cookie();
    let sessions = f.get("/sessions", Some(&rudi)).await;
    assert_eq!(sessions.status, 200, "{}", sessions.body);
    assert!(sessions.body.contains(RUDI), "signed in as the email claim: {}", sessions.body);

    // What Airlock asked the provider for: a code, PKCE S256, a nonce, our redirect URI.
    let auth = f.oidc.authorizations().pop().unwrap();
    assert_eq!(auth.client_id, CLIENT_ID);
    assert_eq!(auth.redirect_uri, format!("{}/login/oidc/callback", f.origin()));
    assert_eq!(auth.scope, "openid email profile");
    assert_eq!(auth.code_challenge_method, "S256");
    assert_eq!(auth.state.len(), 64);
    assert!(!auth.nonce.is_empty() && auth.nonce != auth.state);
    // The fake checked SHA256(verifier) against the challenge; the verifier has the length RFC 7636 asks.
    let token = f.oidc.token_requests().pop().unwrap();
    assert!((43..=128).contains(&token.form["code_verifier"].len()));
    assert!(token.basic.is_none(), "a public client sends no credentials");

    // Nothing secret in the server's log.
    let log = f.server.log();
    for secret in [&auth.state, &token.form["code"], &token.form["code_verifier"]] {
        assert!(!log.contains(secret.as_str()), "{secret} in the log");
    }
}

#[tokio::test]
async fn a_provider_only_approver_votes_from_the_inbox_with_the_token_groups() {
    let f = Fixture::start("", &[], None).await;
    let client = f.client().await;
    let held = sql(&client, "DELETE FROM orders").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();

    let page = f.sso(OLGA, &["dba"], "/approvals").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), "/approvals");
    let olga = page.cookie();
    let inbox = f.get("/approvals", Some(&olga)).await;
    assert_eq!(inbox.status, 200);
    let vote_path = format!("/approvals/{id}/vote");
    assert!(inbox.body.contains(&vote_path), "an approver sees the buttons: {}", inbox.body);

    // The policy wants a `dba` approver: olga's vote counts through the groups her ID token carried.
    let csrf = inbox.csrf();
    let page = f.post(&vote_path, &olga, &[("csrf", &csrf), ("decision", "approve")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("now approved"), "{}", page.body);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    let votes = store_events(&f.airlock.store_url, "approval_vote").await;
    assert!(votes.iter().any(|v| v["source"] == "web" && v["voter"] == OLGA), "{votes:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn groups_without_a_role_are_refused_and_audited() {
    let f = Fixture::start("", &[], None).await;
    let page = f.sso(NOBODY, &["staff"], "/sessions").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("your groups give no access"), "{}", page.body);
    assert!(page.session_set_cookie().is_none());
    assert!(has_refusal(&f.audit().await, Some(NOBODY), "no web role"), "{:?}", f.audit().await);
}

#[tokio::test]
async fn a_replayed_tampered_or_foreign_callback_is_refused() {
    let f = Fixture::start("", &[], None).await;
    let (callback, flow) = f.to_provider_and_back(RUDI, &["auditors"], "/sessions").await;
    assert_eq!(f.get(&callback, Some(&flow)).await.status, 303);
    // The same state again, from the same browser: the flow was spent.
    let again = f.get(&callback, Some(&flow)).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.session_set_cookie().is_none());
    assert!(has_refusal(&f.audit().await, None, "unknown or already used state"), "{:?}", f.audit().await);

    // A tampered state: refused before the provider's code is redeemed, whether or not the browser's flow
    // cookie was tampered with alike.
    let (callback, flow) = f.to_provider_and_back(RUDI, &["auditors"], "/sessions").await;
    let redeemed = f.oidc.token_requests().len();
    let state = state_of(&callback);
    let forged = callback.replace(&state, &tampered(&state));
    let page = f.get(&forged, Some(&flow)).await;
    assert_eq!(page.status, 400, "{}", page.body);
    let page = f.get(&forged, Some(&flow.replace(&state, &tampered(&state)))).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(f.oidc.token_requests().len(), redeemed, "a code was redeemed for an unknown state");

    // Someone else's callback link (login CSRF): without this browser's flow cookie it signs nobody in, and the
    // flow stays usable by the browser that started it.
    let foreign = f.get(&callback, None).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(has_refusal(&f.audit().await, None, "not started in this browser"), "{:?}", f.audit().await);
    assert_eq!(f.get(&callback, Some(&flow)).await.status, 303);

    // And without any state.
    let no_state = f.get("/login/oidc/callback?code=abc", None).await;
    assert_eq!(no_state.status, 400);
    assert!(has_refusal(&f.audit().await, None, "callback without state"), "{:?}", f.audit().await);
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_or_audience_are_refused_and_audited() {
    let f = Fixture::start("", &[], None).await;
    f.oidc.misbehave(Some(Misbehaviour::WrongNonce));
    let page = f.sso(RUDI, &["auditors"], "/sessions").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.session_set_cookie().is_none());
    assert!(has_refusal(&f.audit().await, None, "nonce does not match"), "{:?}", f.audit().await);

    f.oidc.misbehave(Some(Misbehaviour::WrongAudience));
    let page = f.sso(RUDI, &["auditors"], "/sessions").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.session_set_cookie().is_none());
    assert!(has_refusal(&f.audit().await, None, "audience mismatch"), "{:?}", f.audit().await);

    // The provider telling the truth again: the same person gets in.
    f.oidc.misbehave(None);
    assert_eq!(f.sso(RUDI, &["auditors"], "/sessions").await.status, 303);
    // No audit event carries a token, code or verifier.
    let audit = serde_json::to_string(&f.audit().await).unwrap();
    for request in f.oidc.token_requests() {
        assert!(!audit.contains(&request.form["code"]) && !audit.contains(&request.form["code_verifier"]));
    }
    assert!(!audit.contains("eyJ"), "a JWT in the audit log: {audit}");
}

#[tokio::test]
async fn a_confidential_client_sends_its_secret_and_sessions_work_on_postgres() {
    let store = airlock_tests::postgres_db().await;
    let f = Fixture::start(
        "client_secret = { env = \"AIRLOCK_TEST_WEB_OIDC_SECRET\" }",
        &[("AIRLOCK_TEST_WEB_OIDC_SECRET", CLIENT_SECRET)],
        Some(store),
    )
    .await;
    f.oidc.require_client_secret(CLIENT_SECRET);
    let page = f.sso(RUDI, &["auditors"], "/sessions").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(f.oidc.token_requests().pop().unwrap().basic.as_deref(), Some(&*format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    assert_eq!(f.get("/sessions", Some(&page.cookie())).await.status, 200);
    // The spent flow is gone on Postgres too.
    let (callback, flow) = f.to_provider_and_back(RUDI, &["auditors"], "/sessions").await;
    assert_eq!(f.get(&callback, Some(&flow)).await.status, 303);
    assert_eq!(f.get(&callback, Some(&flow)).await.status, 400);
    assert!(!f.server.log().contains(CLIENT_SECRET), "the client secret is in the log");
}
