//! A lecture's transitions — OPEN → LIVE → ENDED, with the room's next lecture opened in the same transaction —
//! whether the host ends it or LiveKit's webhooks say so; each webhook applied exactly once, its event id
//! recorded in the transaction that applies it.

use sqlx::AnyConnection;

use super::{DbResult, Store};
use crate::error::Result;

/// What ending a lecture changed.
#[derive(Debug, Default)]
pub struct EndedLecture {
    /// False when the lecture had already ended (nothing changed).
    pub newly_ended: bool,
    /// Lobby entries that were still waiting and are now rejected.
    pub rejected_entries: Vec<String>,
}

impl Store {
    /// OPEN → LIVE; returns whether it changed.
    pub async fn mark_lecture_live(&self, lecture_id: &str, at: i64) -> Result<bool> {
        let changed = self.write(activation(lecture_id, at)).await.db("lecture")?.rows_affected() == 1;
        self.rooms.forget_all();
        Ok(changed)
    }

    /// Ends a lecture: status ENDED, every waiting lobby entry rejected, the panic mute lifted and the room's
    /// next lecture opened, in one transaction.
    pub async fn end_lecture(&self, lecture_id: &str, at: i64) -> Result<EndedLecture> {
        let lecture_id = lecture_id.to_owned();
        let ended = self.write_atomic(move |tx| Box::pin(async move { end(tx, &lecture_id, at).await })).await?;
        self.rooms.forget_all();
        Ok(ended)
    }

    /// Applies one LiveKit webhook exactly once: the event id is recorded in the same transaction as `change`.
    /// Returns `None` for a duplicate delivery.
    pub async fn apply_webhook(
        &self,
        event_id: &str,
        event: &str,
        change: WebhookChange<'_>,
    ) -> Result<Option<WebhookOutcome>> {
        let (event_id, event, change) = (event_id.to_owned(), event.to_owned(), OwnedChange::from(change));
        let outcome = self
            .write_atomic(move |tx| {
                Box::pin(async move {
                    let fresh = sqlx::query(
                        "INSERT INTO webhook_events (id, event, received_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&event_id)
                    .bind(&event)
                    .bind(crate::time::now_ms())
                    .execute(&mut *tx)
                    .await
                    .db("webhook event")?
                    .rows_affected()
                        == 1;
                    if !fresh {
                        return Ok(None);
                    }
                    change.apply(tx).await.map(Some)
                })
            })
            .await?;
        if matches!(outcome, Some(WebhookOutcome::LectureStarted(true) | WebhookOutcome::LectureFinished(_))) {
            self.rooms.forget_all();
        }
        Ok(outcome)
    }
}

/// [`WebhookChange`] with its strings owned, to travel to the writer.
enum OwnedChange {
    RoomStarted { lecture_id: String, at: i64 },
    RoomFinished { lecture_id: String, at: i64 },
    ParticipantJoined { lecture_id: String, identity: String, at: i64 },
    ParticipantLeft { lecture_id: String, identity: String, joined_at: Option<i64>, at: i64 },
    Ignored,
}

impl From<WebhookChange<'_>> for OwnedChange {
    fn from(change: WebhookChange<'_>) -> Self {
        match change {
            WebhookChange::RoomStarted { lecture_id, at } => Self::RoomStarted { lecture_id: lecture_id.into(), at },
            WebhookChange::RoomFinished { lecture_id, at } => Self::RoomFinished { lecture_id: lecture_id.into(), at },
            WebhookChange::ParticipantJoined { lecture_id, identity, at } => {
                Self::ParticipantJoined { lecture_id: lecture_id.into(), identity: identity.into(), at }
            }
            WebhookChange::ParticipantLeft { lecture_id, identity, joined_at, at } => {
                Self::ParticipantLeft { lecture_id: lecture_id.into(), identity: identity.into(), joined_at, at }
            }
            WebhookChange::Ignored => Self::Ignored,
        }
    }
}

impl OwnedChange {
    async fn apply(self, tx: &mut AnyConnection) -> Result<WebhookOutcome> {
        Ok(match self {
            Self::RoomStarted { lecture_id, at } => {
                WebhookOutcome::LectureStarted(activate(tx, &lecture_id, at).await?)
            }
            Self::RoomFinished { lecture_id, at } => WebhookOutcome::LectureFinished(end(tx, &lecture_id, at).await?),
            Self::ParticipantJoined { lecture_id, identity, at } => {
                sqlx::query(
                    "UPDATE participants SET joined_at = $3, left_at = NULL WHERE lecture_id = $1 AND identity = $2",
                )
                .bind(&lecture_id)
                .bind(&identity)
                .bind(at)
                .execute(&mut *tx)
                .await
                .db("participant")?;
                super::attendance::joined(tx, &lecture_id, &identity, at).await?;
                // A participant can only join a room LiveKit has open, even if room_started was lost.
                WebhookOutcome::LectureStarted(activate(tx, &lecture_id, at).await?)
            }
            Self::ParticipantLeft { lecture_id, identity, joined_at, at } => {
                // `participant_left` may arrive without `participant_joined`: keep the earliest plausible join.
                sqlx::query(
                    "UPDATE participants SET left_at = $3, joined_at = COALESCE(joined_at, $4) \
                     WHERE lecture_id = $1 AND identity = $2",
                )
                .bind(&lecture_id)
                .bind(&identity)
                .bind(at)
                .bind(joined_at.unwrap_or(at))
                .execute(&mut *tx)
                .await
                .db("participant")?;
                super::attendance::left(tx, &lecture_id, &identity, joined_at, at).await?;
                WebhookOutcome::Nothing
            }
            Self::Ignored => WebhookOutcome::Nothing,
        })
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

pub(super) async fn open_lecture(
    tx: &mut AnyConnection,
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
        .execute(&mut *tx)
        .await
        .db("lecture")?;
    Ok(())
}

/// OPEN → LIVE for one lecture (no row changes when it is not OPEN).
fn activation(lecture_id: &str, at: i64) -> super::Statement {
    sqlx::query(
        "UPDATE lectures SET status = 'LIVE', started_at = COALESCE(started_at, $2) WHERE id = $1 AND status = 'OPEN'",
    )
    .bind(lecture_id)
    .bind(at)
}

async fn activate(tx: &mut AnyConnection, lecture_id: &str, at: i64) -> Result<bool> {
    Ok(activation(lecture_id, at).execute(&mut *tx).await.db("lecture")?.rows_affected() == 1)
}

async fn end(tx: &mut AnyConnection, lecture_id: &str, at: i64) -> Result<EndedLecture> {
    let ended: Option<(String, i64)> = sqlx::query_as(
        "UPDATE lectures SET status = 'ENDED', ended_at = $2 WHERE id = $1 AND status <> 'ENDED' \
         RETURNING room_id, number",
    )
    .bind(lecture_id)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await
    .db("lecture")?;
    let Some((room_id, number)) = ended else { return Ok(EndedLecture::default()) };
    // The room is ready for its next session at once, with the same invite link; a panic mute was for
    // this session only.
    open_lecture(tx, &room_id, &crate::ids::new_id(), number + 1, at).await?;
    sqlx::query("UPDATE rooms SET guests_muted = 0 WHERE id = $1").bind(&room_id).execute(&mut *tx).await.db("room")?;
    let rejected_entries = sqlx::query_scalar(
        "UPDATE participants SET admission = 'REJECTED', reason = 'the lecture has ended', decided_at = $2, \
         decided_by = 'system' WHERE lecture_id = $1 AND admission = 'PENDING' RETURNING id",
    )
    .bind(lecture_id)
    .bind(at)
    .fetch_all(&mut *tx)
    .await
    .db("participant")?;
    Ok(EndedLecture { newly_ended: true, rejected_entries })
}
