//! The group-committing writer: all of SQLite's writes; on PostgreSQL, the rows many callers write alike.
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
//!
//! Rows that many callers write alike (guests joining a lecture) can also go in as [`SharedInsert`] rows:
//! the rows of one kind that queued one after another run as one multi-row statement instead of one
//! statement each, which saves a round trip, a plan and a pass over the indexes per row. On PostgreSQL,
//! where every other write runs on its own, a writer of this kind takes only such rows: guests arriving
//! together are stored with one statement (one commit, one WAL flush) per 64 rather than one each. There each
//! statement commits by itself: a transaction around the batch would cost four round trips more and save
//! nothing, since every row's outcome is its own.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::OnceLock;

use futures::FutureExt;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Execute};
use tokio::sync::{mpsc, oneshot};

use super::Dialect;
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
    Work(Item),
    Close(oneshot::Sender<()>),
}

/// What waits in the writer's queue.
enum Item {
    Run(Run),
    Row(Row),
}

/// An `INSERT … SELECT … FROM (VALUES …) AS v WHERE …` that many callers' rows share: a row's values are
/// `v.column1` … `v.column{width}` in `head` and `tail`; a row its conditions turn away is not stored, and
/// its caller hears so. Each row brings a new key of the table (its primary key), by which the rows stored
/// are told apart from those turned away.
#[derive(Debug)]
pub struct SharedInsert {
    /// `INSERT INTO table (columns) SELECT v.column1, … FROM`; the rows' `(VALUES …` follow.
    pub head: &'static str,
    /// How many values one row binds.
    pub width: usize,
    /// From `) AS v` to the end: the conditions a row must meet to be stored.
    pub tail: &'static str,
    /// `SELECT key FROM table WHERE key IN`: which of a statement's keys it stored, asked only when it stored
    /// fewer rows than it was given. (Not `RETURNING`: SQLite collects returned rows in a table of their own
    /// and sqlx hands them over one by one from its connection thread, a wake-up each.)
    pub stored: &'static str,
    /// The statement's texts, `StatementTexts::new()`.
    pub texts: StatementTexts,
}

/// The texts of a [`SharedInsert`]'s statements, one for each number of rows and dialect, each written the
/// first time it is needed (64 rows are 1,664 placeholders) rather than for every statement.
#[derive(Debug)]
pub struct StatementTexts([OnceLock<Box<str>>; 2 * MAX_ROWS]);

impl StatementTexts {
    pub const fn new() -> Self {
        Self([const { OnceLock::new() }; 2 * MAX_ROWS])
    }
}

impl SharedInsert {
    /// The statement for `rows` rows (1 to [`MAX_ROWS`]) in `dialect`.
    fn text(&'static self, rows: usize, dialect: Dialect) -> &'static str {
        let slot = match dialect {
            Dialect::Sqlite => rows - 1,
            Dialect::Postgres => MAX_ROWS + rows - 1,
        };
        self.texts.0[slot].get_or_init(|| shared_sql(self, rows, dialect).into_boxed_str())
    }
}

/// How many rows one shared statement takes at most.
const MAX_ROWS: usize = 64;

/// How many of `left` rows the next statement takes. On SQLite, a power of two: a group is cut into
/// statements of a handful of sizes (each prepared once on the one write connection), as many as the count
/// has bits set below 64, each a hand-over to SQLite's thread and back (a text for every count was measured
/// no faster there). On PostgreSQL, all of them: each statement is a round trip to the server and a commit of
/// its own, and the writer's batch waits for all of its statements, so one statement of the group's own size
/// (each size prepared once on the writer's connection) is what keeps a batch short.
fn rows_in_statement(left: usize, dialect: Dialect) -> usize {
    let most = left.clamp(1, MAX_ROWS);
    match dialect {
        Dialect::Sqlite => 1 << most.ilog2(),
        Dialect::Postgres => most,
    }
}

/// One caller's row for a [`SharedInsert`].
struct Row {
    insert: &'static SharedInsert,
    /// Whether the row may share a statement: not when its conditions count rows the others would add.
    shareable: bool,
    key: String,
    /// The row's `width` values, encoded by its caller: the writer's thread is the one serial path of every
    /// write, so there it only takes a reference to each.
    values: AnyArguments,
    /// The outcome, and the values back: their text is freed by the caller's thread, which allocated it.
    answer: oneshot::Sender<(std::result::Result<bool, sqlx::Error>, AnyArguments)>,
}

impl Writer {
    /// Starts the writer task on `pool`, a pool of exactly one connection: on SQLite the write connection
    /// (migrations and tests borrow it between batches); on PostgreSQL one of the writer's own, which only
    /// takes shared rows.
    ///
    /// The task runs on a thread of its own: every statement of a batch is a hand-over to SQLite's connection
    /// thread and back, and on the server's runtime each "back" would wait behind whatever request tasks are
    /// queued there, which during a join storm is most of the time the batch takes. On SQLite that runtime
    /// has no I/O driver: the thread then sleeps on a futex rather than in `epoll`, and SQLite's thread wakes
    /// it without a write to an `eventfd`, which a profile showed in every hand-over. (PostgreSQL's
    /// connections are sockets, which need the driver.)
    pub fn start(pool: AnyPool, dialect: Dialect) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let spawned = std::thread::Builder::new().name("confctl-writer".into()).spawn(move || {
            let mut runtime = tokio::runtime::Builder::new_current_thread();
            match dialect {
                Dialect::Sqlite => runtime.enable_time(),
                Dialect::Postgres => runtime.enable_all(),
            };
            match runtime.build() {
                Ok(rt) => rt.block_on(run(pool, dialect, rx)),
                Err(err) => tracing::error!(%err, "cannot start the database writer"),
            }
        });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the database writer thread");
        }
        Self { tx }
    }

    async fn submit(&self, run: Run) -> Result<()> {
        self.tx.send(Message::Work(Item::Run(run))).await.map_err(|_| closed())
    }

    /// Stores one row through `insert`, in one statement with other callers' rows of the same kind when
    /// `shareable`; answers, once committed, whether the statement's conditions let the row (known by
    /// its new primary `key`) in. `bind` binds the row's values, in order.
    pub async fn insert_row(
        &self,
        insert: &'static SharedInsert,
        key: String,
        shareable: bool,
        bind: impl FnOnce(Statement) -> Statement,
    ) -> std::result::Result<bool, sqlx::Error> {
        let values = match bind(sqlx::query("")).take_arguments() {
            Ok(arguments) => arguments.unwrap_or_default(),
            Err(err) => return Err(sqlx::Error::Encode(err)),
        };
        if values.values.0.len() != insert.width {
            let given = values.values.0.len();
            return Err(sqlx::Error::Protocol(format!("a row of {given} values for {} columns", insert.width)));
        }
        let (answer, rx) = oneshot::channel();
        let row = Row { insert, shareable, key, values, answer };
        self.tx.send(Message::Work(Item::Row(row))).await.map_err(|_| writer_gone())?;
        rx.await.map(|(result, _values)| result).unwrap_or_else(|_| Err(writer_gone()))
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
            Some(reason) => Err(not_committed(reason)),
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

fn not_committed(reason: &str) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(format!("write not committed: {reason}")))
}

fn writer_gone() -> sqlx::Error {
    sqlx::Error::PoolClosed
}

fn batch_failed(reason: &str) -> Error {
    tracing::error!(reason, "a batch of database writes could not be committed");
    Error::unavailable("database_unavailable", "the database could not store this change; try again")
}

async fn run(pool: AnyPool, dialect: Dialect, mut rx: mpsc::Receiver<Message>) {
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut closing: Option<oneshot::Sender<()>> = None;
    loop {
        if queue.is_empty() && closing.is_none() {
            match rx.recv().await {
                Some(Message::Work(item)) => queue.push_back(item),
                Some(Message::Close(done)) => closing = Some(done),
                None => break,
            }
        }
        // Everything that queued up while the last batch committed joins this one.
        while queue.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(Message::Work(item)) => queue.push_back(item),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !queue.is_empty() {
            batch(&pool, dialect, &mut queue).await;
        }
        if let Some(done) = closing.take().filter(|_| queue.is_empty()) {
            rx.close();
            // Items sent before the close still run; later ones find the channel closed.
            while let Some(message) = rx.recv().await {
                if let Message::Work(item) = message {
                    queue.push_back(item);
                }
            }
            while !queue.is_empty() {
                batch(&pool, dialect, &mut queue).await;
            }
            let _ = done.send(());
            return;
        }
    }
    while !queue.is_empty() {
        batch(&pool, dialect, &mut queue).await;
    }
}

/// Runs up to `MAX_BATCH` items of `queue` in one transaction and answers them. Items left in `queue` (after
/// a failure ended the transaction) run in the next batch; when the batch could not start at all, every
/// queued item fails with it.
async fn batch(pool: &AnyPool, dialect: Dialect, queue: &mut VecDeque<Item>) {
    let mut completions: Vec<Completion> = Vec::with_capacity(queue.len().min(MAX_BATCH));
    let outcome = match pool.acquire().await {
        Ok(mut conn) => {
            let outcome = match dialect {
                Dialect::Sqlite => transaction(&mut conn, queue, &mut completions).await,
                Dialect::Postgres => one_by_one(&mut conn, queue, &mut completions).await,
            };
            // Handed back here rather than by the connection's drop, which leaves it to a task of this thread's
            // runtime: when the writer stops, that runtime ends before such a task could run, and the
            // connection (an in-memory database with it) would be closed instead of returned.
            conn.return_to_pool().await;
            outcome
        }
        Err(err) => Err(format!("no write connection: {err}")),
    };
    if let Err(reason) = &outcome {
        // With nothing run (no connection, no lock, after waiting for one) everything queued fails now
        // rather than each item waiting as long again in turn.
        if completions.is_empty() {
            queue.clear();
        }
        tracing::error!(reason = %reason, items = completions.len(), "database write batch failed");
    }
    let failed = outcome.err();
    for completion in completions {
        completion(failed.as_deref());
    }
}

/// The transaction of one batch: runs items of `queue` on `conn` until `MAX_BATCH` of them ran or the queue is
/// empty, each item's completion pushed to `completions`, and commits; `Err` with the reason when the
/// transaction ended without a commit.
async fn transaction(
    conn: &mut PoolConnection<Any>,
    queue: &mut VecDeque<Item>,
    completions: &mut Vec<Completion>,
) -> std::result::Result<(), String> {
    // IMMEDIATE: SQLite takes the write lock at once, not at the first write (which could then fail).
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(|e| format!("cannot begin: {e}"))?;
    while completions.len() < MAX_BATCH {
        let Some(run) = next_run(queue, Dialect::Sqlite) else { break };
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

/// PostgreSQL's batch: the items of `queue` run one after another, each statement committing by itself, with
/// no transaction around them — a failed statement undoes only itself there too, and a batch of guests costs
/// a round trip per statement of up to 64 rows instead of five (BEGIN, SAVEPOINT, the rows, RELEASE, COMMIT).
/// Each item's outcome stands as its statements left it; when the connection is lost, the items not yet run
/// wait for the next batch (on a connection of their own).
async fn one_by_one(
    conn: &mut PoolConnection<Any>,
    queue: &mut VecDeque<Item>,
    completions: &mut Vec<Completion>,
) -> std::result::Result<(), String> {
    while completions.len() < MAX_BATCH {
        let Some(run) = next_run(queue, Dialect::Postgres) else { break };
        match AssertUnwindSafe(run(conn)).catch_unwind().await {
            Ok(Ran { completion, fatal }) => {
                completions.push(completion);
                if let Some(reason) = fatal {
                    tracing::error!(reason = %reason, "lost the database connection in a batch of writes");
                    break;
                }
            }
            // The item's caller hears that the writer dropped its answer; what the others stored stands.
            Err(_) => tracing::error!("a write panicked"),
        }
    }
    Ok(())
}

/// The next unit of work in `queue`: an item run alone, or the shared rows of one kind queued one after
/// another (up to `MAX_BATCH` of them), as one item. Rows never overtake other items: a ban queued before a
/// guest's join is stored before the join's statement checks for bans.
fn next_run(queue: &mut VecDeque<Item>, dialect: Dialect) -> Option<Run> {
    let first = match queue.pop_front()? {
        Item::Run(run) => return Some(run),
        Item::Row(row) => row,
    };
    let insert = first.insert;
    let shareable = first.shareable;
    let mut rows = vec![first];
    while shareable && rows.len() < MAX_BATCH {
        match queue.front() {
            Some(Item::Row(next)) if next.shareable && std::ptr::eq(next.insert, insert) => {}
            _ => break,
        }
        if let Some(Item::Row(row)) = queue.pop_front() {
            rows.push(row);
        }
    }
    Some(Box::new(move |conn| Box::pin(insert_rows(conn, dialect, insert, rows))))
}

/// Runs `rows` as few multi-row statements; a statement that fails without ending the transaction (a
/// constraint one row breaks) is run again row by row, so only the row at fault fails.
async fn insert_rows(conn: &mut AnyConnection, dialect: Dialect, insert: &'static SharedInsert, rows: Vec<Row>) -> Ran {
    let mut results: Vec<std::result::Result<bool, sqlx::Error>> = Vec::with_capacity(rows.len());
    let mut fatal = None;
    let mut start = 0;
    while start < rows.len() && fatal.is_none() {
        let left = rows.len() - start;
        let size = rows_in_statement(left, dialect);
        let chunk = &rows[start..start + size];
        match guarded(conn, dialect, shared_statement(insert, chunk, dialect)).await {
            Guarded::Ran(stored) if stored == chunk.len() as u64 => results.extend(chunk.iter().map(|_| Ok(true))),
            Guarded::Ran(_) => match stored_keys(conn, dialect, insert, chunk).await {
                Ok(keys) => results.extend(chunk.iter().map(|row| Ok(keys.contains(&row.key)))),
                Err(err) if ends_batch(&err, dialect) => fatal = Some(err.to_string()),
                // The rows are stored or not; which, this chunk's callers cannot be told.
                Err(err) => results.extend(chunk.iter().map(|_| Err(not_committed(&err.to_string())))),
            },
            Guarded::Fatal(reason) => fatal = Some(reason),
            Guarded::Failed(_) if size > 1 => {
                for row in chunk {
                    match guarded(conn, dialect, shared_statement(insert, std::slice::from_ref(row), dialect)).await {
                        Guarded::Ran(stored) => results.push(Ok(stored == 1)),
                        Guarded::Failed(err) => results.push(Err(err)),
                        Guarded::Fatal(reason) => {
                            fatal = Some(reason);
                            break;
                        }
                    }
                }
            }
            Guarded::Failed(err) => results.push(Err(err)),
        }
        start += size;
    }
    let completion: Completion = Box::new(move |failed| {
        let mut results = results.into_iter();
        for row in rows {
            let result = match (failed, results.next()) {
                (None, Some(result)) => result,
                // The transaction ended before or while this row ran: nothing of it is stored.
                (failed, _) => Err(not_committed(failed.unwrap_or("the write did not run"))),
            };
            let _ = row.answer.send((result, row.values));
        }
    });
    Ran { completion, fatal }
}

/// What a statement of shared rows came to.
enum Guarded {
    /// It ran, storing this many rows.
    Ran(u64),
    /// It failed and was undone; the transaction goes on.
    Failed(sqlx::Error),
    /// The transaction itself is gone (its connection, or an error SQLite rolls everything back for).
    Fatal(String),
}

/// Runs `statement`, whose failure undoes only itself: SQLite does that for every statement in a
/// transaction, and on PostgreSQL the writer's statements commit one by one ([`one_by_one`]).
async fn guarded(conn: &mut AnyConnection, dialect: Dialect, statement: Statement) -> Guarded {
    match statement.execute(&mut *conn).await {
        Ok(done) => Guarded::Ran(done.rows_affected()),
        Err(err) if ends_batch(&err, dialect) => Guarded::Fatal(err.to_string()),
        Err(err) => Guarded::Failed(err),
    }
}

/// Whether a failed statement ends its batch: SQLite's transaction gone ([`ends_transaction`]), or
/// PostgreSQL's connection (anything but an error the server answered with, or an answer that it is going
/// away).
fn ends_batch(err: &sqlx::Error, dialect: Dialect) -> bool {
    match (dialect, err) {
        (Dialect::Sqlite, err) => ends_transaction(err),
        (Dialect::Postgres, sqlx::Error::Database(db)) => db.code().is_none() || super::server_going_away(db.as_ref()),
        (Dialect::Postgres, _) => true,
    }
}

/// Which of `rows`' keys `insert` stored.
async fn stored_keys(
    conn: &mut AnyConnection,
    dialect: Dialect,
    insert: &SharedInsert,
    rows: &[Row],
) -> std::result::Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut sql = format!("{} (", insert.stored);
    for i in 1..=rows.len() {
        if i > 1 {
            sql.push_str(", ");
        }
        push_placeholder(&mut sql, dialect, i);
    }
    sql.push(')');
    let query = rows.iter().fold(sqlx::query_scalar(sqlx::AssertSqlSafe(sql)), |q, row| q.bind(row.key.clone()));
    Ok(query.fetch_all(&mut *conn).await?.into_iter().collect())
}

/// `insert` for `rows` (1 to [`MAX_ROWS`] of them), their values bound in order.
fn shared_statement(insert: &'static SharedInsert, rows: &[Row], dialect: Dialect) -> Statement {
    let sql = insert.text(rows.len(), dialect);
    // `AnyArguments::values` is sqlx's argument buffer, public though not documented (its drivers read it the
    // same way): the rows' values are appended as they are, a reference count each.
    let mut arguments = AnyArguments::default();
    arguments.values.0.reserve_exact(rows.len() * insert.width);
    for row in rows {
        arguments.values.0.extend_from_slice(&row.values.values.0);
    }
    // Given as the `&'static str` it is (made of this file's constants and placeholders only): wrapped in
    // `AssertSqlSafe`, sqlx would copy its 10 KB into a new `Arc` for every statement.
    sqlx::query_with(sql, arguments)
}

/// `insert` for one row, to run where the writer does not (a change's own transaction).
pub fn one_row(insert: &SharedInsert, dialect: Dialect, bind: impl FnOnce(Statement) -> Statement) -> Statement {
    bind(sqlx::query(sqlx::AssertSqlSafe(shared_sql(insert, 1, dialect))))
}

/// Appends the placeholder of the `n`th value (from 1). Anonymous on SQLite: SQLite finds a numbered one by
/// scanning the statement's parameter names, which made binding a 64-row statement cost as much as running it.
fn push_placeholder(sql: &mut String, dialect: Dialect, n: usize) {
    match dialect {
        Dialect::Sqlite => sql.push('?'),
        Dialect::Postgres => {
            sql.push('$');
            sql.push_str(&n.to_string());
        }
    }
}

/// The text of `insert` for `rows` rows, in `dialect`'s placeholders.
fn shared_sql(insert: &SharedInsert, rows: usize, dialect: Dialect) -> String {
    let mut sql = String::with_capacity(insert.head.len() + insert.tail.len() + rows * insert.width * 5);
    sql.push_str(insert.head);
    sql.push_str(" (VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..insert.width {
            if c > 0 {
                sql.push_str(", ");
            }
            push_placeholder(&mut sql, dialect, r * insert.width + c + 1);
        }
        sql.push(')');
    }
    sql.push_str(insert.tail);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROWS: SharedInsert = SharedInsert {
        head: "INSERT INTO t (id, n) SELECT v.column1, v.column2 FROM",
        width: 2,
        tail: ") AS v WHERE v.column2 >= 0",
        stored: "SELECT id FROM t WHERE id IN",
        texts: StatementTexts::new(),
    };

    /// Rows sent together: each caller hears its own outcome — stored, turned away by the conditions, or
    /// failed alone (a key stored already) without failing the rows it shared a statement with.
    async fn shared_rows_each_get_their_own_answer(url: &str, dialect: Dialect) {
        sqlx::any::install_default_drivers();
        // One connection, so the temporary table is the writer's too.
        let pool = sqlx::pool::PoolOptions::<Any>::new().max_connections(1).connect(url).await.unwrap();
        sqlx::query("CREATE TEMPORARY TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO t VALUES ('taken', 0)").execute(&pool).await.unwrap();
        let writer = Writer::start(pool.clone(), dialect);
        let answers = futures::future::join_all((0..300i64).map(|i| {
            let writer = writer.clone();
            async move {
                let (id, n) = match i % 50 {
                    7 => ("taken".to_owned(), i),
                    9 => (format!("r{i}"), -i),
                    _ => (format!("r{i}"), i),
                };
                let bound = (id.clone(), n);
                let answer =
                    writer.insert_row(&ROWS, id, true, move |s: Statement| s.bind(bound.0.clone()).bind(bound.1)).await;
                (i, answer)
            }
        }))
        .await;
        for (i, answer) in &answers {
            match i % 50 {
                7 => assert!(answer.is_err(), "row {i}: {answer:?}"),
                9 => assert!(matches!(answer, Ok(false)), "row {i}: {answer:?}"),
                _ => assert!(matches!(answer, Ok(true)), "row {i}: {answer:?}"),
            }
        }
        writer.close().await;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&pool).await.unwrap();
        assert_eq!(count, 1 + 300 - 6 - 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_rows_on_sqlite() {
        shared_rows_each_get_their_own_answer("sqlite::memory:", Dialect::Sqlite).await;
    }

    /// A row bound with fewer values than its statement's columns is refused before it reaches the writer: in
    /// a shared statement it would shift every later row's values by one.
    #[tokio::test]
    async fn a_row_with_the_wrong_number_of_values_is_refused() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::pool::PoolOptions::<Any>::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TEMPORARY TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)").execute(&pool).await.unwrap();
        let writer = Writer::start(pool.clone(), Dialect::Sqlite);
        let short = writer.insert_row(&ROWS, "a".to_owned(), true, |s: Statement| s.bind("a")).await;
        assert!(matches!(&short, Err(sqlx::Error::Protocol(m)) if m.contains("1 values for 2 columns")), "{short:?}");
        let right = writer.insert_row(&ROWS, "b".to_owned(), true, |s: Statement| s.bind("b").bind(1i64)).await;
        assert!(matches!(right, Ok(true)), "{right:?}");
        writer.close().await;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(&pool).await.unwrap();
        assert_eq!(count, 1);
    }

    /// On PostgreSQL (when the suite's server is there), where the statements commit one by one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_rows_on_postgres() {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => shared_rows_each_get_their_own_answer(&url, Dialect::Postgres).await,
            Err(_) if std::env::var_os("CONFCTL_TEST_REQUIRE_SERVICES").is_some() => {
                panic!("TEST_DATABASE_URL is not set, and the suite requires its services")
            }
            Err(_) => eprintln!("TEST_DATABASE_URL is not set: PostgreSQL not tested here"),
        }
    }
}
