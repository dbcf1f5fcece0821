//! The compiled policy set and the decision function: pure, deterministic, microseconds.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Action, ApprovalSpec, LoadedRule, Rule, Tool, parse_file, selected_detectors};
use crate::classify::SqlClass;
use crate::classify::shell::{ShellClass, ShellClassification};
use crate::classify::sql::SqlClassification;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::mask::{ColumnRule, Detector, MaskPlan, Strategy};

/// The rule reported when nothing allows a call.
pub const DEFAULT_DENY: &str = "default-deny";

/// What the policy engine knows about a call.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub tool: Tool,
    pub connection: &'a str,
    pub identity: &'a Identity,
    /// The raw statement or command line.
    pub raw: &'a str,
    pub sql: Option<&'a SqlClassification>,
    /// Classes and names of every command that would run (shell tools).
    pub shell: Option<&'a ShellClassification>,
    pub namespace: Option<&'a str>,
    pub pod: Option<&'a str>,
}

/// What approval a held call needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApprovalRequirement {
    pub approvers: Vec<String>,
    pub quorum: u32,
    #[serde(serialize_with = "ser_secs", deserialize_with = "de_secs", rename = "timeout_s")]
    pub timeout: Duration,
    pub channel: Option<String>,
    /// Why the call is risky (the rule's message or description).
    pub reason: String,
}

fn de_secs<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_secs)
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// The outcome of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Block { message: String },
    RequireApproval(ApprovalRequirement),
}

impl Verdict {
    /// `allow`, `block` or `require_approval`.
    pub fn action(&self) -> Action {
        match self {
            Verdict::Allow => Action::Allow,
            Verdict::Block { .. } => Action::Block,
            Verdict::RequireApproval(_) => Action::RequireApproval,
        }
    }
}

/// One decision: the verdict, the rule that decided it, and the masking plan for the output.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The deciding rule, or `default-deny`.
    pub rule: String,
    /// Every rule that applied, in load order.
    pub applied: Vec<String>,
    pub policy_version: String,
    #[serde(skip)]
    pub mask: MaskPlan,
}

impl Decision {
    /// A human-readable account of the decision (for `airlock policy test`).
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let _ = match &self.verdict {
            Verdict::Allow => writeln!(out, "decision: allow"),
            Verdict::Block { message } => writeln!(out, "decision: block — {message}"),
            Verdict::RequireApproval(a) => writeln!(
                out,
                "decision: require_approval — {} (approvers: {}; quorum {}; expires after {}s{})",
                a.reason,
                a.approvers.join(", "),
                a.quorum,
                a.timeout.as_secs(),
                a.channel.as_ref().map(|c| format!("; channel {c}")).unwrap_or_default()
            ),
        };
        let _ = writeln!(out, "rule: {}", self.rule);
        let _ = writeln!(
            out,
            "rules applied: {}",
            if self.applied.is_empty() { "none".into() } else { self.applied.join(", ") }
        );
        let _ = writeln!(out, "policy version: {}", self.policy_version);
        if self.mask.detectors.is_empty() && self.mask.columns.is_empty() {
            let _ = writeln!(out, "masking: gateway credentials only");
        } else {
            let dets: Vec<String> =
                self.mask.detectors.iter().map(|(d, s)| format!("{d}={}", strategy_name(*s))).collect();
            let _ =
                writeln!(out, "masking detectors: {}", if dets.is_empty() { "none".into() } else { dets.join(", ") });
            let cols: Vec<String> =
                self.mask.columns.iter().map(|c| format!("{}={}", c.pattern, strategy_name(c.strategy))).collect();
            let _ = writeln!(out, "masking columns: {}", if cols.is_empty() { "none".into() } else { cols.join(", ") });
        }
        out
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Partial => "partial",
        Strategy::Hash => "hash",
        Strategy::Redact => "redact",
    }
}

struct CompiledMask {
    enable: BTreeSet<Detector>,
    disable: BTreeSet<Detector>,
    columns: Vec<String>,
    strategy: Strategy,
}

struct CompiledRule {
    name: String,
    action: Option<Action>,
    message: Option<String>,
    description: String,
    approval: Option<ApprovalSpec>,
    tools: u32,
    connections: Option<GlobSet>,
    subjects: Option<GlobSet>,
    groups: Vec<String>,
    sql: u32,
    shell: u32,
    tables: Option<GlobSet>,
    commands: Option<HashSet<String>>,
    namespaces: Option<GlobSet>,
    pods: Option<GlobSet>,
    raw_regex: Option<Regex>,
    mask: Option<CompiledMask>,
}

/// A loaded, validated and compiled set of policies.
pub struct PolicySet {
    rules: Vec<CompiledRule>,
    loaded: Vec<LoadedRule>,
    version: String,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet").field("rules", &self.rules.len()).field("version", &self.version).finish()
    }
}

pub(crate) fn compile_glob(pattern: &str) -> std::result::Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).case_insensitive(true).literal_separator(false).build()
}

pub(crate) fn compile_regex(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    // Bounded compile size: a policy file must not be able to exhaust memory.
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build()
}

fn glob_set(patterns: &[String]) -> std::result::Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(compile_glob(p).map_err(|e| format!("bad glob {p:?}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

fn sql_mask(classes: impl IntoIterator<Item = SqlClass>) -> u32 {
    classes.into_iter().fold(0, |m, c| m | (1 << c as u32))
}

fn shell_mask(classes: impl IntoIterator<Item = ShellClass>) -> u32 {
    classes.into_iter().fold(0, |m, c| m | (1 << c as u32))
}

fn compile_rule(rule: &Rule) -> std::result::Result<CompiledRule, String> {
    let m = &rule.matcher;
    Ok(CompiledRule {
        name: rule.name.clone(),
        action: rule.action,
        message: rule.message.clone(),
        description: rule.description.clone(),
        approval: rule.approval.clone(),
        tools: m.tools.iter().fold(0, |acc, t| acc | (1 << *t as u32)),
        connections: glob_set(&m.connections)?,
        subjects: glob_set(&m.subjects)?,
        groups: m.groups.clone(),
        sql: sql_mask(m.sql.iter().copied()),
        shell: shell_mask(m.shell.iter().copied()),
        tables: glob_set(&m.tables)?,
        commands: (!m.commands.is_empty()).then(|| m.commands.iter().map(|c| c.to_ascii_lowercase()).collect()),
        namespaces: glob_set(&m.namespaces)?,
        pods: glob_set(&m.pods)?,
        raw_regex: m.raw_regex.as_deref().map(compile_regex).transpose().map_err(|e| e.to_string())?,
        mask: rule.mask.as_ref().map(|d| CompiledMask {
            enable: selected_detectors(&d.detectors),
            disable: d.disable.iter().copied().collect(),
            columns: d.columns.clone(),
            strategy: d.strategy,
        }),
    })
}

impl CompiledRule {
    fn applies(&self, f: &CallFacts<'_>) -> bool {
        if self.tools != 0 && self.tools & (1 << f.tool as u32) == 0 {
            return false;
        }
        if let Some(g) = &self.connections
            && !g.is_match(f.connection)
        {
            return false;
        }
        if let Some(g) = &self.subjects
            && !g.is_match(&f.identity.subject)
        {
            return false;
        }
        if !self.groups.is_empty() && !f.identity.groups.iter().any(|g| self.groups.contains(g)) {
            return false;
        }
        let allow = self.action == Some(Action::Allow);
        if self.sql != 0 {
            let Some(sql) = f.sql else { return false };
            let call = sql_mask(sql.classes.iter().copied());
            let ok = if allow { call != 0 && call & !self.sql == 0 } else { call & self.sql != 0 };
            if !ok {
                return false;
            }
        }
        if let Some(g) = &self.tables {
            let Some(sql) = f.sql else { return false };
            if !sql.tables.iter().any(|t| g.is_match(t)) {
                return false;
            }
        }
        if self.shell != 0 {
            let Some(shell) = f.shell else { return false };
            let call = shell_mask(shell.classes.iter().copied());
            let ok = if allow { call != 0 && call & !self.shell == 0 } else { call & self.shell != 0 };
            if !ok {
                return false;
            }
        }
        if let Some(set) = &self.commands {
            let Some(cmds) = f.shell.map(|s| &s.commands) else { return false };
            let ok = if allow {
                !cmds.is_empty() && cmds.iter().all(|c| set.contains(&c.to_ascii_lowercase()))
            } else {
                cmds.iter().any(|c| set.contains(&c.to_ascii_lowercase()))
            };
            if !ok {
                return false;
            }
        }
        if let Some(g) = &self.namespaces
            && !f.namespace.is_some_and(|n| g.is_match(n))
        {
            return false;
        }
        if let Some(g) = &self.pods
            && !f.pod.is_some_and(|p| g.is_match(p))
        {
            return false;
        }
        if let Some(re) = &self.raw_regex
            && !re.is_match(f.raw)
        {
            return false;
        }
        true
    }
}

// === impl PolicySet ===

impl PolicySet {
    /// Parse, validate and compile policy sources `(path, text)`, in the given order.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Self> {
        let mut rules = Vec::new();
        let mut loaded = Vec::new();
        let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut hasher = Sha256::new();
        for (path, text) in sources {
            hasher.update(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default().as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            let file = parse_file(text, path)?;
            for (i, rule) in file.rules.into_iter().enumerate() {
                let label = format!("#{} ({})", i + 1, rule.name);
                if let Some(first) = names.insert(rule.name.clone(), path.clone()) {
                    return Err(Error::Policy {
                        file: path.clone(),
                        rule: label,
                        key: "name".into(),
                        message: format!("duplicate rule name, first defined in {}", first.display()),
                    });
                }
                let compiled = compile_rule(&rule).map_err(|message| Error::Policy {
                    file: path.clone(),
                    rule: label.clone(),
                    key: "match".into(),
                    message,
                })?;
                rules.push(compiled);
                loaded.push(LoadedRule { rule, file: path.clone() });
            }
        }
        let version = format!("sha256:{}", &hex::encode(hasher.finalize())[..16]);
        Ok(Self { rules, loaded, version })
    }

    /// A short content hash of the policy sources; recorded with every decision.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rules as loaded, in order.
    pub fn rules(&self) -> &[LoadedRule] {
        &self.loaded
    }

    /// Decide one call.
    pub fn decide(&self, facts: &CallFacts<'_>) -> Decision {
        let mut deciding: Option<&CompiledRule> = None;
        let mut applied = Vec::new();
        let mut enable = BTreeMap::<Detector, Strategy>::new();
        let mut disable = BTreeSet::<Detector>::new();
        let mut columns: Vec<ColumnRule> = Vec::new();
        for rule in &self.rules {
            if !rule.applies(facts) {
                continue;
            }
            applied.push(rule.name.clone());
            if let Some(m) = &rule.mask {
                for d in &m.enable {
                    let s = enable.entry(*d).or_insert(m.strategy);
                    *s = (*s).max(m.strategy);
                }
                disable.extend(m.disable.iter().copied());
                for c in &m.columns {
                    match columns.iter_mut().find(|x| x.pattern == *c) {
                        Some(existing) => existing.strategy = existing.strategy.max(m.strategy),
                        None => columns.push(ColumnRule { pattern: c.clone(), strategy: m.strategy }),
                    }
                }
            }
            if let Some(action) = rule.action
                && deciding.and_then(|d| d.action).is_none_or(|best| action > best)
            {
                deciding = Some(rule);
            }
        }
        for d in &disable {
            enable.remove(d);
        }
        let mask = MaskPlan { detectors: enable, columns };
        let (verdict, rule) = match deciding {
            None => (
                Verdict::Block {
                    message: format!(
                        "no policy rule allows {} on connection {:?}; ask an administrator to add one",
                        facts.tool.as_str(),
                        facts.connection
                    ),
                },
                DEFAULT_DENY.to_owned(),
            ),
            Some(r) => {
                let verdict = match (r.action, &r.approval) {
                    (Some(Action::Allow), _) => Verdict::Allow,
                    (Some(Action::RequireApproval), Some(a)) => Verdict::RequireApproval(ApprovalRequirement {
                        approvers: a.approvers.clone(),
                        quorum: a.quorum,
                        timeout: a.timeout.0,
                        channel: a.channel.clone(),
                        reason: r.message.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| r.description.clone()),
                    }),
                    // Validation guarantees block has a message and approval has its section; if not, block.
                    _ => Verdict::Block {
                        message: r.message.clone().unwrap_or_else(|| format!("blocked by rule {}", r.name)),
                    },
                };
                (verdict, r.name.clone())
            }
        };
        Decision { verdict, rule, applied, policy_version: self.version.clone(), mask }
    }
}

impl PolicySet {
    /// Could the identity use this connection at all: does some `allow` rule apply to it there, whatever
    /// the statement? Used to list connections; every call is still decided in full.
    pub fn may_use(&self, identity: &Identity, connection: &str) -> bool {
        self.rules.iter().any(|r| {
            r.action == Some(Action::Allow)
                && r.connections.as_ref().is_none_or(|g| g.is_match(connection))
                && r.subjects.as_ref().is_none_or(|g| g.is_match(&identity.subject))
                && (r.groups.is_empty() || identity.groups.iter().any(|g| r.groups.contains(g)))
        })
    }
}
