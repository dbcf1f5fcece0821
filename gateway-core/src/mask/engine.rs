//! The masking engine: a [`MaskPlan`] (what the policy asks for) becomes a [`Masker`] (what runs on every
//! result cell and output chunk).
//!
//! Order of operations, everywhere (text, cells, streams):
//! 1. credential scrubbing ([`CredentialScrubber`]) — always, even with an empty plan;
//! 2. column rules (cells only): a column whose name matches a rule is masked whole, whatever its content;
//! 3. detectors, each with its own [`Strategy`].
//!
//! A `Masker` is cheap to build per request: the compiled detectors are process-wide, only the column globs
//! and the HMAC key are per masker. Counts ([`MaskCounts`]) record *how many* values were masked, by detector
//! name plus `column` and `credential`; originals are never stored anywhere.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use super::detect::{Detectors, Enabled, Finding, Hit, N, detectors};
use super::scrub::CredentialScrubber;
use super::stream::MaskStream;
use super::{Detector, Strategy};

/// What the `redact` strategy writes for a masked column (detectors use their own placeholder).
pub const COLUMN_REDACTION: &str = "[MASKED]";

/// Masks a whole column when its name matches `pattern` (a case-insensitive glob: `*ssn*`, `email`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ColumnRule {
    /// Glob on column names, matched case-insensitively.
    pub pattern: String,
    /// How matching columns are rewritten.
    #[serde(default)]
    pub strategy: Strategy,
}

/// What to mask: enabled detectors with their strategy, and column rules (first matching rule wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaskPlan {
    /// Enabled detectors and the strategy for each.
    pub detectors: BTreeMap<Detector, Strategy>,
    /// Column rules, in policy order.
    pub columns: Vec<ColumnRule>,
}

impl MaskPlan {
    /// Every detector enabled with the same strategy, no column rules.
    pub fn all_detectors(strategy: Strategy) -> Self {
        MaskPlan { detectors: Detector::ALL.iter().map(|&d| (d, strategy)).collect(), columns: Vec::new() }
    }
}

/// Errors building a [`Masker`] or validating policy input. Messages name the offending pattern.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    /// A column glob that does not compile (or is empty).
    #[error("invalid column pattern {pattern:?}: {reason}")]
    InvalidColumnPattern {
        /// The pattern as written in the policy.
        pattern: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The `hash` strategy is used but no key was given (an unkeyed hash of a phone number is reversible
    /// by brute force).
    #[error("the hash strategy is used but the hash key is empty")]
    EmptyHashKey,
    /// A built-in detector pattern failed to compile (a bug, reported instead of panicking).
    #[error("internal detector pattern failed to compile: {0}")]
    Internal(String),
}

fn build_glob(pattern: &str) -> Result<Glob, MaskError> {
    let invalid = |reason: String| MaskError::InvalidColumnPattern { pattern: pattern.to_owned(), reason };
    if pattern.trim().is_empty() {
        return Err(invalid("pattern is empty".to_owned()));
    }
    GlobBuilder::new(pattern).case_insensitive(true).build().map_err(|e| invalid(e.kind().to_string()))
}

/// Checks a column glob the way [`Masker::new`] will compile it (for the policy loader).
pub fn validate_column_glob(pattern: &str) -> Result<(), MaskError> {
    build_glob(pattern).map(|_| ())
}

/// How many values were masked, by detector name, `column` and `credential`. Never the values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskCounts(pub BTreeMap<String, u64>);

impl MaskCounts {
    /// Adds `n` under `key` (no entry is created for 0).
    pub fn add(&mut self, key: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.0.get_mut(key) {
            Some(v) => *v += n,
            None => {
                self.0.insert(key.to_owned(), n);
            }
        }
    }

    /// The count under `key` (0 when absent).
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &MaskCounts) {
        for (k, &n) in &other.0 {
            self.add(k, n);
        }
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// True when nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// Applies a [`MaskPlan`]; see the module docs for the order of operations.
pub struct Masker {
    detectors: &'static Detectors,
    enabled: Enabled,
    strategies: [Strategy; N],
    any_detector: bool,
    columns: Option<(GlobSet, Vec<Strategy>)>,
    hmac: Option<Hmac<Sha256>>,
    scrubber: Arc<CredentialScrubber>,
}

impl std::fmt::Debug for Masker {
    // The HMAC key and the credentials must never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("enabled", &Detector::ALL.iter().filter(|d| self.enabled[d.index()]).collect::<Vec<_>>())
            .field("column_rules", &self.columns.as_ref().map_or(0, |(_, s)| s.len()))
            .finish_non_exhaustive()
    }
}

impl Masker {
    /// Compiles the plan. Fails on a bad column glob, or on `hash` with an empty `hash_key`.
    pub fn new(plan: &MaskPlan, hash_key: &[u8], scrubber: Arc<CredentialScrubber>) -> Result<Self, MaskError> {
        let mut enabled = [false; N];
        let mut strategies = [Strategy::Redact; N];
        for (&d, &s) in &plan.detectors {
            enabled[d.index()] = true;
            strategies[d.index()] = s;
        }
        let uses_hash =
            plan.detectors.values().chain(plan.columns.iter().map(|c| &c.strategy)).any(|s| *s == Strategy::Hash);
        if uses_hash && hash_key.is_empty() {
            return Err(MaskError::EmptyHashKey);
        }
        let columns = if plan.columns.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for rule in &plan.columns {
                b.add(build_glob(&rule.pattern)?);
            }
            let set = b.build().map_err(|e| MaskError::InvalidColumnPattern {
                pattern: plan.columns.iter().map(|c| c.pattern.as_str()).collect::<Vec<_>>().join(", "),
                reason: e.to_string(),
            })?;
            Some((set, plan.columns.iter().map(|c| c.strategy).collect()))
        };
        Ok(Masker {
            detectors: detectors()?,
            enabled,
            strategies,
            any_detector: enabled.iter().any(|&e| e),
            columns,
            // HMAC accepts keys of any length; `ok()` only guards the API's Result.
            hmac: (!hash_key.is_empty()).then(|| Hmac::<Sha256>::new_from_slice(hash_key).ok()).flatten(),
            scrubber,
        })
    }

    /// What the enabled detectors find in `text` (no credential scrubbing, no column rules): for tests,
    /// corpora and audits. Sorted by position, non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Finding> {
        self.hits(text).into_iter().map(|h| Finding { detector: h.det, start: h.start, end: h.end }).collect()
    }

    /// [`Masker::find`] without the prefilter (every enabled detector on every line): slow, only for tests
    /// proving that the prefilter and the detector scheduling never lose a finding.
    #[doc(hidden)]
    pub fn find_unfiltered(&self, text: &str) -> Vec<Finding> {
        let hits = if self.any_detector { self.detectors.find_unfiltered(text, &self.enabled) } else { Vec::new() };
        hits.into_iter().map(|h| Finding { detector: h.det, start: h.start, end: h.end }).collect()
    }

    pub(crate) fn hits(&self, text: &str) -> Vec<Hit> {
        if self.any_detector { self.detectors.find(text, &self.enabled) } else { Vec::new() }
    }

    pub(crate) fn detectors(&self) -> &'static Detectors {
        self.detectors
    }

    pub(crate) fn scrubber(&self) -> &CredentialScrubber {
        &self.scrubber
    }

    pub(crate) fn is_enabled(&self, d: Detector) -> bool {
        self.enabled[d.index()]
    }

    /// Scrubs credentials, then masks what the detectors find. Borrows when nothing changed.
    pub fn mask_text<'a>(&self, text: &'a str, counts: &mut MaskCounts) -> Cow<'a, str> {
        match self.scrubber.scrub(text, counts) {
            Cow::Borrowed(t) => self.mask_detected(t, counts),
            Cow::Owned(s) => {
                let masked = match self.mask_detected(&s, counts) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(m) => Some(m),
                };
                Cow::Owned(masked.unwrap_or(s))
            }
        }
    }

    fn mask_detected<'t>(&self, text: &'t str, counts: &mut MaskCounts) -> Cow<'t, str> {
        let hits = self.hits(text);
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for h in &hits {
            out.push_str(&text[last..h.start]);
            out.push_str(&self.render(Some(h.det), self.strategies[h.det.index()], &text[h.start..h.end]));
            counts.add(h.det.as_str(), 1);
            last = h.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// The strategy of the first column rule matching `column`, if any (case-insensitive glob).
    pub fn column_strategy(&self, column: &str) -> Option<Strategy> {
        let (set, strategies) = self.columns.as_ref()?;
        set.matches(column).into_iter().min().and_then(|i| strategies.get(i).copied())
    }

    /// Masks one result cell. Credentials are scrubbed first; then a column rule masks any non-null value
    /// whole (even `"n/a"` or `0`: the column *name* is the evidence, the content is not trusted); otherwise
    /// detectors run on strings and on numbers rendered as text (a card stored as `bigint` becomes the
    /// string `"[CARD]"`). Arrays and objects (JSON columns) are masked element by element, and object keys
    /// are matched against the column rules too. `null` stays `null`.
    pub fn mask_cell(&self, column: &str, value: &Value, counts: &mut MaskCounts) -> Value {
        self.mask_value(Some(column), value, counts)
    }

    fn mask_value(&self, column: Option<&str>, value: &Value, counts: &mut MaskCounts) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        if let Some(strategy) = column.and_then(|c| self.column_strategy(c)) {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let scrubbed = self.scrubber.scrub(&text, counts);
            counts.add("column", 1);
            return Value::String(self.render(None, strategy, &scrubbed));
        }
        match value {
            Value::String(s) => Value::String(self.mask_text(s, counts).into_owned()),
            Value::Number(n) => {
                let text = n.to_string();
                match self.mask_text(&text, counts) {
                    Cow::Borrowed(_) => value.clone(),
                    Cow::Owned(m) => Value::String(m),
                }
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_value(None, v, counts)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.mask_value(Some(k), v, counts))).collect())
            }
            Value::Bool(_) | Value::Null => value.clone(),
        }
    }

    /// Streaming masker for one output stream (see [`MaskStream`]).
    pub fn stream(&self) -> MaskStream<'_> {
        MaskStream::new(self)
    }

    /// The replacement for `value` under `strategy`; `det` is `None` for whole-column masking.
    pub(crate) fn render(&self, det: Option<Detector>, strategy: Strategy, value: &str) -> String {
        let placeholder = || det.map_or(COLUMN_REDACTION, Detector::redaction).to_owned();
        match strategy {
            Strategy::Redact => placeholder(),
            Strategy::Partial => partial(det, value),
            Strategy::Hash => match &self.hmac {
                Some(mac) => {
                    let mut mac = mac.clone();
                    mac.update(value.as_bytes());
                    format!("hash:{}", hex::encode(&mac.finalize().into_bytes()[..8]))
                }
                None => placeholder(), // unreachable: `new` rejects hash without a key
            },
        }
    }
}

/// Partial masking keeps a hint and never more than about a quarter of the value: `j***@example.com`,
/// `****4242`, `***-**-6789`, `***71` (phone), `***` + the last `len/4` (at most 4) characters otherwise.
/// A private key has no safe hint and is fully redacted.
pub(crate) fn partial(det: Option<Detector>, value: &str) -> String {
    let tail = |chars: &[char], k: usize| chars[chars.len() - k..].iter().collect::<String>();
    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    match det {
        Some(Detector::Email) => match value.rsplit_once('@') {
            Some((local, domain)) => {
                format!("{}***@{domain}", local.chars().next().map(String::from).unwrap_or_default())
            }
            None => "***".to_owned(),
        },
        Some(Detector::PaymentCard) if digits.len() >= 4 => format!("****{}", tail(&digits, 4)),
        Some(Detector::UsSsn) if digits.len() >= 4 => format!("***-**-{}", tail(&digits, 4)),
        Some(Detector::Phone) => format!("***{}", tail(&digits, (digits.len() / 4).min(4))),
        Some(Detector::PrivateKey) => Detector::PrivateKey.redaction().to_owned(),
        _ => {
            let chars: Vec<char> = value.chars().collect();
            format!("***{}", tail(&chars, (chars.len() / 4).min(4)))
        }
    }
}
