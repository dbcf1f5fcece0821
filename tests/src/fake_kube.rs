//! A fake Kubernetes API server for the exec tests, speaking the real wire protocol to the real `kubectl`.
//!
//! It serves HTTPS on `127.0.0.1:<random port>` with a freshly generated CA and server certificate, accepts one
//! random bearer token, and answers as far as `kubectl exec` goes: the pod `GET`, the exec subresource over a
//! WebSocket (`v5.channel.k8s.io`, else `v4.channel.k8s.io`), and Kubernetes `Status` errors shaped like the
//! API server's (401 Unauthorized, 404 NotFound, 400 BadRequest). `kubectl exec` also calls `/version` (the
//! kubectl packaged with the Google Cloud SDK is a dispatcher that picks a binary by server version), then
//! `/api`, `/apis` and `/api/v1` to map "pod" to a resource; those get minimal legacy discovery documents
//! (core `v1` with `pods` and `namespaces`, no groups). Aggregated discovery is not offered: answering plain
//! `application/json` is how a server says so, and client-go then falls back to the legacy documents. After a
//! pod 404, kubectl reads the namespace to tell "namespace not found" apart, so namespaces (`default` and those
//! of the pods) can be read too. Everything else is a 404 `Status`.
//!
//! A "container" is emulated by running the argv as a local child process in the fake's own temporary
//! directory, with a cleared environment (`PATH=/usr/bin:/bin`, `HOME=<workdir>`). Output is streamed as it
//! comes, one WebSocket frame per read, and the end is reported on channel 3 with the `metav1.Status` JSON the
//! kubelet writes, so kubectl prints the same messages and exits with the same code as against a real cluster.
//! Every exec that reached the "pod" is recorded ([`FakeKube::execs`]), and so is every request
//! ([`FakeKube::requests`]), so tests can prove a command never ran, or that kubectl used WebSockets, not SPDY.
//!
//! Deliberate differences from a real cluster, each harmless for the tests:
//! - Exec without `container=` picks the pod's first container; the real API server demands a name when the
//!   pod has several (kubectl always sends one, chosen from the pod it fetched first).
//! - `tty=true` is refused with 400: no pseudo-terminal is emulated, and silently running without one would
//!   make a test pass for the wrong reason.
//! - SPDY (`Upgrade: SPDY/3.1`, kubectl's fallback) is refused with 400 "Upgrade request required", so a
//!   fallback shows up as a failing command instead of going unnoticed.
//! - A command that cannot start is reported like containerd does (`InternalError`, code 500, "OCI runtime
//!   exec failed: ... executable file not found in $PATH: unknown"), which kubectl prints as
//!   `error: Internal error occurred: ...` and exits 1. Docker-shim clusters used to say "command terminated
//!   with exit code 126" instead; containerd is what current clusters run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// The exec subprotocol with stream close signals, which kubectl offers first; preferred when offered.
pub const V5_PROTOCOL: &str = "v5.channel.k8s.io";
/// The previous exec subprotocol: same framing, but the client cannot close stdin.
pub const V4_PROTOCOL: &str = "v4.channel.k8s.io";

/// Channel bytes that prefix every binary frame of the `channel.k8s.io` protocols.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
/// v5 only: a client frame `[CLOSE, stream]` half-closes that stream (kubectl sends `[255, 0]` at stdin EOF).
const CLOSE: u8 = 255;

/// Bytes read from the child per frame. Each read becomes one frame as soon as it returns, so small writes by
/// the command reach the client at once; large output is cut into frames of at most this size.
const READ_CHUNK: usize = 32 * 1024;
/// Frames read ahead of the WebSocket writer. Together with [`READ_CHUNK`] this bounds what one exec holds in
/// memory when the client reads slowly: the child is then blocked on a full pipe, as in a real container.
const FRAMES_IN_FLIGHT: usize = 4;
/// How long to wait for the client's answer to our close frame before dropping the connection.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// When every object of the fake was "created" (and its containers started).
const CREATED: &str = "2025-01-01T00:00:00Z";

/// The `PATH` commands get, and the directories searched for `argv[0]`.
const CHILD_PATH: &str = "/usr/bin:/bin";

/// A pod the fake knows. All its containers are the same local machine.
#[derive(Debug, Clone)]
pub struct FakePod {
    pub namespace: String,
    pub name: String,
    /// Container names, in spec order; the first is the default for exec.
    pub containers: Vec<String>,
}

impl FakePod {
    /// A pod with the given containers.
    pub fn new(namespace: &str, name: &str, containers: &[&str]) -> FakePod {
        FakePod {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            containers: containers.iter().map(|c| (*c).to_owned()).collect(),
        }
    }
}

/// One exec that reached the "pod": recorded after the WebSocket upgrade, before the command is started, so
/// a command that was refused earlier (auth, unknown pod or container, bad protocol) never shows up here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The command as the client sent it (`command=` query parameters, in order).
    pub command: Vec<String>,
    /// The negotiated WebSocket subprotocol (`v5.channel.k8s.io` or `v4.channel.k8s.io`).
    pub subprotocol: String,
    /// The client asked to send stdin.
    pub stdin: bool,
}

/// One HTTP request as the fake received it, before authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    /// The `Upgrade` header (`websocket`, or `SPDY/3.1` when kubectl falls back), if any.
    pub upgrade: Option<String>,
    /// The request carried the right bearer token.
    pub authorized: bool,
}

/// A running fake API server. Dropping it stops the server and kills the commands still running.
pub struct FakeKube {
    addr: SocketAddr,
    ca_pem: String,
    shared: Arc<Shared>,
    // Owned here so commands' files vanish with the fake; `shared.workdir` is its path.
    workdir: tempfile::TempDir,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// What the handlers share.
struct Shared {
    addr: SocketAddr,
    token: String,
    pods: Vec<PodEntry>,
    /// Name and uid of every namespace that exists: `default` and those of the pods.
    namespaces: Vec<(String, String)>,
    workdir: PathBuf,
    execs: Mutex<Vec<ExecRecord>>,
    requests: Mutex<Vec<RequestRecord>>,
    /// Becomes `true` (or closes) when the [`FakeKube`] is dropped: exec sessions run in tasks of their own
    /// (hyper spawns upgraded connections), so they watch this to kill their command.
    shutdown: watch::Receiver<bool>,
}

struct PodEntry {
    pod: FakePod,
    uid: String,
}

impl Shared {
    fn pod(&self, namespace: &str, name: &str) -> Option<&PodEntry> {
        self.pods.iter().find(|p| p.pod.namespace == namespace && p.pod.name == name)
    }
}

/// A poisoned lock only means a test panicked while holding it; the records are still worth reading.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeKube {
    /// Starts on `127.0.0.1:<random port>` over HTTPS with a freshly generated CA and server certificate
    /// (IP SAN 127.0.0.1). Panics if the machine cannot bind a loopback port or make a temporary directory:
    /// a test cannot go on without them.
    pub async fn start(pods: Vec<FakePod>) -> FakeKube {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("fake-kube: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake-kube: local address");
        let certs = generate_certs();
        let workdir = tempfile::Builder::new().prefix("fake-kube-").tempdir().expect("fake-kube: create workdir");
        let token = format!("fake-kube-{}", random_hex::<24>());
        let mut namespaces: Vec<(String, String)> = Vec::new();
        for name in std::iter::once("default").chain(pods.iter().map(|p| p.namespace.as_str())) {
            if !namespaces.iter().any(|(known, _)| known == name) {
                namespaces.push((name.to_owned(), random_uid()));
            }
        }
        let pods = pods.into_iter().map(|pod| PodEntry { pod, uid: random_uid() }).collect();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            addr,
            token,
            pods,
            namespaces,
            workdir: workdir.path().to_path_buf(),
            execs: Mutex::default(),
            requests: Mutex::default(),
            shutdown: shutdown_rx,
        });
        let acceptor = TlsAcceptor::from(Arc::new(certs.server_config));
        let server = tokio::spawn(serve(listener, acceptor, router(shared.clone())));
        FakeKube { addr, ca_pem: certs.ca_pem, shared, workdir, shutdown, server }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA certificate that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The one bearer token the fake accepts.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// Writes a kubeconfig for kubectl: this server, its CA, the accepted token, one context, selected.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        self.write_kubeconfig_with_token(path, &self.shared.token)
    }

    /// Like [`write_kubeconfig`](Self::write_kubeconfig) with another token, to test rejected credentials.
    pub fn write_kubeconfig_with_token(&self, path: &Path, token: &str) -> std::io::Result<()> {
        // JSON is YAML, and serde_json does the quoting; kubectl reads either.
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{
                "name": "fake-kube",
                "cluster": {
                    "server": self.url(),
                    "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
                },
            }],
            "users": [{ "name": "fake-kube", "user": { "token": token } }],
            "contexts": [{
                "name": "fake-kube",
                "context": { "cluster": "fake-kube", "user": "fake-kube", "namespace": "default" },
            }],
            "current-context": "fake-kube",
        });
        let text = serde_json::to_string_pretty(&config).map_err(std::io::Error::other)?;
        // 0600 like kubectl's own files: it holds a credential.
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")
    }

    /// Every exec that started, in order.
    pub fn execs(&self) -> Vec<ExecRecord> {
        lock(&self.shared.execs).clone()
    }

    /// Every request received, in order, including rejected ones.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.requests).clone()
    }

    /// The directory commands run in (their cwd and `HOME`); removed when the fake is dropped.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        // Sessions kill their commands on this; aborting the accept loop drops every plain connection.
        let _ = self.shutdown.send(true);
        self.server.abort();
    }
}

struct Certs {
    ca_pem: String,
    server_config: rustls::ServerConfig,
}

/// A CA and a server certificate for 127.0.0.1 signed by it, so clients verify the server the normal way
/// (kubectl with `certificate-authority-data`, never `insecure-skip-tls-verify`).
fn generate_certs() -> Certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    let ca_key = KeyPair::generate().expect("fake-kube: CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("fake-kube: CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "fake-kube CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("fake-kube: self-sign CA");

    let server_key = KeyPair::generate().expect("fake-kube: server key");
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("fake-kube: server params");
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Go's verifier checks the extended key usage of a server certificate.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_cert = params.signed_by(&server_key, &issuer).expect("fake-kube: sign server cert");

    let chain = vec![server_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    // The ring provider explicitly: the process may have no default provider, and aws-lc-rs is not built.
    let mut server_config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("fake-kube: TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("fake-kube: server certificate");
    // Like the API server: kubectl's plain requests use HTTP/2; its WebSocket dialer asks for HTTP/1.1.
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Certs { ca_pem: ca_cert.pem(), server_config }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS generator through rustls' provider (no extra dependency). It fails only if the OS has no
    // entropy source, in which case nothing TLS would work either.
    rustls::crypto::ring::default_provider().secure_random.fill(&mut buf).expect("fake-kube: OS random generator");
    buf
}

fn random_hex<const N: usize>() -> String {
    random_bytes::<N>().iter().fold(String::with_capacity(2 * N), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A random version-4 UUID, the shape of `metadata.uid`.
fn random_uid() -> String {
    let h = random_hex::<16>();
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// Accepts connections until the task is aborted. Each connection runs in the `JoinSet`, so aborting this
/// task (dropping the set) closes them all.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            // E.g. out of file descriptors: back off instead of spinning, the condition may pass.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        connections.spawn(async move {
            // A failed handshake (a client that does not trust the CA, a port scanner) concerns that client only.
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let tls = TlsConnection(tls);
            let service = TowerToHyperService::new(app);
            // `with_upgrades`: the exec WebSocket takes over the connection after the 101 response.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
        // Reap finished connections so the set does not grow with every request.
        while connections.try_join_next().is_some() {}
    }
}

/// One TLS connection that always ends with a TLS `close_notify`, as Go servers' connections do.
///
/// hyper shuts a plain HTTP connection down properly, but an upgraded one (the exec WebSocket) is only
/// dropped: axum's `WebSocket` gives no access to the stream to shut it down. Without `close_notify`, a rustls
/// client (tokio-tungstenite, or the gateway under test) reports "peer closed connection without sending TLS
/// close_notify" after an otherwise clean WebSocket close handshake.
struct TlsConnection(tokio_rustls::server::TlsStream<TcpStream>);

impl Drop for TlsConnection {
    fn drop(&mut self) {
        /// Writes what the socket takes right now; drop cannot wait.
        struct NonBlocking<'a>(&'a TcpStream);
        impl std::io::Write for NonBlocking<'_> {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.try_write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (tcp, tls) = self.0.get_mut();
        // A no-op when hyper already shut the connection down. The alert is a few dozen bytes, far below a
        // socket's send buffer, so the non-blocking write takes it unless the peer is gone anyway.
        tls.send_close_notify();
        while tls.wants_write() {
            match tls.write_tls(&mut NonBlocking(tcp)) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/api/v1", get(api_v1_resources))
        .route("/api/v1/namespaces/{namespace}", get(get_namespace))
        .route("/api/v1/namespaces/{namespace}/pods/{name}", get(get_pod))
        // kubectl's WebSocket exec is a GET; its SPDY fallback a POST, refused by `exec` with a clear message.
        .route("/api/v1/namespaces/{namespace}/pods/{name}/exec", get(exec).post(exec))
        .fallback(not_found)
        // On every route and the fallback: the API server authenticates before it routes.
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate))
        .with_state(shared)
}

/// Records the request and lets it through only with `Authorization: Bearer <token>`.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let authorized = bearer_token(request.headers()).is_some_and(|t| t == shared.token);
    lock(&shared.requests).push(RequestRecord {
        method: request.method().to_string(),
        uri: request.uri().path_and_query().map_or_else(|| request.uri().path().to_owned(), |pq| pq.to_string()),
        upgrade: header_str(request.headers(), header::UPGRADE).map(str::to_owned),
        authorized,
    });
    if !authorized {
        // What the API server answers for a missing or unknown token.
        return status_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized".to_owned(), None);
    }
    next.run(request).await
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive, as in the API server.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION)?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A `Status` error response as the API server sends it (`kind`, `apiVersion`, `code` included, unlike the
/// kubelet's exec status).
fn status_error(code: StatusCode, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let (Some(details), Some(map)) = (details, body.as_object_mut()) {
        map.insert("details".to_owned(), details);
    }
    (code, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn bad_request(message: String) -> Response {
    status_error(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn pod_not_found(name: &str) -> Response {
    status_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("pods \"{name}\" not found"),
        Some(json!({ "name": name, "kind": "pods" })),
    )
}

async fn not_found() -> Response {
    status_error(StatusCode::NOT_FOUND, "NotFound", "the server could not find the requested resource".to_owned(), None)
}

fn json_response(body: &Value) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The version of the kubectl this was tested with, so no client warns about version skew.
async fn version() -> Response {
    json_response(&json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

/// Legacy discovery of the core group: only `v1`.
async fn api_versions(State(shared): State<Arc<Shared>>) -> Response {
    json_response(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr.to_string() }],
    }))
}

/// No API groups besides the core one.
async fn api_groups() -> Response {
    json_response(&json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": [] }))
}

/// The core resources the fake serves: pods (get) and their exec subresource, which is what lets kubectl
/// resolve `exec web-0` (or `exec pod/web-0`) to a pod.
async fn api_v1_resources() -> Response {
    json_response(&json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": false,
                "kind": "Namespace",
                "verbs": ["get"],
                "shortNames": ["ns"],
            },
            {
                "name": "pods/exec",
                "singularName": "",
                "namespaced": true,
                "kind": "PodExecOptions",
                "verbs": ["create", "get"],
            },
        ],
    }))
}

/// A namespace, read by kubectl after a pod 404 to tell a missing namespace apart from a missing pod.
async fn get_namespace(State(shared): State<Arc<Shared>>, UrlPath(name): UrlPath<String>) -> Response {
    let Some((_, uid)) = shared.namespaces.iter().find(|(known, _)| *known == name) else {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces \"{name}\" not found"),
            Some(json!({ "name": name, "kind": "namespaces" })),
        );
    };
    json_response(&json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": { "name": name, "uid": uid, "resourceVersion": "1", "creationTimestamp": CREATED },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    }))
}

async fn get_pod(State(shared): State<Arc<Shared>>, UrlPath((namespace, name)): UrlPath<(String, String)>) -> Response {
    let Some(entry) = shared.pod(&namespace, &name) else { return pod_not_found(&name) };
    let pod = &entry.pod;
    let containers: Vec<Value> =
        pod.containers.iter().map(|c| json!({ "name": c, "image": format!("fake-kube/{c}:latest") })).collect();
    let statuses: Vec<Value> = pod
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c,
                "state": { "running": { "startedAt": CREATED } },
                "ready": true,
                "started": true,
                "restartCount": 0,
                "image": format!("fake-kube/{c}:latest"),
                "imageID": "",
                "containerID": format!("containerd://{}", random_hex::<32>()),
            })
        })
        .collect();
    let body = json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": entry.uid,
            "resourceVersion": "1",
            "creationTimestamp": CREATED,
        },
        "spec": { "containers": containers, "restartPolicy": "Always", "nodeName": "fake-node" },
        "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True" }, { "type": "ContainersReady", "status": "True" }],
            "containerStatuses": statuses,
        },
    });
    json_response(&body)
}

/// The exec subresource. Checks run in the API server's order (pod, container, options) and all before the
/// upgrade, so kubectl's SPDY retry after a refused WebSocket gets the same error and prints it.
async fn exec(
    State(shared): State<Arc<Shared>>,
    UrlPath((namespace, name)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(entry) = shared.pod(&namespace, &name) else { return pod_not_found(&name) };
    let (mut parts, _body) = request.into_parts();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let param = |key: &str| query.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let flag = |key: &str| param(key).is_some_and(go_parse_bool);

    let container = match param("container").filter(|c| !c.is_empty()) {
        Some(c) if entry.pod.containers.iter().any(|known| known == c) => c.to_owned(),
        Some(c) => return bad_request(format!("container {c} is not valid for pod {name}")),
        None => match entry.pod.containers.first() {
            Some(first) => first.clone(),
            None => return bad_request(format!("a container name must be specified for pod {name}")),
        },
    };
    let command: Vec<String> = query.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.clone()).collect();
    if command.is_empty() {
        return bad_request("you must specify at least one command for the container".to_owned());
    }
    let (stdin, stdout, stderr) = (flag("stdin"), flag("stdout"), flag("stderr"));
    if !(stdin || stdout || stderr) {
        return bad_request("you must specify at least 1 of stdin, stdout, stderr".to_owned());
    }
    if flag("tty") {
        return bad_request("fake-kube does not emulate a TTY; exec with tty=false".to_owned());
    }

    let upgrade = header_str(&parts.headers, header::UPGRADE).unwrap_or("none").to_owned();
    let Ok(ws) = WebSocketUpgrade::from_request_parts(&mut parts, &()).await else {
        return bad_request(format!(
            "Upgrade request required (fake-kube serves exec over WebSocket only; got {} with Upgrade: {upgrade})",
            parts.method
        ));
    };
    // `protocols` picks the first of *our* list that the client offered: v5 wins over v4. The `base64.`
    // variants and the older v1-v3 protocols are not offered by kubectl and are refused.
    let ws = ws.protocols([V5_PROTOCOL, V4_PROTOCOL]);
    let Some(subprotocol) = ws.selected_protocol().and_then(|p| p.to_str().ok()).map(str::to_owned) else {
        let offered = header_str(&parts.headers, header::SEC_WEBSOCKET_PROTOCOL).unwrap_or("").to_owned();
        return bad_request(format!(
            "no supported WebSocket subprotocol in [{offered}]; fake-kube speaks {V5_PROTOCOL} and {V4_PROTOCOL}"
        ));
    };

    let record = ExecRecord { namespace, pod: name, container, command, subprotocol, stdin };
    let streams = Streams { stdin, stdout, stderr };
    ws.on_upgrade(move |socket| session(shared, record, streams, socket)).into_response()
}

/// Decodes an `application/x-www-form-urlencoded` query into its pairs, keeping repeats (`command=` is one
/// per argv element) and order. Go encodes spaces as `+`; bad escapes are kept literally, never an error.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(hi), Some(lo)) =
                    (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
                {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `strconv.ParseBool` true values, which the API server uses for the exec flags.
fn go_parse_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

#[derive(Clone, Copy)]
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

type WsSink = SplitSink<WebSocket, Message>;
type WsStream = SplitStream<WebSocket>;

/// One exec over an upgraded WebSocket: runs the command, streams its output, then reports its end on the
/// error channel and closes the socket normally. The command is killed if the client goes away first.
async fn session(shared: Arc<Shared>, record: ExecRecord, streams: Streams, socket: WebSocket) {
    lock(&shared.execs).push(record.clone());
    let v5 = record.subprotocol == V5_PROTOCOL;
    let (mut sink, mut stream) = socket.split();

    let mut child = match spawn(&shared.workdir, &record.command, streams) {
        Ok(child) => child,
        Err(detail) => {
            // Nothing ran: like containerd, an internal error instead of an exit code.
            let _ = finish(&mut sink, &mut stream, internal_error_status(&detail)).await;
            return;
        }
    };
    let (stdout, stderr, stdin) = (child.stdout.take(), child.stderr.take(), child.stdin.take());

    // Output is complete only when both pipes reach EOF, which can be after the command exits (the pipe
    // buffers), so the exit status is taken after the last frame is written. The bounded channel and the
    // awaited `send` (which flushes to the socket) make a slow client stall the command, not grow memory.
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(FRAMES_IN_FLIGHT);
    let finished = async {
        let pumps = async {
            tokio::join!(pump(stdout, STDOUT, tx.clone()), pump(stderr, STDERR, tx));
        };
        let writer = async {
            while let Some(frame) = rx.recv().await {
                if sink.send(Message::Binary(frame.into())).await.is_err() {
                    // The client is gone: fail the pumps' pending sends so they stop too.
                    rx.close();
                    return false;
                }
            }
            true
        };
        let ((), delivered) = tokio::join!(pumps, writer);
        if delivered { Some(child.wait().await) } else { None }
    };
    let mut shutdown = shared.shutdown.clone();
    let end = tokio::select! {
        end = finished => end,
        // A client that closes or drops the connection before the status frame has given up on the command.
        () = read_client(&mut stream, stdin, v5) => None,
        // The fake was dropped (or the sender went away with it).
        _ = shutdown.wait_for(|&stop| stop) => None,
    };
    match end {
        Some(Ok(status)) => {
            let _ = finish(&mut sink, &mut stream, exit_status(&record.command, status)).await;
        }
        Some(Err(e)) => {
            let _ =
                finish(&mut sink, &mut stream, internal_error_status(&format!("waiting for the command: {e}"))).await;
        }
        // `kill_on_drop` would do it too when `child` goes out of scope; explicit because it is the point.
        None => {
            let _ = child.start_kill();
        }
    }
}

/// Copies one pipe of the command into channel-prefixed frames until EOF. A read error ends the stream like
/// EOF: the command's end is still reported through its exit status.
async fn pump<R: AsyncRead + Unpin>(pipe: Option<R>, channel: u8, tx: mpsc::Sender<Vec<u8>>) {
    let Some(mut pipe) = pipe else { return };
    loop {
        let mut frame = Vec::with_capacity(1 + READ_CHUNK);
        frame.push(channel);
        // `read_buf` fills only the spare capacity: at most READ_CHUNK bytes, with no zeroing.
        match pipe.read_buf(&mut frame).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if tx.send(frame).await.is_err() {
            return;
        }
    }
}

/// Reads the client's frames until it closes or disconnects: stdin data goes to the command; with v5,
/// `[255, 0]` closes the command's stdin so it sees EOF (kubectl sends it when its own stdin ends).
async fn read_client(stream: &mut WsStream, mut stdin: Option<ChildStdin>, v5: bool) {
    while let Some(Ok(message)) = stream.next().await {
        let data = match message {
            Message::Binary(data) => data,
            Message::Close(_) => return,
            // Text frames belong to the base64 protocols, which are not negotiated; pings are answered by
            // the WebSocket layer.
            _ => continue,
        };
        match data.split_first() {
            Some((&STDIN, input)) => {
                // A command that closed its stdin (or exited) makes further input go nowhere, like a write to
                // a closed pipe; the session goes on.
                if let Some(pipe) = stdin.as_mut()
                    && pipe.write_all(input).await.is_err()
                {
                    stdin = None;
                }
            }
            // Dropping the pipe closes it.
            Some((&CLOSE, [STDIN])) if v5 => stdin = None,
            // Resize (channel 4) needs a TTY; stdout/stderr from a client and unknown channels mean nothing.
            _ => {}
        }
    }
}

/// Sends the status frame on the error channel, then a normal close, then waits (bounded) for the client's
/// close reply so the connection ends cleanly rather than with a reset.
async fn finish(sink: &mut WsSink, stream: &mut WsStream, status: String) -> Result<(), axum::Error> {
    let mut frame = Vec::with_capacity(1 + status.len());
    frame.push(ERROR);
    frame.extend_from_slice(status.as_bytes());
    sink.send(Message::Binary(frame.into())).await?;
    sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await?;
    let _ = tokio::time::timeout(CLOSE_GRACE, async { while let Some(Ok(_)) = stream.next().await {} }).await;
    Ok(())
}

/// Starts the command the way a container runtime would, as far as it shows: `argv[0]` looked up in the
/// container's `PATH`, cwd and `HOME` the workdir, nothing else inherited from the test process.
fn spawn(workdir: &Path, argv: &[String], streams: Streams) -> Result<tokio::process::Child, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("exec: no command".to_owned());
    };
    let path = resolve(program, workdir)?;
    let pipe = |wanted: bool| if wanted { Stdio::piped() } else { Stdio::null() };
    Command::new(path)
        .arg0(program)
        .args(args)
        .current_dir(workdir)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("HOME", workdir)
        .stdin(pipe(streams.stdin))
        .stdout(pipe(streams.stdout))
        .stderr(pipe(streams.stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| runc_error(program, &e.to_string()))
}

/// Finds the executable like runc does: a name with a slash is a path (relative to the cwd), anything else
/// is searched in `PATH`. Failures are worded like runc's, which kubectl shows to the user.
fn resolve(program: &str, workdir: &Path) -> Result<PathBuf, String> {
    fn executable(path: &Path) -> Option<bool> {
        let meta = std::fs::metadata(path).ok()?;
        Some(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    if program.contains('/') {
        let path = workdir.join(program);
        return match executable(&path) {
            Some(true) => Ok(path),
            Some(false) => Err(runc_error(program, "permission denied")),
            None => Err(runc_error(program, &format!("stat {program}: no such file or directory"))),
        };
    }
    if !program.is_empty() {
        for dir in CHILD_PATH.split(':') {
            let candidate = Path::new(dir).join(program);
            if executable(&candidate) == Some(true) {
                return Ok(candidate);
            }
        }
    }
    Err(runc_error(program, "executable file not found in $PATH"))
}

/// The error containerd returns to the kubelet when runc cannot start an exec process.
fn runc_error(program: &str, detail: &str) -> String {
    format!(
        "failed to exec in container: failed to start exec {}: OCI runtime exec failed: exec failed: unable to \
         start container process: exec: {}: {detail}: unknown",
        go_json_string(&random_hex::<32>()),
        go_json_string(program),
    )
}

/// The kubelet's status for a finished command: `Success`, or `NonZeroExitCode` with the code as the
/// `ExitCode` cause, which is what kubectl turns into its own exit code. A command killed by a signal is
/// reported as 128+signal, as containerd does.
fn exit_status(command: &[String], status: ExitStatus) -> String {
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    if code == 0 {
        return r#"{"metadata":{},"status":"Success"}"#.to_owned();
    }
    // Go's `%v` of a []string: space-separated in brackets.
    let message = format!(
        "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
        command.join(" ")
    );
    format!(
        concat!(
            r#"{{"metadata":{{}},"status":"Failure","message":{},"reason":"NonZeroExitCode","#,
            r#""details":{{"causes":[{{"reason":"ExitCode","message":"{}"}}]}}}}"#,
        ),
        go_json_string(&message),
        code
    )
}

/// The kubelet's status when the command could not be run at all (`apierrors.NewInternalError`).
fn internal_error_status(detail: &str) -> String {
    let cause = format!("error executing command in container: {detail}");
    format!(
        concat!(
            r#"{{"metadata":{{}},"status":"Failure","message":{},"reason":"InternalError","#,
            r#""details":{{"causes":[{{"message":{}}}]}},"code":500}}"#,
        ),
        go_json_string(&format!("Internal error occurred: {cause}")),
        go_json_string(&cause)
    )
}

/// A JSON string as Go's `json.Marshal` writes it: the kubelet's statuses are built with the fields in Go's
/// order (hand-written above) and with `<`, `>`, `&`, U+2028 and U+2029 escaped, so they match byte for byte.
fn go_json_string(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    // serde_json leaves these characters literal, so each occurrence is inside the string and safe to replace.
    quoted
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keeps_repeats_and_decodes_like_go() {
        let q = parse_query("command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262&container=web&bad=%zz");
        let commands: Vec<&str> = q.iter().filter(|(k, _)| k == "command").map(|(_, v)| v.as_str()).collect();
        assert_eq!(commands, ["sh", "-c", "echo out; echo err >&2"]);
        assert!(q.contains(&("bad".to_owned(), "%zz".to_owned())));
    }

    #[test]
    fn statuses_match_the_kubelet() {
        let argv: Vec<String> = ["sh", "-c", "exit 3"].map(String::from).to_vec();
        assert_eq!(exit_status(&argv, ExitStatus::from_raw(0)), r#"{"metadata":{},"status":"Success"}"#);
        assert_eq!(
            exit_status(&argv, ExitStatus::from_raw(3 << 8)),
            concat!(
                r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: "#,
                r#"error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","#,
                r#""details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
            )
        );
        // SIGKILL
        assert!(exit_status(&argv, ExitStatus::from_raw(9)).contains(r#""message":"137""#));
        assert_eq!(go_json_string("a>&b"), r#""a\u003e\u0026b""#);
    }

    #[test]
    fn resolves_like_runc() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve("sh", dir.path()).unwrap(), Path::new("/usr/bin/sh"));
        assert!(
            resolve("no-such-cmd", dir.path()).unwrap_err().ends_with("executable file not found in $PATH: unknown")
        );
        assert!(resolve("./nope", dir.path()).unwrap_err().contains("stat ./nope: no such file or directory"));
    }
}
