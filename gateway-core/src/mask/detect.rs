//! Detection engine: a cheap prefilter finds the few lines worth looking at, then per-detector regexes find
//! candidates in those lines and validators (see `validate`) confirm them.
//!
//! Why this shape: running fourteen regexes one after another over every byte costs fourteen passes, and
//! clean text (the common case) would pay all of them. Instead:
//!
//! 1. One multi-pattern prefilter (`regex_automata::meta::Regex`, an alternation of loose ASCII "shapes":
//!    13 digits in a row, `ddd-dd-dddd`, `@x`, `eyJ…`, `AKIA`, `passw`, …) makes a single leftmost-first
//!    pass over the text; each hit says which shape matched. Clean text costs that one pass.
//! 2. A hit marks its *line* dirty and schedules detectors for it. No shape crosses a newline and no
//!    detector except PEM private keys matches across one, so a line is a self-contained unit — which is
//!    also what lets [`super::stream`] cut streams at newlines and still produce exactly the one-shot result.
//!    A non-overlapping pass can hide a shape that starts inside another hit, so shapes that can overlap
//!    schedule each other: a digit-shape hit re-checks the line against every digit shape in one byte pass
//!    (`digit_shapes`), and a secret keyword schedules the token detectors and e-mail too. A test compares
//!    the result with running every detector on every line (`Masker::find_unfiltered`).
//! 3. Only scheduled detectors run on the line: a regex (or a byte scanner, for cards) finds candidates,
//!    validators confirm them.
//! 4. PEM blocks span lines, so they are found separately with a SIMD `memmem` for `-----BEGIN `.
//! 5. Overlapping findings are resolved by priority (most specific first: a JWT inside `token=…` is a JWT,
//!    not a generic secret), then by position and length.
//!
//! The compiled detectors are process-wide (`OnceLock`): building a [`super::Masker`] per request is cheap.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use memchr::memmem;
use regex::Regex;
use regex_automata::Input;
use regex_automata::meta::Regex as MultiRegex;

use super::validate::{
    after_version_word, at, before, card_in_run, continues_number, e164_end, iban_length, iban_mod97_ok, ipv4_octets,
    is_word, ssn_digits_valid,
};
use super::{Detector, MaskError, secrets};

/// Number of detectors.
pub(crate) const N: usize = Detector::ALL.len();
/// Which detectors a plan enables, indexed by [`Detector::index`].
pub(crate) type Enabled = [bool; N];

/// A value found in a text: which detector matched and its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Finding {
    /// The detector that matched.
    pub detector: Detector,
    /// Byte offset of the first byte of the value.
    pub start: usize,
    /// Byte offset one past the value.
    pub end: usize,
}

/// Internal finding: `ctx` is where the evidence starts (the `password=` of an assignment, the label of a
/// bare SSN). A stream must never cut between `ctx` and `end`, or the value would lose its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub det: Detector,
    pub start: usize,
    pub end: usize,
    pub ctx: usize,
}

impl Hit {
    pub(crate) fn new(det: Detector, start: usize, end: usize) -> Self {
        Hit { det, start, end, ctx: start }
    }
}

/// Scheduling flag: run every digit detector that passes its cheap necessary condition.
const DIGITS: u32 = 1 << 31;

const fn bit(d: Detector) -> u32 {
    1 << d as u32
}

/// Scheduled by a secret keyword: a keyword's match can hide a token or an e-mail that starts inside it.
const SECRET_GROUP: u32 = bit(Detector::SecretAssignment)
    | bit(Detector::Jwt)
    | bit(Detector::AwsKey)
    | bit(Detector::GithubToken)
    | bit(Detector::SlackToken)
    | bit(Detector::StripeKey)
    | bit(Detector::Email);

/// Prefilter shapes and what a hit schedules. Each detector's shapes must accept (somewhere in the line)
/// everything it can find — they may accept more. They are as tight as that allows, because every hit
/// costs a line of detector work: most start at a boundary (`B`: line start or a byte that cannot precede
/// the value, which the detector checks anyway), and secret keywords must be followed by `=`/`:` (so
/// `max_tokens=` is not a hit, `token=` is). ASCII, never matching `\n` after `B`, so hits stay in a line.
const SHAPES: &[(&str, u32)] = &[
    (r"[^\s@]@[A-Za-z0-9][A-Za-z0-9\-]*\.[A-Za-z0-9.\-]*[A-Za-z]", bit(Detector::Email)),
    (r"(?:(?m:^)|[^0-9A-Za-z_\n])[0-9](?:[ \-]?[0-9]){12}", DIGITS),
    (r"(?:(?m:^)|[^0-9A-Za-z_\n])[0-9]{3}-[0-9]{2}-[0-9]{4}", DIGITS),
    (r"\+[1-9][0-9 ().\-]{6}", DIGITS),
    (r"(?:(?m:^)|[^0-9A-Za-z_\n])[0-9]{3}[ .\-)]{1,2}[0-9]{3}[ .\-][0-9]{4}", DIGITS),
    (r"(?:(?m:^)|[^0-9A-Za-z_.\n])[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", DIGITS),
    (
        r"(?:(?m:^)|[^0-9A-Za-z_:.\n])(?:(?:[0-9A-Fa-f]{1,4}:)*[0-9A-Fa-f]{0,4}::[0-9A-Fa-f]?|(?:[0-9A-Fa-f]{1,4}:){6})",
        DIGITS,
    ),
    (r"(?i:ssn|social[ _\-]?security)", bit(Detector::UsSsn)),
    (r"(?:(?m:^)|[^0-9A-Za-z_\n])[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}", bit(Detector::Iban)),
    (r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]", bit(Detector::Jwt)),
    (r"A(?:KIA|SIA)[A-Z0-9]{16}", bit(Detector::AwsKey)),
    (r"(?i:secret_?access_?key)", bit(Detector::AwsKey) | bit(Detector::SecretAssignment)),
    (r"gh[pousr]_[A-Za-z0-9]{20}|github_pat_", bit(Detector::GithubToken)),
    (r"xox[a-z]-|xapp-", bit(Detector::SlackToken)),
    (r"[rs]k_(?:live|test)_", bit(Detector::StripeKey)),
    (
        concat!(
            r#"(?i:(?:passw(?:or)?d|passphrase|pwd|secret|secret[_\-]?key|api[_\-]?key|token)["']?[ \t]*[:=]"#,
            r"|--[a-z0-9\-]*(?:password|passwd|token|secret|api-key)[ \t]|(?:identified[ \t]+by|password)[ \t]+'",
            r"|(?:bearer|basic)[ \t]+[A-Za-z0-9._~+/=\-]{16})|://[^\s/:@]*:[^\s/@]+@",
        ),
        SECRET_GROUP,
    ),
];

/// Extraction regexes. Loose on purpose: boundaries and checksums are verified in code.
pub(crate) struct Patterns {
    pub email: Regex,
    pub ssn: Regex,
    pub ssn_labelled: Regex,
    pub phone: Regex,
    pub iban: Regex,
    pub ipv4: Regex,
    pub ipv6: Regex,
    pub jwt: Regex,
    pub aws_id: Regex,
    pub aws_secret: Regex,
    pub github: Regex,
    pub slack: Regex,
    pub stripe: Regex,
    pub assign: Regex,
}

/// Everything compiled once per process.
pub(crate) struct Detectors {
    prefilter: MultiRegex,
    pub(crate) pem_begin: memmem::Finder<'static>,
    pub(crate) re: Patterns,
}

static DETECTORS: OnceLock<Result<Detectors, String>> = OnceLock::new();

/// The process-wide detectors. The patterns are constants, so an error here is a programming bug — it is
/// still reported as an error rather than a panic, because this runs inside request handling.
pub(crate) fn detectors() -> Result<&'static Detectors, MaskError> {
    DETECTORS.get_or_init(Detectors::build).as_ref().map_err(|e| MaskError::Internal(e.clone()))
}

fn re(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{pattern}: {e}"))
}

impl Detectors {
    fn build() -> Result<Self, String> {
        let prefilter =
            MultiRegex::new_many(&SHAPES.iter().map(|(p, _)| *p).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
        let pats = Patterns {
            email: re(r"[\w.%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}")?,
            ssn: re(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")?,
            ssn_labelled: re(
                r#"(?i)(?:ssn|social[ _\-]?security(?:[ _\-]?(?:number|no|num))?)["']?[ \t]*[:=#]?[ \t]*["']?([0-9]{9})"#,
            )?,
            // `+…` starts an E.164 number parsed by hand; the rest is the North-American shape.
            phone: re(
                r"\+[1-9]|(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ \-]?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}",
            )?,
            iban: re(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,34}")?,
            ipv4: re(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")?,
            ipv6: re(r"(?:[0-9A-Fa-f]{0,4}:)+(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f]{1,4})?")?,
            jwt: re(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")?,
            aws_id: re(r"A(?:KIA|SIA)[A-Z0-9]{16}")?,
            aws_secret: re(
                r#"(?i)(?:aws_?)?secret_?access_?key["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?([A-Za-z0-9/+=]{40})"#,
            )?,
            github: re(r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255}")?,
            slack: re(r"xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[0-9]+-[A-Za-z0-9\-]{10,}")?,
            stripe: re(r"[rs]k_(?:live|test)_[A-Za-z0-9]{16,}")?,
            // One pass for every assignment form; `secrets::split_assignment` finds the value in a match.
            assign: re(concat!(
                r#"(?i)"#,
                // key=value, key: value, "key": "value", key => 'value'
                r#"[A-Za-z0-9_.\-]*(?:passw(?:or)?d|passphrase|pwd|secret|secret[_\-]?key|api[_\-]?key|token)"#,
                r#"["']?[ \t]*(?::=|=>|=|:)[ \t]*"#,
                r#"(?:"(?:[^"\\]|\\.)*"|'[^']*'|\$\{[^}\s]*\}|\{\{[^}]*\}\}|["']?[^\s"'&,;<>{}\[\]()]+)"#,
                // --password value
                r#"|--[a-z0-9\-]*(?:password|passwd|token|secret|api-key)[ \t]+(?:"[^"]*"|'[^']*'|[^\s"'\-,;&][^\s"',;&]*)"#,
                // SQL: PASSWORD 'value' / IDENTIFIED BY 'value'
                r#"|(?:identified[ \t]+by|password)[ \t]+'[^']*'"#,
                // Authorization: Bearer value / Basic value
                r#"|(?:bearer|basic)[ \t]+[A-Za-z0-9._~+/=\-]{16,}"#,
                // scheme://user:value@host
                r#"|[a-z][a-z0-9+.\-]*://[^\s/:@]*:[^\s/@]+@"#,
            ))?,
        };
        Ok(Detectors { prefilter, pem_begin: memmem::Finder::new(secrets::PEM_BEGIN).into_owned(), re: pats })
    }

    /// All findings of the enabled detectors in `text`, non-overlapping and sorted by position.
    pub(crate) fn find(&self, text: &str, enabled: &Enabled) -> Vec<Hit> {
        let mut hits = Vec::new();
        if enabled[Detector::PrivateKey.index()] {
            secrets::find_pem(self, text, &mut hits);
        }
        if !Detector::ALL.iter().any(|d| *d != Detector::PrivateKey && enabled[d.index()]) {
            return resolve(hits);
        }
        let bytes = text.as_bytes();
        // The dirty line being collected: (start, end, scheduled detectors).
        let mut line: Option<(usize, usize, u32)> = None;
        let mut pos = 0;
        while pos < text.len() {
            let Some(hit) = self.prefilter.search_half(&Input::new(text).range(pos..)) else { break };
            let end = hit.offset();
            let probe = end.saturating_sub(1).max(pos);
            let schedule = SHAPES[hit.pattern().as_usize()].1;
            match &mut line {
                Some((_, le, sched)) if probe < *le => *sched |= schedule,
                _ => {
                    if let Some((ls, le, sched)) = line.take() {
                        self.scan_line(&text[ls..le], ls, sched, enabled, &mut hits);
                    }
                    let ls = memchr::memrchr(b'\n', &bytes[..probe]).map_or(0, |i| i + 1);
                    let le = memchr::memchr(b'\n', &bytes[probe..]).map_or(text.len(), |i| probe + i);
                    line = Some((ls, le, schedule));
                }
            }
            pos = end.max(pos + 1);
        }
        if let Some((ls, le, sched)) = line {
            self.scan_line(&text[ls..le], ls, sched, enabled, &mut hits);
        }
        resolve(hits)
    }

    /// Reference implementation without the prefilter: every enabled detector on every line. Only for
    /// tests that check the prefilter and the scheduling lose nothing.
    pub(crate) fn find_unfiltered(&self, text: &str, enabled: &Enabled) -> Vec<Hit> {
        let mut hits = Vec::new();
        if enabled[Detector::PrivateKey.index()] {
            secrets::find_pem(self, text, &mut hits);
        }
        let mut ls = 0;
        for line in text.split('\n') {
            self.scan_line(line, ls, !DIGITS, enabled, &mut hits);
            ls += line.len() + 1;
        }
        resolve(hits)
    }

    /// Runs the detectors scheduled for one dirty line.
    fn scan_line(&self, line: &str, base: usize, mut sched: u32, enabled: &Enabled, out: &mut Vec<Hit>) {
        const DIGIT_DETECTORS: [Detector; 5] =
            [Detector::PaymentCard, Detector::UsSsn, Detector::Phone, Detector::Ipv4, Detector::Ipv6];
        if sched & DIGITS != 0 && DIGIT_DETECTORS.iter().any(|d| enabled[d.index()]) {
            sched |= digit_shapes(line.as_bytes());
        }
        let first = out.len();
        for &d in Detector::ALL {
            if sched & bit(d) != 0 && enabled[d.index()] {
                self.run(d, line, out);
            }
        }
        for h in &mut out[first..] {
            h.start += base;
            h.end += base;
            h.ctx += base;
        }
    }

    fn run(&self, det: Detector, line: &str, out: &mut Vec<Hit>) {
        match det {
            Detector::Email if memchr::memchr(b'@', line.as_bytes()).is_some() => self.emails(line, out),
            Detector::Email => {}
            Detector::PaymentCard => self.cards(line, out),
            Detector::UsSsn => self.ssns(line, out),
            Detector::Phone => self.phones(line, out),
            Detector::Iban => self.ibans(line, out),
            Detector::Ipv4 => self.ipv4s(line, out),
            Detector::Ipv6 => self.ipv6s(line, out),
            Detector::PrivateKey => {} // found over the whole text, see `find`
            _ => secrets::find_tokens(self, det, line, out),
        }
    }

    /// `local@domain.tld`. Not: `logo@2x.png` (file names), `git@github.com:org/repo` (scp-style remotes),
    /// `pkg@1.2.3` (numeric TLD), `user@localhost` (no dot).
    fn emails(&self, line: &str, out: &mut Vec<Hit>) {
        const FILE_EXTS: &[&str] = &[
            "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "css", "js", "mjs", "ts", "map", "json", "xml", "txt",
            "log", "gz", "zip", "tar", "md", "yml", "yaml", "toml", "lock", "html", "htm", "pdf", "rs", "py", "go",
        ];
        for m in self.re.email.find_iter(line) {
            let s = m.as_str();
            let Some(at_sign) = s.find('@') else { continue };
            let local_full = &s[..at_sign];
            let local = local_full.trim_start_matches(['.', '+', '-']);
            let start = m.start() + (local_full.len() - local.len());
            if local.is_empty() || local.len() > 64 || local.ends_with('.') || local.contains("..") {
                continue;
            }
            let tld = s.rsplit('.').next().unwrap_or_default();
            if FILE_EXTS.iter().any(|e| e.eq_ignore_ascii_case(tld)) {
                continue;
            }
            match at(line, m.end()) {
                Some(b) if is_word(b) || b == b'-' || b == b'@' => continue,
                Some(b':') if at(line, m.end() + 1).is_some_and(|c| !c.is_ascii_whitespace()) => continue,
                _ => {}
            }
            out.push(Hit::new(Detector::Email, start, m.end()));
        }
    }

    /// 13–19 digits, optionally grouped by spaces or dashes, Luhn-valid with a plausible issuer prefix.
    /// A byte scanner (cheaper than a regex that would match every number) collects runs of digit groups
    /// joined by single spaces or dashes; every contiguous sub-run of 13–19 digits is tried, so a card followed
    /// by an amount (`4111… 100`) is still found, while a single group longer than 19 digits is one long number
    /// and never a card.
    fn cards(&self, line: &str, out: &mut Vec<Hit>) {
        let b = line.as_bytes();
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            groups.clear();
            let mut digits = 0;
            loop {
                let s = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                groups.push((s, i));
                digits += i - s;
                if i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit() {
                    i += 1;
                } else {
                    break;
                }
            }
            if digits >= 13 {
                card_in_run(line, &groups, out);
            }
        }
    }

    /// `AAA-GG-SSSS` with valid area/group/serial, not inside a longer dashed number; bare nine digits only
    /// right after an SSN label (`ssn: 123456789`), since bare nine-digit numbers are everywhere.
    fn ssns(&self, line: &str, out: &mut Vec<Hit>) {
        for m in self.re.ssn.find_iter(line) {
            if before(line, m.start()).is_some_and(|c| is_word(c) || c == b'-' || c == b'.') {
                continue;
            }
            if at(line, m.end()).is_some_and(is_word) || continues_number(line, m.end()) {
                continue;
            }
            if ssn_digits_valid(m.as_str()) {
                out.push(Hit::new(Detector::UsSsn, m.start(), m.end()));
            }
        }
        for c in self.re.ssn_labelled.captures_iter(line) {
            let (Some(all), Some(v)) = (c.get(0), c.get(1)) else { continue };
            if before(line, all.start()).is_some_and(|b| b.is_ascii_alphanumeric())
                || at(line, v.end()).is_some_and(is_word)
            {
                continue;
            }
            if ssn_digits_valid(v.as_str()) {
                out.push(Hit { det: Detector::UsSsn, start: v.start(), end: v.end(), ctx: all.start() });
            }
        }
    }

    /// E.164 (`+` country code, 9–15 digits, single separators, one optional parenthesised group) and
    /// North-American `(415) 555-2671` / `415-555-2671` / `415.555.2671` (separators required: a bare ten-digit
    /// number is more often an id than a phone).
    fn phones(&self, line: &str, out: &mut Vec<Hit>) {
        for m in self.re.phone.find_iter(line) {
            if m.as_str().starts_with('+') {
                if !before(line, m.start()).is_some_and(|c| is_word(c) || c == b'+')
                    && let Some(end) = e164_end(line, m.start())
                {
                    out.push(Hit::new(Detector::Phone, m.start(), end));
                }
                continue;
            }
            if before(line, m.start()).is_some_and(|c| is_word(c) || matches!(c, b'-' | b'.' | b'+' | b'/')) {
                continue;
            }
            if at(line, m.end()).is_some_and(is_word) || continues_number(line, m.end()) {
                continue;
            }
            // Without parentheses both separators must agree: `415-555-2671`, not `415.555-2671`.
            let s = m.as_str().as_bytes();
            let core = if s.len() > 12 && matches!(s[1], b' ' | b'-' | b'.') && s[0] == b'1' { &s[2..] } else { s };
            if core.first() != Some(&b'(') && core.len() == 12 && core[3] != core[7] {
                continue;
            }
            out.push(Hit::new(Detector::Phone, m.start(), m.end()));
        }
    }

    /// Country code, check digits, BBAN; compact or grouped by four. Length must match the country and the
    /// mod-97 check must hold, which rules out almost every look-alike.
    fn ibans(&self, line: &str, out: &mut Vec<Hit>) {
        for m in self.re.iban.find_iter(line) {
            if before(line, m.start()).is_some_and(is_word) {
                continue;
            }
            let b = m.as_str().as_bytes();
            let Some(len) = iban_length(&b[..2]) else { continue };
            let grouped = b.get(4) == Some(&b' ');
            let (mut compact, mut n, mut end) = ([0u8; 34], 0usize, None);
            for (k, &c) in b.iter().enumerate() {
                if c == b' ' {
                    if !grouped || n % 4 != 0 {
                        break;
                    }
                    continue;
                }
                if grouped && n > 0 && n % 4 == 0 && b[k - 1] != b' ' {
                    break;
                }
                compact[n] = c;
                n += 1;
                if n == len {
                    end = Some(k + 1);
                    break;
                }
            }
            let Some(end) = end else { continue };
            if at(line, m.start() + end).is_some_and(is_word) {
                continue;
            }
            if iban_mod97_ok(&compact[..n]) {
                out.push(Hit::new(Detector::Iban, m.start(), m.start() + end));
            }
        }
    }

    /// Dotted quads with valid octets, not part of a longer dotted number (`1.2.3.4.5`, OIDs) and not right
    /// after the word `version`. `0.0.0.0`, `127.x.x.x` and `255.255.255.255` carry no information and are
    /// left alone.
    fn ipv4s(&self, line: &str, out: &mut Vec<Hit>) {
        for m in self.re.ipv4.find_iter(line) {
            if before(line, m.start()).is_some_and(|c| is_word(c) || c == b'.') {
                continue;
            }
            let dotted_more =
                at(line, m.end()) == Some(b'.') && at(line, m.end() + 1).is_some_and(|c| c.is_ascii_digit());
            if at(line, m.end()).is_some_and(is_word) || dotted_more {
                continue;
            }
            let Some(o) = ipv4_octets(m.as_str()) else { continue };
            if o == [0, 0, 0, 0] || o[0] == 127 || o == [255, 255, 255, 255] || after_version_word(line, m.start()) {
                continue;
            }
            out.push(Hit::new(Detector::Ipv4, m.start(), m.end()));
        }
    }

    /// Candidates are runs of hex groups and colons (optionally ending in a dotted quad); std's parser decides.
    /// At least two non-empty groups are required, which skips `::`, `::1` and Rust/C++ paths like `std::io`
    /// (those also fail the word-boundary check).
    fn ipv6s(&self, line: &str, out: &mut Vec<Hit>) {
        for m in self.re.ipv6.find_iter(line) {
            let mut cand = m.as_str();
            if cand.len() < 3 || cand.bytes().filter(|&c| c == b':').count() < 2 {
                continue;
            }
            if before(line, m.start()).is_some_and(|c| is_word(c) || c == b':' || c == b'.') {
                continue;
            }
            if at(line, m.end()).is_some_and(|c| is_word(c) || c == b'.') {
                continue;
            }
            if cand.ends_with(':') && !cand.ends_with("::") {
                cand = &cand[..cand.len() - 1];
            }
            if cand.parse::<std::net::Ipv6Addr>().is_err() || cand.split(':').filter(|g| !g.is_empty()).count() < 2 {
                continue;
            }
            out.push(Hit::new(Detector::Ipv6, m.start(), m.start() + cand.len()));
        }
    }
}

/// Which digit detectors can match on a line that hit a digit shape. A non-overlapping prefilter pass can
/// hide one digit shape behind another (`415-555-2671 4111…`: the card shape starts where the phone does),
/// so the line is re-checked here against every digit shape, exactly as the prefilter states them but on
/// digit groups found in one byte pass — far cheaper than running five regexes.
fn digit_shapes(b: &[u8]) -> u32 {
    let mut sched = 0;
    if memchr::memchr(b'+', b).is_some() {
        sched |= bit(Detector::Phone);
    }
    let colons = b.iter().filter(|&&c| c == b':').count();
    if colons >= 6 || (colons >= 2 && memmem::find(b, b"::").is_some()) {
        sched |= bit(Detector::Ipv6);
    }
    // The last four digit groups as (start, end), most recent last; no allocation.
    let mut last = [(0usize, 0usize); 4];
    let (mut n, mut run_digits, mut i) = (0usize, 0usize, 0usize);
    let len = |g: (usize, usize)| g.1 - g.0;
    // The byte between two groups when exactly one separates them.
    let sep = |a: (usize, usize), c: (usize, usize)| if c.0 == a.1 + 1 { b[a.1] } else { 0 };
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let g = (start, i);
        last = [last[1], last[2], last[3], g];
        n += 1;
        run_digits = if n >= 2 && matches!(sep(last[2], g), b' ' | b'-') { run_digits + len(g) } else { len(g) };
        if run_digits >= 13 {
            sched |= bit(Detector::PaymentCard);
        }
        if n >= 3 {
            let (g0, g1) = (last[1], last[2]);
            if (len(g0), len(g1), len(g)) == (3, 2, 4) && sep(g0, g1) == b'-' && sep(g1, g) == b'-' {
                sched |= bit(Detector::UsSsn);
            }
            let gap_ok = g1.0 > g0.1 && g1.0 - g0.1 <= 2 && b[g0.1..g1.0].iter().all(|c| b" .-)".contains(c));
            if len(g0) >= 3 && len(g1) == 3 && len(g) >= 4 && gap_ok && matches!(sep(g1, g), b' ' | b'.' | b'-') {
                sched |= bit(Detector::Phone);
            }
        }
        if n >= 4 && last.iter().all(|&x| len(x) <= 3) && last.windows(2).all(|w| sep(w[0], w[1]) == b'.') {
            sched |= bit(Detector::Ipv4);
        }
    }
    sched
}

/// Overlap resolution: most specific detector first, then earliest, then longest.
fn priority(d: Detector) -> u8 {
    match d {
        Detector::PrivateKey => 0,
        Detector::Jwt => 1,
        Detector::AwsKey => 2,
        Detector::GithubToken => 3,
        Detector::SlackToken => 4,
        Detector::StripeKey => 5,
        Detector::SecretAssignment => 6,
        Detector::Iban => 7,
        Detector::PaymentCard => 8,
        Detector::UsSsn => 9,
        Detector::Email => 10,
        Detector::Ipv6 => 11,
        Detector::Ipv4 => 12,
        Detector::Phone => 13,
    }
}

/// Keeps a non-overlapping subset of `hits`, preferring higher priority; returns it sorted by start.
/// O(n log n) with an interval map, so a huge line with many findings stays linear-ish.
fn resolve(mut hits: Vec<Hit>) -> Vec<Hit> {
    if hits.len() > 1 {
        hits.sort_by_key(|h| (priority(h.det), h.start, std::cmp::Reverse(h.end)));
        let mut kept: BTreeMap<usize, Hit> = BTreeMap::new();
        for h in hits {
            let clash_before = kept.range(..=h.start).next_back().is_some_and(|(_, k)| k.end > h.start);
            let clash_after = kept.range(h.start..h.end).next().is_some();
            if !clash_before && !clash_after && h.end > h.start {
                kept.insert(h.start, h);
            }
        }
        hits = kept.into_values().collect();
    }
    hits
}
