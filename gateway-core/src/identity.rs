//! Who is calling. Agents authenticate with Airlock API tokens; the identity (subject and groups) feeds the
//! policy engine and every record.
//!
//! A token reads `alk_<id>_<secret>`. Only `sha256(secret)` is stored; the id finds the row, and the hash is
//! compared in constant time, so neither the store nor timing reveals a usable token.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::store::{Store, now_ms};

/// Whether a principal is a program or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Agent,
    Human,
    /// The gateway itself (audit events).
    Gateway,
}

impl IdentityKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Agent => "agent",
            IdentityKind::Human => "human",
            IdentityKind::Gateway => "gateway",
        }
    }
}

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Stable name: the token's name for agents (`autogen-ci`), the user for humans.
    pub subject: String,
    pub groups: Vec<String>,
    pub kind: IdentityKind,
    /// The API token id this identity authenticated with, if any (lets a revocation cut off open sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The human the agent acts for: from the token's claim, or asserted by a trusted agent
    /// (`X-Airlock-On-Behalf-Of`). Shown in approvals and recorded with every session and request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// `[identity]`: rules about who may claim what.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Groups whose members may name the human they act for with the `X-Airlock-On-Behalf-Of` header.
    /// Empty (the default): nobody may.
    pub on_behalf_of_groups: Vec<String>,
}

impl IdentityConfig {
    /// May `identity` assert on whose behalf it acts?
    pub fn may_assert_on_behalf_of(&self, identity: &Identity) -> bool {
        identity.groups.iter().any(|g| self.on_behalf_of_groups.contains(g))
    }
}

impl Identity {
    /// An agent identity (tests, dry runs).
    pub fn agent(subject: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            subject: subject.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            kind: IdentityKind::Agent,
            token_id: None,
            on_behalf_of: None,
        }
    }

    /// The gateway's own identity, for audit events.
    pub fn gateway() -> Self {
        Self {
            subject: "airlock".into(),
            groups: Vec::new(),
            kind: IdentityKind::Gateway,
            token_id: None,
            on_behalf_of: None,
        }
    }
}

/// A token as listed (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub groups: Vec<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A freshly created token: `secret` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub info: TokenInfo,
    pub token: String,
}

const TOKEN_PREFIX: &str = "alk_";

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// API tokens in the store.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
}

impl Tokens {
    /// Token operations over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Create a token for an agent named `name` in `groups`.
    pub async fn create(&self, name: &str, groups: &[String]) -> Result<NewToken> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
            return Err(Error::InvalidRequest("token names use letters, digits and - _ . @".into()));
        }
        let id = random_hex(6);
        let secret = random_hex(24);
        let created_ms = now_ms();
        let groups_json = serde_json::to_string(groups).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, groups_json, secret_hash, created_ms, revoked_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&id)
        .bind(name)
        .bind(&groups_json)
        .bind(hash_secret(&secret))
        .bind(created_ms)
        .execute(self.store.pool())
        .await?;
        Ok(NewToken {
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            info: TokenInfo { id, name: name.to_owned(), groups: groups.to_vec(), created_ms, revoked_ms: None },
        })
    }

    /// Every token, newest first.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT id, name, groups_json, created_ms, revoked_ms FROM api_tokens ORDER BY created_ms DESC, id",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let groups: String = r.try_get(2)?;
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    groups: serde_json::from_str(&groups).unwrap_or_default(),
                    created_ms: r.try_get(3)?,
                    revoked_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Revoke by id or name. Returns how many tokens were revoked.
    pub async fn revoke(&self, id_or_name: &str) -> Result<u64> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE (id = $2 OR name = $2) AND revoked_ms IS NULL")
                .bind(now_ms())
                .bind(id_or_name)
                .execute(self.store.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// Authenticate a presented bearer token. The error says why, for the audit log; callers show agents a
    /// generic refusal.
    pub async fn authenticate(&self, presented: &str) -> Result<Identity> {
        let rest = presented
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| Error::Auth("token is not an Airlock API token".into()))?;
        let (id, secret) = rest.split_once('_').ok_or_else(|| Error::Auth("malformed token".into()))?;
        let row = sqlx::query("SELECT name, groups_json, secret_hash, revoked_ms FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        // Hash even when the id is unknown so both paths cost the same.
        let presented_hash = hash_secret(secret);
        let Some(row) = row else {
            return Err(Error::Auth("unknown token".into()));
        };
        let stored_hash: String = row.try_get(2)?;
        if !bool::from(presented_hash.as_bytes().ct_eq(stored_hash.as_bytes())) {
            return Err(Error::Auth("unknown token".into()));
        }
        let revoked: Option<i64> = row.try_get(3)?;
        if revoked.is_some() {
            return Err(Error::Auth("token revoked".into()));
        }
        let groups: String = row.try_get(1)?;
        Ok(Identity {
            subject: row.try_get(0)?,
            groups: serde_json::from_str(&groups).unwrap_or_default(),
            kind: IdentityKind::Agent,
            token_id: Some(id.to_owned()),
            on_behalf_of: None,
        })
    }

    /// Is this token id still valid? (Checked on every call, so revocation cuts off open sessions.)
    pub async fn is_active(&self, token_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT revoked_ms FROM api_tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>(0)?.is_none(),
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn tokens() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}/a.db", dir.path().display()), None).await.expect("store");
        store.migrate().await.expect("migrate");
        (dir, Tokens::new(store))
    }

    #[tokio::test]
    async fn created_token_authenticates_as_its_name_and_groups() {
        let (_d, t) = tokens().await;
        let new = t.create("autogen-ci", &["agents".into()]).await.expect("create");
        let id = t.authenticate(&new.token).await.expect("authenticates");
        assert_eq!(id.subject, "autogen-ci");
        assert_eq!(id.groups, vec!["agents".to_owned()]);
        assert_eq!(id.token_id.as_deref(), Some(new.info.id.as_str()));
    }

    #[tokio::test]
    async fn store_keeps_no_usable_secret() {
        let (_d, t) = tokens().await;
        let new = t.create("a", &[]).await.expect("create");
        let secret = new.token.rsplit('_').next().expect("secret part");
        let rows = sqlx::query("SELECT secret_hash FROM api_tokens").fetch_all(t.store.pool()).await.expect("rows");
        let stored: String = rows[0].try_get(0).expect("hash");
        assert!(!stored.contains(secret));
    }

    #[tokio::test]
    async fn revoked_and_wrong_tokens_are_refused() {
        let (_d, t) = tokens().await;
        let new = t.create("a", &[]).await.expect("create");
        let mut wrong = new.token.clone();
        wrong.pop();
        wrong.push(if new.token.ends_with('0') { '1' } else { '0' });
        assert!(t.authenticate(&wrong).await.is_err());
        assert!(t.authenticate("Bearer nonsense").await.is_err());
        assert_eq!(t.revoke("a").await.expect("revoke"), 1);
        let err = t.authenticate(&new.token).await.unwrap_err().to_string();
        assert!(err.contains("revoked"), "{err}");
        assert!(!t.is_active(&new.info.id).await.expect("lookup"));
    }
}
