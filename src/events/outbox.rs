//! Events across replicas on one PostgreSQL database: every event published on a replica is appended to the
//! `events` table (in batches, by one writer task), `NOTIFY` wakes every replica, and each one's reader
//! delivers the rows after the last id it delivered, in id order, to its own streams — the replica where the
//! event happened included, so every replica delivers the same events under the same ids. A reader whose
//! listening connection broke catches up from the table (it also looks every [`POLL`] without being woken);
//! the leader prunes rows older than [`KEEP`].
//!
//! Events that record a change (a decision, a lock, a lecture going live or ending) are appended in the
//! change's own transaction ([`atomically`]): they commit together or not at all. Events that record no
//! change of their own (a guest's stream opening or closing, an audit line written after the fact) go
//! through the writer task: one published while the database is away waits in memory and is appended once
//! it is back (up to [`BACKLOG`] events); one published by a replica killed before its writer appended it is
//! lost — which costs a stream a reload at most, since streams start from the stored state.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Event;
use crate::app::App;
use crate::error::Result;
use crate::store::{Dialect, NewEvent, OutboxRow};

/// How often a reader looks at the table without being woken (a notification lost while its connection
/// reconnected, a database restarted).
pub const POLL: Duration = Duration::from_secs(1);

/// How long events are kept: a stream resumes with `Last-Event-ID` from within this; older ones reload.
pub const KEEP: Duration = Duration::from_secs(3600);

/// Events held in memory while the database is away; beyond that the oldest are dropped (their streams
/// reload from the stored state when they notice the gap).
const BACKLOG: usize = 100_000;

/// Events appended at once at most: one statement's worth, which commits by itself.
const BATCH: usize = crate::store::EVENTS_PER_STATEMENT;

/// Rows read at a time.
const READ: i64 = 1000;

/// How many recent events a starting replica reads into its admin feed's replay buffer.
const HISTORY: i64 = crate::admin::feed::REPLAY as i64;

/// Runs `change` — a domain operation's writes and the events it publishes — so that they commit together:
/// on PostgreSQL one transaction holds the writes and the events' rows (a replica killed half-way leaves
/// neither); on SQLite the change runs as it is and its events are delivered in memory. Keep reads that
/// must see the change's own writes out of it (they read committed data), and keep calls to other services
/// (LiveKit) out of it (its rows stay locked until it commits).
pub async fn atomically<R>(app: &App, change: impl std::future::Future<Output = Result<R>>) -> Result<R> {
    app.store().atomically(app.replica().id(), app.clock().now_ms(), change).await
}

/// On PostgreSQL, routes this replica's events through the outbox: starts the writer and the reader. Nothing
/// on SQLite (the hub delivers in process).
pub async fn start(app: &App) -> Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)> {
    if app.store().dialect() != Dialect::Postgres {
        return None;
    }
    let outgoing = app.hub().send_to_outbox()?;
    let reader_start = start_reading(app).await;
    let writer = tokio::spawn(write(app.clone(), outgoing));
    let reader = tokio::spawn(read(app.clone(), reader_start));
    Some((writer, reader))
}

/// Where the reader begins: after the newest event now, with the recent ones in the admin feed. A database
/// that is away now: after whatever the first successful read finds newest.
async fn start_reading(app: &App) -> Option<i64> {
    match app.store().newest_events(HISTORY).await {
        Ok(rows) => {
            let after = rows.last().map_or(0, |r| r.id);
            let history = rows.iter().filter_map(|row| decode(row).map(|e| (id(row.id), row.room_id.clone(), e)));
            app.hub().start_from_outbox(id(after), history.collect());
            Some(after)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the events outbox yet; will start from its newest event");
            None
        }
    }
}

fn id(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(0)
}

fn decode(row: &OutboxRow) -> Option<Event> {
    match serde_json::from_str(&row.payload) {
        Ok(event) => Some(event),
        Err(err) => {
            // From a newer version during an upgrade, most likely: skipped, not stopped on.
            tracing::warn!(id = row.id, error = %err, "skipping an event of the outbox that does not parse");
            None
        }
    }
}

/// Appends what this replica publishes, in batches, until shutdown; keeps what the database did not take and
/// tries again with a growing pause.
async fn write(app: App, mut outgoing: mpsc::UnboundedReceiver<NewEvent>) {
    let mut pending: VecDeque<NewEvent> = VecDeque::new();
    let mut dropped = 0usize;
    let mut pause = Duration::from_millis(100);
    loop {
        if pending.is_empty() {
            tokio::select! {
                next = outgoing.recv() => match next {
                    Some(event) => pending.push_back(event),
                    None => return,
                },
                _ = app.shutting_down() => return,
            }
        }
        while let Ok(event) = outgoing.try_recv() {
            pending.push_back(event);
        }
        if pending.len() > BACKLOG {
            let over = pending.len() - BACKLOG;
            pending.drain(..over);
            dropped += over;
        }
        let batch: Vec<NewEvent> = pending.iter().take(BATCH).cloned().collect();
        let count = batch.len();
        match app.store().append_events(app.replica().id(), app.clock().now_ms(), batch).await {
            Ok(()) => {
                pending.drain(..count);
                pause = Duration::from_millis(100);
                if dropped > 0 {
                    tracing::warn!(dropped, "events published while the database was away were dropped (backlog full)");
                    dropped = 0;
                }
            }
            Err(err) => {
                if pause == Duration::from_millis(100) {
                    tracing::warn!(error = %err, waiting = pending.len(), "cannot append events to the outbox; will keep trying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = app.shutting_down() => return,
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Delivers the outbox's new rows to this replica's streams, woken by notifications and every [`POLL`],
/// until shutdown.
async fn read(app: App, mut after: Option<i64>) {
    let mut listener = None;
    let mut warned = false;
    loop {
        if listener.is_none() {
            match app.store().listen(crate::store::EVENTS_CHANNEL).await {
                Ok(l) => {
                    listener = Some(l);
                    if warned {
                        tracing::info!("listening to the other replicas' events again");
                    }
                    warned = false;
                }
                Err(err) if !warned => {
                    warned = true;
                    tracing::warn!(error = %err, "cannot listen to the other replicas' events; reading the outbox every second");
                }
                Err(_) => {}
            }
        }
        // Read after (re)connecting too: what was appended while nobody listened.
        after = catch_up(&app, after).await;
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            woken = woken => if let Err(err) = woken {
                tracing::warn!(error = %err, "lost the connection listening to the other replicas' events");
                listener = None;
            },
            _ = tokio::time::sleep(POLL) => {}
            _ = app.shutting_down() => return,
        }
    }
}

/// Delivers every row after `after`; returns where to go on from (unchanged when the database is away).
async fn catch_up(app: &App, after: Option<i64>) -> Option<i64> {
    let Some(mut after) = after else {
        return start_reading(app).await;
    };
    loop {
        let rows = match app.store().events_after(after, READ).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the events outbox");
                return Some(after);
            }
        };
        let full = rows.len() == usize::try_from(READ).unwrap_or(usize::MAX);
        for row in rows {
            after = row.id;
            if let Some(event) = decode(&row) {
                app.hub().deliver(id(row.id), row.room_id.as_deref(), event);
            }
        }
        if !full {
            return Some(after);
        }
    }
}

/// The leader's pruning of events older than [`KEEP`]; returns how many went.
pub async fn prune(app: &App) -> Result<u64> {
    if app.store().dialect() != Dialect::Postgres {
        return Ok(0);
    }
    let keep = i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX);
    app.store().prune_events(app.clock().now_ms().saturating_sub(keep)).await
}

/// The host events of a room a resuming stream missed.
#[derive(Debug)]
pub struct Missed {
    pub events: Vec<super::Numbered>,
    /// Live events up to this id are covered (sent in `events`, or already had by the client).
    pub through: u64,
}

/// Host events a stream that is resuming missed: those of `room_id` after the client's `last` up to `upto`
/// (the last event delivered here when the stream subscribed). `None` when they cannot all be told — the
/// outbox was pruned past `last`, `last` is no event of this installation, too many were missed, or on
/// SQLite anything was missed at all (one process keeps no history of host events) — and the stream
/// starts from a snapshot instead.
pub async fn missed(app: &App, room_id: &str, last: u64, upto: u64) -> Option<Missed> {
    /// Beyond this many, a snapshot is smaller than the events.
    const MOST: i64 = 5000;
    if last == upto {
        return Some(Missed { events: Vec::new(), through: upto });
    }
    if app.store().dialect() != Dialect::Postgres {
        return None;
    }
    let last_db = i64::try_from(last).ok()?;
    let (oldest, newest) = app.store().event_id_range().await.ok()??;
    // All events after `last` must still be kept; an id above the newest is no event of this database. An id
    // above `upto` but stored: the client heard it from a replica whose reader is ahead of this one.
    if last_db + 1 < oldest || last_db > newest {
        return None;
    }
    if last > upto {
        return Some(Missed { events: Vec::new(), through: last });
    }
    let rows = app.store().room_events_after(room_id, last_db, MOST).await.ok()?;
    if rows.len() == usize::try_from(MOST).unwrap_or(usize::MAX) {
        return None;
    }
    let events = rows
        .iter()
        .filter(|row| id(row.id) <= upto)
        .filter_map(|row| match decode(row)? {
            Event::Hosts { event } => Some(super::Numbered { id: id(row.id), event }),
            Event::Decided { entries } => {
                Some(super::Numbered { id: id(row.id), event: super::lobby_decided(&entries) })
            }
            Event::Agents { .. } | Event::Admin { .. } | Event::Assistant { .. } => None,
        })
        .collect();
    Some(Missed { events, through: upto })
}
