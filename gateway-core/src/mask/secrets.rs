//! Secret detectors: PEM private keys, JWTs, vendor tokens (AWS, GitHub, Slack, Stripe) and generic
//! `key=value` secret assignments.
//!
//! Vendor tokens have fixed prefixes, so they are precise on their own; the only checks are word boundaries
//! (a token glued to other letters is something else) and, for JWTs, that the header really is base64url
//! JSON with an `alg`. Generic assignments are found by the *key* (`password`, `db_password`, `PGPASSWORD`,
//! `client_secret`, `api_key`, `token`, …, as the last part of the key, so `max_tokens=` or
//! `password_reset=true` do not match) and only the *value* is masked, so the output still says which
//! setting was there. Values that are obviously not secrets (`********`, `<redacted>`, `${VAR}`, `null`, an
//! already masked `[SECRET]`) are skipped so masking is idempotent and counts stay meaningful.

use super::Detector;
use super::detect::{Detectors, Hit};
use super::validate::{at, base64url_decode, before, is_word, jwt_header_ok};

/// Start of every PEM block.
pub(crate) const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
/// Longest label we accept (`ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`).
const MAX_LABEL: usize = 48;
/// Longest END marker line: a stream in discard mode keeps this many bytes to catch a split marker.
pub(crate) const MAX_PEM_MARKER: usize = PEM_END.len() + MAX_LABEL + DASHES.len();

/// If `bytes[at..]` starts a marker (`prefix` + label + `-----`) whose label is a private key label, returns
/// the label and the offset just past the marker.
fn private_key_marker(bytes: &[u8], at: usize, prefix: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = at + prefix.len();
    let window = bytes.get(start..bytes.len().min(start + MAX_LABEL + DASHES.len()))?;
    let close = memchr::memmem::find(window, DASHES)?;
    let label = &window[..close];
    let ok_bytes = label.iter().all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ');
    (ok_bytes && (label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK")))
        .then(|| (label.to_vec(), start + close + DASHES.len()))
}

/// Private key blocks, BEGIN through the matching END marker (whole block, whatever is between: real
/// newlines, `\n` escapes inside JSON, headers). A BEGIN without END (truncated output) is masked to the
/// end of the text: what follows a BEGIN line is key material until proven otherwise.
pub(crate) fn find_pem(d: &Detectors, text: &str, out: &mut Vec<Hit>) {
    for (start, end, _) in pem_blocks(d, text) {
        out.push(Hit::new(Detector::PrivateKey, start, end));
    }
}

/// `(start, end, terminated)` of every private key block.
pub(crate) fn pem_blocks(d: &Detectors, text: &str) -> Vec<(usize, usize, bool)> {
    let bytes = text.as_bytes();
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(i) = d.pem_begin.find(&bytes[pos..]) {
        let begin = pos + i;
        match private_key_marker(bytes, begin, PEM_BEGIN) {
            Some((label, body)) => {
                let mut marker = PEM_END.to_vec();
                marker.extend_from_slice(&label);
                marker.extend_from_slice(DASHES);
                let end = memchr::memmem::find(&bytes[body..], &marker).map(|j| body + j + marker.len());
                blocks.push((begin, end.unwrap_or(text.len()), end.is_some()));
                pos = end.unwrap_or(text.len());
            }
            None => pos = begin + PEM_BEGIN.len(),
        }
    }
    blocks
}

/// Offset just past the first private-key END marker in `text`.
pub(crate) fn pem_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    while let Some(i) = memchr::memmem::find(&bytes[pos..], PEM_END) {
        let end_at = pos + i;
        if let Some((_, end)) = private_key_marker(bytes, end_at, PEM_END) {
            return Some(end);
        }
        pos = end_at + PEM_END.len();
    }
    None
}

/// Line-local secret detectors (everything except PEM).
pub(crate) fn find_tokens(d: &Detectors, det: Detector, line: &str, out: &mut Vec<Hit>) {
    let re = &d.re;
    // A secret keyword schedules every token detector; a memmem for the token's fixed prefix is much
    // cheaper than setting up a regex search that would find nothing.
    let has = |needle: &[u8]| memchr::memmem::find(line.as_bytes(), needle).is_some();
    let possible = match det {
        Detector::Jwt => has(b"eyJ"),
        Detector::GithubToken => has(b"gh") || has(b"github_pat_"),
        Detector::SlackToken => has(b"xox") || has(b"xapp-"),
        Detector::StripeKey => has(b"k_live_") || has(b"k_test_"),
        _ => true,
    };
    if !possible {
        return;
    }
    let bounded = |s: usize, e: usize| !before(line, s).is_some_and(is_word) && !at(line, e).is_some_and(is_word);
    match det {
        Detector::Jwt => {
            for m in re.jwt.find_iter(line) {
                if before(line, m.start()).is_some_and(|c| is_word(c) || c == b'-') {
                    continue;
                }
                let mut parts = m.as_str().split('.');
                let (Some(header), Some(payload)) = (parts.next(), parts.next()) else { continue };
                if jwt_header_ok(header) && base64url_decode(payload).is_some() {
                    out.push(Hit::new(det, m.start(), m.end()));
                }
            }
        }
        Detector::AwsKey => {
            for m in re.aws_id.find_iter(line) {
                if bounded(m.start(), m.end()) {
                    out.push(Hit::new(det, m.start(), m.end()));
                }
            }
            for c in re.aws_secret.captures_iter(line) {
                let (Some(all), Some(v)) = (c.get(0), c.get(1)) else { continue };
                let more =
                    at(line, v.end()).is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='));
                if !more {
                    out.push(Hit { det, start: v.start(), end: v.end(), ctx: all.start() });
                }
            }
        }
        Detector::GithubToken | Detector::StripeKey => {
            let r = if det == Detector::GithubToken { &re.github } else { &re.stripe };
            for m in r.find_iter(line) {
                if bounded(m.start(), m.end()) {
                    out.push(Hit::new(det, m.start(), m.end()));
                }
            }
        }
        Detector::SlackToken => {
            for m in re.slack.find_iter(line) {
                let end = m.start() + m.as_str().trim_end_matches('-').len();
                if bounded(m.start(), end) {
                    out.push(Hit::new(det, m.start(), end));
                }
            }
        }
        Detector::SecretAssignment => assignments(d, line, out),
        _ => {}
    }
}

/// `key=value` / `key: value` / `"key": "value"` / `--password value` / SQL `PASSWORD 'value'` /
/// `Bearer value` / `scheme://user:value@host`, all in one regex pass (one alternative each, see
/// `Patterns::assign`): the value is the finding, the whole match (with its key) is its context.
fn assignments(d: &Detectors, line: &str, out: &mut Vec<Hit>) {
    for m in d.re.assign.find_iter(line) {
        // The value is located by hand inside the match (cheaper than capture groups on the hot path).
        let Some(a) = split_assignment(m.as_str()) else { continue };
        let (vs, ve) = (m.start() + a.value, m.end() - a.trim_end);
        // `Bearer x` glued to a word (`xbearer …`) or followed by more token bytes is not a header value.
        if a.bearer
            && (before(line, m.start()).is_some_and(|b| b.is_ascii_alphanumeric()) || at(line, ve).is_some_and(is_word))
        {
            continue;
        }
        let (vs, ve) = strip_quotes(line, vs, ve);
        let value = &line[vs..ve];
        // `PWD=/home/alice` is the shell's working directory, not a password.
        let shell_pwd =
            a.key.len() >= 3 && a.key[a.key.len() - 3..].eq_ignore_ascii_case("pwd") && value.starts_with(['/', '~']);
        if !is_placeholder(value) && !shell_pwd {
            out.push(Hit { det: Detector::SecretAssignment, start: vs, end: ve, ctx: m.start() });
        }
    }
}

/// An assignment match split into its parts (offsets relative to the match).
struct Assignment<'a> {
    key: &'a str,
    /// Where the value starts; it runs to the end of the match minus `trim_end`.
    value: usize,
    trim_end: usize,
    bearer: bool,
}

/// Splits a match of one of the alternatives of `Patterns::assign`:
/// `key["']?[ \t]*(:=|=>|=|:)[ \t]*value`, `--flag value`, `password 'value'`, `identified by 'value'`,
/// `bearer value` / `basic value`, `scheme://user:value@`.
fn split_assignment(m: &str) -> Option<Assignment<'_>> {
    let b = m.as_bytes();
    if let Some(p) = memchr::memmem::find(b, b"://") {
        let colon = p + 3 + memchr::memchr(b':', &b[p + 3..])?;
        return Some(Assignment { key: "", value: colon + 1, trim_end: 1, bearer: false });
    }
    let key_end =
        b.iter().position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))).unwrap_or(b.len());
    let key = &m[..key_end];
    let mut i = key_end;
    if matches!(b.get(i), Some(b'"' | b'\'')) && b.get(i + 1).is_some_and(|c| matches!(c, b' ' | b'\t' | b':' | b'=')) {
        i += 1; // the closing quote of a quoted key
    }
    while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t')) {
        i += 1;
    }
    let at_value = |value| Some(Assignment { key, value, trim_end: 0, bearer: false });
    match b.get(i) {
        Some(b':' | b'=') => {
            i += 1;
            if b.get(i).is_some_and(|c| matches!(c, b'=' | b'>')) {
                i += 1;
            }
            while b.get(i).is_some_and(|c| matches!(c, b' ' | b'\t')) {
                i += 1;
            }
            at_value(i)
        }
        Some(b'\'') => at_value(i), // SQL: password 'value'
        _ if key.starts_with("--") => at_value(i),
        _ if key.eq_ignore_ascii_case("identified") => at_value(memchr::memchr(b'\'', b)?),
        _ if key.eq_ignore_ascii_case("bearer") || key.eq_ignore_ascii_case("basic") => {
            Some(Assignment { key: "", value: i, trim_end: 0, bearer: true })
        }
        _ => None,
    }
}

/// Drops matching surrounding quotes, or a lone opening quote (a truncated `"secret…`).
fn strip_quotes(line: &str, vs: usize, ve: usize) -> (usize, usize) {
    let v = &line.as_bytes()[vs..ve];
    match (v.first(), v.last()) {
        (Some(&q @ (b'"' | b'\'')), Some(&l)) if v.len() >= 2 && l == q => (vs + 1, ve - 1),
        (Some(b'"' | b'\''), _) => (vs + 1, ve),
        _ => (vs, ve),
    }
}

/// Values that stand for "no secret here": empty, masks (`****`, `xxxx`, `[SECRET]`, `<redacted>`,
/// `***ab12` partial output), template references (`${DB_PASSWORD}`, `$DB_PASSWORD`, `{{ .Values.pw }}`,
/// `%s`, `?`), and JSON/YAML nulls and booleans.
fn is_placeholder(v: &str) -> bool {
    const WORDS: &[&str] = &["null", "none", "nil", "undefined", "true", "false", "redacted", "hidden", "masked"];
    let v = v.trim();
    let b = v.as_bytes();
    v.is_empty()
        || b.iter().all(|&c| matches!(c, b'*' | b'x' | b'X' | b'.' | b'#' | b'-'))
        || v.starts_with("***")
        || (b[0] == b'[' && b[b.len() - 1] == b']')
        || (b[0] == b'<' && b[b.len() - 1] == b'>')
        || v.starts_with("${")
        || v.starts_with("{{")
        || (b[0] == b'$'
            && b.len() > 1
            && b[1..].iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'))
        || v == "%s"
        || v == "?"
        || v.starts_with("hash:")
        || WORDS.iter().any(|w| w.eq_ignore_ascii_case(v))
}

#[cfg(test)]
mod tests {
    use super::is_placeholder;

    #[test]
    fn placeholders_are_not_secrets() {
        for v in [
            "",
            "********",
            "xxxx",
            "[SECRET]",
            "<redacted>",
            "${DB_PASSWORD}",
            "$DB_PASSWORD",
            "null",
            "{{ .Values.pw }}",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in ["hunter2", "$ecret9!", "S3cr3t-P4ss"] {
            assert!(!is_placeholder(v), "{v}");
        }
    }
}
