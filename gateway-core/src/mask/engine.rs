//! TEMPORARY STUB — replaced by the real masking engine.
use super::{Detector, Strategy};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRule {
    pub pattern: String,
    pub strategy: Strategy,
}
#[derive(Clone, Debug, Default)]
pub struct MaskPlan {
    pub detectors: BTreeMap<Detector, Strategy>,
    pub columns: Vec<ColumnRule>,
}
impl MaskPlan {
    pub fn all_detectors(strategy: Strategy) -> Self {
        Self { detectors: Detector::ALL.iter().map(|d| (*d, strategy)).collect(), columns: vec![] }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("bad column glob {0:?}")]
    Glob(String),
}
pub fn validate_column_glob(pattern: &str) -> Result<(), MaskError> {
    if pattern.contains('[') && !pattern.contains(']') { Err(MaskError::Glob(pattern.into())) } else { Ok(()) }
}
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MaskCounts(pub BTreeMap<String, u64>);
impl MaskCounts {
    pub fn add(&mut self, k: &str, n: u64) {
        *self.0.entry(k.into()).or_default() += n;
    }
    pub fn merge(&mut self, o: &MaskCounts) {
        for (k, v) in &o.0 {
            self.add(k, *v)
        }
    }
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
pub struct CredentialScrubber {
    values: Vec<String>,
}
impl CredentialScrubber {
    pub fn new<I: IntoIterator<Item = String>>(v: I) -> Self {
        Self { values: v.into_iter().filter(|s| s.len() >= 6).collect() }
    }
    pub fn empty() -> Self {
        Self { values: vec![] }
    }
}
pub struct Masker {
    scrub: Arc<CredentialScrubber>,
    plan: MaskPlan,
}
impl Masker {
    pub fn new(plan: &MaskPlan, _k: &[u8], scrub: Arc<CredentialScrubber>) -> Result<Self, MaskError> {
        Ok(Self { scrub, plan: plan.clone() })
    }
    pub fn mask_text<'a>(&self, text: &'a str, counts: &mut MaskCounts) -> Cow<'a, str> {
        let mut t = text.to_owned();
        for v in &self.scrub.values {
            if t.contains(v.as_str()) {
                counts.add("credential", 1);
                t = t.replace(v.as_str(), "[CREDENTIAL]");
            }
        }
        if self.plan.detectors.contains_key(&Detector::Email) && t.contains('@') {
            counts.add("email", 1);
            t = "[EMAIL]".into();
        }
        Cow::Owned(t)
    }
    pub fn mask_cell(&self, column: &str, value: &serde_json::Value, counts: &mut MaskCounts) -> serde_json::Value {
        if self.plan.columns.iter().any(|c| column.contains(c.pattern.trim_matches('*'))) && !value.is_null() {
            counts.add("column", 1);
            return serde_json::Value::String("[MASKED]".into());
        }
        match value {
            serde_json::Value::String(s) => serde_json::Value::String(self.mask_text(s, counts).into_owned()),
            v => v.clone(),
        }
    }
}
