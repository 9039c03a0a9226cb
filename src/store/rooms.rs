//! Queries on `rooms`, `bans` and `webhook_events`.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Store, flag, map_err};
use crate::error::{Error, Result};

/// Lifecycle of a room: created by a host, active while LiveKit has it open, ended for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RoomStatus {
    Created,
    Active,
    Ended,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Active => "ACTIVE",
            Self::Ended => "ENDED",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "CREATED" => Some(Self::Created),
            "ACTIVE" => Some(Self::Active),
            "ENDED" => Some(Self::Ended),
            _ => None,
        }
    }
}

/// A room row.
#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: String,
    pub name: String,
    pub invite_code: String,
    pub host_id: String,
    pub status: RoomStatus,
    pub lobby_enabled: bool,
    pub pin_hash: Option<String>,
    pub webinar_mode: bool,
    pub locked: bool,
    pub max_participants: Option<i64>,
    pub guest_screen_share: bool,
    pub ai_assistant: bool,
    /// Set by the panic button: guests' default rights exclude publishing until "unmute all".
    pub guests_muted: bool,
    /// Whether guests may share files.
    pub guest_uploads: bool,
    /// Captions and summary language; `None` means the configured default.
    pub language: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

macro_rules! room_columns {
    () => {
        "id, name, invite_code, host_id, status, lobby_enabled, pin_hash, webinar_mode, locked, max_participants, \
         guest_screen_share, ai_assistant, guests_muted, guest_uploads, language, created_at, started_at, ended_at"
    };
}

fn room_from_row(row: &AnyRow) -> std::result::Result<RoomRecord, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(RoomRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        invite_code: row.try_get("invite_code")?,
        host_id: row.try_get("host_id")?,
        status: RoomStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("room status {status}").into()))?,
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
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

fn rooms_from_rows(rows: &[AnyRow]) -> Result<Vec<RoomRecord>> {
    rows.iter().map(room_from_row).collect::<std::result::Result<_, _>>().map_err(map_err("room"))
}

/// What ending a room changed.
#[derive(Debug, Default)]
pub struct EndedRoom {
    /// False when the room had already ended (nothing changed).
    pub newly_ended: bool,
    /// Lobby entries that were still waiting and are now rejected.
    pub rejected_entries: Vec<String>,
}

impl Store {
    pub async fn insert_room(&self, r: &RoomRecord) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO rooms (",
            room_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.invite_code)
        .bind(&r.host_id)
        .bind(r.status.as_str())
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
        .bind(r.created_at)
        .bind(r.started_at)
        .bind(r.ended_at)
        .execute(self.pool())
        .await
        .map_err(map_err("room"))?;
        Ok(())
    }

    pub async fn room_by_id(&self, id: &str) -> Result<RoomRecord> {
        let row = sqlx::query(concat!("SELECT ", room_columns!(), " FROM rooms WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err("room"))?
            .ok_or_else(|| Error::not_found("room_not_found", "no such room"))?;
        room_from_row(&row).map_err(map_err("room"))
    }

    pub async fn room_by_invite_code(&self, code: &str) -> Result<Option<RoomRecord>> {
        let row = sqlx::query(concat!("SELECT ", room_columns!(), " FROM rooms WHERE invite_code = $1"))
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
            " FROM rooms WHERE (CAST($1 AS TEXT) IS NULL OR host_id = $1) ORDER BY created_at DESC, id"
        ))
        .bind(host_id)
        .fetch_all(self.pool())
        .await
        .map_err(map_err("room"))?;
        rooms_from_rows(&rows)
    }

    pub async fn rooms_with_status(&self, status: RoomStatus) -> Result<Vec<RoomRecord>> {
        let rows = sqlx::query(concat!("SELECT ", room_columns!(), " FROM rooms WHERE status = $1"))
            .bind(status.as_str())
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
             language = $11 WHERE id = $1",
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
        .execute(self.pool())
        .await
        .map_err(map_err("room"))?;
        Ok(())
    }

    /// Sets or clears the panic mute; clears every participant's individual speaking decision and raised
    /// hand either way, since the room's rights start over.
    pub async fn set_guests_muted(&self, id: &str, muted: bool) -> Result<()> {
        let mut tx = self.pool().begin().await.map_err(map_err("room"))?;
        sqlx::query("UPDATE rooms SET guests_muted = $2 WHERE id = $1")
            .bind(id)
            .bind(i32::from(muted))
            .execute(&mut *tx)
            .await
            .map_err(map_err("room"))?;
        sqlx::query("UPDATE participants SET publish_granted = NULL WHERE room_id = $1")
            .bind(id)
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

    /// CREATED → ACTIVE; returns whether it changed.
    pub async fn mark_room_active(&self, id: &str, at: i64) -> Result<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err("room"))?;
        let changed = activate(&mut tx, id, at).await?;
        tx.commit().await.map_err(map_err("room"))?;
        Ok(changed)
    }

    /// Ends a room: status ENDED and every waiting lobby entry rejected, in one transaction.
    pub async fn end_room(&self, id: &str, at: i64) -> Result<EndedRoom> {
        let mut tx = self.pool().begin().await.map_err(map_err("room"))?;
        let ended = end(&mut tx, id, at).await?;
        tx.commit().await.map_err(map_err("room"))?;
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
            WebhookChange::RoomStarted { room_id, at } => {
                WebhookOutcome::RoomStarted(activate(&mut tx, room_id, at).await?)
            }
            WebhookChange::RoomFinished { room_id, at } => {
                WebhookOutcome::RoomFinished(end(&mut tx, room_id, at).await?)
            }
            WebhookChange::ParticipantJoined { room_id, identity, at } => {
                sqlx::query(
                    "UPDATE participants SET joined_at = $3, left_at = NULL WHERE room_id = $1 AND identity = $2",
                )
                .bind(room_id)
                .bind(identity)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err("participant"))?;
                // A participant can only join a room LiveKit has open, even if room_started was lost.
                WebhookOutcome::RoomStarted(activate(&mut tx, room_id, at).await?)
            }
            WebhookChange::ParticipantLeft { room_id, identity, at } => {
                // `participant_left` may arrive without `participant_joined`: keep the earliest plausible join.
                sqlx::query(
                    "UPDATE participants SET left_at = $3, joined_at = COALESCE(joined_at, $3) \
                     WHERE room_id = $1 AND identity = $2",
                )
                .bind(room_id)
                .bind(identity)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(map_err("participant"))?;
                WebhookOutcome::Nothing
            }
            WebhookChange::Ignored => WebhookOutcome::Nothing,
        };
        tx.commit().await.map_err(map_err("webhook event"))?;
        Ok(Some(outcome))
    }
}

/// A state change carried by a webhook.
#[derive(Debug, Clone, Copy)]
pub enum WebhookChange<'a> {
    RoomStarted { room_id: &'a str, at: i64 },
    RoomFinished { room_id: &'a str, at: i64 },
    ParticipantJoined { room_id: &'a str, identity: &'a str, at: i64 },
    ParticipantLeft { room_id: &'a str, identity: &'a str, at: i64 },
    Ignored,
}

/// What applying a webhook changed.
#[derive(Debug)]
pub enum WebhookOutcome {
    /// Whether the room went from CREATED to ACTIVE.
    RoomStarted(bool),
    RoomFinished(EndedRoom),
    Nothing,
}

async fn activate(tx: &mut Transaction<'static, Any>, id: &str, at: i64) -> Result<bool> {
    Ok(sqlx::query("UPDATE rooms SET status = 'ACTIVE', started_at = COALESCE(started_at, $2) WHERE id = $1 AND status = 'CREATED'")
        .bind(id)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(map_err("room"))?
        .rows_affected()
        == 1)
}

async fn end(tx: &mut Transaction<'static, Any>, id: &str, at: i64) -> Result<EndedRoom> {
    let newly_ended =
        sqlx::query("UPDATE rooms SET status = 'ENDED', ended_at = $2 WHERE id = $1 AND status <> 'ENDED'")
            .bind(id)
            .bind(at)
            .execute(&mut **tx)
            .await
            .map_err(map_err("room"))?
            .rows_affected()
            == 1;
    let rows = sqlx::query(
        "UPDATE participants SET admission = 'REJECTED', reason = 'the lecture has ended', decided_at = $2, \
         decided_by = 'system' WHERE room_id = $1 AND admission = 'PENDING' RETURNING id",
    )
    .bind(id)
    .bind(at)
    .fetch_all(&mut **tx)
    .await
    .map_err(map_err("participant"))?;
    let rejected_entries = rows
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<std::result::Result<_, _>>()
        .map_err(map_err("participant"))?;
    Ok(EndedRoom { newly_ended, rejected_entries })
}
