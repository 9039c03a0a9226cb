//! Queries on `rooms`, `bans` and `webhook_events`.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, flag, map_err};
use crate::error::{Error, Result};

/// Where a room stands: ready for its next lecture, with a lecture under way, or archived (no more joins;
/// its lectures stay readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoomStatus {
    Ready,
    Live,
    Archived,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Live => "LIVE",
            Self::Archived => "ARCHIVED",
        }
    }
}

/// A room row, with its current lecture: the one under way, or the one its next session opens.
#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: String,
    pub name: String,
    pub invite_code: String,
    pub host_id: String,
    /// Derived from `archived_at` and the current lecture's status.
    pub status: RoomStatus,
    pub lobby_enabled: bool,
    pub pin_hash: Option<String>,
    pub webinar_mode: bool,
    pub locked: bool,
    pub max_participants: Option<i64>,
    pub guest_screen_share: bool,
    pub ai_assistant: bool,
    /// Set by the panic button: guests' default rights exclude publishing until "unmute all" (or the
    /// lecture's end).
    pub guests_muted: bool,
    /// Whether guests may share files.
    pub guest_uploads: bool,
    /// Captions and summary language; `None` means the instance's default (the AI settings).
    pub language: Option<String>,
    /// Whether guests admitted to a lecture may read its page afterwards.
    pub lectures_for_participants: bool,
    pub created_at: i64,
    pub archived_at: Option<i64>,
    /// The current lecture's id: participants, chat, files and captions of this session go there, and the
    /// LiveKit room is named after it.
    pub lecture_id: String,
    pub lecture_number: i64,
    /// When the current lecture went live.
    pub started_at: Option<i64>,
    /// When the room's last lecture ended.
    pub last_ended_at: Option<i64>,
}

/// The columns of a room with its current lecture; use with `FROM rooms_with_lecture!()`.
macro_rules! room_columns {
    () => {
        "r.id, r.name, r.invite_code, r.host_id, r.lobby_enabled, r.pin_hash, r.webinar_mode, r.locked, \
         r.max_participants, r.guest_screen_share, r.ai_assistant, r.guests_muted, r.guest_uploads, r.language, \
         r.lectures_for_participants, r.created_at, r.archived_at, l.id AS lecture_id, l.number AS lecture_number, \
         l.status AS lecture_status, l.started_at AS started_at, \
         (SELECT MAX(e.ended_at) FROM lectures e WHERE e.room_id = r.id) AS last_ended_at"
    };
}

/// Every room has exactly one lecture that has not ended (a partial unique index keeps it so).
macro_rules! rooms_with_lecture {
    () => {
        " FROM rooms r JOIN lectures l ON l.room_id = r.id AND l.status <> 'ENDED' "
    };
}

fn room_from_row(row: &AnyRow) -> std::result::Result<RoomRecord, sqlx::Error> {
    let lecture_status: String = row.try_get("lecture_status")?;
    let archived_at: Option<i64> = row.try_get("archived_at")?;
    Ok(RoomRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        invite_code: row.try_get("invite_code")?,
        host_id: row.try_get("host_id")?,
        status: match (archived_at, lecture_status.as_str()) {
            (Some(_), _) => RoomStatus::Archived,
            (None, "LIVE") => RoomStatus::Live,
            (None, _) => RoomStatus::Ready,
        },
        lobby_enabled: flag(row, "lobby_enabled")?,
        pin_hash: row.try_get("pin_hash")?,
        webinar_mode: flag(row, "webinar_mode")?,
        locked: flag(row, "locked")?,
        max_participants: row.try_get("max_participants")?,
        guest_screen_share: flag(row, "guest_screen_share")?,
        ai_assistant: flag(row, "ai_assistant")?,
        guests_muted: flag(row, "guests_muted")?,
        guest_uploads: flag(row, "guest_uploads")?,
        language: row.try_get("language")?,
        lectures_for_participants: flag(row, "lectures_for_participants")?,
        created_at: row.try_get("created_at")?,
        archived_at,
        lecture_id: row.try_get("lecture_id")?,
        lecture_number: row.try_get("lecture_number")?,
        started_at: row.try_get("started_at")?,
        last_ended_at: row.try_get("last_ended_at")?,
    })
}

fn rooms_from_rows(rows: &[AnyRow]) -> Result<Vec<RoomRecord>> {
    rows.iter().map(room_from_row).collect::<std::result::Result<_, _>>().map_err(map_err("room"))
}

/// What ending a lecture changed.
#[derive(Debug, Default)]
pub struct EndedLecture {
    /// False when the lecture had already ended (nothing changed).
    pub newly_ended: bool,
    /// Lobby entries that were still waiting and are now rejected.
    pub rejected_entries: Vec<String>,
}

impl Store {
    /// Creates a room with its first (open) lecture, in one transaction.
    pub async fn insert_room(&self, r: &RoomRecord) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(map_err("room"))?;
        sqlx::query(
            "INSERT INTO rooms (id, name, invite_code, host_id, lobby_enabled, pin_hash, webinar_mode, locked, \
             max_participants, guest_screen_share, ai_assistant, guests_muted, guest_uploads, language, \
             lectures_for_participants, created_at, archived_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.invite_code)
        .bind(&r.host_id)
        .bind(i32::from(r.lobby_enabled))
        .bind(r.pin_hash.as_deref())
        .bind(i32::from(r.webinar_mode))
        .bind(i32::from(r.locked))
        .bind(r.max_participants)
        .bind(i32::from(r.guest_screen_share))
        .bind(i32::from(r.ai_assistant))
        .bind(i32::from(r.guests_muted))
        .bind(i32::from(r.guest_uploads))
        .bind(r.language.as_deref())
        .bind(i32::from(r.lectures_for_participants))
        .bind(r.created_at)
        .bind(r.archived_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err("room"))?;
        open_lecture(&mut tx, &r.id, &r.lecture_id, r.lecture_number, r.created_at).await?;
        tx.commit().await.map_err(map_err("room"))?;
        Ok(())
    }

    pub async fn room_by_id(&self, id: &str) -> Result<RoomRecord> {
        let row = sqlx::query(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err("room"))?
            .ok_or_else(|| Error::not_found("room_not_found", "no such room"))?;
        room_from_row(&row).map_err(map_err("room"))
    }

    pub async fn room_by_invite_code(&self, code: &str) -> Result<Option<RoomRecord>> {
        let row = sqlx::query(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE r.invite_code = $1"))
            .bind(code)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err("room"))?;
        row.as_ref().map(room_from_row).transpose().map_err(map_err("room"))
    }

    /// Rooms of one host (or all rooms with `None`), newest first.
    pub async fn list_rooms(&self, host_id: Option<&str>) -> Result<Vec<RoomRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            room_columns!(),
            rooms_with_lecture!(),
            "WHERE (CAST($1 AS TEXT) IS NULL OR r.host_id = $1) ORDER BY r.created_at DESC, r.id"
        ))
        .bind(host_id)
        .fetch_all(self.pool())
        .await
        .map_err(map_err("room"))?;
        rooms_from_rows(&rows)
    }

    /// Rooms whose current lecture is live (`true`) or not yet started (`false`), archived ones included.
    pub async fn rooms_by_lecture_state(&self, live: bool) -> Result<Vec<RoomRecord>> {
        let rows = sqlx::query(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE l.status = $1"))
            .bind(if live { "LIVE" } else { "OPEN" })
            .fetch_all(self.pool())
            .await
            .map_err(map_err("room"))?;
        rooms_from_rows(&rows)
    }

    /// Writes every setting of a room (the caller read, changed and validated them).
    pub async fn update_room_settings(&self, r: &RoomRecord) -> Result<()> {
        sqlx::query(
            "UPDATE rooms SET name = $2, lobby_enabled = $3, pin_hash = $4, webinar_mode = $5, locked = $6, \
             max_participants = $7, guest_screen_share = $8, ai_assistant = $9, guest_uploads = $10, \
             language = $11, lectures_for_participants = $12 WHERE id = $1",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(i32::from(r.lobby_enabled))
        .bind(r.pin_hash.as_deref())
        .bind(i32::from(r.webinar_mode))
        .bind(i32::from(r.locked))
        .bind(r.max_participants)
        .bind(i32::from(r.guest_screen_share))
        .bind(i32::from(r.ai_assistant))
        .bind(i32::from(r.guest_uploads))
        .bind(r.language.as_deref())
        .bind(i32::from(r.lectures_for_participants))
        .execute(self.pool())
        .await
        .map_err(map_err("room"))?;
        Ok(())
    }

    /// Sets or clears the panic mute; clears every participant's individual speaking decision in the current
    /// lecture either way, since the room's rights start over.
    pub async fn set_guests_muted(&self, room: &RoomRecord, muted: bool) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(map_err("room"))?;
        sqlx::query("UPDATE rooms SET guests_muted = $2 WHERE id = $1")
            .bind(&room.id)
            .bind(i32::from(muted))
            .execute(&mut *tx)
            .await
            .map_err(map_err("room"))?;
        sqlx::query("UPDATE participants SET publish_granted = NULL WHERE lecture_id = $1")
            .bind(&room.lecture_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err("participant"))?;
        tx.commit().await.map_err(map_err("room"))?;
        Ok(())
    }

    pub async fn set_room_locked(&self, id: &str, locked: bool) -> Result<()> {
        sqlx::query("UPDATE rooms SET locked = $2 WHERE id = $1")
            .bind(id)
            .bind(i32::from(locked))
            .execute(self.pool())
            .await
            .map_err(map_err("room"))?;
        Ok(())
    }

    pub async fn set_invite_code(&self, id: &str, code: &str) -> Result<()> {
        sqlx::query("UPDATE rooms SET invite_code = $2 WHERE id = $1")
            .bind(id)
            .bind(code)
            .execute(self.pool())
            .await
            .map_err(map_err("invite code"))?;
        Ok(())
    }

    /// Archives (`Some(at)`) or unarchives (`None`) a room; returns whether it changed.
    pub async fn set_room_archived(&self, id: &str, at: Option<i64>) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE rooms SET archived_at = $2 WHERE id = $1 AND (archived_at IS NULL) <> (CAST($2 AS BIGINT) IS NULL)",
        )
        .bind(id)
        .bind(at)
        .execute(self.pool())
        .await
        .map_err(map_err("room"))?
        .rows_affected()
            == 1)
    }

    /// OPEN → LIVE; returns whether it changed.
    pub async fn mark_lecture_live(&self, lecture_id: &str, at: i64) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err("lecture"))?;
        let changed = activate(&mut tx, lecture_id, at).await?;
        tx.commit().await.map_err(map_err("lecture"))?;
        Ok(changed)
    }

    /// Ends a lecture: status ENDED, every waiting lobby entry rejected, the panic mute lifted and the room's
    /// next lecture opened, in one transaction.
    pub async fn end_lecture(&self, lecture_id: &str, at: i64) -> Result<EndedLecture> {
        let mut tx = self.pool().begin().await.map_err(map_err("lecture"))?;
        let ended = end(&mut tx, lecture_id, at).await?;
        tx.commit().await.map_err(map_err("lecture"))?;
        Ok(ended)
    }

    pub async fn delete_room(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM rooms WHERE id = $1").bind(id).execute(self.pool()).await.map_err(map_err("room"))?;
        Ok(())
    }

    /// True when a ban matches this fingerprint (or, secondarily, this session) in the room or across the host's
    /// rooms.
    pub async fn is_banned(
        &self,
        room_id: &str,
        host_id: &str,
        fingerprint: &str,
        session_hash: Option<&str>,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM bans WHERE (room_id = $1 OR (room_id IS NULL AND host_id = $2)) \
             AND (fingerprint = $3 OR (CAST($4 AS TEXT) IS NOT NULL AND session_hash = $4))",
        )
        .bind(room_id)
        .bind(host_id)
        .bind(fingerprint)
        .bind(session_hash)
        .fetch_one(self.pool())
        .await
        .map_err(map_err("ban"))?;
        Ok(row.try_get::<i64, _>("n").map_err(map_err("ban"))? > 0)
    }

    /// Applies one LiveKit webhook exactly once: the event id is recorded in the same transaction as `change`.
    /// Returns `None` for a duplicate delivery.
    pub async fn apply_webhook(
        &self,
        event_id: &str,
        event: &str,
        change: WebhookChange<'_>,
    ) -> Result<Option<WebhookOutcome>> {
        let mut tx = self.pool().begin().await.map_err(map_err("webhook event"))?;
        let fresh = sqlx::query(
            "INSERT INTO webhook_events (id, event, received_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event_id)
        .bind(event)
        .bind(crate::time::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(map_err("webhook event"))?
        .rows_affected()
            == 1;
        if !fresh {
            return Ok(None);
        }
        let outcome = match change {
            WebhookChange::RoomStarted { lecture_id, at } => {
                WebhookOutcome::LectureStarted(activate(&mut tx, lecture_id, at).await?)
            }
            WebhookChange::RoomFinished { lecture_id, at } => {
                WebhookOutcome::LectureFinished(end(&mut tx, lecture_id, at).await?)
            }
            WebhookChange::ParticipantJoined { lecture_id, identity, at } => {
                sqlx::query(
                    "UPDATE participants SET joined_at = $3, left_at = NULL WHERE lecture_id = $1 AND identity = $2",
                )
                .bind(lecture_id)
                .bind(identity)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err("participant"))?;
                super::attendance::joined(&mut tx, lecture_id, identity, at).await?;
                // A participant can only join a room LiveKit has open, even if room_started was lost.
                WebhookOutcome::LectureStarted(activate(&mut tx, lecture_id, at).await?)
            }
            WebhookChange::ParticipantLeft { lecture_id, identity, joined_at, at } => {
                // `participant_left` may arrive without `participant_joined`: keep the earliest plausible join.
                sqlx::query(
                    "UPDATE participants SET left_at = $3, joined_at = COALESCE(joined_at, $4) \
                     WHERE lecture_id = $1 AND identity = $2",
                )
                .bind(lecture_id)
                .bind(identity)
                .bind(at)
                .bind(joined_at.unwrap_or(at))
                .execute(&mut *tx)
                .await
                .map_err(map_err("participant"))?;
                super::attendance::left(&mut tx, lecture_id, identity, joined_at, at).await?;
                WebhookOutcome::Nothing
            }
            WebhookChange::Ignored => WebhookOutcome::Nothing,
        };
        tx.commit().await.map_err(map_err("webhook event"))?;
        Ok(Some(outcome))
    }
}

/// A state change carried by a webhook, for the lecture the LiveKit room belongs to.
#[derive(Debug, Clone, Copy)]
pub enum WebhookChange<'a> {
    RoomStarted {
        lecture_id: &'a str,
        at: i64,
    },
    RoomFinished {
        lecture_id: &'a str,
        at: i64,
    },
    ParticipantJoined {
        lecture_id: &'a str,
        identity: &'a str,
        at: i64,
    },
    /// `joined_at`: when LiveKit says this stay began, if it says.
    ParticipantLeft {
        lecture_id: &'a str,
        identity: &'a str,
        joined_at: Option<i64>,
        at: i64,
    },
    Ignored,
}

/// What applying a webhook changed.
#[derive(Debug)]
pub enum WebhookOutcome {
    /// Whether the lecture went from OPEN to LIVE.
    LectureStarted(bool),
    LectureFinished(EndedLecture),
    Nothing,
}

async fn open_lecture(
    tx: &mut Transaction<'static, Any>,
    room_id: &str,
    lecture_id: &str,
    number: i64,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO lectures (id, room_id, number, status, created_at) VALUES ($1, $2, $3, 'OPEN', $4)")
        .bind(lecture_id)
        .bind(room_id)
        .bind(number)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(map_err("lecture"))?;
    Ok(())
}

async fn activate(tx: &mut Transaction<'static, Any>, lecture_id: &str, at: i64) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE lectures SET status = 'LIVE', started_at = COALESCE(started_at, $2) WHERE id = $1 AND status = 'OPEN'",
    )
    .bind(lecture_id)
    .bind(at)
    .execute(&mut **tx)
    .await
    .map_err(map_err("lecture"))?
    .rows_affected()
        == 1)
}

async fn end(tx: &mut Transaction<'static, Any>, lecture_id: &str, at: i64) -> Result<EndedLecture> {
    let ended = sqlx::query(
        "UPDATE lectures SET status = 'ENDED', ended_at = $2 WHERE id = $1 AND status <> 'ENDED' \
         RETURNING room_id, number",
    )
    .bind(lecture_id)
    .bind(at)
    .fetch_optional(&mut **tx)
    .await
    .map_err(map_err("lecture"))?;
    let Some(ended) = ended else { return Ok(EndedLecture::default()) };
    let room_id: String = ended.try_get("room_id").map_err(map_err("lecture"))?;
    let number: i64 = ended.try_get("number").map_err(map_err("lecture"))?;
    // The room is ready for its next session at once, with the same invite link; a panic mute was for
    // this session only.
    open_lecture(tx, &room_id, &crate::ids::new_id(), number + 1, at).await?;
    sqlx::query("UPDATE rooms SET guests_muted = 0 WHERE id = $1")
        .bind(&room_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err("room"))?;
    let rows = sqlx::query(
        "UPDATE participants SET admission = 'REJECTED', reason = 'the lecture has ended', decided_at = $2, \
         decided_by = 'system' WHERE lecture_id = $1 AND admission = 'PENDING' RETURNING id",
    )
    .bind(lecture_id)
    .bind(at)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_err("participant"))?;
    let rejected_entries = rows
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<std::result::Result<_, _>>()
        .map_err(map_err("participant"))?;
    Ok(EndedLecture { newly_ended: true, rejected_entries })
}
