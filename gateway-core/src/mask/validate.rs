//! Validators: the checks that turn a regex *candidate* into a *finding*.
//!
//! The regexes in [`super::detect`] are deliberately loose (they only describe a shape); everything that
//! keeps false positives down lives here as plain, allocation-free functions over bytes: Luhn and issuer
//! prefixes for cards, area/group/serial rules for SSNs, the IBAN length table and mod-97, IPv4 octets,
//! base64url + JSON for JWT headers, and the word-boundary helpers every detector uses (the `regex` crate
//! has no look-around, so boundaries are checked by hand around each candidate).

use super::Detector;
use super::detect::Hit;

/// ASCII letter, digit or `_`: the bytes that make a candidate "part of a longer word".
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `i`, if any.
pub(crate) fn before(text: &str, i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| text.as_bytes().get(j).copied())
}

/// The byte at `i` (i.e. just after a candidate ending at `i`), if any.
pub(crate) fn at(text: &str, i: usize) -> Option<u8> {
    text.as_bytes().get(i).copied()
}

/// True when the byte at `i` is `.` or `-` followed by a digit: the candidate continues as a longer
/// dotted/dashed number (a version, an order number), so it is not a value on its own.
pub(crate) fn continues_number(text: &str, i: usize) -> bool {
    matches!(at(text, i), Some(b'.' | b'-')) && at(text, i + 1).is_some_and(|b| b.is_ascii_digit())
}

/// Luhn checksum over ASCII digits (other bytes are ignored, so separators may be left in).
pub(crate) fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in digits.iter().rev().filter(|b| b.is_ascii_digit()) {
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// Issuer prefixes (IIN ranges) and the lengths each network issues. Numbers starting with 0, 1, 7, 8 or 9
/// (millisecond timestamps, most internal ids) are never cards, which removes most Luhn coincidences.
pub(crate) fn card_prefix_plausible(digits: &[u8]) -> bool {
    let n = digits.len();
    let prefix =
        |k: usize| -> u32 { digits.iter().take(k).fold(0u32, |acc, &b| acc * 10 + u32::from(b.wrapping_sub(b'0'))) };
    match digits.first() {
        Some(b'4') => matches!(n, 13 | 16 | 19),                     // Visa
        Some(b'2') => (2221..=2720).contains(&prefix(4)) && n == 16, // Mastercard 2-series
        Some(b'5') => (matches!(prefix(2), 51..=55) && n == 16) || (matches!(prefix(2), 50 | 56..=58) && n >= 13), // MC, Maestro
        Some(b'3') => match prefix(2) {
            34 | 37 => n == 15,                                  // Amex
            35 => (3528..=3589).contains(&prefix(4)) && n >= 16, // JCB
            30 | 36 | 38 | 39 => n >= 14,                        // Diners
            _ => false,
        },
        Some(b'6') => n >= 16 || (prefix(2) == 67 && n >= 13), // Discover, UnionPay, Maestro
        _ => false,
    }
}

/// US SSN rules: area not 000, 666 or 900–999; group not 00; serial not 0000.
pub(crate) fn ssn_valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Parses `AAA?GG?SSSS` digits (separators skipped) and applies [`ssn_valid`].
pub(crate) fn ssn_digits_valid(s: &str) -> bool {
    let d: Vec<u32> = s.bytes().filter(u8::is_ascii_digit).map(|b| u32::from(b - b'0')).collect();
    if d.len() != 9 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d[r].iter().fold(0, |acc, x| acc * 10 + x);
    ssn_valid(num(0..3), num(3..5), num(5..9))
}

/// IBAN length per country (ISO 13616 registry). Unknown countries are not IBANs.
pub(crate) fn iban_length(country: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE.iter().find(|(c, _)| c.as_slice() == country).map(|&(_, n)| n)
}

/// ISO 7064 mod-97-10 over a compact IBAN (`[A-Z0-9]`): rotate the first four characters to the end,
/// letters become 10..35, and the whole number must be ≡ 1 (mod 97). Computed digit by digit.
pub(crate) fn iban_mod97_ok(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let mut rem = 0u32;
    for &b in compact[4..].iter().chain(&compact[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// Dotted quad with every octet 0–255 and no leading zeros (`010.1.1.1` is ambiguous octal, not an address
/// anyone logs).
pub(crate) fn ipv4_octets(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split('.');
    for slot in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p.starts_with('0')) {
            return None;
        }
        *slot = p.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Decodes unpadded (or padded) base64url. Returns `None` on any invalid byte.
pub(crate) fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A JWT header must decode to a JSON object carrying a string `alg`: this is what separates a token from
/// any other `eyJ…` base64 blob.
pub(crate) fn jwt_header_ok(segment: &str) -> bool {
    let Some(bytes) = base64url_decode(segment) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => map.get("alg").is_some_and(serde_json::Value::is_string),
        _ => false,
    }
}

/// Tries every contiguous sub-run of digit `groups` (one run of groups joined by single spaces or dashes) as
/// a card: 13–19 digits, one separator kind, groups of 4–6 then 3–6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3) unless
/// it is a single group, Luhn and issuer prefix. The first group is unusable when glued to a word, a decimal
/// point or a `+` (an identifier, a fraction, a phone), the last when glued to a word or followed by decimals.
pub(crate) fn card_in_run(line: &str, groups: &[(usize, usize)], out: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let (Some(&(first, _)), Some(&(_, last))) = (groups.first(), groups.last()) else { return };
    let lead_bad = before(line, first).is_some_and(|c| is_word(c) || c == b'.' || c == b'+');
    let trail_bad = at(line, last).is_some_and(is_word)
        || (at(line, last) == Some(b'.') && at(line, last + 1).is_some_and(|c| c.is_ascii_digit()));
    let usable = groups.len() - usize::from(trail_bad);
    let mut g = usize::from(lead_bad);
    while g < usable {
        let mut best = None;
        let (mut digits, mut n) = ([0u8; 19], 0);
        for (j, &(s, e)) in groups.iter().enumerate().take(usable).skip(g) {
            let len = e - s;
            if n + len > 19 || (j > g && b[s - 1] != b[groups[g + 1].0 - 1]) {
                break;
            }
            digits[n..n + len].copy_from_slice(&b[s..e]);
            n += len;
            // A multi-group card does not start with a group glued to the previous one by another kind of
            // separator: in `415-555-2671 4111 1111 1111 1111` the `2671` belongs to the phone number.
            let glued_differently = g > 0 && j > g && b[groups[g].0 - 1] != b[groups[g + 1].0 - 1];
            let shape_ok = j == g
                || (!glued_differently
                    && groups[g..=j]
                        .iter()
                        .enumerate()
                        .all(|(k, &(s, e))| (if k == 0 { 4 } else { 3 }..=6).contains(&(e - s))));
            if n >= 13 && shape_ok && luhn_valid(&digits[..n]) && card_prefix_plausible(&digits[..n]) {
                best = Some(j);
            }
        }
        match best {
            Some(j) => {
                out.push(Hit::new(Detector::PaymentCard, groups[g].0, groups[j].1));
                g = j + 1;
            }
            None => g += 1,
        }
    }
}

/// End of an E.164 number starting with `+` at `start`: groups of digits joined by single spaces, dashes or
/// dots, one optional `(…)` group; 10–15 digits without separators, 9–15 with. The longest prefix that ends
/// cleanly wins, so `+44 20 7946 0958 2024-05-01` stops before the date.
pub(crate) fn e164_end(line: &str, start: usize) -> Option<usize> {
    let b = line.as_bytes();
    let (mut i, mut digits, mut seps, mut parens) = (start + 1, 0usize, 0usize, 0usize);
    let mut best = None;
    loop {
        let open = b.get(i) == Some(&b'(');
        if open {
            if parens > 0 {
                break;
            }
            i += 1;
        }
        let g = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == g || (open && b.get(i) != Some(&b')')) {
            break;
        }
        digits += i - g;
        if open {
            i += 1;
            parens += 1;
        }
        if digits > 15 {
            break;
        }
        let min = if seps == 0 && parens == 0 { 10 } else { 9 };
        let next = at(line, i);
        let end_ok = match next {
            None | Some(b' ') => true,
            Some(c) if is_word(c) => false,
            Some(_) => !continues_number(line, i),
        };
        if digits >= min && end_ok {
            best = Some(i);
        }
        match next {
            Some(b' ' | b'-' | b'.') if at(line, i + 1).is_some_and(|c| c.is_ascii_digit() || c == b'(') => {
                seps += 1;
                i += 1;
            }
            Some(b'(') => {}
            _ => break,
        }
    }
    best
}

/// True when the word right before `i` (skipping spaces, `=`, `:`) is `version`, `ver` or `v`.
pub(crate) fn after_version_word(line: &str, i: usize) -> bool {
    let head = line[..i].trim_end_matches([' ', '=', ':', '"', '\'']);
    let word_start = head.bytes().rposition(|c| !c.is_ascii_alphabetic()).map_or(0, |p| p + 1);
    let word = &head[word_start..];
    ["version", "ver", "v"].iter().any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_off_by_one() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(!luhn_valid(b"4111111111111112"));
    }

    #[test]
    fn card_prefixes_follow_networks() {
        assert!(card_prefix_plausible(b"4111111111111111"));
        assert!(card_prefix_plausible(b"5555555555554444"));
        assert!(card_prefix_plausible(b"2223003122003222"));
        assert!(card_prefix_plausible(b"378282246310005"));
        assert!(!card_prefix_plausible(b"1714566645123"), "millisecond timestamp");
        assert!(!card_prefix_plausible(b"37828224631000"), "amex is 15 digits");
    }

    #[test]
    fn ssn_rules_reject_reserved_ranges() {
        assert!(ssn_digits_valid("123-45-6789"));
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"] {
            assert!(!ssn_digits_valid(bad), "{bad}");
        }
    }

    #[test]
    fn iban_checks_length_table_and_mod97() {
        assert_eq!(iban_length(b"DE"), Some(22));
        assert_eq!(iban_length(b"US"), None);
        assert!(iban_mod97_ok(b"DE89370400440532013000"));
        assert!(iban_mod97_ok(b"GB29NWBK60161331926819"));
        assert!(!iban_mod97_ok(b"DE89370400440532013001"));
    }

    #[test]
    fn ipv4_octets_reject_out_of_range_and_leading_zeros() {
        assert_eq!(ipv4_octets("192.168.0.1"), Some([192, 168, 0, 1]));
        assert_eq!(ipv4_octets("256.1.1.1"), None);
        assert_eq!(ipv4_octets("01.1.1.1"), None);
        assert_eq!(ipv4_octets("1.2.3"), None);
    }

    #[test]
    fn jwt_header_needs_alg() {
        assert!(jwt_header_ok("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
        assert!(!jwt_header_ok("eyJ0eXAiOiJKV1QifQ"), "typ only");
        assert!(!jwt_header_ok("eyJ!!!"));
    }
}
