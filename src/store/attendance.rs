//! Queries on `attendance`: each stay of a participant in a lecture's media room, written from LiveKit's
//! `participant_joined` / `participant_left` webhooks.

use sqlx::AnyConnection;

use super::{DbResult, Store};
use crate::error::Result;

/// One stay in the media room; `left_at` is `None` while it lasts (or when the leave was never reported).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StayRecord {
    pub identity: String,
    pub joined_at: i64,
    pub left_at: Option<i64>,
}

/// Someone of ours entered the media room: a stay begins. A stay still open for the same identity (a leave
/// LiveKit never reported, then a reconnect) ends where the new one begins, so time is not counted twice.
pub(super) async fn joined(tx: &mut AnyConnection, lecture_id: &str, identity: &str, at: i64) -> Result<()> {
    close_open_stay(tx, lecture_id, identity, at).await?;
    // Only people confctl let in are counted (not the assistant, not a stranger LiveKit admitted).
    sqlx::query(
        "INSERT INTO attendance (id, lecture_id, identity, joined_at) SELECT $1, $2, $3, $4 \
         WHERE EXISTS (SELECT 1 FROM participants WHERE lecture_id = $2 AND identity = $3)",
    )
    .bind(crate::ids::new_id())
    .bind(lecture_id)
    .bind(identity)
    .bind(at)
    .execute(&mut *tx)
    .await
    .db("attendance")?;
    Ok(())
}

/// Ends the identity's open stay, if any, at `at`; how many stays it ended.
async fn close_open_stay(tx: &mut AnyConnection, lecture_id: &str, identity: &str, at: i64) -> Result<u64> {
    Ok(sqlx::query("UPDATE attendance SET left_at = $3 WHERE lecture_id = $1 AND identity = $2 AND left_at IS NULL")
        .bind(lecture_id)
        .bind(identity)
        .bind(at)
        .execute(&mut *tx)
        .await
        .db("attendance")?
        .rows_affected())
}

/// Someone left: their open stay ends. A leave without a recorded join (LiveKit may drop webhooks) becomes a
/// stay of its own, from when LiveKit says it began.
pub(super) async fn left(
    tx: &mut AnyConnection,
    lecture_id: &str,
    identity: &str,
    joined_at: Option<i64>,
    at: i64,
) -> Result<()> {
    if close_open_stay(tx, lecture_id, identity, at).await? == 0 {
        sqlx::query(
            "INSERT INTO attendance (id, lecture_id, identity, joined_at, left_at) SELECT $1, $2, $3, $4, $5 \
             WHERE EXISTS (SELECT 1 FROM participants WHERE lecture_id = $2 AND identity = $3) \
             AND NOT EXISTS (SELECT 1 FROM attendance WHERE lecture_id = $2 AND identity = $3 AND joined_at = $4)",
        )
        .bind(crate::ids::new_id())
        .bind(lecture_id)
        .bind(identity)
        .bind(joined_at.unwrap_or(at).min(at))
        .bind(at)
        .execute(&mut *tx)
        .await
        .db("attendance")?;
    }
    Ok(())
}

impl Store {
    /// Every stay in a lecture, by identity and then time.
    pub async fn attendance(&self, lecture_id: &str) -> Result<Vec<StayRecord>> {
        sqlx::query_as(
            "SELECT identity, joined_at, left_at FROM attendance WHERE lecture_id = $1 ORDER BY identity, joined_at",
        )
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("attendance")
    }

    /// Ends the open stays of identities LiveKit no longer lists (their `participant_left` was lost).
    pub async fn close_stays_except(&self, lecture_id: &str, present: &[String], at: i64) -> Result<u64> {
        let open: Vec<String> =
            sqlx::query_scalar("SELECT identity FROM attendance WHERE lecture_id = $1 AND left_at IS NULL")
                .bind(lecture_id)
                .fetch_all(self.reader())
                .await
                .db("attendance")?;
        let mut closed = 0;
        for identity in open {
            if present.contains(&identity) {
                continue;
            }
            closed += self.write(sqlx::query(
                "UPDATE attendance SET left_at = $3 WHERE lecture_id = $1 AND identity = $2 AND left_at IS NULL",
            )
            .bind(lecture_id)
            .bind(&identity)
            .bind(at)
            )
            .await
            .db("attendance")?
            .rows_affected();
        }
        Ok(closed)
    }
}
