//! Slack request signing (<https://api.slack.com/authentication/verifying-requests-from-slack>):
//! `v0=` + hex HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{raw body}` keyed with the signing secret.
//! Verification happens on the raw bytes, before any parsing, and rejects timestamps more than five minutes
//! away from our clock in either direction (replays and badly skewed senders alike).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header carrying the request timestamp (seconds since the epoch).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Largest accepted distance between the request timestamp and our clock.
pub const MAX_SKEW_S: i64 = 5 * 60;

/// Why a request was not accepted as coming from Slack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signing secret configured; signed requests cannot be verified")]
    NoSecret,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed request timestamp")]
    BadTimestamp,
    #[error("request timestamp is {skew_s} s away from our clock (limit {MAX_SKEW_S} s)")]
    Stale { skew_s: i64 },
    #[error("malformed signature")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret.as_bytes(), timestamp, body).finalize().into_bytes()))
}

/// Check a request's signature headers against its raw body, with `now_s` as our clock.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
    let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let skew_s = now_s.saturating_sub(ts);
    if skew_s.abs() > MAX_SKEW_S {
        return Err(SignatureError::Stale { skew_s });
    }
    let hex_sig = signature.strip_prefix("v0=").ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    // `verify_slice` compares in constant time.
    mac(secret.as_bytes(), timestamp, body).verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// Seconds since the epoch, by our clock.
pub fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example from Slack's documentation on verifying requests.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn signs_slacks_documented_example() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIG);
    }

    #[test]
    fn accepts_a_fresh_valid_signature_and_rejects_tampering() {
        let now = 1_531_420_618;
        assert_eq!(verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now), Ok(()));
        assert_eq!(verify(SECRET, Some(TS), Some(SIG), b"token=other", now), Err(SignatureError::Mismatch));
        assert_eq!(verify("other-secret", Some(TS), Some(SIG), BODY.as_bytes(), now), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, Some(TS), Some("v0=zz"), BODY.as_bytes(), now), Err(SignatureError::Malformed));
        assert_eq!(
            verify(SECRET, Some(TS), None, BODY.as_bytes(), now),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn rejects_timestamps_more_than_five_minutes_away_either_way() {
        let ts: i64 = 1_531_420_618;
        assert!(verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), ts + 300).is_ok());
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), ts + 301),
            Err(SignatureError::Stale { skew_s: 301 })
        );
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), ts - 301),
            Err(SignatureError::Stale { skew_s: -301 })
        );
    }
}
