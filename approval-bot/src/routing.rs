//! [`RoutingNotifier`]: one [`Notifier`] over several chat platforms. A request goes to Discord when its
//! approval channel is `discord:<channel id>`, to Slack otherwise; decisions and outcomes follow the message
//! reference the request got (`discord:…` for Discord), so they land where the request was posted.
//!
//! A channel whose platform is not configured goes to the fallback (the web inbox) when there is one, and fails
//! closed otherwise, with an error naming the channel and the missing `[slack]` / `[discord]` section.

use std::sync::Arc;

use async_trait::async_trait;
use gateway_core::approval::{ApprovalNotice, ApprovalUpdate, Notifier};

use crate::discord::notifier::CHANNEL_PREFIX;

/// Which platform a channel belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Discord,
}

impl Platform {
    /// The platform of an approval channel as written in policies (`discord:123…`, `#name`, `C0123`).
    pub fn of_channel(channel: &str) -> Self {
        if channel.starts_with(CHANNEL_PREFIX) { Platform::Discord } else { Platform::Slack }
    }

    fn section(self) -> &'static str {
        match self {
            Platform::Slack => "[slack]",
            Platform::Discord => "[discord]",
        }
    }
}

/// Picks the notifier by channel (requests) or message reference (decisions, outcomes).
#[derive(Default, Clone)]
pub struct RoutingNotifier {
    slack: Option<Arc<dyn Notifier>>,
    discord: Option<Arc<dyn Notifier>>,
    fallback: Option<Arc<dyn Notifier>>,
}

impl std::fmt::Debug for RoutingNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingNotifier")
            .field("slack", &self.slack.is_some())
            .field("discord", &self.discord.is_some())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

// === impl RoutingNotifier ===

impl RoutingNotifier {
    /// A router over the configured platforms; `fallback` serves channels of platforms that are not.
    pub fn new(
        slack: Option<Arc<dyn Notifier>>,
        discord: Option<Arc<dyn Notifier>>,
        fallback: Option<Arc<dyn Notifier>>,
    ) -> Self {
        Self { slack, discord, fallback }
    }

    /// Nothing configured at all (no platform, no fallback).
    pub fn is_empty(&self) -> bool {
        self.slack.is_none() && self.discord.is_none() && self.fallback.is_none()
    }

    fn platform(&self, p: Platform) -> Option<&Arc<dyn Notifier>> {
        match p {
            Platform::Slack => self.slack.as_ref(),
            Platform::Discord => self.discord.as_ref(),
        }
        .or(self.fallback.as_ref())
    }

    /// The notifier for an update: the one that posted the request (by its reference), else by channel.
    fn for_update(&self, update: &ApprovalUpdate) -> Option<&Arc<dyn Notifier>> {
        let p = match update.notifier_ref.as_deref() {
            Some(r) if r.starts_with(CHANNEL_PREFIX) => Platform::Discord,
            Some(_) => Platform::Slack,
            None => Platform::of_channel(&update.notice.channel),
        };
        self.platform(p)
    }
}

#[async_trait]
impl Notifier for RoutingNotifier {
    async fn request_approval(&self, notice: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
        let p = Platform::of_channel(&notice.channel);
        match self.platform(p) {
            Some(n) => n.request_approval(notice).await,
            None => Err(gateway_core::Error::Target {
                connection: format!("approval channel {}", notice.channel),
                message: format!("no {} bot is configured for this channel", p.section()),
            }),
        }
    }

    async fn approval_decided(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        match self.for_update(update) {
            Some(n) => n.approval_decided(update).await,
            None => Ok(()),
        }
    }

    async fn call_finished(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        match self.for_update(update) {
            Some(n) => n.call_finished(update).await,
            None => Ok(()),
        }
    }

    // Admin announcements go to the platform of the audit channel, like requests.
    async fn announce(&self, channel: &str, text: &str) -> gateway_core::Result<()> {
        let p = Platform::of_channel(channel);
        match self.platform(p) {
            Some(n) => n.announce(channel, text).await,
            None => Err(gateway_core::Error::Target {
                connection: format!("audit channel {channel}"),
                message: format!("no {} bot is configured for this channel", p.section()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use gateway_core::approval::ApprovalState;
    use gateway_core::policy::ApprovalRequirement;

    use super::*;

    /// Records which notifier got what.
    struct Recording(&'static str, Arc<Mutex<Vec<String>>>);

    #[async_trait]
    impl Notifier for Recording {
        async fn request_approval(&self, _: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
            self.1.lock().expect("lock").push(format!("{}:request", self.0));
            Ok(Some(if self.0 == "discord" { "discord:1:2".into() } else { "C1:1.2".into() }))
        }
        async fn approval_decided(&self, _: &ApprovalUpdate) -> gateway_core::Result<()> {
            self.1.lock().expect("lock").push(format!("{}:decided", self.0));
            Ok(())
        }
        async fn call_finished(&self, _: &ApprovalUpdate) -> gateway_core::Result<()> {
            self.1.lock().expect("lock").push(format!("{}:finished", self.0));
            Ok(())
        }
    }

    fn notice(channel: &str) -> ApprovalNotice {
        ApprovalNotice {
            approval_id: "apr_1".into(),
            session_id: "s".into(),
            call_id: "c".into(),
            requester: "agent".into(),
            on_behalf_of: None,
            connection: "db".into(),
            tool: "sql_query".into(),
            statement: "DELETE FROM t".into(),
            rule: "r".into(),
            requirement: ApprovalRequirement {
                approvers: vec!["dba".into()],
                quorum: 1,
                timeout: std::time::Duration::from_secs(60),
                channel: Some(channel.into()),
                reason: "why".into(),
            },
            channel: channel.into(),
            created_at_ms: 0,
            expires_at_ms: 60_000,
            replay_url: "http://x/sessions/s".into(),
            review_url: "http://x/approvals/apr_1".into(),
        }
    }

    fn update(channel: &str, notifier_ref: Option<&str>) -> ApprovalUpdate {
        ApprovalUpdate {
            notice: notice(channel),
            state: ApprovalState::Approved,
            decided_by: vec![],
            reason: None,
            at_ms: 0,
            outcome: None,
            notifier_ref: notifier_ref.map(str::to_owned),
        }
    }

    fn both(log: &Arc<Mutex<Vec<String>>>) -> RoutingNotifier {
        RoutingNotifier::new(
            Some(Arc::new(Recording("slack", log.clone()))),
            Some(Arc::new(Recording("discord", log.clone()))),
            None,
        )
    }

    #[tokio::test]
    async fn discord_channels_go_to_discord_and_the_rest_to_slack() {
        let log = Arc::default();
        let r = both(&log);
        assert_eq!(r.request_approval(&notice("discord:123")).await.expect("ok").as_deref(), Some("discord:1:2"));
        assert_eq!(r.request_approval(&notice("#approvals")).await.expect("ok").as_deref(), Some("C1:1.2"));
        r.approval_decided(&update("discord:123", Some("discord:1:2"))).await.expect("ok");
        r.call_finished(&update("#approvals", Some("C1:1.2"))).await.expect("ok");
        r.call_finished(&update("discord:9", None)).await.expect("ok");
        let got = log.lock().expect("lock").clone();
        assert_eq!(got, ["discord:request", "slack:request", "discord:decided", "slack:finished", "discord:finished"]);
    }

    #[tokio::test]
    async fn unconfigured_platform_uses_the_fallback_or_fails_closed_naming_it() {
        let log = Arc::default();
        let only_slack = RoutingNotifier::new(Some(Arc::new(Recording("slack", Arc::clone(&log)))), None, None);
        let err = only_slack.request_approval(&notice("discord:123")).await.expect_err("no discord");
        assert!(err.to_string().contains("[discord]") && err.to_string().contains("discord:123"), "{err}");
        let with_inbox = RoutingNotifier::new(None, None, Some(Arc::new(Recording("inbox", Arc::clone(&log)))));
        assert!(with_inbox.request_approval(&notice("discord:123")).await.is_ok());
        assert_eq!(log.lock().expect("lock").clone(), ["inbox:request"]);
    }
}
