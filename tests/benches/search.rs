//! Search latency over 100k synthetic recorded calls, on SQLite and Postgres stores, through the real recorder
//! (so the call index and its full-text index are maintained exactly as in production), plus the insert
//! throughput while generating them.
//!
//! Run: `cargo bench -p airlock-tests --bench search` (Postgres when `AIRLOCK_TEST_PG_URL` is set;
//! `AIRLOCK_BENCH_CALLS` changes the number of calls). The SQLite store runs with `synchronous=normal`
//! (an fsync per checkpoint, not per commit) so generating 100k calls takes minutes, not an hour of fsyncs.
//! Postgres is analyzed after generating (as autovacuum would) so the planner has statistics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_core::identity::Identity;
use gateway_core::record::{EventKind, Recorder, SessionInfo};
use gateway_core::search::CallQuery;
use gateway_core::store::Store;
use serde_json::json;

const WRITERS: usize = 8;
const RUNS: usize = 200;
const WORDS: [&str; 16] = [
    "orders",
    "customers",
    "invoices",
    "payments",
    "shipments",
    "refunds",
    "carts",
    "products",
    "reviews",
    "coupons",
    "sessions",
    "events",
    "audit",
    "ledger",
    "stock",
    "prices",
];
const TOOLS: [&str; 3] = ["sql_query", "ssh_run", "kube_exec"];
const STATUSES: [&str; 6] = ["completed", "completed", "completed", "blocked", "denied", "error"];

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn main() {
    let calls: usize = std::env::var("AIRLOCK_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut stores = vec![("sqlite", format!("sqlite://{}/bench.db?synchronous=normal", dir.path().display()))];
        if std::env::var("AIRLOCK_TEST_PG_URL").is_ok() {
            stores.push(("postgres", airlock_tests::postgres_db().await.url));
        } else {
            eprintln!("search bench: set AIRLOCK_TEST_PG_URL to measure Postgres too");
        }
        println!("{calls} calls; {RUNS} runs per query kind; latency in ms");
        println!("{:<9} {:<28} {:>9} {:>9} {:>9}", "store", "query", "p50", "p99", "rows");
        for (name, url) in stores {
            bench_store(name, &url, calls).await;
        }
    });
}

async fn bench_store(name: &str, url: &str, calls: usize) {
    let store = Store::connect(url, None).await.expect("store");
    store.migrate().await.expect("migrate");
    let rec = Arc::new(Recorder::new(store.clone()));

    // Generate: WRITERS concurrent agents, each a session of calls, two commits per call (request + decision,
    // then output + result) as the pipeline does.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move { generate(&rec, w, calls / WRITERS).await }));
    }
    let mut events = 0;
    for t in tasks {
        events += t.await.expect("writer");
    }
    let took = started.elapsed().as_secs_f64();
    let generated = calls / WRITERS * WRITERS;
    println!(
        "{name:<9} {:<28} {:>9.0} calls/s, {:.0} events/s ({generated} calls in {took:.1} s)",
        "insert (8 writers)",
        generated as f64 / took,
        events as f64 / took
    );

    if name == "postgres" {
        // Fresh tables have no planner statistics until autovacuum's analyze runs; production tables have them.
        sqlx::query("ANALYZE call_index").execute(store.pool()).await.expect("analyze");
    }

    type Make = fn(&mut Rng) -> CallQuery;
    let kinds: [(&str, Make); 7] = [
        ("filter: subject", |r| CallQuery { subject: Some(format!("agent-{}", r.below(20))), ..CallQuery::default() }),
        ("filter: status blocked", |_| CallQuery { status: Some("blocked".into()), ..CallQuery::default() }),
        ("filter: conn+tool+since", |r| CallQuery {
            connection: Some(format!("db-{}", r.below(10))),
            tool: Some("sql_query".into()),
            since_ms: Some(0),
            ..CallQuery::default()
        }),
        ("filter: page 20", |r| CallQuery {
            rule: Some(format!("rule-{}", r.below(20))),
            page: 20,
            ..CallQuery::default()
        }),
        ("text: rare word", |r| CallQuery { text: Some(format!("needle{}", r.below(1000))), ..CallQuery::default() }),
        ("text: common word", |r| CallQuery { text: Some(WORDS[r.below(WORDS.len())].into()), ..CallQuery::default() }),
        ("combined: subject+text", |r| CallQuery {
            subject: Some(format!("agent-{}", r.below(20))),
            status: Some("completed".into()),
            text: Some(WORDS[r.below(WORDS.len())].into()),
            ..CallQuery::default()
        }),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (label, make) in kinds {
        let mut times = Vec::with_capacity(RUNS);
        let mut rows = 0;
        for _ in 0..RUNS {
            let q = make(&mut rng);
            let t = Instant::now();
            let page = rec.search_calls(&q).await.expect("search");
            times.push(t.elapsed());
            rows += page.calls.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<9} {label:<28} {:>9.2} {:>9.2} {:>9.1}",
            ms(times[RUNS / 2]),
            ms(times[RUNS * 99 / 100]),
            rows as f64 / RUNS as f64
        );
    }
    store.close().await;
}

/// One writer's calls; returns the number of events appended.
async fn generate(rec: &Recorder, writer: usize, calls: usize) -> usize {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (writer as u64 + 1));
    let mut events = 0;
    let mut session = String::new();
    for i in 0..calls {
        // A new session every 50 calls, as agents come and go.
        let subject = format!("agent-{}", (writer * 7 + i / 50) % 20);
        let identity = Identity::agent(subject, &["agents"]);
        if i % 50 == 0 {
            session = uuid::Uuid::now_v7().to_string();
            let info = SessionInfo {
                id: session.clone(),
                identity: identity.clone(),
                transport: "bench".into(),
                client: "bench".into(),
            };
            rec.start_session(&info).await.expect("session");
            events += 1;
        }
        let call = uuid::Uuid::now_v7().to_string();
        let tool = TOOLS[rng.below(TOOLS.len())];
        let (a, b) = (WORDS[rng.below(WORDS.len())], WORDS[rng.below(WORDS.len())]);
        let statement = match tool {
            "sql_query" => format!(
                "SELECT id, total FROM {a} JOIN {b} USING (id) WHERE id = {} AND note = 'needle{}'",
                rng.next() % 100_000,
                rng.below(1000)
            ),
            _ => format!("grep -c needle{} /var/log/{a}.log", rng.below(1000)),
        };
        let rule = format!("rule-{}", rng.below(20));
        let request = json!({
            "tool": tool, "connection": format!("db-{}", rng.below(10)), "statement": statement,
            "identity": identity, "classification": {"class": "read"},
        });
        let decision = json!({"verdict": {"action": "allow"}, "rule": rule, "policy_version": "v1", "decide_us": 3});
        rec.append_all(&session, Some(&call), &[(EventKind::Request, &request), (EventKind::Decision, &decision)])
            .await
            .expect("request");
        let result = json!({"status": STATUSES[rng.below(STATUSES.len())], "rule": rule, "exec_ms": 2});
        if tool == "sql_query" {
            rec.append(&session, Some(&call), EventKind::Result, &result).await.expect("result");
            events += 3;
        } else {
            let frames: Vec<_> = (0..5)
                .map(|n| json!([n * 10, "o", format!("{n}: {} {} ok\r\n", WORDS[rng.below(16)], WORDS[rng.below(16)])]))
                .collect();
            let output = json!({ "frames": frames });
            rec.append_all(&session, Some(&call), &[(EventKind::Output, &output), (EventKind::Result, &result)])
                .await
                .expect("result");
            events += 4;
        }
    }
    events
}
