//! Signed replay links: a link to one session's replay page that works without signing in, for a short time.
//!
//! Replay links posted to chat normally need a signed-in reviewer. Some teams want everyone in an approval
//! channel to open the story of a call they just approved, without a web account; for the channels listed in
//! `[web] signed_link_channels` the posted link carries `?exp=<unix seconds>&sig=<hmac>`, an HMAC-SHA256 over the
//! session id and the expiry. The signature covers exactly one session: changing the id, the expiry or a single
//! character of the signature makes the link worthless, and it opens nothing else (no search, no other session,
//! no approvals).
//!
//! The key is 256 random bits kept in the store (`link_keys`), created by the first replica that starts, so a
//! link posted by one replica opens on any other.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::WebConfig;
use crate::error::Result;
use crate::store::{Store, now_ms};

/// The `link_keys` row holding the key.
const KEY_NAME: &str = "replay-links-v1";

/// Why a signed link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match this session")]
    BadSignature,
}

/// Signs and checks session-scoped replay links.
#[derive(Clone)]
pub struct ReplayLinks {
    mac: Hmac<Sha256>,
    channels: Vec<String>,
    lifetime_s: i64,
}

impl std::fmt::Debug for ReplayLinks {
    // The key never appears in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayLinks").field("channels", &self.channels).field("lifetime_s", &self.lifetime_s).finish()
    }
}

// === impl ReplayLinks ===

impl ReplayLinks {
    /// Load the store's link key, creating it if this is the first replica to start.
    pub async fn load(store: &Store, web: &WebConfig) -> Result<Self> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        // Two replicas starting together both try to insert; the loser's row is dropped and both read the winner's.
        sqlx::query(
            "INSERT INTO link_keys (name, key_hex, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(KEY_NAME)
        .bind(hex::encode(fresh))
        .bind(now_ms())
        .execute(store.pool())
        .await?;
        let key_hex: String = sqlx::query_scalar("SELECT key_hex FROM link_keys WHERE name = $1")
            .bind(KEY_NAME)
            .fetch_one(store.pool())
            .await?;
        let key = hex::decode(key_hex.trim())
            .map_err(|e| crate::Error::Record(format!("link_keys row {KEY_NAME:?} is not hex: {e}")))?;
        Ok(Self::with_key(&key, web))
    }

    /// Links signed with `key` (tests, and [`ReplayLinks::load`]).
    pub fn with_key(key: &[u8], web: &WebConfig) -> Self {
        #[allow(clippy::expect_used)]
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
        Self {
            mac,
            channels: web.signed_link_channels.clone(),
            lifetime_s: i64::try_from(web.signed_link_lifetime.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    /// Whether links posted to `channel` are signed.
    pub fn signs_for(&self, channel: &str) -> bool {
        self.channels.iter().any(|c| c.eq_ignore_ascii_case(channel))
    }

    /// `base_url` with the signature query appended, valid for the configured lifetime from `now_ms`.
    pub fn sign(&self, base_url: &str, session_id: &str, now_ms: i64) -> String {
        let exp = now_ms / 1000 + self.lifetime_s;
        format!("{base_url}?exp={exp}&sig={}", self.signature(session_id, exp))
    }

    /// Check a link's `exp` and `sig` for `session_id` at `now_ms`. The comparison is constant-time.
    pub fn verify(&self, session_id: &str, exp: i64, sig: &str, now_ms: i64) -> std::result::Result<(), LinkRefusal> {
        let Ok(presented) = hex::decode(sig) else { return Err(LinkRefusal::BadSignature) };
        let mut mac = self.mac.clone();
        mac.update(&message(session_id, exp));
        // Signature first: an expired link with a forged signature says "bad signature", never hints at the key.
        mac.verify_slice(&presented).map_err(|_| LinkRefusal::BadSignature)?;
        if now_ms / 1000 >= exp {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }

    fn signature(&self, session_id: &str, exp: i64) -> String {
        let mut mac = self.mac.clone();
        mac.update(&message(session_id, exp));
        hex::encode(mac.finalize().into_bytes())
    }
}

/// What is signed: a purpose label (so this key's MACs mean nothing elsewhere), the session and the expiry.
fn message(session_id: &str, exp: i64) -> Vec<u8> {
    format!("airlock replay link v1\n{session_id}\n{exp}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> ReplayLinks {
        let web = WebConfig { signed_link_channels: vec!["#sec-review".into()], ..WebConfig::default() };
        ReplayLinks::with_key(b"0123456789abcdef0123456789abcdef", &web)
    }

    fn parts(url: &str) -> (i64, String) {
        let query = url.split_once('?').map(|(_, q)| q).unwrap();
        let (exp, sig) = query.split_once('&').unwrap();
        (exp.strip_prefix("exp=").unwrap().parse().unwrap(), sig.strip_prefix("sig=").unwrap().to_owned())
    }

    #[test]
    fn a_signed_link_opens_its_session_until_it_expires() {
        let l = links();
        let now = 1_800_000_000_000;
        let url = l.sign("https://airlock.example/sessions/s1", "s1", now);
        let (exp, sig) = parts(&url);
        assert_eq!(exp, 1_800_000_000 + 3600);
        assert_eq!(l.verify("s1", exp, &sig, now), Ok(()));
        assert_eq!(l.verify("s1", exp, &sig, now + 3_599_000), Ok(()));
        assert_eq!(l.verify("s1", exp, &sig, now + 3_600_000), Err(LinkRefusal::Expired));
    }

    #[test]
    fn a_signature_is_worthless_for_another_session_expiry_or_key() {
        let l = links();
        let now = 1_800_000_000_000;
        let (exp, sig) = parts(&l.sign("https://x/sessions/s1", "s1", now));
        assert_eq!(l.verify("s2", exp, &sig, now), Err(LinkRefusal::BadSignature));
        assert_eq!(l.verify("s1", exp + 86_400, &sig, now), Err(LinkRefusal::BadSignature));
        assert_eq!(l.verify("s1", exp, "zz", now), Err(LinkRefusal::BadSignature));
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(l.verify("s1", exp, &String::from_utf8_lossy(&flipped), now), Err(LinkRefusal::BadSignature));
        let other = ReplayLinks::with_key(b"another key", &WebConfig::default());
        assert_eq!(other.verify("s1", exp, &sig, now), Err(LinkRefusal::BadSignature));
    }

    #[test]
    fn only_listed_channels_get_signed_links() {
        let l = links();
        assert!(l.signs_for("#sec-review"));
        assert!(l.signs_for("#SEC-review"));
        assert!(!l.signs_for("#db-approvals"));
    }
}
