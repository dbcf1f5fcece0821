//! [`SlackNotifier`]: gateway-core's [`Notifier`] on Slack. Requests are posted with Approve / Deny buttons,
//! decisions update that message in place, and outcomes (with the replay link) go into its thread.

use async_trait::async_trait;
use gateway_core::approval::{ApprovalNotice, ApprovalUpdate, Notifier};
use serde_json::{Value, json};

use super::api::SlackApi;
use super::blocks;
use crate::error::Error;

/// Posts approval requests to Slack. Its reference for a message is `"{channel_id}:{ts}"`.
#[derive(Debug, Clone)]
pub struct SlackNotifier {
    api: SlackApi,
}

/// Split a `"{channel}:{ts}"` reference (channel ids never contain `:`).
pub fn parse_ref(reference: &str) -> Option<(&str, &str)> {
    reference.split_once(':').filter(|(c, t)| !c.is_empty() && !t.is_empty())
}

fn field<'a>(answer: &'a Value, name: &str, method: &str) -> Result<&'a str, Error> {
    answer
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Payload { context: method.into(), message: format!("no {name:?} in answer") })
}

impl SlackNotifier {
    /// A notifier posting through `api`.
    pub fn new(api: SlackApi) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    #[tracing::instrument(name = "slack_request_approval", skip_all, fields(approval = %notice.approval_id))]
    async fn request_approval(&self, notice: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
        let answer = self
            .api
            .call(
                "chat.postMessage",
                &json!({
                    "channel": notice.channel,
                    "text": blocks::request_text(notice),
                    "blocks": blocks::request_blocks(notice),
                    "unfurl_links": false,
                    "unfurl_media": false,
                }),
            )
            .await?;
        // Slack answers with the channel *id* even when we posted to `#name`; updates need the id.
        let channel = field(&answer, "channel", "chat.postMessage")?;
        let ts = field(&answer, "ts", "chat.postMessage")?;
        tracing::info!(channel, ts, "approval request posted to slack");
        Ok(Some(format!("{channel}:{ts}")))
    }

    #[tracing::instrument(name = "slack_approval_decided", skip_all, fields(approval = %update.notice.approval_id))]
    async fn approval_decided(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        let text = blocks::decision_line(update);
        let Some((channel, ts)) = update.notifier_ref.as_deref().and_then(parse_ref) else {
            // The request was never posted here (or by another notifier): say it as a new message instead.
            self.api.call("chat.postMessage", &json!({ "channel": update.notice.channel, "text": text })).await?;
            return Ok(());
        };
        self.api
            .call(
                "chat.update",
                &json!({
                    "channel": channel,
                    "ts": ts,
                    "text": format!("{} — {}", blocks::request_text(&update.notice), text),
                    "blocks": blocks::decided_blocks(update),
                }),
            )
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "slack_call_finished", skip_all, fields(approval = %update.notice.approval_id))]
    async fn call_finished(&self, update: &ApprovalUpdate) -> gateway_core::Result<()> {
        let text = blocks::finished_text(update);
        let body = match update.notifier_ref.as_deref().and_then(parse_ref) {
            Some((channel, ts)) => json!({ "channel": channel, "thread_ts": ts, "text": text, "unfurl_links": false }),
            None => json!({ "channel": update.notice.channel, "text": text, "unfurl_links": false }),
        };
        self.api.call("chat.postMessage", &body).await?;
        Ok(())
    }

    #[tracing::instrument(name = "slack_announce", skip_all, fields(channel = %channel))]
    async fn announce(&self, channel: &str, text: &str) -> gateway_core::Result<()> {
        self.api.call("chat.postMessage", &json!({ "channel": channel, "text": text, "unfurl_links": false })).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ref;

    #[test]
    fn message_reference_splits_into_channel_and_ts() {
        assert_eq!(parse_ref("C123:1700000000.000100"), Some(("C123", "1700000000.000100")));
        assert_eq!(parse_ref("C123:"), None);
        assert_eq!(parse_ref("no-separator"), None);
    }
}
