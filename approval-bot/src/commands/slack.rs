//! `/airlock` on Slack: a slash command's fields (a signed form POST to `/slack/commands`, or the payload of
//! a Socket Mode `slash_commands` envelope) → [`super::run`] → Slack's answer.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::pipeline::Gateway;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Invocation, Platform, Reply};
use crate::slack::SlackApi;

/// Slack wants the HTTP answer within 3 s; past this, we answer "working on it" and post the reply later.
const ANSWER_WITHIN: Duration = Duration::from_millis(2500);

/// The fields of a slash command we use (Slack sends more).
#[derive(Debug, Clone, Deserialize)]
pub struct SlashCommand {
    pub user_id: String,
    pub channel_id: String,
    #[serde(default)]
    pub text: String,
}

impl SlashCommand {
    fn invocation(&self) -> Invocation {
        Invocation {
            platform: Platform::Slack,
            user_id: self.user_id.clone(),
            channel: self.channel_id.clone(),
            text: self.text.clone(),
        }
    }
}

/// The JSON body Slack shows for a reply.
pub fn answer(reply: &Reply) -> Value {
    json!({
        "response_type": if reply.ephemeral { "ephemeral" } else { "in_channel" },
        "text": reply.text,
    })
}

/// Post a reply through the Web API (when it could not ride on the HTTP answer or the Socket Mode ack).
async fn post(api: &SlackApi, cmd: &SlashCommand, reply: &Reply) {
    let sent = if reply.ephemeral {
        api.call("chat.postEphemeral", &json!({ "channel": cmd.channel_id, "user": cmd.user_id, "text": reply.text }))
            .await
    } else {
        api.call("chat.postMessage", &json!({ "channel": cmd.channel_id, "text": reply.text, "unfurl_links": false }))
            .await
    };
    if let Err(e) = sent {
        tracing::warn!(user = %cmd.user_id, error = %e, "could not post slash command reply");
    }
}

/// HTTP: run the command and return the answer body; a command slower than Slack's deadline is acknowledged
/// and its reply posted when it finishes.
pub async fn answer_http(api: SlackApi, gateway: Arc<Gateway>, cmd: SlashCommand) -> Value {
    let inv = cmd.invocation();
    let mut task = tokio::spawn({
        let gateway = gateway.clone();
        async move { super::run(&gateway, inv).await }
    });
    match tokio::time::timeout(ANSWER_WITHIN, &mut task).await {
        Ok(Ok(reply)) => answer(&reply),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "slash command task failed");
            answer(&Reply::private("The command failed inside Airlock; see the gateway's log."))
        }
        Err(_) => {
            tokio::spawn(async move {
                if let Ok(reply) = task.await {
                    post(&api, &cmd, &reply).await;
                }
            });
            answer(&Reply::private("Working on it…"))
        }
    }
}

/// Socket Mode: the envelope is acked at once; the reply is posted through the Web API.
pub fn spawn_socket(api: SlackApi, gateway: Arc<Gateway>, payload: &Value) {
    let cmd: SlashCommand = match serde_json::from_value(payload.clone()) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "socket mode slash command without user or channel; ignored");
            return;
        }
    };
    tokio::spawn(async move {
        let reply = super::run(&gateway, cmd.invocation()).await;
        post(&api, &cmd, &reply).await;
    });
}
