//! Administrative subcommands: store migration, tokens, policy checks, session verification. They need the
//! store (or only the policies), never the targets.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use gateway_core::config::Config;
use gateway_core::config::ConnectionKind;
use gateway_core::evidence::{SessionExport, asciicast, verify_export};
use gateway_core::identity::{Identity, Tokens};
use gateway_core::pipeline::{Classification, KubeRequest, SqlRequest, SshRequest, ToolRequest, classify_and_decide};
use gateway_core::record::Recorder;
use gateway_core::retention::purge_expired;
use gateway_core::store::{Store, now_ms};

use crate::cli::{PolicyCommand, SessionsCommand, TokenCommand};

/// Open (and migrate) the configured store.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let password = config.store.password.as_ref().map(|r| r.resolve("store")).transpose()?;
    let store = Store::connect(&config.store.url, password.as_ref())
        .await
        .with_context(|| format!("cannot open the store {}", config.store.url))?;
    store.migrate().await?;
    Ok(store)
}

/// `airlock migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    store.close().await;
    println!("store {} is up to date", config.store.url);
    Ok(ExitCode::SUCCESS)
}

/// `airlock token …`.
pub async fn token(config: &Config, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let tokens = Tokens::new(store.clone());
    let code = match command {
        TokenCommand::Create { name, groups } => {
            let new = tokens.create(&name, &groups).await?;
            eprintln!(
                "Created token {} for {:?} (groups: {}). It is shown only once; keep it in a secret store:",
                new.info.id,
                new.info.name,
                if groups.is_empty() { "none".to_owned() } else { groups.join(", ") }
            );
            println!("{}", new.token);
            ExitCode::SUCCESS
        }
        TokenCommand::List => {
            let list = tokens.list().await?;
            if list.is_empty() {
                println!("no tokens; create one with `airlock token create --name <agent>`");
            } else {
                println!("{:<14} {:<24} {:<24} {:<14} status", "id", "name", "groups", "created_ms");
                for t in list {
                    let status = match t.revoked_ms {
                        Some(ms) => format!("revoked at {ms}"),
                        None => "active".to_owned(),
                    };
                    println!("{:<14} {:<24} {:<24} {:<14} {status}", t.id, t.name, t.groups.join(","), t.created_ms);
                }
            }
            ExitCode::SUCCESS
        }
        TokenCommand::Revoke { id_or_name } => {
            let n = tokens.revoke(&id_or_name).await?;
            if n == 0 {
                eprintln!("no active token has id or name {id_or_name:?}");
                ExitCode::FAILURE
            } else {
                println!("revoked {n} token(s); sessions using them are refused from their next call");
                ExitCode::SUCCESS
            }
        }
    };
    store.close().await;
    Ok(code)
}

/// `airlock policy …`.
pub async fn policy(config: &Config, command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Export { output } => {
            let store = open_store(config).await?;
            let exported = gateway_core::admin::export(&store, &config.policy.dir).await;
            store.close().await;
            let (yaml, version) = exported?;
            match output {
                Some(path) => {
                    std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote the effective policy (admin version {version}) to {}", path.display());
                }
                None => print!("{yaml}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::History { limit } => {
            let store = open_store(config).await?;
            let versions = gateway_core::admin::history(&store, limit).await;
            store.close().await;
            let versions = versions?;
            if versions.is_empty() {
                println!("no admin policy changes: the policy files alone are in force");
            }
            for v in versions {
                println!("v{}  {}  {}  {}", v.version, v.created_at_ms, v.actor, v.command);
                for line in v.diff.lines() {
                    println!("    {line}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check { dir } => {
            let dir = dir.as_deref().unwrap_or(&config.policy.dir);
            let set = gateway_core::policy::load_dir(dir)?;
            println!("{}: {} rule(s) valid, policy version {}", dir.display(), set.rules().len(), set.version());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { connection, sql, command, namespace, pod, argv, subject, groups } => {
            let set = gateway_core::policy::load_dir(&config.policy.dir)?;
            let conn = config.connections.get(&connection).with_context(|| {
                format!(
                    "connection {connection:?} is not configured (known: {})",
                    config.connections.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            let identity = Identity::agent(subject, &groups);
            let request = match (conn.kind, sql, command) {
                (ConnectionKind::Ssh, _, Some(command)) => {
                    ToolRequest::Ssh(SshRequest { connection, command, timeout_s: None })
                }
                (ConnectionKind::Ssh, _, None) => anyhow::bail!("an ssh connection is tested with --command \"...\""),
                (ConnectionKind::Kubernetes, _, _) => {
                    let (Some(namespace), Some(pod)) = (namespace, pod) else {
                        anyhow::bail!("a kubernetes connection is tested with --namespace NS --pod POD -- ARGV...");
                    };
                    ToolRequest::Kube(KubeRequest {
                        connection,
                        namespace,
                        pod,
                        container: None,
                        command: argv,
                        timeout_s: None,
                    })
                }
                (_, Some(query), _) => ToolRequest::Sql(SqlRequest { connection, query, max_rows: None }),
                (_, None, _) => anyhow::bail!("a database connection is tested with --sql \"...\""),
            };
            let (classification, decision) = classify_and_decide(&set, config, conn, &identity, &request);
            println!("connection: {} ({})", request.connection(), conn.kind.as_str());
            println!("caller: {} (groups: {})", identity.subject, identity.groups.join(", "));
            match &classification {
                Classification::Sql(classification) => {
                    let classes: Vec<&str> = classification.classes.iter().map(|c| c.as_str()).collect();
                    println!("classification: {}", classes.join(", "));
                    println!("statements: {}", classification.statements);
                    if !classification.tables.is_empty() {
                        println!("tables: {}", classification.tables.iter().cloned().collect::<Vec<_>>().join(", "));
                    }
                    if !classification.functions.is_empty() {
                        println!(
                            "functions: {}",
                            classification.functions.iter().cloned().collect::<Vec<_>>().join(", ")
                        );
                    }
                    if let Some(e) = &classification.parse_error {
                        println!("parse error: {e}");
                    }
                }
                Classification::Shell(shell) => {
                    let classes: Vec<String> = shell
                        .classes
                        .iter()
                        .map(|c| {
                            serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                        })
                        .collect();
                    println!("classification: {}", classes.join(", "));
                    println!("commands: {}", shell.commands.join(", "));
                    if let Some(e) = &shell.parse_error {
                        println!("parse error: {e}");
                    }
                }
            }
            print!("{}", decision.explain());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `airlock sessions …`.
pub async fn sessions(config: &Config, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SessionsCommand::Verify { file: Some(file), .. } => verify_file(&file),
        SessionsCommand::Verify { id, all, file: None } => verify_store(config, id, all).await,
        SessionsCommand::Export { id, format, call, output } => {
            let store = open_store(config).await?;
            let export = Recorder::new(store.clone()).export(&id).await?;
            store.close().await;
            let Some(export) = export else { anyhow::bail!("no session {id:?} in the store") };
            let text = match format.as_str() {
                "asciicast" => asciicast(&export, call.as_deref())
                    .with_context(|| format!("session {id} has no command output to play back"))?,
                _ => serde_json::to_string_pretty(&export)? + "\n",
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "exported session {id} ({} events, chain head {}) to {}",
                        export.chain.events,
                        export.chain.head.as_deref().unwrap_or("-"),
                        path.display()
                    );
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        SessionsCommand::Purge { dry_run } => {
            let store = open_store(config).await?;
            let recorder = Recorder::new(store.clone());
            recorder.ensure_audit_session().await?;
            let purged = purge_expired(&recorder, config, now_ms(), dry_run).await?;
            store.close().await;
            for s in &purged {
                println!(
                    "{} {} ({}, {} events, last event {} days ago, retention {} days)",
                    if dry_run { "would purge" } else { "purged" },
                    s.session_id,
                    s.subject,
                    s.events,
                    (now_ms() - s.last_ms) / 86_400_000,
                    s.retention_days
                );
            }
            println!("{} session(s) {}", purged.len(), if dry_run { "past retention" } else { "purged" });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `airlock sessions verify --file`: offline, from an export.
fn verify_file(file: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let export: SessionExport =
        serde_json::from_str(&text).with_context(|| format!("{} is not an airlock session export", file.display()))?;
    let id = &export.session.id;
    match verify_export(&export) {
        Ok(report) => match &report.broken {
            None => {
                println!("{id}: ok ({} events, head {})", report.events, report.head.as_deref().unwrap_or("-"));
                Ok(ExitCode::SUCCESS)
            }
            Some(link) => {
                println!("{id}: BROKEN at event {}: {}", link.seq, link.reason);
                Ok(ExitCode::FAILURE)
            }
        },
        Err(message) => {
            println!("{id}: BROKEN: {message}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn verify_store(config: &Config, id: Option<String>, all: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let recorder = Recorder::new(store.clone());
    let ids = match (id, all) {
        (Some(id), _) => vec![id],
        (None, _) => recorder.session_ids().await?,
    };
    let mut broken = 0usize;
    for id in &ids {
        let report = recorder.verify(id).await?;
        match &report.broken {
            None if report.events == 0 && !all => {
                println!("{id}: no events (unknown session?)");
                broken += 1;
            }
            None => println!("{id}: ok ({} events, head {})", report.events, report.head.as_deref().unwrap_or("-")),
            Some(link) => {
                println!("{id}: BROKEN at event {}: {}", link.seq, link.reason);
                broken += 1;
            }
        }
    }
    store.close().await;
    if broken > 0 {
        eprintln!("{broken} of {} session(s) failed verification", ids.len());
        return Ok(ExitCode::FAILURE);
    }
    if all {
        println!("{} session(s) verified", ids.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// Load the configuration, saying which file when it fails.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("cannot load configuration from {}", path.display()))
}
