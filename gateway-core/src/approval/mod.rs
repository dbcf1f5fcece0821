//! Approvals: calls that policy holds until humans decide.
//!
//! The [`broker`] persists each approval (bound to the requester, connection, tool, exact arguments digest and
//! policy version) and every vote, enforces the rules (no self-approval, approver groups only, quorum of
//! distinct people, one deny ends it, expiry even when nobody clicks) and wakes waiters. A [`Notifier`]
//! (Slack, Discord, the web inbox) shows requests to humans and posts decisions and outcomes back.

pub mod broker;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::policy::ApprovalRequirement;

/// Re-exported so notifier implementations need no extra dependency.
pub use async_trait::async_trait;
pub use broker::{
    ApprovalBroker, ApprovalRecord, ApprovalState, Vote, VoteDecision, VoteOutcome, VoteRefusal, VoteSource,
};

/// What an approver needs to see to decide. Everything here is already masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalNotice {
    pub approval_id: String,
    pub session_id: String,
    pub call_id: String,
    /// The agent's identity subject.
    pub requester: String,
    /// The human the agent acts for, when it says so (token claim or trusted header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    pub connection: String,
    pub tool: String,
    /// The masked statement or command.
    pub statement: String,
    pub rule: String,
    pub requirement: ApprovalRequirement,
    /// Channel to post in (the rule's, or the default).
    pub channel: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub replay_url: String,
    /// The web review page for this approval.
    pub review_url: String,
}

/// A decision, or the outcome of the executed call, to post back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalUpdate {
    pub notice: ApprovalNotice,
    pub state: ApprovalState,
    /// Who decided (voters, comma-separated) — empty for expiry.
    pub decided_by: Vec<String>,
    pub reason: Option<String>,
    pub at_ms: i64,
    /// One line on what happened when the call ran (`completed: 3 rows affected`), once it ran.
    pub outcome: Option<String>,
    /// Where the notifier posted the request (e.g. Slack `channel:ts`), as returned by `request_approval`.
    pub notifier_ref: Option<String>,
}

/// Posts approval requests and their outcomes to humans.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Ask for a decision. Returns a reference to the posted message (for later updates). An error means
    /// the request could not be posted: the call fails closed.
    async fn request_approval(&self, notice: &ApprovalNotice) -> Result<Option<String>>;

    /// The approval was decided (approved, denied, expired). Best effort: errors are logged.
    async fn approval_decided(&self, update: &ApprovalUpdate) -> Result<()>;

    /// The approved call ran (or failed); `update.outcome` says how. Best effort: errors are logged.
    async fn call_finished(&self, update: &ApprovalUpdate) -> Result<()>;

    /// Post an announcement (an admin change: policy set, freeze) to `channel`. Default: not supported.
    async fn announce(&self, channel: &str, text: &str) -> Result<()> {
        let _ = (channel, text);
        Ok(())
    }
}
