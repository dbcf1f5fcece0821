//! The Slack approval bot: [`SlackBot`] ties the Web API client, the notifier, the signed HTTP endpoints and
//! Socket Mode together.

pub mod api;
pub mod blocks;
pub mod interactions;
pub mod notifier;
mod routes;
pub mod signature;
pub mod socket;

use std::sync::Arc;

use gateway_core::approval::Notifier;
use gateway_core::config::{SlackConfig, SlackMode};
use gateway_core::pipeline::Gateway;
use gateway_core::vault::Secret;
use tokio_util::sync::CancellationToken;

pub use api::{RetryPolicy, SlackApi};
pub use interactions::Interactions;
pub use notifier::SlackNotifier;
pub use socket::SocketModeTask;

use crate::error::{Error, Result};

/// The Slack bot, built from `[slack]` before the gateway exists (see the crate docs for the wiring order).
#[derive(Debug, Clone)]
pub struct SlackBot {
    api: SlackApi,
    signing_secret: Option<Secret>,
    mode: SlackMode,
}

fn resolve(r: &gateway_core::vault::CredentialRef, owner: &str) -> Result<Secret> {
    r.resolve(owner).map_err(|e| Error::Config(e.to_string()))
}

// === impl SlackBot ===

impl SlackBot {
    /// Resolve the credentials and build the Web API client. Fails when a credential does not resolve.
    pub fn from_config(config: &SlackConfig) -> Result<Self> {
        Self::with_retry(config, RetryPolicy::default())
    }

    /// [`SlackBot::from_config`] with a custom retry policy (tests use short backoffs).
    pub fn with_retry(config: &SlackConfig, retry: RetryPolicy) -> Result<Self> {
        let bot_token = resolve(&config.bot_token, "slack.bot_token")?;
        let signing_secret = config.signing_secret.as_ref().map(|r| resolve(r, "slack.signing_secret")).transpose()?;
        let app_token = config.app_token.as_ref().map(|r| resolve(r, "slack.app_token")).transpose()?;
        url::Url::parse(&config.api_base_url)
            .map_err(|e| Error::Config(format!("slack.api_base_url {:?}: {e}", config.api_base_url)))?;
        let api = SlackApi::new(&config.api_base_url, bot_token, app_token, retry)?;
        Ok(Self { api, signing_secret, mode: config.mode })
    }

    /// How Slack reaches us: `Http` (mount [`SlackBot::router`]) or `Socket` ([`SlackBot::spawn_socket_mode`]).
    pub fn mode(&self) -> SlackMode {
        self.mode
    }

    /// The Web API client.
    pub fn api(&self) -> &SlackApi {
        &self.api
    }

    /// The notifier to hand to `Gateway::with_notifier` (before the gateway goes into an `Arc`).
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        Arc::new(SlackNotifier::new(self.api.clone()))
    }

    /// The interaction handler over a running gateway (shared by HTTP and Socket Mode).
    pub fn interactions(&self, gateway: Arc<Gateway>) -> Arc<Interactions> {
        Arc::new(Interactions::new(self.api.clone(), gateway))
    }

    /// The signed webhook routes (`POST /interactions`, `POST /commands`, `POST /events`), to mount with
    /// `app.nest("/slack", bot.router(gateway))` (any outer state `S`: the routes carry their own). Without a
    /// signing secret every request is refused (401).
    pub fn router<S: Clone + Send + Sync + 'static>(&self, gateway: Arc<Gateway>) -> axum::Router<S> {
        routes::router(self.interactions(gateway), self.signing_secret.clone(), self.api.clone())
    }

    /// Connect to Slack in Socket Mode and handle interactions until `cancel` fires or the task is dropped.
    pub fn spawn_socket_mode(&self, gateway: Arc<Gateway>, cancel: CancellationToken) -> SocketModeTask {
        socket::spawn(self.api.clone(), self.interactions(gateway), cancel)
    }
}
