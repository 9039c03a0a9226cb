//! The event hub: in-process fan-out of what streams deliver — one channel per room for hosts (lobby changes,
//! room state, hands, removals), one for waiting guests (decisions only, so approving 1,000 guests is one
//! message, not 1,000 polls), one instance-wide for assistants — the register of open lobby streams, and what
//! this process has heard from the assistant in each room.
//!
//! Events are a fast path, not the source of truth: every decision is in the database first, guest streams
//! start from the stored state and re-check it periodically, so a missed event (or another replica's
//! decision) only delays a guest, never loses them. With several replicas on PostgreSQL, lobby decisions
//! are also handed to [`Hub::relay_decisions`]'s channel, which `replicas` sends on to the other replicas.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};

use crate::admin::feed::AdminFeed;
use crate::artifacts::health::Heard;
use crate::store::{Admission, RoomRecord};

/// A lobby entry as the host sees it (never the guest's session id or fingerprint).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyEntry {
    pub id: String,
    pub display_name: String,
    pub status: Admission,
    pub waiting_since: chrono::DateTime<chrono::Utc>,
    pub waiting_seconds: i64,
}

/// One raised hand, in queue order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hand {
    pub identity: String,
    pub display_name: String,
    pub raised_at: chrono::DateTime<chrono::Utc>,
}

/// A decision as a waiting guest learns it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub status: Admission,
    pub reason: Option<String>,
}

/// Decisions made together (one approval, "approve all", or the room ending), with the room as it was at
/// that moment so each guest stream can mint its token without going back to the database.
#[derive(Debug)]
pub struct Decisions {
    pub room: RoomRecord,
    pub entries: HashMap<String, Decision>,
}

/// What the host's event stream carries.
#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecidedEntry {
    pub id: String,
    pub status: Admission,
}

/// What the assistant's lecture stream carries.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// A room with the assistant on has a lecture that went live (or had the assistant switched on while
    /// live); the record's `lecture_id` names it.
    LectureLive(Box<RoomRecord>),
    /// A lecture ended, or the assistant was switched off in its room.
    LectureEnded { lecture_id: String },
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
    /// Where decisions made here go for the other replicas, once [`Hub::relay_decisions`] was called.
    relay: std::sync::OnceLock<mpsc::UnboundedSender<RelayedDecisions>>,
}

/// Lobby decisions made on this replica, as other replicas hear of them: which entries, and how decided.
/// Each replica re-reads the guests' rows before telling them anything, so ids and outcomes are enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedDecisions {
    pub room_id: String,
    pub entries: Vec<(String, Admission)>,
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            rooms: Mutex::default(),
            agents: broadcast::channel(CAPACITY).0,
            waiting: Arc::default(),
            admin: AdminFeed::default(),
            assistants: Heard::default(),
            relay: std::sync::OnceLock::new(),
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
    host: broadcast::Sender<Arc<HostEvent>>,
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

    pub fn subscribe_host(&self, room_id: &str) -> broadcast::Receiver<Arc<HostEvent>> {
        self.channels(room_id).host.subscribe()
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
        let _ = self.agents.send(event);
    }

    pub fn to_hosts(&self, room_id: &str, event: HostEvent) {
        self.to_admins(room_id, &event);
        let _ = self.channels(room_id).host.send(Arc::new(event));
    }

    /// The instance-wide feed administrators watch.
    pub fn admin(&self) -> &AdminFeed {
        &self.admin
    }

    /// What the assistants have said from each room.
    pub fn assistants(&self) -> &Heard {
        &self.assistants
    }

    fn to_admins(&self, room_id: &str, event: &HostEvent) {
        let mut data = serde_json::to_value(event).unwrap_or_default();
        let kind = data.as_object_mut().and_then(|o| o.remove("type"));
        let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("update");
        self.admin.publish(kind, Some(room_id), data);
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

    /// From now on, hands every batch of decisions made here to the returned channel too (for the other
    /// replicas). Once per hub: a second call gets `None`.
    pub fn relay_decisions(&self) -> Option<mpsc::UnboundedReceiver<RelayedDecisions>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.relay.set(tx).ok().map(|()| rx)
    }

    /// Tells guests and hosts about decisions made here (and, when relaying, the other replicas).
    pub fn decided(&self, decisions: Decisions) {
        if let Some(relay) = self.relay.get().filter(|_| !decisions.entries.is_empty()) {
            let entries = decisions.entries.iter().map(|(id, d)| (id.clone(), d.status)).collect();
            let _ = relay.send(RelayedDecisions { room_id: decisions.room.id.clone(), entries });
        }
        self.decided_elsewhere(decisions);
    }

    /// Tells guests and hosts of this replica about decisions, without relaying them (they came from
    /// another replica).
    pub fn decided_elsewhere(&self, decisions: Decisions) {
        if decisions.entries.is_empty() {
            return;
        }
        {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            for id in decisions.entries.keys() {
                w.announced.remove(id);
            }
        }
        let channels = self.channels(&decisions.room.id);
        let entries =
            decisions.entries.iter().map(|(id, d)| DecidedEntry { id: id.clone(), status: d.status }).collect();
        let event = HostEvent::LobbyDecided { entries };
        self.to_admins(&decisions.room.id, &event);
        let _ = channels.host.send(Arc::new(event));
        let _ = channels.guests.send(Arc::new(decisions));
    }
}
