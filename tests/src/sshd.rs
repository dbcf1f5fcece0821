//! A real OpenSSH server (Debian's `openssh-server`, `/usr/sbin/sshd`) for the SSH tests: one private instance per
//! [`Sshd::start`], listening on `127.0.0.1:<free port>`, with its own host key, client key, config and log in a
//! temporary directory.
//!
//! What the machine must provide (`scripts/test` does it; it runs as root in CI):
//! - `/usr/sbin/sshd` and `ssh-keygen`;
//! - a login user named by `AIRLOCK_TEST_SSH_USER`, whose password is `AIRLOCK_TEST_SSH_PASSWORD`;
//! - root: sshd needs it for privilege separation and to switch to the login user.
//!
//! When any of that is missing, `start()` fails with a message that says so: SSH tests fail loudly, never skip.
//!
//! Keep an `Sshd` inside the test that uses it. Dropping it stops the server; if the test process dies without
//! dropping it (a kill, an abort), a small watchdog beside sshd notices and stops the server too.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "ssh-keygen";
/// sshd's privilege separation directory (compiled into Debian's binary); it chroots its unprivileged children there.
const PRIVSEP_DIR: &str = "/run/sshd";
const USER_VAR: &str = "AIRLOCK_TEST_SSH_USER";
const PASSWORD_VAR: &str = "AIRLOCK_TEST_SSH_PASSWORD";
const PREPARE_HINT: &str = "run `scripts/test` as root: it installs openssh-server, creates the SSH test login user and \
     exports AIRLOCK_TEST_SSH_USER and AIRLOCK_TEST_SSH_PASSWORD (the password is kept in target/sshd-test-password)";
/// Generous because CI machines are small and run many test processes at once; readiness is polled, so a fast
/// start is not slowed down by it.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long `drop` waits for sshd to exit on SIGTERM before it uses SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The free port is found by binding port 0 and letting go of it, so another test process can take it before sshd
/// binds it; sshd then exits with "Address already in use" and we try again with another port.
const BIND_ATTEMPTS: usize = 5;

/// Runs as `sh -c WATCHDOG sshd-watchdog <config path> /usr/sbin/sshd <args>`; sh execs sshd, so the test's
/// `Child` is sshd itself (its exit is seen directly). The background subshell holds the read end of the pipe that
/// is sshd's original stdin, whose write end only the test process holds: end of file there means the `Sshd` was
/// dropped or the test process died, and the subshell then stops sshd. The check on sshd's command line (which holds
/// the unique config path) keeps it from signalling an unrelated process that reused the pid of an sshd that had
/// already exited on its own.
const WATCHDOG: &str = r#"cfg=$1; shift
exec 3<&0 </dev/null
(read -r _ <&3; grep -qsaF -- "$cfg" /proc/$$/cmdline && kill -TERM $$) &
exec "$@" 3<&-"#;

/// A running private sshd; stopped (and its directory removed) on drop.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    /// Write end of the watchdog's pipe; closing it is how `drop` asks for sshd to stop.
    watchdog: Option<ChildStdin>,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    password: String,
    home: PathBuf,
    host_key_line: String,
    host_key_fingerprint: String,
}

impl Sshd {
    /// Starts sshd on 127.0.0.1 with a fresh ed25519 host key and a fresh ed25519 client key pair authorized for
    /// the test user; password and public key authentication are both on. Returns once the server has logged that
    /// it listens on its port and has answered a connection with an SSH banner.
    pub fn start() -> Result<Sshd, String> {
        check_root()?;
        if !Path::new(SSHD).is_file() {
            return Err(format!("{SSHD} is missing (package openssh-server): {PREPARE_HINT}"));
        }
        let user = env_var(USER_VAR)?;
        let password = env_var(PASSWORD_VAR)?;
        let home = user_home(&user)?;
        for nologin in ["/etc/nologin", "/run/nologin"] {
            // Without PAM, sshd itself refuses every non-root session while one of these exists (systemd leaves
            // /run/nologin behind when a boot has not finished).
            if Path::new(nologin).exists() {
                return Err(format!("{nologin} exists, so sshd would refuse all logins; remove it"));
            }
        }
        ensure_privsep_dir()?;

        let dir = tempfile::Builder::new()
            .prefix("airlock-sshd-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory for sshd: {e}"))?;
        // sshd opens AuthorizedKeysFile with the login user's privileges, not root's, so the user must be able to
        // reach it: search permission on the directory (not read, so it cannot list the private keys' names, and
        // the keys themselves stay 0600).
        set_mode(dir.path(), 0o711)?;
        check_usable_dir(dir.path(), &user)?;

        let host_key = dir.path().join("ssh_host_ed25519_key");
        let client_key = dir.path().join("client_ed25519_key");
        keygen(&host_key, "")?;
        keygen(&client_key, "airlock-test-client")?;
        let authorized_keys = dir.path().join("authorized_keys");
        fs::copy(client_key.with_extension("pub"), &authorized_keys)
            .map_err(|e| format!("cannot write {}: {e}", authorized_keys.display()))?;
        set_mode(&authorized_keys, 0o644)?;

        let host_pub = read_text(&host_key.with_extension("pub"))?;
        let host_key_line = host_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let fingerprint_out = run(
            Command::new(SSH_KEYGEN).args(["-l", "-E", "sha256", "-f"]).arg(host_key.with_extension("pub")),
            "ssh-keygen -l",
        )?;
        // "256 SHA256:... comment (ED25519)"
        let host_key_fingerprint = fingerprint_out
            .split_whitespace()
            .nth(1)
            .filter(|f| f.starts_with("SHA256:"))
            .ok_or_else(|| format!("unexpected ssh-keygen -l output: {fingerprint_out:?}"))?
            .to_string();

        let settings = Settings { dir: dir.path(), user: &user, per_source_penalties: sshd_version()? >= (9, 8) };
        let mut failures = String::new();
        for attempt in 1..=BIND_ATTEMPTS {
            let port = free_port()?;
            match launch(&settings, port)? {
                Launch::Ready(child, watchdog) => {
                    return Ok(Sshd {
                        child,
                        watchdog: Some(watchdog),
                        dir,
                        port,
                        user,
                        password,
                        home,
                        host_key_line,
                        host_key_fingerprint,
                    });
                }
                Launch::PortTaken(log) => {
                    failures.push_str(&format!("--- attempt {attempt}, port {port}:\n{log}\n"));
                }
            }
        }
        Err(format!("sshd could not bind a free port in {BIND_ATTEMPTS} attempts:\n{failures}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login user (`AIRLOCK_TEST_SSH_USER`); the only user sshd lets in.
    pub fn user(&self) -> String {
        self.user.clone()
    }

    /// The login user's password (`AIRLOCK_TEST_SSH_PASSWORD`).
    pub fn password(&self) -> String {
        self.password.clone()
    }

    /// OpenSSH-format ed25519 private key (mode 0600, no passphrase) whose public key is authorized for `user()`.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_ed25519_key")
    }

    /// The server's host public key as `ssh-ed25519 AAAA...` (known_hosts style, without a host name).
    pub fn host_key_line(&self) -> String {
        self.host_key_line.clone()
    }

    /// A known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key_line)
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:...`.
    pub fn host_key_fingerprint(&self) -> String {
        self.host_key_fingerprint.clone()
    }

    /// The login user's home directory, where sshd starts the commands it runs.
    pub fn home(&self) -> PathBuf {
        self.home.clone()
    }

    /// sshd's log so far (LogLevel VERBOSE: e.g. "Accepted publickey for ..." / "Accepted password for ...").
    pub fn log(&self) -> String {
        fs::read(self.dir.path().join("sshd.log")).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog send SIGTERM, which sshd handles by closing its listener and exiting.
        // Connections already accepted are served by their own processes (each in its own session), which end
        // when their clients disconnect.
        drop(self.watchdog.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
                Ok(Some(_)) => return,
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

struct Settings<'a> {
    dir: &'a Path,
    user: &'a str,
    per_source_penalties: bool,
}

enum Launch {
    Ready(Child, ChildStdin),
    /// sshd exited because another process took the port first; holds its log.
    PortTaken(String),
}

/// The config of one instance. sshd is started with `-f` on it, so nothing from /etc/ssh applies.
fn sshd_config(s: &Settings<'_>, port: u16) -> String {
    let dir = s.dir.display();
    let mut cfg = format!(
        "# Written by the Airlock SSH test harness for one test; run as `sshd -D -e -f <this file>`.
ListenAddress 127.0.0.1:{port}
AddressFamily inet
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
LogLevel VERBOSE
UseDNS no
UsePAM no
PermitRootLogin no
AllowUsers {user}
PubkeyAuthentication yes
AuthorizedKeysFile {dir}/authorized_keys
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
# StrictModes would reject the authorized_keys file: it checks every directory above it, and /tmp is world-writable.
StrictModes no
PrintMotd no
PrintLastLog no
# Tests may open many connections at once; the default (10:30:100) starts dropping unauthenticated ones at 10.
MaxStartups 100:30:200
MaxSessions 100
",
        user = s.user
    );
    if s.per_source_penalties {
        // OpenSSH >= 9.8 refuses connections for a while from an address whose earlier connections failed to
        // authenticate; tests of wrong passwords and keys all come from 127.0.0.1.
        cfg.push_str("PerSourcePenalties no\n");
    }
    cfg
}

/// Writes the config for `port`, starts sshd and waits until it is ready, has exited or the deadline passed.
fn launch(s: &Settings<'_>, port: u16) -> Result<Launch, String> {
    let config = s.dir.join("sshd_config");
    fs::write(&config, sshd_config(s, port)).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let log_path = s.dir.join("sshd.log");
    let log = File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| format!("cannot duplicate the sshd log file handle: {e}"))?;
    let read_log =
        || fs::read(&log_path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|e| e.to_string());

    // -D: stay in the foreground as our child; -e: log to stderr, which is the log file.
    let mut child = Command::new("/bin/sh")
        .args(["-c", WATCHDOG, "sshd-watchdog"])
        .arg(&config)
        .args([SSHD, "-D", "-e", "-f"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
    let Some(watchdog) = child.stdin.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("sshd was started without its stdin pipe".to_string());
    };

    // sshd logs "Server listening on ..." after bind() and listen() succeeded, so this is our sshd on that port and
    // not some other process that got there first; the banner then shows it accepts and speaks SSH.
    let listening = format!("Server listening on 127.0.0.1 port {port}.");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let log = read_log();
                if log.contains("Address already in use") {
                    return Ok(Launch::PortTaken(log));
                }
                return Err(format!("sshd exited during startup ({status}); its log:\n{log}"));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("cannot check on sshd: {e}")),
        }
        if read_log().contains(&listening) && answers_banner(port) {
            return Ok(Launch::Ready(child, watchdog));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "sshd did not answer on 127.0.0.1:{port} within {}s; its log:\n{}",
                START_TIMEOUT.as_secs(),
                read_log()
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether 127.0.0.1:port accepts a connection and sends an SSH-2.0 identification line.
fn answers_banner(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    if stream.set_read_timeout(Some(Duration::from_secs(2))).is_err() {
        return false;
    }
    let mut banner = Vec::new();
    let mut byte = [0u8; 1];
    // The identification line is at most 255 bytes and ends with CR LF (RFC 4253 §4.2).
    while banner.len() < 255 {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => banner.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    banner.starts_with(b"SSH-2.0-")
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("cannot read the free port: {e}"))
}

/// sshd must start as root: it binds, reads the host key and /etc/shadow, chroots its pre-authentication
/// children into /run/sshd and switches to the login user.
fn check_root() -> Result<(), String> {
    let status = read_text(Path::new("/proc/self/status"))?;
    // "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
    let effective = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1));
    match effective {
        Some("0") => Ok(()),
        Some(uid) => Err(format!(
            "the sshd test harness needs root (running as uid {uid}): sshd must start as root for privilege \
             separation and to switch to the login user; CI runs scripts/test as root, run the SSH tests as root too"
        )),
        None => Err("cannot read the effective uid from /proc/self/status".to_string()),
    }
}

fn env_var(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name} is not set: {PREPARE_HINT}")),
    }
}

/// The user's home directory from the passwd database (through NSS, like sshd).
fn user_home(user: &str) -> Result<PathBuf, String> {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .map_err(|e| format!("cannot run getent to look up {user}: {e}"))?;
    let line = String::from_utf8_lossy(&out.stdout);
    // name:password:uid:gid:gecos:home:shell
    match line.trim_end().split(':').nth(5) {
        Some(home) if out.status.success() && !home.is_empty() => Ok(PathBuf::from(home)),
        _ => Err(format!("the SSH test login user {user:?} does not exist: {PREPARE_HINT}")),
    }
}

/// /run is a tmpfs, and on machines without systemd nothing recreates /run/sshd after a reboot; sshd refuses to
/// start without it ("Missing privilege separation directory"). It must be root's and not writable by others.
fn ensure_privsep_dir() -> Result<(), String> {
    let dir = Path::new(PRIVSEP_DIR);
    if dir.is_dir() {
        return Ok(());
    }
    // Another test process may create it at the same moment; create_dir_all accepts that.
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {PRIVSEP_DIR}: {e}"))?;
    set_mode(dir, 0o755)
}

/// The directory's path must fit in sshd_config unquoted, and the login user reaches AuthorizedKeysFile only if
/// every directory above it lets others search it (a TMPDIR under /root, say, would not): failing here beats a
/// confusing "Permission denied (publickey)" later.
fn check_usable_dir(dir: &Path, user: &str) -> Result<(), String> {
    // The paths go unquoted into sshd_config, where AuthorizedKeysFile also expands %-tokens.
    if dir.to_string_lossy().contains(|c: char| c.is_whitespace() || "\"'%#".contains(c)) {
        return Err(format!("the temporary directory {} has characters sshd_config cannot take", dir.display()));
    }
    for ancestor in dir.ancestors() {
        let mode = fs::metadata(ancestor).map_err(|e| format!("cannot stat {}: {e}", ancestor.display()))?;
        if mode.permissions().mode() & 0o001 == 0 {
            return Err(format!(
                "{} is not searchable by others, so {user} cannot read the authorized keys in {}; set TMPDIR to a \
                 directory the user can reach",
                ancestor.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    run(
        Command::new(SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path),
        "ssh-keygen -t ed25519",
    )
    .map(drop)
}

/// (major, minor) from `sshd -V`, which prints e.g. "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL ..." (Debian) or
/// "OpenSSH_9.2, OpenSSL ..." to stderr.
fn sshd_version() -> Result<(u32, u32), String> {
    let out = Command::new(SSHD).arg("-V").output().map_err(|e| format!("cannot run {SSHD} -V: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let parsed = text.split("OpenSSH_").nth(1).and_then(|rest| {
        let mut numbers = rest.split(|c: char| !c.is_ascii_digit());
        Some((numbers.next()?.parse().ok()?, numbers.next()?.parse().ok()?))
    });
    parsed.ok_or_else(|| format!("cannot read the OpenSSH version from `{SSHD} -V`: {text:?}"))
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {:o} {}: {e}", mode, path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> Settings<'_> {
        Settings { dir, user: "nobody", per_source_penalties: false }
    }

    #[test]
    fn an_early_exit_is_reported_with_the_log() {
        check_root().unwrap();
        ensure_privsep_dir().unwrap();
        // No host key in the directory: sshd exits at once.
        let dir = tempfile::tempdir().unwrap();
        let err = match launch(&settings(dir.path()), free_port().unwrap()) {
            Err(e) => e,
            Ok(_) => panic!("sshd started without a host key"),
        };
        assert!(err.contains("exited during startup") && err.contains("no hostkeys available"), "{err}");
    }

    #[test]
    fn a_port_taken_by_another_process_asks_for_a_retry() {
        check_root().unwrap();
        ensure_privsep_dir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("ssh_host_ed25519_key"), "").unwrap();
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        match launch(&settings(dir.path()), taken.local_addr().unwrap().port()) {
            Ok(Launch::PortTaken(log)) => assert!(log.contains("Address already in use"), "{log}"),
            Ok(Launch::Ready(..)) => panic!("sshd reported ready on a port another socket holds"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_openssh_version_is_read() {
        let (major, minor) = sshd_version().unwrap();
        assert!(major >= 8, "{major}.{minor}");
    }
}
