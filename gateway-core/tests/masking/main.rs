//! Specification tests of the masking module: detectors, strategies and column rules, credential
//! scrubbing, streaming.
#![allow(clippy::unwrap_used)]

mod detectors;
mod engine;
mod secrets;
mod stream;

use std::sync::Arc;

use gateway_core::mask::{CredentialScrubber, Detector, MaskCounts, MaskPlan, Masker, Strategy};

/// All detectors, redact, no credentials.
pub fn masker() -> Masker {
    Masker::new(&MaskPlan::all_detectors(Strategy::Redact), b"test-key", Arc::new(CredentialScrubber::empty())).unwrap()
}

/// `(detector, value)` of everything found in `text`.
pub fn found(text: &str) -> Vec<(Detector, String)> {
    masker().find(text).into_iter().map(|f| (f.detector, text[f.start..f.end].to_owned())).collect()
}

/// Asserts that `text` yields exactly one finding, `det` on `value`.
#[track_caller]
pub fn assert_only(text: &str, det: Detector, value: &str) {
    assert_eq!(found(text), vec![(det, value.to_owned())], "in {text:?}");
}

/// Asserts that nothing is found in `text`.
#[track_caller]
pub fn assert_clean(text: &str) {
    assert_eq!(found(text), vec![], "in {text:?}");
}

/// Masks with all detectors, redact.
pub fn mask(text: &str) -> String {
    masker().mask_text(text, &mut MaskCounts::default()).into_owned()
}
