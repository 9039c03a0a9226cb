//! Room chat: messages are saved first and only then broadcast on LiveKit topic `chat`, so nothing is ever
//! shown that the history would not have. Hosts can remove a message (its text stays in the audit log).

use std::time::Duration;

use serde::Serialize;

use crate::admission::Member;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::store::{ChatRecord, RoomRecord, RoomStatus};
use crate::{ids, livekit, ratelimit};

pub const MAX_CHARS: usize = 4000;
pub const TOPIC: &str = "chat";

/// A message as clients see it; `seq` orders messages and pages the history (`?after=seq`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: String,
    pub seq: i64,
    pub sender_name: String,
    /// `host`, `admin` or `guest`.
    pub sender_role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Empty once removed.
    pub text: String,
    pub deleted: bool,
}

impl From<&ChatRecord> for ChatMessage {
    fn from(r: &ChatRecord) -> Self {
        Self {
            id: r.id.clone(),
            seq: r.seq,
            sender_name: r.sender_name.clone(),
            sender_role: r.sender_role.clone(),
            created_at: crate::time::to_datetime(r.created_at),
            text: if r.deleted_at.is_some() { String::new() } else { r.text.clone() },
            deleted: r.deleted_at.is_some(),
        }
    }
}

/// Normalises line endings and checks length (1–4000 characters) and content (no control characters other
/// than newlines and tabs).
pub fn validate_text(text: &str) -> Result<String> {
    let text = text.replace("\r\n", "\n");
    let n = text.chars().count();
    if text.trim().is_empty() || n > MAX_CHARS {
        return Err(Error::invalid("invalid_text", format!("a message has 1 to {MAX_CHARS} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid("invalid_text", "a message may not contain control characters"));
    }
    Ok(text)
}

/// Posts a message: saved, then broadcast. Returns the saved message and whether the live broadcast worked
/// (if not, clients still find it in the history).
pub async fn post(app: &App, room: &RoomRecord, member: &Member, text: &str) -> Result<(ChatMessage, bool)> {
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    let text = validate_text(text)?;
    ratelimit::check(
        app.limiter(),
        &format!("chat:{}:{}", room.id, member.key()),
        app.live().rate_limits.chat_messages_per_minute,
        Duration::from_secs(60),
    )
    .await?;
    let (participant_id, user_id) = match member {
        Member::Guest(p) => (Some(p.id.clone()), None),
        Member::Host(auth) => (None, Some(auth.user.id.clone())),
    };
    let saved = app
        .store()
        .insert_chat(&ChatRecord {
            seq: 0,
            id: ids::new_id(),
            room_id: room.id.clone(),
            lecture_id: room.lecture_id.clone(),
            participant_id,
            user_id,
            sender_name: member.display_name().to_owned(),
            sender_role: member.role(room).to_owned(),
            text,
            created_at: app.clock().now_ms(),
            deleted_at: None,
            deleted_by: None,
        })
        .await?;
    let message = ChatMessage::from(&saved);
    let delivered = broadcast(app, room, &message).await;
    Ok((message, delivered))
}

async fn broadcast(app: &App, room: &RoomRecord, message: &ChatMessage) -> bool {
    let payload = serde_json::to_value(message).unwrap_or_default();
    match app.livekit().send_data(&livekit::room_name(&room.lecture_id), TOPIC, &payload).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, room = %room.id, "chat message saved but not broadcast live");
            false
        }
    }
}

/// The history of the room's current lecture, oldest first: after `after` (a `seq`), or the latest `limit`
/// messages.
pub async fn history(app: &App, room: &RoomRecord, after: Option<i64>, limit: Option<i64>) -> Result<Vec<ChatMessage>> {
    let limit = limit.unwrap_or(100).clamp(1, 500);
    Ok(app.store().list_chat(&room.lecture_id, after, limit).await?.iter().map(ChatMessage::from).collect())
}

/// Removes a message for everyone; the audit log keeps what it said.
pub async fn delete(app: &App, room: &RoomRecord, message_id: &str, actor: &Actor) -> Result<ChatMessage> {
    let original = app.store().chat_by_id(&room.lecture_id, message_id).await?;
    if original.deleted_at.is_none() {
        app.store().delete_chat(&room.lecture_id, message_id, &actor.label).await?;
        audit::record(
            app,
            actor,
            "chat.delete",
            Some(("chat_message", message_id)),
            Some(&room.id),
            serde_json::json!({ "senderName": original.sender_name, "text": original.text }),
        )
        .await;
    }
    let removed = ChatMessage::from(&app.store().chat_by_id(&room.lecture_id, message_id).await?);
    broadcast(app, room, &removed).await;
    Ok(removed)
}
