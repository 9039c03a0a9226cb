//! Queries for in-room control: removing participants, bans, raised hands and speaking rights.

use sqlx::{FromRow, Row};

use super::{DbResult, Store};
use crate::error::{Error, Result};

/// A ban row.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct BanRecord {
    pub id: String,
    /// `None` for a ban across all of the host's rooms.
    pub room_id: Option<String>,
    #[serde(skip)]
    pub host_id: String,
    #[serde(skip)]
    pub fingerprint: String,
    #[serde(skip)]
    pub session_hash: Option<String>,
    /// Stored as a signal for the host, never used to refuse anyone (campus NATs share addresses).
    pub ip: Option<String>,
    pub display_name: Option<String>,
    pub reason: Option<String>,
    pub created_by: Option<String>,
    #[serde(serialize_with = "as_datetime")]
    pub created_at: i64,
}

/// A participant row a ban reached: its room, its lecture, and the entry id or LiveKit identity.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BannedRow {
    pub room_id: String,
    pub lecture_id: String,
    pub key: String,
}

/// What a ban changed: waiting entries turned away (keyed by entry id), and admitted participants to
/// disconnect (keyed by LiveKit identity).
#[derive(Debug, Default)]
pub struct BannedRows {
    pub rejected_entries: Vec<BannedRow>,
    pub removed_identities: Vec<BannedRow>,
}

fn as_datetime<S: serde::Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::time::to_datetime(*ms), s)
}

macro_rules! ban_columns {
    () => {
        "id, room_id, host_id, fingerprint, session_hash, ip, display_name, reason, created_by, created_at"
    };
}

/// The guest rows a new ban covers: $1 its room (NULL: all rooms of host $2), $3 the fingerprint, $4 the
/// session hash. Rows of ended lectures admit no one any more; later lectures check the ban itself.
macro_rules! covered_by_ban {
    () => {
        "kind = 'GUEST' AND (fingerprint = $3 OR (CAST($4 AS TEXT) IS NOT NULL AND session_hash = $4)) \
         AND room_id IN (SELECT id FROM rooms WHERE (CAST($1 AS TEXT) IS NOT NULL AND id = $1) \
         OR (CAST($1 AS TEXT) IS NULL AND host_id = $2)) \
         AND lecture_id IN (SELECT id FROM lectures WHERE status <> 'ENDED')"
    };
}

impl Store {
    /// Marks a participant as removed from the room (kick or ban); their session no longer opens it.
    pub async fn mark_removed(&self, room_id: &str, participant_id: &str, reason: &str) -> Result<()> {
        self.write(
            sqlx::query(
                "UPDATE participants SET removed_at = $3, removed_reason = $4, hand_raised_at = NULL \
             WHERE room_id = $1 AND id = $2",
            )
            .bind(room_id)
            .bind(participant_id)
            .bind(crate::time::now_ms())
            .bind(reason),
        )
        .await
        .db("participant")?;
        Ok(())
    }

    /// Stores a ban and, in the same transaction, refuses every guest row it covers: waiting entries of that
    /// browser (fingerprint) or session are rejected, and every such row — waiting or admitted, in the room or
    /// across the host's rooms — is marked removed, so no stream, token route or approval admits them again.
    /// Returns the rows it changed, as they are now.
    pub async fn insert_ban_and_refuse(&self, ban: &BanRecord) -> Result<BannedRows> {
        let now = crate::time::now_ms();
        let ban = ban.clone();
        let (rejected, removed) = self
            .write_atomic(move |tx| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO bans (id, room_id, host_id, fingerprint, session_hash, ip, display_name, reason, \
                         created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(&ban.id)
                    .bind(ban.room_id.as_deref())
                    .bind(&ban.host_id)
                    .bind(&ban.fingerprint)
                    .bind(ban.session_hash.as_deref())
                    .bind(ban.ip.as_deref())
                    .bind(ban.display_name.as_deref())
                    .bind(ban.reason.as_deref())
                    .bind(ban.created_by.as_deref())
                    .bind(ban.created_at)
                    .execute(&mut *tx)
                    .await
                    .db("ban")?;
                    // First the waiting entries are turned away, then every covered row is marked removed.
                    let statements: [&'static str; 2] = [
                        concat!(
                            "UPDATE participants SET admission = 'REJECTED', reason = 'banned', decided_at = $5, \
                             decided_by = 'ban' WHERE admission = 'PENDING' AND ",
                            covered_by_ban!(),
                            " RETURNING room_id, lecture_id, id AS key"
                        ),
                        concat!(
                            "UPDATE participants SET removed_at = $5, removed_reason = 'banned', hand_raised_at = NULL \
                             WHERE removed_at IS NULL AND ",
                            covered_by_ban!(),
                            " RETURNING room_id, lecture_id, identity AS key, admission"
                        ),
                    ];
                    let mut results = Vec::with_capacity(2);
                    for sql in statements {
                        let rows = sqlx::query(sql)
                            .bind(ban.room_id.as_deref())
                            .bind(&ban.host_id)
                            .bind(&ban.fingerprint)
                            .bind(ban.session_hash.as_deref())
                            .bind(now)
                            .fetch_all(&mut *tx)
                            .await
                            .db("participant")?;
                        results.push(rows);
                    }
                    let removed = results.pop().unwrap_or_default();
                    let rejected = results.pop().unwrap_or_default();
                    Ok((rejected, removed))
                })
            })
            .await?;
        let rejected = rejected.iter().map(BannedRow::from_row).collect::<std::result::Result<_, _>>();
        // Only admitted rows can be connected to LiveKit.
        let admitted = removed
            .iter()
            .filter(|r| r.try_get::<String, _>("admission").is_ok_and(|a| a == "APPROVED"))
            .map(BannedRow::from_row)
            .collect::<std::result::Result<_, _>>();
        Ok(BannedRows {
            rejected_entries: rejected.db("participant")?,
            removed_identities: admitted.db("participant")?,
        })
    }

    /// Bans that apply to a room: its own and its host's all-rooms bans, newest first.
    pub async fn bans_for_room(&self, room_id: &str, host_id: &str) -> Result<Vec<BanRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            ban_columns!(),
            " FROM bans WHERE room_id = $1 OR (room_id IS NULL AND host_id = $2) ORDER BY created_at DESC, id"
        ))
        .bind(room_id)
        .bind(host_id)
        .fetch_all(self.reader())
        .await
        .db("ban")
    }

    /// Every ban of the instance, newest first (for administrators).
    pub async fn all_bans(&self) -> Result<Vec<BanRecord>> {
        sqlx::query_as(concat!("SELECT ", ban_columns!(), " FROM bans ORDER BY created_at DESC, id"))
            .fetch_all(self.reader())
            .await
            .db("ban")
    }

    pub async fn ban_by_id(&self, ban_id: &str) -> Result<Option<BanRecord>> {
        sqlx::query_as(concat!("SELECT ", ban_columns!(), " FROM bans WHERE id = $1"))
            .bind(ban_id)
            .fetch_optional(self.reader())
            .await
            .db("ban")
    }

    /// Lifts a ban that applies to this room; "not found" for any other ban id.
    pub async fn delete_ban(&self, ban_id: &str, room_id: &str, host_id: &str) -> Result<()> {
        let n = self
            .write(
                sqlx::query("DELETE FROM bans WHERE id = $1 AND (room_id = $2 OR (room_id IS NULL AND host_id = $3))")
                    .bind(ban_id)
                    .bind(room_id)
                    .bind(host_id),
            )
            .await
            .db("ban")?
            .rows_affected();
        if n == 0 { Err(Error::not_found("ban_not_found", "no such ban in this room")) } else { Ok(()) }
    }

    /// Raises (`Some(time)`) or lowers (`None`) a participant's hand.
    pub async fn set_hand(&self, room_id: &str, participant_id: &str, raised_at: Option<i64>) -> Result<()> {
        self.write(
            sqlx::query("UPDATE participants SET hand_raised_at = $3 WHERE room_id = $1 AND id = $2")
                .bind(room_id)
                .bind(participant_id)
                .bind(raised_at),
        )
        .await
        .db("participant")?;
        Ok(())
    }

    /// Participants with a raised hand, in the order they raised it.
    pub async fn raised_hands(&self, lecture_id: &str) -> Result<Vec<super::ParticipantRecord>> {
        self.participants_where_hand_raised(lecture_id).await
    }

    /// Records the host's speaking decision for one participant; granting also lowers the hand.
    pub async fn set_publish_granted(&self, room_id: &str, participant_id: &str, granted: bool) -> Result<()> {
        self.write(
            sqlx::query(
                "UPDATE participants SET publish_granted = $3, \
             hand_raised_at = CASE WHEN $3 = 1 THEN NULL ELSE hand_raised_at END WHERE room_id = $1 AND id = $2",
            )
            .bind(room_id)
            .bind(participant_id)
            .bind(i32::from(granted)),
        )
        .await
        .db("participant")?;
        Ok(())
    }
}
