//! `airlock demo`: a working gateway on a fresh machine in one command. Creates (or reuses) a directory with a
//! config, the default policies, a SQLite store, a seeded SQLite shop and a demo agent token, then serves it and
//! prints how to connect.

pub mod seed;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use gateway_core::config::Config;
use gateway_core::identity::Tokens;

use crate::cli::DemoArgs;

/// The shipped default policy, copied into the demo directory.
const DEFAULT_POLICY: &str = include_str!("../../../policies/default.yaml");
const TOKEN_FILE: &str = "agent.token";
const AGENT_NAME: &str = "demo-agent";
/// The demo's human: signs in to the web UI with a fresh login link at every start, and approves held calls.
const REVIEWER: &str = "reviewer@demo.example";

/// Prepare the demo directory, then serve it (unless `--no-serve`).
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    if args.print_seed_sql {
        print!("{}", seed::seed_sql());
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    let config_path = dir.join("airlock.toml");
    let fresh = !config_path.exists();
    if fresh {
        std::fs::write(&config_path, config_text(&dir))?;
    }
    let policy_dir = dir.join("policies");
    std::fs::create_dir_all(&policy_dir)?;
    if !policy_dir.join("default.yaml").exists() {
        std::fs::write(policy_dir.join("default.yaml"), DEFAULT_POLICY)?;
    }
    let shop = dir.join("shop.db");
    if !shop.exists() {
        seed::create_sqlite_shop(&shop).await.context("cannot create the demo shop database")?;
    }

    let mut config = crate::admin::load_config(&config_path)?;
    // Replay links and the printed URL follow the listen address unless a public URL is set explicitly.
    if std::env::var_os("AIRLOCK_SERVER__PUBLIC_URL").is_none() && fresh_public_url(&config) {
        config.server.public_url = format!("http://{}", config.server.listen);
    }
    let (gateway, approvals) = crate::start_with(config).await.context("cannot start the demo gateway")?;
    let token = demo_token(gateway.tokens(), &dir).await?;
    let login = web_login(&gateway).await?;
    // Ignore a closed stdout (`airlock demo | head`): the server is what matters.
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        instructions(&dir, &config_path, gateway.config(), &token, login.as_deref(), fresh)
    );
    if args.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    crate::http::serve(gateway, &approvals).await?;
    Ok(ExitCode::SUCCESS)
}

/// True when `public_url` is still the default written by the demo.
fn fresh_public_url(config: &Config) -> bool {
    config.server.public_url == "http://127.0.0.1:8080"
}

fn config_text(dir: &Path) -> String {
    format!(
        r#"# Airlock demo configuration, written by `airlock demo`. DEMO ONLY: the store and the target are local
# SQLite files and the agent token in agent.token sits in clear. Any key can be overridden from the environment,
# e.g. AIRLOCK_SERVER__LISTEN=127.0.0.1:9000.

[server]
listen = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"

[store]
url = "sqlite://{store}"

[policy]
dir = "policies"

# Without Slack, held calls wait in the web UI's review inbox (/approvals).
[web]
approval_inbox = true

[[humans]]
subject = "{reviewer}"
groups = ["admin", "dba"]

[connections.shop]
kind = "sqlite"
description = "Demo web shop. Tables: customers(id, name, email, phone, card_number, ssn, city, created_at) and orders(id, customer_id, product, quantity, amount_cents, status, ordered_at)."
url = "sqlite://{shop}"
"#,
        store = dir.join("airlock.db").display(),
        shop = dir.join("shop.db").display(),
        reviewer = REVIEWER,
    )
}

/// A one-time login link for the demo's reviewer (when the configuration still has them).
async fn web_login(gateway: &gateway_core::pipeline::Gateway) -> anyhow::Result<Option<String>> {
    let config = gateway.config();
    if !config.web.enabled || !config.humans.iter().any(|h| h.subject == REVIEWER) {
        return Ok(None);
    }
    let accounts = crate::web::Accounts::new(gateway.store().clone());
    let lifetime = config.web.login_link_lifetime.0.as_millis() as i64;
    let token = accounts.issue_login_link(REVIEWER, lifetime).await?;
    Ok(Some(format!("{}/login?token={token}", config.server.public_url.trim_end_matches('/'))))
}

/// The demo agent's token: reused from `agent.token` while it still authenticates, created otherwise.
async fn demo_token(tokens: &Tokens, dir: &Path) -> anyhow::Result<String> {
    let path = dir.join(TOKEN_FILE);
    if let Ok(saved) = std::fs::read_to_string(&path) {
        let saved = saved.trim().to_owned();
        if tokens.authenticate(&saved).await.is_ok() {
            return Ok(saved);
        }
    }
    let new = tokens.create(AGENT_NAME, &["agents".to_owned()]).await?;
    std::fs::write(&path, format!("{}\n", new.token))?;
    restrict_permissions(&path);
    Ok(new.token)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) {}

fn instructions(
    dir: &Path,
    config_path: &Path,
    config: &Config,
    token: &str,
    login: Option<&str>,
    fresh: bool,
) -> String {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("airlock"));
    let url = format!("{}/mcp", config.server.public_url.trim_end_matches('/'));
    let exe = exe.display();
    let cfg = config_path.display();
    let (web, held) = match login {
        Some(link) => (
            format!(
                "\nWeb UI (replay, search, review inbox)\n  sign in  {link}\n           \
                 (one-time link for \"{REVIEWER}\", admin; a new one is printed at every start)\n"
            ),
            "(waits in the web inbox /approvals; approve it there and the agent's await_approval gets the result)",
        ),
        None => (String::new(), "(needs approval; no approval channel, so it fails closed)"),
    };
    format!(
        r#"
Airlock demo {state} in {dir}
  config   {cfg}
  target   "shop": SQLite, {customers} customers and {orders} orders with fake names, e-mails, phones, cards, SSNs
  token    {token}
           (demo agent "{AGENT_NAME}", group "agents"; saved in {dir}/{TOKEN_FILE}. DEMO ONLY: never reuse it.)
{web}
Connect an MCP client
  URL      {url}   (streamable HTTP)
  header   Authorization: Bearer {token}

AutoGen (pip install "autogen-ext[mcp]" "mcp<2"):

    from autogen_ext.tools.mcp import McpWorkbench, StreamableHttpServerParams, StdioServerParams

    http = StreamableHttpServerParams(
        url="{url}",
        headers={{"Authorization": "Bearer {token}"}},
        timeout=30, sse_read_timeout=300,
    )
    # or over stdio (AutoGen's default read timeout of 5 s is too short for governed calls):
    stdio = StdioServerParams(
        command="{exe}", args=["--config", "{cfg}", "mcp", "--stdio"],
        env={{"AIRLOCK_TOKEN": "{token}"}},
        read_timeout_seconds=60,
    )
    async with McpWorkbench(server_params=http) as workbench:
        print(await workbench.call_tool("sql_query", {{"connection": "shop",
              "query": "SELECT id, name, email, card_number FROM customers LIMIT 5"}}))

Things to try
  masked:   sql_query shop "SELECT id, name, email, phone, card_number, ssn FROM customers LIMIT 5"
  blocked:  sql_query shop "DROP TABLE orders"            (rule block-destructive-ddl; the table survives)
  held:     sql_query shop "DELETE FROM orders"           {held}
  policy:   {exe} --config {cfg} policy test --connection shop --sql "DELETE FROM orders"
  audit:    {exe} --config {cfg} sessions verify --all
"#,
        state = if fresh { "created" } else { "reused" },
        dir = dir.display(),
        customers = seed::CUSTOMERS,
        orders = seed::ORDERS,
    )
}
