//! What happens when someone clicks: `block_actions` (Approve votes at once; Deny opens a modal asking why)
//! and `view_submission` of that modal (votes Deny with the reason). The same handler serves the HTTP
//! endpoint and Socket Mode. Slack wants an answer within 3 s, so callers ack first and the work runs in a
//! spawned task; refusals and errors reach the clicker as ephemeral messages.
//!
//! Payloads are read into small structs holding only the fields we use, so additions to Slack's (large,
//! evolving) payloads never break parsing.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_core::approval::{ApprovalState, VoteDecision, VoteOutcome, VoteRefusal, VoteSource};
use gateway_core::pipeline::Gateway;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use super::api::SlackApi;
use super::blocks::{self, DenyContext};
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: Option<User>,
    trigger_id: Option<String>,
    #[serde(default)]
    actions: Vec<Action>,
    channel: Option<Channel>,
    container: Option<Container>,
    view: Option<View>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Channel {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Container {
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct View {
    callback_id: Option<String>,
    private_metadata: Option<String>,
    state: Option<ViewState>,
}

#[derive(Debug, Deserialize)]
struct ViewState {
    #[serde(default)]
    values: HashMap<String, HashMap<String, InputValue>>,
}

#[derive(Debug, Deserialize)]
struct InputValue {
    value: Option<String>,
}

/// The text typed into the deny modal's reason field.
fn reason_of(view: &View) -> Option<String> {
    view.state
        .as_ref()
        .and_then(|s| s.values.get(blocks::REASON_INPUT))
        .and_then(|b| b.get(blocks::REASON_INPUT))
        .and_then(|v| v.value.clone())
}

/// Handles interaction payloads against the gateway.
#[derive(Debug)]
pub struct Interactions {
    api: SlackApi,
    gateway: Arc<Gateway>,
}

// === impl Interactions ===

impl Interactions {
    /// A handler voting on `gateway` and answering through `api`.
    pub fn new(api: SlackApi, gateway: Arc<Gateway>) -> Self {
        Self { api, gateway }
    }

    /// The gateway votes go to.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Accept one interaction payload (the JSON Slack sends as `payload=` or inside a Socket Mode envelope)
    /// and handle it in the background. Returns the body to answer Slack with right away, if any (a deny modal
    /// submitted with a blank reason stays open with an error under the field). Errors only when the payload
    /// is not an interaction at all.
    pub fn dispatch(self: &Arc<Self>, payload: Value) -> Result<Option<Value>> {
        let payload: Payload = serde_json::from_value(payload)
            .map_err(|e| Error::Payload { context: "interaction".into(), message: e.to_string() })?;
        if payload.kind == "view_submission"
            && let Some(view) = &payload.view
            && view.callback_id.as_deref() == Some(blocks::DENY_MODAL)
            && reason_of(view).is_none_or(|r| r.trim().is_empty())
        {
            return Ok(Some(json!({
                "response_action": "errors",
                "errors": { blocks::REASON_INPUT: VoteRefusal::ReasonRequired.explain() },
            })));
        }
        let user = payload.user.as_ref().map(|u| u.id.clone()).unwrap_or_default();
        let span = tracing::info_span!("slack_interaction", kind = %payload.kind, user = %user);
        let me = self.clone();
        tokio::spawn(async move { me.handle(payload).await }.instrument(span));
        Ok(None)
    }

    async fn handle(&self, payload: Payload) {
        let Some(user) = payload.user.as_ref().map(|u| u.id.as_str()) else {
            tracing::warn!("interaction without a user; ignored");
            return;
        };
        let channel =
            payload.channel.as_ref().map(|c| c.id.clone()).or_else(|| payload.container.as_ref()?.channel_id.clone());
        match payload.kind.as_str() {
            "block_actions" => {
                for action in &payload.actions {
                    let Some(approval_id) = action.value.as_deref() else { continue };
                    match action.action_id.as_str() {
                        blocks::APPROVE_ACTION => self.approve(user, approval_id, channel.as_deref()).await,
                        blocks::DENY_ACTION => {
                            self.ask_reason(user, approval_id, channel.as_deref(), payload.trigger_id.as_deref()).await
                        }
                        // The review link button opens a browser; Slack still tells us. Nothing to do.
                        _ => {}
                    }
                }
            }
            "view_submission" => {
                let Some(view) = &payload.view else { return };
                if view.callback_id.as_deref() == Some(blocks::DENY_MODAL) {
                    self.deny(user, view).await;
                }
            }
            other => tracing::debug!(kind = other, "interaction type not handled"),
        }
    }

    async fn approve(&self, user: &str, approval_id: &str, channel: Option<&str>) {
        let Some(identity) = self.gateway.human_by_chat(VoteSource::Slack, user) else {
            tracing::info!(approval = approval_id, "vote from an unmapped slack user refused");
            self.tell(channel, user, &VoteRefusal::UnknownUser.explain()).await;
            return;
        };
        let voted = self.gateway.vote(approval_id, &identity, VoteDecision::Approve, None, VoteSource::Slack).await;
        self.report(approval_id, channel, user, voted).await;
    }

    /// Deny needs a reason: open the modal (the trigger id is valid for 3 s, so this runs right away).
    async fn ask_reason(&self, user: &str, approval_id: &str, channel: Option<&str>, trigger_id: Option<&str>) {
        if self.gateway.human_by_chat(VoteSource::Slack, user).is_none() {
            self.tell(channel, user, &VoteRefusal::UnknownUser.explain()).await;
            return;
        }
        // Asking for a reason on a request that is already over would only waste the clicker's time.
        if let Ok(Some(rec)) = self.gateway.broker().get(approval_id).await
            && rec.state.is_decided()
        {
            let refusal = match rec.state {
                ApprovalState::Expired => VoteRefusal::Expired,
                state => VoteRefusal::AlreadyDecided { state },
            };
            self.tell(channel, user, &refusal.explain()).await;
            return;
        }
        let Some(trigger_id) = trigger_id else {
            tracing::warn!(approval = approval_id, "deny click without trigger_id; cannot open the reason modal");
            return;
        };
        let ctx = DenyContext { approval_id: approval_id.to_owned(), channel: channel.map(str::to_owned) };
        let opened =
            self.api.call("views.open", &json!({ "trigger_id": trigger_id, "view": blocks::deny_modal(&ctx) })).await;
        if let Err(e) = opened {
            tracing::warn!(approval = approval_id, error = %e, "could not open the deny modal");
            self.tell(channel, user, &format!("Airlock could not open the deny form ({e}). Please try again.")).await;
        }
    }

    async fn deny(&self, user: &str, view: &View) {
        let ctx: Option<DenyContext> = view.private_metadata.as_deref().and_then(|m| serde_json::from_str(m).ok());
        let Some(ctx) = ctx else {
            tracing::warn!("deny modal without readable private_metadata; ignored");
            return;
        };
        let reason = reason_of(view);
        let channel = ctx.channel.as_deref();
        let Some(identity) = self.gateway.human_by_chat(VoteSource::Slack, user) else {
            self.tell(channel, user, &VoteRefusal::UnknownUser.explain()).await;
            return;
        };
        let voted = self
            .gateway
            .vote(&ctx.approval_id, &identity, VoteDecision::Deny, reason.as_deref(), VoteSource::Slack)
            .await;
        self.report(&ctx.approval_id, channel, user, voted).await;
    }

    /// Tell the clicker what their vote did when the message update will not: refusals, partial quorum, errors.
    async fn report(
        &self,
        approval_id: &str,
        channel: Option<&str>,
        user: &str,
        voted: gateway_core::Result<VoteOutcome>,
    ) {
        match voted {
            Ok(VoteOutcome::Counted { state: ApprovalState::Pending, approvals, quorum }) => {
                tracing::info!(approval = approval_id, approvals, quorum, "approval counted; quorum not reached");
                let msg = format!(
                    "Your approval is recorded: {approvals} of {quorum} needed. The call runs once enough people approve."
                );
                self.tell(channel, user, &msg).await;
            }
            Ok(VoteOutcome::Counted { state, .. }) => {
                tracing::info!(approval = approval_id, state = state.as_str(), "vote decided the approval");
            }
            Ok(VoteOutcome::Refused(refusal)) => {
                tracing::info!(approval = approval_id, ?refusal, "vote refused");
                self.tell(channel, user, &refusal.explain()).await;
            }
            Err(e) => {
                tracing::error!(approval = approval_id, error = %e, "vote could not be recorded");
                self.tell(channel, user, "Airlock could not record your vote (internal error). Please try again.")
                    .await;
            }
        }
    }

    /// An ephemeral message only the clicker sees. Best effort.
    async fn tell(&self, channel: Option<&str>, user: &str, text: &str) {
        let Some(channel) = channel else {
            tracing::warn!(user, text, "no channel to answer the clicker in");
            return;
        };
        let sent =
            self.api.call("chat.postEphemeral", &json!({ "channel": channel, "user": user, "text": text })).await;
        if let Err(e) = sent {
            tracing::warn!(user, error = %e, "could not send ephemeral reply");
        }
    }
}
