//! Queries on `chat_messages`.

use super::{DbResult, Store};
use crate::error::{Error, Result};

/// A chat message row.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ChatRecord {
    pub seq: i64,
    pub id: String,
    pub room_id: String,
    pub lecture_id: String,
    pub participant_id: Option<String>,
    pub user_id: Option<String>,
    pub sender_name: String,
    pub sender_role: String,
    pub text: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
}

/// ChatRecord's fields, in their order.
macro_rules! chat_columns {
    () => {
        "seq, id, room_id, lecture_id, participant_id, user_id, sender_name, sender_role, text, created_at, deleted_at, deleted_by"
    };
}

impl Store {
    /// Saves a message and returns it as stored (with its sequence number).
    pub async fn insert_chat(&self, m: &ChatRecord) -> Result<ChatRecord> {
        let rows: Vec<ChatRecord> = self.write_returning(sqlx::query(concat!(
            "INSERT INTO chat_messages (id, room_id, lecture_id, participant_id, user_id, sender_name, sender_role, text, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ",
            chat_columns!()
        ))
        .bind(&m.id)
        .bind(&m.room_id)
        .bind(&m.lecture_id)
        .bind(m.participant_id.as_deref())
        .bind(m.user_id.as_deref())
        .bind(&m.sender_name)
        .bind(&m.sender_role)
        .bind(&m.text)
        .bind(m.created_at))
        .await
        .db("chat message")?;
        rows.into_iter().next().ok_or_else(|| Error::internal("the stored chat message was not returned"))
    }

    /// Messages of a lecture in order: after sequence number `after` (oldest first), or the latest `limit`.
    pub async fn list_chat(&self, lecture_id: &str, after: Option<i64>, limit: i64) -> Result<Vec<ChatRecord>> {
        match after {
            Some(after) => {
                sqlx::query_as(concat!(
                    "SELECT ",
                    chat_columns!(),
                    " FROM chat_messages WHERE lecture_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                ))
                .bind(lecture_id)
                .bind(after)
                .bind(limit)
                .fetch_all(self.reader())
                .await
            }
            None => {
                sqlx::query_as(concat!(
                    "SELECT * FROM (SELECT ",
                    chat_columns!(),
                    " FROM chat_messages WHERE lecture_id = $1 ORDER BY seq DESC LIMIT $2) latest ORDER BY seq"
                ))
                .bind(lecture_id)
                .bind(limit)
                .fetch_all(self.reader())
                .await
            }
        }
        .db("chat message")
    }

    /// A lecture's messages not deleted, oldest first, all of them (read as one JSON array: a lecture's chat
    /// runs to hundreds of messages).
    pub async fn lecture_chat(&self, lecture_id: &str) -> Result<Vec<ChatRecord>> {
        self.read_rows_as_json(
            "chat message",
            chat_columns!(),
            "FROM chat_messages WHERE lecture_id = $1 AND deleted_at IS NULL",
            "seq",
            lecture_id,
        )
        .await
    }

    pub async fn chat_by_id(&self, lecture_id: &str, id: &str) -> Result<ChatRecord> {
        sqlx::query_as(concat!("SELECT ", chat_columns!(), " FROM chat_messages WHERE lecture_id = $1 AND id = $2"))
            .bind(lecture_id)
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("chat message")?
            .ok_or_else(|| Error::not_found("message_not_found", "no such message in this room"))
    }

    /// Marks a message removed; its text is kept only in the audit log.
    pub async fn delete_chat(&self, lecture_id: &str, id: &str, by: &str) -> Result<()> {
        self.write(sqlx::query(
            "UPDATE chat_messages SET deleted_at = $3, deleted_by = $4, text = '' WHERE lecture_id = $1 AND id = $2",
        )
        .bind(lecture_id)
        .bind(id)
        .bind(crate::time::now_ms())
        .bind(by)
        )
        .await
        .db("chat message")?;
        Ok(())
    }
}
