//! The database: one query layer over SQLite and PostgreSQL (sqlx's `Any` driver with portable SQL), its
//! migrations, and the mapping of database failures to domain errors. No SQL lives outside this module.
//!
//! Reads and writes take different paths. Reads go to [`Store::reader`], a pool (on SQLite, of read-only
//! connections beside the writer, which WAL allows). Writes go through [`Store::write`] (one statement),
//! [`Store::write_returning`] (one statement with `RETURNING`) or [`Store::write_atomic`] (several
//! statements, all or none). On SQLite those reach the one writer connection, which commits whatever queued
//! up together (see `writer`); on PostgreSQL a statement runs on its own and a group in its own transaction.
//! Either way a write has reached the disk when the call returns.

mod api_tokens;
mod assistant;
mod attendance;
mod audit;
mod chat;
mod drive;
mod files;
mod instance;
mod lecture_state;
mod lectures;
pub mod migrations;
mod moderation;
mod outbox;
mod participants;
mod replicas;
mod rooms;
mod sessions;
mod users;
mod writer;

pub use api_tokens::{ApiTokenRecord, ApiTokenScope};
pub use assistant::{AgentTokenRecord, ArtifactRecord, ArtifactState, SegmentRecord};
pub use attendance::StayRecord;
pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use chat::ChatRecord;
pub use drive::{DriveAuthorizationRecord, DriveConnectionRecord, DriveKeyRecord};
pub use files::FileRecord;
pub use lecture_state::{EndedLecture, WebhookChange, WebhookOutcome};
pub use lectures::{LectureRecord, LectureStatus, SegmentHit, ShareRecord};
pub use moderation::{BanRecord, BannedRow, BannedRows};
pub use outbox::{EVENTS_CHANNEL, EVENTS_PER_STATEMENT, NewEvent, OutboxRow, publish_with_change};
pub use participants::{Admission, JoinOutcome, ParticipantKind, ParticipantRecord};
pub use replicas::{Counted, LeaderSeat, Listener, ReplicaRecord};
pub use rooms::{RoomRecord, RoomStatus};
pub use sessions::SessionRecord;
pub use users::{NewUser, Role, UserRecord};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor};

pub(crate) use writer::{BoxFuture, Statement};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Which SQL dialect the pool speaks; chosen by the database URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Where reads go.
    reader: AnyPool,
    /// Where writes go: on SQLite the pool of the one write connection (driven by `writer`), on PostgreSQL
    /// the same pool as `reader`.
    write_pool: AnyPool,
    /// The group-committing writer: on SQLite every write goes through it; on PostgreSQL only the rows many
    /// callers write alike (guests joining), committed together, while other writes run on their own.
    writer: writer::Writer,
    /// An in-memory SQLite database: `reader` is the writer's own pool.
    writer_reads: bool,
    dialect: Dialect,
    rooms: std::sync::Arc<rooms::RoomCache>,
    /// PostgreSQL's URL, for the connection that listens to other replicas' notifications.
    listen_url: Option<Secret>,
    /// PostgreSQL: the connections of changes committed with their events (see [`outbox`]).
    changes: Option<AnyPool>,
}

/// SQLite connections that only read, beside the writer.
const SQLITE_READERS: u32 = 8;
/// PostgreSQL connections per process for reads and writes of their own (beside these: the changes' pool,
/// the row writer's one connection and the listening one).
const POSTGRES_CONNECTIONS: u32 = 16;
/// Changes committed with their events at once (each holds one connection for its transaction).
const POSTGRES_CHANGES: u32 = 8;
/// A pooled connection idle longer than this is pinged before use; fresher ones are trusted (a ping per query
/// would be a round trip per query).
const PING_IF_IDLE: Duration = Duration::from_secs(30);

fn pool_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_IF_IDLE {
                    return Ok(true);
                }
                Ok(sqlx::Connection::ping(conn).await.is_ok())
            })
        })
}

impl Store {
    /// Connects to the database at `url`. For SQLite the file (and its directory) is created if missing.
    pub async fn connect(url: &Secret) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let text = url.expose();
        let dialect = Dialect::of_url(text)
            .ok_or_else(|| anyhow::anyhow!("unsupported database URL scheme (use sqlite:// or postgres://)"))?;
        let open_error = |e: sqlx::Error| {
            anyhow::anyhow!("cannot open the {} database: {}", dialect.name(), redact_db_error(&e.to_string()))
        };
        let invalid = |e: sqlx::Error| anyhow::anyhow!("invalid database URL: {}", redact_db_error(&e.to_string()));
        let store = match dialect {
            Dialect::Sqlite => {
                let path = text.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                let in_memory = path == ":memory:";
                if !in_memory {
                    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            anyhow::anyhow!("cannot create the database directory {}: {e}", parent.display())
                        })?;
                    }
                }
                let sep = if text.contains('?') { '&' } else { '?' };
                let options = AnyConnectOptions::from_str(&format!("{text}{sep}mode=rwc")).map_err(invalid)?;
                // The writer: WAL lets readers run beside it; FULL sync makes an approval or a ban survive a
                // power cut; the busy timeout covers other processes (`confctl admin …`) writing meanwhile.
                // A join inserts into several indexes on random keys, so a batch dirties pages all over them:
                // a 32 MB page cache keeps those pages from being read back from the file, and checkpointing
                // every 8,000 WAL pages (32 MB; the file is cut back to 64 MB after) instead of SQLite's 1,000
                // copies a page written by many batches into the database once instead of once per few
                // batches. A batch's multi-row `INSERT` keeps a statement journal (it may fail half way inside
                // the batch's transaction); past 64 KB SQLite spills it to a temporary file that it names,
                // creates and deletes for every such statement. In memory it costs the pages one statement
                // touches (a few hundred KB at most) and nothing about durability: the journal is thrown away
                // at the statement's end either way.
                let write_pool = pool_options(1)
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                                 PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; \
                                 PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8000; \
                                 PRAGMA journal_size_limit = 67108864; PRAGMA temp_store = MEMORY;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options.clone())
                    .await
                    .map_err(open_error)?;
                // An in-memory database exists once per connection: there the writer reads too.
                let reader = if in_memory {
                    write_pool.clone()
                } else {
                    pool_options(SQLITE_READERS)
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                conn.execute(
                                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;",
                                )
                                .await?;
                                Ok(())
                            })
                        })
                        .connect_with(options)
                        .await
                        .map_err(open_error)?
                };
                let writer = writer::Writer::start(write_pool.clone(), dialect);
                Self {
                    changes: None,
                    reader,
                    write_pool,
                    writer,
                    writer_reads: in_memory,
                    dialect,
                    rooms: std::sync::Arc::default(),
                    listen_url: None,
                }
            }
            Dialect::Postgres => {
                let options = AnyConnectOptions::from_str(text).map_err(invalid)?;
                let pool =
                    pool_options(POSTGRES_CONNECTIONS).connect_with(options.clone()).await.map_err(open_error)?;
                // Changes made with their events (`Store::atomically`) hold a connection of this pool for
                // their transaction and read through the main one, so they never wait for each other's pool.
                let changes = pool_options(POSTGRES_CHANGES).connect_lazy_with(options.clone());
                // The row writer's own connection: taken from the main pool, a batch of guests waited behind
                // the requests' reads for one, and on a different connection each time it prepared (and
                // planned) its statements again; its own makes the join path about 10 % faster.
                let rows = pool_options(1).connect_lazy_with(options);
                Self {
                    changes: Some(changes),
                    reader: pool.clone(),
                    writer: writer::Writer::start(rows, dialect),
                    write_pool: pool,
                    writer_reads: false,
                    dialect,
                    rooms: std::sync::Arc::default(),
                    listen_url: Some(url.clone()),
                }
            }
        };
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Where reads go. Writes through it fail on SQLite (its connections are read-only).
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// The rows of a long list read as one JSON array the database builds, each row an array of `columns` in
    /// their order, deserialised as `T` (a struct deserialises from an array of its fields in declaration
    /// order). `from` is the rest of the statement (`FROM … WHERE …`, `$1` bound to `key`), `order` the rows'
    /// order. For lists of thousands of rows read whole: rows fetched one by one cost a hand-over between
    /// threads each on SQLite (the driver's worker thread wakes the reading task per row), several times the
    /// CPU of the read itself.
    pub(crate) async fn read_rows_as_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        columns: &'static str,
        from: &'static str,
        order: &'static str,
        key: &str,
    ) -> Result<Vec<T>> {
        let sql = match self.dialect {
            Dialect::Sqlite => format!("SELECT json_group_array(json_array({columns}) ORDER BY {order}) {from}"),
            Dialect::Postgres => {
                format!("SELECT COALESCE(json_agg(json_build_array({columns}) ORDER BY {order}), '[]')::text {from}")
            }
        };
        // Statement text from this module's constants only; the one value is bound.
        let (json,): (String,) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key).fetch_one(&self.reader).await.db(what)?;
        serde_json::from_str(&json).map_err(|err| Error::internal(format_args!("reading the {what} rows: {err}")))
    }

    /// The connection migrations run on (on SQLite the writer's, borrowed between batches).
    pub(crate) fn migration_pool(&self) -> &AnyPool {
        &self.write_pool
    }

    /// Applies one statement; returns once it is durable.
    pub(crate) async fn write(&self, statement: Statement) -> std::result::Result<AnyQueryResult, sqlx::Error> {
        if let Some(change) = outbox::current_change() {
            return change.execute(statement).await;
        }
        match self.sqlite_writer() {
            Some(writer) => writer.execute(statement).await,
            None => statement.execute(&self.write_pool).await,
        }
    }

    /// The writer that may store a row in one statement with other callers' rows of its kind, outside a
    /// change (a change runs its own statements in its own transaction).
    fn row_writer(&self) -> Option<&writer::Writer> {
        Some(&self.writer).filter(|_| outbox::current_change().is_none())
    }

    /// The writer every write goes through: SQLite's.
    fn sqlite_writer(&self) -> Option<&writer::Writer> {
        Some(&self.writer).filter(|_| self.dialect == Dialect::Sqlite)
    }

    /// Applies one statement that returns rows (`RETURNING`); returns them, read as `T`, once it is durable.
    pub(crate) async fn write_returning<T>(&self, statement: Statement) -> std::result::Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        let rows = match (outbox::current_change(), self.sqlite_writer()) {
            (Some(change), _) => change.fetch_all(statement).await?,
            (None, Some(writer)) => writer.fetch_all(statement).await?,
            (None, None) => statement.fetch_all(&self.write_pool).await?,
        };
        rows.iter().map(T::from_row).collect()
    }

    /// Runs `job`'s statements as one unit: all of them are applied, or (when it returns an error) none.
    /// Returns once they are durable. The job reads what it needs to decide on the connection it is given,
    /// so it sees its own writes and nobody else's in between.
    pub(crate) async fn write_atomic<R, F>(&self, job: F) -> Result<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<R>> + Send + 'static,
    {
        if let Some(change) = outbox::current_change() {
            return change.atomic(job).await;
        }
        match self.sqlite_writer() {
            Some(writer) => writer.atomic(job).await,
            None => {
                let mut tx = self.write_pool.begin().await.db("transaction")?;
                let result = job(&mut tx).await;
                settle(tx, result).await
            }
        }
    }

    /// The connection pool, for tests that inspect or change the schema and rows directly (on SQLite the
    /// writer's connection, so the test may write). Application code goes through the typed methods of
    /// this module.
    #[doc(hidden)]
    pub fn raw_pool_for_tests(&self) -> &AnyPool {
        &self.write_pool
    }

    /// Writes a consistent copy of a SQLite database to `path` while it is in use (`VACUUM INTO`).
    pub async fn sqlite_snapshot(&self, path: &Path) -> anyhow::Result<()> {
        if self.dialect != Dialect::Sqlite {
            anyhow::bail!("only SQLite databases are snapshotted by confctl; use pg_dump for PostgreSQL");
        }
        let target = path.to_str().ok_or_else(|| anyhow::anyhow!("the snapshot path is not UTF-8"))?;
        if self.writer_reads {
            // In memory the writer's connection is the database: it is copied where it is.
            sqlx::query("VACUUM INTO $1").bind(target).execute(&self.write_pool).await?;
            return Ok(());
        }
        // `VACUUM INTO` writes a new file, which a read-only (`query_only`) connection refuses, and running it
        // on the writer would hold every write up for the whole copy. So a reader is taken out of its pool for
        // good (it never goes back with `query_only` off) and closed after the copy.
        let mut conn = self.reader.acquire().await?.detach();
        sqlx::raw_sql("PRAGMA query_only = OFF").execute(&mut conn).await?;
        let copied = sqlx::query("VACUUM INTO $1").bind(target).execute(&mut conn).await;
        let _ = sqlx::Connection::close(conn).await;
        copied?;
        Ok(())
    }

    /// The newest schema version applied to this database.
    pub async fn schema_version(&self) -> anyhow::Result<i64> {
        let status = self.migration_status().await?;
        let known = status.migrations.iter().filter(|m| m.applied_at.is_some()).map(|m| m.version).max().unwrap_or(0);
        Ok(status.unknown.iter().copied().max().unwrap_or(0).max(known))
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.reader).await.is_ok()
    }

    /// Commits what is queued and closes every connection (at shutdown; SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.write_pool.close().await;
    }
}

/// A 0/1 flag column. Flags are stored as integers because sqlx's `Any` driver cannot decode SQLite booleans;
/// a row struct reads one into a `bool` field with `#[sqlx(try_from = "Flag")]`.
pub(crate) struct Flag(bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(Flag(<i64 as sqlx::Decode<sqlx::Any>>::decode(value)? != 0))
    }
}

/// A nullable 0/1 flag column (`NULL`: not decided), read into an `Option<bool>` field with
/// `#[sqlx(try_from = "MaybeFlag")]`.
pub(crate) struct MaybeFlag(Option<bool>);

impl From<MaybeFlag> for Option<bool> {
    fn from(flag: MaybeFlag) -> Option<bool> {
        flag.0
    }
}

impl sqlx::Type<sqlx::Any> for MaybeFlag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <i64 as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <i64 as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for MaybeFlag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> std::result::Result<Self, sqlx::error::BoxDynError> {
        Ok(MaybeFlag(<Option<i64> as sqlx::Decode<sqlx::Any>>::decode(value)?.map(|v| v != 0)))
    }
}

/// A TEXT column that holds one of an enum's names, which it does not know: the error of the enum's
/// `TryFrom<String>` (sqlx reports it as a decode failure of that column).
#[derive(Debug)]
pub struct UnknownValue {
    what: &'static str,
    value: String,
}

impl UnknownValue {
    pub(crate) fn new(what: &'static str, value: String) -> Self {
        Self { what, value }
    }
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// A unique key that a request can run into, under the name each dialect reports, and the conflict it means
/// to the caller (and the API client).
struct UniqueKey {
    /// The constraint PostgreSQL names in the error: the `<table>_<columns>_key` it generated for a `UNIQUE`
    /// in the migrations (which name none themselves).
    postgres: &'static str,
    /// What SQLite's message names instead (it reports no constraint): `UNIQUE constraint failed: <this>`.
    sqlite: &'static str,
    code: &'static str,
    message: &'static str,
}

/// The unique keys people can collide on. Every other unique violation is the generic `conflict`: random ids
/// and token hashes, which only collide by chance, and rows written with `ON CONFLICT`, which never fail.
const UNIQUE_KEYS: &[UniqueKey] = &[
    // Registration or an admin creating an account, with an email (in any case) that has an account.
    UniqueKey {
        postgres: "users_email_lower_key",
        sqlite: "users.email_lower",
        code: "email_taken",
        message: "an account with this email already exists",
    },
    // A new room's or a regenerated invite code that another room has: callers draw another.
    UniqueKey {
        postgres: "rooms_invite_code_key",
        sqlite: "rooms.invite_code",
        code: "invite_code_taken",
        message: "this invite code is in use by another room",
    },
    // A host entering a lecture from two tabs at once: one row per lecture and identity.
    UniqueKey {
        postgres: "participants_lecture_id_identity_key",
        sqlite: "participants.lecture_id, participants.identity",
        code: "participant_exists",
        message: "this participant is already in the lecture",
    },
];

impl UniqueKey {
    /// The key a unique violation was on, if it is one of [`UNIQUE_KEYS`].
    fn violated(db: &dyn sqlx::error::DatabaseError) -> Option<&'static UniqueKey> {
        let sqlite_columns = db.message().strip_prefix("UNIQUE constraint failed: ");
        UNIQUE_KEYS.iter().find(|key| match db.constraint() {
            Some(name) => name == key.postgres,
            None => sqlite_columns == Some(key.sqlite),
        })
    }
}

/// Removes anything that looks like a password from a driver message.
fn redact_db_error(message: &str) -> String {
    match (message.find("://"), message.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://[redacted]{}", &message[..scheme], &message[at..]),
        _ => message.to_owned(),
    }
}

/// `.db("what")` on a query's result: the one way a sqlx failure becomes a domain error in this module, in
/// place of `.map_err(|e| …)` at every query.
pub(crate) trait DbResult<T> {
    /// Maps the error with [`db_error`]; `what` names the object the query was about, for messages and logs.
    fn db(self, what: &'static str) -> Result<T>;
}

impl<T> DbResult<T> for std::result::Result<T, sqlx::Error> {
    fn db(self, what: &'static str) -> Result<T> {
        self.map_err(|err| db_error(what, err))
    }
}

/// Maps sqlx failures onto domain errors: a missing row is "not found", a unique or foreign-key violation a
/// conflict (with its own code for the unique keys in [`UNIQUE_KEYS`]), and anything else an internal error
/// (logged, not shown).
/// Ends `tx` as `result` says: commits it after a success (the value is returned once committed), rolls it
/// back after a failure.
async fn settle<R>(tx: sqlx::Transaction<'_, sqlx::Any>, result: Result<R>) -> Result<R> {
    match result {
        Ok(value) => {
            tx.commit().await.db("transaction")?;
            Ok(value)
        }
        Err(err) => {
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

/// PostgreSQL going away under an open connection: shutting down or restarting (SQLSTATE class 57P,
/// "operator intervention") or the connection itself failing (class 08).
fn server_going_away(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08"))
}

fn db_error(what: &'static str, err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::RowNotFound => Error::not_found("not_found", format!("{what} not found")),
        sqlx::Error::Database(db) if db.is_unique_violation() => match UniqueKey::violated(db.as_ref()) {
            Some(key) => Error::conflict(key.code, key.message),
            None => Error::conflict("conflict", format!("{what} already exists")),
        },
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            Error::conflict("conflict", format!("{what} refers to something that does not exist"))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Error::unavailable("database_unavailable", "the database is not answering"),
        sqlx::Error::Database(db) if server_going_away(db.as_ref()) => {
            Error::unavailable("database_unavailable", "the database is not answering")
        }
        _ => Error::Internal(anyhow::Error::new(err).context(format!("database error on {what}"))),
    }
}
