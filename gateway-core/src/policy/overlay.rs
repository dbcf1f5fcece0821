//! The admin overlay: per-rule overrides made at run time (`/airlock policy set …`), on top of the policy
//! files, which stay the base layer.
//!
//! The effective policy is built by rewriting the base files' rules with the overrides and loading the
//! result through [`PolicySet::from_sources`], i.e. with exactly the validation a file on disk gets. The same
//! rewritten rules, in load order, are what `airlock policy export` writes out for review in git.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Action, ApprovalSpec, PolicyFile, PolicySet, Rule, parse_file};
use crate::config::HumanDuration;
use crate::error::{Error, Result};

/// Message of a rule turned into `block` by an admin when the rule had none (block rules need one).
pub const DEFAULT_BLOCK_MESSAGE: &str = "blocked by an admin policy change";

/// What an admin changed on one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    pub action: Action,
    /// Replaces the rule's approver groups (`require_approval` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

impl std::fmt::Display for RuleOverride {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.action.as_str())?;
        if let Some(a) = &self.approvers {
            write!(f, " approvers={}", a.join(","))?;
        }
        if let Some(q) = self.quorum {
            write!(f, " quorum={q}")?;
        }
        if let Some(t) = self.timeout {
            write!(f, " timeout={t}")?;
        }
        Ok(())
    }
}

/// The whole overlay: rule name → override. Stored whole with every policy version.
pub type Overlay = BTreeMap<String, RuleOverride>;

/// Read every `*.yaml` / `*.yml` file of `dir`, in file-name order (the base layer).
pub fn read_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let read_err = |source| Error::Io { path: dir.to_owned(), source };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Policy {
            file: dir.to_owned(),
            rule: "-".into(),
            key: "(directory)".into(),
            message: "no *.yaml policy files: every call would be denied".into(),
        });
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            Ok((path, text))
        })
        .collect()
}

/// Apply one override to a rule (the rule keeps its matcher, description and masking).
fn apply_rule(rule: &mut Rule, o: &RuleOverride) {
    rule.action = Some(o.action);
    match o.action {
        Action::Block => {
            rule.approval = None;
            if rule.message.as_deref().is_none_or(str::is_empty) {
                rule.message = Some(DEFAULT_BLOCK_MESSAGE.into());
            }
        }
        Action::Allow => rule.approval = None,
        Action::RequireApproval => {
            let mut spec = rule.approval.clone().unwrap_or(ApprovalSpec {
                approvers: Vec::new(),
                quorum: 1,
                timeout: HumanDuration(std::time::Duration::from_secs(15 * 60)),
                channel: None,
            });
            if let Some(a) = &o.approvers {
                spec.approvers = a.clone();
            }
            if let Some(q) = o.quorum {
                spec.quorum = q;
            }
            if let Some(t) = o.timeout {
                spec.timeout = t;
            }
            rule.approval = Some(spec);
        }
    }
}

/// Rewritten files in load order, and the overlay's rule names that no file has.
pub type AppliedFiles = (Vec<(PathBuf, PolicyFile)>, Vec<String>);

/// The base files with the overlay applied, as parsed files (load order). Overrides of rules that no longer
/// exist in the base are returned separately: the base decides which rules exist.
pub fn apply_files(base: &[(PathBuf, String)], overlay: &Overlay) -> Result<AppliedFiles> {
    let mut files = Vec::with_capacity(base.len());
    let mut seen = std::collections::BTreeSet::new();
    for (path, text) in base {
        let mut file = parse_file(text, path)?;
        for rule in &mut file.rules {
            if let Some(o) = overlay.get(&rule.name) {
                apply_rule(rule, o);
                seen.insert(rule.name.clone());
            }
        }
        files.push((path.clone(), file));
    }
    let orphans = overlay.keys().filter(|k| !seen.contains(*k)).cloned().collect();
    Ok((files, orphans))
}

/// The effective policy set: base + overlay, validated and compiled like files on disk. Also returns the
/// overrides that name rules the base no longer has (ignored).
pub fn effective(base: &[(PathBuf, String)], overlay: &Overlay) -> Result<(PolicySet, Vec<String>)> {
    if overlay.is_empty() {
        return Ok((PolicySet::from_sources(base)?, Vec::new()));
    }
    let (files, orphans) = apply_files(base, overlay)?;
    let mut sources = Vec::with_capacity(files.len());
    for (path, file) in files {
        let text = serde_norway::to_string(&file).map_err(|e| Error::Policy {
            file: path.clone(),
            rule: "-".into(),
            key: "(overlay)".into(),
            message: format!("cannot serialize: {e}"),
        })?;
        sources.push((path, text));
    }
    Ok((PolicySet::from_sources(&sources)?, orphans))
}

/// One YAML policy file holding every effective rule in load order (`airlock policy export`); `airlock
/// policy check` accepts it.
pub fn export_yaml(base: &[(PathBuf, String)], overlay: &Overlay, header: &str) -> Result<String> {
    let (files, _) = apply_files(base, overlay)?;
    let mut out = PolicyFile {
        schema: None,
        version: 1,
        description: "Effective Airlock policy: the policy files plus admin changes (airlock policy export).".into(),
        rules: Vec::new(),
    };
    for (_, f) in files {
        out.rules.extend(f.rules);
    }
    let yaml = serde_norway::to_string(&out).map_err(|e| Error::Policy {
        file: PathBuf::from("(export)"),
        rule: "-".into(),
        key: "(overlay)".into(),
        message: format!("cannot serialize: {e}"),
    })?;
    let mut text = String::new();
    for line in header.lines() {
        let _ = writeln!(text, "# {line}");
    }
    text.push_str(&yaml);
    Ok(text)
}

/// A one-line-per-rule description of what `rule` does now, for `policy show` and diffs.
pub fn describe_rule(rule: &Rule) -> String {
    let mut s = rule.action.map_or("mask only", Action::as_str).to_owned();
    if let Some(a) = &rule.approval {
        let _ = write!(s, " (approvers {}; quorum {}; timeout {})", a.approvers.join(", "), a.quorum, a.timeout);
    }
    s
}

/// Human-readable diff between two overlays (`rule: old → new`), one line per changed rule.
pub fn diff(before: &Overlay, after: &Overlay) -> String {
    let mut lines = Vec::new();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        match (before.get(name), after.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (old, new) => {
                let show = |o: Option<&RuleOverride>| o.map_or_else(|| "(policy file)".to_owned(), |o| o.to_string());
                lines.push(format!("{name}: {} → {}", show(old), show(new)));
            }
        }
    }
    if lines.is_empty() { "no change".into() } else { lines.join("\n") }
}

/// Rule names close to `wanted` (edit distance, or one containing the other), best first, at most five.
pub fn close_names<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted_l = wanted.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter_map(|n| {
            let nl = n.to_ascii_lowercase();
            let d = edit_distance(&wanted_l, &nl);
            let close = d <= (wanted.len() / 3).max(2) || nl.contains(&wanted_l) || wanted_l.contains(&nl);
            close.then_some((d, n))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, n)| n.to_owned()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(PathBuf, String)> {
        let text = r#"
version: 1
rules:
  - name: allow-reads
    match: { sql: [read] }
    action: allow
  - name: approve-writes
    match: { sql: [update, delete] }
    action: require_approval
    approval: { approvers: [dba], quorum: 1, timeout: 15m }
"#;
        vec![(PathBuf::from("default.yaml"), text.to_owned())]
    }

    #[test]
    fn override_turns_allow_into_block_and_changes_the_version() {
        let plain = effective(&base(), &Overlay::new()).expect("base").0;
        let mut o = Overlay::new();
        o.insert(
            "allow-reads".into(),
            RuleOverride { action: Action::Block, approvers: None, quorum: None, timeout: None },
        );
        let (set, orphans) = effective(&base(), &o).expect("overlay applies");
        assert!(orphans.is_empty());
        let rule = set.rules().iter().find(|r| r.rule.name == "allow-reads").expect("rule");
        assert_eq!(rule.rule.action, Some(Action::Block));
        assert_eq!(rule.rule.message.as_deref(), Some(DEFAULT_BLOCK_MESSAGE));
        assert_ne!(set.version(), plain.version());
    }

    #[test]
    fn require_approval_without_approvers_is_rejected_by_file_validation() {
        let mut o = Overlay::new();
        o.insert(
            "allow-reads".into(),
            RuleOverride { action: Action::RequireApproval, approvers: None, quorum: None, timeout: None },
        );
        let err = effective(&base(), &o).expect_err("no approvers").to_string();
        assert!(err.contains("approvers"), "{err}");
    }

    #[test]
    fn export_round_trips_through_the_file_loader() {
        let mut o = Overlay::new();
        o.insert(
            "approve-writes".into(),
            RuleOverride { action: Action::RequireApproval, approvers: None, quorum: Some(2), timeout: None },
        );
        let yaml = export_yaml(&base(), &o, "exported").expect("export");
        let set = PolicySet::from_sources(&[(PathBuf::from("export.yaml"), yaml)]).expect("loads");
        let rule = set.rules().iter().find(|r| r.rule.name == "approve-writes").expect("rule");
        assert_eq!(rule.rule.approval.as_ref().map(|a| a.quorum), Some(2));
    }

    #[test]
    fn close_names_suggest_typos() {
        let names = ["allow-reads", "approve-writes", "block-ddl"];
        assert_eq!(close_names("allow-read", names), vec!["allow-reads".to_owned()]);
        assert!(close_names("zzz", names).is_empty());
    }

    #[test]
    fn diff_names_each_changed_rule() {
        let mut after = Overlay::new();
        after.insert("a".into(), RuleOverride { action: Action::Block, approvers: None, quorum: None, timeout: None });
        assert_eq!(diff(&Overlay::new(), &after), "a: (policy file) → block");
        assert_eq!(diff(&after, &Overlay::new()), "a: block → (policy file)");
        assert_eq!(diff(&after, &after), "no change");
    }
}
