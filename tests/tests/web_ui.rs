//! The web UI over HTTP, against the real binary: sign-in (passwords and one-time login links), roles, CSRF and
//! Origin checks, cookie flags and security headers, the replay page (masked table, integrity badge, a tampered
//! row, recorded XSS rendered inert, exports), and approving a held call from the inbox, which releases the agent.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::process::Stdio;

use airlock_tests::airlock::{Airlock, Server, store_events};
use common::{ADA_EMAIL, Client, SHOP_SQL, http_client, seen, sql, structured};
use rmcp::model::CallToolRequestParams;
use serde_json::json;

const ALICE: &str = "alice@example.com";
const ALICE_PASSWORD: &str = "correct horse battery staple";
const RITA: &str = "rita@example.com";
const RITA_PASSWORD: &str = "reviewing all day long";

struct Fixture {
    _store: Option<airlock_tests::TestDb>,
    airlock: Airlock,
    server: Server,
    token: String,
    http: reqwest::Client,
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

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body)) + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl Fixture {
    /// An installation with a SQLite shop, the web inbox as approval channel, alice (dba → approver) and rita
    /// (auditors → reviewer) with passwords, and an agent token. `extra` is appended to `[web]`.
    async fn start(extra: &str) -> Self {
        Self::start_on(extra, None).await
    }

    /// As [`Fixture::start`], with the store in `store` (a fresh Postgres database) instead of SQLite.
    async fn start_on(extra: &str, store: Option<airlock_tests::TestDb>) -> Self {
        let target_dir = tempfile::tempdir().unwrap();
        let target = Airlock::sqlite_target(target_dir.path());
        airlock_tests::exec(&target.url, SHOP_SQL).await;
        let airlock = Airlock::new(target, store.as_ref().map(|db| db.url.clone()));
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(&format!(
            "\n[approval]\nin_call_wait = \"1s\"\nmax_await = \"30s\"\n\n[web]\napproval_inbox = true\n\
             reviewer_groups = [\"auditors\"]\napprover_groups = [\"dba\"]\n{extra}\n\n\
             [[humans]]\nsubject = \"{ALICE}\"\ngroups = [\"dba\"]\n\n\
             [[humans]]\nsubject = \"{RITA}\"\ngroups = [\"auditors\"]\n"
        ));
        std::fs::write(&airlock.config, config).unwrap();
        for (who, password) in [(ALICE, ALICE_PASSWORD), (RITA, RITA_PASSWORD)] {
            let mut child = airlock
                .command(&["users", "add", who, "--password-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "users add {who}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let token = airlock.create_token("autogen-ci", "agents");
        let server = airlock.serve();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { _store: store, airlock, server, token, http, _target_dir: target_dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    async fn page(&self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Page { status, headers, body }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Page {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.page(req.send().await.unwrap()).await
    }

    /// A form POST; `origin: None` leaves the Origin header out.
    async fn post(&self, path: &str, cookie: Option<&str>, origin: Option<&str>, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.page(req.send().await.unwrap()).await
    }

    /// Sign in with a password; returns the `Cookie` header value to send back.
    async fn login(&self, subject: &str, password: &str) -> String {
        let origin = self.origin();
        let page = self
            .post(
                "/login",
                None,
                Some(&origin),
                &[("subject", subject), ("password", password), ("next", "/approvals")],
            )
            .await;
        assert_eq!(page.status, 303, "login as {subject}: {}", page.body);
        assert_eq!(page.header("location"), "/approvals");
        cookie_of(&page)
    }

    async fn client(&self) -> Client {
        http_client(&self.server, &self.token).await
    }

    async fn approval_state(&self, id: &str) -> String {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.airlock.store_url).await.unwrap();
        let row = sqlx::query("SELECT state FROM approvals WHERE id = $1").bind(id).fetch_one(&pool).await.unwrap();
        pool.close().await;
        row.try_get(0).unwrap()
    }
}

/// `name=value` of the response's session cookie.
fn cookie_of(page: &Page) -> String {
    page.header("set-cookie").split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn anonymous_users_are_refused_and_every_page_has_strict_headers() {
    let f = Fixture::start("").await;
    let page = f.get("/sessions", None).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), "/login?next=%2Fsessions");
    for path in ["/sessions/00000000-0000-0000-0000-000000000000", "/approvals", "/sessions/x/export.json"] {
        assert_eq!(f.get(path, None).await.status, 303, "{path} is open to anonymous users");
    }
    let origin = f.origin();
    let page = f.post("/approvals/abc/vote", None, Some(&origin), &[("decision", "approve")]).await;
    assert_eq!(page.status, 401);
    // A made-up cookie is no session.
    assert_eq!(f.get("/sessions", Some("airlock_session=0123abcd")).await.status, 303);

    let login = f.get("/login", None).await;
    assert_eq!(login.status, 200);
    let csp = login.header("content-security-policy");
    for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "CSP lacks {directive}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.header("x-content-type-options"), "nosniff");
    assert_eq!(login.header("referrer-policy"), "same-origin");
    assert!(!login.body.contains("<script>"), "inline script on the login page");
    let js = f.get("/static/app.js", None).await;
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(!js.body.contains("innerHTML"), "recorded text must be written with textContent");
}

#[tokio::test]
async fn login_roles_csrf_and_approving_from_the_inbox_releases_the_agent() {
    let f = Fixture::start("").await;
    let origin = f.origin();

    // A wrong password: 401, a generic message, and an audit event with the reason.
    let bad = f.post("/login", None, Some(&origin), &[("subject", ALICE), ("password", "nope")]).await;
    assert_eq!(bad.status, 401);
    assert!(bad.header("set-cookie").is_empty());
    assert!(bad.body.contains("Sign-in failed"), "{}", bad.body);
    let audit = store_events(&f.airlock.store_url, "auth_failed").await;
    assert!(
        audit.iter().any(|e| e["context"] == "web login" && e["subject"] == ALICE && e["reason"] == "wrong password"),
        "{audit:?}"
    );
    // Without an Origin (or Referer) a POST is refused before anything else.
    let no_origin = f.post("/login", None, None, &[("subject", ALICE), ("password", ALICE_PASSWORD)]).await;
    assert_eq!(no_origin.status, 403);
    let evil =
        f.post("/login", None, Some("https://evil.example"), &[("subject", ALICE), ("password", ALICE_PASSWORD)]).await;
    assert_eq!(evil.status, 403);

    // The right password: a session cookie, HttpOnly and SameSite, not readable by scripts.
    let page = f
        .post(
            "/login",
            None,
            Some(&origin),
            &[("subject", ALICE), ("password", ALICE_PASSWORD), ("next", "/approvals")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let set_cookie = page.header("set-cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(flag), "cookie lacks {flag}: {set_cookie}");
    }
    // Plain http on loopback (the test server): no Secure flag, or the browser would drop the cookie.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    let alice = cookie_of(&page);
    let rita = f.login(RITA, RITA_PASSWORD).await;

    // The agent's unbounded DELETE waits in the inbox.
    let client = f.client().await;
    let held = sql(&client, "DELETE FROM orders").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    let inbox = f.get("/approvals", Some(&alice)).await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains(&id) && inbox.body.contains("DELETE FROM orders"), "{}", inbox.body);
    assert!(inbox.body.contains(&format!("/approvals/{id}/vote")), "an approver sees the buttons");
    let alice_csrf = inbox.csrf();

    // A reviewer sees the inbox but no buttons, and cannot vote.
    let rita_inbox = f.get("/approvals", Some(&rita)).await;
    let rita_csrf = rita_inbox.csrf();
    assert!(rita_inbox.body.contains(&id) && !rita_inbox.body.contains("/vote\""), "{}", rita_inbox.body);
    let vote_path = format!("/approvals/{id}/vote");
    let page = f.post(&vote_path, Some(&rita), Some(&origin), &[("csrf", &rita_csrf), ("decision", "approve")]).await;
    assert_eq!(page.status, 403);

    // CSRF: missing, wrong, or another user's token; and a cross-site Origin. Nothing is voted.
    for form in [
        vec![("decision", "approve")],
        vec![("csrf", "0000"), ("decision", "approve")],
        vec![("csrf", rita_csrf.as_str()), ("decision", "approve")],
    ] {
        assert_eq!(f.post(&vote_path, Some(&alice), Some(&origin), &form).await.status, 403, "{form:?}");
    }
    let form = [("csrf", alice_csrf.as_str()), ("decision", "approve")];
    assert_eq!(f.post(&vote_path, Some(&alice), Some("https://evil.example"), &form).await.status, 403);
    assert_eq!(f.post(&vote_path, Some(&alice), None, &form).await.status, 403);
    assert_eq!(f.approval_state(&id).await, "pending");
    assert!(store_events(&f.airlock.store_url, "approval_vote").await.is_empty(), "a refused request voted");
    assert_eq!(airlock_tests::count(&f.airlock.target.url, "SELECT count(*) FROM orders").await, 3);

    // Deny needs a reason (the broker's rule, as in Slack).
    let page = f.post(&vote_path, Some(&alice), Some(&origin), &[("csrf", &alice_csrf), ("decision", "deny")]).await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("reason"), "{}", page.body);

    // alice approves: counted, the approved call runs, and the waiting agent gets its result.
    let page = f.post(&vote_path, Some(&alice), Some(&origin), &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("now approved"), "{}", page.body);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains(ALICE), "approver named: {}", seen(&done));
    assert_eq!(airlock_tests::count(&f.airlock.target.url, "SELECT count(*) FROM orders").await, 0);
    let votes = store_events(&f.airlock.store_url, "approval_vote").await;
    assert!(votes.iter().any(|v| v["source"] == "web" && v["voter"] == ALICE), "{votes:?}");

    // Voting again: refused politely, nothing runs twice.
    let again = f.post(&vote_path, Some(&alice), Some(&origin), &form).await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already"), "{}", again.body);

    // The replay page tells the story, with the vote.
    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    let replay = f.get(&format!("/sessions/{session}"), Some(&rita)).await;
    assert_eq!(replay.status, 200);
    assert!(replay.body.contains("alice@example.com voted approve via web"), "{}", replay.body);

    // Signing out ends the session server-side.
    let out = f.post("/logout", Some(&alice), Some(&origin), &[("csrf", &alice_csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(f.get("/approvals", Some(&alice)).await.status, 303);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn replay_shows_masked_table_integrity_and_renders_recorded_html_inert() {
    let f = Fixture::start("").await;
    replay_scenario(&f, "DROP TRIGGER events_no_update").await;
}

#[tokio::test]
async fn replay_and_sign_in_work_on_a_postgres_store() {
    let f = Fixture::start_on("", Some(airlock_tests::postgres_db().await)).await;
    // Sign-in, CSRF-protected sign-out and the audit of a failure use the web tables on Postgres too.
    let origin = f.origin();
    let bad = f.post("/login", None, Some(&origin), &[("subject", RITA), ("password", "nope")]).await;
    assert_eq!(bad.status, 401);
    replay_scenario(&f, "DROP TRIGGER events_append_only ON events").await;
}

/// Two calls (masked PII, recorded HTML), then the replay, search and export pages; then a tampered row.
async fn replay_scenario(f: &Fixture, drop_trigger: &str) {
    let client = f.client().await;
    let r = sql(&client, "SELECT id, name, email, card_number FROM customers ORDER BY id").await;
    assert_eq!(structured(&r)["status"], "completed", "{}", seen(&r));
    let session = structured(&r)["session_id"].as_str().unwrap().to_owned();
    let call = structured(&r)["call_id"].as_str().unwrap().to_owned();
    let xss = "SELECT '<script>alert(1)</script>' AS a, '<img src=x onerror=alert(2)>' AS b, \
               '<a href=\"javascript:alert(3)\">x</a>' AS c, 'red\x1b[31m' AS d";
    let r = sql(&client, xss).await;
    assert_eq!(structured(&r)["status"], "completed", "{}", seen(&r));
    client.cancel().await.unwrap();

    let rita = f.login(RITA, RITA_PASSWORD).await;
    let page = f.get(&format!("/sessions/{session}"), Some(&rita)).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(body.contains("Chain verified"), "{body}");
    assert!(body.contains(&format!("id=\"call-{call}\"")), "per-call anchor");
    assert!(body.contains("Ada Lovelace") && body.contains("<th scope=\"col\">email</th>"), "masked table: {body}");
    assert!(!body.contains(ADA_EMAIL) && !body.contains("4111111111111111"), "unmasked data on the page");
    assert!(body.contains("allow-reads-and-bounded-writes"), "the deciding rule");
    // Recorded HTML is text: escaped in the statement, the table and the timeline; never markup.
    assert!(!body.contains("<script>alert"), "raw <script> on the page");
    assert!(!body.contains("<img src=x"), "raw <img> on the page");
    assert!(!body.contains("<a href=\"javascript:"), "raw javascript: link on the page");
    assert!(body.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;") || body.contains("&lt;script&gt;alert(1)"));
    assert!(!body.contains('\x1b'), "raw ANSI escape on the page");
    assert_eq!(body.matches("<script").count(), 1, "only the static app.js script tag");

    // Search: filters narrow the calls; recorded HTML stays inert there too.
    let all = f.get("/sessions?tool=sql_query&status=completed", Some(&rita)).await;
    assert_eq!(all.status, 200);
    assert!(all.body.contains("FROM customers") && all.body.contains("&lt;script&gt;"), "{}", all.body);
    assert!(!all.body.contains("<script>alert") && !all.body.contains("<img src=x"), "{}", all.body);
    assert!(all.body.contains(&format!("/sessions/{session}#call-{call}")), "links to the call's anchor");
    let text = f.get("/sessions?text=customers", Some(&rita)).await;
    assert!(text.body.contains("FROM customers") && !text.body.contains("&lt;script&gt;"), "{}", text.body);
    let none = f.get("/sessions?status=blocked", Some(&rita)).await;
    assert!(none.body.contains("No recorded calls match"), "{}", none.body);
    assert_eq!(f.get("/sessions?since=yesterday", Some(&rita)).await.status, 400);

    // Exports are downloads, never rendered.
    let export = f.get(&format!("/sessions/{session}/export.json"), Some(&rita)).await;
    assert_eq!(export.status, 200);
    assert!(export.header("content-disposition").starts_with("attachment"));
    let json: serde_json::Value = serde_json::from_str(&export.body).unwrap();
    assert_eq!(json["format"], "airlock.session.v1");
    assert_eq!(f.get(&format!("/sessions/{session}/export.cast"), Some(&rita)).await.status, 400, "no command output");

    // Unknown and malformed ids: 404; the audit session is for admins only.
    for path in [
        "/sessions/0193a8f2-0000-7000-8000-000000000000".to_owned(),
        "/sessions/..%2F..%2Fetc".to_owned(),
        "/sessions/00000000-0000-0000-0000-000000000000".to_owned(),
        "/approvals/nope".to_owned(),
    ] {
        assert_eq!(f.get(&path, Some(&rita)).await.status, 404, "{path}");
    }

    // Tamper with a stored event (the append-only trigger dropped first, as an attacker with the database would):
    // the badge says where the chain breaks.
    {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&f.airlock.store_url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(drop_trigger.to_owned())).execute(&pool).await.unwrap();
        let n = sqlx::query(
            "UPDATE events SET payload = replace(payload, 'Ada', 'Eve') WHERE session_id = $1 AND kind = 'result'",
        )
        .bind(&session)
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
        assert!(n >= 1);
        pool.close().await;
    }
    let page = f.get(&format!("/sessions/{session}"), Some(&rita)).await;
    assert_eq!(page.status, 200);
    let events = store_events(&f.airlock.store_url, "result").await;
    assert!(!events.is_empty());
    let expected = {
        use sqlx::Row;
        let pool = sqlx::AnyPool::connect(&f.airlock.store_url).await.unwrap();
        let row = sqlx::query("SELECT min(seq) FROM events WHERE session_id = $1 AND kind = 'result'")
            .bind(&session)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row.try_get::<i64, _>(0).unwrap()
    };
    assert!(page.body.contains(&format!("Chain broken at event {expected}")), "{}", page.body);
}

#[tokio::test]
async fn login_links_work_once_and_secure_cookies_use_the_host_prefix() {
    let f = Fixture::start("cookie_secure = true").await;
    let out = f.airlock.run(&["users", "login-link", ALICE]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    // Opening the link (as a chat unfurler would) does not spend it.
    let page = f.get(&format!("/login?token={token}"), None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign in with this link"));
    let origin = f.origin();
    let page = f.post("/login", None, Some(&origin), &[("token", &token)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let set_cookie = page.header("set-cookie");
    assert!(set_cookie.starts_with("__Host-airlock_session="), "{set_cookie}");
    assert!(set_cookie.contains("; Secure") && set_cookie.contains("HttpOnly"), "{set_cookie}");
    let cookie = cookie_of(&page);
    assert_eq!(f.get("/sessions", Some(&cookie)).await.status, 200);
    // A second use is refused and audited.
    assert_eq!(f.post("/login", None, Some(&origin), &[("token", &token)]).await.status, 401);
    let audit = store_events(&f.airlock.store_url, "auth_failed").await;
    assert!(audit.iter().any(|e| e["reason"] == "login link unknown, used or expired"), "{audit:?}");
    // Not a configured human: the CLI refuses.
    assert!(!f.airlock.run(&["users", "login-link", "nobody@example.com"]).status.success());
}

/// `airlock demo`: the printed login link signs the demo reviewer in, the agent's unbounded DELETE waits in
/// `/approvals`, approving it there releases the agent, and the replay page tells the story.
#[tokio::test]
async fn demo_loop_without_slack_login_link_inbox_approval_and_replay() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let port = airlock_tests::airlock::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cmd = std::process::Command::new(airlock_tests::airlock::airlock_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("AIRLOCK_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .env("AIRLOCK_SERVER__LISTEN", addr.to_string())
        .env("AIRLOCK_APPROVAL__IN_CALL_WAIT", "1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut link = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("/login?token=") {
            link = Some(line[at..].trim().to_owned());
            break;
        }
    }
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let link = link.expect("the demo prints a login link");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !matches!(airlock_tests::airlock::http_request(addr, "GET", "/healthz", &[], ""), Ok((200, _))) {
        assert!(std::time::Instant::now() < deadline, "demo not healthy");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let base = format!("http://{addr}");
    let token = link.split("token=").nth(1).unwrap();
    let signed_in = http
        .post(format!("{base}/login"))
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", token), ("next", "/approvals")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    let agent_token = std::fs::read_to_string(dir.path().join("demo/agent.token")).unwrap();
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"))
            .auth_header(agent_token.trim().to_owned()),
    );
    let client = rmcp::ServiceExt::serve(common::TestClient, transport).await.unwrap();
    let held = sql(&client, "DELETE FROM orders").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();

    let inbox = http.get(format!("{base}/approvals")).header("cookie", &cookie).send().await.unwrap();
    let inbox = inbox.text().await.unwrap();
    assert!(inbox.contains(&id), "{inbox}");
    let csrf = Page { status: 200, headers: Default::default(), body: inbox }.csrf();
    let voted = http
        .post(format!("{base}/approvals/{id}/vote"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("csrf", csrf.as_str()), ("decision", "approve"), ("reason", "demo")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(voted.status().as_u16(), 200);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    let replay = http.get(format!("{base}/sessions/{session}")).header("cookie", &cookie).send().await.unwrap();
    let replay = replay.text().await.unwrap();
    assert!(
        replay.contains("Chain verified") && replay.contains("approval approved by reviewer@demo.example"),
        "{replay}"
    );
    client.cancel().await.unwrap();
}

/// `[web] signed_link_channels`: the replay link posted to a listed channel opens that one session without a
/// sign-in, until it expires; it opens nothing else, a tampered or expired link is refused and audited, and the
/// agent's own replay link stays a plain one.
#[tokio::test]
async fn signed_replay_links_open_one_session_without_sign_in_until_they_expire() {
    use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
    let slack = FakeSlack::start().await;
    let extra = format!(
        "signed_link_channels = [\"#airlock-approvals\"]\nsigned_link_lifetime = \"2h\"\n\n[slack]\n\
         bot_token = {{ inline = \"{BOT_TOKEN}\" }}\napi_base_url = \"{}\"\nmode = \"http\"\n\
         signing_secret = {{ inline = \"0123456789abcdef\" }}\n",
        slack.api_base_url()
    );
    let f = Fixture::start(&extra).await;
    let origin = f.origin();
    let alice = f.login(ALICE, ALICE_PASSWORD).await;

    // The agent's DELETE is held (posted to Slack), alice approves it in the inbox, and it runs.
    let client = f.client().await;
    let held = sql(&client, "DELETE FROM orders").await;
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    let csrf = f.get("/approvals", Some(&alice)).await.csrf();
    let voted = f
        .post(
            &format!("/approvals/{id}/vote"),
            Some(&alice),
            Some(&origin),
            &[("csrf", &csrf), ("decision", "approve")],
        )
        .await;
    assert_eq!(voted.status, 200, "{}", voted.body);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    // The agent gets the plain link: a bearer link is for the people in the channel, not for the agent.
    let agent_link = structured(&done)["replay_url"].as_str().unwrap().to_owned();
    assert!(agent_link.contains(&format!("/sessions/{session}")) && !agent_link.contains("sig="), "{agent_link}");

    // The outcome posted in the thread carries the signed link (`&` escaped as Slack's mrkdwn wants).
    let posts = slack.wait_calls("chat.postMessage", 2).await;
    let text = posts[1].body["text"].as_str().unwrap().replace("&amp;", "&");
    let start = text.find("/sessions/").unwrap_or_else(|| panic!("no replay link in {text}"));
    let link = text[start..].split(['#', '|', '>']).next().unwrap().to_owned();
    assert!(link.starts_with(&format!("/sessions/{session}?exp=")) && link.contains("&sig="), "{link}");
    let query = link.split_once('?').unwrap().1.to_owned();

    // Without any cookie the link shows the session, read-only and labelled as shared.
    let page = f.get(&link, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("DELETE FROM orders") && page.body.contains("shared link"), "{}", page.body);
    assert!(!page.body.contains("Sign out") && !page.body.contains("name=\"csrf\""), "no signed-in chrome");
    assert!(page.body.contains(&format!("export.json?{}", query.replace('&', "&amp;"))), "exports keep the link");
    let export = f.get(&format!("/sessions/{session}/export.json?{query}"), None).await;
    assert_eq!(export.status, 200);
    assert!(export.body.contains("airlock.session.v1"), "{}", export.body);
    let opened = store_events(&f.airlock.store_url, "replay_link_opened").await;
    assert!(opened.iter().any(|e| e["session_id"] == session.as_str()), "{opened:?}");

    // It opens nothing else: another session, search, the inbox, the audit session.
    let other = f.client().await;
    let other_session =
        structured(&sql(&other, "SELECT count(*) AS n FROM orders").await)["session_id"].as_str().unwrap().to_owned();
    assert_ne!(other_session, session);
    let refused = f.get(&format!("/sessions/{other_session}?{query}"), None).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("not valid"), "{}", refused.body);
    assert_eq!(f.get(&format!("/sessions?{query}"), None).await.status, 303, "search needs a sign-in");
    assert_eq!(f.get(&format!("/approvals/{id}?{query}"), None).await.status, 303, "the inbox needs a sign-in");
    let audit_session = gateway_core::record::AUDIT_SESSION;
    assert_eq!(f.get(&format!("/sessions/{audit_session}?{query}"), None).await.status, 404);

    // A tampered expiry or signature is refused, and each refusal is in the audit log.
    let (exp, sig) = query.split_once("&sig=").unwrap();
    let exp: i64 = exp.trim_start_matches("exp=").parse().unwrap();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now_s + 7100..=now_s + 7200).contains(&exp), "valid for the configured 2h: {exp} vs {now_s}");
    let later = f.get(&format!("/sessions/{session}?exp={}&sig={sig}", exp + 86_400), None).await;
    assert_eq!(later.status, 403, "a longer life cannot be granted by editing the link");
    let mut flipped = sig.to_owned().into_bytes();
    flipped[5] = if flipped[5] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(f.get(&format!("/sessions/{session}?exp={exp}&sig={flipped}"), None).await.status, 403);
    let audit = store_events(&f.airlock.store_url, "auth_failed").await;
    assert!(audit.iter().filter(|e| e["reason"].as_str().unwrap_or("").starts_with("replay link")).count() >= 3);

    // A link past its expiry, signed with the gateway's own key (read from the store), is refused as expired.
    let expired = now_s - 60;
    let key = {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&f.airlock.store_url).await.unwrap();
        let hex_key: String = sqlx::query_scalar("SELECT key_hex FROM link_keys").fetch_one(&pool).await.unwrap();
        pool.close().await;
        hex::decode(hex_key).unwrap()
    };
    let expired_sig = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("airlock replay link v1\n{session}\n{expired}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let page = f.get(&format!("/sessions/{session}?exp={expired}&sig={expired_sig}"), None).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("expired"), "{}", page.body);

    // A signed-in reviewer opens the same URL as usual (the link adds nothing to, and takes nothing from, a sign-in).
    let rita = f.login(RITA, RITA_PASSWORD).await;
    let page = f.get(&format!("/sessions/{session}?exp={expired}&sig={expired_sig}"), Some(&rita)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out") && !page.body.contains("shared link"));
    client.cancel().await.unwrap();
    other.cancel().await.unwrap();
}

/// The value of the metric line `series` (name plus exact labels) in a Prometheus text page.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `[metrics]`: `/metrics` on the main listener needs the token; the separate listener serves it without one.
/// Calls are counted by tool, status and rule, the decision latency histogram fills, masking is counted by
/// detector, the pending gauge follows the store, and an approval's wait is observed when it is decided.
#[tokio::test]
async fn metrics_count_calls_masking_and_approvals_behind_a_token() {
    const TOKEN: &str = "scrape-token-5c0a2f6e9d";
    let port = airlock_tests::airlock::free_port();
    let f =
        Fixture::start(&format!("\n[metrics]\ntoken = {{ inline = \"{TOKEN}\" }}\nlisten = \"127.0.0.1:{port}\"\n"))
            .await;
    let scrape = |token: Option<&'static str>| {
        let mut req = f.http.get(f.url("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // Without the token, or with a wrong one: 401, audited, and no figures.
    for token in [None, Some("wrong-token")] {
        let r = scrape(token).await.unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        assert!(!r.text().await.unwrap().contains("airlock_"));
    }
    let refused = store_events(&f.airlock.store_url, "auth_failed").await;
    assert_eq!(refused.iter().filter(|e| e["context"] == "metrics").count(), 2, "{refused:?}");

    let client = f.client().await;
    let read = sql(&client, "SELECT name, email FROM customers ORDER BY id").await;
    assert_eq!(structured(&read)["status"], "completed", "{}", seen(&read));
    let blocked = sql(&client, "DROP TABLE customers").await;
    assert_eq!(structured(&blocked)["status"], "blocked", "{}", seen(&blocked));
    let held = sql(&client, "DELETE FROM orders").await;
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();

    let r = scrape(Some(TOKEN)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = r.text().await.unwrap();
    let calls = |status: &str, rule: &str| {
        metric(&text, &format!("airlock_tool_calls_total{{tool=\"sql_query\",status=\"{status}\",rule=\"{rule}\"}}"))
    };
    assert_eq!(calls("completed", "allow-reads-and-bounded-writes"), Some(1.0), "{text}");
    assert_eq!(calls("blocked", "block-destructive-ddl"), Some(1.0), "{text}");
    assert_eq!(calls("pending_approval", "approve-unbounded-writes"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "airlock_approvals_pending"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "airlock_policy_decision_seconds_count"), Some(3.0), "{text}");
    assert_eq!(metric(&text, "airlock_tool_call_duration_seconds_count{tool=\"sql_query\"}"), Some(3.0));
    assert_eq!(metric(&text, "airlock_masked_values_total{detector=\"email\"}"), Some(2.0), "{text}");
    assert!(!text.contains(ADA_EMAIL) && !text.contains("DELETE FROM"), "no recorded data in metrics");

    // alice approves in the inbox: the held call runs, the gauge drops, the wait is observed.
    let alice = f.login(ALICE, ALICE_PASSWORD).await;
    let csrf = f.get("/approvals", Some(&alice)).await.csrf();
    let origin = f.origin();
    let form = [("csrf", csrf.as_str()), ("decision", "approve")];
    assert_eq!(f.post(&format!("/approvals/{id}/vote"), Some(&alice), Some(&origin), &form).await.status, 200);
    let args = json!({"approval_id": id, "wait_s": 20}).as_object().cloned().unwrap();
    let done = client.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));

    // The separate listener needs no token (its address is the access control).
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(metric(&text, "airlock_approvals_pending"), Some(0.0), "{text}");
    assert_eq!(metric(&text, "airlock_approval_wait_seconds_count{outcome=\"approved\"}"), Some(1.0), "{text}");
    assert_eq!(
        metric(
            &text,
            "airlock_tool_calls_total{tool=\"sql_query\",status=\"completed\",rule=\"approve-unbounded-writes\"}"
        ),
        Some(1.0),
        "the approved call, counted when it ran: {text}"
    );
    client.cancel().await.unwrap();
}

impl Fixture {
    /// A form POST to another replica at `base` (`http://addr`), from that replica's own origin.
    async fn post_at(&self, base: &str, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", base)
            .body(serde_urlencoded::to_string(form).unwrap());
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.page(req.send().await.unwrap()).await
    }

    async fn get_at(&self, base: &str, path: &str, cookie: &str) -> Page {
        self.page(self.http.get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap()).await
    }
}

/// Two `airlock serve` replicas on one Postgres store: an approval given on replica B releases the agent waiting
/// on replica A; then A is killed (SIGKILL) with a call held, B approves it and runs it, and the agent, reconnected
/// to B, gets the result; the call ran exactly once and the session's chain still verifies.
#[tokio::test]
async fn two_replicas_share_approvals_and_one_can_be_killed() {
    let mut f = Fixture::start_on("", Some(airlock_tests::postgres_db().await)).await;
    let replica_b = f.airlock.serve();
    let b = format!("http://{}", replica_b.addr);
    let signed_in = f
        .post_at(&b, "/login", None, &[("subject", ALICE), ("password", ALICE_PASSWORD), ("next", "/approvals")])
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let alice = cookie_of(&signed_in);
    let csrf = f.get_at(&b, "/approvals", &alice).await.csrf();

    // The agent on A waits; alice approves on B; A's waiter is woken (LISTEN/NOTIFY) and gets the result.
    let on_a = f.client().await;
    let held = sql(&on_a, "DELETE FROM orders").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    let peer = on_a.peer().clone();
    let waiter_id = id.clone();
    let waiter = tokio::spawn(async move {
        let args = json!({"approval_id": waiter_id, "wait_s": 30}).as_object().cloned().unwrap();
        peer.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap()
    });
    // The inbox on B lists the call held on A: both read the one store.
    let inbox = f.get_at(&b, "/approvals", &alice).await;
    assert!(inbox.body.contains(&id), "{}", inbox.body);
    let voted = f
        .post_at(&b, &format!("/approvals/{id}/vote"), Some(&alice), &[("csrf", &csrf), ("decision", "approve")])
        .await;
    assert_eq!(voted.status, 200, "{}", voted.body);
    let approved_at = std::time::Instant::now();
    let done = waiter.await.unwrap();
    eprintln!("agent on replica A released {:?} after the approval on replica B", approved_at.elapsed());
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert_eq!(airlock_tests::count(&f.airlock.target.url, "SELECT count(*) FROM orders").await, 0);

    // A call held on A, then A dies. The approval lives in the store: B takes the vote and runs the call.
    airlock_tests::exec(&f.airlock.target.url, "INSERT INTO orders VALUES (7, 1, 100), (8, 2, 200);").await;
    let held = sql(&on_a, "DELETE FROM orders").await;
    assert_eq!(structured(&held)["status"], "pending_approval", "{}", seen(&held));
    let id = structured(&held)["approval_id"].as_str().unwrap().to_owned();
    let session = structured(&held)["session_id"].as_str().unwrap().to_owned();
    f.server.child.kill().unwrap();
    f.server.child.wait().unwrap();
    let voted = f
        .post_at(&b, &format!("/approvals/{id}/vote"), Some(&alice), &[("csrf", &csrf), ("decision", "approve")])
        .await;
    assert_eq!(voted.status, 200, "{}", voted.body);
    // The agent reconnects to B (as a load balancer would send it) and asks for its approval.
    let on_b = http_client(&replica_b, &f.token).await;
    let args = json!({"approval_id": id, "wait_s": 30}).as_object().cloned().unwrap();
    let done = on_b.call_tool(CallToolRequestParams::new("await_approval").with_arguments(args)).await.unwrap();
    assert_eq!(structured(&done)["status"], "completed", "{}", seen(&done));
    assert!(seen(&done).contains("2 row"), "the DELETE ran once, on B: {}", seen(&done));
    assert_eq!(airlock_tests::count(&f.airlock.target.url, "SELECT count(*) FROM orders").await, 0);
    // Nothing recorded was lost: the session begun on A, finished by B, verifies end to end.
    let verified = f.airlock.run(&["sessions", "verify", &session]);
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let results: Vec<_> = store_events(&f.airlock.store_url, "result").await;
    assert_eq!(results.iter().filter(|r| r["approval_id"] == id.as_str()).count(), 1, "one result for the call");
    on_b.cancel().await.ok();
}
