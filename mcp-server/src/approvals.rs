//! Human approvals around the gateway: the chat bots that carry approval requests (Slack, Discord; a rule's
//! `discord:<id>` channel goes to Discord, any other to Slack), their webhook routes, Socket Mode or Gateway
//! connections, and the background sweep that expires approvals and runs approved calls nobody claimed (after a
//! restart, or decided on another replica); every `retention.purge_every` the sweep also purges sessions past
//! their retention.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use approval_bot::discord::{DiscordBot, GatewayTask};
use approval_bot::routing::RoutingNotifier;
use approval_bot::slack::{SlackBot, SocketModeTask};
use axum::Router;
use gateway_core::config::{Config, DiscordMode, SlackMode};
use gateway_core::pipeline::Gateway;
use tokio_util::sync::CancellationToken;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The approval channels configured for this process.
pub struct Approvals {
    slack: Option<SlackBot>,
    discord: Option<DiscordBot>,
}

/// Background approval duties; they stop when the token given to [`Approvals::spawn_background`] is cancelled.
pub struct Background {
    _socket: Option<SocketModeTask>,
    _discord_commands: Option<tokio::task::JoinHandle<()>>,
    _discord_gateway: Option<GatewayTask>,
    _sweep: tokio::task::JoinHandle<()>,
}

impl Approvals {
    /// Build the bots from configuration (resolving their credentials); none configured: calls that need an
    /// approval fail closed.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let slack = config.slack.as_ref().map(SlackBot::from_config).transpose().context("[slack]")?;
        let discord = config.discord.as_ref().map(DiscordBot::from_config).transpose().context("[discord]")?;
        Ok(Self { slack, discord })
    }

    /// Give the gateway its notifier; must happen before the gateway is shared. Without a chat bot, held calls
    /// fail closed, unless `[web] approval_inbox = true` makes the web UI's review inbox the channel.
    /// With bots, requests are routed by channel; the inbox (when enabled) serves channels of platforms that are
    /// not configured.
    pub fn attach(&self, gateway: Gateway) -> Gateway {
        let web = &gateway.config().web;
        let inbox = (web.enabled && web.approval_inbox)
            .then(|| Arc::new(crate::web::InboxNotifier) as Arc<dyn gateway_core::approval::Notifier>);
        let routing = RoutingNotifier::new(
            self.slack.as_ref().map(SlackBot::notifier),
            self.discord.as_ref().map(DiscordBot::notifier),
            inbox,
        );
        if routing.is_empty() { gateway } else { gateway.with_notifier(Arc::new(routing)) }
    }

    /// Webhook routes for the HTTP app (`/slack/interactions`, `/slack/events` in Slack's HTTP mode).
    /// With Discord in HTTP mode, also `/discord/interactions`.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, gateway: Arc<Gateway>) -> Router<S> {
        let mut routes = match &self.slack {
            Some(bot) if bot.mode() == SlackMode::Http => Router::new().nest("/slack", bot.router(gateway.clone())),
            _ => Router::new(),
        };
        if let Some(bot) = &self.discord
            && bot.mode() == DiscordMode::Http
        {
            routes = routes.nest("/discord", bot.router(gateway));
        }
        routes
    }

    /// Start Socket Mode and the Discord Gateway connection (if configured), the Discord command registration
    /// and the sweep.
    pub fn spawn_background(&self, gateway: Arc<Gateway>, stop: CancellationToken) -> Background {
        let socket = match &self.slack {
            Some(bot) if bot.mode() == SlackMode::Socket => Some(bot.spawn_socket_mode(gateway.clone(), stop.clone())),
            _ => None,
        };
        // Best effort: approvals work without the slash command, so start-up neither waits nor fails on it.
        let discord_commands = self.discord.as_ref().map(DiscordBot::spawn_register_commands);
        let discord_gateway = match &self.discord {
            Some(bot) if bot.mode() == DiscordMode::Gateway => Some(bot.spawn_gateway(gateway.clone(), stop.clone())),
            _ => None,
        };
        let sweep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let purge_every = gateway.config().retention.purge_every.0;
            let mut next_purge = tokio::time::Instant::now();
            let owner = format!("{:032x}", rand::random::<u128>());
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(e) = gateway.sweep().await {
                    tracing::warn!(error = %e, "approval sweep failed; retrying");
                }
                if tokio::time::Instant::now() >= next_purge {
                    next_purge = tokio::time::Instant::now() + purge_every;
                    // One replica purges per period: whoever takes the lease; the others skip this round.
                    match gateway.store().take_lease("retention-purge", &owner, purge_every).await {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "retention purge lease unavailable; retrying later");
                            continue;
                        }
                    }
                    match gateway.purge_expired(false).await {
                        Ok(purged) if !purged.is_empty() => tracing::info!(sessions = purged.len(), "retention purge"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying later"),
                    }
                }
            }
        });
        Background {
            _socket: socket,
            _discord_commands: discord_commands,
            _discord_gateway: discord_gateway,
            _sweep: sweep,
        }
    }
}
