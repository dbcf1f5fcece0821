//! Proves the fake against real clients: the `kubectl` binary (WebSocket exec, v5) and a raw WebSocket client
//! that offers only v4. kubectl is required: without it these tests fail with instructions, never skip.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use airlock_tests::fake_kube::{ExecRecord, FakeKube, FakePod};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};

fn pods() -> Vec<FakePod> {
    vec![FakePod::new("shop", "web-0", &["app"]), FakePod::new("shop", "multi", &["main", "sidecar"])]
}

/// The kubectl to drive: `$KUBECTL`, else the first on `PATH`.
fn kubectl_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "kubectl not found on PATH: these tests run the real kubectl (>= 1.31, which execs over WebSockets) \
                 against the fake API server. Install it (Debian: `apt-get install kubectl`) or set KUBECTL=/path."
            )
        })
}

/// kubectl with its own HOME and kubeconfig, so it never reads or writes the user's ~/.kube.
struct Kubectl {
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
    bin: PathBuf,
}

impl Kubectl {
    fn new(fake: &FakeKube) -> Kubectl {
        Kubectl::with_token(fake, &fake.token())
    }

    fn with_token(fake: &FakeKube, token: &str) -> Kubectl {
        let bin = kubectl_bin();
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = home.path().join("kubeconfig");
        fake.write_kubeconfig_with_token(&kubeconfig, token).unwrap();
        Kubectl { home, kubeconfig, bin }
    }

    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).await.unwrap();
            // Dropping the pipe is kubectl's stdin EOF.
        }
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl did not finish within 60 s")
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// kubectl must exec over a WebSocket GET, never fall back to SPDY (a POST with `Upgrade: SPDY/3.1`).
fn assert_websocket_only(fake: &FakeKube) {
    let requests = fake.requests();
    let execs: Vec<_> = requests.iter().filter(|r| r.uri.contains("/exec?")).collect();
    assert!(!execs.is_empty(), "no exec request: {requests:#?}");
    for r in execs {
        assert_eq!((r.method.as_str(), r.upgrade.as_deref()), ("GET", Some("websocket")), "{requests:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_stdout_and_stderr_come_through() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake)
        .run(&["-n", "shop", "exec", "web-0", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], None)
        .await;
    assert_eq!(text(&out.stdout), "out\n");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("err\n"), "{stderr}");
    assert!(stderr.contains("command terminated with exit code 3"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_websocket_only(&fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_is_recorded_with_v5() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake).run(&["-n", "shop", "exec", "web-0", "--", "echo", "hi"], None).await;
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        fake.execs(),
        [ExecRecord {
            namespace: "shop".into(),
            pod: "web-0".into(),
            container: "app".into(),
            command: argv(&["echo", "hi"]),
            subprotocol: "v5.channel.k8s.io".into(),
            stdin: false,
        }]
    );
    assert_websocket_only(&fake);
    // What kubectl asked for: its version check, legacy discovery, the pod, then the exec. Nothing is a 404,
    // so no discovery call falls through to the catch-all.
    let paths: Vec<String> =
        fake.requests().iter().map(|r| r.uri.split('?').next().unwrap_or_default().to_owned()).collect();
    for expected in ["/api", "/apis", "/api/v1", "/api/v1/namespaces/shop/pods/web-0"] {
        assert!(paths.iter().any(|p| p == expected), "{expected} not requested: {paths:#?}");
    }
    let known = ["/version", "/api", "/apis", "/api/v1", "/api/v1/namespaces/shop/pods/web-0"];
    for path in &paths {
        assert!(known.contains(&path.as_str()) || path.ends_with("/exec"), "unexpected request {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_unauthorized_and_runs_nothing() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::with_token(&fake, "not-the-token")
        .run(&["-n", "shop", "exec", "web-0", "--", "touch", "x"], None)
        .await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    // kubectl's words for a 401 from discovery, the first authenticated call.
    assert!(stderr.contains("You must be logged in to the server"), "{stderr}");
    assert_eq!(fake.execs(), []);
    assert!(fake.requests().iter().all(|r| !r.authorized));
    assert!(!fake.workdir().join("x").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_pod_is_not_found() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake).run(&["-n", "shop", "exec", "nope", "--", "true"], None).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("NotFound") && stderr.contains(r#"pods "nope" not found"#), "{stderr}");
    assert_eq!(fake.execs(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_not_found() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake).run(&["-n", "nowhere", "exec", "web-0", "--", "true"], None).await;
    let stderr = text(&out.stderr);
    assert!(stderr.contains(r#"namespaces "nowhere" not found"#), "{stderr}");
    assert_ne!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_container_is_refused() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake).run(&["-n", "shop", "exec", "web-0", "-c", "missing", "--", "true"], None).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("container missing is not valid for pod web-0"), "{stderr}");
    assert_eq!(fake.execs(), []);
    // kubectl retries any refused WebSocket upgrade over SPDY; the fake refuses that POST the same way (the
    // API server checks the container before looking at the protocol), so the error above is printed once.
    let methods: Vec<String> =
        fake.requests().into_iter().filter(|r| r.uri.contains("/exec?")).map(|r| r.method).collect();
    assert_eq!(methods, ["GET", "POST"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_defaulted_or_chosen() {
    let fake = FakeKube::start(pods()).await;
    let kubectl = Kubectl::new(&fake);
    let out = kubectl.run(&["-n", "shop", "exec", "multi", "--", "true"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = kubectl.run(&["-n", "shop", "exec", "multi", "-c", "sidecar", "--", "true"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let containers: Vec<String> = fake.execs().into_iter().map(|e| e.container).collect();
    assert_eq!(containers, ["main", "sidecar"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_stream_in_full() {
    let fake = FakeKube::start(pods()).await;
    let script = r"head -c 10000000 /dev/zero | tr '\0' a";
    let out = Kubectl::new(&fake).run(&["-n", "shop", "exec", "web-0", "--", "sh", "-c", script], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 10_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'a'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_the_command_and_closes() {
    let fake = FakeKube::start(pods()).await;
    // `sort` prints only after stdin's EOF: this passes only if kubectl's v5 close ([255, 0]) closes the pipe.
    let out =
        Kubectl::new(&fake).run(&["-n", "shop", "exec", "-i", "web-0", "--", "sort", "-r"], Some(b"a\nc\nb\n")).await;
    assert_eq!(text(&out.stdout), "c\nb\na\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    assert!(fake.execs()[0].stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_command_is_reported_like_containerd() {
    let fake = FakeKube::start(pods()).await;
    let out = Kubectl::new(&fake).run(&["-n", "shop", "exec", "web-0", "--", "no-such-command", "x"], None).await;
    let stderr = text(&out.stderr);
    assert!(stderr.contains(r#"exec: "no-such-command": executable file not found in $PATH"#), "{stderr}");
    assert!(stderr.contains("Internal error occurred"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // It reached the pod; only the runtime could not start it.
    assert_eq!(fake.execs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_in_the_workdir_with_a_clean_environment() {
    let fake = FakeKube::start(pods()).await;
    let out =
        Kubectl::new(&fake).run(&["-n", "shop", "exec", "web-0", "--", "sh", "-c", "pwd; env | sort"], None).await;
    let workdir = fake.workdir().to_str().unwrap();
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(workdir));
    // sh adds PWD (and some shells OLDPWD/SHLVL); nothing comes from the test process.
    let env: Vec<&str> =
        lines.filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("OLDPWD=")).collect();
    assert_eq!(env, [format!("HOME={workdir}").as_str(), "PATH=/usr/bin:/bin"]);
}

// ---- raw WebSocket client ----

fn client_config(ca_pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_exec(
    fake: &FakeKube,
    pod: &str,
    query: &str,
    protocols: &str,
) -> Result<(Ws, tungstenite::handshake::client::Response), tungstenite::Error> {
    let host = fake.url().trim_start_matches("https://").to_owned();
    let url = format!("wss://{host}/api/v1/namespaces/shop/pods/{pod}/exec?{query}");
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Authorization", format!("Bearer {}", fake.token()).parse().unwrap());
    headers.insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let connector = tokio_tungstenite::Connector::Rustls(Arc::new(client_config(&fake.ca_pem())));
    tokio_tungstenite::client_async_tls_with_config(request, tcp, None, Some(connector)).await
}

#[derive(Default, Debug)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<Value>,
    closed_normally: bool,
}

async fn collect(ws: &mut Ws) -> Collected {
    let mut got = Collected::default();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.unwrap() {
        match message.unwrap() {
            Message::Binary(frame) => match frame.split_first() {
                Some((1, data)) => got.stdout.extend_from_slice(data),
                Some((2, data)) => got.stderr.extend_from_slice(data),
                Some((3, data)) => got.status = Some(serde_json::from_slice(data).unwrap()),
                other => panic!("unexpected frame {other:?}"),
            },
            Message::Close(frame) => {
                got.closed_normally = frame.is_some_and(|f| u16::from(f.code) == 1000);
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_v4_client_gets_channel_frames_and_exit_code() {
    let fake = FakeKube::start(pods()).await;
    let query = "command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+7&stdout=true&stderr=true";
    let (mut ws, response) = raw_exec(&fake, "web-0", query, "v4.channel.k8s.io").await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    let got = collect(&mut ws).await;
    assert_eq!(text(&got.stdout), "out\n");
    assert_eq!(text(&got.stderr), "err\n");
    let status = got.status.unwrap();
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0], serde_json::json!({"reason": "ExitCode", "message": "7"}));
    assert!(got.closed_normally);
    assert_eq!(fake.execs()[0].subprotocol, "v4.channel.k8s.io");
    assert_eq!(fake.execs()[0].command, argv(&["sh", "-c", "echo out; echo err >&2; exit 7"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_success_status_is_the_kubelets() {
    let fake = FakeKube::start(pods()).await;
    let (mut ws, _) = raw_exec(&fake, "web-0", "command=true&stdout=true", "v4.channel.k8s.io").await.unwrap();
    let got = collect(&mut ws).await;
    assert_eq!(got.status.unwrap().to_string(), r#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_subprotocols_are_refused() {
    let fake = FakeKube::start(pods()).await;
    for offered in ["base64.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io"] {
        match raw_exec(&fake, "web-0", "command=true&stdout=true", offered).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400, "{offered}"),
            other => panic!("{offered}: expected HTTP 400, got {other:?}"),
        }
    }
    assert_eq!(fake.execs(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_kills_the_command() {
    let fake = FakeKube::start(pods()).await;
    let query = "command=sh&command=-c&command=echo+%24%24+%3E+pid%3B+echo+started%3B+exec+sleep+60&stdout=true";
    let (mut ws, _) = raw_exec(&fake, "web-0", query, "v5.channel.k8s.io").await.unwrap();
    // Wait for the command to say it started, then hang up.
    match ws.next().await.unwrap().unwrap() {
        Message::Binary(frame) => assert_eq!(&frame[..], b"\x01started\n"),
        other => panic!("{other:?}"),
    }
    let pid = std::fs::read_to_string(fake.workdir().join("pid")).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    assert!(proc_dir.exists());
    ws.close(None).await.unwrap();
    drop(ws);
    for _ in 0..100 {
        if !proc_dir.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the command ({}) still runs after the client left", pid.trim());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_v5_stdin_close_signal() {
    let fake = FakeKube::start(pods()).await;
    let (mut ws, response) = raw_exec(
        &fake,
        "web-0",
        "command=wc&command=-c&stdin=true&stdout=true",
        "v4.channel.k8s.io, v5.channel.k8s.io",
    )
    .await
    .unwrap();
    // The server's preference wins over the client's order.
    assert_eq!(response.headers()["sec-websocket-protocol"], "v5.channel.k8s.io");
    ws.send(Message::Binary(b"\x00hello".to_vec().into())).await.unwrap();
    ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
    let got = collect(&mut ws).await;
    assert_eq!(text(&got.stdout).trim(), "5");
    assert_eq!(got.status.unwrap()["status"], "Success");
}

/// The state letter of a process from /proc (`Z` for a zombie), or None when it is gone.
fn process_state(pid: &str) -> Option<char> {
    let stat = std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_the_command_back() {
    const TOTAL: usize = 30_000_000;
    let fake = FakeKube::start(pods()).await;
    let query =
        format!("command=sh&command=-c&command=echo+%24%24+%3E+pid%3B+exec+head+-c+{TOTAL}+%2Fdev%2Fzero&stdout=true");
    let (mut ws, _) = raw_exec(&fake, "web-0", &query, "v5.channel.k8s.io").await.unwrap();
    let first = match ws.next().await.unwrap().unwrap() {
        Message::Binary(frame) => frame,
        other => panic!("{other:?}"),
    };
    let pid = std::fs::read_to_string(fake.workdir().join("pid")).unwrap().trim().to_owned();
    // Not reading for a while: if the fake buffered output instead of waiting for the socket, `head` would have
    // written everything and exited long before this.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let state = process_state(&pid);
    assert!(state.is_some_and(|s| s != 'Z'), "head is no longer running ({state:?}): the output was buffered");
    let got = collect(&mut ws).await;
    assert_eq!(first.len() - 1 + got.stdout.len(), TOTAL);
    assert_eq!(got.status.unwrap()["status"], "Success");
}
