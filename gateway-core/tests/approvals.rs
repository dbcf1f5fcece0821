//! Held calls end to end: the approval broker's rules, durability and exactly-once execution, through the
//! pipeline with a recording notifier.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gateway_core::approval::{
    ApprovalNotice, ApprovalState, ApprovalUpdate, Notifier, VoteDecision, VoteOutcome, VoteRefusal, VoteSource,
};
use gateway_core::config::Config;
use gateway_core::identity::Identity;
use gateway_core::pipeline::{CallStatus, Caller, Gateway, SqlRequest, ToolOutcome, ToolRequest};
use sqlx::Connection;

#[derive(Default)]
struct RecordingNotifier {
    notices: Mutex<Vec<ApprovalNotice>>,
    decided: Mutex<Vec<ApprovalUpdate>>,
    finished: Mutex<Vec<ApprovalUpdate>>,
    fail: bool,
    posted: tokio::sync::Notify,
}

impl RecordingNotifier {
    /// Updates are posted from spawned tasks; wait (bounded) until `n` of a kind have arrived.
    async fn wait_for(&self, list: &Mutex<Vec<ApprovalUpdate>>, n: usize) -> Vec<ApprovalUpdate> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.posted.notified();
            let got = list.lock().expect("lock").clone();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn request_approval(&self, notice: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
        if self.fail {
            return Err(gateway_core::Error::Target {
                connection: "slack".into(),
                message: "channel_not_found".into(),
            });
        }
        self.notices.lock().expect("lock").push(notice.clone());
        Ok(Some(format!("C1:{}", notice.approval_id)))
    }
    async fn approval_decided(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        self.decided.lock().expect("lock").push(update.clone());
        self.posted.notify_waiters();
        Ok(())
    }
    async fn call_finished(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        self.finished.lock().expect("lock").push(update.clone());
        self.posted.notify_waiters();
        Ok(())
    }
}

const POLICY: &str = r##"
version: 1
rules:
  - { name: reads, match: { sql: [read, insert, update, delete] }, action: allow }
  - name: one-approver
    match: { sql: [delete_without_where] }
    action: require_approval
    message: deletes every row
    approval: { approvers: [dba], quorum: 1, timeout: 15m, channel: "#db" }
  - name: two-approvers
    match: { sql: [update_without_where] }
    action: require_approval
    message: updates every row
    approval: { approvers: [dba], quorum: 2, timeout: 15m }
  - name: quick-expiry
    match: { sql: [ddl] }
    action: require_approval
    message: schema change
    approval: { approvers: [dba], quorum: 1, timeout: 1s }
"##;

struct Fx {
    dir: tempfile::TempDir,
    gw: Arc<Gateway>,
    notifier: Arc<RecordingNotifier>,
    agent: Caller,
}

fn config(dir: &Path) -> Config {
    let toml = format!(
        r#"
[store]
url = "sqlite://{d}/airlock.db"
[policy]
dir = "{d}/policies"
[approval]
in_call_wait = "0s"
max_await = "5s"
[connections.shop]
kind = "sqlite"
url = "sqlite://{d}/shop.db"
[[humans]]
subject = "alice"
groups = ["dba"]
slack_user = "UALICE"
[[humans]]
subject = "bob"
groups = ["dba"]
[[humans]]
subject = "mallory"
groups = ["interns"]
[[humans]]
subject = "autogen-ci"
groups = ["dba"]
"#,
        d = dir.display()
    );
    Config::parse(&toml, "test.toml", Vec::new()).expect("config")
}

async fn start(dir: &Path, notifier: Arc<RecordingNotifier>) -> Arc<Gateway> {
    Arc::new(Gateway::start(config(dir)).await.expect("start").with_notifier(notifier))
}

async fn fixture_with(notifier: RecordingNotifier) -> Fx {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("policies")).expect("mkdir");
    std::fs::write(dir.path().join("policies/test.yaml"), POLICY).expect("policy");
    let url = format!("sqlite://{}/shop.db?mode=rwc", dir.path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("shop");
    sqlx::raw_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c');")
        .execute(&mut c)
        .await
        .expect("seed");
    let notifier = Arc::new(notifier);
    let gw = start(dir.path(), notifier.clone()).await;
    let identity = Identity::agent("autogen-ci", &["agents"]);
    let session_id = gw.open_session(&identity, "test", "approvals").await.expect("session");
    Fx { dir, gw, notifier, agent: Caller { identity, session_id } }
}

async fn fixture() -> Fx {
    fixture_with(RecordingNotifier::default()).await
}

async fn call(fx: &Fx, sql: &str) -> ToolOutcome {
    fx.gw
        .call(&fx.agent, ToolRequest::Sql(SqlRequest { connection: "shop".into(), query: sql.into(), max_rows: None }))
        .await
}

async fn rows(fx: &Fx) -> i64 {
    let url = format!("sqlite://{}/shop.db", fx.dir.path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("shop");
    sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut c).await.expect("count")
}

fn human(fx: &Fx, subject: &str) -> Identity {
    fx.gw.human_by_chat(VoteSource::Web, subject).expect("mapped human")
}

async fn vote(fx: &Fx, id: &str, who: &str, d: VoteDecision, reason: Option<&str>) -> VoteOutcome {
    fx.gw.vote(id, &human(fx, who), d, reason, VoteSource::Web).await.expect("vote")
}

async fn await_result(fx: &Fx, id: &str) -> ToolOutcome {
    fx.gw.await_approval(&fx.agent, id, Some(Duration::from_secs(5)), &|_| {}).await
}

#[tokio::test]
async fn held_call_returns_pending_with_id_and_expiry_and_notifies_the_channel() {
    let fx = fixture().await;
    let out = call(&fx, "DELETE FROM t").await;
    assert_eq!(out.status, CallStatus::PendingApproval, "{:?}", out.message);
    let id = out.approval_id.clone().expect("approval id");
    assert!(out.expires_at_ms.is_some());
    assert!(out.message.as_deref().unwrap_or("").contains("await_approval"));
    let notices = fx.notifier.notices.lock().expect("lock").clone();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].approval_id, id);
    assert_eq!(notices[0].channel, "#db");
    assert_eq!(notices[0].statement, "DELETE FROM t");
    assert!(notices[0].review_url.ends_with(&format!("/approvals/{id}")));
    assert_eq!(rows(&fx).await, 3, "nothing runs before approval");
}

#[tokio::test]
async fn approval_executes_exactly_the_stored_call_once_and_reports_it() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let v = vote(&fx, &id, "alice", VoteDecision::Approve, None).await;
    assert!(matches!(v, VoteOutcome::Counted { state: ApprovalState::Approved, .. }), "{v:?}");
    let out = await_result(&fx, &id).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    assert_eq!(out.sql.as_ref().map(|s| s.rows_affected), Some(3));
    assert_eq!(out.approved_by, vec!["alice".to_owned()]);
    assert_eq!(rows(&fx).await, 0);
    // A second click and a second await change nothing.
    assert_eq!(
        vote(&fx, &id, "bob", VoteDecision::Approve, None).await,
        VoteOutcome::Refused(VoteRefusal::AlreadyDecided { state: ApprovalState::Executed })
    );
    assert_eq!(await_result(&fx, &id).await.status, CallStatus::Completed);
    let finished = fx.notifier.wait_for(&fx.notifier.finished, 1).await;
    assert_eq!(finished.len(), 1);
    assert!(finished[0].outcome.as_deref().unwrap_or("").contains("3 row(s) affected"), "{:?}", finished[0].outcome);
    let events = fx.gw.recorder().events(&fx.agent.session_id).await.expect("events");
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    // The late click is refused, and the refusal is audited too.
    assert_eq!(
        kinds,
        [
            "session_start",
            "request",
            "decision",
            "approval_requested",
            "approval_vote",
            "approval_decided",
            "result",
            "approval_vote"
        ]
    );
    assert!(fx.gw.recorder().verify(&fx.agent.session_id).await.expect("verify").is_valid());
}

#[tokio::test]
async fn concurrent_clicks_and_waiters_execute_once() {
    let fx = fixture().await;
    // Re-insert rows after each delete would hide a double execution; count executions via rows_affected instead.
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let alice = human(&fx, "alice");
    let bob = human(&fx, "bob");
    let votes = futures_util::future::join_all((0..8).map(|i| {
        let who = if i % 2 == 0 { alice.clone() } else { bob.clone() };
        let gw = fx.gw.clone();
        let id = id.clone();
        async move { gw.vote(&id, &who, VoteDecision::Approve, None, VoteSource::Slack).await.expect("vote") }
    }))
    .await;
    assert!(votes.iter().filter(|v| matches!(v, VoteOutcome::Counted { .. })).count() >= 1);
    let waits = futures_util::future::join_all((0..4).map(|_| await_result(&fx, &id))).await;
    assert!(
        waits.iter().all(|w| w.status == CallStatus::Completed),
        "{:?}",
        waits.iter().map(|w| w.status).collect::<Vec<_>>()
    );
    for _ in 0..3 {
        fx.gw.sweep().await.expect("sweep");
    }
    let results = fx.gw.recorder().events(&fx.agent.session_id).await.expect("events");
    assert_eq!(results.iter().filter(|e| e.kind == "result").count(), 1, "executed exactly once");
    assert_eq!(fx.notifier.wait_for(&fx.notifier.finished, 1).await.len(), 1);
}

#[tokio::test]
async fn deny_with_reason_reaches_the_agent_and_nothing_runs() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    assert_eq!(
        vote(&fx, &id, "alice", VoteDecision::Deny, None).await,
        VoteOutcome::Refused(VoteRefusal::ReasonRequired)
    );
    let v = vote(&fx, &id, "alice", VoteDecision::Deny, Some("use a WHERE clause")).await;
    assert!(matches!(v, VoteOutcome::Counted { state: ApprovalState::Denied, .. }), "{v:?}");
    let out = await_result(&fx, &id).await;
    assert_eq!(out.status, CallStatus::Denied);
    let msg = out.message.unwrap_or_default();
    assert!(msg.contains("alice") && msg.contains("use a WHERE clause"), "{msg}");
    assert_eq!(rows(&fx).await, 3);
    let decided = fx.notifier.wait_for(&fx.notifier.decided, 1).await;
    assert_eq!(decided[0].reason.as_deref(), Some("use a WHERE clause"));
}

#[tokio::test]
async fn requester_can_never_approve_their_own_call() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    // autogen-ci is also mapped as a human in group dba: still refused.
    assert_eq!(
        vote(&fx, &id, "autogen-ci", VoteDecision::Approve, None).await,
        VoteOutcome::Refused(VoteRefusal::SelfApproval)
    );
    assert_eq!(rows(&fx).await, 3);
}

#[tokio::test]
async fn only_approver_groups_may_vote_and_unmapped_users_are_unknown() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let v = vote(&fx, &id, "mallory", VoteDecision::Approve, None).await;
    assert!(matches!(v, VoteOutcome::Refused(VoteRefusal::NotAnApprover { .. })), "{v:?}");
    assert!(fx.gw.human_by_chat(VoteSource::Slack, "UNOBODY").is_none());
    assert_eq!(fx.gw.human_by_chat(VoteSource::Slack, "UALICE").map(|h| h.subject), Some("alice".into()));
    let unknown = fx.gw.vote("apr_nope", &human(&fx, "alice"), VoteDecision::Approve, None, VoteSource::Web).await;
    assert_eq!(unknown.expect("vote"), VoteOutcome::Refused(VoteRefusal::UnknownApproval));
}

#[tokio::test]
async fn quorum_two_needs_two_different_people() {
    let fx = fixture().await;
    let out = call(&fx, "UPDATE t SET v = 'x'").await;
    let id = out.approval_id.expect("id");
    assert!(matches!(
        vote(&fx, &id, "alice", VoteDecision::Approve, None).await,
        VoteOutcome::Counted { state: ApprovalState::Pending, approvals: 1, quorum: 2 }
    ));
    assert_eq!(
        vote(&fx, &id, "alice", VoteDecision::Approve, None).await,
        VoteOutcome::Refused(VoteRefusal::AlreadyVoted)
    );
    let pending = fx.gw.await_approval(&fx.agent, &id, Some(Duration::from_millis(10)), &|_| {}).await;
    assert_eq!(pending.status, CallStatus::PendingApproval);
    assert!(matches!(
        vote(&fx, &id, "bob", VoteDecision::Approve, None).await,
        VoteOutcome::Counted { state: ApprovalState::Approved, approvals: 2, .. }
    ));
    let done = await_result(&fx, &id).await;
    assert_eq!(done.status, CallStatus::Completed, "{:?}", done.message);
    assert_eq!(done.approved_by.len(), 2);
}

#[tokio::test]
async fn expiry_is_enforced_without_any_click() {
    let fx = fixture().await;
    let id = call(&fx, "CREATE TABLE u (id int)").await.approval_id.expect("id");
    let out = await_result(&fx, &id).await; // waits past the 1 s timeout
    assert_eq!(out.status, CallStatus::Expired, "{:?}", out.message);
    assert_eq!(vote(&fx, &id, "alice", VoteDecision::Approve, None).await, VoteOutcome::Refused(VoteRefusal::Expired));
    fx.gw.sweep().await.expect("sweep");
    let decided = fx.notifier.wait_for(&fx.notifier.decided, 1).await;
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].state, ApprovalState::Expired);
    let events = fx.gw.recorder().events(&fx.agent.session_id).await.expect("events");
    assert_eq!(events.last().map(|e| e.kind.as_str()), Some("result"));
    assert!(events.last().is_some_and(|e| e.payload.contains("expired")));
}

#[tokio::test]
async fn only_the_requester_or_an_admin_may_await_an_approval() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let other = Identity::agent("other-agent", &["agents"]);
    let session_id = fx.gw.open_session(&other, "test", "x").await.expect("session");
    let out = fx
        .gw
        .await_approval(&Caller { identity: other, session_id }, &id, Some(Duration::from_millis(10)), &|_| {})
        .await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.unwrap_or_default().contains("unknown approval"));
    let admin = Identity::agent("ops-bot", &["admin"]);
    let session_id = fx.gw.open_session(&admin, "test", "x").await.expect("session");
    let seen = fx
        .gw
        .await_approval(&Caller { identity: admin, session_id }, &id, Some(Duration::from_millis(10)), &|_| {})
        .await;
    assert_eq!(seen.status, CallStatus::PendingApproval);
}

#[tokio::test]
async fn pending_approval_survives_a_restart_and_still_executes() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let dir = fx.dir;
    drop(fx.gw);
    let notifier = Arc::new(RecordingNotifier::default());
    let gw = start(dir.path(), notifier.clone()).await;
    let alice = gw.human_by_chat(VoteSource::Web, "alice").expect("alice");
    assert!(matches!(
        gw.vote(&id, &alice, VoteDecision::Approve, None, VoteSource::Web).await.expect("vote"),
        VoteOutcome::Counted { .. }
    ));
    let out = gw.await_approval(&fx.agent, &id, Some(Duration::from_secs(5)), &|_| {}).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    let url = format!("sqlite://{}/shop.db", dir.path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("shop");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut c).await.expect("count");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn notifier_failure_fails_the_call_closed_and_says_why() {
    let fx = fixture_with(RecordingNotifier { fail: true, ..Default::default() }).await;
    let out = call(&fx, "DELETE FROM t").await;
    assert_eq!(out.status, CallStatus::Error);
    assert!(out.message.unwrap_or_default().contains("could not be posted"));
    assert_eq!(rows(&fx).await, 3);
}

#[tokio::test]
async fn in_call_wait_sends_progress_and_returns_the_result_when_approved_in_time() {
    let fx = fixture().await;
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    let gw = fx.gw.clone();
    let agent = fx.agent.clone();
    // A gateway with a long in-call wait, sharing the same store.
    let mut cfg = config(fx.dir.path());
    cfg.approval.in_call_wait = "10s".parse().expect("duration");
    let waiting_gw = Arc::new(Gateway::start(cfg).await.expect("start").with_notifier(fx.notifier.clone()));
    let held = tokio::spawn(async move {
        waiting_gw
            .call_with_progress(
                &agent,
                ToolRequest::Sql(SqlRequest {
                    connection: "shop".into(),
                    query: "DELETE FROM t".into(),
                    max_rows: None,
                }),
                &move |pr| p.lock().expect("lock").push(pr.message),
            )
            .await
    });
    // Wait until the request has been posted, then approve through the other replica.
    let id = loop {
        if let Some(n) = fx.notifier.notices.lock().expect("lock").first() {
            break n.approval_id.clone();
        }
        tokio::task::yield_now().await;
    };
    vote_on(&gw, &id, "alice").await;
    let out = held.await.expect("join");
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    assert!(!progress.lock().expect("lock").is_empty(), "progress was reported while waiting");
}

async fn vote_on(gw: &Arc<Gateway>, id: &str, who: &str) {
    let h = gw.human_by_chat(VoteSource::Web, who).expect("human");
    gw.vote(id, &h, VoteDecision::Approve, None, VoteSource::Web).await.expect("vote");
}

#[tokio::test]
async fn policy_that_now_blocks_the_call_wins_over_an_older_approval() {
    let fx = fixture().await;
    let id = call(&fx, "DELETE FROM t").await.approval_id.expect("id");
    let blocked = gateway_core::policy::PolicySet::from_sources(&[(
        "block.yaml".into(),
        format!("{POLICY}\n  - {{ name: freeze-deletes, match: {{ sql: [delete_without_where] }}, action: block, message: change freeze }}\n"),
    )])
    .expect("policy");
    fx.gw.set_policies(blocked);
    vote(&fx, &id, "alice", VoteDecision::Approve, None).await;
    let out = await_result(&fx, &id).await;
    assert_eq!(out.status, CallStatus::Blocked, "{:?}", out.message);
    assert_eq!(rows(&fx).await, 3);
}
