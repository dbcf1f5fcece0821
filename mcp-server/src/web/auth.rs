//! Who is signed in to the web UI, and how they got there.
//!
//! People are `[[humans]]` of the configuration; their web role comes from their groups through `[web]`'s
//! mapping, read at every request, so removing someone from the configuration signs them out everywhere.
//! Secrets are stored hashed: passwords with argon2id, login links and session ids (random 256-bit values) with
//! sha256. People signed in through `[web.oidc]` are the exception: their groups come from the ID token and are
//! kept with the session ([`Credential::Oidc`]).

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use gateway_core::config::{Config, HumanConfig, WebConfig};
use gateway_core::identity::{Identity, IdentityKind};
use gateway_core::store::{Store, now_ms};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use subtle::ConstantTimeEq as _;

/// What a signed-in person may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read sessions, search, export.
    Reviewer,
    /// Also vote in `/approvals`.
    Approver,
    /// Everything, including the gateway's own audit session.
    Admin,
}

impl Role {
    /// The highest role the groups grant, if any.
    pub fn of(web: &WebConfig, groups: &[String]) -> Option<Role> {
        let member = |wanted: &[String]| groups.iter().any(|g| wanted.contains(g));
        if member(&web.admin_groups) {
            Some(Role::Admin)
        } else if member(&web.approver_groups) {
            Some(Role::Approver)
        } else if member(&web.reviewer_groups) {
            Some(Role::Reviewer)
        } else {
            None
        }
    }
}

/// How a person proves who they are.
#[derive(Debug)]
pub enum Credential {
    /// A local account's password.
    Password { subject: String, password: String },
    /// A one-time link issued by an admin.
    LoginLink { token: String },
    /// An ID token from the `[web.oidc]` provider, already verified: who it names and their groups. The person
    /// need not be in `[[humans]]`; the groups are kept with the session.
    Oidc { subject: String, groups: Vec<String> },
}

impl Credential {
    /// Stored with the web session, for the audit trail.
    fn method(&self) -> &'static str {
        match self {
            Credential::Password { .. } => "password",
            Credential::LoginLink { .. } => "login_link",
            Credential::Oidc { .. } => "oidc",
        }
    }
}

/// Why a sign-in was refused. Recorded in the audit session; the browser only ever sees one generic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownSubject,
    NoPassword,
    WrongPassword,
    NoRole,
    BadLoginLink,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::UnknownSubject => "not a configured human",
            Refusal::NoPassword => "no local password set",
            Refusal::WrongPassword => "wrong password",
            Refusal::NoRole => "no web role (groups match none of [web] reviewer/approver/admin_groups)",
            Refusal::BadLoginLink => "login link unknown, used or expired",
        }
    }
}

/// A signed-in browser, as found from its cookie.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub identity: Identity,
    pub role: Role,
    pub csrf: String,
}

impl WebSession {
    /// Constant-time comparison, so response timing tells nothing about the expected token.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

/// Accounts, login links and web sessions in the store.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
}

impl Accounts {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Set (or replace) a human's password.
    pub async fn set_password(&self, subject: &str, password: &str) -> anyhow::Result<()> {
        let hash = hash_password(password)?;
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        sqlx::query("DELETE FROM web_users WHERE subject = $1").bind(subject).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO web_users (subject, password_hash, created_ms, updated_ms) VALUES ($1, $2, $3, $3)")
            .bind(subject)
            .bind(hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // A new password ends the person's open sessions (it is often set because the old one leaked).
        sqlx::query("DELETE FROM web_sessions WHERE subject = $1").bind(subject).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Issue a one-time login link token for a human; only its hash is stored.
    pub async fn issue_login_link(&self, subject: &str, lifetime_ms: i64) -> anyhow::Result<String> {
        let token = random_token();
        let now = now_ms();
        sqlx::query(
            "INSERT INTO web_login_tokens (token_hash, subject, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(&token))
        .bind(subject)
        .bind(now)
        .bind(now + lifetime_ms)
        .execute(self.store.pool())
        .await?;
        Ok(token)
    }

    /// Check a credential; on success the human it belongs to.
    pub async fn sign_in(
        &self,
        config: &Config,
        credential: &Credential,
    ) -> anyhow::Result<Result<HumanConfig, (Option<String>, Refusal)>> {
        let subject = match credential {
            Credential::Password { subject, password } => {
                let row = sqlx::query("SELECT password_hash FROM web_users WHERE subject = $1")
                    .bind(subject)
                    .fetch_optional(self.store.pool())
                    .await?;
                let Some(row) = row else {
                    // Spend the same time as a real check, so timing does not tell which accounts exist.
                    let _ = hash_password(password);
                    return Ok(Err((Some(subject.clone()), Refusal::NoPassword)));
                };
                let stored: String = row.try_get(0)?;
                if argon2().verify_password(password.as_bytes(), stored.as_str()).is_err() {
                    return Ok(Err((Some(subject.clone()), Refusal::WrongPassword)));
                }
                subject.clone()
            }
            Credential::LoginLink { token } => {
                let hash = sha256_hex(token);
                let now = now_ms();
                // Spending the link and reading its subject in one statement each, guarded by `used_ms IS NULL`,
                // makes a link work exactly once even when two requests race.
                let spent = sqlx::query(
                    "UPDATE web_login_tokens SET used_ms = $1 WHERE token_hash = $2 AND used_ms IS NULL \
                     AND expires_ms > $1",
                )
                .bind(now)
                .bind(&hash)
                .execute(self.store.pool())
                .await?;
                if spent.rows_affected() != 1 {
                    return Ok(Err((None, Refusal::BadLoginLink)));
                }
                let row = sqlx::query("SELECT subject FROM web_login_tokens WHERE token_hash = $1")
                    .bind(&hash)
                    .fetch_one(self.store.pool())
                    .await?;
                row.try_get(0)?
            }
            Credential::Oidc { subject, groups } => {
                if Role::of(&config.web, groups).is_none() {
                    return Ok(Err((Some(subject.clone()), Refusal::NoRole)));
                }
                return Ok(Ok(HumanConfig {
                    subject: subject.clone(),
                    groups: groups.clone(),
                    slack_user: None,
                    discord_user: None,
                }));
            }
        };
        let Some(human) = config.humans.iter().find(|h| h.subject == subject) else {
            return Ok(Err((Some(subject), Refusal::UnknownSubject)));
        };
        if Role::of(&config.web, &human.groups).is_none() {
            return Ok(Err((Some(subject), Refusal::NoRole)));
        }
        Ok(Ok(human.clone()))
    }

    /// Open a web session; returns the cookie value (shown once, stored hashed).
    pub async fn open_session(
        &self,
        subject: &str,
        credential: &Credential,
        lifetime_ms: i64,
    ) -> anyhow::Result<String> {
        let id = random_token();
        let now = now_ms();
        // Only OIDC sessions carry groups; local ones read them from `[[humans]]` at every request.
        let groups_json = match credential {
            Credential::Oidc { groups, .. } => Some(serde_json::to_string(groups)?),
            _ => None,
        };
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, subject, csrf, method, created_ms, expires_ms, groups_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(sha256_hex(&id))
        .bind(subject)
        .bind(random_token())
        .bind(credential.method())
        .bind(now)
        .bind(now + lifetime_ms)
        .bind(groups_json)
        .execute(self.store.pool())
        .await?;
        // Expired sessions are swept opportunistically; there are few of them.
        sqlx::query("DELETE FROM web_sessions WHERE expires_ms <= $1").bind(now).execute(self.store.pool()).await?;
        Ok(id)
    }

    /// The signed-in person behind a cookie value, if the session is live and they still have a role.
    pub async fn session(&self, config: &Config, cookie: &str) -> anyhow::Result<Option<WebSession>> {
        let row = sqlx::query(
            "SELECT subject, csrf, method, groups_json FROM web_sessions WHERE id_hash = $1 AND expires_ms > $2",
        )
        .bind(sha256_hex(cookie))
        .bind(now_ms())
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let subject: String = row.try_get(0)?;
        let csrf: String = row.try_get(1)?;
        let method: String = row.try_get(2)?;
        let groups = if method == "oidc" {
            // The provider vouched for these groups at sign-in; a session outlives no change of `[web] *_groups`.
            let Some(json) = row.try_get::<Option<String>, _>(3)? else { return Ok(None) };
            serde_json::from_str::<Vec<String>>(&json)?
        } else {
            let Some(human) = config.humans.iter().find(|h| h.subject == subject) else { return Ok(None) };
            human.groups.clone()
        };
        let Some(role) = Role::of(&config.web, &groups) else { return Ok(None) };
        let identity = Identity { subject, groups, kind: IdentityKind::Human, token_id: None, on_behalf_of: None };
        Ok(Some(WebSession { identity, role, csrf }))
    }

    /// Sign out: the session id stops working at once.
    pub async fn close_session(&self, cookie: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(sha256_hex(cookie))
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

/// argon2id with the crate's default (OWASP-recommended) cost.
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let hash = argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}

/// 256 random bits, hex.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub(super) fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_highest_group() {
        let web = WebConfig::default();
        assert_eq!(Role::of(&web, &["reviewer".into(), "admin".into()]), Some(Role::Admin));
        assert_eq!(Role::of(&web, &["approver".into()]), Some(Role::Approver));
        assert_eq!(Role::of(&web, &["dba".into()]), None);
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(argon2().verify_password(b"correct horse", hash.as_str()).is_ok());
        assert!(argon2().verify_password(b"wrong", hash.as_str()).is_err());
    }
}
