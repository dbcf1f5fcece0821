//! Approvals: the seam between the pipeline and whoever asks a human (Slack, Discord, the web inbox).
//!
//! The durable approval broker arrives with the approvals feature. Until a notifier is configured, a call
//! that policy holds for approval fails closed: nothing executes and the agent is told why.

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;
use crate::policy::ApprovalRequirement;

/// What an approver needs to see to decide. Everything here is already masked.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalNotice {
    pub approval_id: String,
    pub session_id: String,
    pub call_id: String,
    pub requester: String,
    pub connection: String,
    pub tool: String,
    /// The masked statement or command.
    pub statement: String,
    pub rule: String,
    pub requirement: ApprovalRequirement,
    pub expires_at_ms: i64,
    pub replay_url: String,
}

/// Posts approval requests and their outcomes to humans.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Ask for a decision. An error means the request could not be posted: the call fails closed.
    async fn request_approval(&self, notice: &ApprovalNotice) -> Result<()>;
}
