//! Admin slash commands (`/airlock …`), one grammar and one model shared by Slack and Discord.
//!
//! [`run`] maps the chat user to a `[[humans]]` identity, parses the text ([`parse::parse`]), checks who may
//! do what, runs the command against the gateway and returns the reply. Every command, refusal and failure is
//! appended to the gateway's audit session (`admin_command`). Changes (policy set / rollback, freeze /
//! unfreeze) are announced in `[approval] audit_channel` through the notifier, or, when it is unset, by a
//! reply visible to the whole channel; everything else answers ephemerally.
//!
//! Who may do what: read-only commands need a mapped human (any group); `approve` / `deny` go through the
//! same vote path as buttons, so the approval's approver rules apply; changes need a group listed in
//! `[web] admin_groups` (default `admin`). Unmapped chat users are refused.

pub mod parse;
pub mod slack;

use std::fmt::Write as _;
use std::sync::Arc;

use gateway_core::approval::{ApprovalRecord, VoteDecision, VoteOutcome, VoteSource};
use gateway_core::identity::Identity;
use gateway_core::pipeline::Gateway;
use gateway_core::record::{AUDIT_SESSION, EventKind};
use gateway_core::search::CallQuery;
use serde_json::json;
use tracing::Instrument;

pub use parse::{Access, Command, ParseError, USAGE, parse};

/// Which chat platform a command came from (selects the `[[humans]]` mapping and the vote source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Discord,
}

impl Platform {
    fn source(self) -> VoteSource {
        match self {
            Platform::Slack => VoteSource::Slack,
            Platform::Discord => VoteSource::Discord,
        }
    }

    fn as_str(self) -> &'static str {
        self.source().as_str()
    }
}

/// One slash command as the platform delivered it: who, where, and the text after `/airlock`. `channel` is
/// the platform's channel id (Discord: `discord:<id>`).
#[derive(Debug, Clone)]
pub struct Invocation {
    pub platform: Platform,
    pub user_id: String,
    pub channel: String,
    pub text: String,
}

/// What to answer: `ephemeral` replies are shown only to the invoking user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub ephemeral: bool,
}

impl Reply {
    fn private(text: impl Into<String>) -> Self {
        Self { text: text.into(), ephemeral: true }
    }
}

/// What a command did, for the reply and the audit record.
enum Done {
    /// Shown to the invoker only.
    Private(String),
    /// A change: announced, then confirmed to the invoker.
    Change(String),
}

/// Runs one slash command and returns the answer to show. Never fails: errors become (audited) replies.
pub async fn run(gateway: &Arc<Gateway>, inv: Invocation) -> Reply {
    let span = tracing::info_span!("admin_command", platform = inv.platform.as_str(), user = %inv.user_id);
    run_inner(gateway, inv).instrument(span).await
}

async fn run_inner(gateway: &Arc<Gateway>, inv: Invocation) -> Reply {
    let Some(identity) = gateway.human_by_chat(inv.platform.source(), &inv.user_id) else {
        let text = format!(
            "Your {} account is not mapped to an Airlock identity, so you cannot use `/airlock`. Ask an admin to add \
             you to `humans` in airlock.toml.",
            inv.platform.as_str()
        );
        audit(gateway, &inv, None, "-", "refused", "unmapped chat user").await;
        return Reply::private(text);
    };
    let command = match parse(&inv.text) {
        Ok(c) => c,
        Err(e) => {
            audit(gateway, &inv, Some(&identity), "-", "invalid", &e.0).await;
            return Reply::private(format!("{e}\n\n{USAGE}"));
        }
    };
    if command.access() == Access::Change && !is_admin(gateway, &identity) {
        let text = format!(
            "Only admins (groups: {}) may run `{}`; you are {} ({}).",
            gateway.config().web.admin_groups.join(", "),
            command.name(),
            identity.subject,
            if identity.groups.is_empty() { "no groups".to_owned() } else { identity.groups.join(", ") }
        );
        audit(gateway, &inv, Some(&identity), command.name(), "refused", "not an admin").await;
        return Reply::private(text);
    }
    match execute(gateway, &inv, &identity, &command).await {
        Ok(Done::Private(text)) => {
            audit(gateway, &inv, Some(&identity), command.name(), "ok", "").await;
            Reply::private(text)
        }
        Ok(Done::Change(text)) => {
            audit(gateway, &inv, Some(&identity), command.name(), "ok", &text).await;
            announce(gateway, text).await
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(command = command.name(), error = %msg, "admin command failed");
            audit(gateway, &inv, Some(&identity), command.name(), "error", &msg).await;
            Reply::private(format!("`{}` failed: {msg}", command.name()))
        }
    }
}

fn is_admin(gateway: &Gateway, identity: &Identity) -> bool {
    identity.groups.iter().any(|g| gateway.config().web.admin_groups.contains(g))
}

/// Append one `admin_command` event to the audit session. A failure to record is logged: the reply already
/// says what happened, and changes have their own events recorded (or failed) by the gateway.
async fn audit(
    gateway: &Gateway,
    inv: &Invocation,
    identity: Option<&Identity>,
    command: &str,
    outcome: &str,
    detail: &str,
) {
    let recorded = gateway
        .recorder()
        .append(
            AUDIT_SESSION,
            None,
            EventKind::AdminCommand,
            &json!({
                "platform": inv.platform.as_str(), "user_id": inv.user_id, "channel": inv.channel,
                "subject": identity.map(|i| i.subject.as_str()), "command": command, "text": inv.text,
                "outcome": outcome, "detail": detail,
            }),
        )
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record admin command in the audit session");
    }
}

/// Announce a change in the audit channel (then confirm privately), or to the command's channel.
async fn announce(gateway: &Gateway, text: String) -> Reply {
    if let (Some(channel), Some(notifier)) = (gateway.config().approval.audit_channel.as_deref(), gateway.notifier()) {
        match notifier.announce(channel, &text).await {
            Ok(()) => return Reply::private(format!("{text}\n(announced in {channel})")),
            Err(e) => tracing::warn!(channel, error = %e, "could not announce admin change; replying in channel"),
        }
    }
    Reply { text, ephemeral: false }
}

async fn execute(
    gateway: &Arc<Gateway>,
    inv: &Invocation,
    who: &Identity,
    command: &Command,
) -> gateway_core::Result<Done> {
    let command_text = format!("/airlock {}", inv.text.split_whitespace().collect::<Vec<_>>().join(" "));
    Ok(match command {
        Command::Help => Done::Private(USAGE.to_owned()),
        Command::PolicyList => Done::Private(policy_list(gateway)),
        Command::PolicyShow { rule } => Done::Private(policy_show(gateway, rule)),
        Command::PolicyHistory => {
            let versions = gateway.policy_history(10).await?;
            if versions.is_empty() {
                Done::Private("No admin policy changes yet: the policy files alone are in force (version 0).".into())
            } else {
                let mut out = String::from("*Policy versions* (newest first; `policy rollback <version>`):\n");
                for v in versions {
                    let _ =
                        writeln!(out, "*v{}* — {} — {} — `{}`", v.version, v.actor, utc(v.created_at_ms), v.command);
                    for line in v.diff.lines() {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                Done::Private(out)
            }
        }
        Command::PolicySet { rule, change } => {
            let v = gateway.policy_set(who, rule, change.clone(), &command_text).await?;
            Done::Change(format!(
                "Policy v{} by {}: {} (policy version {}).",
                v.version,
                v.actor,
                v.diff.replace('\n', "; "),
                gateway.policies().version()
            ))
        }
        Command::PolicyRollback { version } => {
            let v = gateway.policy_rollback(who, *version, &command_text).await?;
            Done::Change(format!(
                "Policy v{} by {}: rolled back to v{version}: {}.",
                v.version,
                v.actor,
                v.diff.replace('\n', "; ")
            ))
        }
        Command::Pending => Done::Private(pending(gateway, inv).await?),
        Command::Approve { id } => Done::Private(vote(gateway, inv, who, id, VoteDecision::Approve, None).await?),
        Command::Deny { id, reason } => {
            Done::Private(vote(gateway, inv, who, id, VoteDecision::Deny, Some(reason)).await?)
        }
        Command::Sessions { filter, since } => {
            let since_ms = since.map(|d| gateway_core::store::now_ms() - d.as_millis() as i64);
            let sessions = gateway.recent_sessions(filter.as_deref(), since_ms, 15).await?;
            if sessions.is_empty() {
                Done::Private("No matching sessions.".into())
            } else {
                let mut out = String::from("*Sessions* (newest first):\n");
                for s in sessions {
                    let _ = writeln!(
                        out,
                        "• {} — {} via {} — {} call(s) — <{}|replay>",
                        utc(s.created_ms),
                        s.subject,
                        s.transport,
                        s.calls,
                        s.replay_url
                    );
                }
                Done::Private(out)
            }
        }
        Command::Session { id } => {
            let page = gateway
                .recorder()
                .search_calls(&CallQuery { session_id: Some(id.clone()), per_page: 20, ..CallQuery::default() })
                .await?;
            let mut out = format!("*Session* `{id}` — <{}|replay>\n", gateway.replay_url(id));
            if page.calls.is_empty() {
                out.push_str("No recorded calls.");
            }
            for c in &page.calls {
                let mut statement: String = c.statement.chars().take(120).collect();
                if statement.len() < c.statement.len() {
                    statement.push('…');
                }
                let _ = writeln!(
                    out,
                    "• {} {} on {} — {}{} — `{}`",
                    utc(c.started_ms),
                    c.tool,
                    c.connection,
                    c.status,
                    c.rule.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
                    statement.replace('`', "'")
                );
            }
            Done::Private(out)
        }
        Command::Freeze { subject, reason } => {
            let denied = gateway.freeze(who, subject, reason, inv.platform.source()).await?;
            Done::Change(format!(
                "Identity {subject} frozen by {}: {reason}. Its calls are refused{}.",
                who.subject,
                if denied.is_empty() {
                    String::new()
                } else {
                    format!("; {} pending approval(s) denied ({})", denied.len(), denied.join(", "))
                }
            ))
        }
        Command::Unfreeze { subject } => {
            if gateway.unfreeze(who, subject).await? {
                Done::Change(format!(
                    "Identity {subject} unfrozen by {}: its calls go through policy again.",
                    who.subject
                ))
            } else {
                Done::Private(format!("{subject} is not frozen."))
            }
        }
        Command::Frozen => {
            let frozen = gateway.admin().frozen();
            if frozen.is_empty() {
                Done::Private("No identity is frozen.".into())
            } else {
                let mut out = String::from("*Frozen identities*:\n");
                for f in frozen {
                    let _ = writeln!(out, "• {} — by {} at {} — {}", f.subject, f.actor, utc(f.at_ms), f.reason);
                }
                Done::Private(out)
            }
        }
    })
}

fn policy_list(gateway: &Gateway) -> String {
    let policies = gateway.policies();
    let (version, overlay) = gateway.admin().overlay();
    let mut out = format!("*Policy rules* (admin version v{version}, policy version {}):\n", policies.version());
    for r in policies.rules() {
        let marker = if overlay.contains_key(&r.rule.name) { " _(changed by an admin)_" } else { "" };
        let _ =
            writeln!(out, "• `{}` — {}{marker}", r.rule.name, gateway_core::policy::overlay::describe_rule(&r.rule));
    }
    out
}

fn policy_show(gateway: &Gateway, name: &str) -> String {
    let policies = gateway.policies();
    let Some(r) = policies.rules().iter().find(|r| r.rule.name == name) else {
        let close =
            gateway_core::policy::overlay::close_names(name, policies.rules().iter().map(|r| r.rule.name.as_str()));
        return if close.is_empty() {
            format!("No policy rule named {name:?}; `policy list` shows them all.")
        } else {
            format!("No policy rule named {name:?}; did you mean {}?", close.join(", "))
        };
    };
    let (_, overlay) = gateway.admin().overlay();
    let mut out = format!("*Rule* `{}` (from {})\n", r.rule.name, r.file.display());
    if !r.rule.description.is_empty() {
        let _ = writeln!(out, "{}", r.rule.description);
    }
    let _ = writeln!(out, "action: {}", gateway_core::policy::overlay::describe_rule(&r.rule));
    if let Some(m) = &r.rule.message {
        let _ = writeln!(out, "message: {m}");
    }
    let _ = writeln!(out, "match: `{}`", serde_json::to_string(&r.rule.matcher).unwrap_or_default());
    if let Some(o) = overlay.get(name) {
        let _ = writeln!(out, "admin override: {o} (`policy history` shows who and when)");
    }
    out
}

/// The approval was posted to this channel: by id (the notifier's `channel:ts` reference) or by name.
fn in_channel(rec: &ApprovalRecord, channel: &str) -> bool {
    let bare = channel.strip_prefix("discord:").unwrap_or(channel);
    rec.channel == channel
        || rec.channel == bare
        || rec.channel.strip_prefix('#').is_some_and(|n| n == bare)
        || rec
            .notifier_ref
            .as_deref()
            .is_some_and(|r| r.starts_with(&format!("{channel}:")) || r.starts_with(&format!("{bare}:")))
}

async fn pending(gateway: &Gateway, inv: &Invocation) -> gateway_core::Result<String> {
    let all = gateway.broker().pending(None).await?;
    let here: Vec<&ApprovalRecord> = all.iter().filter(|r| in_channel(r, &inv.channel)).collect();
    let elsewhere = all.len() - here.len();
    let mut out = if here.is_empty() {
        "No open approvals in this channel.".to_owned()
    } else {
        format!("*Open approvals in this channel* ({}):\n", here.len())
    };
    for r in here {
        let approvals = r.votes.iter().filter(|v| v.decision == VoteDecision::Approve).count();
        let _ = writeln!(
            out,
            "• `{}` — {} on {} — `{}` — rule {} — {approvals}/{} from {} — expires {}",
            r.id,
            r.requester.subject,
            r.connection,
            r.display.chars().take(120).collect::<String>().replace('`', "'"),
            r.rule,
            r.requirement.quorum,
            r.requirement.approvers.join(", "),
            utc(r.expires_ms)
        );
    }
    if elsewhere > 0 {
        let _ = write!(out, "\n({elsewhere} more in other channels.)");
    }
    Ok(out)
}

async fn vote(
    gateway: &Arc<Gateway>,
    inv: &Invocation,
    who: &Identity,
    id: &str,
    decision: VoteDecision,
    reason: Option<&str>,
) -> gateway_core::Result<String> {
    Ok(match gateway.vote(id, who, decision, reason, inv.platform.source()).await? {
        VoteOutcome::Counted { state, approvals, quorum } => match decision {
            VoteDecision::Deny => format!("Denied `{id}`: {}.", reason.unwrap_or("")),
            VoteDecision::Approve if state.is_decided() => {
                format!("Approved `{id}` ({approvals}/{quorum}); it runs now.")
            }
            VoteDecision::Approve => format!("Your approval of `{id}` counts: {approvals} of {quorum}."),
        },
        VoteOutcome::Refused(r) => r.explain(),
    })
}

/// `2026-11-21 23:40 UTC` from milliseconds since the epoch (no calendar dependency for one format).
fn utc(ms: i64) -> String {
    let (y, m, d, hour, minute, _, _) = gateway_core::store::utc_fields(ms);
    format!("{y:04}-{m:02}-{d:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_epoch_milliseconds() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_763_768_400_000), "2025-11-21 23:40 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
    }
}
