//! `airlock`: the gateway binary. Thin wiring: parse the command line, set up logging (always on stderr, since
//! stdout is the stdio transport), and hand over to the module that owns the command.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod admin;
mod approvals;
mod cli;
mod demo;
mod http;
mod metrics;
mod shutdown;
mod stdio;
mod tools;
mod web;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use gateway_core::pipeline::Gateway;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("airlock: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Serve => {
            let (gateway, approvals) = start(&cli.config).await?;
            http::serve(gateway, &approvals).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mcp(_) => {
            let (gateway, approvals) = start(&cli.config).await?;
            stdio::serve(gateway, &approvals).await
        }
        Command::Migrate => admin::migrate(&admin::load_config(&cli.config)?).await,
        Command::Token(cmd) => admin::token(&admin::load_config(&cli.config)?, cmd).await,
        Command::Policy(cmd) => admin::policy(&admin::load_config(&cli.config)?, cmd).await,
        Command::Sessions(cmd) => admin::sessions(&admin::load_config(&cli.config)?, cmd).await,
        Command::Users(cmd) => web::users(&admin::load_config(&cli.config)?, cmd).await,
    }
}

/// Load the configuration and start the gateway with its approval channels.
pub async fn start(config_path: &std::path::Path) -> anyhow::Result<(Arc<Gateway>, approvals::Approvals)> {
    let config = admin::load_config(config_path)?;
    start_with(config).await
}

/// [`start`] from a loaded configuration.
pub async fn start_with(config: gateway_core::config::Config) -> anyhow::Result<(Arc<Gateway>, approvals::Approvals)> {
    let approvals = approvals::Approvals::from_config(&config)?;
    let gateway = Gateway::start(config).await.context("cannot start the gateway")?;
    Ok((Arc::new(approvals.attach(gateway)), approvals))
}

/// `AIRLOCK_LOG` (or `RUST_LOG`) filters; the default shows Airlock's own info lines.
/// Libraries whose debug and trace events print raw request data: MCP messages with the agent's arguments, SQL
/// statements as sent, HTTP and SSH traffic. Airlock only ever records and logs masked data, so these stay at
/// `info` whatever `AIRLOCK_LOG` asks for (a credential or a customer's e-mail typed by an agent must not reach
/// the log by way of a debug line).
const RAW_DATA_TARGETS: [&str; 8] =
    ["rmcp", "sqlx", "russh", "kube", "kube_client", "hyper", "hyper_util", "tokio_tungstenite"];

fn init_logging() {
    let filter = std::env::var("AIRLOCK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "airlock=info,gateway_core=info,warn".to_owned());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into());
    for target in RAW_DATA_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
}
