//! The events outbox on PostgreSQL: what the live streams deliver, appended by the replica where it
//! happened and read, in id order, by every replica (see `crate::events::outbox`) — and changes committed
//! with their events: [`Store::atomically`] runs a change's writes in one transaction, and the events
//! published meanwhile are appended in that same transaction, so the change and its events commit (or
//! vanish) together.

use std::future::Future;
use std::sync::Arc;

use sqlx::any::{AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection, Connection};

use super::{BoxFuture, DbResult, Dialect, Statement, Store, settle};
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

/// Events one statement appends at most (PostgreSQL takes at most 65,535 parameters in one statement); the
/// events writer's batches are this size, so each is one statement.
pub const EVENTS_PER_STATEMENT: usize = 500;

impl Store {
    fn require_postgres(&self) -> Result<()> {
        if self.dialect() == Dialect::Postgres {
            Ok(())
        } else {
            Err(Error::internal("the events outbox is used on PostgreSQL only"))
        }
    }

    /// Appends `events` (at most [`EVENTS_PER_STATEMENT`], the events writer's batch), in order, and wakes
    /// every replica's reader (this one's too) when they are committed. They are one statement, which is its
    /// own transaction: one round trip where `BEGIN` … `COMMIT` around it made four, and the append lock held
    /// while the statement runs and commits rather than across two round trips, so replicas appending at
    /// once wait less for each other.
    pub async fn append_events(&self, origin: &str, at: i64, events: Vec<NewEvent>) -> Result<()> {
        self.require_postgres()?;
        if events.is_empty() {
            return Ok(());
        }
        if events.len() > EVENTS_PER_STATEMENT {
            return Err(Error::internal(format!(
                "{} events to append at once; at most {EVENTS_PER_STATEMENT}",
                events.len()
            )));
        }
        self.write(append_statement(origin, at, &events)).await.db("events")?;
        Ok(())
    }

    /// Runs `change` — a domain operation's writes and the events it publishes — as one unit on PostgreSQL:
    /// every write it makes through this store goes into one transaction, the events it publishes are
    /// appended in that transaction, and all of it commits when `change` succeeds (nothing does when it
    /// fails). Reads inside `change` do not see its own writes (they go through the main pool). On SQLite
    /// (one process, whose hub delivers events in memory) `change` just runs.
    pub async fn atomically<R>(&self, origin: &str, at: i64, change: impl Future<Output = Result<R>>) -> Result<R> {
        let Some(pool) = self.changes.as_ref().filter(|_| self.dialect() == Dialect::Postgres) else {
            return change.await;
        };
        if current_change().is_some() {
            // Already inside one: the outer change commits this one too.
            return change.await;
        }
        let tx = pool.begin().await.db("transaction")?;
        let scope = Arc::new(Change { tx: tokio::sync::Mutex::new(Some(tx)), events: std::sync::Mutex::default() });
        let result = CHANGE.scope(scope.clone(), change).await;
        let Some(mut tx) = scope.tx.lock().await.take() else {
            return Err(Error::internal("the change's transaction is gone"));
        };
        let result = match result {
            Ok(value) => {
                let events = std::mem::take(&mut *scope.events.lock().unwrap_or_else(|p| p.into_inner()));
                append(&mut tx, origin, at, &events).await.map(|()| value)
            }
            Err(err) => Err(err),
        };
        settle(tx, result).await
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

/// Appends `events` on `conn` (inside a transaction): under the append lock, so ids become visible in
/// order; with a notification that wakes the readers when the transaction commits.
async fn append(conn: &mut AnyConnection, origin: &str, at: i64, events: &[NewEvent]) -> Result<()> {
    for chunk in events.chunks(EVENTS_PER_STATEMENT) {
        append_statement(origin, at, chunk).execute(&mut *conn).await.db("events")?;
    }
    Ok(())
}

/// The statement appending `events` (at most [`EVENTS_PER_STATEMENT`]): it takes the append lock, asks for
/// the notification (sent when its transaction commits, wherever that is) and inserts the rows. The lock
/// comes first although it is one statement: the rows get their ids (the column's default, `nextval`) as the
/// `INSERT` takes them from the join with the lock's one-row CTE, which is read — once, it is materialised —
/// before the join yields its first row.
fn append_statement(origin: &str, at: i64, events: &[NewEvent]) -> Statement {
    // `QueryBuilder` would write `?` placeholders (the Any driver's), which PostgreSQL refuses; the statement is
    // built from numbered placeholders only, the values all bound.
    let rows: Vec<String> = (0..events.len())
        .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 3, 4 * i + 4, 4 * i + 5, 4 * i + 6))
        .collect();
    let sql = format!(
        "WITH serialised AS MATERIALIZED (SELECT pg_advisory_xact_lock($1), pg_notify($2, '')) \
         INSERT INTO events (at, origin, room_id, payload) SELECT v.at, v.origin, v.room_id, v.payload \
         FROM serialised, (VALUES {}) AS v (at, origin, room_id, payload)",
        rows.join(", ")
    );
    events.iter().fold(
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(APPEND_LOCK).bind(EVENTS_CHANNEL),
        |statement, event| {
            statement.bind(at).bind(origin.to_owned()).bind(event.room_id.clone()).bind(event.payload.clone())
        },
    )
}

tokio::task_local! {
    /// The change [`Store::atomically`] is running on this task, if any.
    static CHANGE: Arc<Change>;
}

/// A change under way: its transaction, and the events published during it.
pub(crate) struct Change {
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, Any>>>,
    events: std::sync::Mutex<Vec<NewEvent>>,
}

/// The change under way on this task, if any.
pub(crate) fn current_change() -> Option<Arc<Change>> {
    CHANGE.try_with(Arc::clone).ok()
}

/// Holds `event` back for the change under way on this task, to be appended when it commits; gives it
/// back when there is none.
pub fn publish_with_change(event: NewEvent) -> std::result::Result<(), NewEvent> {
    match current_change() {
        Some(change) => {
            change.events.lock().unwrap_or_else(|p| p.into_inner()).push(event);
            Ok(())
        }
        None => Err(event),
    }
}

impl Change {
    async fn connection(&self) -> std::result::Result<tokio::sync::MappedMutexGuard<'_, AnyConnection>, sqlx::Error> {
        let guard = self.tx.lock().await;
        tokio::sync::MutexGuard::try_map(guard, |tx| tx.as_mut().map(|tx| &mut **tx))
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    /// One statement of the change, in a savepoint: a statement that fails is undone alone and leaves the
    /// transaction usable (as outside a change, where each statement is its own), so a caller that goes on
    /// after an error (an audit line that could not be written) still commits the rest.
    pub(crate) async fn execute(&self, statement: Statement) -> std::result::Result<AnyQueryResult, sqlx::Error> {
        let mut conn = self.connection().await?;
        let mut savepoint = conn.begin().await?;
        let done = statement.execute(&mut *savepoint).await?;
        savepoint.commit().await?;
        Ok(done)
    }

    /// Like [`Change::execute`], for a statement that returns rows.
    pub(crate) async fn fetch_all(&self, statement: Statement) -> std::result::Result<Vec<AnyRow>, sqlx::Error> {
        let mut conn = self.connection().await?;
        let mut savepoint = conn.begin().await?;
        let rows = statement.fetch_all(&mut *savepoint).await?;
        savepoint.commit().await?;
        Ok(rows)
    }

    /// `job` in a savepoint of the change's transaction: all of its statements or none of them, while the
    /// change goes on either way.
    pub(crate) async fn atomic<R, F>(&self, job: F) -> Result<R>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<R>>,
    {
        let mut conn = self.connection().await.db("transaction")?;
        let mut savepoint = conn.begin().await.db("transaction")?;
        let result = job(&mut savepoint).await;
        settle(savepoint, result).await
    }
}
