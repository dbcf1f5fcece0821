//! Credentials by reference. Target credentials live only in the gateway: the config names where a secret is
//! (an env var, a file, or — for development only — inline), the vault resolves it at start-up, and every
//! resolved value is handed to the masking engine's credential scrubber so it can never leave in output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where a secret comes from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialRef {
    /// Read from this environment variable at start-up.
    Env(String),
    /// Read from this file (trailing newline trimmed), e.g. a mounted secret.
    File(PathBuf),
    /// The value itself. For development only: it sits in the config file in clear.
    Inline(String),
}

// Never print an inline secret, not even in debug logs.
impl fmt::Debug for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialRef::Env(v) => write!(f, "Env({v:?})"),
            CredentialRef::File(p) => write!(f, "File({p:?})"),
            CredentialRef::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

/// A resolved secret. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the connector that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl CredentialRef {
    /// Resolve the reference. `owner` names the connection (or setting) for error messages.
    pub fn resolve(&self, owner: &str) -> Result<Secret> {
        let value = match self {
            CredentialRef::Env(var) => std::env::var(var).map_err(|_| Error::Credential {
                connection: owner.to_owned(),
                message: format!("environment variable {var} is not set"),
            })?,
            CredentialRef::File(path) => std::fs::read_to_string(path)
                .map_err(|e| Error::Credential {
                    connection: owner.to_owned(),
                    message: format!("cannot read {}: {e}", path.display()),
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            CredentialRef::Inline(v) => {
                tracing::warn!(owner, "inline credential in config: use env or file outside development");
                v.clone()
            }
        };
        if value.is_empty() {
            return Err(Error::Credential { connection: owner.to_owned(), message: "credential is empty".into() });
        }
        Ok(Secret(value))
    }
}

/// Every secret the gateway holds, by owner. Used to build the credential scrubber.
#[derive(Debug, Default)]
pub struct Vault {
    secrets: BTreeMap<String, Secret>,
}

impl Vault {
    /// Remember a resolved secret under its owner's name (`connection name` or `connection.field`).
    pub fn insert(&mut self, owner: impl Into<String>, secret: Secret) {
        self.secrets.insert(owner.into(), secret);
    }

    /// The secret of an owner, if any.
    pub fn get(&self, owner: &str) -> Option<&Secret> {
        self.secrets.get(owner)
    }

    /// All secret values, for the scrubber. The only place values leave the vault in bulk.
    pub fn values(&self) -> impl Iterator<Item = String> + '_ {
        self.secrets.values().map(|s| s.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_secret_is_not_printed_by_debug() {
        let r = CredentialRef::Inline("hunter2-hunter2".into());
        assert!(!format!("{r:?}").contains("hunter2"));
        let s = r.resolve("shop").expect("inline resolves");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-hunter2");
    }

    #[test]
    fn missing_env_var_names_the_variable_not_a_value() {
        let err = CredentialRef::Env("AIRLOCK_TEST_SURELY_UNSET_VAR".into()).resolve("shop").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("AIRLOCK_TEST_SURELY_UNSET_VAR") && msg.contains("shop"), "{msg}");
    }

    #[test]
    fn file_secret_is_trimmed_of_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret-value\n").expect("write");
        let s = CredentialRef::File(path).resolve("shop").expect("resolves");
        assert_eq!(s.expose(), "s3cret-value");
    }
}
