//! Strategies, column rules, credential scrubbing, counts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_core::mask::{
    ColumnRule, CredentialScrubber, Detector, MaskCounts, MaskError, MaskPlan, Masker, Strategy, validate_column_glob,
};
use serde_json::{Value, json};

use super::masker;

fn with(plan: MaskPlan, creds: &[&str]) -> Masker {
    let scrubber = CredentialScrubber::new(creds.iter().map(|s| s.to_string()));
    Masker::new(&plan, b"k1", Arc::new(scrubber)).unwrap()
}

fn one(det: Detector, strategy: Strategy) -> MaskPlan {
    MaskPlan { detectors: BTreeMap::from([(det, strategy)]), columns: Vec::new() }
}

fn columns(rules: &[(&str, Strategy)]) -> MaskPlan {
    MaskPlan {
        detectors: BTreeMap::new(),
        columns: rules.iter().map(|(p, s)| ColumnRule { pattern: p.to_string(), strategy: *s }).collect(),
    }
}

fn text(m: &Masker, t: &str) -> String {
    m.mask_text(t, &mut MaskCounts::default()).into_owned()
}

#[test]
fn redact_writes_the_detector_placeholder() {
    for &d in Detector::ALL {
        assert!(d.redaction().starts_with('[') && d.redaction().ends_with(']'));
    }
    assert_eq!(text(&masker(), "mail alice@example.com"), "mail [EMAIL]");
}

#[test]
fn partial_keeps_a_hint_of_at_most_a_quarter() {
    let p = |d, t| text(&with(one(d, Strategy::Partial), &[]), t);
    assert_eq!(p(Detector::Email, "john@example.com"), "j***@example.com");
    assert_eq!(p(Detector::PaymentCard, "4242 4242 4242 4242"), "****4242");
    assert_eq!(p(Detector::UsSsn, "123-45-6789"), "***-**-6789");
    assert_eq!(p(Detector::Phone, "(415) 555-2671"), "***71");
    assert_eq!(p(Detector::SecretAssignment, "password=abcdefghijklmnop"), "password=***mnop");
    assert_eq!(p(Detector::SecretAssignment, "password=abcdef"), "password=***f");
    assert_eq!(p(Detector::Ipv4, "ip 203.0.113.45"), "ip ***.45");
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----";
    assert_eq!(p(Detector::PrivateKey, pem), "[PRIVATE_KEY]");
}

#[test]
fn hash_is_keyed_stable_and_short() {
    let m = with(one(Detector::Email, Strategy::Hash), &[]);
    let a = text(&m, "alice@example.com");
    assert_eq!(a, text(&m, "alice@example.com"), "stable");
    assert!(a.starts_with("hash:") && a.len() == 5 + 16 && a[5..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, text(&m, "bob@example.com"));
    let other_key =
        Masker::new(&one(Detector::Email, Strategy::Hash), b"k2", Arc::new(CredentialScrubber::empty())).unwrap();
    assert_ne!(a, text(&other_key, "alice@example.com"), "keyed");
}

#[test]
fn hash_strategy_without_a_key_is_rejected() {
    let err =
        Masker::new(&one(Detector::Email, Strategy::Hash), b"", Arc::new(CredentialScrubber::empty())).unwrap_err();
    assert!(matches!(err, MaskError::EmptyHashKey));
    assert!(Masker::new(&MaskPlan::default(), b"", Arc::new(CredentialScrubber::empty())).is_ok());
}

#[test]
fn column_rule_masks_any_non_null_value_whole() {
    let m = with(columns(&[("*ssn*", Strategy::Redact)]), &[]);
    let mut c = MaskCounts::default();
    assert_eq!(m.mask_cell("customer_ssn", &json!("n/a"), &mut c), json!("[MASKED]"));
    assert_eq!(m.mask_cell("customer_ssn", &json!(123456789), &mut c), json!("[MASKED]"));
    assert_eq!(m.mask_cell("customer_ssn", &json!(false), &mut c), json!("[MASKED]"));
    assert_eq!(m.mask_cell("customer_ssn", &Value::Null, &mut c), Value::Null);
    assert_eq!(m.mask_cell("customer_name", &json!("n/a"), &mut c), json!("n/a"));
    assert_eq!(c.get("column"), 3);
}

#[test]
fn column_globs_are_case_insensitive_and_the_first_matching_rule_wins() {
    let m = with(columns(&[("email", Strategy::Partial), ("*", Strategy::Hash)]), &[]);
    let mut c = MaskCounts::default();
    assert_eq!(m.mask_cell("EMAIL", &json!("john@example.com"), &mut c), json!("***.com"));
    assert!(m.mask_cell("anything", &json!("x"), &mut c).as_str().unwrap().starts_with("hash:"));
    assert_eq!(m.column_strategy("Email"), Some(Strategy::Partial));
}

#[test]
fn invalid_column_glob_is_rejected_naming_the_pattern() {
    let err = validate_column_glob("cust[omer").unwrap_err();
    assert!(err.to_string().contains("cust[omer"), "{err}");
    assert!(validate_column_glob("  ").is_err());
    assert!(validate_column_glob("*password*").is_ok());
    let plan = columns(&[("ok", Strategy::Redact), ("{a,b", Strategy::Redact)]);
    let err = Masker::new(&plan, b"k", Arc::new(CredentialScrubber::empty())).unwrap_err();
    assert!(err.to_string().contains("{a,b"), "{err}");
}

#[test]
fn detectors_run_on_string_and_number_cells() {
    let m = masker();
    let mut c = MaskCounts::default();
    assert_eq!(m.mask_cell("note", &json!("call 415-555-2671"), &mut c), json!("call [PHONE]"));
    assert_eq!(m.mask_cell("card_no", &json!(4111111111111111u64), &mut c), json!("[CARD]"));
    assert_eq!(m.mask_cell("qty", &json!(42), &mut c), json!(42));
    assert_eq!(m.mask_cell("ok", &json!(true), &mut c), json!(true));
}

#[test]
fn json_cells_are_masked_inside_and_column_rules_apply_to_their_keys() {
    let mut plan = MaskPlan::all_detectors(Strategy::Redact);
    plan.columns.push(ColumnRule { pattern: "*password*".into(), strategy: Strategy::Redact });
    let m = with(plan, &[]);
    let v = json!({"user": {"email": "a@example.com", "password": "n/a", "tags": ["10.1.2.3", 7]}});
    let got = m.mask_cell("profile", &v, &mut MaskCounts::default());
    assert_eq!(got, json!({"user": {"email": "[EMAIL]", "password": "[MASKED]", "tags": ["[IPV4]", 7]}}));
}

#[test]
fn credential_scrubbing_wins_over_the_plan() {
    // Empty plan: credentials are still scrubbed.
    let m = with(MaskPlan::default(), &["Sup3r-S3cret-DB"]);
    let mut c = MaskCounts::default();
    assert_eq!(m.mask_text("conn pw=Sup3r-S3cret-DB ok", &mut c), "conn pw=[CREDENTIAL] ok");
    assert_eq!(c.get("credential"), 1);
    // A partial column rule must not reveal the tail of a credential.
    let m = with(columns(&[("pw", Strategy::Partial)]), &["Sup3r-S3cret-DB"]);
    let got = m.mask_cell("pw", &json!("Sup3r-S3cret-DB"), &mut MaskCounts::default());
    assert!(!got.as_str().unwrap().contains("-DB"), "{got}");
    // Detectors see the scrubbed text: the credential is not counted as a generic secret too.
    let m = with(MaskPlan::all_detectors(Strategy::Redact), &["Sup3r-S3cret-DB"]);
    let mut c = MaskCounts::default();
    assert_eq!(m.mask_text("password=Sup3r-S3cret-DB", &mut c), "password=[CREDENTIAL]");
    assert_eq!((c.get("credential"), c.get("secret_assignment")), (1, 0));
    // Streams too.
    let mut s = m.stream();
    let mut out = s.push("password=Sup3r-S3", &mut c);
    out += &s.push("cret-DB\n", &mut c);
    out += &s.finish(&mut c);
    assert_eq!(out, "password=[CREDENTIAL]\n");
}

#[test]
fn credentials_are_scrubbed_in_their_common_encodings() {
    let m = with(
        MaskPlan::default(),
        &["p@ss/w0rd!", "-----BEGIN KEY-----\nAAAABBBBCCCC\nDDDDEEEEFFFF\n-----END KEY-----\n"],
    );
    for t in ["p@ss/w0rd!", "p%40ss%2Fw0rd%21", "cEBzcy93MHJkIQ==", "AAAABBBBCCCC"] {
        assert_eq!(text(&m, &format!("x {t} y")).matches("[CREDENTIAL]").count(), 1, "{t}");
    }
}

#[test]
fn credentials_shorter_than_six_bytes_are_ignored() {
    let m = with(MaskPlan::default(), &["root", "12345"]);
    assert_eq!(text(&m, "root 12345"), "root 12345");
    assert!(CredentialScrubber::new(["abc".to_string()]).is_empty());
}

#[test]
fn clean_text_is_borrowed_not_copied() {
    let m = masker();
    assert!(matches!(m.mask_text("2024-05-01 INFO all good", &mut MaskCounts::default()), Cow::Borrowed(_)));
}

#[test]
fn counts_record_detectors_columns_and_credentials_never_values() {
    let mut plan = MaskPlan::all_detectors(Strategy::Redact);
    plan.columns.push(ColumnRule { pattern: "*ssn*".into(), strategy: Strategy::Redact });
    let m = with(plan, &["Sup3r-S3cret-DB"]);
    let mut c = MaskCounts::default();
    m.mask_cell("ssn", &json!("x"), &mut c);
    m.mask_cell("note", &json!("a@example.com b@example.com Sup3r-S3cret-DB"), &mut c);
    assert_eq!(c.0, BTreeMap::from([("column".into(), 1), ("credential".into(), 1), ("email".into(), 2)]));
    assert_eq!(c.total(), 4);
    let mut sum = MaskCounts::default();
    sum.merge(&c);
    sum.merge(&c);
    assert_eq!(sum.get("email"), 4);
    assert!(MaskCounts::default().is_empty());
    let json = serde_json::to_string(&c).unwrap();
    assert!(!json.contains("example.com") && !json.contains("Sup3r"), "{json}");
}

#[test]
fn only_enabled_detectors_run() {
    let m = with(one(Detector::Email, Strategy::Redact), &[]);
    assert_eq!(text(&m, "a@example.com 4111111111111111"), "[EMAIL] 4111111111111111");
    assert_eq!(text(&with(MaskPlan::default(), &[]), "a@example.com"), "a@example.com");
}

#[test]
fn masker_and_scrubber_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Masker>();
    shared::<CredentialScrubber>();
    fn sendable<T: Send>() {}
    sendable::<gateway_core::mask::MaskStream<'static>>();
}
