//! OIDC / JWT bearer tokens for agents and CI jobs, next to Airlock API tokens.
//!
//! A presented bearer with three dot-separated base64url parts is a JWT. It is accepted only when it was signed
//! by a key of one of the configured issuers (`[[oidc.issuers]]`), and its `iss`, `aud`, `exp` and `nbf` hold.
//! The keys come from the issuer's JWKS, found through `/.well-known/openid-configuration` and fetched over
//! rustls (ring), cached per issuer and refetched when a token names a key id the cache does not know.
//!
//! The algorithm a signature is checked with comes from the issuer's key (RSA → RS256, P-256 → ES256,
//! Ed25519 → EdDSA), never from the token header alone: the header must merely agree. That is what defeats
//! `alg: none` and HS256 signed with the public key as the HMAC secret.
//!
//! Refusals carry a precise reason (`expired`, `audience mismatch`, `unknown kid`, …) for the audit log only;
//! the agent sees a plain `invalid token`. No token is ever logged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::HumanDuration;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentityKind};

/// A cached JWKS is reloaded after this long, so keys an issuer withdrew stop being accepted.
const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// At most one refetch for an unknown `kid` per this interval: garbage tokens cannot make Airlock hammer the
/// issuer.
const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed (re)load, wait this long before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Time limit of one discovery or JWKS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery document or JWKS accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Largest JWT looked at (a real one is a few KiB).
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest on-behalf-of value accepted, from a claim or a header.
const MAX_ON_BEHALF_OF_CHARS: usize = 256;

// === config ===

/// `[oidc]`: issuers whose JWTs are accepted as bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// `[[oidc.issuers]]`, one per trusted issuer (CI system, identity provider).
    pub issuers: Vec<IssuerConfig>,
}

/// One trusted OIDC issuer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer URL (`https://…`); a token's `iss` must equal it exactly. Its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accepted audiences: a token's `aud` must contain one of them.
    #[serde(deserialize_with = "one_or_many")]
    #[schemars(with = "OneOrMany")]
    pub audience: Vec<String>,
    /// Claim holding the caller's groups (dotted path for nested claims, e.g. `realm_access.roles`); a list of
    /// strings or one space-separated string.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Put in front of `sub` to form the Airlock subject (e.g. `ci:`), so JWT subjects cannot collide with API
    /// token names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_prefix: Option<String>,
    /// PEM file of the CA that signs the issuer's TLS certificate (private issuers). Without it the platform's
    /// trust store is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Claim naming the human the agent acts for (dotted path allowed).
    #[serde(default = "default_on_behalf_of_claim")]
    pub on_behalf_of_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway: HumanDuration,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

fn default_groups_claim() -> String {
    "groups".to_owned()
}

/// Not RFC 8693's `act.sub`: there `act` names the *actor* (the agent), the opposite of what is needed here.
fn default_on_behalf_of_claim() -> String {
    "on_behalf_of".to_owned()
}

fn default_leeway() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

impl OidcConfig {
    /// Check the issuers: HTTPS URLs, unique, with an audience. `Err((key, message))`.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let mut seen = BTreeSet::new();
        for (i, c) in self.issuers.iter().enumerate() {
            let key = |k: &str| format!("oidc.issuers[{i}].{k}");
            let parsed = url::Url::parse(&c.issuer).map_err(|e| (key("issuer"), format!("not a URL: {e}")))?;
            if parsed.scheme() != "https" {
                return Err((key("issuer"), "must be an https:// URL (keys are fetched from it)".into()));
            }
            if !seen.insert(c.issuer.as_str()) {
                return Err((key("issuer"), "listed twice".into()));
            }
            if c.audience.is_empty() || c.audience.iter().any(String::is_empty) {
                return Err((key("audience"), "at least one non-empty audience is required".into()));
            }
            if c.groups_claim.is_empty() {
                return Err((key("groups_claim"), "must not be empty".into()));
            }
            if c.on_behalf_of_claim.is_empty() {
                return Err((key("on_behalf_of_claim"), "must not be empty".into()));
            }
        }
        Ok(())
    }
}

/// `[web.oidc]`: people sign in to the web UI at an OpenID Connect provider (authorization code flow with
/// PKCE). Register Airlock there with the redirect URI `{server.public_url}/login/oidc/callback`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebOidcConfig {
    /// The provider's issuer URL (`https://…`); its discovery document names the endpoints and keys.
    pub issuer: String,
    /// Airlock's client id at the provider; ID tokens must name it in `aud`.
    pub client_id: String,
    /// Confidential clients: the client secret, sent with HTTP Basic to the token endpoint. Absent: a public
    /// client, protected by PKCE alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<crate::vault::CredentialRef>,
    /// Scopes asked for; add the provider's groups scope if it needs one.
    #[serde(default = "default_web_scopes")]
    pub scopes: Vec<String>,
    /// Claim holding the person's groups (dotted path allowed); mapped to roles by `[web] *_groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Claim naming the person in Airlock (dotted path allowed). `email` by default: `sub` is opaque for people.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// PEM file of the CA that signs the provider's TLS certificate (private providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Text of the sign-in button.
    #[serde(default = "default_web_label")]
    pub label: String,
}

fn default_web_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

fn default_subject_claim() -> String {
    "email".to_owned()
}

fn default_web_label() -> String {
    "Sign in with SSO".to_owned()
}

impl WebOidcConfig {
    /// Check the provider settings. `Err((key, message))`.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let key = |k: &str| format!("web.oidc.{k}");
        let parsed = url::Url::parse(&self.issuer).map_err(|e| (key("issuer"), format!("not a URL: {e}")))?;
        if parsed.scheme() != "https" {
            return Err((key("issuer"), "must be an https:// URL".into()));
        }
        if self.client_id.is_empty() {
            return Err((key("client_id"), "must not be empty".into()));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err((key("scopes"), "must include \"openid\"".into()));
        }
        for (k, v) in [("groups_claim", &self.groups_claim), ("subject_claim", &self.subject_claim)] {
            if v.is_empty() {
                return Err((key(k), "must not be empty".into()));
            }
        }
        Ok(())
    }

    /// The provider as a token issuer whose ID tokens are for this client: what [`Verifier`] checks them with.
    pub fn issuer_config(&self) -> IssuerConfig {
        IssuerConfig {
            issuer: self.issuer.clone(),
            audience: vec![self.client_id.clone()],
            groups_claim: self.groups_claim.clone(),
            subject_prefix: None,
            ca_cert: self.ca_cert.clone(),
            on_behalf_of_claim: default_on_behalf_of_claim(),
            leeway: default_leeway(),
        }
    }
}

/// Does a presented bearer look like a JWT (three dot-separated base64url parts)? Anything else is taken for
/// an Airlock API token.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// An on-behalf-of value (claim or header) is a short printable name; anything else is refused.
pub fn valid_on_behalf_of(value: &str) -> bool {
    !value.trim().is_empty() && value.chars().count() <= MAX_ON_BEHALF_OF_CHARS && !value.chars().any(char::is_control)
}

// === keys ===

/// The key material of one JWK, which fixes the one algorithm it verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// RS256: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// ES256: the uncompressed point `04 ‖ x ‖ y`.
    P256(Vec<u8>),
    /// EdDSA over Ed25519: the 32-byte public key.
    Ed25519(Vec<u8>),
}

impl KeyMaterial {
    fn alg(&self) -> &'static str {
        match self {
            KeyMaterial::Rsa { .. } => "RS256",
            KeyMaterial::P256(_) => "ES256",
            KeyMaterial::Ed25519(_) => "EdDSA",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            KeyMaterial::Rsa { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig).is_ok()
            }
            KeyMaterial::P256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
            }
            KeyMaterial::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key).verify(message, sig).is_ok(),
        }
    }
}

/// A usable signing key from an issuer's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    material: KeyMaterial,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

fn b64(field: &Option<String>) -> Option<Vec<u8>> {
    field.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
}

/// A JWK we can verify with, or `None` (other key types, encryption keys, keys declared for another algorithm).
fn parse_jwk(raw: &RawJwk) -> Option<Key> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let material = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => KeyMaterial::Rsa { n: b64(&raw.n)?, e: b64(&raw.e)? },
        ("EC", Some("P-256")) => {
            let (x, y) = (b64(&raw.x)?, b64(&raw.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial::P256(point)
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64(&raw.x)?;
            if x.len() != 32 {
                return None;
            }
            KeyMaterial::Ed25519(x)
        }
        _ => return None,
    };
    // A key declared for another algorithm (PS256, ES384…) is not used with ours.
    if raw.alg.as_deref().is_some_and(|a| a != material.alg()) {
        return None;
    }
    Some(Key { kid: raw.kid.clone(), material })
}

/// The usable keys of a JWKS document.
fn parse_jwks(doc: &Value) -> std::result::Result<Vec<Key>, String> {
    let keys = doc.get("keys").and_then(Value::as_array).ok_or("JWKS has no \"keys\" array")?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<RawJwk>(k.clone()).ok())
        .filter_map(|raw| parse_jwk(&raw))
        .collect())
}

/// The key for `kid`; without a `kid`, the issuer's only key (several keys and no `kid` is ambiguous).
fn find_key<'a>(keys: &'a [Key], kid: Option<&str>) -> Option<&'a Key> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None if keys.len() == 1 => keys.first(),
        None => None,
    }
}

// === token ===

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A JWT split and decoded, not yet trusted.
struct Parsed {
    header: Header,
    claims: serde_json::Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Algorithms a key can fix; anything else in a header is refused before any key is looked at.
const ACCEPTED_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// A value from the token, short and quoted, for a refusal reason.
fn shown(s: &str) -> String {
    let short: String = s.chars().take(80).collect();
    format!("{short:?}")
}

fn parse(token: &str) -> std::result::Result<Parsed, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("malformed JWT: too long".into());
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("malformed JWT: not three parts".into());
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| "malformed JWT: header is not base64url")?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|e| format!("malformed JWT header: {e}"))?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err("alg none refused".into());
    }
    if !ACCEPTED_ALGS.contains(&header.alg.as_str()) {
        return Err(format!("alg {} refused (RS256, ES256 and EdDSA are accepted)", shown(&header.alg)));
    }
    if header.crit.is_some() {
        return Err("unsupported critical header (crit)".into());
    }
    let claims_bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| "malformed JWT: claims are not base64url")?;
    let claims: serde_json::Map<String, Value> =
        serde_json::from_slice(&claims_bytes).map_err(|e| format!("malformed JWT claims: {e}"))?;
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| "malformed JWT: signature is not base64url")?;
    Ok(Parsed { header, claims, signing_input: format!("{h}.{c}"), signature })
}

/// A claim by dotted path (`realm_access.roles`); a claim literally named with dots wins.
pub fn claim<'a>(claims: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut segments = path.split('.');
    let mut cur = claims.get(segments.next()?)?;
    for seg in segments {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

fn numeric_date(claims: &serde_json::Map<String, Value>, name: &str) -> std::result::Result<Option<i64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("{name} claim is not a number")),
    }
}

/// Check a parsed token against its issuer's key and rules at time `now` (seconds since the epoch); the
/// identity it maps to, or the reason it is refused.
fn check(parsed: &Parsed, cfg: &IssuerConfig, key: &Key, now: i64) -> std::result::Result<Identity, String> {
    let key_alg = key.material.alg();
    if parsed.header.alg != key_alg {
        return Err(format!(
            "alg {} does not match the issuer's key {} ({key_alg})",
            shown(&parsed.header.alg),
            shown(key.kid.as_deref().unwrap_or("(no kid)"))
        ));
    }
    if !key.material.verify(parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err("bad signature".into());
    }
    let claims = &parsed.claims;
    let leeway = i64::try_from(cfg.leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = numeric_date(claims, "exp")?.ok_or("no exp claim")?;
    if now > exp.saturating_add(leeway) {
        return Err(format!("expired {} s ago", now - exp));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(format!("not yet valid: nbf is {} s in the future", nbf - now));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err("no aud claim".into()),
    };
    if !audiences.iter().any(|a| cfg.audience.iter().any(|want| want == a)) {
        return Err(format!("audience mismatch: token is for {}", shown(&audiences.join(","))));
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err("no sub claim".into()),
    };
    let groups = match claim(claims, &cfg.groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(_) => return Err(format!("{} claim is neither a list nor a string", cfg.groups_claim)),
    };
    let on_behalf_of = match claim(claims, &cfg.on_behalf_of_claim) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if valid_on_behalf_of(s) => Some(s.clone()),
        Some(_) => return Err(format!("{} claim is not a short printable string", cfg.on_behalf_of_claim)),
    };
    Ok(Identity {
        subject: format!("{}{sub}", cfg.subject_prefix.as_deref().unwrap_or("")),
        groups,
        kind: IdentityKind::Agent,
        token_id: None,
        on_behalf_of,
    })
}

// === impl Verifier ===

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Default)]
struct KeyCache {
    jwks_uri: Option<String>,
    keys: Vec<Key>,
    loaded_at: Option<Instant>,
    last_failure: Option<Instant>,
    last_kid_refetch: Option<Instant>,
}

struct Issuer {
    config: IssuerConfig,
    http: HttpsClient,
    /// Held across a fetch, so concurrent requests wait for one fetch instead of starting their own.
    cache: Mutex<KeyCache>,
}

/// Verifies JWTs of the configured issuers.
pub struct Verifier {
    issuers: Vec<Arc<Issuer>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.issuers.iter().map(|i| &i.config.issuer).collect::<Vec<_>>())
            .finish()
    }
}

/// A rustls client config on ring: `ca_cert` alone when given, else the platform's trust store.
pub fn tls_config(ca_cert: Option<&Path>) -> std::result::Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    match ca_cert {
        // A private issuer's CA replaces the platform roots: nothing else may vouch for that issuer.
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no PEM certificate in it", path.display()));
            }
            Ok(builder.with_root_certificates(roots).with_no_client_auth())
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder.with_platform_verifier().map(|b| b.with_no_client_auth()).map_err(|e| format!("trust store: {e}"))
        }
    }
}

impl Verifier {
    /// Build the verifier (TLS clients, no network yet: keys are fetched on first use).
    pub fn new(config: &OidcConfig) -> Result<Self> {
        let mut issuers = Vec::new();
        for (i, c) in config.issuers.iter().enumerate() {
            let tls = tls_config(c.ca_cert.as_deref()).map_err(|message| Error::Config {
                file: "airlock.toml".into(),
                key: format!("oidc.issuers[{i}].ca_cert"),
                message,
            })?;
            // https only: the keys that vouch for every agent must not travel in clear.
            let connector =
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
            let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
            issuers.push(Arc::new(Issuer { config: c.clone(), http, cache: Mutex::new(KeyCache::default()) }));
        }
        Ok(Self { issuers })
    }

    /// Whether any issuer is configured.
    pub fn is_enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Verify a JWT and map it to an identity. `Err(Error::Auth(reason))` names the precise cause, for the
    /// audit log only.
    pub async fn verify(&self, token: &str) -> Result<Identity> {
        self.verify_at(token, unix_now()).await.map_err(Error::Auth)
    }

    async fn verify_at(&self, token: &str, now: i64) -> std::result::Result<Identity, String> {
        let parsed = parse(token)?;
        let iss = match parsed.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err("no iss claim".into()),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| format!("unknown issuer {}", shown(iss)))?;
        let key = issuer.key(parsed.header.kid.as_deref()).await?;
        check(&parsed, &issuer.config, &key, now)
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

// === impl Issuer ===

impl Issuer {
    /// The key for `kid`, loading or refreshing the JWKS as needed.
    async fn key(&self, kid: Option<&str>) -> std::result::Result<Key, String> {
        let mut cache = self.cache.lock().await;
        let stale = cache.loaded_at.is_none_or(|t| t.elapsed() > JWKS_MAX_AGE);
        let may_retry = cache.last_failure.is_none_or(|t| t.elapsed() > RETRY_AFTER_FAILURE);
        let mut fresh = false;
        if stale && may_retry {
            match self.load(&mut cache).await {
                Ok(()) => fresh = true,
                // Stale keys still verify while the issuer is unreachable; they are better than refusing all.
                Err(e) if cache.loaded_at.is_some() => {
                    tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refresh failed; keeping cached keys");
                }
                Err(e) => return Err(format!("JWKS unavailable: {e}")),
            }
        }
        if cache.loaded_at.is_none() {
            return Err("JWKS unavailable (last fetch failed)".into());
        }
        if let Some(key) = find_key(&cache.keys, kid) {
            return Ok(key.clone());
        }
        // An unknown kid may be a key the issuer just rotated in: refetch, but at most once per interval.
        if !fresh && cache.last_kid_refetch.is_none_or(|t| t.elapsed() >= UNKNOWN_KID_REFETCH_INTERVAL) {
            cache.last_kid_refetch = Some(Instant::now());
            if let Err(e) = self.load(&mut cache).await {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refetch for an unknown kid failed");
            }
            if let Some(key) = find_key(&cache.keys, kid) {
                return Ok(key.clone());
            }
        }
        Err(match kid {
            Some(kid) => format!("unknown kid {}", shown(kid)),
            None => "no kid, and the issuer has several keys".into(),
        })
    }

    /// Discovery (once) and the JWKS.
    async fn load(&self, cache: &mut KeyCache) -> std::result::Result<(), String> {
        let result = async {
            let jwks_uri = match &cache.jwks_uri {
                Some(u) => u.clone(),
                None => {
                    let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                    let doc = self.get_json(&url).await?;
                    // The discovery document must be about this issuer (OIDC Discovery §4.3).
                    if doc.get("issuer").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
                        return Err(format!("discovery at {url} names another issuer"));
                    }
                    let uri = doc.get("jwks_uri").and_then(Value::as_str).ok_or("discovery has no jwks_uri")?;
                    if !uri.starts_with("https://") {
                        return Err(format!("jwks_uri {uri} is not https"));
                    }
                    cache.jwks_uri = Some(uri.to_owned());
                    uri.to_owned()
                }
            };
            let keys = parse_jwks(&self.get_json(&jwks_uri).await?)?;
            tracing::info!(issuer = %self.config.issuer, keys = keys.len(), "JWKS loaded");
            Ok(keys)
        }
        .await;
        match result {
            Ok(keys) => {
                cache.keys = keys;
                cache.loaded_at = Some(Instant::now());
                cache.last_failure = None;
                Ok(())
            }
            Err(e) => {
                cache.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn get_json(&self, url: &str) -> std::result::Result<Value, String> {
        let request = hyper::Request::get(url)
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::USER_AGENT, concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| format!("{url}: {e}"))?;
            if response.status() != hyper::StatusCode::OK {
                return Err(format!("{url}: HTTP {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
                .collect()
                .await
                .map_err(|e| format!("{url}: {e}"))?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{url}: no answer within {FETCH_TIMEOUT:?}"))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn cfg() -> IssuerConfig {
        IssuerConfig {
            issuer: "https://issuer.test".into(),
            audience: vec!["airlock".into()],
            groups_claim: default_groups_claim(),
            subject_prefix: Some("ci:".into()),
            ca_cert: None,
            on_behalf_of_claim: default_on_behalf_of_claim(),
            leeway: default_leeway(),
        }
    }

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn claims() -> Value {
        json!({ "iss": "https://issuer.test", "aud": "airlock", "sub": "deploy", "exp": NOW + 300,
                "groups": ["ci", "deployers"] })
    }

    type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

    struct Signer {
        key: Key,
        sign: SignFn,
    }

    fn es256(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let key = Key { kid: Some(kid.into()), material: KeyMaterial::P256(pair.public_key().as_ref().to_vec()) };
        Signer { key, sign: Box::new(move |m| pair.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()) }
    }

    fn ed25519(kid: &str) -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let key = Key { kid: Some(kid.into()), material: KeyMaterial::Ed25519(pair.public_key().as_ref().to_vec()) };
        Signer { key, sign: Box::new(move |m| pair.sign(m).as_ref().to_vec()) }
    }

    fn token(s: &Signer, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", enc(header), enc(claims));
        let sig = (s.sign)(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn verify(s: &Signer, header: &Value, claims: &Value) -> std::result::Result<Identity, String> {
        let parsed = parse(&token(s, header, claims))?;
        check(&parsed, &cfg(), &s.key, NOW)
    }

    #[test]
    fn valid_es256_and_eddsa_tokens_map_subject_groups_and_on_behalf_of() {
        let es = es256("k1");
        let id = verify(&es, &json!({"alg": "ES256", "kid": "k1"}), &claims()).unwrap();
        assert_eq!(id.subject, "ci:deploy");
        assert_eq!(id.groups, ["ci", "deployers"]);
        assert_eq!(id.on_behalf_of, None);
        let ed = ed25519("k2");
        let mut c = claims();
        c["on_behalf_of"] = json!("alice@example.com");
        c["aud"] = json!(["other", "airlock"]);
        let id = verify(&ed, &json!({"alg": "EdDSA", "kid": "k2"}), &c).unwrap();
        assert_eq!(id.on_behalf_of.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn alg_none_and_hmac_are_refused_before_any_key_is_used() {
        let none = format!("{}.{}.", enc(&json!({"alg": "none"})), enc(&claims()));
        assert_eq!(parse(&none).err().unwrap(), "alg none refused");
        let none = format!("{}.{}.", enc(&json!({"alg": "NONE"})), enc(&claims()));
        assert_eq!(parse(&none).err().unwrap(), "alg none refused");
        let hs = format!("{}.{}.AAAA", enc(&json!({"alg": "HS256"})), enc(&claims()));
        assert!(parse(&hs).err().unwrap().starts_with("alg \"HS256\" refused"));
    }

    #[test]
    fn header_alg_must_match_the_key_type() {
        // An ES256 signature presented as EdDSA against the EC key: the key decides, the header must agree.
        let es = es256("k1");
        let err = verify(&es, &json!({"alg": "EdDSA", "kid": "k1"}), &claims()).unwrap_err();
        assert!(err.contains("does not match the issuer's key"), "{err}");
    }

    #[test]
    fn tampered_claims_fail_the_signature() {
        let es = es256("k1");
        let good = token(&es, &json!({"alg": "ES256"}), &claims());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = claims();
        c["sub"] = json!("admin");
        parts[1] = enc(&c);
        let parsed = parse(&parts.join(".")).unwrap();
        assert_eq!(check(&parsed, &cfg(), &es.key, NOW).unwrap_err(), "bad signature");
        // Another key of the same type does not verify it either.
        let other = es256("k1");
        let parsed = parse(&good).unwrap();
        assert_eq!(check(&parsed, &cfg(), &other.key, NOW).unwrap_err(), "bad signature");
    }

    #[test]
    fn time_claims_hold_with_leeway() {
        let es = es256("k1");
        let h = json!({"alg": "ES256"});
        let mut c = claims();
        c["exp"] = json!(NOW - 30);
        assert!(verify(&es, &h, &c).is_ok(), "within the 60 s leeway");
        c["exp"] = json!(NOW - 61);
        assert!(verify(&es, &h, &c).unwrap_err().starts_with("expired"));
        c["exp"] = json!(NOW + 300);
        c["nbf"] = json!(NOW + 120);
        assert!(verify(&es, &h, &c).unwrap_err().starts_with("not yet valid"));
        c["nbf"] = json!(NOW + 30);
        assert!(verify(&es, &h, &c).is_ok());
        let mut c = claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&es, &h, &c).unwrap_err(), "no exp claim");
    }

    #[test]
    fn audience_subject_and_claim_shapes_are_checked() {
        let es = es256("k1");
        let h = json!({"alg": "ES256"});
        let mut c = claims();
        c["aud"] = json!("someone-else");
        assert!(verify(&es, &h, &c).unwrap_err().starts_with("audience mismatch"));
        let mut c = claims();
        c["sub"] = json!("");
        assert_eq!(verify(&es, &h, &c).unwrap_err(), "no sub claim");
        let mut c = claims();
        c["groups"] = json!("ci  ops");
        assert_eq!(verify(&es, &h, &c).unwrap().groups, ["ci", "ops"]);
        let mut c = claims();
        c["on_behalf_of"] = json!({"nested": true});
        assert!(verify(&es, &h, &c).is_err());
    }

    #[test]
    fn nested_claims_are_found_by_dotted_path() {
        let c = json!({"realm_access": {"roles": ["a"]}, "act.sub": "literal"});
        let map = c.as_object().unwrap();
        assert_eq!(claim(map, "realm_access.roles"), Some(&json!(["a"])));
        assert_eq!(claim(map, "act.sub"), Some(&json!("literal")));
        assert_eq!(claim(map, "missing.path"), None);
    }

    #[test]
    fn jwks_keys_fix_their_algorithm_and_unusable_keys_are_skipped() {
        let es = es256("k1");
        let KeyMaterial::P256(point) = &es.key.material else { unreachable!() };
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..]));
        let doc = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "k1", "x": x, "y": y, "use": "sig"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "x": x, "y": y, "use": "enc"},
            {"kty": "EC", "crv": "P-256", "kid": "es384", "x": x, "y": y, "alg": "ES384"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB", "alg": "RS256"}
        ]});
        let keys = parse_jwks(&doc).unwrap();
        let kids: Vec<_> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, ["k1", "rsa"]);
        assert_eq!(find_key(&keys, Some("k1")), Some(&es.key));
        assert_eq!(find_key(&keys, None), None, "several keys and no kid is ambiguous");
        // A too-short RSA modulus never verifies.
        let rsa = &keys[1];
        assert!(!rsa.material.verify(b"x", b"y"));
    }

    #[test]
    fn jwt_shape_tells_tokens_apart() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("alk_0123456789ab_deadbeef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }

    #[test]
    fn web_sign_in_config_has_defaults_and_is_checked() {
        let c: WebOidcConfig = toml::from_str("issuer = \"https://idp.test\"\nclient_id = \"airlock-web\"").unwrap();
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!((c.subject_claim.as_str(), c.groups_claim.as_str()), ("email", "groups"));
        assert_eq!(c.label, "Sign in with SSO");
        assert!(c.validate().is_ok());
        // ID tokens are for this client, from this issuer.
        let issuer = c.issuer_config();
        assert_eq!(issuer.issuer, "https://idp.test");
        assert_eq!(issuer.audience, ["airlock-web"]);
        let mut bad = c.clone();
        bad.issuer = "http://idp.test".into();
        assert_eq!(bad.validate().unwrap_err().0, "web.oidc.issuer");
        let mut bad = c.clone();
        bad.scopes = vec!["email".into()];
        assert_eq!(bad.validate().unwrap_err().0, "web.oidc.scopes");
        assert!(toml::from_str::<WebOidcConfig>("issuer = \"https://i\"\nclient_id = \"a\"\nredirect = 1").is_err());
    }

    #[test]
    fn config_requires_https_issuers_and_an_audience() {
        let ok = OidcConfig { issuers: vec![cfg()] };
        assert!(ok.validate().is_ok());
        let mut c = cfg();
        c.issuer = "http://issuer.test".into();
        assert_eq!(OidcConfig { issuers: vec![c] }.validate().unwrap_err().0, "oidc.issuers[0].issuer");
        let mut c = cfg();
        c.audience.clear();
        assert_eq!(OidcConfig { issuers: vec![c] }.validate().unwrap_err().0, "oidc.issuers[0].audience");
        let parsed: IssuerConfig =
            toml::from_str("issuer = \"https://i\"\naudience = \"airlock\"\nleeway = \"30s\"").unwrap();
        assert_eq!(parsed.audience, ["airlock"]);
        assert_eq!(parsed.groups_claim, "groups");
        assert!(toml::from_str::<IssuerConfig>("issuer = \"https://i\"\naudience = \"a\"\nbogus = 1").is_err());
    }
}
