//! What several `confctl serve` replicas on one PostgreSQL database share beyond the data itself: the
//! leader's session advisory lock, held on a connection of its own, the replicas' heartbeat rows, the
//! attempt limits they count together, and the notifications they send each other (`NOTIFY`/`LISTEN`).

use std::time::Duration;

use sqlx::{AnyConnection, Connection};

use super::{DbResult, Dialect, Flag, Store};
use crate::error::{Error, Result};

/// The advisory lock key whose holder leads the periodic background jobs (`confctl1` in ASCII). Advisory
/// locks are per database, so installations sharing a PostgreSQL cluster do not compete.
const LEADER_LOCK: i64 = 0x636f_6e66_6374_6c31;

/// How long a check on the lock's connection may take before the connection counts as lost.
const LOCK_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection of its own for the leader lock: a session advisory lock belongs to one connection, and
/// disappears with it. So a replica that dies (or loses its connection) releases the lock by itself, and
/// another one takes it. Kept between attempts, so a replica that is not the leader does not open a new
/// connection every few seconds.
#[derive(Default)]
pub struct LeaderSeat {
    conn: Option<AnyConnection>,
    held: bool,
}

impl std::fmt::Debug for LeaderSeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderSeat").field("connected", &self.conn.is_some()).field("held", &self.held).finish()
    }
}

impl LeaderSeat {
    /// Whether this seat holds the lock, as of the last call.
    pub fn held(&self) -> bool {
        self.held
    }

    /// Takes the lock if it is free, or confirms it is still held: true while this seat holds it. Any
    /// failure of the connection drops it (and with it the lock, if it was held) and answers the error.
    pub async fn try_hold(&mut self, store: &Store) -> Result<bool> {
        if store.dialect() != Dialect::Postgres {
            return Err(Error::internal("the leader lock exists on PostgreSQL only"));
        }
        let outcome = tokio::time::timeout(LOCK_CHECK_TIMEOUT, self.attempt(store)).await;
        match outcome {
            Ok(Ok(held)) => {
                self.held = held;
                Ok(held)
            }
            Ok(Err(err)) => {
                self.drop_connection();
                Err(err)
            }
            Err(_) => {
                self.drop_connection();
                Err(Error::unavailable("database_unavailable", "the leader lock's connection stopped answering"))
            }
        }
    }

    async fn attempt(&mut self, store: &Store) -> Result<bool> {
        if self.conn.is_none() {
            self.conn = Some(open_lock_connection(store).await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::internal("the leader lock's connection is missing"));
        };
        if self.held {
            // The lock lives as long as the session: a connection that still answers still holds it.
            // (Asking for it again would take it twice, and it would then need two unlocks.)
            sqlx::query("SELECT 1").execute(&mut *conn).await.db("leader lock")?;
            return Ok(true);
        }
        let got: i32 = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)::INTEGER")
            .bind(LEADER_LOCK)
            .fetch_one(&mut *conn)
            .await
            .db("leader lock")?;
        Ok(got != 0)
    }

    fn drop_connection(&mut self) {
        // Dropped, not closed: a connection that stopped answering would not answer a goodbye either. The
        // server releases the lock once it notices (at once for a closed socket, within the keepalive
        // settings below for a vanished host).
        self.conn = None;
        self.held = false;
    }

    /// Gives the lock up (at shutdown), so another replica can take it at once.
    pub async fn release(&mut self) {
        self.held = false;
        if let Some(conn) = self.conn.take() {
            // Closing the session releases every lock it holds.
            let _ = tokio::time::timeout(LOCK_CHECK_TIMEOUT, conn.close()).await;
        }
    }
}

/// A connection taken out of the pool for good, with keepalives short enough that the server notices a
/// leader whose machine vanished within seconds rather than the system's default of two hours.
async fn open_lock_connection(store: &Store) -> Result<AnyConnection> {
    let mut conn = store.write_pool.acquire().await.db("leader lock")?.detach();
    // Best effort: these settings only apply to TCP connections (not Unix sockets), and `tcp_user_timeout`
    // needs PostgreSQL 12.
    for setting in [
        "SET tcp_keepalives_idle = 3",
        "SET tcp_keepalives_interval = 1",
        "SET tcp_keepalives_count = 3",
        "SET tcp_user_timeout = 6000",
    ] {
        if let Err(err) = sqlx::query(setting).execute(&mut conn).await {
            tracing::debug!(error = %err, setting, "a keepalive setting of the leader lock's connection was refused");
        }
    }
    Ok(conn)
}

/// One replica's heartbeat row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplicaRecord {
    pub id: String,
    /// The machine's name and the address it serves on, for the operator.
    pub host: String,
    pub version: String,
    pub started_at: i64,
    pub last_seen_at: i64,
    /// A hash of the settings every replica must agree on (see `replicas::config_fingerprint`).
    pub config_fingerprint: String,
    #[sqlx(try_from = "Flag")]
    pub leader: bool,
}

impl Store {
    /// Writes (or refreshes) a replica's heartbeat row.
    pub async fn beat(&self, replica: &ReplicaRecord) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO replicas (id, host, version, started_at, last_seen_at, config_fingerprint, leader) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version, \
                 last_seen_at = excluded.last_seen_at, config_fingerprint = excluded.config_fingerprint, \
                 leader = excluded.leader",
            )
            .bind(replica.id.clone())
            .bind(replica.host.clone())
            .bind(replica.version.clone())
            .bind(replica.started_at)
            .bind(replica.last_seen_at)
            .bind(replica.config_fingerprint.clone())
            .bind(i64::from(replica.leader)),
        )
        .await
        .db("replica")?;
        Ok(())
    }

    /// Replicas whose last heartbeat is at or after `since_ms`, oldest first.
    pub async fn replicas_seen_since(&self, since_ms: i64) -> Result<Vec<ReplicaRecord>> {
        sqlx::query_as(
            "SELECT id, host, version, started_at, last_seen_at, config_fingerprint, leader FROM replicas \
             WHERE last_seen_at >= $1 ORDER BY started_at, id",
        )
        .bind(since_ms)
        .fetch_all(self.reader())
        .await
        .db("replica")
    }

    /// Removes a replica's row (it stopped).
    pub async fn forget_replica(&self, id: &str) -> Result<()> {
        self.write(sqlx::query("DELETE FROM replicas WHERE id = $1").bind(id.to_owned())).await.db("replica")?;
        Ok(())
    }

    /// Removes the rows of replicas not heard from since `before_ms` (they died without saying so); returns
    /// their ids.
    pub async fn forget_replicas_before(&self, before_ms: i64) -> Result<Vec<String>> {
        let ids: Vec<(String,)> = self
            .write_returning(sqlx::query("DELETE FROM replicas WHERE last_seen_at < $1 RETURNING id").bind(before_ms))
            .await
            .db("replica")?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }
}

/// PostgreSQL's clock in ms since the epoch: the shared limits' windows are timed by the database, so
/// replicas whose clocks differ still agree on them.
macro_rules! db_now_ms {
    () => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// What [`Store::take_attempts`] counted for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub key: String,
    /// How many of the attempts asked for were counted (the first ones asked; the rest are refused).
    pub granted: u32,
    /// The start of the key's current window (ms, database clock): a slot's window for a give-back.
    pub window: i64,
    /// How long the window has still to run (ms): a refused attempt's wait.
    pub left_ms: i64,
}

impl Store {
    /// Counts attempts under several keys in one statement: for each `(key, wanted)`, up to `wanted` attempts,
    /// as many as the key's current window (`window_ms` long, starting with the first attempt after the last
    /// window ended) has room for under `limit`. Each key's row is locked by the upsert, so attempts racing on
    /// several replicas are counted exactly and a refused attempt counts nothing; the keys are locked in
    /// sorted order, so two replicas counting the same keys cannot deadlock. PostgreSQL only (a single SQLite
    /// process counts in memory).
    pub async fn take_attempts(&self, wants: &[(&str, u32)], limit: u32, window_ms: i64) -> Result<Vec<Counted>> {
        if self.dialect() != Dialect::Postgres {
            return Err(Error::internal("shared attempt limits exist on PostgreSQL only"));
        }
        // `excluded.taken` is what a fresh window takes: min(wanted, limit). On a window with room, the same
        // bounded by the room left; `granted` keeps the number, since RETURNING shows only the new row.
        const TAKE: &str = concat!(
            "INSERT INTO rate_limit_windows AS w (key, window_start, window_ms, taken, granted) \
             SELECT r.key, ",
            db_now_ms!(),
            ", $2, LEAST(r.wanted, $3), LEAST(r.wanted, $3) \
             FROM json_to_recordset($1::json) AS r(key TEXT, wanted BIGINT) \
             ON CONFLICT (key) DO UPDATE SET \
             window_start = CASE WHEN w.window_start + w.window_ms <= excluded.window_start \
                 THEN excluded.window_start ELSE w.window_start END, \
             window_ms = CASE WHEN w.window_start + w.window_ms <= excluded.window_start \
                 THEN excluded.window_ms ELSE w.window_ms END, \
             taken = CASE WHEN w.window_start + w.window_ms <= excluded.window_start THEN excluded.taken \
                 ELSE w.taken + LEAST(excluded.taken, GREATEST($3 - w.taken, 0)) END, \
             granted = CASE WHEN w.window_start + w.window_ms <= excluded.window_start THEN excluded.taken \
                 ELSE LEAST(excluded.taken, GREATEST($3 - w.taken, 0)) END \
             RETURNING w.key, w.window_start, w.granted, w.window_start + w.window_ms - ",
            db_now_ms!()
        );
        let mut sorted: Vec<(&str, u32)> = wants.to_vec();
        sorted.sort_unstable();
        let asked: Vec<serde_json::Value> =
            sorted.iter().map(|(key, wanted)| serde_json::json!({"key": key, "wanted": wanted})).collect();
        let rows: Vec<(String, i64, i64, i64)> = self
            .write_returning(
                sqlx::query(TAKE)
                    .bind(serde_json::Value::Array(asked).to_string())
                    .bind(window_ms)
                    .bind(i64::from(limit)),
            )
            .await
            .db("attempt limit")?;
        Ok(rows
            .into_iter()
            .map(|(key, window, granted, left_ms)| Counted {
                key,
                granted: u32::try_from(granted).unwrap_or(0),
                window,
                left_ms: left_ms.clamp(0, window_ms),
            })
            .collect())
    }

    /// Hands back an attempt counted by [`Store::take_attempts`] in the window starting at `window`; nothing
    /// when that window has ended since (a late give-back never refunds a newer window).
    pub async fn give_back_attempt(&self, key: &str, window: i64) -> Result<()> {
        self.write(
            sqlx::query(
                "UPDATE rate_limit_windows SET taken = taken - 1 WHERE key = $1 AND window_start = $2 AND taken > 0",
            )
            .bind(key.to_owned())
            .bind(window),
        )
        .await
        .db("attempt limit")?;
        Ok(())
    }

    /// Deletes windows that have ended; returns how many. PostgreSQL only.
    pub async fn prune_attempts(&self) -> Result<u64> {
        if self.dialect() != Dialect::Postgres {
            return Ok(0);
        }
        const PRUNE: &str = concat!("DELETE FROM rate_limit_windows WHERE window_start + window_ms < ", db_now_ms!());
        let done = self.write(sqlx::query(PRUNE)).await.db("attempt limit")?;
        Ok(done.rows_affected())
    }
}

/// A connection listening to other replicas' notifications on one channel. It reconnects by itself after a
/// lost connection; what was sent meanwhile is lost (callers keep a fallback for that).
pub struct Listener {
    inner: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// The next notification's payload.
    pub async fn recv(&mut self) -> Result<String> {
        let notification = self.inner.recv().await.db("notification")?;
        Ok(notification.payload().to_owned())
    }
}

impl Store {
    /// Starts listening on `channel`, on a connection of its own. PostgreSQL only.
    pub async fn listen(&self, channel: &str) -> Result<Listener> {
        let Some(url) = &self.listen_url else {
            return Err(Error::internal("notifications exist on PostgreSQL only"));
        };
        let mut inner = sqlx::postgres::PgListener::connect(url.expose()).await.db("notification")?;
        inner.listen(channel).await.db("notification")?;
        Ok(Listener { inner })
    }
}
