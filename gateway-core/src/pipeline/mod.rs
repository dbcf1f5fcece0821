//! The pipeline: every governed tool call goes through [`Gateway::call`], top to bottom:
//!
//! 1. **authenticate** — the caller's identity is still valid (token not revoked since the session began);
//! 2. **classify** — what the call would do (SQL classes, tables, functions);
//! 3. **decide** — the policy verdict and the masking plan;
//!    → the request and decision are **recorded** durably before anything runs;
//! 4. **hold** — calls that need approval wait for a human (fails closed without a notifier);
//! 5. **execute** — the connector runs the call with vault credentials, under timeout and caps;
//! 6. **mask** — every cell passes the masker (credentials always scrubbed);
//! 7. **record** — the masked result is appended to the session's hash chain; if that fails, the result is
//!    withheld (fail closed).

mod exec;

pub use exec::{ExecResult, quote_argv};
mod held;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::approval::{ApprovalBroker, Notifier};
use crate::classify::SqlClass;
use crate::classify::shell::{ShellClassification, classify_argv, classify_command_line};
use crate::classify::sql::{SqlClassification, classify_with_limit};
use crate::config::{Config, ConnectionConfig, ConnectionKind, Limits};
use crate::connector::kube::KubeConnector;
use crate::connector::sql::SqlConnector;
use crate::connector::ssh::SshConnector;
use crate::connector::{Connector, Execution, Output, SqlColumn, Truncation};
use crate::error::{Error, Result};
use crate::identity::{Identity, Tokens};
use crate::links::ReplayLinks;
use crate::mask::{CredentialScrubber, MaskCounts, Masker};
use crate::metrics::{Metrics, StoreGauges};
use crate::policy::{CallFacts, Decision, PolicySet, Tool, Verdict};
use crate::record::{AUDIT_SESSION, EventKind, Recorder, SessionInfo};
use crate::store::Store;
use crate::vault::Vault;

/// The outcome of a governed call, as agents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Completed,
    Blocked,
    PendingApproval,
    Denied,
    Expired,
    Error,
}

impl CallStatus {
    /// Name as shown to agents.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Completed => "completed",
            CallStatus::Blocked => "blocked",
            CallStatus::PendingApproval => "pending_approval",
            CallStatus::Denied => "denied",
            CallStatus::Expired => "expired",
            CallStatus::Error => "error",
        }
    }
}

/// Who is calling, in which session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub session_id: String,
}

/// A `sql_query` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqlRequest {
    pub connection: String,
    pub query: String,
    pub max_rows: Option<u32>,
}

/// An `ssh_run` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SshRequest {
    pub connection: String,
    /// The command line, run by the login shell of the remote user.
    pub command: String,
    /// Time limit in seconds, at most the connection's `statement_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

/// A `kube_exec` call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KubeRequest {
    pub connection: String,
    pub namespace: String,
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The argv, run without a shell (use `["sh", "-c", "…"]` for shell syntax).
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
}

/// A governed tool call. Serialized (exactly) into held approvals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum ToolRequest {
    #[serde(rename = "sql_query")]
    Sql(SqlRequest),
    #[serde(rename = "ssh_run")]
    Ssh(SshRequest),
    #[serde(rename = "kube_exec")]
    Kube(KubeRequest),
}

impl ToolRequest {
    pub fn tool(&self) -> Tool {
        match self {
            ToolRequest::Sql(_) => Tool::SqlQuery,
            ToolRequest::Ssh(_) => Tool::SshRun,
            ToolRequest::Kube(_) => Tool::KubeExec,
        }
    }

    pub fn connection(&self) -> &str {
        match self {
            ToolRequest::Sql(r) => &r.connection,
            ToolRequest::Ssh(r) => &r.connection,
            ToolRequest::Kube(r) => &r.connection,
        }
    }

    /// The statement or command as one line of text (a kube argv is shell-quoted), for policies' `raw_regex`,
    /// records and approvers.
    pub fn raw(&self) -> Cow<'_, str> {
        match self {
            ToolRequest::Sql(r) => Cow::Borrowed(&r.query),
            ToolRequest::Ssh(r) => Cow::Borrowed(&r.command),
            ToolRequest::Kube(r) => Cow::Owned(exec::quote_argv(&r.command)),
        }
    }
}

/// What the classifier found in a call.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Classification {
    Sql(SqlClassification),
    Shell(ShellClassification),
}

/// The masked result of a SQL call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SqlResult {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    pub rows_affected: u64,
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<Truncation>,
    pub binary_values: bool,
}

/// What a call returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolOutcome {
    pub status: CallStatus,
    pub session_id: String,
    pub call_id: String,
    pub replay_url: String,
    /// The deciding rule, when policy decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why the call was blocked / failed / is waiting. Already masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlResult>,
    /// Output of `ssh_run` / `kube_exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<exec::ExecResult>,
    /// What was masked, by detector.
    pub masked: MaskCounts,
    /// The approval holding (or that held) this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// When a pending approval expires (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// Who approved, for calls that ran after approval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved_by: Vec<String>,
}

/// Progress of a held call, for MCP progress notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub progress: f64,
    /// Absent when the end is unknown (command output).
    pub total: Option<f64>,
    pub message: String,
}

/// A connection as `list_connections` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub name: String,
    pub kind: String,
    /// The tool that runs on it: `sql_query`, `ssh_run` or `kube_exec`.
    pub tool: String,
    pub description: String,
    pub read_only: bool,
    /// Kubernetes: the namespace globs agents may exec in (empty: any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// The gateway: configuration, policies, store and connectors, and the pipeline over them.
pub struct Gateway {
    config: Config,
    // Shared with the admin layer, which swaps in base + overlay when an admin changes a rule.
    policies: Arc<RwLock<Arc<PolicySet>>>,
    admin: crate::admin::AdminState,
    store: Store,
    recorder: Recorder,
    tokens: Tokens,
    oidc: crate::oidc::Verifier,
    connectors: BTreeMap<String, Arc<dyn Connector>>,
    scrubber: Arc<CredentialScrubber>,
    hash_key: Vec<u8>,
    notifier: Option<Arc<dyn Notifier>>,
    broker: ApprovalBroker,
    links: ReplayLinks,
    metrics: Metrics,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("connections", &self.connectors.keys().collect::<Vec<_>>()).finish()
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

// === impl Gateway ===

impl Gateway {
    /// Start from configuration: resolve credentials, open and migrate the store, load policies and build the
    /// connectors. Any failure stops start-up with an error naming its cause.
    pub async fn start(config: Config) -> Result<Self> {
        let base_policies = crate::policy::overlay::read_sources(&config.policy.dir)?;
        let policies = PolicySet::from_sources(&base_policies)?;
        let mut vault = Vault::default();
        let store_password = config.store.password.as_ref().map(|r| r.resolve("store")).transpose()?;
        if let Some(p) = &store_password {
            vault.insert("store", p.clone());
        }
        let hash_key = match &config.masking.hash_key {
            Some(r) => {
                let s = r.resolve("masking.hash_key")?;
                let key = s.expose().as_bytes().to_vec();
                vault.insert("masking.hash_key", s);
                key
            }
            None => {
                let mut k = vec![0u8; 32];
                rand::rng().fill_bytes(&mut k);
                k
            }
        };
        // Chat credentials are gateway secrets too: resolve them now (start fails if one is missing) so the
        // scrubber knows them.
        if let Some(slack) = &config.slack {
            vault.insert("slack.bot_token", slack.bot_token.resolve("slack.bot_token")?);
            if let Some(r) = &slack.signing_secret {
                vault.insert("slack.signing_secret", r.resolve("slack.signing_secret")?);
            }
            if let Some(r) = &slack.app_token {
                vault.insert("slack.app_token", r.resolve("slack.app_token")?);
            }
        }
        if let Some(token) = config.metrics.as_ref().and_then(|m| m.token.as_ref()) {
            vault.insert("metrics.token", token.resolve("metrics.token")?);
        }
        if let Some(discord) = &config.discord {
            vault.insert("discord.bot_token", discord.bot_token.resolve("discord.bot_token")?);
        }
        if let Some(secret) = config.web.oidc.as_ref().and_then(|o| o.client_secret.as_ref()) {
            vault.insert("web.oidc.client_secret", secret.resolve("web.oidc.client_secret")?);
        }
        for (i, hook) in config.audit.webhooks.iter().enumerate() {
            for (key, r) in [("token", &hook.token), ("secret", &hook.secret)] {
                if let Some(r) = r {
                    let owner = format!("audit.webhooks[{i}].{key}");
                    vault.insert(owner.clone(), r.resolve(&owner)?);
                }
            }
        }
        let mut connectors: BTreeMap<String, Arc<dyn Connector>> = BTreeMap::new();
        for (name, c) in &config.connections {
            let resolve = |r: &Option<crate::vault::CredentialRef>, key: &str| {
                r.as_ref().map(|r| r.resolve(&format!("{name}.{key}"))).transpose()
            };
            let password = resolve(&c.password, "password")?;
            let connector: Arc<dyn Connector> = match c.kind {
                ConnectionKind::Postgres | ConnectionKind::Mysql | ConnectionKind::Sqlite => {
                    Arc::new(SqlConnector::new(name, c, password.as_ref())?)
                }
                ConnectionKind::Ssh => {
                    let key = resolve(&c.private_key, "private_key")?;
                    let connector = SshConnector::new(name, c, password.as_ref(), key.as_ref())?;
                    if let Some(k) = key {
                        vault.insert(format!("{name}.private_key"), k);
                    }
                    Arc::new(connector)
                }
                ConnectionKind::Kubernetes => {
                    let token = resolve(&c.token, "token")?;
                    let client_key = resolve(&c.client_key, "client_key")?;
                    let connector = KubeConnector::new(name, c, token.as_ref(), client_key.as_ref())?;
                    if let Some(t) = token {
                        vault.insert(format!("{name}.token"), t);
                    }
                    if let Some(k) = client_key {
                        vault.insert(format!("{name}.client_key"), k);
                    }
                    Arc::new(connector)
                }
            };
            connectors.insert(name.clone(), connector);
            if let Some(p) = password {
                vault.insert(name.clone(), p);
            }
        }
        let oidc = crate::oidc::Verifier::new(&config.oidc)?;
        let store = Store::connect(&config.store.url, store_password.as_ref()).await?;
        store.migrate().await?;
        let recorder = Recorder::new(store.clone()).with_audit_sinks(config.audit.sink_names());
        recorder.ensure_audit_session().await?;
        let links = ReplayLinks::load(&store, &config.web).await?;
        let policies = Arc::new(RwLock::new(Arc::new(policies)));
        // Admin changes (policy overlay, frozen identities) stored by any replica apply from the start.
        let admin = crate::admin::AdminState::new(store.clone(), base_policies, policies.clone());
        admin.refresh().await?;
        admin.spawn_listener();
        Ok(Self {
            admin,
            links,
            metrics: Metrics::default(),
            scrubber: Arc::new(CredentialScrubber::new(vault.values())),
            policies,
            tokens: Tokens::new(store.clone()),
            oidc,
            broker: {
                let broker = ApprovalBroker::new(store.clone());
                broker.spawn_listener();
                broker
            },
            recorder,
            store,
            connectors,
            hash_key,
            notifier: None,
            config,
        })
    }

    /// Use `connector` for connection `name` instead of the configured one (tests, custom targets).
    pub fn with_connector(mut self, name: &str, connector: Arc<dyn Connector>) -> Self {
        self.connectors.insert(name.to_owned(), connector);
        self
    }

    /// Ask humans through `notifier` when policy requires approval.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The recorder (replay, verification).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// API tokens.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The admin layer: policy overlay and frozen identities.
    pub fn admin(&self) -> &crate::admin::AdminState {
        &self.admin
    }

    /// The notifier, if any (for admin announcements).
    pub fn notifier(&self) -> Option<&Arc<dyn Notifier>> {
        self.notifier.as_ref()
    }

    /// The policies in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        match self.policies.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the policies in force (after a reload). In-flight calls keep the set they started with.
    pub fn set_policies(&self, set: PolicySet) {
        let mut guard = match self.policies.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(set);
    }

    /// The replay link of a session.
    pub fn replay_url(&self, session_id: &str) -> String {
        format!("{}/sessions/{session_id}", self.config.server.public_url.trim_end_matches('/'))
    }

    /// The replay link of a session as posted to `channel`: signed for that one session when the channel is
    /// listed in `[web] signed_link_channels`, the plain (sign-in required) link otherwise.
    pub fn replay_url_for_channel(&self, session_id: &str, channel: &str) -> String {
        let url = self.replay_url(session_id);
        if self.links.signs_for(channel) { self.links.sign(&url, session_id, crate::store::now_ms()) } else { url }
    }

    /// Signs and checks session-scoped replay links (the web UI checks them).
    pub fn replay_links(&self) -> &ReplayLinks {
        &self.links
    }

    /// This process's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text for `/metrics`: this process's counters plus gauges read from the store now.
    pub async fn metrics_text(&self) -> Result<String> {
        let approvals_pending: i64 = sqlx::query_scalar("SELECT count(*) FROM approvals WHERE state = 'pending'")
            .fetch_one(self.store.pool())
            .await?;
        let outbox_backlog = crate::audit::backlog(&self.store).await?;
        Ok(self.metrics.render(&StoreGauges { approvals_pending, outbox_backlog }))
    }

    /// Authenticate a bearer token. Failures are recorded in the gateway's audit session with the reason;
    /// `context` says where the attempt came from (transport, peer).
    pub async fn authenticate(&self, token: Option<&str>, context: &str) -> Result<Identity> {
        self.authenticate_on_behalf(token, None, context).await
    }

    /// [`Gateway::authenticate`], plus an on-behalf-of name asserted by the caller (the
    /// `X-Airlock-On-Behalf-Of` header). Only members of `[identity] on_behalf_of_groups` may assert one, and it
    /// must not contradict the token's own claim; otherwise the call is refused (never silently dropped).
    pub async fn authenticate_on_behalf(
        &self,
        token: Option<&str>,
        asserted: Option<&str>,
        context: &str,
    ) -> Result<Identity> {
        // A JWT has three dot-separated base64url parts; anything else is an Airlock API token.
        let result = match token {
            None | Some("") => Err(Error::Auth("no token presented".into())),
            Some(t) if crate::oidc::looks_like_jwt(t) => {
                if self.oidc.is_enabled() {
                    self.oidc.verify(t).await
                } else {
                    Err(Error::Auth("JWT presented but no OIDC issuer is configured".into()))
                }
            }
            Some(t) => self.tokens.authenticate(t).await,
        };
        let result = match (result, asserted) {
            (Ok(mut identity), Some(name)) => {
                let refusal = if !self.config.identity.may_assert_on_behalf_of(&identity) {
                    Some(format!(
                        "{} may not assert X-Airlock-On-Behalf-Of (not in identity.on_behalf_of_groups)",
                        identity.subject
                    ))
                } else if !crate::oidc::valid_on_behalf_of(name) {
                    Some("X-Airlock-On-Behalf-Of is empty, too long or has control characters".to_owned())
                } else if identity.on_behalf_of.as_deref().is_some_and(|claimed| claimed != name) {
                    Some("X-Airlock-On-Behalf-Of contradicts the token's on-behalf-of claim".to_owned())
                } else {
                    None
                };
                match refusal {
                    Some(reason) => Err(Error::Auth(reason)),
                    None => {
                        identity.on_behalf_of = Some(name.to_owned());
                        Ok(identity)
                    }
                }
            }
            (result, _) => result,
        };
        if let Err(e) = &result {
            let reason = match e {
                Error::Auth(r) => r.clone(),
                other => other.to_string(),
            };
            tracing::warn!(%reason, context, "authentication refused");
            self.recorder
                .append(AUDIT_SESSION, None, EventKind::AuthFailed, &json!({ "reason": reason, "context": context }))
                .await?;
        }
        result
    }

    /// Open a recorded session for an authenticated identity; returns its id.
    pub async fn open_session(&self, identity: &Identity, transport: &str, client: &str) -> Result<String> {
        let id = new_id();
        self.recorder
            .start_session(&SessionInfo {
                id: id.clone(),
                identity: identity.clone(),
                transport: transport.to_owned(),
                client: client.to_owned(),
            })
            .await?;
        Ok(id)
    }

    /// Connections the identity may use (some allow rule could apply to it there), for `list_connections`.
    pub fn list_connections(&self, identity: &Identity) -> Vec<ConnectionInfo> {
        let policies = self.policies();
        self.config
            .connections
            .iter()
            .filter(|(name, _)| policies.may_use(identity, name))
            .map(|(name, c)| ConnectionInfo {
                name: name.clone(),
                kind: c.kind.as_str().to_owned(),
                tool: c.kind.tool().as_str().to_owned(),
                description: c.description.clone(),
                read_only: c.read_only,
                namespaces: c.namespaces.clone(),
            })
            .collect()
    }

    /// Classify and decide a SQL call without executing or recording it (`airlock policy test`).
    pub fn dry_run_sql(
        &self,
        identity: &Identity,
        connection: &str,
        sql: &str,
    ) -> Result<(SqlClassification, Decision)> {
        let conn =
            self.config.connections.get(connection).ok_or_else(|| Error::UnknownConnection(connection.into()))?;
        Ok(dry_run_sql(&self.policies(), &self.config, conn, identity, connection, sql))
    }

    /// Purge whole sessions past their retention (see [`crate::retention`]); `airlock serve` calls it every
    /// `retention.purge_every`.
    pub async fn purge_expired(&self, dry_run: bool) -> Result<Vec<crate::retention::PurgedSession>> {
        crate::retention::purge_expired(&self.recorder, &self.config, crate::store::now_ms(), dry_run).await
    }

    /// Classify and decide any call without executing or recording it (`airlock policy test`).
    pub fn dry_run(&self, identity: &Identity, request: &ToolRequest) -> Result<(Classification, Decision)> {
        let conn = self
            .config
            .connections
            .get(request.connection())
            .ok_or_else(|| Error::UnknownConnection(request.connection().into()))?;
        Ok(classify_and_decide(&self.policies(), &self.config, conn, identity, request))
    }

    /// Run one governed tool call through the pipeline. Never panics and never returns unrecorded output.
    pub async fn call(&self, caller: &Caller, request: ToolRequest) -> ToolOutcome {
        self.call_with_progress(caller, request, &|_| {}).await
    }

    /// [`Gateway::call`], reporting progress while the call is held for approval.
    pub async fn call_with_progress(
        &self,
        caller: &Caller,
        request: ToolRequest,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> ToolOutcome {
        let call_id = new_id();
        let span = tracing::info_span!(
            "tool_call",
            session = %caller.session_id,
            call = %call_id,
            subject = %caller.identity.subject,
            tool = request.tool().as_str(),
            connection = request.connection(),
        );
        let started = Instant::now();
        let tool = request.tool();
        let outcome = self.run_pipeline(caller, &call_id, request, progress).instrument(span.clone()).await;
        let _enter = span.enter();
        match outcome {
            Ok(o) => {
                self.metrics.call_finished(
                    tool.as_str(),
                    o.status.as_str(),
                    o.rule.as_deref(),
                    started.elapsed(),
                    &o.masked,
                );
                tracing::info!(
                    status = o.status.as_str(),
                    rule = o.rule.as_deref().unwrap_or("-"),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "tool call finished"
                );
                o
            }
            Err(e) => {
                // Reached only when recording itself failed: the call fails closed and says so.
                tracing::error!(error = %e, "tool call failed closed");
                let mut out = self.empty_outcome(&caller.session_id, &call_id);
                out.message = Some(format!("{e}; nothing was returned (fail closed)"));
                out
            }
        }
    }

    async fn run_pipeline(
        &self,
        caller: &Caller,
        call_id: &str,
        request: ToolRequest,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ToolOutcome> {
        let session = caller.session_id.as_str();
        let mut out = self.empty_outcome(session, call_id);
        let scrub_only = Masker::new(&Default::default(), &self.hash_key, self.scrubber.clone())
            .map_err(|e| Error::Mask(e.to_string()))?;

        // 1. authenticate: a token revoked since the session began cuts the session off.
        if let Some(token_id) = &caller.identity.token_id
            && !self.tokens.is_active(token_id).await?
        {
            self.recorder
                .append(
                    session,
                    Some(call_id),
                    EventKind::AuthFailed,
                    &json!({ "reason": "token revoked", "tool": request.tool().as_str() }),
                )
                .await?;
            out.message = Some("your API token has been revoked; nothing was executed".to_owned());
            return Ok(out);
        }

        // A frozen identity (incident containment) is refused before classification.
        if let Some(frozen) = self.admin.frozen_for(&caller.identity) {
            return self.refuse_frozen(caller, call_id, &request, &frozen, &scrub_only, out).await;
        }

        // Unknown connection or oversized input: recorded and refused before classification.
        // Unknown connection, wrong tool for it, a namespace the connection excludes, or oversized input:
        // recorded and refused before classification.
        let connection = self.config.connections.get(request.connection());
        let limits = connection.map(|c| self.config.limits_for(c)).unwrap_or_else(|| self.config.limits.clone());
        let raw = request.raw();
        let refusal = match connection {
            None => Some(format!(
                "unknown connection {:?}; call list_connections to see the ones you may use",
                request.connection()
            )),
            Some(c) if c.kind.tool() != request.tool() => Some(format!(
                "connection {:?} is a {} connection: use {}, not {}; nothing was executed",
                request.connection(),
                c.kind.as_str(),
                c.kind.tool().as_str(),
                request.tool().as_str()
            )),
            Some(c) if !exec::namespace_allowed(c, &request) => Some(format!(
                "connection {:?} does not allow namespace {:?} (allowed: {}); nothing was executed",
                request.connection(),
                exec::namespace_of(&request).unwrap_or_default(),
                c.namespaces.join(", ")
            )),
            Some(_) if raw.len() > limits.max_statement_bytes => Some(format!(
                "statement is {} bytes; the limit is {} bytes; nothing was executed",
                raw.len(),
                limits.max_statement_bytes
            )),
            Some(_) => None,
        };
        if let Some(msg) = refusal {
            let mut counts = MaskCounts::default();
            let preview = preview(&scrub_only.mask_text(&raw, &mut counts));
            self.recorder
                .append(
                    session,
                    Some(call_id),
                    EventKind::Request,
                    &json!({
                        "tool": request.tool().as_str(), "connection": request.connection(), "statement": preview,
                        "statement_bytes": raw.len(), "identity": caller.identity,
                    }),
                )
                .await?;
            out.message = Some(msg);
            self.record_result(&mut out, None).await?;
            return Ok(out);
        }
        let Some(conn) = connection else {
            return Err(Error::UnknownConnection(request.connection().to_owned()));
        };

        // 2. classify and 3. decide (pure, microseconds).
        let policies = self.policies();
        let decide_started = Instant::now();
        let (classification, decision) = classify_and_decide(&policies, &self.config, conn, &caller.identity, &request);
        let decide_took = decide_started.elapsed();
        self.metrics.decided(decide_took);
        let decide_us = decide_took.as_micros() as u64;
        let masker = Masker::new(&decision.mask, &self.hash_key, self.scrubber.clone())
            .map_err(|e| Error::Mask(e.to_string()))?;
        let mut counts = MaskCounts::default();
        let statement = masker.mask_text(&raw, &mut counts).into_owned();

        // The request and the decision are durable (one commit) before anything executes.
        let mut request_event = json!({
            "tool": request.tool().as_str(),
            "connection": request.connection(),
            "statement": statement,
            "identity": caller.identity,
            "classification": classification,
        });
        match &request {
            ToolRequest::Sql(r) => request_event["max_rows"] = json!(r.max_rows),
            ToolRequest::Ssh(r) => request_event["timeout_s"] = json!(r.timeout_s),
            ToolRequest::Kube(r) => {
                request_event["namespace"] = json!(r.namespace);
                request_event["pod"] = json!(r.pod);
                request_event["container"] = json!(r.container);
                request_event["argv"] =
                    json!(r.command.iter().map(|a| masker.mask_text(a, &mut counts).into_owned()).collect::<Vec<_>>());
                request_event["timeout_s"] = json!(r.timeout_s);
            }
        }
        let decision_event = json!({
            "verdict": decision.verdict,
            "rule": decision.rule,
            "applied": decision.applied,
            "policy_version": decision.policy_version,
            "decide_us": decide_us,
        });
        self.recorder
            .append_all(
                session,
                Some(call_id),
                &[(EventKind::Request, &request_event), (EventKind::Decision, &decision_event)],
            )
            .await?;
        out.rule = Some(decision.rule.clone());
        out.masked = counts.clone();
        tracing::debug!(rule = %decision.rule, action = decision.verdict.action().as_str(), decide_us, "decided");

        match &decision.verdict {
            Verdict::Block { message } => {
                out.status = CallStatus::Blocked;
                // The rule is in `rule` (and in the status line agents read); the message is the rule's reason.
                out.message = Some(message.clone());
                self.record_result(&mut out, None).await?;
                Ok(out)
            }
            // 4. hold.
            Verdict::RequireApproval(req) => {
                let req = req.clone();
                self.hold(caller, call_id, &request, &statement, &decision, req, out, progress).await
            }
            Verdict::Allow => {
                // 5. execute, 6. mask, 7. record.
                self.execute_and_record(out, &classification, &request, &masker, counts, progress).await
            }
        }
    }

    /// Steps 5–7 for an allowed (or approved) call.
    async fn execute_and_record(
        &self,
        out: ToolOutcome,
        classification: &Classification,
        request: &ToolRequest,
        masker: &Masker,
        counts: MaskCounts,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<ToolOutcome> {
        let Some(conn) = self.config.connections.get(request.connection()) else {
            return Err(Error::UnknownConnection(request.connection().to_owned()));
        };
        match (request, classification) {
            (ToolRequest::Sql(sql_req), Classification::Sql(c)) => {
                self.execute_sql(out, conn, c, sql_req, masker, counts).await
            }
            (ToolRequest::Ssh(_) | ToolRequest::Kube(_), _) => {
                self.execute_command(out, conn, request, masker, counts, progress).await
            }
            (ToolRequest::Sql(_), Classification::Shell(_)) => {
                Err(Error::InvalidRequest("a SQL call was classified as a shell command".into()))
            }
        }
    }

    /// Steps 5–7 for `sql_query`.
    async fn execute_sql(
        &self,
        mut out: ToolOutcome,
        conn: &ConnectionConfig,
        classification: &SqlClassification,
        sql_req: &SqlRequest,
        masker: &Masker,
        mut counts: MaskCounts,
    ) -> Result<ToolOutcome> {
        // A read-only connection runs one plain statement inside a database-enforced read-only transaction;
        // anything that could end or reconfigure that transaction is refused.
        if conn.read_only
            && (classification.statements != 1
                || classification.classes.iter().any(|c| {
                    matches!(
                        c,
                        SqlClass::Transaction
                            | SqlClass::SessionSetting
                            | SqlClass::Unparsed
                            | SqlClass::MultiStatement
                    )
                }))
        {
            out.status = CallStatus::Blocked;
            out.rule = Some("read-only-connection".into());
            out.message = Some(format!(
                "connection {:?} is read-only: send exactly one statement, without transaction control or SET",
                sql_req.connection
            ));
            out.masked = counts;
            self.record_result(&mut out, None).await?;
            return Ok(out);
        }
        let Some(connector) = self.connectors.get(&sql_req.connection) else {
            return Err(Error::UnknownConnection(sql_req.connection.clone()));
        };
        let limits = self.config.limits_for(conn);

        // 5. execute.
        let max_rows = sql_req.max_rows.map_or(limits.max_rows, |m| m.clamp(1, limits.max_rows));
        let exec_started = Instant::now();
        // SQL rows come back whole; the chunk channel is for command output only.
        let (unused, _) = tokio::sync::mpsc::channel(1);
        let executed =
            connector.execute(&Execution::Sql { sql: sql_req.query.clone(), max_rows }, &limits, unused).await;
        let exec_ms = exec_started.elapsed().as_millis() as u64;

        // 6. mask.
        match executed {
            Ok(Output::Sql(raw)) => {
                let rows: Vec<Vec<Value>> = raw
                    .rows
                    .iter()
                    .map(|row| {
                        row.iter().zip(&raw.columns).map(|(v, c)| masker.mask_cell(&c.name, v, &mut counts)).collect()
                    })
                    .collect();
                out.status = CallStatus::Completed;
                out.sql = Some(SqlResult {
                    row_count: rows.len(),
                    rows,
                    columns: raw.columns,
                    rows_affected: raw.rows_affected,
                    truncated: raw.truncated.is_some(),
                    truncation: raw.truncated,
                    binary_values: raw.binary_values,
                });
            }
            Ok(Output::Exec(_)) => {
                out.status = CallStatus::Error;
                out.message = Some("the SQL connector returned command output".into());
            }
            Err(e) => {
                // Database errors can echo values (`Key (email)=(…) already exists`): mask them too.
                out.status = CallStatus::Error;
                out.message = Some(masker.mask_text(&e.to_string(), &mut counts).into_owned());
            }
        }
        out.masked = counts;

        // 7. record; a result that cannot be recorded is not returned.
        self.record_result(&mut out, Some(exec_ms)).await?;
        Ok(out)
    }

    /// Record and refuse a call of a frozen identity: the request (credentials scrubbed), a blocked result, and
    /// an event in the gateway's audit session.
    async fn refuse_frozen(
        &self,
        caller: &Caller,
        call_id: &str,
        request: &ToolRequest,
        frozen: &crate::admin::FrozenIdentity,
        scrub_only: &Masker,
        mut out: ToolOutcome,
    ) -> Result<ToolOutcome> {
        let raw = request.raw();
        let mut counts = MaskCounts::default();
        let statement = preview(&scrub_only.mask_text(&raw, &mut counts));
        let session = caller.session_id.as_str();
        self.recorder
            .append(
                session,
                Some(call_id),
                EventKind::Request,
                &json!({
                    "tool": request.tool().as_str(), "connection": request.connection(), "statement": statement,
                    "identity": caller.identity,
                }),
            )
            .await?;
        out.status = CallStatus::Blocked;
        out.rule = Some(crate::admin::FROZEN_RULE.to_owned());
        out.message = Some(format!(
            "identity {} is frozen by {}: {}; nothing was executed",
            frozen.subject, frozen.actor, frozen.reason
        ));
        self.record_result(&mut out, None).await?;
        self.recorder
            .append(
                AUDIT_SESSION,
                None,
                EventKind::FrozenCallRefused,
                &json!({
                    "subject": caller.identity.subject, "frozen": frozen.subject, "session_id": session,
                    "call_id": call_id, "tool": request.tool().as_str(), "connection": request.connection(),
                }),
            )
            .await?;
        tracing::warn!(frozen = %frozen.subject, "call of a frozen identity refused");
        Ok(out)
    }

    fn empty_outcome(&self, session: &str, call_id: &str) -> ToolOutcome {
        ToolOutcome {
            status: CallStatus::Error,
            session_id: session.to_owned(),
            call_id: call_id.to_owned(),
            replay_url: format!("{}#call-{call_id}", self.replay_url(session)),
            rule: None,
            message: None,
            sql: None,
            exec: None,
            masked: MaskCounts::default(),
            approval_id: None,
            expires_at_ms: None,
            approved_by: Vec::new(),
        }
    }

    async fn record_result(&self, out: &mut ToolOutcome, exec_ms: Option<u64>) -> Result<()> {
        self.record_result_after(out, exec_ms, None).await
    }

    /// Records the result, preceded in the same commit by `output` (the last frames of command output).
    async fn record_result_after(
        &self,
        out: &mut ToolOutcome,
        exec_ms: Option<u64>,
        output: Option<&Value>,
    ) -> Result<()> {
        let result = json!({
            "status": out.status,
            "rule": out.rule,
            "message": out.message,
            "sql": out.sql,
            // The text is recorded once, in the output events (with its timing), not again here.
            "exec": out.exec.as_ref().map(exec::ExecResult::summary),
            "masked": out.masked,
            "approval_id": out.approval_id,
            "exec_ms": exec_ms,
        });
        let mut events: Vec<(EventKind, &Value)> = Vec::with_capacity(2);
        if let Some(o) = output {
            events.push((EventKind::Output, o));
        }
        events.push((EventKind::Result, &result));
        self.recorder.append_all(&out.session_id, Some(&out.call_id), &events).await?;
        Ok(())
    }
}

/// Classify and decide one call of any tool (pure).
pub fn classify_and_decide(
    policies: &PolicySet,
    config: &Config,
    conn: &ConnectionConfig,
    identity: &Identity,
    request: &ToolRequest,
) -> (Classification, Decision) {
    let (shell, namespace, pod) = match request {
        ToolRequest::Sql(r) => {
            let (c, d) = dry_run_sql(policies, config, conn, identity, &r.connection, &r.query);
            return (Classification::Sql(c), d);
        }
        ToolRequest::Ssh(r) => (classify_command_line(&r.command), None, None),
        ToolRequest::Kube(r) => (classify_argv(&r.command), Some(r.namespace.as_str()), Some(r.pod.as_str())),
    };
    let raw = request.raw();
    let decision = policies.decide(&CallFacts {
        tool: request.tool(),
        connection: request.connection(),
        identity,
        raw: &raw,
        sql: None,
        shell: Some(&shell),
        namespace,
        pod,
    });
    (Classification::Shell(shell), decision)
}

/// Classify and decide one SQL call (pure).
pub fn dry_run_sql(
    policies: &PolicySet,
    config: &Config,
    conn: &ConnectionConfig,
    identity: &Identity,
    connection: &str,
    sql: &str,
) -> (SqlClassification, Decision) {
    let limits: Limits = config.limits_for(conn);
    let classification = classify_with_limit(sql, conn.dialect(), limits.max_statement_bytes);
    let decision = policies.decide(&CallFacts {
        tool: Tool::SqlQuery,
        connection,
        identity,
        raw: sql,
        sql: Some(&classification),
        shell: None,
        namespace: None,
        pod: None,
    });
    (classification, decision)
}

/// The first 4 KiB of a refused input, for the record.
fn preview(text: &str) -> String {
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
