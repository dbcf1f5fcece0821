//! Core benchmarks: policy decision time with 500 rules, SQL classification of a typical query, and record
//! append latency on SQLite (and on Postgres when `AIRLOCK_TEST_PG_URL` is set).
//!
//! Run: `cargo bench -p gateway-core --bench core`.

use std::path::PathBuf;
use std::sync::OnceLock;

use gateway_core::classify::Dialect;
use gateway_core::classify::sql::{SqlClassification, classify};
use gateway_core::identity::Identity;
use gateway_core::policy::{CallFacts, PolicySet, Tool};
use gateway_core::record::{EventKind, Recorder, SessionInfo};
use gateway_core::store::Store;

const TYPICAL: &str = "SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id \
                       WHERE o.created_at > now() - interval '7 days' ORDER BY o.id LIMIT 50";

fn main() {
    divan::main();
}

/// The shipped default policy plus generated rules, 500 in all.
fn five_hundred_rules() -> &'static PolicySet {
    static SET: OnceLock<PolicySet> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let default = std::fs::read_to_string(dir.join("default.yaml")).expect("default policy");
        let base = PolicySet::from_sources(&[(dir.join("default.yaml"), default.clone())]).expect("loads");
        let mut extra = String::from("version: 1\nrules:\n");
        for i in 0..(500 - base.rules().len()) {
            let rule = match i % 4 {
                0 => format!(
                    "  - {{ name: gen-{i}, match: {{ connections: [\"team-{i}-*\"], sql: [read] }}, action: allow }}\n"
                ),
                1 => format!(
                    "  - {{ name: gen-{i}, match: {{ groups: [\"group-{i}\"], sql: [ddl] }}, action: block, message: no }}\n"
                ),
                2 => format!("  - {{ name: gen-{i}, match: {{ tables: [\"schema{i}.*\"] }}, mask: {{ columns: [\"*col{i}*\"] }} }}\n"),
                _ => format!(
                    "  - {{ name: gen-{i}, match: {{ subjects: [\"bot-{i}\"], raw_regex: \"(?i)table{i}\\\\b\" }}, action: block, message: no }}\n"
                ),
            };
            extra.push_str(&rule);
        }
        let set = PolicySet::from_sources(&[
            (dir.join("default.yaml"), default),
            (PathBuf::from("generated.yaml"), extra),
        ])
        .expect("500 rules load");
        assert_eq!(set.rules().len(), 500);
        set
    })
}

#[divan::bench]
fn policy_decision_500_rules(bencher: divan::Bencher<'_, '_>) {
    let set = five_hundred_rules();
    let identity = Identity::agent("autogen-ci", &["agents"]);
    let classification = classify(TYPICAL, Dialect::Postgres);
    bencher.bench(|| {
        divan::black_box(set.decide(&CallFacts {
            tool: Tool::SqlQuery,
            connection: "shop",
            identity: &identity,
            raw: TYPICAL,
            sql: Some(&classification),
            shell: None,
            namespace: None,
            pod: None,
        }))
    });
}

#[divan::bench]
fn sql_classification_typical_query() -> SqlClassification {
    classify(divan::black_box(TYPICAL), Dialect::Postgres)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    })
}

fn bench_append(bencher: divan::Bencher<'_, '_>, url: &str, whole_call: bool) {
    let rt = runtime();
    let (rec, session) = rt.block_on(async {
        let store = Store::connect(url, None).await.expect("store");
        store.migrate().await.expect("migrate");
        let rec = Recorder::new(store);
        let id = uuid::Uuid::now_v7().to_string();
        let info = SessionInfo {
            id: id.clone(),
            identity: Identity::agent("bench", &[]),
            transport: "bench".into(),
            client: "bench".into(),
        };
        rec.start_session(&info).await.expect("session");
        (rec, id)
    });
    let payload = serde_json::json!({"tool": "sql_query", "connection": "shop", "statement": TYPICAL});
    let decision = serde_json::json!({"verdict": {"action": "allow"}, "rule": "allow-reads"});
    let result = serde_json::json!({"status": "completed", "rule": "allow-reads", "exec_ms": 1});
    if whole_call {
        // A whole call as the pipeline records it: request + decision in one commit, then the result (each a
        // new call id, so the search index inserts and updates a row as in production).
        bencher.bench(|| {
            let call = uuid::Uuid::now_v7().to_string();
            rt.block_on(rec.append_all(
                &session,
                Some(&call),
                &[(EventKind::Request, &payload), (EventKind::Decision, &decision)],
            ))
            .expect("append");
            rt.block_on(rec.append(&session, Some(&call), EventKind::Result, &result)).expect("append");
        });
    } else {
        bencher.bench(|| {
            rt.block_on(rec.append(&session, Some("call"), EventKind::Request, &payload)).expect("append");
        });
    }
}

#[divan::bench(sample_count = 200, sample_size = 1)]
fn record_append_sqlite(bencher: divan::Bencher<'_, '_>) {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_append(bencher, &format!("sqlite://{}/bench.db", dir.path().display()), false);
}

#[divan::bench(sample_count = 200, sample_size = 1)]
fn record_call_sqlite(bencher: divan::Bencher<'_, '_>) {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_append(bencher, &format!("sqlite://{}/bench.db", dir.path().display()), true);
}

#[divan::bench(sample_count = 200, sample_size = 1)]
fn record_append_postgres(bencher: divan::Bencher<'_, '_>) {
    bench_postgres(bencher, false);
}

#[divan::bench(sample_count = 200, sample_size = 1)]
fn record_call_postgres(bencher: divan::Bencher<'_, '_>) {
    bench_postgres(bencher, true);
}

fn bench_postgres(bencher: divan::Bencher<'_, '_>, whole_call: bool) {
    let Ok(admin) = std::env::var("AIRLOCK_TEST_PG_URL") else {
        eprintln!("record_append_postgres: set AIRLOCK_TEST_PG_URL to measure it");
        return;
    };
    let name = format!("airlock_bench_{}", uuid::Uuid::new_v4().simple());
    let url = runtime().block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await.expect("create db");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b).to_owned();
        format!("{base}/{name}")
    });
    bench_append(bencher, &url, whole_call);
}
