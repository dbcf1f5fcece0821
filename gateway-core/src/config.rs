//! `airlock.toml`: one typed struct, parsed and validated once at start-up.
//!
//! Every key can be overridden by an environment variable: `AIRLOCK_` followed by the key path in upper case,
//! segments joined by `__` (double underscore): `AIRLOCK_SERVER__LISTEN=0.0.0.0:8080`,
//! `AIRLOCK_STORE__URL=postgres://…`, `AIRLOCK_CONNECTIONS__SHOP__READ_ONLY=true`. Values are read as TOML
//! scalars or arrays when they parse as such (`true`, `500`, `["a","b"]`), as strings otherwise. Unknown keys
//! are errors naming their path, so a typo never silently changes behaviour.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classify::Dialect;
use crate::error::{Error, Result};
use crate::vault::CredentialRef;

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub store: StoreConfig,
    pub policy: PolicyConfig,
    pub limits: Limits,
    pub masking: MaskingConfig,
    pub approval: ApprovalConfig,
    /// People who may approve, and how chat users map to them.
    pub humans: Vec<HumanConfig>,
    /// The Slack approval bot; absent: no Slack.
    pub slack: Option<SlackConfig>,
    /// The Discord approval bot; absent: no Discord.
    pub discord: Option<DiscordConfig>,
    /// Targets agents may reach, by name (the name agents pass as `connection`).
    pub connections: BTreeMap<String, ConnectionConfig>,
    /// How long recorded sessions are kept.
    pub retention: RetentionConfig,
    /// The replay / review web UI served by `airlock serve`.
    pub web: WebConfig,
    /// Prometheus `/metrics`; absent: not served.
    pub metrics: Option<MetricsConfig>,
    /// The typed audit stream (JSON lines, SIEM webhooks).
    pub audit: crate::audit::AuditConfig,
    /// OIDC issuers whose JWTs agents may present instead of Airlock API tokens.
    pub oidc: crate::oidc::OidcConfig,
    /// Identity rules (who may assert on whose behalf it acts).
    pub identity: crate::identity::IdentityConfig,
}

/// Prometheus `/metrics`. It says what agents did and which rules fired, so it is never public: serve it on a
/// separate (internal) address, or on the main listener behind a bearer token, or both.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// A separate listen address (e.g. `127.0.0.1:9464`) serving `GET /metrics` without a token.
    pub listen: Option<String>,
    /// A bearer token that `GET /metrics` on the main listener must present.
    pub token: Option<CredentialRef>,
}

/// The web UI: who gets which role, and how its session cookie behaves.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the web UI (`/login`, `/sessions`, `/approvals`).
    pub enabled: bool,
    /// `[[humans]]` groups whose members may read sessions, search and export.
    pub reviewer_groups: Vec<String>,
    /// Groups whose members may also vote in `/approvals` (policies still decide whose vote counts).
    pub approver_groups: Vec<String>,
    /// Groups whose members may do everything.
    pub admin_groups: Vec<String>,
    /// Mark the session cookie `Secure` (and name it `__Host-…`). Absent: on, unless `server.public_url` is
    /// plain http on a loopback host.
    pub cookie_secure: Option<bool>,
    /// How long a sign-in lasts.
    pub session_lifetime: HumanDuration,
    /// How long a login link from `airlock users login-link` stays valid.
    pub login_link_lifetime: HumanDuration,
    /// With no chat bot configured, let held calls wait in `/approvals` instead of failing closed for lack of an
    /// approval channel. Off by default: someone must be watching the inbox.
    pub approval_inbox: bool,
    /// Approval channels (as written in policies: `#db-approvals`, `discord:123…`) whose posted replay links
    /// carry a signature scoped to that one session, so anyone in the channel can open it without signing in
    /// until it expires. Empty (the default): replay links need a signed-in reviewer.
    pub signed_link_channels: Vec<String>,
    /// How long such a signed link stays valid after it is posted.
    pub signed_link_lifetime: HumanDuration,
    /// `[web.oidc]`: sign-in at an OpenID Connect provider, next to local accounts. Absent: local sign-in only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<crate::oidc::WebOidcConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            reviewer_groups: vec!["reviewer".into()],
            approver_groups: vec!["approver".into()],
            admin_groups: vec!["admin".into()],
            cookie_secure: None,
            session_lifetime: HumanDuration(Duration::from_secs(8 * 3600)),
            login_link_lifetime: HumanDuration(Duration::from_secs(15 * 60)),
            approval_inbox: false,
            signed_link_channels: Vec::new(),
            signed_link_lifetime: HumanDuration(Duration::from_secs(3600)),
            oidc: None,
        }
    }
}

impl WebConfig {
    /// Whether the session cookie is `Secure` for this public URL.
    pub fn cookie_secure_for(&self, public_url: &str) -> bool {
        self.cookie_secure.unwrap_or_else(|| {
            let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"];
            !loopback
                .iter()
                .any(|p| public_url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])))
        })
    }
}

/// Retention of recorded sessions. Whole sessions are purged, never parts; each purge is recorded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a session is kept after its last event; absent: forever. A connection's `retention_days` overrides
    /// it for sessions that used that connection (a session that used several is kept for the longest).
    pub days: Option<u32>,
    /// How often `airlock serve` looks for sessions past retention.
    pub purge_every: HumanDuration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { days: None, purge_every: HumanDuration(Duration::from_secs(3600)) }
    }
}

/// Where Airlock listens and how it is reached from outside.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address of `airlock serve` (MCP, webhooks, web UI).
    pub listen: String,
    /// Public base URL, used in replay links (`{public_url}/sessions/<id>`).
    pub public_url: String,
    /// Host header values accepted on HTTP (DNS-rebinding protection). Empty: derived from listen/public_url.
    pub allowed_hosts: Vec<String>,
    /// Origin header values accepted on HTTP when a browser sends one. Empty: only the public URL's origin.
    pub allowed_origins: Vec<String>,
    /// Largest accepted HTTP request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Airlock's own store: sessions, events, tokens.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/airlock.db` (created if missing) or `postgres://user@host/db`.
    pub url: String,
    /// Password for a Postgres store, by reference.
    pub password: Option<CredentialRef>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { url: "sqlite://airlock-data/airlock.db".into(), password: None }
    }
}

/// Where policy files live.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory of `*.yaml` policy files, loaded in file-name order. Relative to the config file.
    pub dir: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("policies") }
    }
}

/// Caps that protect the gateway and the targets. Connections may lower or raise them individually.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted statement or command, in bytes; larger input is refused before parsing.
    pub max_statement_bytes: usize,
    /// Rows returned when the caller does not ask for fewer (the result says when it was truncated).
    pub max_rows: u32,
    /// Largest result returned, in bytes of cell text; the result is truncated past it.
    pub max_output_bytes: usize,
    /// Time limit of one statement or command.
    pub statement_timeout: HumanDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_statement_bytes: 256 * 1024,
            max_rows: 500,
            max_output_bytes: 4 * 1024 * 1024,
            statement_timeout: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// Masking settings that are not policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingConfig {
    /// Key of the `hash` strategy (keyed HMAC). Without it, a random key is made per process start, so hashes
    /// stay joinable within one run only.
    pub hash_key: Option<CredentialRef>,
}

/// How held calls wait.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalConfig {
    /// How long a held tool call waits (sending progress notifications) before returning `pending_approval`.
    /// Keep it below the MCP client's read timeout.
    pub in_call_wait: HumanDuration,
    /// Longest wait one `await_approval` call may ask for.
    pub max_await: HumanDuration,
    /// Channel used when the rule names none.
    pub default_channel: String,
    /// Channel where admin changes made with `/airlock` (policy set / rollback, freeze) are announced. Absent:
    /// they are announced in the channel the command came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_channel: Option<String>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        Self {
            in_call_wait: HumanDuration(Duration::from_secs(20)),
            max_await: HumanDuration(Duration::from_secs(60)),
            default_channel: "#airlock-approvals".into(),
            audit_channel: None,
        }
    }
}

/// How Slack reaches Airlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlackMode {
    /// Slack POSTs interactions to `{public_url}/slack/interactions` (needs a public URL).
    #[default]
    Http,
    /// Airlock opens a Socket Mode WebSocket to Slack (no public URL needed; needs `app_token`).
    Socket,
}

/// The Slack approval bot.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Bot token (`xoxb-…`), by reference.
    pub bot_token: CredentialRef,
    /// Signing secret, by reference; required in `http` mode.
    #[serde(default)]
    pub signing_secret: Option<CredentialRef>,
    /// App-level token (`xapp-…`), by reference; required in `socket` mode.
    #[serde(default)]
    pub app_token: Option<CredentialRef>,
    #[serde(default)]
    pub mode: SlackMode,
    /// Slack Web API base URL (tests point it at a local fake).
    #[serde(default = "default_slack_api")]
    pub api_base_url: String,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

/// How Discord reaches Airlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscordMode {
    /// Discord POSTs interactions to `{public_url}/discord/interactions` (needs a public URL and `public_key`).
    #[default]
    Http,
    /// Airlock keeps a Discord Gateway WebSocket open and receives interactions on it (no public URL needed).
    Gateway,
}

/// The Discord approval bot.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// Bot token, by reference.
    pub bot_token: CredentialRef,
    /// The application's id (registers `/airlock`, edits interaction responses).
    pub application_id: String,
    /// The application's Ed25519 public key (64 hex characters); required in `http` mode.
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub mode: DiscordMode,
    /// Discord REST API base URL (tests point it at a local fake).
    #[serde(default = "default_discord_api")]
    pub api_base_url: String,
    /// Gateway WebSocket URL; absent: asked from `GET /gateway/bot`.
    #[serde(default)]
    pub gateway_url: Option<String>,
}

fn default_discord_api() -> String {
    "https://discord.com/api/v10".into()
}

/// A person: their Airlock identity and the chat accounts that act as them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanConfig {
    /// Airlock identity (`alice@example.com`).
    pub subject: String,
    /// Groups, e.g. the approver groups named in policies (`dba`, `oncall`) and `admin`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Slack user id (`U012AB3CD`).
    #[serde(default)]
    pub slack_user: Option<String>,
    /// Discord user id.
    #[serde(default)]
    pub discord_user: Option<String>,
}

/// What kind of target a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    Postgres,
    Mysql,
    Sqlite,
    /// A host reached over SSH (`ssh_run`).
    Ssh,
    /// A Kubernetes API server (`kube_exec`).
    Kubernetes,
}

impl ConnectionKind {
    /// The dialect used when the connection does not name one (SQL kinds; others never parse SQL).
    pub fn default_dialect(self) -> Dialect {
        match self {
            ConnectionKind::Postgres | ConnectionKind::Ssh | ConnectionKind::Kubernetes => Dialect::Postgres,
            ConnectionKind::Mysql => Dialect::Mysql,
            ConnectionKind::Sqlite => Dialect::Sqlite,
        }
    }

    /// The name used in config and in `list_connections`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Postgres => "postgres",
            ConnectionKind::Mysql => "mysql",
            ConnectionKind::Sqlite => "sqlite",
            ConnectionKind::Ssh => "ssh",
            ConnectionKind::Kubernetes => "kubernetes",
        }
    }

    /// The one tool that runs on connections of this kind.
    pub fn tool(self) -> crate::policy::Tool {
        match self {
            ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite => crate::policy::Tool::SqlQuery,
            ConnectionKind::Ssh => crate::policy::Tool::SshRun,
            ConnectionKind::Kubernetes => crate::policy::Tool::KubeExec,
        }
    }
}

/// One target.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub kind: ConnectionKind,
    /// Shown to agents by `list_connections`: say what the data is, so a model picks the right one.
    #[serde(default)]
    pub description: String,
    /// SQL dialect; defaults from `kind`.
    #[serde(default)]
    pub dialect: Option<Dialect>,
    /// `postgres://user@host:5432/db`, `mysql://user@host:3306/db`, `sqlite://path.db`, `ssh://user@host:22`,
    /// or the Kubernetes API server `https://host:6443`. No password here: use `password`.
    pub url: String,
    /// The target password (SQL, or SSH password authentication), by reference. Agents never see it; it is
    /// scrubbed from every output.
    #[serde(default)]
    pub password: Option<CredentialRef>,
    /// SSH: the private key (OpenSSH or PEM format), by reference. Preferred over `password`.
    #[serde(default)]
    pub private_key: Option<CredentialRef>,
    /// SSH: the pinned host key, as a known_hosts key (`ssh-ed25519 AAAA…`) or a fingerprint
    /// (`SHA256:…`, as `ssh-keygen -lf` prints it). Required: a host that presents another key is refused.
    #[serde(default)]
    pub host_key: Option<String>,
    /// SSH and Kubernetes: time allowed to connect (and authenticate). Default 10s.
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// Kubernetes: the CA certificate(s) that sign the API server's certificate (PEM file). Without it, the
    /// system's trusted roots apply.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Kubernetes: a bearer token (service account token), by reference.
    #[serde(default)]
    pub token: Option<CredentialRef>,
    /// Kubernetes: a client certificate (PEM file) for mutual TLS, with `client_key`.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Kubernetes: the client certificate's private key (PEM), by reference.
    #[serde(default)]
    pub client_key: Option<CredentialRef>,
    /// Kubernetes: namespace globs agents may exec in (`["shop", "prod-*"]`); empty: every namespace. Calls
    /// elsewhere are refused before policy is consulted.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Run every statement in a read-only transaction enforced by the database.
    #[serde(default)]
    pub read_only: bool,
    /// Overrides `limits.max_rows`.
    #[serde(default)]
    pub max_rows: Option<u32>,
    /// Overrides `limits.max_output_bytes`.
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Overrides `limits.statement_timeout`.
    #[serde(default)]
    pub statement_timeout: Option<HumanDuration>,
    /// Overrides `retention.days` for sessions that used this connection.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

impl ConnectionConfig {
    /// Keys that belong to another kind are errors (a `host_key` on a database is a mistake, not a no-op),
    /// and each kind's required keys must be there. Returns `(key, message)`.
    fn validate_kind_keys(&self) -> std::result::Result<(), (&'static str, String)> {
        let kind = self.kind.as_str();
        let only = |key: &'static str, set: bool, kinds: &str| {
            if set { Err((key, format!("only applies to {kinds} connections, not {kind}"))) } else { Ok(()) }
        };
        let ssh = self.kind == ConnectionKind::Ssh;
        let kube = self.kind == ConnectionKind::Kubernetes;
        if !ssh {
            only("private_key", self.private_key.is_some(), "ssh")?;
            only("host_key", self.host_key.is_some(), "ssh")?;
        }
        if !kube {
            only("ca_cert", self.ca_cert.is_some(), "kubernetes")?;
            only("token", self.token.is_some(), "kubernetes")?;
            only("client_cert", self.client_cert.is_some(), "kubernetes")?;
            only("client_key", self.client_key.is_some(), "kubernetes")?;
            only("namespaces", !self.namespaces.is_empty(), "kubernetes")?;
        }
        if ssh || kube {
            only("dialect", self.dialect.is_some(), "SQL")?;
            only("read_only", self.read_only, "SQL")?;
            only("max_rows", self.max_rows.is_some(), "SQL")?;
        } else {
            only("connect_timeout", self.connect_timeout.is_some(), "ssh and kubernetes")?;
        }
        if ssh {
            let Some(host_key) = &self.host_key else {
                return Err((
                    "host_key",
                    "required: pin the host's key (`ssh-keyscan -t ed25519 HOST` prints it) so a man in the middle \
                     is refused"
                        .into(),
                ));
            };
            if !(host_key.starts_with("SHA256:") || host_key.split_whitespace().count() >= 2) {
                return Err(("host_key", "expected `ssh-ed25519 AAAA…` or `SHA256:…`".into()));
            }
            if self.private_key.is_none() && self.password.is_none() {
                return Err(("private_key", "an ssh connection needs `private_key` or `password`".into()));
            }
            let rest = self.url.trim_start_matches("ssh://");
            if !rest.contains('@') || rest.ends_with('@') || rest.starts_with('@') {
                return Err(("url", "expected ssh://USER@HOST[:PORT]".into()));
            }
        }
        if kube {
            if self.token.is_none() && self.client_cert.is_none() {
                return Err(("token", "a kubernetes connection needs `token` or `client_cert` + `client_key`".into()));
            }
            if self.client_cert.is_some() != self.client_key.is_some() {
                return Err(("client_key", "`client_cert` and `client_key` go together".into()));
            }
            for ns in &self.namespaces {
                crate::policy::compile_glob(ns).map_err(|e| ("namespaces", format!("bad glob {ns:?}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The connection's SQL dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect.unwrap_or(self.kind.default_dialect())
    }
}

/// A duration written as `30s`, `5m`, `2h`, `1d`, `250ms` (or a bare number of seconds).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Seconds, rounded down.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            let s = ms / 1000;
            match s {
                s if s != 0 && s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
                s if s != 0 && s.is_multiple_of(3_600) => write!(f, "{}h", s / 3_600),
                s if s != 0 && s.is_multiple_of(60) => write!(f, "{}m", s / 60),
                s => write!(f, "{s}s"),
            }
        }
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 2h"))?;
        let d = match unit {
            "" | "s" => Duration::from_secs(n),
            "ms" => Duration::from_millis(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3_600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            other => return Err(format!("invalid duration unit {other:?} in {s:?}: use ms, s, m, h or d")),
        };
        Ok(HumanDuration(d))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(HumanDuration(Duration::from_secs(n))),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: 250ms, 30s, 5m, 2h, 1d, or a number of seconds.",
            "oneOf": [
                { "type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)?$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

// === impl Config ===

/// Environment variables that start with `AIRLOCK_` but are not config overrides.
const NOT_OVERRIDES: &[&str] = &["AIRLOCK_TOKEN", "AIRLOCK_CONFIG", "AIRLOCK_LOG"];

impl Config {
    /// Load `path` (which may be absent: then defaults apply) and the process's `AIRLOCK_*` overrides.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::Io { path: path.to_owned(), source }),
        };
        let mut config = Self::parse(&text, &path.display().to_string(), std::env::vars())?;
        // Relative policy directories are relative to the config file, so `--config` works from anywhere.
        if config.policy.dir.is_relative()
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            config.policy.dir = parent.join(&config.policy.dir);
        }
        Ok(config)
    }

    /// Parse config text with the given environment (injectable for tests).
    pub fn parse(text: &str, file: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| Error::Config {
            file: file.to_owned(),
            key: e.span().map(|s| format!("byte {}", s.start)).unwrap_or_else(|| "(file)".into()),
            message: e.message().to_owned(),
        })?;
        for (name, value) in env {
            if let Some(rest) = name.strip_prefix("AIRLOCK_")
                && rest.contains("__")
                && !NOT_OVERRIDES.contains(&name.as_str())
            {
                let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
                apply_override(&mut table, &path, &value).map_err(|message| Error::Config {
                    file: format!("environment {name}"),
                    key: path.join("."),
                    message,
                })?;
            }
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            Error::Config {
                file: file.to_owned(),
                key: if path == "." { "(top level)".into() } else { path },
                message: e.into_inner().to_string(),
            }
        })?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let err = |key: String, message: String| Error::Config { file: file.to_owned(), key, message };
        for (name, c) in &self.connections {
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                return Err(err(format!("connections.{name}"), "names use letters, digits, - and _".into()));
            }
            let scheme_ok = match c.kind {
                ConnectionKind::Postgres => c.url.starts_with("postgres://") || c.url.starts_with("postgresql://"),
                ConnectionKind::Mysql => c.url.starts_with("mysql://") || c.url.starts_with("mariadb://"),
                ConnectionKind::Sqlite => c.url.starts_with("sqlite:"),
                ConnectionKind::Ssh => c.url.starts_with("ssh://"),
                ConnectionKind::Kubernetes => c.url.starts_with("https://") || c.url.starts_with("http://"),
            };
            if !scheme_ok {
                return Err(err(
                    format!("connections.{name}.url"),
                    format!("does not match kind {:?}", c.kind.as_str()),
                ));
            }
            if url_has_password(&c.url) {
                return Err(err(
                    format!("connections.{name}.url"),
                    "contains a password: put it in `password = { env = \"…\" }` instead".into(),
                ));
            }
            if c.max_rows == Some(0) {
                return Err(err(format!("connections.{name}.max_rows"), "must be at least 1".into()));
            }
            if c.retention_days == Some(0) {
                return Err(err(format!("connections.{name}.retention_days"), "must be at least 1 day".into()));
            }
            c.validate_kind_keys().map_err(|(key, message)| err(format!("connections.{name}.{key}"), message))?;
        }
        if let Some(slack) = &self.slack {
            match slack.mode {
                SlackMode::Http if slack.signing_secret.is_none() => {
                    return Err(err("slack.signing_secret".into(), "required when slack.mode = \"http\"".into()));
                }
                SlackMode::Socket if slack.app_token.is_none() => {
                    return Err(err("slack.app_token".into(), "required when slack.mode = \"socket\"".into()));
                }
                _ => {}
            }
        }
        if let Some(discord) = &self.discord {
            let key = discord.public_key.as_deref().map(str::trim).unwrap_or_default();
            if discord.mode == DiscordMode::Http && key.is_empty() {
                return Err(err("discord.public_key".into(), "required when discord.mode = \"http\"".into()));
            }
            if !key.is_empty() && (key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit())) {
                return Err(err(
                    "discord.public_key".into(),
                    "must be 64 hex characters (an Ed25519 public key)".into(),
                ));
            }
            if discord.application_id.is_empty() || !discord.application_id.chars().all(|c| c.is_ascii_digit()) {
                return Err(err("discord.application_id".into(), "must be the application's numeric id".into()));
            }
        }
        self.audit.validate().map_err(|(key, message)| err(key, message))?;
        if let Some(m) = &self.metrics {
            if m.listen.is_none() && m.token.is_none() {
                return Err(err(
                    "metrics".into(),
                    "set `listen` (a separate address) or `token` (bearer on the main listener), or both".into(),
                ));
            }
            if let Some(listen) = &m.listen
                && listen.parse::<std::net::SocketAddr>().is_err()
            {
                return Err(err("metrics.listen".into(), format!("{listen:?} is not an address like 127.0.0.1:9464")));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, h) in self.humans.iter().enumerate() {
            if h.subject.is_empty() || !seen.insert(h.subject.as_str()) {
                return Err(err(format!("humans[{i}].subject"), "must be non-empty and unique".into()));
            }
        }
        if self.retention.days == Some(0) {
            return Err(err("retention.days".into(), "must be at least 1 day (leave it out to keep forever)".into()));
        }
        if self.limits.max_rows == 0 {
            return Err(err("limits.max_rows".into(), "must be at least 1".into()));
        }
        if url_has_password(&self.store.url) {
            return Err(err("store.url".into(), "contains a password: use store.password".into()));
        }
        self.oidc.validate().map_err(|(key, message)| err(key, message))?;
        if let Some(web_oidc) = &self.web.oidc {
            web_oidc.validate().map_err(|(key, message)| err(key, message))?;
        }
        Ok(())
    }

    /// Effective limits of one connection.
    pub fn limits_for(&self, connection: &ConnectionConfig) -> Limits {
        Limits {
            max_statement_bytes: self.limits.max_statement_bytes,
            max_rows: connection.max_rows.unwrap_or(self.limits.max_rows),
            max_output_bytes: connection.max_output_bytes.unwrap_or(self.limits.max_output_bytes),
            statement_timeout: connection.statement_timeout.unwrap_or(self.limits.statement_timeout),
        }
    }
}

fn apply_override(table: &mut toml::Table, path: &[String], raw: &str) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut cur = table;
    for seg in parents {
        let entry = cur.entry(seg.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| format!("{seg} is not a table"))?;
    }
    cur.insert(last.clone(), parse_env_value(raw));
    Ok(())
}

/// `true`, `42`, `["a"]` become TOML values; anything else (addresses, URLs) stays a string.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    const HOST_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn conn_err(body: &str) -> String {
        let text = format!("[connections.web]\n{body}\n");
        Config::parse(&text, "airlock.toml", no_env()).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn ssh_and_kubernetes_connections_validate_their_keys() {
        let ssh = "kind = \"ssh\"\nurl = \"ssh://deploy@web-1:22\"\nprivate_key = { file = \"/k\" }";
        assert_eq!(conn_err(&format!("{ssh}\nhost_key = \"{HOST_KEY}\"")), "", "a complete ssh connection");
        let e = conn_err(ssh);
        assert!(e.contains("connections.web.host_key") && e.contains("required"), "{e}");
        let e = conn_err(&format!("{ssh}\nhost_key = \"nonsense\""));
        assert!(e.contains("connections.web.host_key"), "{e}");
        let e =
            conn_err("kind = \"ssh\"\nurl = \"ssh://web-1\"\npassword = { env = \"P\" }\nhost_key = \"SHA256:abc\"");
        assert!(e.contains("connections.web.url") && e.contains("USER@HOST"), "{e}");
        let e = conn_err(&format!("{ssh}\nhost_key = \"{HOST_KEY}\"\nread_only = true"));
        assert!(e.contains("connections.web.read_only") && e.contains("only applies to SQL"), "{e}");
        let e = conn_err("kind = \"postgres\"\nurl = \"postgres://u@h/db\"\nhost_key = \"SHA256:abc\"");
        assert!(e.contains("connections.web.host_key") && e.contains("only applies to ssh"), "{e}");

        let kube = "kind = \"kubernetes\"\nurl = \"https://k8s:6443\"";
        assert_eq!(conn_err(&format!("{kube}\ntoken = {{ env = \"T\" }}\nnamespaces = [\"prod-*\"]")), "");
        let e = conn_err(kube);
        assert!(e.contains("connections.web.token"), "{e}");
        let e = conn_err(&format!("{kube}\nclient_cert = \"/c.pem\""));
        assert!(e.contains("connections.web.client_key") && e.contains("go together"), "{e}");
        let e = conn_err(&format!("{kube}\ntoken = {{ env = \"T\" }}\nnamespaces = [\"[\"]"));
        assert!(e.contains("connections.web.namespaces"), "{e}");
        let e = conn_err("kind = \"kubernetes\"\nurl = \"ssh://x@y\"\ntoken = { env = \"T\" }");
        assert!(e.contains("connections.web.url"), "{e}");
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "airlock.toml", no_env()).expect("defaults");
        assert_eq!(c.store.url, "sqlite://airlock-data/airlock.db");
        assert_eq!(c.limits.max_rows, 500);
        assert_eq!(c.limits.max_statement_bytes, 256 * 1024);
    }

    #[test]
    fn unknown_key_is_an_error_naming_its_path() {
        let err = Config::parse("[server]\nlisen = \"x\"\n", "airlock.toml", no_env()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("airlock.toml") && msg.contains("server") && msg.contains("lisen"), "{msg}");
    }

    #[test]
    fn bad_value_in_a_connection_names_the_connection_key() {
        let text = "[connections.shop]\nkind = \"oracle\"\nurl = \"x\"\n";
        let msg = Config::parse(text, "airlock.toml", no_env()).unwrap_err().to_string();
        assert!(msg.contains("connections.shop.kind"), "{msg}");
    }

    #[test]
    fn env_override_wins_over_file_and_is_typed() {
        let env = vec![
            ("AIRLOCK_SERVER__LISTEN".to_owned(), "0.0.0.0:9999".to_owned()),
            ("AIRLOCK_LIMITS__MAX_ROWS".to_owned(), "42".to_owned()),
            ("AIRLOCK_CONNECTIONS__SHOP__READ_ONLY".to_owned(), "true".to_owned()),
            ("AIRLOCK_TOKEN".to_owned(), "not-a-config-key".to_owned()),
        ];
        let text =
            "[server]\nlisten = \"127.0.0.1:1\"\n[connections.shop]\nkind = \"sqlite\"\nurl = \"sqlite://shop.db\"\n";
        let c = Config::parse(text, "airlock.toml", env).expect("parses");
        assert_eq!(c.server.listen, "0.0.0.0:9999");
        assert_eq!(c.limits.max_rows, 42);
        assert!(c.connections["shop"].read_only);
    }

    #[test]
    fn env_override_with_unknown_key_is_an_error() {
        let env = vec![("AIRLOCK_SERVER__LISEN".to_owned(), "x".to_owned())];
        let msg = Config::parse("", "airlock.toml", env).unwrap_err().to_string();
        assert!(msg.contains("lisen"), "{msg}");
    }

    #[test]
    fn password_in_connection_url_is_refused() {
        let text = "[connections.shop]\nkind = \"postgres\"\nurl = \"postgres://app:hunter2@db/shop\"\n";
        let msg = Config::parse(text, "airlock.toml", no_env()).unwrap_err().to_string();
        assert!(msg.contains("connections.shop.url") && !msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn durations_parse_in_human_units() {
        assert_eq!("90s".parse::<HumanDuration>().map(|d| d.0), Ok(Duration::from_secs(90)));
        assert_eq!("15m".parse::<HumanDuration>().map(|d| d.0), Ok(Duration::from_secs(900)));
        assert_eq!("250ms".parse::<HumanDuration>().map(|d| d.0), Ok(Duration::from_millis(250)));
        assert!("5 parsecs".parse::<HumanDuration>().is_err());
        assert_eq!(HumanDuration(Duration::from_secs(900)).to_string(), "15m");
    }

    #[test]
    fn credential_refs_parse_from_toml() {
        let text = "[connections.shop]\nkind = \"postgres\"\nurl = \"postgres://app@db/shop\"\npassword = { env = \"SHOP_PW\" }\n";
        let c = Config::parse(text, "airlock.toml", no_env()).expect("parses");
        assert_eq!(c.connections["shop"].password, Some(CredentialRef::Env("SHOP_PW".into())));
    }
}
