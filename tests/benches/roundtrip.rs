//! `sql_query` side by side, in one process run, against one Postgres target (a fresh database with the test
//! shop), the same statement on every path:
//! - direct sqlx (simple protocol, a pool with one connection per concurrent worker);
//! - Airlock over MCP streamable HTTP (`airlock serve`, one MCP session per concurrent agent);
//! - Airlock over MCP stdio (`airlock mcp --stdio`: ONE client process, the concurrent requests multiplexed
//!   on it, as an MCP host with parallel tool calls does);
//! - the reference Postgres MCP server `@modelcontextprotocol/server-postgres` (npm, stdio; tool `query`,
//!   argument `sql`), driven by the same rmcp client in the same way as Airlock over stdio.
//!
//! Both Airlock installations run the shipped policies with the default store (SQLite, `synchronous=full`), so
//! every call is classified, decided, masked and recorded. At each concurrency (1, 16, 64) the paths run in
//! interleaved rounds (each round runs every path once, in a rotating order, after one warm-up round), so a
//! noisy machine slows them all alike and the ratios hold. Latencies are per call; calls/s is all calls over the
//! wall time of the rounds. The peak RSS (`VmHWM`) of `airlock serve` is read after each concurrency.
//!
//! Then, in the same run:
//! - Airlock over HTTP by store (SQLite `synchronous=full`/`normal`, Postgres) at concurrency 1 and 16, one
//!   block per store (its server interleaved with direct sqlx);
//! - memory of a fresh `airlock serve` returning a capped 1M-row `generate_series` SELECT, once with the
//!   default caps (500 rows, 4 MiB) and once with `max_rows = 1000000` so that the 4 MiB byte cap decides.
//!
//! Run: `AIRLOCK_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p airlock-tests --bench roundtrip`
//! The reference server row needs `npm install --prefix target/npm @modelcontextprotocol/server-postgres` (the
//! bench says so and goes on without it). `AIRLOCK_BENCH_CALLS` (default 2048) sets the measured calls per path
//! and concurrency, `AIRLOCK_BENCH_ROUNDS` (default 8) the rounds they are spread over.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use airlock_tests::airlock::{Airlock, Server, Target, airlock_bin};
use airlock_tests::bench::{Memory, Stats, env_usize, machine, ms};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;

const QUERY: &str = "SELECT id, customer_id, amount_cents FROM orders WHERE id = 2";
/// A million rows with an e-mail and a hash each (the e-mails are masked).
const MILLION: &str = "SELECT g AS id, 'user' || g || '@example.com' AS email, md5(g::text) AS note \
                       FROM generate_series(1, 1000000) AS g";

type Client = RunningService<RoleClient, common::TestClient>;

/// Where the reference server is installed (`npm install --prefix target/npm ...`).
fn reference_server() -> PathBuf {
    let prefix = std::env::var("AIRLOCK_BENCH_NPM_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/npm"));
    prefix.join("node_modules/@modelcontextprotocol/server-postgres/dist/index.js")
}

/// An MCP stdio server started by the same rmcp client; returns the client and the server's pid.
async fn stdio(cmd: tokio::process::Command) -> (Client, u32) {
    let child = TokioChildProcess::new(cmd).expect("spawn stdio MCP server");
    let pid = child.id().expect("child pid");
    (common::TestClient.serve(child).await.expect("MCP over stdio"), pid)
}

enum Path {
    Direct {
        url: String,
        pool: Option<sqlx::PgPool>,
    },
    /// One MCP session per concurrent agent (opened as needed, kept).
    Http {
        server: Server,
        token: String,
        clients: Vec<Client>,
    },
    /// One client; concurrent requests on it. `reference`: the npm server's `query` tool.
    Stdio {
        client: Client,
        pid: u32,
        reference: bool,
    },
}

impl Path {
    /// Get ready for `concurrency` workers.
    async fn prepare(&mut self, concurrency: usize) {
        match self {
            Path::Direct { url, pool } => {
                if let Some(p) = pool.take() {
                    p.close().await;
                }
                let p = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(concurrency as u32)
                    .connect(url)
                    .await
                    .unwrap();
                *pool = Some(p);
            }
            Path::Http { server, token, clients } => {
                while clients.len() < concurrency {
                    clients.push(common::http_client(server, token).await);
                }
            }
            Path::Stdio { .. } => {}
        }
    }

    /// One round: `concurrency` workers, `per_worker` calls each; every call's latency and the round's wall time.
    async fn round(&self, concurrency: usize, per_worker: usize) -> (Vec<Duration>, Duration) {
        let started = Instant::now();
        let tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>> = (0..concurrency)
            .map(|w| {
                let worker = Worker::of(self, w);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_worker);
                    for _ in 0..per_worker {
                        let t = Instant::now();
                        worker.call().await;
                        latencies.push(t.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::with_capacity(concurrency * per_worker);
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all, started.elapsed())
    }

    async fn close(self) {
        match self {
            Path::Direct { pool, .. } => {
                if let Some(p) = pool {
                    p.close().await;
                }
            }
            Path::Http { clients, .. } => {
                for c in clients {
                    let _ = c.cancel().await;
                }
            }
            Path::Stdio { client, .. } => {
                let _ = client.cancel().await;
            }
        }
    }
}

/// What one worker task holds.
enum Worker {
    Direct(sqlx::PgPool),
    Airlock(Peer<RoleClient>),
    Reference(Peer<RoleClient>),
}

impl Worker {
    fn of(path: &Path, w: usize) -> Self {
        match path {
            Path::Direct { pool, .. } => Worker::Direct(pool.clone().unwrap()),
            Path::Http { clients, .. } => Worker::Airlock(clients[w].peer().clone()),
            Path::Stdio { client, reference: false, .. } => Worker::Airlock(client.peer().clone()),
            Path::Stdio { client, reference: true, .. } => Worker::Reference(client.peer().clone()),
        }
    }

    async fn call(&self) {
        match self {
            Worker::Direct(pool) => {
                let rows = sqlx::raw_sql(QUERY).fetch_all(pool).await.unwrap();
                assert_eq!(rows.len(), 1);
            }
            Worker::Airlock(peer) => {
                let r = airlock_sql(peer, QUERY).await;
                assert_eq!(r.is_error, Some(false), "{}", common::seen(&r));
            }
            Worker::Reference(peer) => {
                let args = json!({ "sql": QUERY }).as_object().cloned().unwrap();
                let r = peer.call_tool(CallToolRequestParams::new("query").with_arguments(args)).await.unwrap();
                assert_ne!(r.is_error, Some(true), "{}", common::seen(&r));
                assert!(common::seen(&r).contains("4500"), "{}", common::seen(&r));
            }
        }
    }
}

async fn airlock_sql(peer: &Peer<RoleClient>, query: &str) -> CallToolResult {
    let args = json!({ "connection": "shop", "query": query }).as_object().cloned().unwrap();
    peer.call_tool(CallToolRequestParams::new("sql_query").with_arguments(args)).await.expect("sql_query call")
}

/// An Airlock installation on the target, with an agent token.
fn install(target: &str, store_url: Option<String>, extra_config: &str) -> (Airlock, String) {
    let airlock = Airlock::new(Target { kind: "postgres", url: target.to_owned() }, store_url);
    if !extra_config.is_empty() {
        let mut config = std::fs::read_to_string(&airlock.config).unwrap();
        config.push_str(extra_config);
        std::fs::write(&airlock.config, config).unwrap();
    }
    let token = airlock.create_token("bench-agent", "agents");
    (airlock, token)
}

async fn airlock_stdio(airlock: &Airlock, token: &str) -> (Client, u32) {
    let cmd = tokio::process::Command::new(airlock_bin()).configure(|c| {
        c.arg("--config")
            .arg(&airlock.config)
            .args(["mcp", "--stdio"])
            .env("AIRLOCK_TOKEN", token)
            .env("AIRLOCK_LOG", "warn");
    });
    stdio(cmd).await
}

fn print_header() {
    println!("| path | concurrency | p50 ms | p99 ms | mean ms | calls/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
}

/// Run `paths` interleaved at each concurrency; print one table row per path and concurrency. `after_level`
/// is told the paths after each concurrency (for memory readings).
async fn compare(
    paths: &mut [(String, Path)],
    levels: &[usize],
    calls: usize,
    rounds: usize,
    mut after_level: impl FnMut(usize, &[(String, Path)]),
) {
    for &concurrency in levels {
        for (_, p) in paths.iter_mut() {
            p.prepare(concurrency).await;
        }
        let per_worker = calls.div_ceil(rounds * concurrency).max(1);
        let n = paths.len();
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); n];
        let mut walls = vec![Duration::ZERO; n];
        for round in 0..=rounds {
            for k in 0..n {
                let i = (round + k) % n;
                let (l, wall) = paths[i].1.round(concurrency, per_worker).await;
                if round > 0 {
                    latencies[i].extend(l);
                    walls[i] += wall;
                }
            }
        }
        for (i, (label, _)) in paths.iter().enumerate() {
            let s = Stats::new(std::mem::take(&mut latencies[i]), walls[i]);
            println!(
                "| {label} | {concurrency} | {} | {} | {} | {:.0} |",
                ms(s.p50),
                ms(s.p99),
                ms(s.mean),
                s.per_second
            );
        }
        after_level(concurrency, paths);
    }
}

#[tokio::main]
async fn main() {
    let calls = env_usize("CALLS", 2048);
    let rounds = env_usize("ROUNDS", 8).max(1);
    let db = airlock_tests::postgres_db().await;
    airlock_tests::exec(&db.url, common::SHOP_SQL).await;
    airlock_bin(); // build it before anything is timed

    println!("# sql_query side by side ({})", machine());
    println!();
    println!("`{QUERY}` on Postgres; {calls} calls per row in {rounds} interleaved rounds (after 1 warm-up round).");
    println!("Airlock: shipped policies, SQLite store (synchronous=full), every call recorded.");
    println!("stdio rows: one server process, the concurrent requests multiplexed on one client.");
    println!();

    let mut paths: Vec<(String, Path)> = vec![("direct sqlx".into(), Path::Direct { url: db.url.clone(), pool: None })];
    let (http_install, http_token) = install(&db.url, None, "");
    let server = http_install.serve();
    let serve_pid = server.child.id();
    paths.push((
        "Airlock, streamable HTTP".into(),
        Path::Http { server, token: http_token.clone(), clients: Vec::new() },
    ));
    let (stdio_install, stdio_token) = install(&db.url, None, "");
    let (client, pid) = airlock_stdio(&stdio_install, &stdio_token).await;
    paths.push(("Airlock, stdio".into(), Path::Stdio { client, pid, reference: false }));
    let reference = reference_server();
    if reference.exists() {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(&reference).arg(&db.url);
        let (client, pid) = stdio(cmd).await;
        paths.push(("server-postgres (npm), stdio".into(), Path::Stdio { client, pid, reference: true }));
    } else {
        println!(
            "(no reference server row: {} is missing; install it with \
             `npm install --prefix target/npm @modelcontextprotocol/server-postgres`)\n",
            reference.display()
        );
    }
    let before = Memory::of(serve_pid);
    let mut memory = vec![(0, before)];
    let mut stdio_memory = Vec::new();
    print_header();
    compare(&mut paths, &[1, 16, 64], calls, rounds, |c, paths| {
        memory.push((c, Memory::of(serve_pid)));
        for (label, p) in paths {
            if let Path::Stdio { pid, .. } = p {
                stdio_memory.push((label.clone(), c, Memory::of(*pid)));
            }
        }
    })
    .await;
    println!();
    println!("Memory of the servers (VmHWM = peak RSS since start, VmRSS = now):");
    println!();
    println!("| process | after concurrency | VmHWM MiB | VmRSS MiB |");
    println!("| --- | ---: | ---: | ---: |");
    for (c, m) in &memory {
        let when = if *c == 0 { "start (healthy, idle)".to_owned() } else { c.to_string() };
        println!("| airlock serve (HTTP) | {when} | {:.1} | {:.1} |", m.peak_mib(), m.rss_mib());
    }
    for (label, c, m) in &stdio_memory {
        println!("| {label} | {c} | {:.1} | {:.1} |", m.peak_mib(), m.rss_mib());
    }
    for (_, p) in paths {
        p.close().await;
    }

    // Airlock over HTTP by store. Each store gets its own block (its server, interleaved with direct sqlx): a
    // Postgres store's WAL flushes slow the SQLite fsyncs of a server interleaved with it on the same disk
    // (SQLite full measured 2.6 ms p50 alone, 6.9 ms next to a Postgres-store server), which says more about
    // this disk than about either store.
    println!();
    println!("# Airlock over HTTP by store ({})", machine());
    println!();
    let store_dir = tempfile::tempdir().unwrap();
    let pg_store = airlock_tests::postgres_db().await;
    let stores = [
        ("SQLite store, synchronous=full", format!("sqlite://{}/full/airlock.db", store_dir.path().display())),
        (
            "SQLite store, synchronous=normal",
            format!("sqlite://{}/normal/airlock.db?synchronous=normal", store_dir.path().display()),
        ),
        ("Postgres store", pg_store.url.clone()),
    ];
    print_header();
    for (label, url) in stores {
        let (airlock, token) = install(&db.url, Some(url), "");
        let server = airlock.serve();
        let mut paths: Vec<(String, Path)> = vec![
            (format!("direct sqlx (block: {label})"), Path::Direct { url: db.url.clone(), pool: None }),
            (format!("Airlock HTTP, {label}"), Path::Http { server, token, clients: Vec::new() }),
        ];
        compare(&mut paths, &[1, 16], calls, rounds, |_, _| {}).await;
        for (_, p) in paths {
            p.close().await;
        }
        drop(airlock);
    }

    million_rows(&db.url).await;
}

/// A fresh `airlock serve`, then the 1M-row SELECT: once, three times in a row, then 8 at once (the target
/// pool's size); the peak RSS before and after each stage.
async fn million_rows(target: &str) {
    println!();
    println!("# Capped 1M-row SELECT through airlock serve ({})", machine());
    println!();
    println!("`{MILLION}`");
    println!();
    println!(
        "| caps | stage | VmHWM MiB | VmRSS MiB | call ms (max) | rows returned | truncated by | MCP result MiB |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |");
    for (caps, extra) in
        [("default: 500 rows, 4 MiB", ""), ("max_rows = 1000000, 4 MiB", "\n[limits]\nmax_rows = 1000000\n")]
    {
        let (airlock, token) = install(target, None, extra);
        let server = airlock.serve();
        let pid = server.child.id();
        let client = common::http_client(&server, &token).await;
        assert_eq!(common::sql(&client, QUERY).await.is_error, Some(false));
        let m = Memory::of(pid);
        println!("| {caps} | before (one small query) | {:.1} | {:.1} | | | | |", m.peak_mib(), m.rss_mib());
        for (stage, n) in [("1 call", 1), ("3 calls in a row", 3), ("8 calls at once", 8)] {
            let mut clients = vec![];
            if n == 8 {
                for _ in 0..n {
                    clients.push(common::http_client(&server, &token).await);
                }
            }
            let mut results = Vec::new();
            if n == 8 {
                let futures = clients.iter().map(|c| async move {
                    let t = Instant::now();
                    let r = airlock_sql(c.peer(), MILLION).await;
                    (t.elapsed(), r)
                });
                results = futures_util::future::join_all(futures).await;
            } else {
                for _ in 0..n {
                    let t = Instant::now();
                    let r = airlock_sql(client.peer(), MILLION).await;
                    results.push((t.elapsed(), r));
                }
            }
            let m = Memory::of(pid);
            let (took, r) = results.iter().max_by_key(|(t, _)| *t).unwrap();
            assert_eq!(r.is_error, Some(false), "{}", common::seen(r));
            let s = common::structured(r);
            let size = serde_json::to_string(r).unwrap().len();
            println!(
                "| {caps} | {stage} | {:.1} | {:.1} | {} | {} | {} | {:.1} |",
                m.peak_mib(),
                m.rss_mib(),
                took.as_millis(),
                s["row_count"],
                s.get("truncation").map_or("-".to_owned(), |t| t.to_string()),
                size as f64 / (1024.0 * 1024.0)
            );
            for c in clients {
                let _ = c.cancel().await;
            }
        }
        let _ = client.cancel().await;
        drop(server);
    }
}
