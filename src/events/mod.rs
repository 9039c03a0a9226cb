//! The event hub: fan-out of what streams deliver — one channel per room for hosts (lobby changes, room
//! state, hands, removals), one for waiting guests (decisions only, so approving 1,000 guests is one
//! message, not 1,000 polls), one instance-wide for assistants, the admin feed — the register of open lobby
//! streams, and what this process has heard from the assistant in each room.
//!
//! Every event has an id, the same on every stream (`Last-Event-ID`). With SQLite (one process) the hub
//! numbers and delivers events itself. With PostgreSQL, where several replicas may serve one installation,
//! an event goes to the outbox first ([`outbox`]) and every replica — this one too — delivers it when it
//! reads it back, so all replicas deliver the same events in the same order under the same ids.
//!
//! Events are a fast path, not the source of truth: every decision is in the database first, guest streams
//! start from the stored state and re-check it periodically, so a missed event only delays a guest, never
//! loses them.

pub mod outbox;

pub use outbox::atomically;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};

use crate::admin::feed::AdminFeed;
use crate::artifacts::health::{Heard, News};
use crate::store::{Admission, NewEvent};

/// A lobby entry as the host sees it (never the guest's session id or fingerprint).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyEntry {
    pub id: String,
    pub display_name: String,
    pub status: Admission,
    pub waiting_since: chrono::DateTime<chrono::Utc>,
    pub waiting_seconds: i64,
}

/// One raised hand, in queue order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hand {
    pub identity: String,
    pub display_name: String,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

/// A decision as a waiting guest learns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub status: Admission,
    pub reason: Option<String>,
}

/// Decisions made together (one approval, "approve all", or the room ending), by lobby entry id.
#[derive(Debug)]
pub struct Decisions {
    pub entries: HashMap<String, Decision>,
    /// What the decided guests' streams on this replica read back once the decisions are stored: read by the
    /// first stream that wakes and shared with the others (`admission::stream`), so "approve all" for 5,000
    /// costs a few statements instead of three for each guest.
    pub stored: tokio::sync::OnceCell<Option<Arc<crate::admission::stream::Decided>>>,
}

impl Decisions {
    pub fn new(entries: HashMap<String, Decision>) -> Self {
        Self { entries, stored: tokio::sync::OnceCell::new() }
    }
}

/// What the host's event stream carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum HostEvent {
    /// A guest arrived (or came back) and waits.
    GuestWaiting { entry: LobbyEntry },
    /// A waiting guest's page went away (closed tab, lost network); they may come back.
    GuestLeft { entry_id: String },
    /// Entries were decided.
    LobbyDecided { entries: Vec<DecidedEntry> },
    /// The room's status changed (its lecture went live).
    RoomStatus { status: crate::store::RoomStatus },
    /// The lecture under way ended; the room is ready for its next one (same invite link).
    LectureEnded { lecture_id: String },
    /// Lock or panic mute changed.
    RoomUpdated { locked: bool, guests_muted: bool },
    /// The raised-hands queue changed (in order).
    Hands { hands: Vec<Hand> },
    /// A removal that LiveKit could not take at first went through on a retry.
    RemovalConfirmed { identity: String, disconnected: bool },
    /// LiveKit never took a removal: the person is refused by confctl but may still be connected.
    RemovalFailed { identity: String },
}

impl HostEvent {
    /// The event's name on the stream (`guest_waiting`, `lobby_decided`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::GuestWaiting { .. } => "guest_waiting",
            Self::GuestLeft { .. } => "guest_left",
            Self::LobbyDecided { .. } => "lobby_decided",
            Self::RoomStatus { .. } => "room_status",
            Self::LectureEnded { .. } => "lecture_ended",
            Self::RoomUpdated { .. } => "room_updated",
            Self::Hands { .. } => "hands",
            Self::RemovalConfirmed { .. } => "removal_confirmed",
            Self::RemovalFailed { .. } => "removal_failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecidedEntry {
    pub id: String,
    pub status: Admission,
}

/// A host event with its id.
#[derive(Debug, Clone)]
pub struct Numbered {
    pub id: u64,
    pub event: HostEvent,
}

/// What the assistant's lecture stream carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum AgentEvent {
    /// A room with the assistant on has a lecture that went live (or had the assistant switched on while
    /// live); the stream reads the room to learn which.
    LectureLive { room_id: String },
    /// A lecture ended, or the assistant was switched off in its room.
    LectureEnded { lecture_id: String },
}

/// An event as it is published, and as it travels between replicas (the outbox's payload).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Event {
    /// For the room's hosts (and the admin feed).
    Hosts { event: HostEvent },
    /// For the room's waiting guests, its hosts and the admin feed.
    Decided { entries: HashMap<String, Decision> },
    /// For the assistants.
    Agents { event: AgentEvent },
    /// For the admin feed only.
    Admin { kind: String, data: serde_json::Value },
    /// What the assistant said in a lecture, heard by the replica it talks to.
    Assistant { lecture_id: String, at: i64, news: News },
}

/// Room id → channels, plus the instance-wide channel for assistants and the register of waiting guests'
/// open streams.
#[derive(Debug)]
pub struct Hub {
    rooms: Mutex<HashMap<String, Channels>>,
    agents: broadcast::Sender<AgentEvent>,
    waiting: Arc<Mutex<Waiting>>,
    /// Everything hosts hear, instance wide, for administrators (`/api/admin/events`).
    admin: AdminFeed,
    /// The assistants' captions and reports, by room (the monitor's assistant state).
    assistants: Heard,
    /// Where events go first when replicas share PostgreSQL (see [`outbox`]); unset: delivered here at once.
    outbox: std::sync::OnceLock<mpsc::UnboundedSender<NewEvent>>,
    /// The id of the last event delivered here; delivering happens under this lock, so every stream sees
    /// events in id order.
    last_id: Mutex<u64>,
}

impl Default for Hub {
    fn default() -> Self {
        // Ids of a process that numbers its own events start from the clock, so ids of a restarted server
        // are above the old ones: a client resuming across a restart is not handed unrelated events.
        let start = u64::try_from(crate::time::now_ms()).unwrap_or(0).saturating_mul(1000);
        let admin = AdminFeed::default();
        admin.start_after(start);
        Self {
            rooms: Mutex::default(),
            agents: broadcast::channel(CAPACITY).0,
            waiting: Arc::default(),
            admin,
            assistants: Heard::default(),
            outbox: std::sync::OnceLock::new(),
            last_id: Mutex::new(start),
        }
    }
}

/// Who waits with an open stream: one live stream per guest session (a newer one replaces the older), a cap
/// per client address, and which guests hosts have been told about, so each arrival is announced once.
#[derive(Debug, Default)]
struct Waiting {
    /// Participant id → the id of its live stream and the switch that ends it.
    streams: HashMap<String, (u64, watch::Sender<bool>)>,
    per_ip: HashMap<String, usize>,
    /// Waiting guests the hosts have heard of (and not heard leave).
    announced: HashSet<String>,
    next_id: u64,
}

/// A waiting guest's open stream, registered with the hub. Dropping it frees its place.
#[derive(Debug)]
pub struct GuestStreamGuard {
    waiting: Arc<Mutex<Waiting>>,
    participant_id: String,
    ip: String,
    id: u64,
    /// Turns true when a newer stream of the same guest took over.
    pub replaced: watch::Receiver<bool>,
    /// Whether hosts have to be told this guest is (back) waiting.
    pub announce: bool,
}

impl GuestStreamGuard {
    /// Ends the registration; true when this was still the guest's live stream (then hosts hear the guest
    /// left, unless a decision ended it).
    pub fn close(self) -> bool {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let current = w.streams.get(&self.participant_id).is_some_and(|(id, _)| *id == self.id);
        if current {
            w.streams.remove(&self.participant_id);
            w.announced.remove(&self.participant_id);
        }
        current
    }
}

impl Drop for GuestStreamGuard {
    fn drop(&mut self) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.per_ip.remove(&self.ip);
            }
        }
        if w.streams.get(&self.participant_id).is_some_and(|(id, _)| *id == self.id) {
            w.streams.remove(&self.participant_id);
        }
    }
}

#[derive(Debug, Clone)]
struct Channels {
    host: broadcast::Sender<Arc<Numbered>>,
    guests: broadcast::Sender<Arc<Decisions>>,
}

/// Enough for a burst of 1,000 arrivals before a slow host stream lags (it then reloads the lobby).
const CAPACITY: usize = 4096;

impl Hub {
    fn channels(&self, room_id: &str) -> Channels {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        // Forget rooms nobody listens to, so the map does not grow with every room ever opened.
        if rooms.len() > 64 {
            rooms.retain(|_, c| c.host.receiver_count() + c.guests.receiver_count() > 0);
        }
        rooms
            .entry(room_id.to_owned())
            .or_insert_with(|| Channels {
                host: broadcast::channel(CAPACITY).0,
                guests: broadcast::channel(CAPACITY).0,
            })
            .clone()
    }

    /// A room's host events from now on, and the id of the last event delivered before them.
    pub fn subscribe_host(&self, room_id: &str) -> (broadcast::Receiver<Arc<Numbered>>, u64) {
        let last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
        (self.channels(room_id).host.subscribe(), *last)
    }

    pub fn subscribe_guest(&self, room_id: &str) -> broadcast::Receiver<Arc<Decisions>> {
        self.channels(room_id).guests.subscribe()
    }

    /// Assistant workers connected right now (each holds one room stream).
    pub fn agent_streams(&self) -> usize {
        self.agents.receiver_count()
    }

    pub fn subscribe_agents(&self) -> broadcast::Receiver<AgentEvent> {
        self.agents.subscribe()
    }

    pub fn to_agents(&self, event: AgentEvent) {
        self.publish(None, Event::Agents { event });
    }

    pub fn to_hosts(&self, room_id: &str, event: HostEvent) {
        self.publish(Some(room_id), Event::Hosts { event });
    }

    /// An event for administrators only (`kind`: `audit`, `assistant`, …).
    pub fn to_admins(&self, kind: &str, room_id: Option<&str>, data: serde_json::Value) {
        self.publish(room_id, Event::Admin { kind: kind.to_owned(), data });
    }

    /// Tells the other replicas what the assistant said in a lecture (nothing to do without replicas: this
    /// process heard it itself).
    pub fn tell_replicas(&self, lecture_id: &str, news: News, at: i64) {
        if self.outbox.get().is_some() {
            self.publish(None, Event::Assistant { lecture_id: lecture_id.to_owned(), at, news });
        }
    }

    /// Tells the room's waiting guests and hosts about decisions.
    pub fn decided(&self, room_id: &str, decisions: Decisions) {
        if !decisions.entries.is_empty() {
            self.publish(Some(room_id), Event::Decided { entries: decisions.entries });
        }
    }

    /// The instance-wide feed administrators watch.
    pub fn admin(&self) -> &AdminFeed {
        &self.admin
    }

    /// What the assistants have said from each room.
    pub fn assistants(&self) -> &Heard {
        &self.assistants
    }

    /// A guest arrived in the lobby: hosts hear of them now, and not again while they wait.
    pub fn guest_arrived(&self, room_id: &str, entry: LobbyEntry) {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).announced.insert(entry.id.clone());
        self.to_hosts(room_id, HostEvent::GuestWaiting { entry });
    }

    /// Registers a waiting guest's stream. An older stream of the same guest is told to end; more than
    /// `per_ip` open streams from one address are refused (`None`).
    pub fn open_guest_stream(&self, participant_id: &str, ip: &str, per_ip: usize) -> Option<GuestStreamGuard> {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let open = w.per_ip.get(ip).copied().unwrap_or(0);
        if open >= per_ip {
            return None;
        }
        w.per_ip.insert(ip.to_owned(), open + 1);
        w.next_id += 1;
        let id = w.next_id;
        let (tx, replaced) = watch::channel(false);
        if let Some((_, older)) = w.streams.insert(participant_id.to_owned(), (id, tx)) {
            let _ = older.send(true);
        }
        let announce = w.announced.insert(participant_id.to_owned());
        Some(GuestStreamGuard {
            waiting: self.waiting.clone(),
            participant_id: participant_id.to_owned(),
            ip: ip.to_owned(),
            id,
            replaced,
            announce,
        })
    }

    /// From now on, hands every event to the returned channel instead of delivering it (for the outbox;
    /// see [`outbox`]). Once per hub: a second call gets `None`.
    pub fn send_to_outbox(&self) -> Option<mpsc::UnboundedReceiver<NewEvent>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.outbox.set(tx).ok().map(|()| rx)
    }

    /// Delivers `event` here, or — with an outbox — appends it: with the change under way on this task
    /// (see [`atomically`]), or else as soon as the outbox writer can.
    fn publish(&self, room_id: Option<&str>, event: Event) {
        match self.outbox.get() {
            Some(outbox) => {
                let payload = match serde_json::to_string(&event) {
                    Ok(payload) => payload,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot encode an event for the outbox");
                        return;
                    }
                };
                let event = NewEvent { room_id: room_id.map(str::to_owned), payload };
                if let Err(event) = crate::store::publish_with_change(event) {
                    let _ = outbox.send(event);
                }
            }
            None => {
                let mut last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
                *last += 1;
                self.deliver_locked(*last, room_id, event);
            }
        }
    }

    /// Delivers an event read from the outbox under its id. Ids must increase from call to call; an id not
    /// above the last one delivered is ignored (already delivered).
    pub fn deliver(&self, id: u64, room_id: Option<&str>, event: Event) {
        let mut last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
        if id <= *last {
            return;
        }
        *last = id;
        self.deliver_locked(id, room_id, event);
    }

    /// Switches to the outbox's ids (PostgreSQL): delivering goes on after the event `after` (the newest
    /// when this replica started reading). `history`, the newest events before it (oldest first), fills
    /// the admin feed's replay buffer only — streams hear nothing of the past — so an administrator's
    /// client resumes on this replica as on the one it came from.
    pub fn start_from_outbox(&self, after: u64, history: Vec<(u64, Option<String>, Event)>) {
        let mut last = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
        *last = after;
        let floor = history.first().map_or(after, |(id, _, _)| id.saturating_sub(1));
        self.admin.start_after(floor);
        for (id, room_id, event) in history {
            match event {
                Event::Hosts { event } => {
                    if let Some(room_id) = room_id.as_deref() {
                        self.to_admin_feed(room_id, &Arc::new(Numbered { id, event }));
                    }
                }
                Event::Decided { entries } => {
                    if let Some(room_id) = room_id.as_deref() {
                        self.to_admin_feed(room_id, &Arc::new(Numbered { id, event: lobby_decided(&entries) }));
                    }
                }
                Event::Admin { kind, data } => self.admin.publish(id, &kind, room_id.as_deref(), data),
                Event::Agents { .. } | Event::Assistant { .. } => {}
            }
        }
    }

    /// The id of the last event delivered here.
    pub fn last_id(&self) -> u64 {
        *self.last_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver_locked(&self, id: u64, room_id: Option<&str>, event: Event) {
        match event {
            Event::Hosts { event } => {
                if let Some(room_id) = room_id {
                    let event = Arc::new(Numbered { id, event });
                    self.to_admin_feed(room_id, &event);
                    let _ = self.channels(room_id).host.send(event);
                }
            }
            Event::Decided { entries } => {
                let Some(room_id) = room_id else { return };
                {
                    let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                    for entry in entries.keys() {
                        w.announced.remove(entry);
                    }
                }
                let channels = self.channels(room_id);
                let event = Arc::new(Numbered { id, event: lobby_decided(&entries) });
                self.to_admin_feed(room_id, &event);
                let _ = channels.host.send(event);
                let _ = channels.guests.send(Arc::new(Decisions::new(entries)));
            }
            Event::Agents { event } => {
                let _ = self.agents.send(event);
            }
            Event::Admin { kind, data } => self.admin.publish(id, &kind, room_id, data),
            // The replica that heard it recorded it already; recording it again changes nothing there.
            Event::Assistant { lecture_id, at, news } => {
                self.assistants.news(&lecture_id, news, at);
            }
        }
    }

    /// Records a host event in the admin feed under its own id.
    fn to_admin_feed(&self, room_id: &str, event: &Arc<Numbered>) {
        let numbered = event.clone();
        let data = crate::admin::feed::EventData::later(move || {
            let mut data = serde_json::to_value(&numbered.event).unwrap_or_default();
            if let Some(fields) = data.as_object_mut() {
                fields.remove("type");
            }
            data
        });
        self.admin.publish(event.id, event.event.name(), Some(room_id), data);
    }
}

/// What hosts hear of decisions.
fn lobby_decided(entries: &HashMap<String, Decision>) -> HostEvent {
    HostEvent::LobbyDecided {
        entries: entries.iter().map(|(id, d)| DecidedEntry { id: id.clone(), status: d.status }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_name_on_the_stream_is_its_json_type() {
        let entry = LobbyEntry {
            id: "e".into(),
            display_name: "G".into(),
            status: Admission::Pending,
            waiting_since: chrono::Utc::now(),
            waiting_seconds: 0,
        };
        let all = [
            HostEvent::GuestWaiting { entry },
            HostEvent::GuestLeft { entry_id: "e".into() },
            HostEvent::LobbyDecided { entries: vec![] },
            HostEvent::RoomStatus { status: crate::store::RoomStatus::Live },
            HostEvent::LectureEnded { lecture_id: "l".into() },
            HostEvent::RoomUpdated { locked: true, guests_muted: false },
            HostEvent::Hands { hands: vec![] },
            HostEvent::RemovalConfirmed { identity: "i".into(), disconnected: true },
            HostEvent::RemovalFailed { identity: "i".into() },
        ];
        for event in all {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.name(), "{json}");
            // And it travels between replicas unchanged.
            let back: HostEvent = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
        }
    }

    #[test]
    fn events_are_numbered_in_order_and_an_old_id_is_not_delivered_twice() {
        let hub = Hub::default();
        let (mut host, start) = hub.subscribe_host("r");
        hub.to_hosts("r", HostEvent::GuestLeft { entry_id: "a".into() });
        hub.to_hosts("r", HostEvent::GuestLeft { entry_id: "b".into() });
        let (first, second) = (host.try_recv().unwrap(), host.try_recv().unwrap());
        assert_eq!((first.id, second.id), (start + 1, start + 2));
        assert_eq!(hub.admin().last_id(), start + 2);
        // Delivering from an outbox: an id at or below the last one delivered was delivered already.
        hub.deliver(start + 2, Some("r"), Event::Hosts { event: HostEvent::GuestLeft { entry_id: "c".into() } });
        assert!(host.try_recv().is_err());
        hub.deliver(start + 9, Some("r"), Event::Hosts { event: HostEvent::GuestLeft { entry_id: "d".into() } });
        assert_eq!(host.try_recv().unwrap().id, start + 9);
    }
}
