//! The MCP tool server: the tools agents see, over any transport. One instance serves one MCP session, which
//! is one recorded Airlock session (opened at `initialize`, bound to the identity that opened it).

mod render;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::http::request::Parts;
use gateway_core::identity::Identity;
use gateway_core::pipeline::{Caller, Gateway, KubeRequest, Progress, SqlRequest, SshRequest, ToolRequest};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CallToolResult, Implementation, InitializeRequestParams, InitializeResult, ProgressNotificationParam,
    ProtocolVersion, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;

const INSTRUCTIONS: &str = "Airlock is a governed gateway to production databases, hosts and Kubernetes pods. Call \
list_connections first: each connection says which tool it takes (sql_query for databases, ssh_run for hosts, \
kube_exec for clusters). Personal data and secrets in results and command output are masked (e-mails, card \
numbers, SSNs, phone numbers, IBANs, tokens, keys, password columns). Destructive actions (DROP, TRUNCATE, GRANT, \
rm -rf on system paths, reading credentials, curl | sh) are blocked; risky ones (UPDATE/DELETE without WHERE, \
schema changes, restarting services, sudo, package installs, commands Airlock cannot classify) need a human's \
approval: such a call waits a while, then returns status pending_approval with an approval_id to pass to \
await_approval. A blocked or denied call is an error result naming the policy rule and the reason: adapt the \
statement or command instead of retrying it unchanged. Every call is recorded; results carry a replay_url.";

/// How the transport identifies the caller.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Each HTTP request carries the identity its bearer token authenticated (set by the HTTP middleware).
    Http,
    /// The identity authenticated from `AIRLOCK_TOKEN` when the process started.
    Stdio(Identity),
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Stdio(_) => "stdio",
        }
    }
}

/// Arguments of `sql_query`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SqlQueryArgs {
    /// Name of the database connection, exactly as returned by list_connections (for example "shop").
    pub connection: String,
    /// Exactly one SQL statement in the connection's dialect (see its kind in list_connections), e.g.
    /// "SELECT id, name FROM customers ORDER BY id LIMIT 10". Do not include credentials.
    pub query: String,
    /// Maximum number of rows to return. Optional; the gateway applies its own default and upper bound (usually
    /// 500) and says when the result was truncated.
    #[serde(default)]
    pub max_rows: Option<u32>,
}

/// Arguments of `ssh_run`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshRunArgs {
    /// Name of an ssh connection, exactly as returned by list_connections (for example "web-1").
    pub connection: String,
    /// One shell command line, run by the remote user's shell, e.g. "uptime" or "journalctl -u nginx -n 50
    /// --no-pager". Read-only diagnostics run at once; anything that changes the host may need approval.
    pub command: String,
    /// Time limit in seconds. Optional; the connection's own limit (usually 30) is the maximum.
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// Arguments of `kube_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct KubeExecArgs {
    /// Name of a kubernetes connection, exactly as returned by list_connections (for example "prod-cluster").
    pub connection: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container; optional when the pod has one container.
    #[serde(default)]
    pub container: Option<String>,
    /// The command as an argv list, run without a shell: ["cat", "/etc/os-release"]. For pipes or redirections
    /// use ["sh", "-c", "ps aux | head"].
    pub command: Vec<String>,
    /// Time limit in seconds. Optional; the connection's own limit (usually 30) is the maximum.
    #[serde(default)]
    pub timeout_s: Option<u64>,
}

/// Arguments of `await_approval`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AwaitApprovalArgs {
    /// The approval_id from a pending_approval result of sql_query, ssh_run or kube_exec.
    pub approval_id: String,
    /// How many seconds to wait for the decision. Optional; the gateway caps it (usually at 60).
    #[serde(default)]
    pub wait_s: Option<u64>,
}

#[derive(Debug, Clone)]
struct BoundSession {
    id: String,
    subject: String,
    token_id: Option<String>,
    /// Recorded at session start; a request acting for someone else needs its own session.
    on_behalf_of: Option<String>,
}

/// The tool server of one MCP session.
#[derive(Clone)]
pub struct AirlockTools {
    gateway: Arc<Gateway>,
    transport: Transport,
    session: Arc<Mutex<Option<BoundSession>>>,
    calls: TaskTracker,
    tool_router: ToolRouter<Self>,
}

/// Builds one [`AirlockTools`] per MCP session; cheap to clone.
#[derive(Clone)]
pub struct ToolsFactory {
    gateway: Arc<Gateway>,
    calls: TaskTracker,
    router: ToolRouter<AirlockTools>,
}

impl ToolsFactory {
    /// `calls` tracks in-flight governed calls so shutdown can wait for them to finish and be recorded.
    pub fn new(gateway: Arc<Gateway>, calls: TaskTracker) -> Self {
        Self { gateway, calls, router: AirlockTools::tool_router() }
    }

    /// A fresh server for a new MCP session.
    pub fn session(&self, transport: Transport) -> AirlockTools {
        AirlockTools {
            gateway: self.gateway.clone(),
            transport,
            session: Arc::new(Mutex::new(None)),
            calls: self.calls.clone(),
            tool_router: self.router.clone(),
        }
    }
}

// === impl AirlockTools ===

impl AirlockTools {
    /// The identity of the request: from the HTTP middleware, or the one stdio started with.
    fn identity(&self, ctx: &RequestContext<RoleServer>) -> Result<Identity, McpError> {
        match &self.transport {
            Transport::Stdio(identity) => Ok(identity.clone()),
            Transport::Http => ctx
                .extensions
                .get::<Parts>()
                .and_then(|parts| parts.extensions.get::<Identity>())
                .cloned()
                .ok_or_else(|| McpError::invalid_request("request is not authenticated", None)),
        }
    }

    /// The recorded session of this MCP session, opened on first use, and refused to any other identity.
    async fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Result<Caller, String>, McpError> {
        let identity = self.identity(ctx)?;
        let mut slot = self.session.lock().await;
        if let Some(bound) = slot.as_ref() {
            if bound.on_behalf_of != identity.on_behalf_of
                && bound.subject == identity.subject
                && bound.token_id == identity.token_id
            {
                return Ok(Err(format!(
                    "this MCP session acts on behalf of {:?}; start a new session to act for {:?}",
                    bound.on_behalf_of, identity.on_behalf_of
                )));
            }
            if bound.subject != identity.subject || bound.token_id != identity.token_id {
                return Ok(Err(format!(
                    "this MCP session was opened by {:?}; start a new session to act as {:?}",
                    bound.subject, identity.subject
                )));
            }
            return Ok(Ok(Caller { identity, session_id: bound.id.clone() }));
        }
        let client =
            ctx.client_info().map(|c| format!("{}/{}", c.name, c.version)).unwrap_or_else(|| "unknown".to_owned());
        match self.gateway.open_session(&identity, self.transport.name(), &client).await {
            Ok(id) => {
                tracing::info!(session = %id, subject = %identity.subject, %client, transport = self.transport.name(),
                    "session opened");
                *slot = Some(BoundSession {
                    id: id.clone(),
                    subject: identity.subject.clone(),
                    token_id: identity.token_id.clone(),
                    on_behalf_of: identity.on_behalf_of.clone(),
                });
                Ok(Ok(Caller { identity, session_id: id }))
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open a recorded session");
                Ok(Err(format!("{e}; nothing was executed (fail closed)")))
            }
        }
    }
}

impl AirlockTools {
    /// Runs a governed call in its own tracked task: if the client goes away or the server shuts down, the call
    /// still finishes and is recorded, and shutdown waits for it.
    async fn run(
        &self,
        caller: Caller,
        request: ToolRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let gateway = self.gateway.clone();
        let progress = progress_forwarder(ctx);
        let task = self.calls.spawn(async move { gateway.call_with_progress(&caller, request, &*progress).await });
        match task.await {
            Ok(outcome) => Ok(render::outcome(&outcome)),
            Err(e) => Err(McpError::internal_error(format!("tool call task failed: {e}"), None)),
        }
    }
}

/// Forwards the pipeline's progress (a held call waiting for approval, a command's output arriving) as MCP
/// progress notifications, when the client asked for them with a progress token.
fn progress_forwarder(ctx: &RequestContext<RoleServer>) -> Arc<dyn Fn(Progress) + Send + Sync> {
    let Some(token) = ctx.meta.get_progress_token() else {
        return Arc::new(|_| {});
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let peer = ctx.peer.clone();
    // Ends when the call drops its sender.
    tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let mut param = ProgressNotificationParam::new(token.clone(), p.progress).with_message(p.message);
            if let Some(total) = p.total {
                param = param.with_total(total);
            }
            let _ = peer.notify_progress(param).await;
        }
    });
    Arc::new(move |p| {
        let _ = tx.send(p);
    })
}

#[tool_router]
impl AirlockTools {
    #[tool(
        description = "List the connections you may use through Airlock: name, kind (postgres, mysql or sqlite — the \
SQL dialect to use —, ssh or kubernetes), the tool it takes (sql_query, ssh_run or kube_exec), a description, \
whether it is read-only, and for clusters the namespaces you may exec in. Call this first; pass a name as \
`connection` to the tool it names.",
        annotations(title = "List connections", read_only_hint = true, open_world_hint = false)
    )]
    async fn list_connections(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
        let caller = match self.caller(&ctx).await? {
            Ok(c) => c,
            Err(message) => return Ok(render::refused(&message)),
        };
        Ok(render::connections(&self.gateway.list_connections(&caller.identity), &caller.session_id))
    }

    #[tool(
        description = "Run one SQL statement on a database connection through Airlock and get the rows back. \
Results are masked before you see them: e-mail addresses, payment card numbers, SSNs, phone numbers, IBANs and \
secrets (tokens, keys, password columns) appear partly or fully redacted, and the result says how many values were \
masked. Every call is checked against policy: destructive statements (DROP, TRUNCATE, GRANT/REVOKE, server \
administration, server file access) are blocked; risky ones (UPDATE or DELETE without WHERE, schema changes, \
several statements in one call) need a human's approval: the call waits, then may return status \
pending_approval with an approval_id for await_approval. A refused call returns an error \
naming the policy rule and the reason; change the query rather than retrying it. Send one statement per call, use \
LIMIT for large tables. The result has columns, rows, row_count, truncated, status and a replay_url of the \
recorded session.",
        annotations(
            title = "Query a database (governed)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn sql_query(
        &self,
        Parameters(args): Parameters<SqlQueryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = match self.caller(&ctx).await? {
            Ok(c) => c,
            Err(message) => return Ok(render::refused(&message)),
        };
        let request =
            ToolRequest::Sql(SqlRequest { connection: args.connection, query: args.query, max_rows: args.max_rows });
        self.run(caller, request, &ctx).await
    }

    #[tool(
        description = "Run one shell command line on a host (an ssh connection from list_connections) through \
Airlock and get its stdout, stderr and exit_code. Output is masked before you see it (secrets, keys, tokens, \
personal data) and capped in size (truncated says so). Every command in the line is checked against policy, \
including pipelines, ;/&&/|| lists, $(...), sh -c '...' and sudo: read-only diagnostics (uptime, df -h, ps, \
journalctl -n, cat of logs, ls, grep) run at once; destructive commands (rm -rf on system paths, mkfs, dd to a \
device), reading credentials (~/.ssh keys, /etc/shadow, env dumps) and curl | sh are blocked; restarts, sudo, \
package changes, writes and commands Airlock cannot classify need a human's approval: the call waits, then may \
return status pending_approval with an approval_id for await_approval. A refused call returns an error naming \
the policy rule and the reason; change the command rather than retrying it. A non-zero exit_code is not a \
refusal: the command ran. The result has a replay_url of the recorded session.",
        annotations(
            title = "Run a command on a host (governed)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn ssh_run(
        &self,
        Parameters(args): Parameters<SshRunArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = match self.caller(&ctx).await? {
            Ok(c) => c,
            Err(message) => return Ok(render::refused(&message)),
        };
        let request = ToolRequest::Ssh(SshRequest {
            connection: args.connection,
            command: args.command,
            timeout_s: args.timeout_s,
        });
        self.run(caller, request, &ctx).await
    }

    #[tool(
        description = "Run a command (argv list, no shell) in a Kubernetes pod's container (a kubernetes connection \
from list_connections) through Airlock and get its stdout, stderr and exit_code. Same rules as ssh_run: output is \
masked and capped; the argv (and any sh -c script inside it) is checked against policy; read-only diagnostics run \
at once, destructive and credential-reading commands are blocked, risky ones and some namespaces (kube-system, \
prod-*) need a human's approval (status pending_approval with an approval_id for await_approval). Use [\"sh\", \
\"-c\", \"...\"] for pipes. Namespaces outside the connection's list are refused. A non-zero exit_code is not a \
refusal: the command ran.",
        annotations(
            title = "Run a command in a pod (governed)",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn kube_exec(
        &self,
        Parameters(args): Parameters<KubeExecArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = match self.caller(&ctx).await? {
            Ok(c) => c,
            Err(message) => return Ok(render::refused(&message)),
        };
        let request = ToolRequest::Kube(KubeRequest {
            connection: args.connection,
            namespace: args.namespace,
            pod: args.pod,
            container: args.container,
            command: args.command,
            timeout_s: args.timeout_s,
        });
        self.run(caller, request, &ctx).await
    }

    #[tool(
        description = "Wait for the human decision on a sql_query, ssh_run or kube_exec call that returned status \
pending_approval, and get its result: the executed (masked) result once approved, or denied/expired with the approver's reason. Pass the \
approval_id from the pending result. If no decision arrives within wait_s seconds, the result is pending_approval \
again; call await_approval again later.",
        annotations(title = "Wait for an approval", read_only_hint = true, open_world_hint = false)
    )]
    async fn await_approval(
        &self,
        Parameters(args): Parameters<AwaitApprovalArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let caller = match self.caller(&ctx).await? {
            Ok(c) => c,
            Err(message) => return Ok(render::refused(&message)),
        };
        let gateway = self.gateway.clone();
        let progress = progress_forwarder(&ctx);
        let wait = args.wait_s.map(Duration::from_secs);
        let task =
            self.calls.spawn(async move { gateway.await_approval(&caller, &args.approval_id, wait, &*progress).await });
        match task.await {
            Ok(outcome) => Ok(render::outcome(&outcome)),
            Err(e) => Err(McpError::internal_error(format!("tool call task failed: {e}"), None)),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AirlockTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// Sessions are what Airlock records, and the 2026 stateless revision has none: stay on 2025-11-25, so
    /// clients that probe newer revisions fall back to `initialize` and get a session.
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        let result = self.negotiate_initialize(&request)?;
        // Open the recorded session now, with the client's name and version; a failure here (store down) is
        // reported again, and fails closed, at the first tool call.
        let _ = self.caller(&context).await?;
        Ok(result)
    }
}
