//! The Slack approval flow end to end at library level: a real gateway (SQLite store and target) with the
//! Slack bot's notifier talking to the fake Slack, and clicks arriving as signed HTTP requests on the bot's
//! router (or through the fake's Socket Mode WebSocket).

mod slack_support;

use std::time::Duration;

use airlock_tests::fake_slack::{CHANNEL_ID, Failure};
use approval_bot::slack::blocks::{APPROVE_ACTION, DENY_ACTION};
use approval_bot::slack::signature;
use gateway_core::approval::{ApprovalState, VoteRefusal};
use gateway_core::pipeline::CallStatus;
use gateway_core::record::AUDIT_SESSION;
use serde_json::{Value, json};
use slack_support::{ALICE, BOB, MALLORY, NOBODY, Options, REQUESTER, SIGNING_SECRET, env};
use tokio_util::sync::CancellationToken;

const WAIT: Option<Duration> = Some(Duration::from_secs(15));

fn texts(calls: &[airlock_tests::fake_slack::Call]) -> Vec<String> {
    calls.iter().map(|c| c.body["text"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn request_message_has_the_details_and_buttons_carrying_the_approval_id() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    let post = &e.fake.calls_of("chat.postMessage")[0];
    assert!(post.authorized, "bot token sent as bearer");
    assert_eq!(post.body["channel"], "#airlock-approvals");
    let blocks = serde_json::to_string(&post.body["blocks"]).expect("json");
    for needle in [
        "test-agent",
        "DELETE FROM t",
        "approve-unbounded-writes",
        "without a WHERE",
        "dba, oncall",
        "quorum 1",
        "<!date^",
    ] {
        assert!(blocks.contains(needle), "{needle} missing from {blocks}");
    }
    let actions =
        post.body["blocks"].as_array().expect("blocks").iter().find(|b| b["type"] == "actions").expect("actions");
    let buttons = actions["elements"].as_array().expect("elements");
    assert_eq!(buttons[0]["action_id"], APPROVE_ACTION);
    assert_eq!(buttons[0]["style"], "primary");
    assert_eq!(buttons[0]["value"], id.as_str());
    assert_eq!(buttons[1]["action_id"], DENY_ACTION);
    assert_eq!(buttons[1]["style"], "danger");
    assert_eq!(buttons[1]["value"], id.as_str());
    assert!(buttons[2]["url"].as_str().expect("review link").ends_with(&format!("/approvals/{id}")));
    // The gateway stored the notifier's reference: channel id (not name) and ts.
    let rec = e.gw.broker().get(&id).await.expect("store").expect("approval");
    let (channel, ts) = e.request_message();
    assert_eq!(channel, CHANNEL_ID);
    assert_eq!(rec.notifier_ref, Some(format!("{channel}:{ts}")));
}

#[tokio::test]
async fn approve_executes_the_call_once_updates_the_message_and_replies_with_the_replay_link() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.rows().await, 3, "nothing runs before approval");

    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let out = e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    assert_eq!(out.approved_by, vec!["alice@example.com".to_owned()]);
    assert_eq!(e.rows().await, 0);

    // The request message is updated in place: status, who, and no buttons.
    let (channel, ts) = e.request_message();
    let update = e.fake.wait_calls("chat.update", 1).await.remove(0);
    assert_eq!(
        (update.body["channel"].as_str(), update.body["ts"].as_str()),
        (Some(channel.as_str()), Some(ts.as_str()))
    );
    let blocks = serde_json::to_string(&update.body["blocks"]).expect("json");
    assert!(blocks.contains("Approved") && blocks.contains("alice@example.com"), "{blocks}");
    assert!(!blocks.contains(APPROVE_ACTION) && !blocks.contains("\"actions\""), "buttons removed: {blocks}");

    // The outcome goes into the thread, with the replay link.
    let posts = e.fake.wait_calls("chat.postMessage", 2).await;
    let reply = &posts[1];
    assert_eq!(reply.body["thread_ts"].as_str(), Some(ts.as_str()));
    let text = reply.body["text"].as_str().unwrap_or("");
    assert!(text.contains("completed: 3 row(s) affected"), "{text}");
    assert!(text.contains(&format!("/sessions/{}#call-", e.caller.session_id)), "{text}");

    // Clicking again (double click, or someone else later) executes nothing more.
    airlock_tests::exec(&e.target, "INSERT INTO t VALUES (4);").await;
    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 200);
    assert_eq!(e.click(BOB, APPROVE_ACTION, &id).await, 200);
    let eph = e.ephemerals(2).await;
    let done = VoteRefusal::AlreadyDecided { state: ApprovalState::Executed }.explain();
    assert_eq!(texts(&eph), vec![done.clone(), done]);
    assert_eq!(e.rows().await, 1, "the approved DELETE ran exactly once");
    assert!(e.gw.recorder().verify(&e.caller.session_id).await.expect("verify").is_valid());
}

#[tokio::test]
async fn concurrent_double_click_executes_once() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    let (a, b) = tokio::join!(e.click(ALICE, APPROVE_ACTION, &id), e.click(ALICE, APPROVE_ACTION, &id));
    assert_eq!((a, b), (200, 200));
    let out = e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    // The second click is refused (already voted or already decided) and said so to the clicker.
    let eph = e.ephemerals(1).await;
    assert_eq!(eph.len(), 1);
    assert_eq!(eph[0].body["user"], ALICE);
    let results =
        e.gw.recorder()
            .events(&e.caller.session_id)
            .await
            .expect("events")
            .into_iter()
            .filter(|ev| ev.kind == "result" && ev.payload.contains(&id))
            .count();
    assert_eq!(results, 1, "one execution recorded");
}

#[tokio::test]
async fn deny_opens_a_modal_and_its_reason_denies_the_call() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.click(BOB, DENY_ACTION, &id).await, 200);
    let opened = e.fake.wait_calls("views.open", 1).await;
    assert_eq!(opened[0].body["trigger_id"], "1234567890.0987654321.abcdef0123456789");
    assert_eq!(opened[0].body["view"]["type"], "modal");
    assert_eq!(e.state(&id).await, ApprovalState::Pending, "clicking Deny alone decides nothing");

    assert_eq!(e.submit_deny_modal(0, BOB, "not during business hours").await, 200);
    let out = e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(out.status, CallStatus::Denied);
    let msg = out.message.unwrap_or_default();
    assert!(msg.contains("bob@example.com") && msg.contains("not during business hours"), "{msg}");
    assert_eq!(e.rows().await, 3, "nothing executed");

    let update = e.fake.wait_calls("chat.update", 1).await.remove(0);
    let blocks = serde_json::to_string(&update.body["blocks"]).expect("json");
    assert!(blocks.contains("Denied") && blocks.contains("not during business hours"), "{blocks}");
    assert!(!blocks.contains(APPROVE_ACTION));
}

#[tokio::test]
async fn deny_modal_with_a_blank_reason_stays_open_with_an_error() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.click(BOB, DENY_ACTION, &id).await, 200);
    let (status, answer) = e.post_interaction_answer(&e.deny_submission(0, BOB, "   ").await).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).expect("JSON answer");
    assert_eq!(answer["response_action"], "errors");
    assert_eq!(answer["errors"]["airlock_reason"], VoteRefusal::ReasonRequired.explain().as_str());
    let rec = e.gw.broker().get(&id).await.expect("store").expect("approval");
    assert!(rec.votes.is_empty() && rec.state == ApprovalState::Pending);
}

#[tokio::test]
async fn self_approval_is_refused_with_an_explanation() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.click(REQUESTER, APPROVE_ACTION, &id).await, 200);
    let eph = e.ephemerals(1).await;
    assert_eq!(eph[0].body["user"], REQUESTER);
    assert_eq!(eph[0].body["channel"], CHANNEL_ID);
    assert_eq!(texts(&eph), vec![VoteRefusal::SelfApproval.explain()]);
    assert_eq!(e.state(&id).await, ApprovalState::Pending);
    assert_eq!(e.rows().await, 3);
}

#[tokio::test]
async fn non_approver_is_refused_with_the_approver_groups() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.click(MALLORY, APPROVE_ACTION, &id).await, 200);
    let eph = e.ephemerals(1).await;
    let expected = VoteRefusal::NotAnApprover { approvers: vec!["dba".into(), "oncall".into()] }.explain();
    assert_eq!(texts(&eph), vec![expected]);
    assert_eq!(e.state(&id).await, ApprovalState::Pending);
}

#[tokio::test]
async fn unmapped_slack_user_is_refused_for_approve_and_deny() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    assert_eq!(e.click(NOBODY, APPROVE_ACTION, &id).await, 200);
    assert_eq!(e.click(NOBODY, DENY_ACTION, &id).await, 200);
    let eph = e.ephemerals(2).await;
    assert_eq!(texts(&eph), vec![VoteRefusal::UnknownUser.explain(), VoteRefusal::UnknownUser.explain()]);
    assert!(e.fake.calls_of("views.open").is_empty(), "no modal for an unmapped user");
    assert_eq!(e.state(&id).await, ApprovalState::Pending);
}

#[tokio::test]
async fn forged_signature_and_stale_timestamp_are_refused_and_change_nothing() {
    let e = env(Options::default()).await;
    let id = e.held_delete().await;
    let payload = e.block_actions(ALICE, APPROVE_ACTION, &id);
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form");
    let now = signature::now_s();

    let forged = signature::sign("not-the-secret", &now.to_string(), body.as_bytes());
    assert_eq!(e.post_raw("/slack/interactions", body.clone(), &now.to_string(), &forged).await, 401);
    let stale_ts = (now - 6 * 60).to_string();
    let stale = signature::sign(SIGNING_SECRET, &stale_ts, body.as_bytes());
    assert_eq!(e.post_raw("/slack/interactions", body.clone(), &stale_ts, &stale).await, 401);
    let future_ts = (now + 6 * 60).to_string();
    let future = signature::sign(SIGNING_SECRET, &future_ts, body.as_bytes());
    assert_eq!(e.post_raw("/slack/interactions", body.clone(), &future_ts, &future).await, 401);
    // A valid signature over a different body does not carry over.
    let valid = signature::sign(SIGNING_SECRET, &now.to_string(), body.as_bytes());
    assert_eq!(e.post_raw("/slack/interactions", format!("{body}&x=1"), &now.to_string(), &valid).await, 401);

    // Each refusal is in the audit session.
    let audit = e.gw.recorder().events(AUDIT_SESSION).await.expect("audit events");
    let refused = audit.iter().filter(|ev| ev.kind == "auth_failed" && ev.payload.contains("slack signature")).count();
    assert_eq!(refused, 4, "{audit:#?}");

    // Nothing changed: no vote, no message, still pending, rows intact. (A real click proves the route works.)
    let rec = e.gw.broker().get(&id).await.expect("store").expect("approval");
    assert!(rec.votes.is_empty());
    assert_eq!(rec.state, ApprovalState::Pending);
    assert!(e.fake.calls_of("chat.postEphemeral").is_empty() && e.fake.calls_of("chat.update").is_empty());
    assert_eq!(e.rows().await, 3);
    assert_eq!(e.post_raw("/slack/interactions", body, &now.to_string(), &valid).await, 200);
    e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(e.rows().await, 0);
}

#[tokio::test]
async fn quorum_of_two_needs_two_different_people() {
    let e = env(Options {
        approval: Some("approval: { approvers: [dba, oncall], quorum: 2, timeout: 15m }"),
        ..Options::default()
    })
    .await;
    let id = e.held_delete().await;
    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let eph = e.ephemerals(1).await;
    assert!(texts(&eph)[0].contains("1 of 2"), "{:?}", texts(&eph));
    assert_eq!(e.state(&id).await, ApprovalState::Pending);

    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 200);
    let eph = e.ephemerals(2).await;
    assert_eq!(texts(&eph)[1], VoteRefusal::AlreadyVoted.explain());
    assert_eq!(e.state(&id).await, ApprovalState::Pending);
    assert_eq!(e.rows().await, 3);

    assert_eq!(e.click(BOB, APPROVE_ACTION, &id).await, 200);
    let out = e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    let mut by = out.approved_by.clone();
    by.sort();
    assert_eq!(by, vec!["alice@example.com".to_owned(), "bob@example.com".to_owned()]);
    assert_eq!(e.rows().await, 0);
}

#[tokio::test]
async fn rate_limited_post_is_retried_after_retry_after() {
    let e = env(Options::default()).await;
    e.fake.fail_next("chat.postMessage", Failure::RateLimited(1));
    e.fake.fail_next("chat.postMessage", Failure::Status(503));
    let started = std::time::Instant::now();
    let id = e.held_delete().await;
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    let posts = e.fake.calls_of("chat.postMessage");
    assert_eq!(posts.iter().map(|c| c.status).collect::<Vec<_>>(), vec![429, 503, 200]);
    assert!(e.gw.broker().get(&id).await.expect("store").expect("approval").notifier_ref.is_some());
}

#[tokio::test]
async fn slack_error_on_post_fails_the_held_call_closed_with_the_reason() {
    let e = env(Options::default()).await;
    e.fake.fail_next("chat.postMessage", Failure::Error("channel_not_found".into()));
    let out = e.delete_all().await;
    assert_eq!(out.status, CallStatus::Error);
    let msg = out.message.unwrap_or_default();
    assert!(msg.contains("could not be posted") && msg.contains("channel_not_found"), "{msg}");
    assert_eq!(e.fake.calls_of("chat.postMessage").len(), 1, "ok:false is not retried");
    let id = out.approval_id;
    assert!(id.is_none() || e.state(id.as_deref().unwrap_or_default()).await.is_decided());
    assert_eq!(e.rows().await, 3);
}

#[tokio::test]
async fn expired_request_is_marked_on_the_message_and_late_clicks_are_told() {
    let e = env(Options {
        approval: Some("approval: { approvers: [dba, oncall], quorum: 1, timeout: 1s }"),
        ..Options::default()
    })
    .await;
    let id = e.held_delete().await;
    e.wait_state(&id, ApprovalState::Expired).await;
    e.gw.sweep().await.expect("sweep");
    let update = e.fake.wait_calls("chat.update", 1).await.remove(0);
    let blocks = serde_json::to_string(&update.body["blocks"]).expect("json");
    assert!(blocks.contains("Expired") && !blocks.contains(APPROVE_ACTION), "{blocks}");

    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 200);
    assert_eq!(e.click(BOB, DENY_ACTION, &id).await, 200);
    let eph = e.ephemerals(2).await;
    assert_eq!(texts(&eph), vec![VoteRefusal::Expired.explain(), VoteRefusal::Expired.explain()]);
    assert!(e.fake.calls_of("views.open").is_empty(), "no reason asked for an expired request");
    assert_eq!(e.rows().await, 3);
}

#[tokio::test]
async fn events_endpoint_answers_url_verification_when_signed() {
    let e = env(Options::default()).await;
    let body = json!({ "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" }).to_string();
    let ts = signature::now_s().to_string();
    let sig = signature::sign(SIGNING_SECRET, &ts, body.as_bytes());
    let r = e
        .http
        .post(format!("{}/slack/events", e.url))
        .header("content-type", "application/json")
        .header(signature::TIMESTAMP_HEADER, &ts)
        .header(signature::SIGNATURE_HEADER, &sig)
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    assert_eq!(e.post_raw("/slack/events", body, &ts, "v0=00").await, 401);
}

#[tokio::test]
async fn socket_mode_interactive_envelope_approves_the_call() {
    let e = env(Options { socket_mode: true, ..Options::default() }).await;
    let cancel = CancellationToken::new();
    let task = e.bot.spawn_socket_mode(e.gw.clone(), cancel.clone());
    let id = e.held_delete().await;

    let opened = e.fake.wait_calls("apps.connections.open", 1).await;
    assert!(opened[0].authorized, "app-level token used for apps.connections.open");
    // Slack asks for a reconnect now and then: the bot opens a new connection and carries on.
    e.fake.wait_sockets(1).await;
    e.fake.push(json!({ "type": "disconnect", "reason": "refresh_requested" })).await;
    e.fake.wait_sockets(2).await;
    assert_eq!(e.fake.calls_of("apps.connections.open").len(), 2, "a fresh URL for each connection");

    let envelope = e.fake.push_interactive(e.block_actions(ALICE, APPROVE_ACTION, &id)).await;
    e.fake.wait_ack(&envelope).await;
    let out = e.gw.await_approval(&e.caller, &id, WAIT, &|_| {}).await;
    assert_eq!(out.status, CallStatus::Completed, "{:?}", out.message);
    assert_eq!(e.rows().await, 0);

    // The HTTP route is not how clicks arrive in socket mode: without a signing secret it refuses everything.
    assert_eq!(e.click(ALICE, APPROVE_ACTION, &id).await, 401);
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task.stopped()).await.expect("socket mode stops on cancel");
}
