//! [`DiscordNotifier`]: gateway-core's [`Notifier`] on Discord. Requests are posted to the rule's channel
//! (`discord:<channel id>`) with Approve / Deny buttons, decisions edit that message in place (buttons
//! removed), and outcomes (with the replay link) are posted as replies to it.
//!
//! No direct messages to approvers: the Slack bot sends none either, and the channel is where approvers look.

use async_trait::async_trait;
use gateway_core::approval::{ApprovalNotice, ApprovalUpdate, Notifier};
use hyper::Method;
use serde_json::{Value, json};

use super::api::DiscordApi;
use super::messages;
use crate::error::Error;

/// Prefix of Discord approval channels (`discord:1234567890`) and of this notifier's message references.
pub const CHANNEL_PREFIX: &str = "discord:";

/// Posts approval requests to Discord. Its reference for a message is `"discord:{channel_id}:{message_id}"`.
#[derive(Debug, Clone)]
pub struct DiscordNotifier {
    api: DiscordApi,
}

/// The channel id of a `discord:<id>` approval channel.
pub fn channel_id(channel: &str) -> Option<&str> {
    channel
        .strip_prefix(CHANNEL_PREFIX)
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()))
}

/// Split a `"discord:{channel_id}:{message_id}"` reference.
pub fn parse_ref(reference: &str) -> Option<(&str, &str)> {
    let rest = reference.strip_prefix(CHANNEL_PREFIX)?;
    rest.split_once(':').filter(|(c, m)| !c.is_empty() && !m.is_empty())
}

fn target(channel: &str) -> Result<&str, Error> {
    channel_id(channel).ok_or_else(|| {
        Error::DiscordConfig(format!(
            "approval channel {channel:?} is not of the form \"discord:<numeric channel id>\""
        ))
    })
}

impl DiscordNotifier {
    /// A notifier posting through `api`.
    pub fn new(api: DiscordApi) -> Self {
        Self { api }
    }

    async fn post(&self, channel_id: &str, body: &Value) -> Result<Value, Error> {
        self.api.call(Method::POST, &format!("/channels/{channel_id}/messages"), Some(body)).await
    }
}

#[async_trait]
impl Notifier for DiscordNotifier {
    #[tracing::instrument(name = "discord_request_approval", skip_all, fields(approval = %notice.approval_id))]
    async fn request_approval(&self, notice: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
        let channel = target(&notice.channel)?;
        let answer = self.post(channel, &messages::request_message(notice)).await?;
        let message_id = answer.get("id").and_then(Value::as_str).ok_or_else(|| Error::DiscordPayload {
            context: "create message".into(),
            message: "no \"id\" in answer".into(),
        })?;
        tracing::info!(channel, message_id, "approval request posted to discord");
        Ok(Some(format!("{CHANNEL_PREFIX}{channel}:{message_id}")))
    }

    #[tracing::instrument(name = "discord_approval_decided", skip_all, fields(approval = %update.notice.approval_id))]
    async fn approval_decided(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        let Some((channel, message)) = update.notifier_ref.as_deref().and_then(parse_ref) else {
            // The request was never posted here: say it as a new message instead.
            let channel = target(&update.notice.channel)?;
            let line = messages::decision_line(update);
            let body = json!({
                "content": format!("{}\n{line}", messages::request_text(&update.notice)),
                "allowed_mentions": messages::no_mentions(),
            });
            self.post(channel, &body).await?;
            return Ok(());
        };
        let path = format!("/channels/{channel}/messages/{message}");
        self.api.call(Method::PATCH, &path, Some(&messages::decided_message(update))).await?;
        Ok(())
    }

    #[tracing::instrument(name = "discord_call_finished", skip_all, fields(approval = %update.notice.approval_id))]
    async fn call_finished(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        let mut body =
            json!({ "content": messages::finished_text(update), "allowed_mentions": messages::no_mentions() });
        let channel = match update.notifier_ref.as_deref().and_then(parse_ref) {
            Some((channel, message)) => {
                // A reply to the request message; if that was deleted, post it plainly rather than fail.
                body["message_reference"] =
                    json!({ "message_id": message, "channel_id": channel, "fail_if_not_exists": false });
                channel
            }
            None => target(&update.notice.channel)?,
        };
        self.post(channel, &body).await?;
        Ok(())
    }

    #[tracing::instrument(name = "discord_announce", skip_all, fields(channel = %channel))]
    async fn announce(&self, channel: &str, text: &str) -> gateway_core::Result<()> {
        let body = json!({ "content": messages::cut(text, 2000), "allowed_mentions": messages::no_mentions() });
        self.post(target(channel)?, &body).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_references_parse() {
        assert_eq!(channel_id("discord:1234567890"), Some("1234567890"));
        assert_eq!(channel_id("discord:general"), None);
        assert_eq!(channel_id("#airlock-approvals"), None);
        assert_eq!(parse_ref("discord:123:456"), Some(("123", "456")));
        assert_eq!(parse_ref("C123:1700000000.0001"), None, "a slack reference is not ours");
        assert_eq!(parse_ref("discord:123:"), None);
    }
}
