//! `airlock mcp --stdio`: one MCP client on stdin/stdout. The agent's identity is authenticated once, from
//! `AIRLOCK_TOKEN`, before anything is served; stdout carries only MCP messages (logs go to stderr).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use gateway_core::pipeline::Gateway;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::approvals::Approvals;
use crate::shutdown;
use crate::tools::{ToolsFactory, Transport};

/// Serve until the client closes stdin or a stop signal arrives; in-flight calls finish first.
pub async fn serve(gateway: Arc<Gateway>, approvals: &Approvals) -> anyhow::Result<ExitCode> {
    let audit_sinks = gateway_core::audit::sinks(&gateway.config().audit, true)?;
    let token = std::env::var("AIRLOCK_TOKEN").ok();
    let identity = match gateway.authenticate(token.as_deref(), "stdio").await {
        Ok(identity) => identity,
        Err(e) => {
            let hint = if token.as_deref().is_none_or(str::is_empty) {
                "AIRLOCK_TOKEN is not set. Create a token with `airlock token create --name <agent>` and pass it \
                 in the environment of `airlock mcp --stdio` (MCP clients do not pass their own environment on)."
            } else {
                "AIRLOCK_TOKEN was refused (unknown, malformed or revoked API token, or a JWT that failed \
                 verification)."
            };
            eprintln!("airlock: {hint} ({e})");
            return Ok(ExitCode::from(2));
        }
    };
    tracing::info!(subject = %identity.subject, "stdio client authenticated");
    let calls = TaskTracker::new();
    let stop = CancellationToken::new();
    let _background = approvals.spawn_background(gateway.clone(), stop.child_token());
    let _audit = gateway_core::audit::spawn_delivery(gateway.store().clone(), audit_sinks, stop.child_token());
    let tools = ToolsFactory::new(gateway.clone(), calls.clone()).session(Transport::Stdio(identity));
    let running = tools.serve_with_ct(rmcp::transport::stdio(), stop.child_token()).await?;
    tokio::select! {
        quit = running.waiting() => { quit?; }
        signal = shutdown::signal() => {
            tracing::info!(signal, in_flight = calls.len(), "shutting down: finishing in-flight calls");
            calls.close();
            let _ = tokio::time::timeout(Duration::from_secs(30), calls.wait()).await;
            stop.cancel();
        }
    }
    calls.close();
    calls.wait().await;
    stop.cancel();
    gateway.store().close().await;
    Ok(ExitCode::SUCCESS)
}
