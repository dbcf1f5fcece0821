//! Credential scrubbing: the gateway's own secrets (database passwords, SSH keys, API tokens it was
//! configured with) are removed from every output, whatever the policy says, before any detector runs.
//!
//! The values are known exactly, so this is a multi-pattern substring search (Aho-Corasick, leftmost-longest)
//! rather than a heuristic. Each value is also searched in the encodings it commonly shows up in: trimmed of
//! a trailing newline (secret files), line by line (multi-line keys, so a stream cut at a newline still
//! matches each line), percent-encoded (inside URLs), JSON-escaped (inside JSON strings), base64
//! (Kubernetes `Secret` data), hex (`encode(…, 'hex')`) and reversed; and in any ASCII letter case, so a row that
//! holds a credential cannot be read out as `upper(body)`. No scrubber can undo every transformation an agent
//! might ask a target for (`substring` pieces, arithmetic on bytes): the dependable protection is that targets do
//! not hold the gateway's credentials in readable data; this catches the ordinary and the careless cases.
//!
//! Values shorter than [`MIN_CREDENTIAL_LEN`] bytes are ignored. A very short value (`root`, `12345`, `admin`)
//! occurs by chance all over ordinary output: scrubbing it would shred unrelated text, and *which* harmless
//! words got masked would reveal the secret to anyone reading the output (the masking itself becomes an
//! oracle). Such credentials are too weak to protect anyway; the config loader should warn about them.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, MatchKind};

use super::MaskCounts;

/// What a scrubbed credential is replaced with.
pub const CREDENTIAL_REPLACEMENT: &str = "[CREDENTIAL]";
/// Shorter values are ignored (see the module docs for why).
pub const MIN_CREDENTIAL_LEN: usize = 6;

/// The gateway's own credential values, compiled once at start-up and shared (`Arc`) by every masker.
pub struct CredentialScrubber {
    patterns: Vec<String>,
    ac: Option<AhoCorasick>,
}

impl std::fmt::Debug for CredentialScrubber {
    // Never print the values themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialScrubber").field("patterns", &self.patterns.len()).finish()
    }
}

impl CredentialScrubber {
    /// Builds the scrubber from raw credential values (and derives their encoded forms).
    pub fn new<I: IntoIterator<Item = String>>(values: I) -> Self {
        let mut set = BTreeSet::new();
        for value in values {
            // The rule is about the value: a short one stays ignored even where an encoding makes it longer.
            if value.trim().len() < MIN_CREDENTIAL_LEN {
                continue;
            }
            for v in variants(&value) {
                if v.len() >= MIN_CREDENTIAL_LEN {
                    set.insert(v);
                }
            }
        }
        let patterns: Vec<String> = set.into_iter().collect();
        // Building can only fail for absurd pattern sets (automaton size limits); then the slow path below
        // still scrubs: silently not scrubbing is never an option.
        let ac = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .ascii_case_insensitive(true)
                .build(&patterns)
                .ok()
        };
        CredentialScrubber { patterns, ac }
    }

    /// No credentials: scrubbing is a no-op.
    pub fn empty() -> Self {
        CredentialScrubber { patterns: Vec::new(), ac: None }
    }

    /// True when there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Number of search patterns (values plus their encoded forms).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Non-overlapping `(start, end)` spans of credential occurrences, leftmost-longest.
    pub(crate) fn spans(&self, text: &str) -> Vec<(usize, usize)> {
        if self.patterns.is_empty() {
            return Vec::new();
        }
        if let Some(ac) = &self.ac {
            return ac.find_iter(text).map(|m| (m.start(), m.end())).collect();
        }
        // ASCII lower-casing keeps byte offsets, so spans found in the folded text are spans of `text`.
        let folded = text.to_ascii_lowercase();
        let mut all: Vec<(usize, usize)> = self
            .patterns
            .iter()
            .map(|p| p.to_ascii_lowercase())
            .flat_map(|p| folded.match_indices(p.as_str()).map(|(i, m)| (i, i + m.len())).collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (s, e) in all {
            if out.last().is_none_or(|&(_, le)| s >= le) {
                out.push((s, e));
            }
        }
        out
    }

    /// Replaces every credential occurrence with [`CREDENTIAL_REPLACEMENT`], counting them as `credential`.
    pub fn scrub<'a>(&self, text: &'a str, counts: &mut MaskCounts) -> Cow<'a, str> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for &(s, e) in &spans {
            out.push_str(&text[last..s]);
            out.push_str(CREDENTIAL_REPLACEMENT);
            last = e;
        }
        out.push_str(&text[last..]);
        counts.add("credential", spans.len() as u64);
        Cow::Owned(out)
    }
}

/// The value and the forms it is likely to appear in.
fn variants(value: &str) -> Vec<String> {
    let trimmed = value.trim_end_matches(['\n', '\r']);
    let mut out = vec![value.to_owned(), trimmed.to_owned()];
    out.extend(trimmed.lines().map(|l| l.trim_end_matches('\r').trim().to_owned()));
    out.push(percent_encode(trimmed));
    if let Ok(json) = serde_json::to_string(trimmed) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    out.push(base64_unpadded(trimmed.as_bytes()));
    out.push(hex::encode(trimmed.as_bytes()));
    out.push(trimmed.chars().rev().collect());
    out
}

/// RFC 3986: everything but unreserved characters is `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 without padding (a padded occurrence still contains it).
fn base64_unpadded(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_unpadded(b"hunter2!"), "aHVudGVyMiE");
        assert_eq!(base64_unpadded(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn case_changed_hex_and_reversed_copies_are_scrubbed() {
        let s = CredentialScrubber::new(["Pg-Secret-42xy".to_owned()]);
        let mut counts = MaskCounts::default();
        let text = format!("a PG-SECRET-42XY b {} c {} d", hex::encode("Pg-Secret-42xy"), "yx24-terceS-gP");
        assert_eq!(s.scrub(&text, &mut counts), "a [CREDENTIAL] b [CREDENTIAL] c [CREDENTIAL] d");
        assert_eq!(counts.0.get("credential"), Some(&3));
    }

    #[test]
    fn percent_encoding_escapes_reserved_bytes() {
        assert_eq!(percent_encode("p@ss/w rd"), "p%40ss%2Fw%20rd");
    }
}
