//! The crate's one error type. Every variant says where the failure came from, so the MCP layer can map it to
//! a clear message for the agent without string matching.

use std::path::PathBuf;

/// Errors of the gateway core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or an `AIRLOCK_*` override is invalid; `key` is the dotted path.
    #[error("config {file}: {key}: {message}")]
    Config { file: String, key: String, message: String },

    /// A policy file is invalid. `rule` is the rule's name (or index), `key` the offending key.
    #[error("policy {file}: rule {rule}: {key}: {message}")]
    Policy { file: PathBuf, rule: String, key: String, message: String },

    /// A credential reference could not be resolved (the value itself is never included).
    #[error("credential for {connection}: {message}")]
    Credential { connection: String, message: String },

    /// The store (SQLite or Postgres) failed; nothing was executed.
    #[error("store unavailable: {0}")]
    Store(#[from] sqlx::Error),

    /// A store migration failed.
    #[error("store migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The recorder refused an append (e.g. the chain moved under us too many times).
    #[error("recording failed: {0}")]
    Record(String),

    /// Authentication failed: missing, malformed, unknown or revoked token.
    #[error("authentication failed: {0}")]
    Auth(String),

    /// The connection name is not configured (or not visible to the caller).
    #[error("unknown connection {0:?}")]
    UnknownConnection(String),

    /// The target (database, host, cluster) failed while executing the call.
    #[error("{connection}: {message}")]
    Target { connection: String, message: String },

    /// An SSH host presented a key other than the pinned one: nothing was sent to it.
    #[error(
        "{connection}: host key mismatch: the host presented {presented}, but the connection pins {pinned}; \
             refusing to connect (possible man-in-the-middle, or the host was rebuilt: update host_key)"
    )]
    HostKeyMismatch { connection: String, presented: String, pinned: String },

    /// The call did not finish within its time limit.
    #[error("{connection}: timed out after {seconds} s")]
    Timeout { connection: String, seconds: u64 },

    /// Masking could not be set up (bad column glob, ...).
    #[error("masking: {0}")]
    Mask(String),

    /// The request itself is invalid (too large, bad argument).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// An admin change (policy overlay, freeze) was refused: unknown rule, bad value, invalid result.
    #[error("{0}")]
    AdminChange(String),
}

/// Result alias for the gateway core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
