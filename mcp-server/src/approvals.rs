//! Human approvals around the gateway: the chat bot that carries approval requests (Slack today), its webhook
//! routes or Socket Mode connection, and the background sweep that expires approvals and runs approved calls
//! nobody claimed (after a restart, or decided on another replica); every `retention.purge_every` the sweep
//! also purges sessions past their retention.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use approval_bot::slack::{SlackBot, SocketModeTask};
use axum::Router;
use gateway_core::config::{Config, SlackMode};
use gateway_core::pipeline::Gateway;
use tokio_util::sync::CancellationToken;

/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The approval channels configured for this process.
pub struct Approvals {
    slack: Option<SlackBot>,
}

/// Background approval duties; they stop when the token given to [`Approvals::spawn_background`] is cancelled.
pub struct Background {
    _socket: Option<SocketModeTask>,
    _sweep: tokio::task::JoinHandle<()>,
}

impl Approvals {
    /// Build the bots from configuration (resolving their credentials); none configured: calls that need an
    /// approval fail closed.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let slack = config.slack.as_ref().map(SlackBot::from_config).transpose().context("[slack]")?;
        Ok(Self { slack })
    }

    /// Give the gateway its notifier; must happen before the gateway is shared. Without a chat bot, held calls
    /// fail closed, unless `[web] approval_inbox = true` makes the web UI's review inbox the channel.
    pub fn attach(&self, gateway: Gateway) -> Gateway {
        match &self.slack {
            Some(bot) => gateway.with_notifier(bot.notifier()),
            None if gateway.config().web.enabled && gateway.config().web.approval_inbox => {
                gateway.with_notifier(Arc::new(crate::web::InboxNotifier))
            }
            None => gateway,
        }
    }

    /// Webhook routes for the HTTP app (`/slack/interactions`, `/slack/events` in Slack's HTTP mode).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, gateway: Arc<Gateway>) -> Router<S> {
        match &self.slack {
            Some(bot) if bot.mode() == SlackMode::Http => Router::new().nest("/slack", bot.router(gateway)),
            _ => Router::new(),
        }
    }

    /// Start Socket Mode (if configured) and the sweep.
    pub fn spawn_background(&self, gateway: Arc<Gateway>, stop: CancellationToken) -> Background {
        let socket = match &self.slack {
            Some(bot) if bot.mode() == SlackMode::Socket => Some(bot.spawn_socket_mode(gateway.clone(), stop.clone())),
            _ => None,
        };
        let sweep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let purge_every = gateway.config().retention.purge_every.0;
            let mut next_purge = tokio::time::Instant::now();
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
                    match gateway.purge_expired(false).await {
                        Ok(purged) if !purged.is_empty() => tracing::info!(sessions = purged.len(), "retention purge"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying later"),
                    }
                }
            }
        });
        Background { _socket: socket, _sweep: sweep }
    }
}
