//! Masking: PII and secrets never leave the gateway, and are never recorded, in clear.
//!
//! Detectors find values in free text (validated to keep false positives down); column rules mask a whole
//! column by name; the gateway's own credential values are always scrubbed whatever the policy says.
//!
//! Layout: `validate` (checksums and boundary rules), [`detect`] (prefilter + PII detectors),
//! `secrets` (keys, tokens, assignments), [`scrub`] (credential scrubbing), [`engine`] (plans, masker,
//! strategies, counts) and [`stream`] (chunked output).

pub mod detect;
pub mod engine;
pub mod scrub;
mod secrets;
pub mod stream;
mod validate;

pub use detect::Finding;
pub use engine::{COLUMN_REDACTION, ColumnRule, MaskCounts, MaskError, MaskPlan, Masker, validate_column_glob};
pub use scrub::{CREDENTIAL_REPLACEMENT, CredentialScrubber, MIN_CREDENTIAL_LEN};
pub use stream::{MaskStream, STREAM_MAX_HELD, STREAM_PEM_MAX, STREAM_TAIL};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A value detector. Names are the ones used in policy files and in masking counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// E-mail addresses.
    Email,
    /// Payment card numbers (13–19 digits, Luhn-valid, known issuer prefixes).
    PaymentCard,
    /// US social security numbers (area/group/serial rules).
    UsSsn,
    /// Phone numbers: E.164 and common national formats.
    Phone,
    /// IBANs (country length and mod-97 check).
    Iban,
    /// IPv4 addresses.
    Ipv4,
    /// IPv6 addresses.
    Ipv6,
    /// JSON Web Tokens.
    Jwt,
    /// PEM-encoded private keys.
    PrivateKey,
    /// AWS access key ids (and secret keys when labelled).
    AwsKey,
    /// GitHub tokens (ghp_, gho_, ghs_, ghu_, ghr_, github_pat_).
    GithubToken,
    /// Slack tokens (xoxb-, xoxp-, xoxa-, xapp-, ...).
    SlackToken,
    /// Stripe-style keys (sk_live_, rk_live_, sk_test_, ...).
    StripeKey,
    /// `password=…`, `secret: …`, `api_key=…` assignments and credentials inside connection strings.
    SecretAssignment,
}

impl Detector {
    /// Every detector, in declaration order.
    pub const ALL: &'static [Detector] = &[
        Detector::Email,
        Detector::PaymentCard,
        Detector::UsSsn,
        Detector::Phone,
        Detector::Iban,
        Detector::Ipv4,
        Detector::Ipv6,
        Detector::Jwt,
        Detector::PrivateKey,
        Detector::AwsKey,
        Detector::GithubToken,
        Detector::SlackToken,
        Detector::StripeKey,
        Detector::SecretAssignment,
    ];

    /// Position in [`Detector::ALL`] (used to index per-detector tables).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in policy files and counts.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::PaymentCard => "payment_card",
            Detector::UsSsn => "us_ssn",
            Detector::Phone => "phone",
            Detector::Iban => "iban",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::Jwt => "jwt",
            Detector::PrivateKey => "private_key",
            Detector::AwsKey => "aws_key",
            Detector::GithubToken => "github_token",
            Detector::SlackToken => "slack_token",
            Detector::StripeKey => "stripe_key",
            Detector::SecretAssignment => "secret_assignment",
        }
    }

    /// The placeholder written by the `redact` strategy, e.g. `[EMAIL]`.
    pub fn redaction(self) -> &'static str {
        match self {
            Detector::Email => "[EMAIL]",
            Detector::PaymentCard => "[CARD]",
            Detector::UsSsn => "[SSN]",
            Detector::Phone => "[PHONE]",
            Detector::Iban => "[IBAN]",
            Detector::Ipv4 => "[IPV4]",
            Detector::Ipv6 => "[IPV6]",
            Detector::Jwt => "[JWT]",
            Detector::PrivateKey => "[PRIVATE_KEY]",
            Detector::AwsKey => "[AWS_KEY]",
            Detector::GithubToken => "[GITHUB_TOKEN]",
            Detector::SlackToken => "[SLACK_TOKEN]",
            Detector::StripeKey => "[STRIPE_KEY]",
            Detector::SecretAssignment => "[SECRET]",
        }
    }
}

impl std::fmt::Display for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a detected value (or a masked column) is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Keep a hint: `j***@example.com`, `****4242`. Weakest.
    Partial,
    /// Keyed HMAC-SHA256, shortened: stable across calls so analysts can still join on it.
    Hash,
    /// Replace with the detector's placeholder, e.g. `[EMAIL]`. Strongest, and the default.
    #[default]
    Redact,
}
