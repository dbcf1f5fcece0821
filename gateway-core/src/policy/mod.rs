//! Policies: YAML files in the policy directory, loaded in file-name order and validated on load.
//!
//! Precedence (also explained in the header of `policies/default.yaml`):
//! - A rule *applies* to a call when every condition it sets holds; within one condition's list any entry
//!   may match. For `allow` rules, the `sql` and `commands` conditions must *cover* the call: every class
//!   (command) of the call must be listed, so "allow reads" never lets a read that also calls
//!   `pg_read_file` through.
//! - Among applying rules with an action, the most severe wins: `block` > `require_approval` > `allow`. Ties
//!   go to the first applying rule in load order, which is the rule reported.
//! - No applying rule with an action: the call is blocked by `default-deny` (fail closed).
//! - Masking directives of every applying rule combine: detectors add up (minus `disable`), column globs add
//!   up, and when two rules give one detector different strategies the strongest wins
//!   (`redact` > `hash` > `partial`).

mod engine;
pub mod overlay;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::classify::SqlClass;
use crate::classify::shell::ShellClass;
use crate::config::HumanDuration;
use crate::error::{Error, Result};
use crate::mask::{Detector, Strategy};

pub(crate) use engine::compile_glob;
pub use engine::{ApprovalRequirement, CallFacts, Decision, PolicySet, Verdict};

/// The governed tools a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    SqlQuery,
    SshRun,
    KubeExec,
}

impl Tool {
    /// The tool's MCP name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::SqlQuery => "sql_query",
            Tool::SshRun => "ssh_run",
            Tool::KubeExec => "kube_exec",
        }
    }
}

/// One policy file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Editors' schema reference; ignored by Airlock.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Format version; must be 1.
    pub version: u32,
    /// What this file is for.
    #[serde(default)]
    pub description: String,
    /// Rules, in order. Order matters only to break ties between rules of equal severity.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// What a rule does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    RequireApproval,
    Block,
}

impl Action {
    /// Name as written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::RequireApproval => "require_approval",
            Action::Block => "block",
        }
    }
}

/// A policy rule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique name (letters, digits, `-`, `_`); reported in decisions and records.
    pub name: String,
    /// Why the rule exists (shown to approvers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Conditions; all that are set must hold. An empty match applies to every call.
    #[serde(default, rename = "match")]
    pub matcher: Match,
    /// What to do. A rule without an action only contributes masking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Message for `block` (required) and the reason shown with `require_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Required with `require_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
    /// Masking applied to the call's output, whatever the action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskDirective>,
}

/// Conditions of a rule. Globs use `*`, `?` and `[..]`, case-insensitive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Match {
    /// Tools the rule applies to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Connection name globs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
    /// Identity subject globs (`autogen-*`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// The caller is in at least one of these groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// SQL statement classes. Block/approval rules: any class present. Allow rules: all classes listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<SqlClass>,
    /// Table name globs (`payments.*`, `*users*`): the statement touches at least one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Shell command classes (`ssh_run`, `kube_exec`): `read_only`, `destructive_file`, `power_state`,
    /// `privilege`, `remote_code`, `network_exfiltration`, `credential_access`, `package_change`, `force_push`,
    /// `kubectl_delete`, `file_write`, `other`, `unparsed`. Block/approval rules: any class present. Allow
    /// rules: all classes listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<ShellClass>,
    /// Shell command names (`rm`, `systemctl`). Block/approval rules: any command present. Allow rules: all
    /// commands listed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// Kubernetes namespace globs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Kubernetes pod name globs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// Regular expression on the raw statement or command: a last resort, prefer classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_regex: Option<String>,
}

/// Who must approve, and how long they have.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// Groups whose members may approve. The requester never may.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    #[serde(default = "default_quorum")]
    pub quorum: u32,
    /// Time before the request expires (and the call fails closed).
    #[serde(default = "default_approval_timeout")]
    pub timeout: HumanDuration,
    /// Chat channel to ask in; the notifier's default channel otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

fn default_quorum() -> u32 {
    1
}

fn default_approval_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(15 * 60))
}

/// Which detectors a masking directive turns on.
#[derive(Debug, Clone, PartialEq, Eq, Default, JsonSchema)]
#[schemars(untagged)]
pub enum DetectorSelection {
    /// No detectors.
    #[default]
    #[schemars(skip)]
    None,
    /// `all`: every detector.
    #[schemars(with = "AllDetectors")]
    All,
    /// A list of detector names.
    List(Vec<Detector>),
}

#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
enum AllDetectors {
    #[serde(rename = "all")]
    All,
}

impl Serialize for DetectorSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            DetectorSelection::None => Vec::<Detector>::new().serialize(s),
            DetectorSelection::All => s.serialize_str("all"),
            DetectorSelection::List(l) => l.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for DetectorSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DetectorSelection;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"all\" or a list of detector names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                if v == "all" {
                    Ok(DetectorSelection::All)
                } else {
                    Err(E::custom(format!("expected \"all\" or a list of detectors, found {v:?}")))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(d) = seq.next_element::<Detector>()? {
                    out.push(d);
                }
                Ok(DetectorSelection::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Masking directive of a rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MaskDirective {
    /// Detectors to turn on: `all` or a list.
    pub detectors: DetectorSelection,
    /// Detectors to turn off, even if another rule turns them on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<Detector>,
    /// Column-name globs masked whole, whatever their content (`*ssn*`, `*password*`, `email`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// How matches are rewritten.
    pub strategy: Strategy,
}

/// A rule together with where it came from.
#[derive(Debug, Clone)]
pub struct LoadedRule {
    pub rule: Rule,
    pub file: PathBuf,
}

// === loading ===

/// Parse one policy file's text. Errors name the file, the rule (index and name) and the key.
pub fn parse_file(text: &str, file: &Path) -> Result<PolicyFile> {
    let err = |rule: String, key: String, message: String| Error::Policy { file: file.to_owned(), rule, key, message };
    let doc: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| err("-".into(), "(file)".into(), e.to_string()))?;
    let serde_norway::Value::Mapping(mut top) = doc else {
        return Err(err("-".into(), "(file)".into(), "expected a mapping with `version` and `rules`".into()));
    };
    // Rules are deserialized one by one so an error can name the rule it is in.
    let rules_value = top.remove("rules");
    let mut file_doc: PolicyFile = serde_path_to_error::deserialize(serde_norway::Value::Mapping(top))
        .map_err(|e| err("-".into(), e.path().to_string(), e.into_inner().to_string()))?;
    let rules = match rules_value {
        None | Some(serde_norway::Value::Null) => Vec::new(),
        Some(serde_norway::Value::Sequence(seq)) => seq,
        Some(_) => return Err(err("-".into(), "rules".into(), "expected a list of rules".into())),
    };
    for (i, value) in rules.into_iter().enumerate() {
        let label = match value.get("name").and_then(|n| n.as_str()) {
            Some(name) => format!("#{} ({name})", i + 1),
            None => format!("#{}", i + 1),
        };
        let rule: Rule = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            err(label.clone(), if path == "." { "(rule)".into() } else { path }, e.into_inner().to_string())
        })?;
        file_doc.rules.push(rule);
    }
    if file_doc.version != 1 {
        return Err(err("-".into(), "version".into(), format!("unsupported version {}; expected 1", file_doc.version)));
    }
    for (i, rule) in file_doc.rules.iter().enumerate() {
        validate_rule(rule).map_err(|(key, message)| err(format!("#{} ({})", i + 1, rule.name), key, message))?;
    }
    Ok(file_doc)
}

fn validate_rule(rule: &Rule) -> std::result::Result<(), (String, String)> {
    let fail = |key: &str, message: String| Err((key.to_owned(), message));
    if rule.name.is_empty() || !rule.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return fail("name", "rule names use letters, digits, - and _".into());
    }
    match rule.action {
        Some(Action::Block) if rule.message.as_deref().is_none_or(str::is_empty) => {
            return fail("message", "a block rule needs a message telling the agent why".into());
        }
        Some(Action::RequireApproval) => {
            let Some(a) = &rule.approval else {
                return fail("approval", "require_approval needs an `approval` section".into());
            };
            if a.approvers.is_empty() {
                return fail("approval.approvers", "name at least one approver group".into());
            }
            if a.quorum == 0 {
                return fail("approval.quorum", "must be at least 1".into());
            }
            if a.timeout.0.is_zero() {
                return fail("approval.timeout", "must be longer than zero".into());
            }
        }
        Some(_) | None if rule.approval.is_some() && rule.action != Some(Action::RequireApproval) => {
            return fail("approval", "only allowed with action: require_approval".into());
        }
        _ => {}
    }
    if rule.action.is_none() && rule.mask.is_none() {
        return fail("action", "a rule needs an action, a mask, or both".into());
    }
    let globs = [
        ("match.connections", &rule.matcher.connections),
        ("match.subjects", &rule.matcher.subjects),
        ("match.tables", &rule.matcher.tables),
        ("match.namespaces", &rule.matcher.namespaces),
        ("match.pods", &rule.matcher.pods),
    ];
    for (key, list) in globs {
        for (i, g) in list.iter().enumerate() {
            if let Err(e) = engine::compile_glob(g) {
                return fail(&format!("{key}[{i}]"), format!("bad glob {g:?}: {e}"));
            }
        }
    }
    if let Some(re) = &rule.matcher.raw_regex
        && let Err(e) = engine::compile_regex(re)
    {
        return fail("match.raw_regex", format!("bad regex: {e}"));
    }
    if let Some(mask) = &rule.mask {
        for (i, c) in mask.columns.iter().enumerate() {
            if let Err(e) = crate::mask::validate_column_glob(c) {
                return fail(&format!("mask.columns[{i}]"), e.to_string());
            }
        }
    }
    Ok(())
}

/// Load every `*.yaml` / `*.yml` file of `dir`, in file-name order, into a compiled [`PolicySet`].
pub fn load_dir(dir: &Path) -> Result<PolicySet> {
    PolicySet::from_sources(&overlay::read_sources(dir)?)
}

/// The JSON schema of the policy format, generated from these types.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PolicyFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Every detector a directive selects.
pub(crate) fn selected_detectors(sel: &DetectorSelection) -> BTreeSet<Detector> {
    match sel {
        DetectorSelection::None => BTreeSet::new(),
        DetectorSelection::All => Detector::ALL.iter().copied().collect(),
        DetectorSelection::List(l) => l.iter().copied().collect(),
    }
}

#[cfg(test)]
mod tests;
