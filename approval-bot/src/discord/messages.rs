//! The Discord messages: the request (an embed plus a row of **Approve** / **Deny** / Review buttons), its
//! decided form (same embed, a status field, no buttons), the outcome reply, and the deny-reason modal.
//!
//! Plain `serde_json` values in Discord's documented shapes. Every message sets `allowed_mentions` to nothing,
//! so an `@everyone` or `<@id>` inside a statement cannot ping anybody; statements sit in a code block whose
//! fence cannot be closed from inside.

use gateway_core::approval::{ApprovalNotice, ApprovalState, ApprovalUpdate};
use serde_json::{Value, json};

use crate::slack::blocks::utc;

/// `custom_id` prefix of the Approve button (`airlock_approve:{approval_id}`).
pub const APPROVE_PREFIX: &str = "airlock_approve:";
/// `custom_id` prefix of the Deny button.
pub const DENY_PREFIX: &str = "airlock_deny:";
/// `custom_id` prefix of the modal asking why (`airlock_deny_reason:{approval_id}`).
pub const DENY_MODAL_PREFIX: &str = "airlock_deny_reason:";
/// `custom_id` of the reason text input in that modal.
pub const REASON_INPUT: &str = "airlock_reason";
/// Statements longer than this (in characters) are cut in the message (embed descriptions hold 4096).
pub const STATEMENT_LIMIT: usize = 3500;

/// Button styles (Discord's numbers).
pub const STYLE_SUCCESS: u8 = 3;
pub const STYLE_DANGER: u8 = 4;
pub const STYLE_LINK: u8 = 5;

const COLOR_PENDING: u32 = 0xF0B232;
const COLOR_APPROVED: u32 = 0x23A559;
const COLOR_DENIED: u32 = 0xDA373C;
const COLOR_EXPIRED: u32 = 0x80848E;

/// Nobody is pinged by anything we post.
pub fn no_mentions() -> Value {
    json!({ "parse": [] })
}

/// Cut to `limit` characters (Discord counts characters, not bytes).
pub fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escape Discord markdown in text from agents or policy, so it is shown as written.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        // Mentions cannot ping (`allowed_mentions` is empty); `<` still stops them rendering as if they did.
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '[' | ']' | '<') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The statement as a code block: fences defused, cut at [`STATEMENT_LIMIT`] characters.
pub fn statement_block(statement: &str) -> String {
    let total = statement.chars().count();
    let shown: String = statement.chars().take(STATEMENT_LIMIT).collect();
    // A ``` inside the statement would end our code block early.
    let body = shown.replace("```", "`\u{200b}``");
    let mut out = format!("```\n{body}\n```");
    if total > STATEMENT_LIMIT {
        out.push_str(&format!(
            "\n*Truncated: {} more characters not shown. Open the review page for the whole statement.*",
            total - STATEMENT_LIMIT
        ));
    }
    out
}

/// A Discord timestamp (shown in the reader's time zone) with the UTC time beside it.
pub fn discord_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    format!("<t:{secs}:f> ({})", utc(secs))
}

/// A link button's URL must be http(s); a misconfigured `public_url` only loses the button.
fn link_ok(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

fn field(name: &str, value: impl Into<String>, inline: bool) -> Value {
    json!({ "name": name, "value": cut(&value.into(), 1024), "inline": inline })
}

/// The agent, and the human it acts for when it says so.
fn requester(notice: &ApprovalNotice) -> String {
    match &notice.on_behalf_of {
        Some(human) => format!("{} on behalf of {}", escape(&notice.requester), escape(human)),
        None => escape(&notice.requester),
    }
}

/// The embed every version of the request message shares.
fn embed(notice: &ApprovalNotice, color: u32, status: Option<String>) -> Value {
    let r = &notice.requirement;
    let mut fields = vec![
        field("Requester", requester(notice), true),
        field("Connection", escape(&notice.connection), true),
        field("Tool", escape(&notice.tool), true),
        field("Rule", format!("`{}`\n{}", notice.rule.replace('`', "'"), escape(&r.reason)), false),
        field("Approvers", format!("{} (quorum {})", escape(&r.approvers.join(", ")), r.quorum), true),
        field("Expires", discord_date(notice.expires_at_ms), true),
    ];
    if let Some(status) = status {
        fields.push(field("Status", status, false));
    }
    let mut embed = json!({
        "title": cut(&format!("Approval needed: {} on {}", notice.tool, notice.connection), 256),
        "description": statement_block(&notice.statement),
        "color": color,
        "fields": fields,
        "footer": { "text": cut(&format!("approval {} · session {}", notice.approval_id, notice.session_id), 2048) },
    });
    if link_ok(&notice.review_url) {
        embed["url"] = Value::String(notice.review_url.clone());
    }
    embed
}

/// The notification text (push notifications, clients without embeds).
pub fn request_text(notice: &ApprovalNotice) -> String {
    cut(
        &format!(
            "Approval needed: {} on {} requested by {} (rule {})",
            escape(&notice.tool),
            escape(&notice.connection),
            requester(notice),
            escape(&notice.rule)
        ),
        2000,
    )
}

/// The request message: embed, and Approve / Deny buttons whose `custom_id`s carry the approval id.
pub fn request_message(notice: &ApprovalNotice) -> Value {
    let mut buttons = vec![
        json!({ "type": 2, "style": STYLE_SUCCESS, "label": "Approve",
                "custom_id": format!("{APPROVE_PREFIX}{}", notice.approval_id) }),
        json!({ "type": 2, "style": STYLE_DANGER, "label": "Deny",
                "custom_id": format!("{DENY_PREFIX}{}", notice.approval_id) }),
    ];
    if link_ok(&notice.review_url) {
        buttons.push(json!({ "type": 2, "style": STYLE_LINK, "label": "Review", "url": notice.review_url }));
    } else {
        tracing::warn!(url = %notice.review_url, "review URL is not http(s); link button omitted");
    }
    json!({
        "content": request_text(notice),
        "embeds": [embed(notice, COLOR_PENDING, None)],
        "components": [{ "type": 1, "components": buttons }],
        "allowed_mentions": no_mentions(),
    })
}

/// The status line of a decided request.
pub fn decision_line(update: &ApprovalUpdate) -> String {
    let by = escape(&update.decided_by.join(", "));
    let when = discord_date(update.at_ms);
    let reason = update.reason.as_deref().map(|r| format!("\n**Reason:** {}", escape(r))).unwrap_or_default();
    match update.state {
        ApprovalState::Approved | ApprovalState::Executing | ApprovalState::Executed => {
            format!("✅ **Approved** by {by} at {when}{reason}")
        }
        ApprovalState::Denied => format!("⛔ **Denied** by {by} at {when}; nothing was executed.{reason}"),
        ApprovalState::Expired => format!("⌛ **Expired** at {when} without a decision; nothing was executed."),
        ApprovalState::Pending => format!("⏳ Still pending ({when}){reason}"),
    }
}

/// The request message after the decision (a PATCH body): the status instead of the buttons.
pub fn decided_message(update: &ApprovalUpdate) -> Value {
    let color = match update.state {
        ApprovalState::Approved | ApprovalState::Executing | ApprovalState::Executed => COLOR_APPROVED,
        ApprovalState::Denied => COLOR_DENIED,
        ApprovalState::Expired | ApprovalState::Pending => COLOR_EXPIRED,
    };
    let line = decision_line(update);
    json!({
        "content": cut(&format!("{} — {}", request_text(&update.notice), line), 2000),
        "embeds": [embed(&update.notice, color, Some(line))],
        "components": [],
        "allowed_mentions": no_mentions(),
    })
}

/// The reply once the approved call ran: its outcome and the replay link.
pub fn finished_text(update: &ApprovalUpdate) -> String {
    cut(
        &format!(
            "**Outcome:** {}\nSession replay: <{}>",
            escape(update.outcome.as_deref().unwrap_or("finished")),
            update.notice.replay_url.replace('>', "%3E")
        ),
        2000,
    )
}

/// The interaction response (type 9, MODAL) asking for a reason when someone clicks Deny.
pub fn deny_modal(approval_id: &str) -> Value {
    json!({
        "type": 9,
        "data": {
            "custom_id": format!("{DENY_MODAL_PREFIX}{approval_id}"),
            "title": "Deny request",
            "components": [{
                "type": 1,
                "components": [{
                    "type": 4,
                    "custom_id": REASON_INPUT,
                    "label": "Why is this denied?",
                    "style": 2,
                    "min_length": 1,
                    "max_length": 1000,
                    "required": true,
                    "placeholder": "The agent is told this reason.",
                }],
            }],
        },
    })
}

/// An ephemeral interaction response (type 4, flag 64): only the clicker sees it.
pub fn ephemeral(text: &str) -> Value {
    json!({ "type": 4, "data": { "content": cut(text, 2000), "flags": 64, "allowed_mentions": no_mentions() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_fences_are_defused_and_long_statements_cut() {
        let block = statement_block("SELECT 1 ``` @everyone");
        assert_eq!(block.matches("```").count(), 2, "{block}");
        let long = "x".repeat(STATEMENT_LIMIT + 10);
        assert!(statement_block(&long).contains("10 more characters"));
    }

    #[test]
    fn markdown_and_mentions_are_escaped() {
        assert_eq!(escape("*a* @here <@1> [x](y)"), "\\*a\\* @here \\<@1\\> \\[x\\](y)");
    }
}
