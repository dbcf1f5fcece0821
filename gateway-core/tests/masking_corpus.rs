//! Precision and recall of every detector over the generated, labelled corpus
//! (`tests/data/masking_corpus.tsv`, made by `cargo run --example gen_masking_corpus`).
//!
//! Run with `cargo test --test masking_corpus -- --nocapture` to see the table.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::mask::{CredentialScrubber, Detector, MaskCounts, MaskPlan, Masker, Strategy};

const CORPUS: &str = include_str!("data/masking_corpus.tsv");

#[derive(Default)]
struct Score {
    tp: u64,
    fp: u64,
    fn_: u64,
    examples: Vec<String>,
}

fn records() -> impl Iterator<Item = (&'static str, Vec<(Detector, String)>)> {
    CORPUS.lines().map(|line| {
        let (text, labels) = line.split_once('\t').expect("text<TAB>labels");
        (text, serde_json::from_str(labels).expect("labels are [detector, value] pairs"))
    })
}

#[test]
fn corpus_is_large_and_mostly_clean() {
    let all: Vec<_> = records().collect();
    let clean = all.iter().filter(|(_, l)| l.is_empty()).count();
    assert!(all.len() >= 2500, "{} records", all.len());
    assert!(clean * 100 >= all.len() * 70, "{clean} clean of {}", all.len());
}

#[test]
fn prefilter_and_scheduling_lose_no_finding_on_the_corpus() {
    let masker =
        Masker::new(&MaskPlan::all_detectors(Strategy::Redact), b"corpus", Arc::new(CredentialScrubber::empty()))
            .unwrap();
    for (text, _) in records() {
        assert_eq!(masker.find(text), masker.find_unfiltered(text), "in {text}");
    }
    // Whole corpus at once too (lines interact only through overlap resolution).
    let all = CORPUS.lines().map(|l| l.split_once('\t').map_or(l, |(t, _)| t)).collect::<Vec<_>>().join("\n");
    assert_eq!(masker.find(&all), masker.find_unfiltered(&all));
}

#[test]
fn every_detector_has_precision_and_recall_of_at_least_95_percent_on_the_corpus() {
    let masker =
        Masker::new(&MaskPlan::all_detectors(Strategy::Redact), b"corpus", Arc::new(CredentialScrubber::empty()))
            .unwrap();
    let mut scores: BTreeMap<Detector, Score> = BTreeMap::new();
    for (text, labels) in records() {
        let mut expected = labels.clone();
        for f in masker.find(text) {
            let got = (f.detector, text[f.start..f.end].to_owned());
            let s = scores.entry(f.detector).or_default();
            match expected.iter().position(|e| *e == got) {
                Some(i) => {
                    expected.swap_remove(i);
                    s.tp += 1;
                }
                None => {
                    s.fp += 1;
                    s.examples.push(format!("FP {:?} in: {text}", got.1));
                }
            }
        }
        for (d, v) in expected {
            let s = scores.entry(d).or_default();
            s.fn_ += 1;
            s.examples.push(format!("FN {v:?} in: {text}"));
        }
        // Whatever the detector attribution, no labelled value may survive masking.
        let masked = masker.mask_text(text, &mut MaskCounts::default());
        for (d, v) in &labels {
            assert!(!masked.contains(v.as_str()), "{d} value {v:?} survived masking: {masked}");
        }
    }

    println!("{:<18} {:>5} {:>5} {:>5} {:>9} {:>7}", "detector", "tp", "fp", "fn", "precision", "recall");
    let mut failures = Vec::new();
    for (d, s) in &scores {
        let precision = s.tp as f64 / (s.tp + s.fp).max(1) as f64;
        let recall = s.tp as f64 / (s.tp + s.fn_).max(1) as f64;
        println!("{:<18} {:>5} {:>5} {:>5} {:>9.3} {:>7.3}", d.as_str(), s.tp, s.fp, s.fn_, precision, recall);
        if s.tp + s.fn_ > 0 && (precision < 0.95 || recall < 0.95) {
            failures.push(*d);
        }
        for e in s.examples.iter().take(5) {
            println!("    {e}");
        }
    }
    for d in Detector::ALL {
        assert!(scores.get(d).is_some_and(|s| s.tp > 0), "no labelled {d} in the corpus");
    }
    assert!(failures.is_empty(), "below 0.95 precision or recall: {failures:?}");
}
