//! Queries for in-room control: removing participants, bans, raised hands and speaking rights.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, map_err};
use crate::error::{Error, Result};

/// A ban row.
#[derive(Debug, Clone, serde::Serialize)]
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

fn as_datetime<S: serde::Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::time::to_datetime(*ms), s)
}

fn ban_from_row(row: &AnyRow) -> std::result::Result<BanRecord, sqlx::Error> {
    Ok(BanRecord {
        id: row.try_get("id")?,
        room_id: row.try_get("room_id")?,
        host_id: row.try_get("host_id")?,
        fingerprint: row.try_get("fingerprint")?,
        session_hash: row.try_get("session_hash")?,
        ip: row.try_get("ip")?,
        display_name: row.try_get("display_name")?,
        reason: row.try_get("reason")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Marks a participant as removed from the room (kick or ban); their session no longer opens it.
    pub async fn mark_removed(&self, room_id: &str, participant_id: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE participants SET removed_at = $3, removed_reason = $4, hand_raised_at = NULL \
             WHERE room_id = $1 AND id = $2",
        )
        .bind(room_id)
        .bind(participant_id)
        .bind(crate::time::now_ms())
        .bind(reason)
        .execute(self.pool())
        .await
        .map_err(map_err("participant"))?;
        Ok(())
    }

    pub async fn insert_ban(&self, ban: &BanRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO bans (id, room_id, host_id, fingerprint, session_hash, ip, display_name, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        .execute(self.pool())
        .await
        .map_err(map_err("ban"))?;
        Ok(())
    }

    /// Bans that apply to a room: its own and its host's all-rooms bans, newest first.
    pub async fn bans_for_room(&self, room_id: &str, host_id: &str) -> Result<Vec<BanRecord>> {
        let rows = sqlx::query(
            "SELECT id, room_id, host_id, fingerprint, session_hash, ip, display_name, reason, created_by, created_at \
             FROM bans WHERE room_id = $1 OR (room_id IS NULL AND host_id = $2) ORDER BY created_at DESC, id",
        )
        .bind(room_id)
        .bind(host_id)
        .fetch_all(self.pool())
        .await
        .map_err(map_err("ban"))?;
        rows.iter().map(ban_from_row).collect::<std::result::Result<_, _>>().map_err(map_err("ban"))
    }

    /// Lifts a ban that applies to this room; "not found" for any other ban id.
    pub async fn delete_ban(&self, ban_id: &str, room_id: &str, host_id: &str) -> Result<()> {
        let n = sqlx::query("DELETE FROM bans WHERE id = $1 AND (room_id = $2 OR (room_id IS NULL AND host_id = $3))")
            .bind(ban_id)
            .bind(room_id)
            .bind(host_id)
            .execute(self.pool())
            .await
            .map_err(map_err("ban"))?
            .rows_affected();
        if n == 0 { Err(Error::not_found("ban_not_found", "no such ban in this room")) } else { Ok(()) }
    }

    /// Turns away waiting lobby entries of a banned browser (in one room, or in all of a host's rooms).
    /// Returns (room id, entry id) pairs.
    pub async fn reject_pending_fingerprint(
        &self,
        room_id: Option<&str>,
        host_id: &str,
        fingerprint: &str,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "UPDATE participants SET admission = 'REJECTED', reason = 'banned', decided_at = $4, decided_by = 'ban' \
             WHERE admission = 'PENDING' AND fingerprint = $3 AND room_id IN (SELECT id FROM rooms WHERE \
             (CAST($1 AS TEXT) IS NOT NULL AND id = $1) OR (CAST($1 AS TEXT) IS NULL AND host_id = $2)) RETURNING room_id, id",
        )
        .bind(room_id)
        .bind(host_id)
        .bind(fingerprint)
        .bind(crate::time::now_ms())
        .fetch_all(self.pool())
        .await
        .map_err(map_err("participant"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("room_id")?, r.try_get("id")?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(map_err("participant"))
    }

    /// Raises (`Some(time)`) or lowers (`None`) a participant's hand.
    pub async fn set_hand(&self, room_id: &str, participant_id: &str, raised_at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE participants SET hand_raised_at = $3 WHERE room_id = $1 AND id = $2")
            .bind(room_id)
            .bind(participant_id)
            .bind(raised_at)
            .execute(self.pool())
            .await
            .map_err(map_err("participant"))?;
        Ok(())
    }

    /// Participants with a raised hand, in the order they raised it.
    pub async fn raised_hands(&self, room_id: &str) -> Result<Vec<super::ParticipantRecord>> {
        self.participants_where_hand_raised(room_id).await
    }

    /// Records the host's speaking decision for one participant; granting also lowers the hand.
    pub async fn set_publish_granted(&self, room_id: &str, participant_id: &str, granted: bool) -> Result<()> {
        sqlx::query(
            "UPDATE participants SET publish_granted = $3, \
             hand_raised_at = CASE WHEN $3 = 1 THEN NULL ELSE hand_raised_at END WHERE room_id = $1 AND id = $2",
        )
        .bind(room_id)
        .bind(participant_id)
        .bind(i32::from(granted))
        .execute(self.pool())
        .await
        .map_err(map_err("participant"))?;
        Ok(())
    }
}
