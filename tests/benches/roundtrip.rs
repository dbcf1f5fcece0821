//! `sql_query` round trip through Airlock (MCP over streamable HTTP, the whole pipeline: authenticate, classify,
//! decide, record the request, execute, mask, record the result) versus the same query sent directly with sqlx,
//! against the same Postgres. Prints p50/p99 latency and calls/s at concurrency 1 and 16.
//!
//! Run: `AIRLOCK_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p airlock-tests --bench roundtrip`
//! (`AIRLOCK_BENCH_CALLS` sets the calls per run, default 400).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use airlock_tests::airlock::{Airlock, Target};

const QUERY: &str = "SELECT id, customer_id, amount_cents FROM orders WHERE id = 2";

struct Stats {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn stats(mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats { p50: at(0.50), p99: at(0.99), per_second: latencies.len() as f64 / wall.as_secs_f64() }
}

async fn through_airlock(
    server: &airlock_tests::airlock::Server,
    token: &str,
    concurrency: usize,
    calls: usize,
) -> Stats {
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let client = common::http_client(server, token).await;
        // Warm up: session opened, connection pool filled.
        assert_eq!(common::sql(&client, QUERY).await.is_error, Some(false));
        clients.push(client);
    }
    let started = Instant::now();
    let per_client = calls / concurrency;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    let r = common::sql(&client, QUERY).await;
                    latencies.push(t.elapsed());
                    assert_eq!(r.is_error, Some(false), "{}", common::seen(&r));
                }
                let _ = client.cancel().await;
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    stats(all, started.elapsed())
}

async fn direct(url: &str, concurrency: usize, calls: usize) -> Stats {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(concurrency as u32).connect(url).await.unwrap();
    for _ in 0..concurrency {
        sqlx::raw_sql(QUERY).fetch_all(&pool).await.unwrap();
    }
    let started = Instant::now();
    let per_task = calls / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let t = Instant::now();
                    let rows = sqlx::raw_sql(QUERY).fetch_all(&pool).await.unwrap();
                    latencies.push(t.elapsed());
                    assert_eq!(rows.len(), 1);
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    pool.close().await;
    stats(all, started.elapsed())
}

fn row(label: &str, concurrency: usize, s: &Stats) {
    println!(
        "{label:<44} {concurrency:>11} {:>10.2} {:>10.2} {:>10.0}",
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.per_second
    );
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::var("AIRLOCK_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let db = airlock_tests::postgres_db().await;
    airlock_tests::exec(&db.url, common::SHOP_SQL).await;
    let store_dir = tempfile::tempdir().unwrap();
    let pg_store = airlock_tests::postgres_db().await;
    let stores = [
        ("sqlite store, synchronous=full", format!("sqlite://{}/full/airlock.db", store_dir.path().display())),
        (
            "sqlite store, synchronous=normal",
            format!("sqlite://{}/normal/airlock.db?synchronous=normal", store_dir.path().display()),
        ),
        ("postgres store", pg_store.url.clone()),
    ];
    println!("sql_query round trip, {calls} calls per run: {QUERY}");
    println!("(Airlock: MCP streamable HTTP, every call recorded; direct: sqlx simple protocol; same Postgres target)");
    println!("{:<44} {:>11} {:>10} {:>10} {:>10}", "path", "concurrency", "p50 ms", "p99 ms", "calls/s");
    for concurrency in [1, 16] {
        for (label, store_url) in &stores {
            let airlock = Airlock::new(Target { kind: "postgres", url: db.url.clone() }, Some(store_url.clone()));
            let token = airlock.create_token("bench", "agents");
            let server = airlock.serve();
            let a = through_airlock(&server, &token, concurrency, calls).await;
            row(&format!("airlock, {label}"), concurrency, &a);
        }
        let d = direct(&db.url, concurrency, calls).await;
        row("direct sqlx", concurrency, &d);
    }
}
