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
