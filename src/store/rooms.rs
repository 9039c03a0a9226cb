//! Queries on `rooms` and `bans`, and the cache of rooms the join path reads. A lecture's transitions and
//! the webhooks that drive them are `lecture_state`'s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lecture_state::open_lecture;
use super::{DbResult, Flag, Statement, Store, UnknownValue};
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

impl TryFrom<String> for RoomStatus {
    type Error = UnknownValue;
    fn try_from(text: String) -> std::result::Result<Self, UnknownValue> {
        match text.as_str() {
            "READY" => Ok(Self::Ready),
            "LIVE" => Ok(Self::Live),
            "ARCHIVED" => Ok(Self::Archived),
            _ => Err(UnknownValue::new("room status", text)),
        }
    }
}

/// A room row, with its current lecture: the one under way, or the one its next session opens.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RoomRecord {
    pub id: String,
    pub name: String,
    pub invite_code: String,
    pub host_id: String,
    /// Derived from `archived_at` and the current lecture's status (in `room_columns!()`).
    #[sqlx(try_from = "String")]
    pub status: RoomStatus,
    #[sqlx(try_from = "Flag")]
    pub lobby_enabled: bool,
    pub pin_hash: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub webinar_mode: bool,
    #[sqlx(try_from = "Flag")]
    pub locked: bool,
    pub max_participants: Option<i64>,
    #[sqlx(try_from = "Flag")]
    pub guest_screen_share: bool,
    #[sqlx(try_from = "Flag")]
    pub ai_assistant: bool,
    /// Set by the panic button: guests' default rights exclude publishing until "unmute all" (or the
    /// lecture's end).
    #[sqlx(try_from = "Flag")]
    pub guests_muted: bool,
    /// Whether guests may share files.
    #[sqlx(try_from = "Flag")]
    pub guest_uploads: bool,
    /// Captions and summary language; `None` means the instance's default (the AI settings).
    pub language: Option<String>,
    /// Whether guests admitted to a lecture may read its page afterwards.
    #[sqlx(try_from = "Flag")]
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
    /// Raised by every change to the room or its lectures (triggers in the schema see to it), so a copy can
    /// be checked against the stored room in the statement that relies on it.
    pub version: i64,
}

/// The columns of a room with its current lecture; use with `FROM rooms_with_lecture!()`.
macro_rules! room_columns {
    () => {
        "r.id, r.name, r.invite_code, r.host_id, \
         CASE WHEN r.archived_at IS NOT NULL THEN 'ARCHIVED' WHEN l.status = 'LIVE' THEN 'LIVE' ELSE 'READY' END AS status, \
         r.lobby_enabled, r.pin_hash, r.webinar_mode, r.locked, \
         r.max_participants, r.guest_screen_share, r.ai_assistant, r.guests_muted, r.guest_uploads, r.language, \
         r.lectures_for_participants, r.created_at, r.archived_at, l.id AS lecture_id, l.number AS lecture_number, \
         l.started_at AS started_at, \
         (SELECT MAX(e.ended_at) FROM lectures e WHERE e.room_id = r.id) AS last_ended_at, r.version"
    };
}

/// Every room has exactly one lecture that has not ended (a partial unique index keeps it so).
macro_rules! rooms_with_lecture {
    () => {
        " FROM rooms r JOIN lectures l ON l.room_id = r.id AND l.status <> 'ENDED' "
    };
}

/// Rooms as this process last read them, for the join path, where every guest of a lecture-start storm
/// would otherwise read the same room. A copy is kept for at most [`ROOM_CACHE_TTL`] and forgotten at once
/// when this process changes the room; a change made by another process (replicas on one PostgreSQL) is
/// caught by the version check of the statement that relies on the copy, which then reads the room again.
#[derive(Debug, Default)]
pub(crate) struct RoomCache {
    entries: Mutex<HashMap<String, (Arc<RoomRecord>, Instant)>>,
}

/// How long a cached room is used before it is read again.
const ROOM_CACHE_TTL: Duration = Duration::from_secs(10);
/// Rooms cached at most; past this the cache starts over.
const ROOM_CACHE_MAX: usize = 4096;

impl RoomCache {
    pub(super) fn get(&self, id: &str) -> Option<Arc<RoomRecord>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(id).filter(|(_, at)| at.elapsed() < ROOM_CACHE_TTL).map(|(room, _)| room.clone())
    }

    pub(super) fn put(&self, room: Arc<RoomRecord>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= ROOM_CACHE_MAX {
            entries.clear();
        }
        entries.insert(room.id.clone(), (room, Instant::now()));
    }

    pub(super) fn forget(&self, id: &str) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// For changes known by lecture rather than by room (rare: a lecture starting or ending).
    pub(super) fn forget_all(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// Binds the id as `$1` and the settings a host edits as `$2` to `$12`, in the one order creating and
/// editing a room both write them, so a new setting is added in one place.
fn bind_settings(statement: Statement, r: &RoomRecord) -> Statement {
    statement
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
}

impl Store {
    /// Creates a room with its first (open) lecture, in one transaction.
    pub async fn insert_room(&self, r: &RoomRecord) -> Result<()> {
        let r = r.clone();
        self.write_atomic(move |tx| {
            Box::pin(async move {
                bind_settings(
                    sqlx::query(
                        "INSERT INTO rooms (id, name, lobby_enabled, pin_hash, webinar_mode, locked, max_participants, \
                 guest_screen_share, ai_assistant, guest_uploads, language, lectures_for_participants, \
                 invite_code, host_id, guests_muted, created_at, archived_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                    ),
                    &r,
                )
                .bind(&r.invite_code)
                .bind(&r.host_id)
                .bind(i32::from(r.guests_muted))
                .bind(r.created_at)
                .bind(r.archived_at)
                .execute(&mut *tx)
                .await
                .db("room")?;
                open_lecture(tx, &r.id, &r.lecture_id, r.lecture_number, r.created_at).await
            })
        })
        .await
    }

    /// The room as stored now.
    pub async fn room_by_id(&self, id: &str) -> Result<RoomRecord> {
        sqlx::query_as(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("room")?
            .ok_or_else(|| Error::not_found("room_not_found", "no such room"))
    }

    /// The room as this process read it at most a few seconds ago (see [`RoomCache`]): for deciding what to
    /// check, never on its own for what to store. A write that relies on it checks `version`; a refusal
    /// based on it is confirmed against [`Store::room_by_id`].
    pub async fn cached_room(&self, id: &str) -> Result<Arc<RoomRecord>> {
        if let Some(room) = self.rooms.get(id) {
            return Ok(room);
        }
        self.fresh_room(id).await
    }

    /// Reads the room and caches what it read.
    pub async fn fresh_room(&self, id: &str) -> Result<Arc<RoomRecord>> {
        let room = Arc::new(self.room_by_id(id).await?);
        self.rooms.put(room.clone());
        Ok(room)
    }

    /// The stored room's version (`None`: no such room).
    pub(super) async fn room_version(&self, id: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT version FROM rooms WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("room")
    }

    pub async fn room_by_invite_code(&self, code: &str) -> Result<Option<RoomRecord>> {
        sqlx::query_as(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE r.invite_code = $1"))
            .bind(code)
            .fetch_optional(self.reader())
            .await
            .db("room")
    }

    /// Rooms of one host (or all rooms with `None`), newest first.
    pub async fn list_rooms(&self, host_id: Option<&str>) -> Result<Vec<RoomRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            room_columns!(),
            rooms_with_lecture!(),
            "WHERE (CAST($1 AS TEXT) IS NULL OR r.host_id = $1) ORDER BY r.created_at DESC, r.id"
        ))
        .bind(host_id)
        .fetch_all(self.reader())
        .await
        .db("room")
    }

    /// Rooms whose current lecture is live (`true`) or not yet started (`false`), archived ones included.
    pub async fn rooms_by_lecture_state(&self, live: bool) -> Result<Vec<RoomRecord>> {
        sqlx::query_as(concat!("SELECT ", room_columns!(), rooms_with_lecture!(), "WHERE l.status = $1"))
            .bind(if live { "LIVE" } else { "OPEN" })
            .fetch_all(self.reader())
            .await
            .db("room")
    }

    /// Writes every setting of a room (the caller read, changed and validated them).
    pub async fn update_room_settings(&self, r: &RoomRecord) -> Result<()> {
        self.write(bind_settings(
            sqlx::query(
                "UPDATE rooms SET name = $2, lobby_enabled = $3, pin_hash = $4, webinar_mode = $5, locked = $6, \
             max_participants = $7, guest_screen_share = $8, ai_assistant = $9, guest_uploads = $10, \
             language = $11, lectures_for_participants = $12 WHERE id = $1",
            ),
            r,
        ))
        .await
        .db("room")?;
        self.rooms.forget(&r.id);
        Ok(())
    }

    /// Sets or clears the panic mute; clears every participant's individual speaking decision in the current
    /// lecture either way, since the room's rights start over.
    pub async fn set_guests_muted(&self, room: &RoomRecord, muted: bool) -> Result<()> {
        let (room_id, lecture_id) = (room.id.clone(), room.lecture_id.clone());
        self.write_atomic(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE rooms SET guests_muted = $2 WHERE id = $1")
                    .bind(&room_id)
                    .bind(i32::from(muted))
                    .execute(&mut *tx)
                    .await
                    .db("room")?;
                sqlx::query("UPDATE participants SET publish_granted = NULL WHERE lecture_id = $1")
                    .bind(&lecture_id)
                    .execute(&mut *tx)
                    .await
                    .db("participant")?;
                Ok(())
            })
        })
        .await?;
        self.rooms.forget(&room.id);
        Ok(())
    }

    pub async fn set_room_locked(&self, id: &str, locked: bool) -> Result<()> {
        self.write(sqlx::query("UPDATE rooms SET locked = $2 WHERE id = $1").bind(id).bind(i32::from(locked)))
            .await
            .db("room")?;
        self.rooms.forget(id);
        Ok(())
    }

    pub async fn set_invite_code(&self, id: &str, code: &str) -> Result<()> {
        self.write(sqlx::query("UPDATE rooms SET invite_code = $2 WHERE id = $1").bind(id).bind(code))
            .await
            .db("invite code")?;
        self.rooms.forget(id);
        Ok(())
    }

    /// Archives (`Some(at)`) or unarchives (`None`) a room; returns whether it changed.
    pub async fn set_room_archived(&self, id: &str, at: Option<i64>) -> Result<bool> {
        let changed = self
            .write(
                sqlx::query(
                    "UPDATE rooms SET archived_at = $2 WHERE id = $1 \
                     AND (archived_at IS NULL) <> (CAST($2 AS BIGINT) IS NULL)",
                )
                .bind(id)
                .bind(at),
            )
            .await
            .db("room")?
            .rows_affected()
            == 1;
        self.rooms.forget(id);
        Ok(changed)
    }

    pub async fn delete_room(&self, id: &str) -> Result<()> {
        self.write(sqlx::query("DELETE FROM rooms WHERE id = $1").bind(id)).await.db("room")?;
        self.rooms.forget(id);
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
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM bans WHERE (room_id = $1 OR (room_id IS NULL AND host_id = $2)) \
             AND (fingerprint = $3 OR (CAST($4 AS TEXT) IS NOT NULL AND session_hash = $4))",
        )
        .bind(room_id)
        .bind(host_id)
        .bind(fingerprint)
        .bind(session_hash)
        .fetch_one(self.reader())
        .await
        .db("ban")?;
        Ok(n > 0)
    }
}
