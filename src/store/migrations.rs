//! Schema migrations, embedded in the binary: one SQL file per version and dialect, applied in order, each in
//! its own transaction, recorded with a checksum. A database migrated by a newer confctl is refused.

use sha2::{Digest, Sha256};

use super::{Dialect, Store};

/// One schema version, in both dialects.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
    fn checksum(&self, dialect: Dialect) -> String {
        let digest = Sha256::digest(self.sql(dialect).as_bytes());
        crate::ids::hex(&digest)
    }
}

macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $file,
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../../migrations/postgres/", $file, ".sql")),
        }
    };
}

/// Every migration this binary knows, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_accounts"),
    migration!(2, "0002_rooms"),
    migration!(3, "0003_room_content"),
    migration!(4, "0004_assistant"),
    migration!(5, "0005_admin"),
    migration!(6, "0006_lectures"),
    migration!(7, "0007_drive"),
    migration!(8, "0008_room_version"),
    migration!(9, "0009_replicas"),
    migration!(10, "0010_rate_limit_windows"),
    migration!(11, "0011_events"),
    migration!(12, "0012_rate_limit_granted"),
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Where one migration stands in a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    pub version: i64,
    pub name: String,
    /// When it was applied (ms since the epoch); `None` when pending.
    pub applied_at: Option<i64>,
}

/// Applied-and-pending overview for `confctl migrate --status`.
#[derive(Debug, Clone)]
pub struct MigrationStatus {
    pub dialect: Dialect,
    pub migrations: Vec<MigrationState>,
    /// Versions recorded in the database that this binary does not know (a newer confctl ran here).
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    pub fn pending(&self) -> usize {
        self.migrations.iter().filter(|m| m.applied_at.is_none()).count()
    }
}

/// The advisory lock key migrations on PostgreSQL run under (`confctl2` in ASCII; see `store::replicas` for
/// the leader's).
const MIGRATION_LOCK: i64 = 0x636f_6e66_6374_6c32;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS confctl_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)";

impl Store {
    /// Lists applied and pending migrations.
    pub async fn migration_status(&self) -> anyhow::Result<MigrationStatus> {
        sqlx::query(CREATE_TABLE).execute(self.migration_pool()).await?;
        let rows: Vec<(i64, String, i64)> =
            sqlx::query_as("SELECT version, checksum, applied_at FROM confctl_migrations ORDER BY version")
                .fetch_all(self.migration_pool())
                .await?;
        let mut applied: std::collections::BTreeMap<_, _> =
            rows.into_iter().map(|(version, checksum, at)| (version, (checksum, at))).collect();
        let mut migrations = Vec::new();
        for m in MIGRATIONS {
            let applied_at = match applied.remove(&m.version) {
                Some((checksum, at)) => {
                    if checksum != m.checksum(self.dialect()) {
                        anyhow::bail!(
                            "migration {} ({}) was changed after it was applied to this database; \
                             refusing to continue (restore the original migration file)",
                            m.version,
                            m.name
                        );
                    }
                    Some(at)
                }
                None => None,
            };
            migrations.push(MigrationState { version: m.version, name: m.name.to_owned(), applied_at });
        }
        Ok(MigrationStatus { dialect: self.dialect(), migrations, unknown: applied.into_keys().collect() })
    }

    /// Applies pending migrations; returns how many ran. Refuses a database newer than this binary.
    pub async fn migrate(&self) -> anyhow::Result<usize> {
        self.migrate_to(latest_version()).await
    }

    /// Applies pending migrations up to and including `target` (tests fill a database with an older schema
    /// and then migrate it the rest of the way).
    pub async fn migrate_to(&self, target: i64) -> anyhow::Result<usize> {
        // Replicas starting together on PostgreSQL take turns: without the lock both would find a migration
        // pending and the second would fail on tables the first just created. The lock is held on a
        // connection of its own and goes with it.
        let lock = match self.dialect() {
            Dialect::Postgres => {
                let mut conn = self.migration_pool().acquire().await?.detach();
                sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut conn).await?;
                Some(conn)
            }
            Dialect::Sqlite => None,
        };
        let result = self.migrate_locked(target).await;
        if let Some(conn) = lock {
            let _ = sqlx::Connection::close(conn).await;
        }
        result
    }

    async fn migrate_locked(&self, target: i64) -> anyhow::Result<usize> {
        let status = self.migration_status().await?;
        if let Some(newest) = status.unknown.iter().max() {
            anyhow::bail!(
                "the database is at schema version {newest}, newer than this confctl knows ({}); \
                 upgrade confctl instead of running an older binary against it",
                latest_version()
            );
        }
        let mut ran = 0;
        for m in MIGRATIONS {
            let pending = status.migrations.iter().any(|s| s.version == m.version && s.applied_at.is_none());
            if !pending || m.version > target {
                continue;
            }
            self.apply(m).await?;
            self.after(m.version).await?;
            tracing::info!(version = m.version, name = m.name, "applied database migration");
            ran += 1;
        }
        Ok(ran)
    }

    /// Data changes SQL cannot make alike on both databases, run once right after their migration.
    async fn after(&self, version: i64) -> anyhow::Result<()> {
        if version == 6 {
            // Unicode lower case for search: SQLite's LOWER left non-ASCII letters as they were.
            self.refold_segments().await?;
        }
        Ok(())
    }

    /// Runs one migration and records it, in one transaction. On SQLite the connection's foreign-key
    /// enforcement is off meanwhile: SQLite changes a constraint by rebuilding the table, and dropping the
    /// old table with enforcement on would fire its `ON DELETE` actions on the rows that point at it. Every
    /// reference is checked (`foreign_key_check`) before the transaction commits.
    async fn apply(&self, m: &Migration) -> anyhow::Result<()> {
        let mut conn = self.migration_pool().acquire().await?;
        let sqlite = self.dialect() == Dialect::Sqlite;
        if sqlite {
            sqlx::raw_sql("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
        }
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(m.sql(self.dialect()))
                .execute(&mut *tx)
                .await
                .map_err(|e| anyhow::anyhow!("migration {} ({}) failed: {e}", m.version, m.name))?;
            if sqlite {
                let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *tx).await?;
                if !broken.is_empty() {
                    anyhow::bail!(
                        "migration {} ({}) would leave {} row(s) pointing at rows that do not exist",
                        m.version,
                        m.name,
                        broken.len()
                    );
                }
            }
            sqlx::query("INSERT INTO confctl_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(m.version)
                .bind(m.name)
                .bind(m.checksum(self.dialect()))
                .bind(crate::time::now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        if sqlite {
            // The pooled connection goes back with enforcement on, whatever happened above.
            sqlx::raw_sql("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
        }
        result
    }

    /// Fails unless every migration is applied (for `serve --no-migrate` and `doctor`).
    pub async fn ensure_migrated(&self) -> anyhow::Result<()> {
        let status = self.migration_status().await?;
        if let Some(newest) = status.unknown.iter().max() {
            anyhow::bail!(
                "the database is at schema version {newest}, newer than this confctl knows ({})",
                latest_version()
            );
        }
        if status.pending() > 0 {
            anyhow::bail!("{} database migration(s) pending; run `confctl migrate`", status.pending());
        }
        Ok(())
    }
}
