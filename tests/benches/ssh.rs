//! `ssh_run` round trip: the Airlock core pipeline (`Gateway::call`, default policies, every call recorded) versus
//! the same command sent directly with russh, against one real OpenSSH server on 127.0.0.1 (the harness in
//! `airlock_tests::sshd`). Both sides keep one authenticated connection and open a new channel per call.
//!
//! Every variant runs one call per round, in a rotating order, so a noisy machine slows them all alike and the
//! ratios hold. Besides the full call, two rows per store split Airlock's overhead without touching product code:
//! - "blocked call": a command the default policies block, so the pipeline runs (classify, decide, mask, two
//!   commits: request+decision, then result) but nothing reaches the host;
//! - "recorder only": the four events a real `echo ok` call records, replayed with `Recorder::append_all` in the
//!   same two commits (request+decision, output+result).
//!
//! Run (as root, with the SSH test user that `scripts/test` creates):
//! `AIRLOCK_TEST_SSH_USER=... AIRLOCK_TEST_SSH_PASSWORD=... cargo bench -p airlock-tests --bench ssh`
//! Optional: `AIRLOCK_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/postgres` adds a Postgres store;
//! `AIRLOCK_BENCH_CALLS` (default 300) and `AIRLOCK_BENCH_WARMUP` (default 20) set the calls per variant.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_tests::sshd::Sshd;
use gateway_core::pipeline::{CallStatus, Caller, Gateway, SshRequest, ToolRequest};
use gateway_core::record::EventKind;
use russh::ChannelMsg;
use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use serde_json::Value;

const COMMAND: &str = "echo ok";
/// Blocked by the shipped `block-credential-access` rule; harmless even if it ran (the login user cannot read it).
const BLOCKED: &str = "cat /etc/shadow";

/// russh client callbacks: accept only the harness's host key.
struct Pinned(PublicKey);

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(&mut self, presented: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(matches!(presented, PublicKeyOrCertificate::PublicKey { key, .. } if key.key_data() == self.0.key_data()))
    }
}

async fn direct_connect(sshd: &Sshd) -> Handle<Pinned> {
    let line = sshd.host_key_line();
    let blob = line.split_whitespace().nth(1).unwrap();
    let pin = Pinned(russh::keys::parse_public_key_base64(blob).unwrap());
    // Same client settings as the gateway's connector.
    let config = client::Config { nodelay: true, ..Default::default() };
    let mut handle = client::connect(Arc::new(config), ("127.0.0.1", sshd.port()), pin).await.unwrap();
    let key = russh::keys::load_secret_key(sshd.client_key_path(), None).unwrap();
    let auth =
        handle.authenticate_publickey(sshd.user(), PrivateKeyWithHashAlg::new(Arc::new(key), None)).await.unwrap();
    assert!(auth.success(), "direct russh login refused");
    handle
}

/// One `echo ok` on a new channel of `handle`, read to the channel's end; returns (stdout, exit status).
async fn direct_call(handle: &Handle<Pinned>) -> (Vec<u8>, Option<u32>) {
    let mut channel = handle.channel_open_session().await.unwrap();
    channel.exec(true, COMMAND).await.unwrap();
    let mut stdout = Vec::new();
    let mut exit = None;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
            ChannelMsg::ExitStatus { exit_status } => exit = Some(exit_status),
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    (stdout, exit)
}

async fn ssh_run(gw: &Gateway, caller: &Caller, command: &str) -> gateway_core::pipeline::ToolOutcome {
    gw.call(caller, ToolRequest::Ssh(SshRequest { connection: "web".into(), command: command.into(), timeout_s: None }))
        .await
}

/// The events one real `echo ok` call recorded, grouped by commit: [request, decision], [output, result].
async fn recorded_commits(gw: &Gateway, caller: &Caller) -> Vec<Vec<(EventKind, Value)>> {
    let o = ssh_run(gw, caller, COMMAND).await;
    assert_eq!(o.status, CallStatus::Completed, "{o:?}");
    let events = gw.recorder().call_events(&o.call_id).await.unwrap();
    let kind = |k: &str| match k {
        "request" => EventKind::Request,
        "decision" => EventKind::Decision,
        "output" => EventKind::Output,
        "result" => EventKind::Result,
        other => panic!("unexpected event kind {other}"),
    };
    let events: Vec<(EventKind, Value)> =
        events.iter().map(|e| (kind(&e.kind), serde_json::from_str(&e.payload).unwrap())).collect();
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["request", "decision", "output", "result"], "an echo call records these four");
    vec![events[..2].to_vec(), events[2..].to_vec()]
}

enum Variant {
    Direct(Handle<Pinned>),
    Airlock {
        gw: Arc<Gateway>,
        caller: Caller,
    },
    Blocked {
        gw: Arc<Gateway>,
        caller: Caller,
    },
    Recorder {
        gw: Arc<Gateway>,
        session: String,
        commits: Vec<Vec<(EventKind, Value)>>,
    },
    /// Classification and policy decision alone (`Gateway::dry_run`: no I/O, nothing recorded).
    Decide {
        gw: Arc<Gateway>,
        caller: Caller,
    },
}

impl Variant {
    /// One timed call.
    async fn once(&self) -> Duration {
        let t = Instant::now();
        match self {
            Variant::Direct(handle) => {
                let (stdout, exit) = direct_call(handle).await;
                let took = t.elapsed();
                assert_eq!((stdout.as_slice(), exit), (&b"ok\n"[..], Some(0)));
                took
            }
            Variant::Airlock { gw, caller } => {
                let o = ssh_run(gw, caller, COMMAND).await;
                let took = t.elapsed();
                assert_eq!(o.status, CallStatus::Completed, "{o:?}");
                assert_eq!(o.exec.as_ref().map(|e| e.stdout.as_str()), Some("ok\n"));
                took
            }
            Variant::Blocked { gw, caller } => {
                let o = ssh_run(gw, caller, BLOCKED).await;
                let took = t.elapsed();
                assert_eq!(o.status, CallStatus::Blocked, "{o:?}");
                took
            }
            Variant::Recorder { gw, session, commits } => {
                let call_id = uuid::Uuid::now_v7().to_string();
                for commit in commits {
                    let events: Vec<(EventKind, &Value)> = commit.iter().map(|(k, v)| (*k, v)).collect();
                    gw.recorder().append_all(session, Some(&call_id), &events).await.unwrap();
                }
                t.elapsed()
            }
            Variant::Decide { gw, caller } => {
                let request =
                    ToolRequest::Ssh(SshRequest { connection: "web".into(), command: COMMAND.into(), timeout_s: None });
                let decided = gw.dry_run(&caller.identity, &request).unwrap();
                let took = t.elapsed();
                assert!(matches!(decided.1.verdict, gateway_core::policy::Verdict::Allow), "{decided:?}");
                took
            }
        }
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn stats(mut us: Vec<f64>) -> Stats {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    Stats { p50: at(0.50), p99: at(0.99), mean: us.iter().sum::<f64>() / us.len() as f64 }
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::var("AIRLOCK_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let warmup: usize = std::env::var("AIRLOCK_BENCH_WARMUP").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let sshd = Sshd::start().unwrap_or_else(|e| panic!("this benchmark needs a real sshd: {e}"));
    let connection = format!(
        "[connections.web]\nkind = \"ssh\"\nurl = \"ssh://{}@127.0.0.1:{}\"\nprivate_key = {{ file = {:?} }}\n\
         host_key = {:?}\n",
        sshd.user(),
        sshd.port(),
        sshd.client_key_path().display().to_string(),
        sshd.host_key_line()
    );
    let store_dir = tempfile::tempdir().unwrap();
    let mut stores = vec![
        ("sqlite full", format!("sqlite://{}/full.db", store_dir.path().display())),
        ("sqlite normal", format!("sqlite://{}/normal.db?synchronous=normal", store_dir.path().display())),
    ];
    if std::env::var("AIRLOCK_TEST_PG_URL").is_ok() {
        stores.push(("postgres", airlock_tests::postgres_db().await.url));
    } else {
        println!("(AIRLOCK_TEST_PG_URL is not set: no Postgres store)");
    }

    let mut variants: Vec<(String, Variant)> =
        vec![("direct russh".into(), Variant::Direct(direct_connect(&sshd).await))];
    let mut dirs = Vec::new();
    let mut decide = None;
    for (label, url) in &stores {
        let (dir, gw, caller) = airlock_tests::gateway(Some(url), &connection).await;
        dirs.push(dir);
        let gw = Arc::new(gw);
        let commits = recorded_commits(&gw, &caller).await;
        let identity = gateway_core::identity::Identity::agent("bench-recorder", &["agents"]);
        let session = gw.open_session(&identity, "test", "airlock-bench").await.unwrap();
        decide.get_or_insert_with(|| Variant::Decide { gw: gw.clone(), caller: caller.clone() });
        variants
            .push((format!("airlock ssh_run, {label}"), Variant::Airlock { gw: gw.clone(), caller: caller.clone() }));
        variants.push((format!("  blocked call (no ssh), {label}"), Variant::Blocked { gw: gw.clone(), caller }));
        variants.push((format!("  recorder only (2 commits), {label}"), Variant::Recorder { gw, session, commits }));
    }
    variants.push(("classify+decide only (dry_run, no I/O)".into(), decide.unwrap()));

    // Interleaved rounds: one call of each variant per round, starting at a different variant each round.
    let n = variants.len();
    let mut latencies: Vec<Vec<f64>> = vec![Vec::with_capacity(calls); n];
    for round in 0..warmup + calls {
        for k in 0..n {
            let i = (round + k) % n;
            let took = variants[i].1.once().await;
            if round >= warmup {
                latencies[i].push(took.as_secs_f64() * 1e6);
            }
        }
    }
    let results: Vec<(String, Stats)> =
        variants.iter().zip(latencies).map(|((label, _), us)| (label.clone(), stats(us))).collect();

    println!(
        "ssh_run `{COMMAND}` round trip, {calls} calls per row after {warmup} warm-up, concurrency 1, interleaved"
    );
    println!("(one reused authenticated connection on both sides, a new channel per call; OpenSSH on 127.0.0.1)");
    println!("{:<44} {:>9} {:>9} {:>9} {:>9}", "path", "p50 µs", "p99 µs", "mean µs", "calls/s");
    for (label, s) in &results {
        println!("{label:<44} {:>9.0} {:>9.0} {:>9.0} {:>9.0}", s.p50, s.p99, s.mean, 1e6 / s.mean);
    }
    let direct = &results[0].1;
    println!();
    println!("Airlock overhead = airlock - direct; recorder = its 2 commits; rest = overhead - recorder (µs)");
    for (store, chunk) in stores.iter().zip(results[1..].chunks(3)) {
        let (airlock, recorder) = (&chunk[0].1, &chunk[2].1);
        for (what, a, d, r) in
            [("p50", airlock.p50, direct.p50, recorder.p50), ("mean", airlock.mean, direct.mean, recorder.mean)]
        {
            println!(
                "{:<14} {what:<4}  overhead {:>6.0} ({:>3.1}x direct)  recorder {:>6.0}  rest {:>6.0}",
                store.0,
                a - d,
                a / d,
                r,
                a - d - r
            );
        }
    }
    drop(variants);
    drop(dirs);
    drop(sshd);
}
