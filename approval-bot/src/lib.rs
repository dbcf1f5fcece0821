//! Airlock's chat approval bots: Slack and Discord, with a [`routing::RoutingNotifier`] that sends each request
//! to the platform of its approval channel (`discord:<channel id>` → Discord, anything else → Slack).
//!
//! The Discord bot ([`discord::DiscordBot`], built the same way from `[discord]`) posts an embed with
//! **Approve** / **Deny** buttons, edits it when decided, replies with the outcome, and takes clicks as
//! Ed25519-signed requests on `POST /discord/interactions` (`mode = "http"`) or over the Discord Gateway
//! (`mode = "gateway"`); it also registers and answers `/airlock`.
//!
//! The Slack bot posts approval requests (Block Kit, **Approve** / **Deny** buttons, a review link), updates
//! the message when the request is decided, replies in its thread with the outcome and the session replay
//! link, and turns button clicks into [`Gateway::vote`](gateway_core::pipeline::Gateway::vote)s. Clicks reach
//! us either as signed HTTP requests (`mode = "http"`) or through Socket Mode (`mode = "socket"`).
//!
//! # Public API
//!
//! - [`SlackBot::from_config`](slack::SlackBot::from_config)`(&SlackConfig)` resolves the tokens and builds the
//!   Web API client (no gateway needed yet);
//! - [`bot.notifier()`](slack::SlackBot::notifier) → `Arc<dyn Notifier>` for `Gateway::with_notifier`;
//! - [`bot.router(gateway)`](slack::SlackBot::router) → an `axum::Router<S>` (any outer state) with
//!   `POST /interactions` and `POST /events`, to nest at `/slack`;
//! - [`bot.spawn_socket_mode(gateway, cancel)`](slack::SlackBot::spawn_socket_mode) →
//!   [`SocketModeTask`](slack::SocketModeTask), which stops when `cancel` fires or when it is dropped;
//! - [`slack::signature::sign`] / [`slack::signature::verify`]: Slack's request signing, on raw bytes.
//!
//! # Wiring (what `airlock serve` does)
//!
//! The notifier must be given to the gateway before the gateway is shared; the routes and Socket Mode need the
//! shared gateway. So the bot is built first, from config alone:
//!
//! ```ignore
//! use approval_bot::slack::SlackBot;
//! use gateway_core::config::SlackMode;
//!
//! let bot = config.slack.as_ref().map(SlackBot::from_config).transpose()?;   // resolves tokens
//! let mut gateway = Gateway::start(config).await?;
//! if let Some(bot) = &bot {
//!     gateway = gateway.with_notifier(bot.notifier());
//! }
//! let gateway = Arc::new(gateway);
//! let mut app = axum::Router::new(); // + MCP, web UI …
//! let mut socket = None;
//! if let Some(bot) = &bot {
//!     match bot.mode() {
//!         SlackMode::Http => app = app.nest("/slack", bot.router(gateway.clone())),
//!         SlackMode::Socket => socket = Some(bot.spawn_socket_mode(gateway.clone(), shutdown.clone())),
//!     }
//! }
//! // and run `gateway.sweep()` every second (expiry, approved-but-unclaimed calls).
//! ```
//!
//! Endpoints (mounted at `/slack`): `POST /slack/interactions` (Slack's "Interactivity Request URL") and
//! `POST /slack/events` (URL verification). Both verify Slack's signature before parsing; a refusal is a 401,
//! a `tracing` warning and an `auth_failed` event in the gateway's audit session.
//!
//! # Slack app set-up
//!
//! Bot token scopes: `chat:write` (post, update, ephemeral replies); invite the bot to the approval channels
//! (or add `chat:write.public`), otherwise posting fails with `not_in_channel` and held calls fail closed.
//! Interactivity on, with the Request URL `{public_url}/slack/interactions` (`mode = "http"`), or Socket Mode
//! with an app-level token that has `connections:write` (`mode = "socket"`).

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod commands;
pub mod discord;
pub mod error;
pub mod routing;
pub mod slack;

pub use error::{Error, Result};
