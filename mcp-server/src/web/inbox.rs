//! The review inbox as an approval channel: with no chat bot configured, a held call is "posted" by simply
//! waiting in `/approvals`, where approvers see the broker's pending list. Without this, such calls would fail
//! closed for lack of a channel even though people can decide them in the browser.

use gateway_core::approval::{ApprovalNotice, ApprovalUpdate, Notifier, async_trait};

pub struct InboxNotifier;

#[async_trait]
impl Notifier for InboxNotifier {
    async fn request_approval(&self, notice: &ApprovalNotice) -> gateway_core::Result<Option<String>> {
        let (approval, url) = (&notice.approval_id, &notice.review_url);
        tracing::info!(%approval, review_url = %url, "approval waits in the web inbox");
        Ok(None)
    }

    async fn approval_decided(&self, _update: &ApprovalUpdate) -> gateway_core::Result<()> {
        Ok(())
    }

    async fn call_finished(&self, _update: &ApprovalUpdate) -> gateway_core::Result<()> {
        Ok(())
    }
}
