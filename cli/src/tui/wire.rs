//! What the monitor reads from the server: the snapshot, a room's detail and the event stream's events, as
//! JSON shapes (`GET /api/admin/rooms`, `GET /api/admin/rooms/{id}`, the admin stream). The state that
//! keeps them current is `model`'s.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The instance header of a snapshot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub version: String,
    pub database: String,
    pub livekit_reachable: bool,
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(default)]
    pub certificate_expires_at: Option<DateTime<Utc>>,
}

/// The header's moving figures: in each snapshot, and every few seconds on the event stream.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    #[serde(default)]
    pub requests_per_second: f64,
    pub event_streams: usize,
    #[serde(default)]
    pub assistant_workers: usize,
}

/// A waiting guest.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LobbyEntry {
    pub id: String,
    pub display_name: String,
    pub waiting_since: DateTime<Utc>,
}

/// One room as listed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub host: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub participants: Option<u32>,
    pub publishers: Option<u32>,
    #[serde(default)]
    pub lobby: Vec<LobbyEntry>,
    #[serde(default)]
    pub hands: usize,
    pub locked: bool,
    pub guests_muted: bool,
    /// off, on (no lecture live), joining, captioning or failing.
    #[serde(default)]
    pub assistant: String,
    /// Why the assistant is failing.
    #[serde(default)]
    pub assistant_problem: Option<String>,
    #[serde(default)]
    pub last_caption_at: Option<DateTime<Utc>>,
}

impl Room {
    pub fn assistant_failing(&self) -> bool {
        self.assistant == "failing"
    }

    /// The assistant follows the lecture: joining when one goes live, merely on when none is.
    pub(super) fn follow_lecture(&mut self, live: bool) {
        if self.assistant != "off" {
            self.assistant = if live { "joining" } else { "on" }.to_owned();
            self.assistant_problem = None;
        }
    }
}

/// `GET /api/admin/rooms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub instance: Instance,
    pub rooms: Vec<Room>,
    pub last_event_id: u64,
}

/// Someone in the media room.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub identity: String,
    pub name: String,
    pub role: Option<String>,
    pub joined_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub audio_muted: bool,
}

/// A raised hand.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hand {
    pub identity: String,
}

/// An event of the instance stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminEvent {
    pub id: u64,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub room_id: Option<String>,
    #[serde(default)]
    pub data: Value,
}

impl AdminEvent {
    /// One line for the events log.
    pub fn summary(&self) -> String {
        let d = &self.data;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        match self.kind.as_str() {
            "guest_waiting" => format!("{} waits in the lobby", s(&d["entry"]["displayName"])),
            "guest_left" => "a waiting guest left".to_owned(),
            "lobby_decided" => {
                let entries = d["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
                let approved = entries.iter().filter(|e| e["status"] == "APPROVED").count();
                format!("lobby: {approved} approved, {} turned away", entries.len() - approved)
            }
            "participant_joined" => format!("{} joined", s(&d["name"])),
            "participant_left" => format!("{} left", s(&d["name"])),
            "room_status" => format!("room is now {}", s(&d["status"])),
            "room_updated" => format!(
                "locked: {}, guests muted: {}",
                d["locked"].as_bool().unwrap_or_default(),
                d["guestsMuted"].as_bool().unwrap_or_default()
            ),
            "hands" => format!("{} hand(s) raised", d["hands"].as_array().map_or(0, Vec::len)),
            "removal_failed" => format!("LiveKit did not remove {}", s(&d["identity"])),
            "removal_confirmed" => format!("removal of {} confirmed", s(&d["identity"])),
            "audit" => format!("{} by {}", s(&d["action"]), s(&d["actor"])),
            "assistant" => match d["assistantProblem"].as_str() {
                Some(problem) => format!("assistant {}: {problem}", s(&d["assistant"])),
                None => format!("assistant {}", s(&d["assistant"])),
            },
            other => other.to_owned(),
        }
    }
}

/// `GET /api/admin/rooms/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub room: Room,
    pub participants: Option<Vec<Participant>>,
    #[serde(default)]
    pub hands: Vec<Hand>,
    #[serde(default)]
    pub recent_events: Vec<AdminEvent>,
}
