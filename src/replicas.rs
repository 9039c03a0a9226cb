//! Several `confctl serve` replicas on one PostgreSQL database: this replica's identity, and which replica
//! leads — runs the periodic background jobs (reconciliation with LiveKit, the sweeps), so that three
//! replicas do not reconcile three times. The leader is whoever holds a PostgreSQL advisory lock; the others
//! try again every few seconds, so one of them takes over soon after the leader stops or dies. With SQLite
//! there is one process, and it always leads. Every replica also keeps a heartbeat row (version, start,
//! last seen, a fingerprint of its settings), which `confctl doctor` reads. Events cross replicas through
//! the outbox (`crate::events::outbox`).

use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::app::App;
use crate::config::{Config, LiveSettings};
use crate::store::{Dialect, LeaderSeat, ReplicaRecord, Store};

/// How often a replica that does not lead asks for the lock. With a dead leader's connection closed by its
/// kernel, the lock is free at once and taken within this; with its machine gone, PostgreSQL's keepalives
/// (set on that connection, about 6 s) come first.
pub const LEADER_RETRY: Duration = Duration::from_secs(3);

/// How often the leader checks that the connection holding the lock is alive. A leader whose connection
/// broke while it kept running believes it leads until this check, while another replica may already have
/// taken the lock: shorter than [`LEADER_RETRY`] to keep that overlap short (the jobs tolerate it: each
/// re-reads what it acts on).
pub const LEADER_CHECK: Duration = Duration::from_secs(1);

/// How often a replica refreshes its heartbeat row.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A replica whose heartbeat is older than this is not counted as running (`confctl doctor`).
pub const SEEN_WITHIN: Duration = Duration::from_secs(60);

/// Heartbeat rows not refreshed for this long are deleted (replicas that died without removing theirs).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Who this process is among the replicas, and whether it leads.
#[derive(Debug)]
pub struct Replica {
    id: String,
    started_at: i64,
    leading: watch::Sender<bool>,
}

impl Replica {
    /// A new replica identity; on SQLite it leads from the start (there is no one else).
    pub fn new(store: &Store, started_at: i64) -> Self {
        let (leading, _) = watch::channel(store.dialect() == Dialect::Sqlite);
        Self { id: crate::ids::new_id(), started_at, leading }
    }

    /// This process's replica id (random, new at every start).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When this process started (ms since the epoch).
    pub fn started_at(&self) -> i64 {
        self.started_at
    }

    /// Whether this replica runs the background jobs now.
    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Follows [`Replica::is_leader`].
    pub fn watch_leader(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    fn set_leader(&self, leading: bool) {
        self.leading.send_if_modified(|now| std::mem::replace(now, leading) != leading);
    }
}

/// Holds (or keeps asking for) the leader lock until shutdown, then gives it up so another replica takes
/// over at once. Nothing to do on SQLite.
pub async fn lead(app: App) {
    if app.store().dialect() != Dialect::Postgres {
        return;
    }
    let replica = app.replica();
    let mut seat = LeaderSeat::default();
    let mut warned = false;
    loop {
        let was = seat.held();
        match seat.try_hold(app.store()).await {
            Ok(held) => {
                warned = false;
                if held != was {
                    if held {
                        tracing::info!(replica = replica.id(), "this replica now leads the background jobs");
                    } else {
                        tracing::info!(replica = replica.id(), "another replica leads the background jobs");
                    }
                }
                replica.set_leader(held);
            }
            Err(err) => {
                replica.set_leader(false);
                if was {
                    tracing::warn!(error = %err, "lost the leader lock's database connection; stepping down");
                } else if !warned {
                    tracing::warn!(error = %err, "cannot ask for the leader lock; will keep trying");
                }
                warned = true;
            }
        }
        let pause = if seat.held() { LEADER_CHECK } else { LEADER_RETRY };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = app.shutting_down() => break,
        }
    }
    replica.set_leader(false);
    seat.release().await;
}

/// One turn of a leader-only periodic job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The first turn since this replica became the leader: state kept from an earlier leadership (or from
    /// before) may be stale, since another replica did the job meanwhile.
    pub fresh: bool,
}

/// The ticks of a periodic background job that runs on the leader only: every `every` while this replica
/// leads, and at once when it becomes the leader (so a new leader does not wait a whole interval).
#[derive(Debug)]
pub struct LeaderTicks {
    app: App,
    leading: watch::Receiver<bool>,
    tick: tokio::time::Interval,
    led: bool,
}

impl LeaderTicks {
    pub fn new(app: &App, every: Duration) -> Self {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { leading: app.replica().watch_leader(), app: app.clone(), tick, led: false }
    }

    /// Waits for the job's next turn; `None` once the server shuts down.
    pub async fn next(&mut self) -> Option<Turn> {
        loop {
            let leading = *self.leading.borrow_and_update();
            if !leading {
                self.led = false;
                tokio::select! {
                    changed = self.leading.changed() => if changed.is_err() { return None },
                    _ = self.app.shutting_down() => return None,
                }
                continue;
            }
            if !self.led {
                self.led = true;
                // The next regular turn is a whole interval after this one.
                self.tick.reset();
                return Some(Turn { fresh: true });
            }
            let ticked = tokio::select! {
                _ = self.tick.tick() => true,
                changed = self.leading.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    false
                }
                _ = self.app.shutting_down() => return None,
            };
            if ticked && *self.leading.borrow() {
                return Some(Turn { fresh: false });
            }
        }
    }
}

/// Keeps this replica's heartbeat row fresh until shutdown (at once when its leadership changes), then
/// removes it. `addr`: where it serves, shown to the operator.
pub async fn heartbeat(app: App, addr: Option<SocketAddr>) {
    let replica = app.replica();
    let host = match addr {
        Some(addr) => format!("{}:{}", host_name(), addr.port()),
        None => host_name(),
    };
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading = replica.watch_leader();
    let (mut warned, mut marked) = (false, false);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = leading.changed() => if changed.is_err() { break },
            _ = app.shutting_down() => break,
        }
        let record = ReplicaRecord {
            id: replica.id().to_owned(),
            host: host.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: replica.started_at(),
            last_seen_at: app.clock().now_ms(),
            config_fingerprint: config_fingerprint(app.config(), &app.live()),
            leader: replica.is_leader(),
        };
        if !marked {
            marked = app
                .storage()
                .put_bytes(&storage_marker(replica.id()), b"a running confctl serve\n".to_vec())
                .await
                .is_ok();
        }
        match app.store().beat(&record).await {
            Ok(()) => warned = false,
            Err(err) if !warned => {
                warned = true;
                tracing::warn!(error = %err, "cannot write this replica's heartbeat; will keep trying");
            }
            Err(_) => {}
        }
    }
    if let Err(err) = app.store().forget_replica(replica.id()).await {
        tracing::debug!(error = %err, "could not remove this replica's heartbeat row");
    }
    if marked {
        if let Err(err) = app.storage().delete(&storage_marker(replica.id())).await {
            tracing::debug!(error = %err, "could not remove this replica's storage marker");
        }
    }
}

/// The object each replica keeps in file storage while it runs, so `confctl doctor` can tell whether the
/// replicas share their files (one bucket, or one directory mounted on every machine).
pub fn storage_marker(replica_id: &str) -> String {
    format!("confctl-replica-{replica_id}")
}

/// The leader's housekeeping of what replicas leave behind: heartbeat rows of replicas that died, the
/// shared attempt limits' windows that have ended, and old events in the outbox.
pub async fn housekeeping(app: App) {
    let mut turns = LeaderTicks::new(&app, Duration::from_secs(300));
    while turns.next().await.is_some() {
        let before = app.clock().now_ms().saturating_sub(millis(FORGET_AFTER));
        match app.store().forget_replicas_before(before).await {
            Ok(gone) => {
                for id in &gone {
                    if let Err(err) = app.storage().delete(&storage_marker(id)).await {
                        tracing::debug!(error = %err, "could not remove a gone replica's storage marker");
                    }
                }
                if !gone.is_empty() {
                    tracing::debug!(count = gone.len(), "removed heartbeat rows of replicas gone for a day");
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not remove old heartbeat rows"),
        }
        if let Err(err) = app.store().prune_attempts().await {
            tracing::warn!(error = %err, "could not remove ended attempt-limit windows");
        }
        if let Err(err) = crate::events::outbox::prune(&app).await {
            tracing::warn!(error = %err, "could not remove old events from the outbox");
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// This machine's name (for the operator reading `confctl doctor`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Settings that may differ between replicas: where a replica keeps its data and listens, how it logs,
/// whether it terminates TLS itself, where its file directory is mounted, and the assistant run with it.
fn per_replica(path: &str) -> bool {
    matches!(path, "data_dir" | "listen" | "log_format" | "log_level" | "files.local_dir")
        || path.starts_with("tls.")
        || path.starts_with("agent.")
}

/// A short hash of the settings every replica must agree on: all keys but secrets (never written to the
/// database, not even hashed) and [`per_replica`] ones; the live keys as they are after the last reload.
/// Two replicas with different fingerprints treat requests differently (other limits, another LiveKit).
pub fn config_fingerprint(config: &Config, live: &LiveSettings) -> String {
    let mut hash = Sha256::new();
    for key in crate::config::keys::KEYS {
        if key.kind == crate::config::keys::Kind::Secret || per_replica(key.path) || LiveSettings::is_live(key.path) {
            continue;
        }
        let value = config.layered.get(key.path).map(|v| v.to_string()).unwrap_or_default();
        hash.update(format!("{}={value}\n", key.path).as_bytes());
    }
    // The live settings as they apply now (a SIGHUP may have changed them since start).
    hash.update(format!("live={:?}/{:?}", live.rate_limits, live.registration).as_bytes());
    crate::ids::hex(&hash.finalize()[..8])
}
