//! `airlock users …`: local web sign-in for the `[[humans]]` of the configuration.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use gateway_core::config::Config;

use super::auth::{Accounts, Role, random_token};
use crate::admin::open_store;
use crate::cli::UsersCommand;

/// Shortest password accepted from `--password-stdin`.
const MIN_PASSWORD_CHARS: usize = 12;

pub async fn users(config: &Config, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let subject = match &command {
        UsersCommand::Add { subject, .. } | UsersCommand::LoginLink { subject } => subject.clone(),
    };
    // Only configured humans can sign in; say so now rather than at their first failed login.
    let Some(human) = config.humans.iter().find(|h| h.subject == subject) else {
        eprintln!("{subject:?} is not a `[[humans]]` subject in the configuration; add it there first");
        return Ok(ExitCode::FAILURE);
    };
    let Some(role) = Role::of(&config.web, &human.groups) else {
        eprintln!(
            "{subject:?} (groups: {}) has no web role: add one of its groups to [web] reviewer_groups, \
             approver_groups or admin_groups",
            human.groups.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };
    let store = open_store(config).await?;
    let accounts = Accounts::new(store.clone());
    match command {
        UsersCommand::Add { password_stdin, .. } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
                let password = line.trim_end_matches(['\r', '\n']).to_owned();
                if password.chars().count() < MIN_PASSWORD_CHARS {
                    eprintln!("the password must have at least {MIN_PASSWORD_CHARS} characters");
                    return Ok(ExitCode::FAILURE);
                }
                password
            } else {
                let generated = random_token();
                println!("{generated}");
                generated
            };
            accounts.set_password(&subject, &password).await?;
            eprintln!("{subject} can now sign in at {}/login (role: {role:?})", public_base(config));
        }
        UsersCommand::LoginLink { .. } => {
            let lifetime = config.web.login_link_lifetime.0;
            let token = accounts.issue_login_link(&subject, lifetime.as_millis() as i64).await?;
            eprintln!("One-time login link for {subject} (role: {role:?}), valid for {} s:", lifetime.as_secs());
            println!("{}/login?token={token}", public_base(config));
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn public_base(config: &Config) -> &str {
    config.server.public_url.trim_end_matches('/')
}
