//! The events outbox on PostgreSQL: what the live streams deliver, appended by the replica where it
//! happened and read, in id order, by every replica (see `crate::bus`).

use super::{DbResult, Dialect, Store};
use crate::error::{Error, Result};

/// The advisory lock appends take for their transaction (`confctl3` in ASCII): ids are handed out when a
/// row is inserted but become visible when its transaction commits, so two replicas appending at once could
/// make id 8 visible before id 7 — and a reader that already went past 8 would never deliver 7. Under the
/// lock, appends commit one after the other, in id order.
const APPEND_LOCK: i64 = 0x636f_6e66_6374_6c33;

/// The channel appends notify on; the payload is empty (readers read the table).
pub const EVENTS_CHANNEL: &str = "confctl_events";

/// One event as stored: its id (the stream's event id on every replica), when, which replica wrote it,
/// its room (if it belongs to one) and the event itself as JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub at: i64,
    pub origin: String,
    pub room_id: Option<String>,
    pub payload: String,
}

/// An event to append: its room (if any) and its JSON.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub room_id: Option<String>,
    pub payload: String,
}

/// Rows per `INSERT`: PostgreSQL takes at most 65,535 parameters in one statement.
const ROWS_PER_INSERT: usize = 500;

impl Store {
    fn require_postgres(&self) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            Ok(())
        } else {
            Err(Error::internal("the events outbox is used on PostgreSQL only"))
        }
    }

    /// Appends `events`, in order, in one transaction, and wakes every replica's reader (this one's too)
    /// when it commits.
    pub async fn append_events(&self, origin: &str, at: i64, events: Vec<NewEvent>) -> Result<()> {
        self.require_postgres()?;
        if events.is_empty() {
            return Ok(());
        }
        let origin = origin.to_owned();
        self.write_atomic(move |conn| {
            Box::pin(async move {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPEND_LOCK)
                    .execute(&mut *conn)
                    .await
                    .db("events")?;
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    // `QueryBuilder` would write `?` placeholders (the Any driver's), which PostgreSQL refuses;
                    // the statement is built from numbered placeholders only, the values all bound.
                    let placeholders: Vec<String> = (0..chunk.len())
                        .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                        .collect();
                    let sql =
                        format!("INSERT INTO events (at, origin, room_id, payload) VALUES {}", placeholders.join(", "));
                    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for event in chunk {
                        insert = insert
                            .bind(at)
                            .bind(origin.clone())
                            .bind(event.room_id.clone())
                            .bind(event.payload.clone());
                    }
                    insert.execute(&mut *conn).await.db("events")?;
                }
                sqlx::query("SELECT pg_notify($1, '')").bind(EVENTS_CHANNEL).execute(&mut *conn).await.db("events")?;
                Ok(())
            })
        })
        .await
    }

    /// Up to `limit` events after the id `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        self.require_postgres()?;
        sqlx::query_as("SELECT id, at, origin, room_id, payload FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(self.reader())
            .await
            .db("events")
    }

    /// Up to `limit` events of one room after the id `after`, oldest first.
    pub async fn room_events_after(&self, room_id: &str, after: i64, limit: i64) -> Result<Vec<OutboxRow>> {
        self.require_postgres()?;
        sqlx::query_as(
            "SELECT id, at, origin, room_id, payload FROM events WHERE room_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(room_id.to_owned())
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .db("events")
    }

    /// The newest `limit` events, oldest first (what a starting replica's admin feed can replay).
    pub async fn newest_events(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        self.require_postgres()?;
        let mut rows: Vec<OutboxRow> =
            sqlx::query_as("SELECT id, at, origin, room_id, payload FROM events ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(self.reader())
                .await
                .db("events")?;
        rows.reverse();
        Ok(rows)
    }

    /// The ids of the oldest and newest events still kept, `None` when there are none.
    pub async fn event_id_range(&self) -> Result<Option<(i64, i64)>> {
        self.require_postgres()?;
        let (oldest, newest): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(id), MAX(id) FROM events").fetch_one(self.reader()).await.db("events")?;
        Ok(oldest.zip(newest))
    }

    /// Deletes events older than `before` (ms since the epoch); returns how many.
    pub async fn prune_events(&self, before: i64) -> Result<u64> {
        self.require_postgres()?;
        let done = self.write(sqlx::query("DELETE FROM events WHERE at < $1").bind(before)).await.db("events")?;
        Ok(done.rows_affected())
    }
}
