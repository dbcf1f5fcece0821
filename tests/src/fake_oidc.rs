//! A fake OIDC issuer for the JWT bearer-token tests: OIDC discovery and a JWKS over HTTPS on
//! `127.0.0.1:<random port>`, with keys the test generates and signs tokens with.
//!
//! - `GET /.well-known/openid-configuration` → `{"issuer": "https://127.0.0.1:PORT", "jwks_uri": ".../jwks"}`.
//! - `GET /jwks` → the public keys in force (one RS256, one ES256, one EdDSA key), counted, so a test can see
//!   how often Airlock refetched them.
//! - `GET /authorize` (authorization code flow with PKCE, for the web UI's SSO sign-in) records the request and
//!   answers 302 to `redirect_uri` with a one-time `code` and the same `state`, for the person the test set with
//!   [`FakeOidc::set_user`]. Tests without TLS in their HTTP client call [`FakeOidc::authorize`] instead, which
//!   does the same in-process.
//! - `POST /token` redeems a code once (checking `grant_type`, `redirect_uri`, `client_id`, the PKCE verifier
//!   against the S256 challenge and, when set, the client secret in HTTP Basic) and answers an ES256 `id_token`
//!   with `iss`, `aud`, `sub`, `email`, `groups`, `nonce`, `exp`; [`FakeOidc::misbehave`] makes it lie.
//!
//! The server certificate is signed by a freshly generated CA ([`FakeOidc::ca_pem`]), so Airlock verifies it
//! the normal way (`ca_cert`), never with verification turned off.
//!
//! Keys: ES256 and Ed25519 are generated with ring. ring cannot generate RSA keys, so the RS256 key is made by
//! the `openssl` CLI (`openssl genpkey`, DER) and then loaded into ring for signing; the modulus for the
//! JWK comes from `openssl rsa -modulus`. The tests need `openssl` on `PATH`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// A signature algorithm the fake signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    /// The JOSE name (`alg` header).
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One signing key: its kid, its private half, and its public JWK.
struct SigningKey {
    kid: String,
    alg: Alg,
    signer: Signer,
    jwk: Value,
}

impl SigningKey {
    fn generate(alg: Alg, kid: String) -> SigningKey {
        let rng = SystemRandom::new();
        let (signer, mut jwk) = match alg {
            Alg::Es256 => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .expect("fake-oidc: P-256 key");
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("fake-oidc: load P-256 key");
                let point = pair.public_key().as_ref();
                let jwk = json!({ "kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                                  "y": URL_SAFE_NO_PAD.encode(&point[33..65]) });
                (Signer::Ec(pair), jwk)
            }
            Alg::EdDsa => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("fake-oidc: Ed25519 key");
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("fake-oidc: load Ed25519 key");
                let jwk = json!({ "kty": "OKP", "crv": "Ed25519",
                                  "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()) });
                (Signer::Ed(pair), jwk)
            }
            Alg::Rs256 => {
                let (der, modulus) = openssl_rsa_key();
                // OpenSSL 3 writes DER keys as PKCS#1 `RSAPrivateKey`; older versions as PKCS#8.
                let pair = RsaKeyPair::from_der(&der)
                    .or_else(|_| RsaKeyPair::from_pkcs8(&der))
                    .expect("fake-oidc: load RSA key");
                let jwk = json!({ "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&modulus),
                                  "e": URL_SAFE_NO_PAD.encode([1u8, 0, 1]) });
                (Signer::Rsa(pair), jwk)
            }
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg.name());
        jwk["use"] = json!("sig");
        SigningKey { kid, alg, signer, jwk }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ec(pair) => pair.sign(&rng, message).expect("fake-oidc: ES256 sign").as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig).expect("fake-oidc: RS256 sign");
                sig
            }
        }
    }
}

/// A 2048-bit RSA key from the `openssl` CLI: its DER and the modulus (big-endian).
fn openssl_rsa_key() -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("fake-oidc: tempdir");
    let path = dir.path().join("rsa.der");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-outform", "DER", "-out"])
        .arg(&path)
        .output()
        .expect("fake-oidc: the RS256 tests need the openssl CLI on PATH");
    assert!(status.status.success(), "openssl genpkey failed: {}", String::from_utf8_lossy(&status.stderr));
    let out = Command::new("openssl")
        .args(["rsa", "-inform", "DER", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .expect("fake-oidc: openssl rsa -modulus");
    assert!(out.status.success(), "openssl rsa -modulus failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("fake-oidc: modulus is text");
    let hex = text.trim().strip_prefix("Modulus=").expect("fake-oidc: Modulus= line");
    let modulus = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("fake-oidc: modulus hex"))
        .collect();
    (std::fs::read(&path).expect("fake-oidc: read RSA key"), modulus)
}

struct Shared {
    issuer: String,
    keys: Mutex<Vec<SigningKey>>,
    jwks_fetches: AtomicUsize,
    next_kid: AtomicUsize,
    login: Mutex<LoginState>,
}

/// The person `/authorize` signs in.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub sub: String,
    pub email: String,
    pub groups: Vec<String>,
}

/// A lie the token endpoint tells in the ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A `nonce` other than the one of the authorization request.
    WrongNonce,
    /// `aud` names another client.
    WrongAudience,
}

/// One `/authorize` request, as received.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
}

/// One `/token` request: the form as received (`code_verifier` included) and the Basic credentials, decoded.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub form: std::collections::HashMap<String, String>,
    pub basic: Option<String>,
}

/// A redeemed code: what the ID token is made from.
struct Grant {
    client_id: String,
    nonce: String,
    user: FakeUser,
    misbehaviour: Option<Misbehaviour>,
}

#[derive(Default)]
struct LoginState {
    user: Option<FakeUser>,
    misbehaviour: Option<Misbehaviour>,
    client_secret: Option<String>,
    /// Codes not yet redeemed, with the request that got them.
    codes: std::collections::HashMap<String, (AuthorizeRequest, FakeUser)>,
    authorizations: Vec<AuthorizeRequest>,
    token_requests: Vec<TokenRequest>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake issuer; stops when dropped.
pub struct FakeOidc {
    ca_pem: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeOidc {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeOidc {
    /// Starts over HTTPS on a random loopback port with one key per algorithm.
    pub async fn start() -> FakeOidc {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("fake-oidc: bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("fake-oidc: local address");
        let (ca_pem, server_config) = generate_certs();
        let shared = Arc::new(Shared {
            issuer: format!("https://{addr}"),
            keys: Mutex::new(Vec::new()),
            jwks_fetches: AtomicUsize::new(0),
            next_kid: AtomicUsize::new(1),
            login: Mutex::new(LoginState::default()),
        });
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            let key = SigningKey::generate(alg, shared.new_kid(alg));
            lock(&shared.keys).push(key);
        }
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize_endpoint))
            .route("/token", axum::routing::post(token_endpoint))
            .with_state(shared.clone());
        let server = tokio::spawn(serve(listener, TlsAcceptor::from(Arc::new(server_config)), app));
        FakeOidc { ca_pem, shared, server }
    }

    /// The issuer URL (`https://127.0.0.1:PORT`), the `iss` of its tokens.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// The kid of the current key for `alg`.
    pub fn kid(&self, alg: Alg) -> String {
        lock(&self.shared.keys).iter().find(|k| k.alg == alg).map(|k| k.kid.clone()).expect("fake-oidc: key for alg")
    }

    /// The public JWK of the current key for `alg`.
    pub fn public_jwk(&self, alg: Alg) -> Value {
        lock(&self.shared.keys).iter().find(|k| k.alg == alg).map(|k| k.jwk.clone()).expect("fake-oidc: key for alg")
    }

    /// A token for `claims`, signed with the current key for `alg` (header `alg`, `kid`, `typ: JWT`).
    pub fn sign(&self, alg: Alg, claims: &Value) -> String {
        let header = json!({ "alg": alg.name(), "kid": self.kid(alg), "typ": "JWT" });
        self.sign_with_header(alg, &header, claims)
    }

    /// A token with exactly `header`, signed with the current key for `alg`.
    pub fn sign_with_header(&self, alg: Alg, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let keys = lock(&self.shared.keys);
        let key = keys.iter().find(|k| k.alg == alg).expect("fake-oidc: key for alg");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
    }

    /// A token that names the current `alg` key's kid but is signed by another (unpublished) key: a forgery.
    pub fn sign_with_unpublished_key(&self, alg: Alg, claims: &Value) -> String {
        let kid = self.kid(alg);
        let impostor = SigningKey::generate(alg, kid.clone());
        let input = signing_input(&json!({ "alg": alg.name(), "kid": kid, "typ": "JWT" }), claims);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(impostor.sign(input.as_bytes())))
    }

    /// Replace the key for `alg` with a new one under a new kid (the old one is no longer published); returns
    /// the new kid.
    pub fn rotate(&self, alg: Alg) -> String {
        let kid = self.shared.new_kid(alg);
        let key = SigningKey::generate(alg, kid.clone());
        let mut keys = lock(&self.shared.keys);
        keys.retain(|k| k.alg != alg);
        keys.push(key);
        kid
    }
}

// === authorization code flow ===

impl FakeOidc {
    /// The person the next `/authorize` signs in (`sub`, `email`, `groups`).
    pub fn set_user(&self, email: &str, groups: &[&str]) {
        let user = FakeUser {
            sub: format!("opaque-{}", email.len()),
            email: email.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        lock(&self.shared.login).user = Some(user);
    }

    /// Make the token endpoint lie (or, with `None`, stop lying).
    pub fn misbehave(&self, misbehaviour: Option<Misbehaviour>) {
        lock(&self.shared.login).misbehaviour = misbehaviour;
    }

    /// Require this client secret (HTTP Basic) at the token endpoint.
    pub fn require_client_secret(&self, secret: &str) {
        lock(&self.shared.login).client_secret = Some(secret.to_owned());
    }

    /// What `GET /authorize` would answer for `url` (the authorization URL Airlock redirected to): the
    /// `Location` it redirects the browser to, with `code` and `state`. Panics on a request the fake refuses.
    pub fn authorize(&self, url: &str) -> String {
        let endpoint = format!("{}/authorize?", self.shared.issuer);
        let query = url.strip_prefix(&endpoint).unwrap_or_else(|| panic!("fake-oidc: {url} is not {endpoint}…"));
        let params: std::collections::HashMap<String, String> =
            serde_urlencoded::from_str(query).expect("fake-oidc: authorization query");
        self.shared.authorize(&params).unwrap_or_else(|e| panic!("fake-oidc: /authorize refused: {e}"))
    }

    /// Every `/authorize` request so far.
    pub fn authorizations(&self) -> Vec<AuthorizeRequest> {
        lock(&self.shared.login).authorizations.clone()
    }

    /// Every `/token` request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.login).token_requests.clone()
    }
}

impl Shared {
    /// The authorization endpoint's answer: the redirect location, or why the request is refused.
    fn authorize(&self, params: &std::collections::HashMap<String, String>) -> Result<String, String> {
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        let request = AuthorizeRequest {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            nonce: get("nonce"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
        };
        let mut login = lock(&self.login);
        login.authorizations.push(request.clone());
        if request.response_type != "code" {
            return Err(format!("response_type {:?}", request.response_type));
        }
        if request.client_id.is_empty() || request.redirect_uri.is_empty() || request.code_challenge.is_empty() {
            return Err("client_id, redirect_uri and code_challenge are required".into());
        }
        if request.code_challenge_method != "S256" {
            return Err(format!("code_challenge_method {:?}", request.code_challenge_method));
        }
        let user = login.user.clone().ok_or("no user set (FakeOidc::set_user)")?;
        let code = random_hex();
        let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", request.state.as_str())])
            .map_err(|e| e.to_string())?;
        let location = format!("{}?{query}", request.redirect_uri);
        login.codes.insert(code, (request, user));
        Ok(location)
    }

    /// The token endpoint's answer: the token response, or an OAuth error (status, `error`).
    fn token(
        &self,
        form: std::collections::HashMap<String, String>,
        basic: Option<String>,
    ) -> Result<Grant, (axum::http::StatusCode, &'static str)> {
        use axum::http::StatusCode;
        let mut login = lock(&self.login);
        login.token_requests.push(TokenRequest { form: form.clone(), basic: basic.clone() });
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
        if get("grant_type") != "authorization_code" {
            return Err((StatusCode::BAD_REQUEST, "unsupported_grant_type"));
        }
        if let Some(secret) = &login.client_secret
            && basic.as_deref() != Some(format!("{}:{secret}", get("client_id")).as_str())
        {
            return Err((StatusCode::UNAUTHORIZED, "invalid_client"));
        }
        // A code works once, whatever happens next.
        let (request, user) = login.codes.remove(get("code")).ok_or((StatusCode::BAD_REQUEST, "invalid_grant"))?;
        if get("redirect_uri") != request.redirect_uri || get("client_id") != request.client_id {
            return Err((StatusCode::BAD_REQUEST, "invalid_grant"));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
        if URL_SAFE_NO_PAD.encode(digest.as_ref()) != request.code_challenge {
            return Err((StatusCode::BAD_REQUEST, "invalid_grant"));
        }
        Ok(Grant { client_id: request.client_id, nonce: request.nonce, user, misbehaviour: login.misbehaviour })
    }

    fn new_kid(&self, alg: Alg) -> String {
        format!("{}-{}", alg.name().to_ascii_lowercase(), self.next_kid.fetch_add(1, Ordering::SeqCst))
    }
}

/// `base64url(header).base64url(claims)`.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
    format!("{}.{}", enc(header), enc(claims))
}

async fn discovery(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer),
        "authorization_endpoint": format!("{}/authorize", shared.issuer),
        "token_endpoint": format!("{}/token", shared.issuer),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

async fn authorize_endpoint(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(params): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    match shared.authorize(&params) {
        Ok(location) => (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, location)]).into_response(),
        Err(e) => (axum::http::StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn token_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    let form: std::collections::HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    // RFC 6749 §2.3.1: both halves are form-encoded inside the Basic credentials.
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}")).ok()?.pop().map(|(_, v)| v)
            };
            Some(format!("{}:{}", decode(id)?, decode(secret)?))
        });
    let Grant { client_id, nonce, user, misbehaviour } = match shared.token(form, basic) {
        Ok(grant) => grant,
        Err((status, error)) => return (status, Json(json!({ "error": error }))).into_response(),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims = json!({
        "iss": shared.issuer,
        "aud": if misbehaviour == Some(Misbehaviour::WrongAudience) { "another-client".to_owned() } else { client_id },
        "sub": user.sub,
        "email": user.email,
        "email_verified": true,
        "groups": user.groups,
        "nonce": if misbehaviour == Some(Misbehaviour::WrongNonce) { "not-the-nonce".to_owned() } else { nonce },
        "iat": now,
        "exp": now + 300,
    });
    let id_token = {
        let keys = lock(&shared.keys);
        let key = keys.iter().find(|k| k.alg == Alg::Es256).expect("fake-oidc: ES256 key");
        let input = signing_input(&json!({ "alg": "ES256", "kid": key.kid, "typ": "JWT" }), &claims);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
    };
    Json(json!({ "access_token": random_hex(), "token_type": "Bearer", "id_token": id_token, "expires_in": 300 }))
        .into_response()
}

/// 128 random bits, hex: codes and access tokens.
fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).expect("fake-oidc: random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = lock(&shared.keys).iter().map(|k| k.jwk.clone()).collect();
    Json(json!({ "keys": keys }))
}

/// A CA and a server certificate for 127.0.0.1 signed by it; returns the CA PEM and the server TLS config.
fn generate_certs() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    let ca_key = KeyPair::generate().expect("fake-oidc: CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("fake-oidc: CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "fake-oidc CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("fake-oidc: self-sign CA");

    let server_key = KeyPair::generate().expect("fake-oidc: server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("fake-oidc: server params");
    params.distinguished_name.push(DnType::CommonName, "fake-oidc");
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_cert = params.signed_by(&server_key, &issuer).expect("fake-oidc: sign server cert");

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    // The ring provider explicitly: aws-lc-rs is not built.
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("fake-oidc: TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .expect("fake-oidc: server certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), config)
}

/// Accepts connections until the task is aborted (dropping the set closes them all).
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}
