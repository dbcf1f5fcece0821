//! The Discord approval bot: [`DiscordBot`] ties the REST client, the notifier, the signed interactions
//! endpoint (`mode = "http"`) or the Gateway connection (`mode = "gateway"`), and the `/airlock` command
//! registration together.
//!
//! Plain `serde_json` in Discord's documented shapes rather than serenity's model types: we read a dozen
//! fields of four payloads, and serenity (even without default features) brings its whole model, its own
//! HTTP and Gateway stacks' dependencies and minutes of build time for that.

pub mod api;
pub mod gateway;
pub mod interactions;
pub mod messages;
pub mod notifier;
mod routes;
pub mod signature;

use std::sync::Arc;

use gateway_core::approval::Notifier;
use gateway_core::config::{DiscordConfig, DiscordMode};
use gateway_core::pipeline::Gateway;
use hyper::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use api::{DiscordApi, RetryPolicy};
pub use gateway::GatewayTask;
pub use interactions::Interactions;
pub use notifier::DiscordNotifier;
pub use signature::PublicKey;

use crate::error::{Error, Result};

/// The Discord bot, built from `[discord]` before the gateway exists (same wiring order as the Slack bot).
#[derive(Debug, Clone)]
pub struct DiscordBot {
    api: DiscordApi,
    public_key: Option<PublicKey>,
    application_id: String,
    mode: DiscordMode,
    gateway_url: Option<String>,
}

// === impl DiscordBot ===

impl DiscordBot {
    /// Resolve the token, parse the public key and build the REST client.
    pub fn from_config(config: &DiscordConfig) -> Result<Self> {
        Self::with_retry(config, RetryPolicy::default())
    }

    /// [`DiscordBot::from_config`] with a custom retry policy (tests use short backoffs).
    pub fn with_retry(config: &DiscordConfig, retry: RetryPolicy) -> Result<Self> {
        let bot_token =
            config.bot_token.resolve("discord.bot_token").map_err(|e| Error::DiscordConfig(e.to_string()))?;
        let public_key = config
            .public_key
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .map(PublicKey::from_hex)
            .transpose()
            .map_err(|e| Error::DiscordConfig(format!("discord.public_key: {e}")))?;
        url::Url::parse(&config.api_base_url)
            .map_err(|e| Error::DiscordConfig(format!("discord.api_base_url {:?}: {e}", config.api_base_url)))?;
        let api = DiscordApi::new(&config.api_base_url, bot_token, retry)?;
        Ok(Self {
            api,
            public_key,
            application_id: config.application_id.clone(),
            mode: config.mode,
            gateway_url: config.gateway_url.clone(),
        })
    }

    /// How Discord reaches us.
    pub fn mode(&self) -> DiscordMode {
        self.mode
    }

    /// The REST client.
    pub fn api(&self) -> &DiscordApi {
        &self.api
    }

    /// The notifier to hand to `Gateway::with_notifier` (directly or through a routing notifier).
    pub fn notifier(&self) -> Arc<dyn Notifier> {
        Arc::new(DiscordNotifier::new(self.api.clone()))
    }

    /// The interaction handler over a running gateway.
    pub fn interactions(&self, gateway: Arc<Gateway>) -> Arc<Interactions> {
        Arc::new(Interactions::new(self.api.clone(), gateway, self.application_id.clone()))
    }

    /// The signed interactions endpoint (`POST /interactions`), to mount with
    /// `app.nest("/discord", bot.router(gateway))`. Without a public key every request is refused (401).
    pub fn router<S: Clone + Send + Sync + 'static>(&self, gateway: Arc<Gateway>) -> axum::Router<S> {
        routes::router(self.interactions(gateway), self.public_key.clone())
    }

    /// Connect to the Discord Gateway and handle interactions until `cancel` fires or the task is dropped.
    pub fn spawn_gateway(&self, gateway: Arc<Gateway>, cancel: CancellationToken) -> GatewayTask {
        gateway::spawn(self.api.clone(), self.gateway_url.clone(), self.interactions(gateway), cancel)
    }

    /// Register the global `/airlock` command (`PUT /applications/{id}/commands`, which replaces the app's
    /// global commands with exactly this set, so a restart never duplicates it).
    pub async fn register_commands(&self) -> Result<()> {
        let commands = json!([{
            "name": interactions::COMMAND_NAME,
            "type": 1,
            "description": "Airlock admin commands (policy, tokens, approvals)",
            "options": [{
                "type": 3,
                "name": interactions::COMMAND_OPTION,
                "description": "e.g. `policy set rule-x block` or `help`",
                "required": true,
            }],
        }]);
        let path = format!("/applications/{}/commands", self.application_id);
        self.api.call(Method::PUT, &path, Some(&commands)).await?;
        Ok(())
    }

    /// [`DiscordBot::register_commands`] in the background, logging the outcome (start-up must not wait on
    /// Discord, nor fail because of it: approvals work without the command).
    pub fn spawn_register_commands(&self) -> tokio::task::JoinHandle<()> {
        let bot = self.clone();
        tokio::spawn(async move {
            match bot.register_commands().await {
                Ok(()) => tracing::info!("discord /airlock command registered"),
                Err(e) => tracing::warn!(error = %e, "could not register the discord /airlock command"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use gateway_core::config::Config;

    use super::*;

    const KEY: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    fn parse(discord: &str) -> gateway_core::Result<Config> {
        let toml = format!("[discord]\nbot_token = {{ inline = \"t\" }}\napplication_id = \"123\"\n{discord}\n");
        Config::parse(&toml, "discord-test.toml", Vec::new())
    }

    #[test]
    fn http_mode_needs_a_hex_public_key_and_gateway_mode_does_not() {
        let err = parse("").expect_err("no public key").to_string();
        assert!(err.contains("discord.public_key") && err.contains("required"), "{err}");
        let err = parse("public_key = \"abc\"").expect_err("short key").to_string();
        assert!(err.contains("discord.public_key") && err.contains("64 hex"), "{err}");
        let c = parse(&format!("public_key = \"{KEY}\"")).expect("valid");
        let d = c.discord.expect("[discord]");
        assert_eq!((d.mode, d.api_base_url.as_str()), (DiscordMode::Http, "https://discord.com/api/v10"));
        assert!(DiscordBot::from_config(&d).is_ok());
        let c = parse("mode = \"gateway\"").expect("gateway mode needs no key");
        assert_eq!(c.discord.expect("[discord]").mode, DiscordMode::Gateway);
    }

    #[test]
    fn unknown_discord_keys_and_bad_application_ids_are_errors() {
        let err = parse(&format!("public_key = \"{KEY}\"\nsigning_secret = \"x\"")).expect_err("unknown key");
        assert!(err.to_string().contains("signing_secret"), "{err}");
        let toml = format!(
            "[discord]\nbot_token = {{ inline = \"t\" }}\napplication_id = \"my-app\"\npublic_key = \"{KEY}\"\n"
        );
        let err = Config::parse(&toml, "discord-test.toml", Vec::new()).expect_err("bad id").to_string();
        assert!(err.contains("discord.application_id"), "{err}");
    }
}
