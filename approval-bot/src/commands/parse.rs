//! The one grammar of `/airlock …` (the text after the command), for every platform.

use std::time::Duration;

use gateway_core::config::HumanDuration;
use gateway_core::policy::Action;
use gateway_core::policy::overlay::RuleOverride;

/// The usage text `help` (and every parse error) shows.
pub const USAGE: &str = "\
*Airlock admin commands* (`/airlock …`)
`policy list` · `policy show <rule>` · `policy history`
`policy set <rule> <allow|block|require_approval> [approvers=a,b] [quorum=N] [timeout=15m]` (admins)
`policy rollback <version>` (admins; version 0 = the policy files alone)
`pending` — open approvals in this channel · `approve <id>` · `deny <id> <reason>`
`sessions [identity|connection] [since, e.g. 2h]` · `session <id>`
`freeze <identity> [reason]` · `unfreeze <identity>` (admins) · `frozen`
`help`";

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    PolicyList,
    PolicyShow { rule: String },
    PolicySet { rule: String, change: RuleOverride },
    PolicyHistory,
    PolicyRollback { version: i64 },
    Pending,
    Approve { id: String },
    Deny { id: String, reason: String },
    Sessions { filter: Option<String>, since: Option<Duration> },
    Session { id: String },
    Freeze { subject: String, reason: String },
    Unfreeze { subject: String },
    Frozen,
}

/// Who may run a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any mapped human.
    Read,
    /// A mapped human; the broker applies the approval's own approver rules.
    Vote,
    /// Admins only (a group in `[web] admin_groups`).
    Change,
}

impl Command {
    /// The access level the command needs.
    pub fn access(&self) -> Access {
        match self {
            Command::PolicySet { .. }
            | Command::PolicyRollback { .. }
            | Command::Freeze { .. }
            | Command::Unfreeze { .. } => Access::Change,
            Command::Approve { .. } | Command::Deny { .. } => Access::Vote,
            _ => Access::Read,
        }
    }

    /// A short name for the audit record (`policy set`, `freeze`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::PolicyList => "policy list",
            Command::PolicyShow { .. } => "policy show",
            Command::PolicySet { .. } => "policy set",
            Command::PolicyHistory => "policy history",
            Command::PolicyRollback { .. } => "policy rollback",
            Command::Pending => "pending",
            Command::Approve { .. } => "approve",
            Command::Deny { .. } => "deny",
            Command::Sessions { .. } => "sessions",
            Command::Session { .. } => "session",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze { .. } => "unfreeze",
            Command::Frozen => "frozen",
        }
    }
}

/// Why the text is not a command; the message names the problem, then [`USAGE`] follows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

fn action(word: &str) -> Result<Action, ParseError> {
    match word.to_ascii_lowercase().replace('-', "_").as_str() {
        "allow" => Ok(Action::Allow),
        "block" => Ok(Action::Block),
        "require_approval" | "approval" => Ok(Action::RequireApproval),
        _ => err(format!("unknown action {word:?}: use allow, block or require_approval")),
    }
}

fn rest(words: &[&str]) -> String {
    words.join(" ")
}

/// Parse the text after `/airlock`. Empty text is `help`.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some((&first, args)) = words.split_first() else { return Ok(Command::Help) };
    let one = |what: &str| -> Result<String, ParseError> {
        match args {
            [a] => Ok((*a).to_owned()),
            [] => err(format!("`{first}` needs {what}")),
            _ => err(format!("`{first}` takes only {what}")),
        }
    };
    match first.to_ascii_lowercase().as_str() {
        "help" | "?" => Ok(Command::Help),
        "policy" => parse_policy(args),
        "pending" if args.is_empty() => Ok(Command::Pending),
        "pending" => err("`pending` takes no arguments"),
        "approve" => Ok(Command::Approve { id: one("an approval id")? }),
        "deny" => match args {
            [] => err("`deny` needs an approval id and a reason"),
            [_] => err("`deny` needs a reason after the approval id"),
            [id, reason @ ..] => Ok(Command::Deny { id: (*id).to_owned(), reason: rest(reason) }),
        },
        "sessions" => parse_sessions(args),
        "session" => Ok(Command::Session { id: one("a session id")? }),
        "freeze" => match args {
            [] => err("`freeze` needs an identity"),
            [subject] => Ok(Command::Freeze { subject: (*subject).to_owned(), reason: "no reason given".into() }),
            [subject, reason @ ..] => Ok(Command::Freeze { subject: (*subject).to_owned(), reason: rest(reason) }),
        },
        "unfreeze" => Ok(Command::Unfreeze { subject: one("an identity")? }),
        "frozen" if args.is_empty() => Ok(Command::Frozen),
        "frozen" => err("`frozen` takes no arguments"),
        other => err(format!("unknown command {other:?}")),
    }
}

fn parse_policy(args: &[&str]) -> Result<Command, ParseError> {
    match args {
        [] => err("`policy` needs a subcommand: list, show, set, history or rollback"),
        ["list"] => Ok(Command::PolicyList),
        ["history"] => Ok(Command::PolicyHistory),
        ["show", rule] => Ok(Command::PolicyShow { rule: (*rule).to_owned() }),
        ["show", ..] => err("`policy show` takes one rule name"),
        ["rollback", v] => match v.trim_start_matches('v').parse::<i64>() {
            Ok(version) if version >= 0 => Ok(Command::PolicyRollback { version }),
            _ => err(format!("`policy rollback` needs a version number (see `policy history`), not {v:?}")),
        },
        ["rollback", ..] => err("`policy rollback` takes one version number"),
        ["set", rule, act, options @ ..] => {
            let mut change = RuleOverride { action: action(act)?, approvers: None, quorum: None, timeout: None };
            for opt in options {
                let Some((key, value)) = opt.split_once('=') else {
                    return err(format!("expected key=value, found {opt:?}"));
                };
                match key.to_ascii_lowercase().as_str() {
                    "approvers" => {
                        let groups: Vec<String> =
                            value.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect();
                        if groups.is_empty() {
                            return err("approvers= needs at least one group");
                        }
                        change.approvers = Some(groups);
                    }
                    "quorum" => match value.parse::<u32>() {
                        Ok(q) if q >= 1 => change.quorum = Some(q),
                        _ => return err(format!("quorum must be a whole number of at least 1, not {value:?}")),
                    },
                    "timeout" => match value.parse::<HumanDuration>() {
                        Ok(t) if !t.0.is_zero() => change.timeout = Some(t),
                        _ => return err(format!("timeout must be a duration like 15m or 2h, not {value:?}")),
                    },
                    other => return err(format!("unknown option {other:?}: use approvers=, quorum= or timeout=")),
                }
            }
            let has_options = change.approvers.is_some() || change.quorum.is_some() || change.timeout.is_some();
            if has_options && change.action != Action::RequireApproval {
                return err("approvers=, quorum= and timeout= only go with require_approval");
            }
            Ok(Command::PolicySet { rule: (*rule).to_owned(), change })
        }
        ["set", ..] => {
            err("`policy set` needs a rule and an action: `policy set <rule> <allow|block|require_approval>`")
        }
        [other, ..] => err(format!("unknown policy subcommand {other:?}")),
    }
}

fn parse_sessions(args: &[&str]) -> Result<Command, ParseError> {
    let since = |s: &str| s.parse::<HumanDuration>().ok().map(|d| d.0);
    match args {
        [] => Ok(Command::Sessions { filter: None, since: None }),
        // One word: a duration is "since", anything else names an identity or a connection.
        [a] => match since(a) {
            Some(d) => Ok(Command::Sessions { filter: None, since: Some(d) }),
            None => Ok(Command::Sessions { filter: Some((*a).to_owned()), since: None }),
        },
        [a, b] => match since(b) {
            Some(d) => Ok(Command::Sessions { filter: Some((*a).to_owned()), since: Some(d) }),
            None => err(format!("expected a duration like 2h or 1d after the identity, not {b:?}")),
        },
        _ => err("`sessions` takes at most an identity or connection and a duration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> RuleOverride {
        match parse(text) {
            Ok(Command::PolicySet { change, .. }) => change,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn empty_text_and_help_show_usage() {
        assert_eq!(parse(""), Ok(Command::Help));
        assert_eq!(parse("  help "), Ok(Command::Help));
    }

    #[test]
    fn policy_set_parses_action_and_options() {
        let c = set("policy set approve-writes require_approval approvers=dba,oncall quorum=2 timeout=30m");
        assert_eq!(c.action, Action::RequireApproval);
        assert_eq!(c.approvers, Some(vec!["dba".to_owned(), "oncall".to_owned()]));
        assert_eq!(c.quorum, Some(2));
        assert_eq!(c.timeout.map(|t| t.0), Some(Duration::from_secs(1800)));
        assert_eq!(set("policy set allow-reads block").action, Action::Block);
        assert_eq!(set("policy set x require-approval").action, Action::RequireApproval);
    }

    #[test]
    fn policy_set_refuses_bad_values_with_a_reason() {
        for (text, needle) in [
            ("policy set r maybe", "unknown action"),
            ("policy set r block quorum=2", "only go with require_approval"),
            ("policy set r require_approval quorum=0", "at least 1"),
            ("policy set r require_approval timeout=soon", "duration"),
            ("policy set r require_approval approvers=", "at least one group"),
            ("policy set r require_approval color=red", "unknown option"),
            ("policy set r", "needs a rule and an action"),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.0.contains(needle), "{text}: {}", e.0);
        }
    }

    #[test]
    fn rollback_takes_a_version_number() {
        assert_eq!(parse("policy rollback 3"), Ok(Command::PolicyRollback { version: 3 }));
        assert_eq!(parse("policy rollback v0"), Ok(Command::PolicyRollback { version: 0 }));
        assert!(parse("policy rollback latest").is_err());
    }

    #[test]
    fn deny_needs_a_reason_and_keeps_all_its_words() {
        assert!(parse("deny apr_1").is_err());
        assert_eq!(
            parse("deny apr_1 not during the freeze"),
            Ok(Command::Deny { id: "apr_1".into(), reason: "not during the freeze".into() })
        );
    }

    #[test]
    fn freeze_reason_is_optional() {
        assert_eq!(
            parse("freeze autogen-ci leaked token"),
            Ok(Command::Freeze { subject: "autogen-ci".into(), reason: "leaked token".into() })
        );
        assert_eq!(
            parse("freeze autogen-ci"),
            Ok(Command::Freeze { subject: "autogen-ci".into(), reason: "no reason given".into() })
        );
        assert!(parse("freeze").is_err());
    }

    #[test]
    fn sessions_filter_and_since() {
        assert_eq!(parse("sessions"), Ok(Command::Sessions { filter: None, since: None }));
        assert_eq!(
            parse("sessions 2h"),
            Ok(Command::Sessions { filter: None, since: Some(Duration::from_secs(7200)) })
        );
        assert_eq!(
            parse("sessions autogen-ci 1d"),
            Ok(Command::Sessions { filter: Some("autogen-ci".into()), since: Some(Duration::from_secs(86400)) })
        );
        assert!(parse("sessions a b").is_err());
    }

    #[test]
    fn access_levels() {
        assert_eq!(parse("policy list").map(|c| c.access()), Ok(Access::Read));
        assert_eq!(parse("approve apr_1").map(|c| c.access()), Ok(Access::Vote));
        assert_eq!(parse("freeze x").map(|c| c.access()), Ok(Access::Change));
        assert_eq!(parse("policy rollback 1").map(|c| c.access()), Ok(Access::Change));
    }

    #[test]
    fn unknown_commands_are_named() {
        assert_eq!(parse("reboot").expect_err("unknown").0, "unknown command \"reboot\"");
    }
}
