//! The database: one query layer over SQLite and PostgreSQL (sqlx's `Any` driver with portable SQL), its
//! migrations, and the mapping of database failures to domain errors. No SQL lives outside this module.

mod api_tokens;
mod assistant;
mod attendance;
mod audit;
mod chat;
mod drive;
mod files;
mod instance;
mod lectures;
pub mod migrations;
mod moderation;
mod participants;
mod rooms;
mod sessions;
mod users;

pub use api_tokens::{ApiTokenRecord, ApiTokenScope};
pub use assistant::{AgentTokenRecord, ArtifactRecord, ArtifactState, SegmentRecord};
pub use attendance::StayRecord;
pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use chat::ChatRecord;
pub use drive::{DriveAuthorizationRecord, DriveConnectionRecord, DriveKeyRecord};
pub use files::FileRecord;
pub use lectures::{LectureRecord, LectureStatus, SegmentHit, ShareRecord};
pub use moderation::{BanRecord, BannedRow, BannedRows};
pub use participants::{Admission, ParticipantKind, ParticipantRecord};
pub use rooms::{EndedLecture, RoomRecord, RoomStatus, WebhookChange, WebhookOutcome};
pub use sessions::SessionRecord;
pub use users::{NewUser, Role, UserRecord};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::error::Error;
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
    pool: AnyPool,
    dialect: Dialect,
}

impl Store {
    /// Connects to the database at `url`. For SQLite the file (and its directory) is created if missing.
    pub async fn connect(url: &Secret) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let text = url.expose();
        let dialect = Dialect::of_url(text)
            .ok_or_else(|| anyhow::anyhow!("unsupported database URL scheme (use sqlite:// or postgres://)"))?;
        let (text, max_connections) = match dialect {
            Dialect::Sqlite => {
                let path = text.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                if path != ":memory:" {
                    if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            anyhow::anyhow!("cannot create the database directory {}: {e}", parent.display())
                        })?;
                    }
                }
                let sep = if text.contains('?') { '&' } else { '?' };
                (format!("{text}{sep}mode=rwc"), 8)
            }
            Dialect::Postgres => (text.to_owned(), 16),
        };
        let options = AnyConnectOptions::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid database URL: {}", redact_db_error(&e.to_string())))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the writer; FULL sync makes an approval or a ban survive a
                        // power cut; the busy timeout turns lock contention into waiting instead of errors.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot open the {} database: {}", dialect.name(), redact_db_error(&e.to_string()))
            })?;
        Ok(Self { pool, dialect })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The connection pool, for tests that inspect the schema directly. Application code goes through the
    /// typed methods of this module.
    #[doc(hidden)]
    pub fn raw_pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    /// Writes a consistent copy of a SQLite database to `path` while it is in use (`VACUUM INTO`).
    pub async fn sqlite_snapshot(&self, path: &Path) -> anyhow::Result<()> {
        if self.dialect != Dialect::Sqlite {
            anyhow::bail!("only SQLite databases are snapshotted by confctl; use pg_dump for PostgreSQL");
        }
        let target = path.to_str().ok_or_else(|| anyhow::anyhow!("the snapshot path is not UTF-8"))?;
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.pool).await?;
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
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection (at shutdown; SQLite checkpoints its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads a 0/1 flag column. Flags are stored as integers because sqlx's `Any` driver cannot decode SQLite
/// booleans.
pub(crate) fn flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Removes anything that looks like a password from a driver message.
fn redact_db_error(message: &str) -> String {
    match (message.find("://"), message.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://[redacted]{}", &message[..scheme], &message[at..]),
        _ => message.to_owned(),
    }
}

/// Maps sqlx failures onto domain errors: a missing row is "not found", a unique or foreign-key violation a
/// conflict, and anything else an internal error (logged, not shown).
pub(crate) fn map_err(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |err| match &err {
        sqlx::Error::RowNotFound => Error::not_found("not_found", format!("{what} not found")),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::conflict("conflict", format!("{what} already exists"))
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            Error::conflict("conflict", format!("{what} refers to something that does not exist"))
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            Error::unavailable("database_unavailable", "the database is not answering")
        }
        _ => Error::Internal(anyhow::Error::new(err).context(format!("database error on {what}"))),
    }
}
