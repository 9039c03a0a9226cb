//! SQLite's one writer, with group commit.
//!
//! SQLite lets one connection write at a time. With a pool of writers they queue on the file lock under
//! `busy_timeout` (sleeping and retrying), and every write is its own transaction with its own `fsync`
//! (`synchronous = FULL`): a couple of milliseconds each, so a few hundred writes a second however many cores
//! there are. Here one task owns the only write connection. Writes are sent to it as work items; it takes
//! whatever has queued up, runs it all in one `BEGIN IMMEDIATE` … `COMMIT` and only then answers each caller.
//! One `fsync` covers the whole batch, every caller's write is on disk before it hears "done", and nothing
//! waits for a lock. While a batch commits, the next one queues, so batches grow with the load and an idle
//! server still commits a lone write at once.
//!
//! A work item is either one statement (atomic by itself: a failing statement undoes only itself) or a
//! group of statements run under a savepoint, so a group that fails leaves nothing behind while the rest of
//! the batch commits. An error that ends SQLite's transaction itself (disk full, I/O error) fails every
//! item of the batch that already ran, none of which is committed; the items not yet run wait for the next
//! batch.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::FutureExt;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// A statement with its values bound, ready to run on any connection.
pub type Statement = sqlx::query::Query<'static, Any, AnyArguments>;

/// A boxed future borrowing the writer's connection.
pub type BoxFuture<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// How many items one transaction takes at most: bounds how long the write lock is held and how much one
/// failing batch affects.
const MAX_BATCH: usize = 1024;

/// Called once the batch an item ran in has committed (`None`) or failed (the reason).
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

/// What an item left after running: its completion, and whether it ended the batch's transaction.
struct Ran {
    completion: Completion,
    fatal: Option<String>,
}

type Run = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Ran> + Send>;

/// Items are sent with the queue's capacity; when it is full, writers wait for room (back-pressure).
const QUEUE: usize = 8192;

/// The handle writes go through; the task behind it ends when the last handle is dropped or `close` is
/// called.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Message>,
}

enum Message {
    Work(Run),
    Close(oneshot::Sender<()>),
}

impl Writer {
    /// Starts the writer task on `pool`, a pool of exactly one connection (migrations and tests borrow the
    /// same connection between batches).
    pub fn start(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    async fn submit(&self, run: Run) -> Result<()> {
        self.tx.send(Message::Work(run)).await.map_err(|_| closed())
    }

    /// Runs one statement; answers once it is committed.
    pub async fn execute(&self, statement: Statement) -> std::result::Result<AnyQueryResult, sqlx::Error> {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |conn| {
            Box::pin(async move {
                let result = statement.execute(&mut *conn).await;
                statement_ran(result, tx)
            })
        });
        self.submit(run).await.map_err(|_| writer_gone())?;
        rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs one statement that returns rows (`RETURNING`); answers once it is committed.
    pub async fn fetch_all(&self, statement: Statement) -> std::result::Result<Vec<AnyRow>, sqlx::Error> {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |conn| {
            Box::pin(async move {
                let result = statement.fetch_all(&mut *conn).await;
                statement_ran(result, tx)
            })
        });
        self.submit(run).await.map_err(|_| writer_gone())?;
        rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Runs `job` under a savepoint of the batch: all of its statements commit, or (when it returns an
    /// error) none. Answers once the batch is committed.
    pub async fn atomic<R, F>(&self, job: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<R>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R>>();
        let run: Run = Box::new(move |conn| {
            Box::pin(async move {
                let mut savepoint = match conn.begin().await {
                    Ok(savepoint) => savepoint,
                    Err(err) => {
                        let reason = format!("cannot open a savepoint: {err}");
                        return Ran { completion: fail_with(tx), fatal: Some(reason) };
                    }
                };
                let result = job(&mut savepoint).await;
                let fatal = if result.is_ok() {
                    savepoint.commit().await.err().map(|e| format!("cannot release a savepoint: {e}"))
                } else {
                    // Rolling back to the savepoint fails when SQLite already ended the whole transaction.
                    savepoint.rollback().await.err().map(|e| format!("cannot roll back a savepoint: {e}"))
                };
                let completion: Completion = Box::new(move |failed| {
                    let _ = tx.send(match failed {
                        None => result,
                        Some(reason) => Err(batch_failed(reason)),
                    });
                });
                Ran { completion, fatal }
            })
        });
        self.submit(run).await?;
        rx.await.unwrap_or_else(|_| Err(closed()))
    }

    /// Finishes the batch under way and stops the task; later writes fail.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn statement_ran<T: Send + 'static>(
    result: std::result::Result<T, sqlx::Error>,
    tx: oneshot::Sender<std::result::Result<T, sqlx::Error>>,
) -> Ran {
    let fatal = match &result {
        Err(err) if ends_transaction(err) => Some(err.to_string()),
        _ => None,
    };
    let completion: Completion = Box::new(move |failed| {
        let _ = tx.send(match failed {
            None => result,
            Some(reason) => Err(sqlx::Error::Io(std::io::Error::other(format!("write not committed: {reason}")))),
        });
    });
    Ran { completion, fatal }
}

/// A completion for an item that never ran its job: it fails either way.
fn fail_with<R: Send + 'static>(tx: oneshot::Sender<Result<R>>) -> Completion {
    Box::new(move |failed| {
        let _ = tx.send(Err(batch_failed(failed.unwrap_or("the write was abandoned"))));
    })
}

/// Whether a failed statement took SQLite's transaction down with it. Constraint violations and mistakes in a
/// statement (SQLITE_CONSTRAINT, SQLITE_ERROR, …) undo only that statement; I/O errors, a full disk, a lock
/// that could not be had, memory, interruption and corruption roll back everything (or may), as does a lost
/// connection.
fn ends_transaction(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            let primary = db.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff);
            // SQLITE_BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, INTERRUPT 9, IOERR 10, CORRUPT 11, FULL 13,
            // CANTOPEN 14, PROTOCOL 15, NOTADB 26.
            primary.is_none_or(|c| matches!(c, 5..=11 | 13..=15 | 26))
        }
        sqlx::Error::RowNotFound | sqlx::Error::ColumnNotFound(_) | sqlx::Error::ColumnDecode { .. } => false,
        sqlx::Error::Decode(_) | sqlx::Error::TypeNotFound { .. } | sqlx::Error::ColumnIndexOutOfBounds { .. } => false,
        _ => true,
    }
}

fn closed() -> Error {
    Error::unavailable("database_unavailable", "the database is closed")
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

fn batch_failed(reason: &str) -> Error {
    tracing::error!(reason, "a batch of database writes could not be committed");
    Error::unavailable("database_unavailable", "the database could not store this change; try again")
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Message>) {
    let mut queue: VecDeque<Run> = VecDeque::new();
    let mut closing: Option<oneshot::Sender<()>> = None;
    loop {
        if queue.is_empty() && closing.is_none() {
            match rx.recv().await {
                Some(Message::Work(run)) => queue.push_back(run),
                Some(Message::Close(done)) => closing = Some(done),
                None => break,
            }
        }
        // Everything that queued up while the last batch committed joins this one.
        while queue.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(Message::Work(run)) => queue.push_back(run),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !queue.is_empty() {
            batch(&pool, &mut queue).await;
        }
        if let Some(done) = closing.take().filter(|_| queue.is_empty()) {
            rx.close();
            // Items sent before the close still run; later ones find the channel closed.
            while let Some(message) = rx.recv().await {
                if let Message::Work(run) = message {
                    queue.push_back(run);
                }
            }
            while !queue.is_empty() {
                batch(&pool, &mut queue).await;
            }
            let _ = done.send(());
            return;
        }
    }
    while !queue.is_empty() {
        batch(&pool, &mut queue).await;
    }
}

/// Runs up to `MAX_BATCH` items of `queue` in one transaction and answers them. Items left in `queue` (after
/// a failure ended the transaction) run in the next batch.
async fn batch(pool: &AnyPool, queue: &mut VecDeque<Run>) {
    let mut completions: Vec<Completion> = Vec::with_capacity(queue.len().min(MAX_BATCH));
    let outcome: std::result::Result<(), String> = async {
        let mut conn = pool.acquire().await.map_err(|e| format!("no write connection: {e}"))?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| format!("cannot begin: {e}"))?;
        while completions.len() < MAX_BATCH {
            let Some(run) = queue.pop_front() else { break };
            let ran = AssertUnwindSafe(run(&mut tx)).catch_unwind().await;
            match ran {
                Ok(Ran { completion, fatal: None }) => completions.push(completion),
                Ok(Ran { completion, fatal: Some(reason) }) => {
                    completions.push(completion);
                    let _ = tx.rollback().await;
                    return Err(reason);
                }
                // The item's caller hears that the writer dropped its answer; the batch is rolled back.
                Err(_) => {
                    let _ = tx.rollback().await;
                    return Err("a write panicked".to_owned());
                }
            }
        }
        tx.commit().await.map_err(|e| format!("cannot commit: {e}"))
    }
    .await;
    if let Err(reason) = &outcome {
        // With nothing run, the first item is failed rather than retried forever (no connection, no lock).
        if completions.is_empty() {
            if let Some(run) = queue.pop_front() {
                drop(run);
            }
        }
        tracing::error!(reason = %reason, items = completions.len(), "database write batch failed");
    }
    let failed = outcome.err();
    for completion in completions {
        completion(failed.as_deref());
    }
}
