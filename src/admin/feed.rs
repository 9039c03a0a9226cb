//! The admin event feed: every room's lifecycle, lobby, participant, moderation and audit events, instance
//! wide, each under the hub's event id (the outbox's on PostgreSQL, so the same on every replica). A bounded
//! replay buffer lets a client that reconnects with
//! `Last-Event-ID` pick up where it was; one that fell too far behind (or reconnects to a restarted server)
//! is told to reload its snapshot instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

/// How many recent events are kept for resuming clients and for a room's "recent events".
pub const REPLAY: usize = 2048;

/// One event of the instance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminEvent {
    pub id: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// `guest_waiting`, `lobby_decided`, `participant_joined`, `room_status`, `audit`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub room_id: Option<String>,
    pub data: EventData,
}

/// An event's fields as JSON, made when the event is first read (sent to a monitor, shown in a snapshot),
/// not when it is published: a lecture-start storm publishes an event per joining guest, and usually no
/// administrator is watching.
#[derive(Debug, Clone)]
pub struct EventData(Arc<LazyLock<serde_json::Value, Box<dyn FnOnce() -> serde_json::Value + Send>>>);

impl EventData {
    /// Fields made by `make` when first read.
    pub fn later(make: impl FnOnce() -> serde_json::Value + Send + 'static) -> Self {
        Self(Arc::new(LazyLock::new(Box::new(make))))
    }
}

impl From<serde_json::Value> for EventData {
    fn from(value: serde_json::Value) -> Self {
        Self::later(move || value)
    }
}

impl Serialize for EventData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::Value::serialize(&self.0, serializer)
    }
}

#[derive(Debug)]
struct Ring {
    /// Ids up to this one are not in the ring (before this process, or dropped from the front).
    floor: u64,
    events: VecDeque<Arc<AdminEvent>>,
}

/// The feed; lives in the hub, cheap to publish to when nobody listens.
#[derive(Debug)]
pub struct AdminFeed {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<AdminEvent>>,
    streams: Arc<AtomicUsize>,
}

impl Default for AdminFeed {
    fn default() -> Self {
        Self {
            ring: Mutex::new(Ring { floor: 0, events: VecDeque::with_capacity(REPLAY) }),
            tx: broadcast::channel(REPLAY).0,
            streams: Arc::default(),
        }
    }
}

/// Where a new subscriber starts.
#[derive(Debug)]
pub enum Resume {
    /// The events after the client's last one, to send before the live ones.
    Replay(Vec<Arc<AdminEvent>>),
    /// The client's last event is no longer (or never was) in the buffer: it must reload its snapshot.
    Reset,
    /// A fresh client: live events only.
    Fresh,
}

/// A subscriber: what to replay, then the live channel. Counts as an open stream until dropped.
#[derive(Debug)]
pub struct Subscription {
    pub resume: Resume,
    pub live: broadcast::Receiver<Arc<AdminEvent>>,
    /// Keep it as long as the stream is open.
    pub open: StreamGuard,
}

/// Counts one open stream while it lives.
#[derive(Debug)]
pub struct StreamGuard(Arc<AtomicUsize>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AdminFeed {
    /// Ids up to `floor` were never in this feed: a client resuming from one of them reloads instead
    /// (set once, before the first event: the hub's first id, or where a replica began reading the outbox).
    pub fn start_after(&self, floor: u64) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.events.is_empty() {
            ring.floor = floor;
        }
    }

    /// Records an event under `id` (the hub's; increasing from call to call) and sends it to every
    /// subscriber.
    pub fn publish(&self, id: u64, kind: &str, room_id: Option<&str>, data: impl Into<EventData>) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let event = Arc::new(AdminEvent {
            id,
            at: chrono::Utc::now(),
            kind: kind.to_owned(),
            room_id: room_id.map(str::to_owned),
            data: data.into(),
        });
        if ring.events.len() == REPLAY {
            if let Some(dropped) = ring.events.pop_front() {
                ring.floor = dropped.id;
            }
        }
        ring.events.push_back(event.clone());
        // Sent under the lock, so a subscriber that takes the lock sees each event exactly once: in its
        // replay or on its channel.
        let _ = self.tx.send(event);
    }

    /// Subscribes after the event `last_id` (the client's `Last-Event-ID`), or fresh.
    pub fn subscribe(&self, last_id: Option<u64>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.tx.subscribe();
        self.streams.fetch_add(1, Ordering::Relaxed);
        let resume = match last_id {
            None => Resume::Fresh,
            Some(last) => {
                let newest = ring.events.back().map_or(ring.floor, |e| e.id);
                if last < ring.floor || last > newest {
                    Resume::Reset
                } else {
                    Resume::Replay(ring.events.iter().filter(|e| e.id > last).cloned().collect())
                }
            }
        };
        Subscription { resume, live, open: StreamGuard(self.streams.clone()) }
    }

    /// The id of the newest event (before the first: where the feed starts).
    pub fn last_id(&self) -> u64 {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.events.back().map_or(ring.floor, |e| e.id)
    }

    /// The newest `limit` events of one room, oldest first.
    pub fn recent(&self, room_id: &str, limit: usize) -> Vec<Arc<AdminEvent>> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> =
            ring.events.iter().rev().filter(|e| e.room_id.as_deref() == Some(room_id)).take(limit).cloned().collect();
        out.reverse();
        out
    }

    /// Event streams open right now.
    pub fn open_streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(resume: &Resume) -> Vec<u64> {
        match resume {
            Resume::Replay(events) => events.iter().map(|e| e.id).collect(),
            other => panic!("expected a replay, got {other:?}"),
        }
    }

    #[test]
    fn resumes_after_the_last_event_and_resets_when_too_far_behind() {
        let feed = AdminFeed::default();
        feed.start_after(100);
        // Before the first event a client at the start resumes; one from before this feed reloads.
        assert_eq!(ids(&feed.subscribe(Some(100)).resume), Vec::<u64>::new());
        assert!(matches!(feed.subscribe(Some(99)).resume, Resume::Reset));
        // Ids may skip (events other streams carry): resuming goes by id, not by count.
        feed.publish(101, "a", Some("r1"), serde_json::json!({}));
        feed.publish(104, "b", Some("r2"), serde_json::json!({}));
        feed.publish(105, "c", Some("r1"), serde_json::json!({}));
        assert_eq!(ids(&feed.subscribe(Some(101)).resume), vec![104, 105]);
        assert_eq!(ids(&feed.subscribe(Some(102)).resume), vec![104, 105]);
        assert_eq!(ids(&feed.subscribe(Some(105)).resume), Vec::<u64>::new());
        assert!(matches!(feed.subscribe(None).resume, Resume::Fresh));
        // An id from the future (another server) or from before the buffer: reload.
        assert!(matches!(feed.subscribe(Some(200)).resume, Resume::Reset));
        for i in 0..REPLAY {
            feed.publish(1000 + i as u64, "x", None, serde_json::json!({}));
        }
        // 101, 104 and 105 fell out: a client at 104 missed 105 and reloads; one at 105 missed nothing gone.
        assert!(matches!(feed.subscribe(Some(104)).resume, Resume::Reset));
        assert_eq!(ids(&feed.subscribe(Some(105)).resume).len(), REPLAY);
        assert_eq!(ids(&feed.subscribe(Some(1000)).resume).len(), REPLAY - 1);
        let recent: Vec<String> = feed.recent("r1", 10).iter().map(|e| e.kind.clone()).collect();
        assert!(recent.is_empty(), "r1's events fell out of the buffer: {recent:?}");
    }

    #[test]
    fn counts_open_streams_and_keeps_a_rooms_recent_events_in_order() {
        let feed = AdminFeed::default();
        let one = feed.subscribe(None);
        let two = feed.subscribe(None);
        assert_eq!(feed.open_streams(), 2);
        drop(one);
        assert_eq!(feed.open_streams(), 1);
        drop(two);
        let mut id = 0;
        for kind in ["a", "b", "c"] {
            id += 2;
            feed.publish(id - 1, kind, Some("r"), serde_json::json!({}));
            feed.publish(id, "other", Some("q"), serde_json::json!({}));
        }
        let recent: Vec<String> = feed.recent("r", 2).iter().map(|e| e.kind.clone()).collect();
        assert_eq!(recent, vec!["b", "c"]);
    }
}
