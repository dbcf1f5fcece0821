//! The crate's one error type. Variants say which side failed (Slack's API, our config, a signature, the
//! gateway), so a log line or an agent-facing message names the cause without string matching.

/// Errors of the approval bots.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bot's configuration is unusable (a credential that does not resolve, a bad base URL, TLS set-up).
    #[error("slack config: {0}")]
    Config(String),

    /// The HTTP request to Slack failed (connect, timeout, reading the answer) after all retries.
    #[error("slack {method}: request failed: {message}")]
    Transport { method: String, message: String },

    /// Slack answered with an HTTP error status after all retries.
    #[error("slack {method}: HTTP {status}")]
    Status { method: String, status: u16 },

    /// Slack kept rate limiting the call (`429`) longer than we are willing to wait.
    #[error("slack {method}: rate limited (Retry-After {retry_after_s} s)")]
    RateLimited { method: String, retry_after_s: u64 },

    /// Slack answered `{"ok": false, "error": …}`; `error` is Slack's code (`channel_not_found`, …).
    #[error("slack {method}: {error}")]
    Api { method: String, error: String },

    /// Slack's answer (or an incoming payload) did not have the shape we expect.
    #[error("slack {context}: unexpected payload: {message}")]
    Payload { context: String, message: String },

    /// A request claiming to come from Slack failed signature verification.
    #[error("slack signature: {0}")]
    Signature(#[from] crate::slack::signature::SignatureError),

    /// The Socket Mode connection failed.
    #[error("slack socket mode: {0}")]
    Socket(String),

    /// The Discord bot's configuration is unusable (token, public key, base URL).
    #[error("discord config: {0}")]
    DiscordConfig(String),

    /// The HTTP request to Discord failed (connect, timeout, reading the answer) after all retries.
    #[error("discord {route}: request failed: {message}")]
    DiscordTransport { route: String, message: String },

    /// Discord answered with an HTTP error status; `message` is Discord's own (`Unknown Channel (10003)`).
    #[error("discord {route}: HTTP {status}: {message}")]
    DiscordStatus { route: String, status: u16, message: String },

    /// Discord kept rate limiting the call (`429`) longer than we are willing to wait.
    #[error("discord {route}: rate limited (retry_after {retry_after_ms} ms)")]
    DiscordRateLimited { route: String, retry_after_ms: u64 },

    /// Discord's answer (or an incoming interaction) did not have the shape we expect.
    #[error("discord {context}: unexpected payload: {message}")]
    DiscordPayload { context: String, message: String },

    /// A request claiming to come from Discord failed signature verification.
    #[error("discord signature: {0}")]
    DiscordSignature(#[from] crate::discord::signature::SignatureError),

    /// The Discord Gateway (WebSocket) connection failed.
    #[error("discord gateway: {0}")]
    DiscordGateway(String),

    /// The gateway (store, recorder) failed while handling a vote.
    #[error(transparent)]
    Gateway(#[from] gateway_core::Error),
}

/// Result alias for the approval bots.
pub type Result<T, E = Error> = std::result::Result<T, E>;

// The Notifier trait speaks gateway-core's error type: a Slack (Discord) failure becomes a target failure named
// "slack" ("discord"), which the gateway puts in the agent's fail-closed message ("could not be posted (…)").
impl From<Error> for gateway_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Gateway(inner) => inner,
            other => {
                let platform = match other {
                    Error::DiscordConfig(_)
                    | Error::DiscordTransport { .. }
                    | Error::DiscordStatus { .. }
                    | Error::DiscordRateLimited { .. }
                    | Error::DiscordPayload { .. }
                    | Error::DiscordSignature(_)
                    | Error::DiscordGateway(_) => "discord",
                    _ => "slack",
                };
                gateway_core::Error::Target { connection: platform.into(), message: other.to_string() }
            }
        }
    }
}
