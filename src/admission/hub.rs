//! In-process fan-out of lobby events: one channel per room for hosts (every lobby change) and one for
//! waiting guests (decisions only), so approving 1,000 guests is one message, not 1,000 polls.
//!
//! Events are a fast path, not the source of truth: every decision is in the database first, guest streams
//! start from the stored state and re-check it periodically, so a missed event (or another replica's
//! decision) only delays a guest, never loses them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

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
    /// The room's status changed.
    RoomStatus { status: crate::store::RoomStatus },
    /// Lock or panic mute changed.
    RoomUpdated { locked: bool, guests_muted: bool },
    /// The raised-hands queue changed (in order).
    Hands { hands: Vec<crate::moderation::Hand> },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecidedEntry {
    pub id: String,
    pub status: Admission,
}

/// What the assistant's room stream carries.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// A room with the assistant on became ACTIVE (or had the assistant switched on while active).
    RoomActive(Box<RoomRecord>),
    /// A room ended, or the assistant was switched off.
    RoomEnded { room_id: String },
}

/// Room id → channels, plus the instance-wide channel for assistants.
#[derive(Debug)]
pub struct Hub {
    rooms: Mutex<HashMap<String, Channels>>,
    agents: broadcast::Sender<AgentEvent>,
}

impl Default for Hub {
    fn default() -> Self {
        Self { rooms: Mutex::default(), agents: broadcast::channel(CAPACITY).0 }
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

    pub fn subscribe_agents(&self) -> broadcast::Receiver<AgentEvent> {
        self.agents.subscribe()
    }

    pub fn to_agents(&self, event: AgentEvent) {
        let _ = self.agents.send(event);
    }

    pub fn to_hosts(&self, room_id: &str, event: HostEvent) {
        let _ = self.channels(room_id).host.send(Arc::new(event));
    }

    /// Tells guests and hosts about decisions.
    pub fn decided(&self, decisions: Decisions) {
        if decisions.entries.is_empty() {
            return;
        }
        let channels = self.channels(&decisions.room.id);
        let entries =
            decisions.entries.iter().map(|(id, d)| DecidedEntry { id: id.clone(), status: d.status }).collect();
        let _ = channels.host.send(Arc::new(HostEvent::LobbyDecided { entries }));
        let _ = channels.guests.send(Arc::new(decisions));
    }
}
