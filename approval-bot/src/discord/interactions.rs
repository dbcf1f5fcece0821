//! What happens when someone clicks or types: the interaction handler shared by the HTTP endpoint and the
//! Gateway connection. It takes one interaction and returns the interaction response to send back:
//!
//! - PING (type 1) → PONG (`{"type": 1}`);
//! - MESSAGE_COMPONENT (type 3): **Approve** votes at once and acknowledges with a deferred update (type 6;
//!   the notifier then edits the message); **Deny** opens a modal (type 9) asking why;
//! - MODAL_SUBMIT (type 5) of that modal votes Deny with the reason;
//! - APPLICATION_COMMAND (type 2) `/airlock <command>` runs the shared admin commands.
//!
//! Refusals (self-approval, not an approver, unmapped user, already decided) and errors answer with an
//! ephemeral message (type 4, flag 64) only the clicker sees. Votes are quick (a store write; the approved call
//! itself runs in the background), so they happen before answering, well inside Discord's 3 s.
//!
//! Payloads are read as JSON values, taking only the fields we use, so Discord's additions never break parsing.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::approval::{ApprovalState, VoteDecision, VoteOutcome, VoteRefusal, VoteSource};
use gateway_core::pipeline::Gateway;
use hyper::Method;
use serde_json::{Value, json};

use super::api::{Auth, DiscordApi};
use super::messages::{self, APPROVE_PREFIX, DENY_MODAL_PREFIX, DENY_PREFIX, REASON_INPUT};
use crate::commands::{self, Invocation, Platform};

/// Interaction types (Discord's numbers).
pub const PING: u64 = 1;
pub const APPLICATION_COMMAND: u64 = 2;
pub const MESSAGE_COMPONENT: u64 = 3;
pub const MODAL_SUBMIT: u64 = 5;

/// Response types.
pub const PONG: u64 = 1;
pub const CHANNEL_MESSAGE: u64 = 4;
pub const DEFERRED_CHANNEL_MESSAGE: u64 = 5;
pub const DEFERRED_UPDATE_MESSAGE: u64 = 6;

/// The name of the slash command and of its one option.
pub const COMMAND_NAME: &str = "airlock";
pub const COMMAND_OPTION: &str = "command";

/// How long a slash command may run before we answer "thinking…" (type 5) and edit the answer in later.
const COMMAND_INLINE_WAIT: Duration = Duration::from_millis(2000);

/// Handles interactions against the gateway.
#[derive(Debug)]
pub struct Interactions {
    api: DiscordApi,
    gateway: Arc<Gateway>,
    application_id: String,
}

/// The user who acted: `member.user` in a guild, `user` in a DM.
fn user_id(interaction: &Value) -> Option<&str> {
    interaction.pointer("/member/user/id").or_else(|| interaction.pointer("/user/id")).and_then(Value::as_str)
}

/// The value of the reason input in a modal submission, wherever Discord nests it (action rows of text
/// inputs, or the newer label components).
fn reason_of(data: &Value) -> Option<String> {
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(map) => {
                if map.get("custom_id").and_then(Value::as_str) == Some(REASON_INPUT)
                    && let Some(value) = map.get("value").and_then(Value::as_str)
                {
                    return Some(value.to_owned());
                }
                ["components", "component"].iter().filter_map(|k| map.get(*k)).find_map(find)
            }
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    data.get("components").and_then(find)
}

fn deferred_update() -> Value {
    json!({ "type": DEFERRED_UPDATE_MESSAGE })
}

// === impl Interactions ===

impl Interactions {
    /// A handler voting on `gateway`; `api` edits slash-command answers that took long.
    pub fn new(api: DiscordApi, gateway: Arc<Gateway>, application_id: String) -> Self {
        Self { api, gateway, application_id }
    }

    /// The gateway votes go to.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Handle one interaction; returns the interaction response to send back.
    pub async fn handle(self: &Arc<Self>, interaction: &Value) -> Value {
        let kind = interaction.get("type").and_then(Value::as_u64).unwrap_or(0);
        if kind == PING {
            return json!({ "type": PONG });
        }
        let Some(user) = user_id(interaction) else {
            tracing::warn!(kind, "discord interaction without a user; refused");
            return messages::ephemeral("Airlock could not tell who you are, so nothing was done.");
        };
        let data = interaction.get("data").cloned().unwrap_or(Value::Null);
        let custom_id = data.get("custom_id").and_then(Value::as_str).unwrap_or_default();
        match kind {
            MESSAGE_COMPONENT => {
                if let Some(id) = custom_id.strip_prefix(APPROVE_PREFIX) {
                    self.approve(user, id).await
                } else if let Some(id) = custom_id.strip_prefix(DENY_PREFIX) {
                    self.ask_reason(user, id).await
                } else {
                    tracing::debug!(custom_id, "component not ours; acknowledged");
                    deferred_update()
                }
            }
            MODAL_SUBMIT => match custom_id.strip_prefix(DENY_MODAL_PREFIX) {
                Some(id) => self.deny(user, id, reason_of(&data)).await,
                None => messages::ephemeral("Airlock does not know this form."),
            },
            APPLICATION_COMMAND => self.command(interaction, user, &data).await,
            other => {
                tracing::debug!(kind = other, "interaction type not handled");
                messages::ephemeral("Airlock does not handle this kind of interaction.")
            }
        }
    }

    async fn approve(&self, user: &str, approval_id: &str) -> Value {
        let Some(identity) = self.gateway.human_by_chat(VoteSource::Discord, user) else {
            tracing::info!(approval = approval_id, "vote from an unmapped discord user refused");
            return messages::ephemeral(&VoteRefusal::UnknownUser.explain());
        };
        let voted = self.gateway.vote(approval_id, &identity, VoteDecision::Approve, None, VoteSource::Discord).await;
        report(approval_id, voted)
    }

    /// Deny needs a reason: answer with the modal (unless the clicker cannot vote, or it is over already).
    async fn ask_reason(&self, user: &str, approval_id: &str) -> Value {
        if self.gateway.human_by_chat(VoteSource::Discord, user).is_none() {
            return messages::ephemeral(&VoteRefusal::UnknownUser.explain());
        }
        // Asking for a reason on a request that is already over would only waste the clicker's time.
        if let Ok(Some(rec)) = self.gateway.broker().get(approval_id).await
            && rec.state.is_decided()
        {
            let refusal = match rec.state {
                ApprovalState::Expired => VoteRefusal::Expired,
                state => VoteRefusal::AlreadyDecided { state },
            };
            return messages::ephemeral(&refusal.explain());
        }
        messages::deny_modal(approval_id)
    }

    async fn deny(&self, user: &str, approval_id: &str, reason: Option<String>) -> Value {
        let Some(identity) = self.gateway.human_by_chat(VoteSource::Discord, user) else {
            return messages::ephemeral(&VoteRefusal::UnknownUser.explain());
        };
        let Some(reason) = reason.filter(|r| !r.trim().is_empty()) else {
            return messages::ephemeral(&VoteRefusal::ReasonRequired.explain());
        };
        let voted = self
            .gateway
            .vote(approval_id, &identity, VoteDecision::Deny, Some(reason.trim()), VoteSource::Discord)
            .await;
        report(approval_id, voted)
    }

    /// `/airlock <command>`: answer inline when the command is quick; otherwise say "thinking…" (type 5,
    /// ephemeral) and edit the answer in through the interaction webhook when it is done.
    async fn command(self: &Arc<Self>, interaction: &Value, user: &str, data: &Value) -> Value {
        if data.get("name").and_then(Value::as_str) != Some(COMMAND_NAME) {
            return messages::ephemeral("Airlock does not know this command.");
        }
        let text = data
            .get("options")
            .and_then(Value::as_array)
            .and_then(|opts| opts.iter().find(|o| o.get("name").and_then(Value::as_str) == Some(COMMAND_OPTION)))
            .and_then(|o| o.get("value"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let channel = interaction
            .get("channel_id")
            .or_else(|| interaction.pointer("/channel/id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let inv = Invocation {
            platform: Platform::Discord,
            user_id: user.to_owned(),
            channel: format!("{}{channel}", super::notifier::CHANNEL_PREFIX),
            text,
        };
        let gateway = self.gateway.clone();
        let mut run = tokio::spawn(async move { commands::run(&gateway, inv).await });
        match tokio::time::timeout(COMMAND_INLINE_WAIT, &mut run).await {
            Ok(Ok(reply)) => command_reply(&reply),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "slash command task failed");
                messages::ephemeral("Airlock could not run this command (internal error).")
            }
            Err(_) => {
                let Some(token) = interaction.get("token").and_then(Value::as_str).map(str::to_owned) else {
                    return messages::ephemeral("Airlock could not run this command (no interaction token).");
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let content = match run.await {
                        Ok(reply) => reply.text,
                        Err(e) => {
                            tracing::error!(error = %e, "slash command task failed");
                            "Airlock could not run this command (internal error).".to_owned()
                        }
                    };
                    let path = format!("/webhooks/{}/{token}/messages/@original", me.application_id);
                    let content = messages::cut(&content, 2000);
                    let body = json!({ "content": content, "allowed_mentions": messages::no_mentions() });
                    if let Err(e) = me.api.call_as(Method::PATCH, &path, Some(&body), Auth::None).await {
                        tracing::warn!(error = %e, "could not edit the slash command answer");
                    }
                });
                json!({ "type": DEFERRED_CHANNEL_MESSAGE, "data": { "flags": 64 } })
            }
        }
    }
}

fn command_reply(reply: &commands::Reply) -> Value {
    if reply.ephemeral {
        messages::ephemeral(&reply.text)
    } else {
        let data = json!({ "content": messages::cut(&reply.text, 2000), "allowed_mentions": messages::no_mentions() });
        json!({ "type": CHANNEL_MESSAGE, "data": data })
    }
}

/// The answer to a vote: a silent acknowledgement when it decided the request (the notifier edits the message
/// for everyone), an ephemeral explanation otherwise.
fn report(approval_id: &str, voted: gateway_core::Result<VoteOutcome>) -> Value {
    match voted {
        Ok(VoteOutcome::Counted { state: ApprovalState::Pending, approvals, quorum }) => {
            tracing::info!(approval = approval_id, approvals, quorum, "approval counted; quorum not reached");
            messages::ephemeral(&format!(
                "Your approval is recorded: {approvals} of {quorum} needed. The call runs once enough people approve."
            ))
        }
        Ok(VoteOutcome::Counted { state, .. }) => {
            tracing::info!(approval = approval_id, state = state.as_str(), "vote decided the approval");
            deferred_update()
        }
        Ok(VoteOutcome::Refused(refusal)) => {
            tracing::info!(approval = approval_id, ?refusal, "vote refused");
            messages::ephemeral(&refusal.explain())
        }
        Err(e) => {
            tracing::error!(approval = approval_id, error = %e, "vote could not be recorded");
            messages::ephemeral("Airlock could not record your vote (internal error). Please try again.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_found_in_action_rows_and_label_components() {
        let rows = json!({ "components": [{ "type": 1, "components": [
            { "type": 4, "custom_id": REASON_INPUT, "value": "too risky" } ] }] });
        assert_eq!(reason_of(&rows).as_deref(), Some("too risky"));
        let input = json!({ "type": 4, "custom_id": REASON_INPUT, "value": "no" });
        let label = json!({ "components": [{ "type": 18, "component": input }] });
        assert_eq!(reason_of(&label).as_deref(), Some("no"));
        assert_eq!(reason_of(&json!({ "components": [] })), None);
    }

    #[test]
    fn user_comes_from_member_in_guilds_and_user_in_dms() {
        assert_eq!(user_id(&json!({ "member": { "user": { "id": "1" } } })), Some("1"));
        assert_eq!(user_id(&json!({ "user": { "id": "2" } })), Some("2"));
        assert_eq!(user_id(&json!({})), None);
    }
}
