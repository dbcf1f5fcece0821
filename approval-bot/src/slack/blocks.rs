//! The Block Kit messages and the deny modal, built with slack-morphism's model types.
//!
//! Everything that comes from agents or policy is escaped for mrkdwn (`&`, `<`, `>`), so a statement
//! containing `<!channel>` cannot ping a channel or fake a link.

use gateway_core::approval::{ApprovalNotice, ApprovalState, ApprovalUpdate};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "airlock_approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "airlock_deny";
/// `action_id` of the link button to the web review page (Slack still sends an interaction for it; ignored).
pub const REVIEW_ACTION: &str = "airlock_review";
/// `callback_id` of the modal asking why a request is denied.
pub const DENY_MODAL: &str = "airlock_deny_reason";
/// `block_id` / `action_id` of the reason input in that modal.
pub const REASON_INPUT: &str = "airlock_reason";
/// Statements longer than this (in characters) are cut in the message; the review page has them whole.
pub const STATEMENT_LIMIT: usize = 2500;

/// What the deny modal carries through Slack and back (`private_metadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyContext {
    pub approval_id: String,
    /// Channel of the request message, for ephemeral replies.
    pub channel: Option<String>,
}

/// Escape text for Slack mrkdwn.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The statement as shown in a code block: escaped, fences defused, cut at [`STATEMENT_LIMIT`] characters.
pub fn statement_block(statement: &str) -> String {
    let total = statement.chars().count();
    let shown: String = statement.chars().take(STATEMENT_LIMIT).collect();
    // A ``` inside the statement would end our code block early.
    let body = escape(&shown).replace("```", "`\u{200b}``");
    let mut out = format!("```{body}```");
    if total > STATEMENT_LIMIT {
        out.push_str(&format!(
            "\n_Truncated: {} more characters not shown. Open the review page for the whole statement._",
            total - STATEMENT_LIMIT
        ));
    }
    out
}

/// A Slack date token (rendered in the reader's time zone) with a UTC fallback.
pub fn slack_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    format!("<!date^{secs}^{{date_short_pretty}} {{time}}|{}>", utc(secs))
}

/// `2026-11-21 18:40:00 UTC`.
pub fn utc(secs: i64) -> String {
    let (y, m, d, hour, minute, second, _) = gateway_core::store::utc_fields(secs.saturating_mul(1000));
    format!("{y:04}-{m:02}-{d:02} {hour:02}:{minute:02}:{second:02} UTC")
}

fn md(text: impl Into<String>) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text.into()))
}

fn plain(text: &str, limit: usize) -> SlackBlockPlainTextOnly {
    let t: String = text.chars().take(limit).collect();
    SlackBlockPlainTextOnly::from(t)
}

fn section(text: impl Into<String>) -> SlackBlock {
    SlackSectionBlock::new().with_text(md(text)).into()
}

/// The agent, and the human it acts for when it says so.
fn requester(notice: &ApprovalNotice) -> String {
    match &notice.on_behalf_of {
        Some(human) => format!("{} on behalf of {}", escape(&notice.requester), escape(human)),
        None => escape(&notice.requester),
    }
}

fn approvers(notice: &ApprovalNotice) -> String {
    let r = &notice.requirement;
    format!("{} (quorum {})", escape(&r.approvers.join(", ")), r.quorum)
}

/// The blocks every version of the request message shares: what is asked, by whom, why it is held.
fn request_details(notice: &ApprovalNotice) -> Vec<SlackBlock> {
    vec![
        SlackHeaderBlock::new(plain(&format!("Approval needed: {} on {}", notice.tool, notice.connection), 150)).into(),
        SlackSectionBlock::new()
            .with_fields(vec![
                md(format!("*Requester*\n{}", requester(notice))),
                md(format!("*Connection*\n{}", escape(&notice.connection))),
                md(format!("*Tool*\n{}", escape(&notice.tool))),
                md(format!("*Approvers*\n{}", approvers(notice))),
                md(format!("*Expires*\n{}", slack_date(notice.expires_at_ms))),
            ])
            .into(),
        section(format!("*Statement*\n{}", statement_block(&notice.statement))),
        section(format!("*Rule* `{}`\n{}", escape(&notice.rule), escape(&notice.requirement.reason))),
    ]
}

fn context(notice: &ApprovalNotice) -> SlackBlock {
    SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(SlackBlockMarkDownText::new(format!(
        "Approval `{}` · session `{}`",
        escape(&notice.approval_id),
        escape(&notice.session_id)
    )))])
    .into()
}

/// The notification text (shown in push notifications and by clients without Block Kit).
pub fn request_text(notice: &ApprovalNotice) -> String {
    format!(
        "Approval needed: {} on {} requested by {}{} (rule {})",
        notice.tool,
        notice.connection,
        notice.requester,
        notice.on_behalf_of.as_deref().map(|h| format!(" on behalf of {h}")).unwrap_or_default(),
        notice.rule
    )
}

/// The request message: details, Approve / Deny buttons whose value is the approval id, and a review link.
pub fn request_blocks(notice: &ApprovalNotice) -> Vec<SlackBlock> {
    let mut blocks = request_details(notice);
    let mut buttons: Vec<SlackActionBlockElement> = vec![
        SlackBlockButtonElement::new(plain("Approve", 75))
            .with_action_id(SlackActionId(APPROVE_ACTION.into()))
            .with_value(notice.approval_id.clone())
            .with_style(SlackBlockButtonStyle::Primary)
            .into(),
        SlackBlockButtonElement::new(plain("Deny", 75))
            .with_action_id(SlackActionId(DENY_ACTION.into()))
            .with_value(notice.approval_id.clone())
            .with_style(SlackBlockButtonStyle::Danger)
            .into(),
    ];
    // A review URL that does not parse (misconfigured public_url) only loses the link, not the request.
    match url::Url::parse(&notice.review_url) {
        Ok(u) => buttons.push(
            SlackBlockButtonElement::new(plain("Review", 75))
                .with_action_id(SlackActionId(REVIEW_ACTION.into()))
                .with_url(u)
                .into(),
        ),
        Err(e) => tracing::warn!(url = %notice.review_url, error = %e, "review URL does not parse; link omitted"),
    }
    blocks.push(SlackActionsBlock::new(buttons).with_block_id(SlackBlockId("airlock_decision".into())).into());
    blocks.push(context(notice));
    blocks
}

/// The status line of a decided request.
pub fn decision_line(update: &ApprovalUpdate) -> String {
    let by = escape(&update.decided_by.join(", "));
    let when = slack_date(update.at_ms);
    let reason = update.reason.as_deref().map(|r| format!("\n*Reason:* {}", escape(r))).unwrap_or_default();
    match update.state {
        ApprovalState::Approved | ApprovalState::Executing | ApprovalState::Executed => {
            format!(":white_check_mark: *Approved* by {by} at {when}{reason}")
        }
        ApprovalState::Denied => {
            format!(":no_entry: *Denied* by {by} at {when}; nothing was executed.{reason}")
        }
        ApprovalState::Expired => {
            format!(":hourglass: *Expired* at {when} without a decision; nothing was executed.")
        }
        ApprovalState::Pending => format!(":hourglass_flowing_sand: Still pending ({when}){reason}"),
    }
}

/// The request message after the decision: the same details, the status instead of the buttons.
pub fn decided_blocks(update: &ApprovalUpdate) -> Vec<SlackBlock> {
    let mut blocks = request_details(&update.notice);
    blocks.push(SlackDividerBlock::new().into());
    blocks.push(section(decision_line(update)));
    blocks.push(context(&update.notice));
    blocks
}

/// The thread reply once the approved call ran: its outcome and the replay link.
pub fn finished_text(update: &ApprovalUpdate) -> String {
    format!(
        "*Outcome:* {}\n<{}|Session replay>",
        escape(update.outcome.as_deref().unwrap_or("finished")),
        // Slack's mrkdwn treats `&`, `<`, `>` as control characters, also inside links (signed links carry `&`).
        update.notice.replay_url.replace('&', "&amp;").replace('|', "%7C").replace('>', "%3E")
    )
}

/// The modal asking for a reason when someone clicks Deny.
pub fn deny_modal(ctx: &DenyContext) -> SlackView {
    let metadata = serde_json::to_string(ctx).unwrap_or_default();
    SlackView::Modal(
        SlackModalView::new(
            plain("Deny request", 24),
            vec![
                section(format!(
                    "You are denying approval `{}`. Nothing will be executed; the agent sees your reason.",
                    escape(&ctx.approval_id)
                )),
                SlackInputBlock::new(
                    plain("Reason", 2000),
                    SlackBlockPlainTextInputElement::new()
                        .with_action_id(SlackActionId(REASON_INPUT.into()))
                        .with_multiline(true)
                        .with_min_length(1)
                        .with_max_length(1000)
                        .into(),
                )
                .with_block_id(SlackBlockId(REASON_INPUT.into()))
                .into(),
            ],
        )
        .with_callback_id(SlackCallbackId(DENY_MODAL.into()))
        .with_submit(plain("Deny", 24))
        .with_close(plain("Cancel", 24))
        .with_private_metadata(metadata),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_control_sequences_are_escaped() {
        assert_eq!(escape("<!channel> & <http://x|y>"), "&lt;!channel&gt; &amp; &lt;http://x|y&gt;");
        let b = statement_block("SELECT '```' -- <!here>");
        assert!(b.starts_with("```") && b.ends_with("```"), "{b}");
        assert_eq!(b.matches("```").count(), 2, "{b}");
        assert!(!b.contains("<!here>"));
    }

    #[test]
    fn long_statements_are_truncated_with_a_note() {
        let b = statement_block(&"x".repeat(STATEMENT_LIMIT + 10));
        assert!(b.contains("10 more characters"), "{b}");
        assert!(b.len() < 3000, "fits a section block");
    }

    #[test]
    fn requester_shows_on_whose_behalf_the_agent_asks() {
        let mut notice: ApprovalNotice = serde_json::from_value(serde_json::json!({
            "approval_id": "a1", "session_id": "s1", "call_id": "c1", "requester": "ci:chat-bot",
            "connection": "shop", "tool": "sql_query", "statement": "DELETE FROM orders WHERE id = 1",
            "rule": "approve-writes", "channel": "#db", "created_at_ms": 0, "expires_at_ms": 60_000,
            "replay_url": "http://x/sessions/s1", "review_url": "http://x/approvals/a1",
            "requirement": { "approvers": ["dba"], "quorum": 1, "timeout_s": 900, "channel": null, "reason": "r" }
        }))
        .expect("notice without on_behalf_of still parses");
        assert_eq!(requester(&notice), "ci:chat-bot");
        notice.on_behalf_of = Some("alice@example.com <!here>".into());
        assert_eq!(requester(&notice), "ci:chat-bot on behalf of alice@example.com &lt;!here&gt;");
        assert!(request_text(&notice).contains("requested by ci:chat-bot on behalf of alice@example.com"));
        let blocks = serde_json::to_string(&request_blocks(&notice)).expect("blocks serialize");
        assert!(blocks.contains("on behalf of alice@example.com"), "{blocks}");
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
