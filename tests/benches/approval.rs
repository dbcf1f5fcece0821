//! Approval path latency through the real binary: the time from the Slack click's HTTP request (a signed
//! `block_actions` POST to `airlock serve`'s `/slack/interactions`, sent by this process) to the waiting agent
//! receiving the executed result. `airlock serve` runs with the Slack bot in HTTP mode against the fake Slack
//! (`airlock_tests::fake_slack`), a Postgres target with the test shop, the default SQLite store, and the
//! shipped policies, where an unbounded `DELETE FROM orders` needs a DBA's approval.
//!
//! Two ways of waiting, interleaved (one approval of each per round, alternating which goes first):
//! - in-flight: the agent's `sql_query` itself is held (`in_call_wait = 60s`) and returns the executed result;
//! - await_approval: the held call returned `pending_approval` (`in_call_wait = 100ms`) and the agent is waiting
//!   in `await_approval` (`wait_s = 30`) when the click arrives.
//!
//! Besides the click-to-result time, the table gives the click's own HTTP answer time (Slack needs the ack within
//! 3 s; the vote runs after it) and the time from the agent's call to the approval request reaching Slack.
//!
//! Run: `AIRLOCK_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p airlock-tests --bench approval`
//! (`AIRLOCK_BENCH_APPROVALS`, default 40, approvals per way of waiting).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use airlock_tests::airlock::{Airlock, Server, Target};
use airlock_tests::bench::{Stats, env_usize, machine, ms};
use airlock_tests::fake_slack::{BOT_TOKEN, FakeSlack};
use approval_bot::slack::blocks::APPROVE_ACTION;
use approval_bot::slack::signature;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const ALICE: &str = "UALICE";
const HELD: &str = "DELETE FROM orders";

struct Setup {
    label: &'static str,
    fake: FakeSlack,
    server: Server,
    client: common::Client,
    /// `await_approval` after a `pending_approval` result, instead of waiting in the call.
    awaits: bool,
    _airlock: Airlock,
}

/// One measured approval.
struct Sample {
    /// Agent's call sent → approval request posted to Slack.
    posted: Duration,
    /// Click POST sent → its HTTP answer.
    ack: Duration,
    /// Click POST sent → the agent has the executed result.
    click_to_result: Duration,
}

async fn setup(label: &'static str, target: &str, in_call_wait: &str, awaits: bool) -> Setup {
    let fake = FakeSlack::start().await;
    let airlock = Airlock::new(Target { kind: "postgres", url: target.to_owned() }, None);
    let mut config = std::fs::read_to_string(&airlock.config).unwrap();
    config.push_str(&format!(
        "\n[approval]\nin_call_wait = \"{in_call_wait}\"\nmax_await = \"60s\"\n\n[slack]\n\
         bot_token = {{ inline = \"{BOT_TOKEN}\" }}\nsigning_secret = {{ inline = \"{SIGNING_SECRET}\" }}\n\
         mode = \"http\"\napi_base_url = \"{}\"\n\n[[humans]]\nsubject = \"alice@example.com\"\ngroups = [\"dba\"]\n\
         slack_user = \"{ALICE}\"\n",
        fake.api_base_url()
    ));
    std::fs::write(&airlock.config, config).unwrap();
    let token = airlock.create_token("bench-agent", "agents");
    let server = airlock.serve();
    let client = common::http_client(&server, &token).await;
    Setup { label, fake, server, client, awaits, _airlock: airlock }
}

/// The value of the Approve button in a posted request message: the approval id.
fn approve_value(blocks: &Value) -> Option<String> {
    match blocks {
        Value::Object(m) if m.get("action_id").and_then(Value::as_str) == Some(APPROVE_ACTION) => {
            m.get("value").and_then(Value::as_str).map(str::to_owned)
        }
        Value::Object(m) => m.values().find_map(approve_value),
        Value::Array(a) => a.iter().find_map(approve_value),
        _ => None,
    }
}

/// A signed `block_actions` click by alice on request message `(channel, ts)`, as Slack sends it.
fn click_request(
    http: &reqwest::Client,
    s: &Setup,
    channel: &str,
    ts: &str,
    approval_id: &str,
) -> reqwest::RequestBuilder {
    let payload = json!({
        "type": "block_actions",
        "user": { "id": ALICE, "username": "ualice", "name": "ualice", "team_id": "T0FAKE" },
        "api_app_id": "A0FAKE",
        "container": { "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false },
        "trigger_id": "1234567890.0987654321.abcdef0123456789",
        "team": { "id": "T0FAKE", "domain": "airlock-bench" },
        "channel": { "id": channel, "name": "airlock-approvals" },
        "message": { "type": "message", "ts": ts, "text": "Approval needed" },
        "actions": [{
            "action_id": APPROVE_ACTION, "block_id": "airlock_decision", "value": approval_id, "type": "button",
            "text": { "type": "plain_text", "text": "Approve", "emoji": true }, "action_ts": "1700000001.000200",
        }],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let now = signature::now_s().to_string();
    let sig = signature::sign(SIGNING_SECRET, &now, body.as_bytes());
    http.post(format!("http://{}/slack/interactions", s.server.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(signature::TIMESTAMP_HEADER, now)
        .header(signature::SIGNATURE_HEADER, sig)
        .body(body)
}

async fn tool(client: &common::Client, name: &'static str, args: Value) -> CallToolResult {
    let args = args.as_object().cloned().unwrap();
    client.call_tool(CallToolRequestParams::new(name).with_arguments(args)).await.unwrap()
}

/// One held call approved by a click; `n` is how many request messages were posted before it.
async fn approve_once(s: &Setup, http: &reqwest::Client, n: usize) -> Sample {
    let sent = Instant::now();
    let call = async {
        let r = tool(&s.client, "sql_query", json!({ "connection": "shop", "query": HELD })).await;
        (r, Instant::now())
    };
    let click = async {
        let posts = s
            .fake
            .wait_for("the request message", |calls| {
                calls.iter().filter(|c| c.method == "chat.postMessage" && c.body.get("blocks").is_some()).count() > n
            })
            .await;
        let posted = sent.elapsed();
        let post =
            posts.into_iter().filter(|c| c.method == "chat.postMessage" && c.body.get("blocks").is_some()).nth(n);
        let post = post.unwrap();
        let id = approve_value(&post.body["blocks"]).expect("approve button");
        let (channel, ts) =
            (post.answer["channel"].as_str().unwrap().to_owned(), post.answer["ts"].as_str().unwrap().to_owned());
        (posted, id, channel, ts)
    };
    if s.awaits {
        let ((held, _), (posted, id, channel, ts)) = tokio::join!(call, click);
        assert_eq!(common::structured(&held)["status"], "pending_approval", "{}", common::seen(&held));
        assert_eq!(common::structured(&held)["approval_id"], id.as_str());
        let waiting = async {
            let r = tool(&s.client, "await_approval", json!({ "approval_id": id, "wait_s": 30 })).await;
            (r, Instant::now())
        };
        let clicking = async {
            // Let await_approval reach the server and start waiting.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t0 = Instant::now();
            let status = click_request(http, s, &channel, &ts, &id).send().await.unwrap().status();
            assert_eq!(status, 200);
            (t0, t0.elapsed())
        };
        let ((done, at), (t0, ack)) = tokio::join!(waiting, clicking);
        assert_eq!(common::structured(&done)["status"], "completed", "{}", common::seen(&done));
        Sample { posted, ack, click_to_result: at - t0 }
    } else {
        let clicking = async {
            let (posted, id, channel, ts) = click.await;
            let t0 = Instant::now();
            let status = click_request(http, s, &channel, &ts, &id).send().await.unwrap().status();
            assert_eq!(status, 200);
            (posted, t0, t0.elapsed())
        };
        let ((done, at), (posted, t0, ack)) = tokio::join!(call, clicking);
        assert_eq!(common::structured(&done)["status"], "completed", "{}", common::seen(&done));
        Sample { posted, ack, click_to_result: at - t0 }
    }
}

#[tokio::main]
async fn main() {
    let approvals = env_usize("APPROVALS", 40);
    let db = airlock_tests::postgres_db().await;
    airlock_tests::exec(&db.url, common::SHOP_SQL).await;
    let setups = [
        setup("in-flight sql_query (in_call_wait 60s)", &db.url, "60s", false).await,
        setup("await_approval after pending_approval", &db.url, "100ms", true).await,
    ];
    let http = reqwest::Client::new();
    let warmup = 2;
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
    let mut posted = [0usize; 2];
    for round in 0..warmup + approvals {
        for k in 0..2 {
            let i = (round + k) % 2;
            let sample = approve_once(&setups[i], &http, posted[i]).await;
            posted[i] += 1;
            if round >= warmup {
                samples[i].push(sample);
            }
        }
    }
    println!("# Approval path ({})", machine());
    println!();
    println!(
        "`{HELD}` held by `approve-unbounded-writes`, approved by a signed Slack click (fake Slack, HTTP mode); \
         {approvals} approvals per row after {warmup} warm-up, interleaved. Target Postgres, store SQLite."
    );
    println!();
    println!(
        "| agent waits in | click → result p50 ms | p99 ms | click HTTP answer p50 ms | call → request in Slack p50 ms |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (s, samples) in setups.iter().zip(samples) {
        let whole = |f: fn(&Sample) -> Duration| {
            Stats::new(samples.iter().map(f).collect(), samples.iter().map(f).sum::<Duration>())
        };
        let result = whole(|x| x.click_to_result);
        let ack = whole(|x| x.ack);
        let posted = whole(|x| x.posted);
        println!("| {} | {} | {} | {} | {} |", s.label, ms(result.p50), ms(result.p99), ms(ack.p50), ms(posted.p50));
    }
    for s in setups {
        let _ = s.client.cancel().await;
    }
}
