//! The real `airlock` binary, driven as a user would: a temp directory with `airlock.toml`, the shipped
//! policies, a store and a target; tokens made with `airlock token create`; `airlock serve` started on a free
//! loopback port and awaited through `/healthz`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a server gets to become healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `airlock` binary, built (once per test process) with the same profile as the tests, so the
/// tests never run a stale binary. `AIRLOCK_BIN` overrides it (e.g. a release build).
pub fn airlock_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("AIRLOCK_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> directory").to_owned();
        let target_dir = profile_dir.parent().expect("target directory").to_owned();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "airlock", "--bin", "airlock", "--target-dir"]).arg(&target_dir);
        // Cargo gives the test process this package's CARGO_PKG_* / CARGO_MANIFEST_* variables; some build
        // scripts (ring's) track them, so inheriting them would rebuild the binary's dependencies every time.
        for (k, _) in std::env::vars() {
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || k.starts_with("CARGO_BIN_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k.as_str())
            {
                cmd.env_remove(k);
            }
        }
        // Optimised test runs are benchmarks (`cargo bench`): build with that profile so dependencies are shared.
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.args(["--profile", "bench"]);
        }
        let status = cmd.status().expect("run cargo build -p airlock");
        assert!(status.success(), "cargo build -p airlock failed");
        profile_dir.join(format!("airlock{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// A target database for the `shop` connection.
#[derive(Debug, Clone)]
pub struct Target {
    /// `postgres`, `mysql` or `sqlite`.
    pub kind: &'static str,
    pub url: String,
}

/// An Airlock installation in a temp directory.
pub struct Airlock {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub target: Target,
    pub store_url: String,
}

impl Airlock {
    /// Write `airlock.toml` (store: SQLite in the directory unless `store_url` is given), copy the shipped
    /// policies, and point connection `shop` at `target`.
    pub fn new(target: Target, store_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store_url = store_url.unwrap_or_else(|| format!("sqlite://{}/store/airlock.db", dir.path().display()));
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).expect("policies dir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.yaml");
        std::fs::copy(&shipped, policies.join("default.yaml")).expect("copy default policy");
        let config = dir.path().join("airlock.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"http://127.0.0.1:1\"\n\n[store]\nurl = \"{store_url}\"\n\n\
                 [policy]\ndir = \"policies\"\n\n[connections.shop]\nkind = \"{}\"\ndescription = \"test shop\"\nurl = \"{}\"\n",
                target.kind, target.url
            ),
        )
        .expect("write config");
        Self { dir, config, target, store_url }
    }

    /// One installation per store kind (`"sqlite"`, `"postgres"`), each with an empty SQLite target in the
    /// returned directory; for tests that must hold on both stores.
    pub async fn on_each_store() -> Vec<(&'static str, tempfile::TempDir, Airlock)> {
        let mut out = Vec::new();
        for store in ["sqlite", "postgres"] {
            let target_dir = tempfile::tempdir().expect("tempdir");
            let store_url = match store {
                "postgres" => Some(crate::postgres_db().await.url),
                _ => None,
            };
            let airlock = Airlock::new(Airlock::sqlite_target(target_dir.path()), store_url);
            out.push((store, target_dir, airlock));
        }
        out
    }

    /// A SQLite target file inside the directory (created empty).
    pub fn sqlite_target(dir: &Path) -> Target {
        Target { kind: "sqlite", url: format!("sqlite://{}/shop.db?mode=rwc", dir.display()) }
    }

    /// `airlock --config <dir>/airlock.toml <args>`, waited for.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run airlock")
    }

    /// The command, not yet started, with a clean `AIRLOCK_*` environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(airlock_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("AIRLOCK_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config").arg(&self.config).args(args);
        cmd
    }

    /// Create an agent token with `airlock token create` and return it.
    pub fn create_token(&self, name: &str, group: &str) -> String {
        let out = self.run(&["token", "create", "--name", name, "--group", group]);
        assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).expect("utf-8").trim().to_owned();
        assert!(token.starts_with("alk_"), "unexpected token output {token:?}");
        token
    }

    /// Start `airlock serve` on a free loopback port and wait until `/healthz` answers 200.
    pub fn serve(&self) -> Server {
        self.serve_with_env(&[])
    }

    /// [`Airlock::serve`] with extra environment variables (e.g. `AIRLOCK_LOG`).
    pub fn serve_with_env(&self, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let log_path = self.dir.path().join(format!("serve-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = self
            .command(&["serve"])
            .env("AIRLOCK_SERVER__LISTEN", addr.to_string())
            .env("AIRLOCK_SERVER__PUBLIC_URL", format!("http://{addr}"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn airlock serve");
        let mut server = Server { child, addr, log_path };
        server.wait_ready();
        server
    }
}

/// A running `airlock serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
}

impl Server {
    /// The MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!("airlock serve exited early ({status}):\n{}", self.log());
            }
            if let Ok((200, _)) = http_request(self.addr, "GET", "/healthz", &[], "") {
                return;
            }
            assert!(Instant::now() < deadline, "airlock serve not healthy after {READY_TIMEOUT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send SIGTERM (without waiting).
    pub fn send_sigterm(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Send SIGTERM and wait for the process to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.send_sigterm();
        self.child.wait().expect("wait for airlock serve")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (released for the server to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind :0").local_addr().expect("local addr").port()
}

/// A minimal blocking HTTP/1.1 request; returns status and the raw response (headers and body).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {response:?}")))?;
    Ok((status, response))
}

/// Events of `kind` across every session of a store (read straight from the store, as an auditor would).
pub async fn store_events(store_url: &str, kind: &str) -> Vec<serde_json::Value> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let url = store_url.to_owned();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap_or_else(|e| panic!("open store {url}: {e}"));
    let rows = sqlx::query("SELECT payload FROM events WHERE kind = $1 ORDER BY ts_ms")
        .bind(kind)
        .fetch_all(&pool)
        .await
        .expect("read events");
    pool.close().await;
    rows.iter()
        .map(|r| serde_json::from_str(&r.try_get::<String, _>(0).expect("payload")).expect("payload is JSON"))
        .collect()
}
