//! The monitor's state: the snapshot as the server sent it (its shapes are `wire`'s), kept current by the
//! event stream, and where the admin is (screen, selection, filter, sort, prompt). No I/O here, so every
//! screen can be tested.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::wire::{AdminEvent, Detail, Instance, LobbyEntry, Participant, Room, Snapshot};

/// The screens, k9s style: a list, one item in detail, the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Rooms,
    Detail,
    Events,
}

/// How the rooms list is ordered (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Activity,
    Lobby,
    Name,
    Newest,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Self::Activity => Self::Lobby,
            Self::Lobby => Self::Name,
            Self::Name => Self::Newest,
            Self::Newest => Self::Activity,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Lobby => "lobby",
            Self::Name => "name",
            Self::Newest => "newest",
        }
    }
}

/// Which list of the room detail has the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Lobby,
    Participants,
}

/// The connection to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Connecting,
    Live,
    /// Lost; retrying. The reason is shown.
    Retrying {
        attempt: u32,
        reason: String,
    },
    /// The server refused the credentials: retrying cannot help.
    Refused(String),
}

/// An action the admin asked for, waiting for `y`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Approve { room: String, entry: String, name: String },
    ApproveAll { room: String },
    Reject { room: String, entry: String, name: String },
    Kick { room: String, identity: String, name: String },
    Ban { room: String, identity: String, name: String, reason: String },
    MuteAll { room: String },
    UnmuteAll { room: String },
    Lock { room: String, locked: bool },
    End { room: String },
}

impl Action {
    /// The HTTP path (under `/api/admin/rooms/`) and JSON body.
    pub fn request(&self) -> (String, Value) {
        let none = Value::Object(Default::default());
        match self {
            Self::Approve { room, entry, .. } => (format!("{room}/lobby/{entry}/approve"), none),
            Self::ApproveAll { room } => (format!("{room}/lobby/approve-all"), none),
            Self::Reject { room, entry, .. } => (format!("{room}/lobby/{entry}/reject"), none),
            Self::Kick { room, identity, .. } => (format!("{room}/participants/{identity}/kick"), none),
            Self::Ban { room, identity, reason, .. } => {
                let body = if reason.is_empty() { none } else { serde_json::json!({ "reason": reason }) };
                (format!("{room}/participants/{identity}/ban"), body)
            }
            Self::MuteAll { room } => (format!("{room}/mute-all"), none),
            Self::UnmuteAll { room } => (format!("{room}/unmute-all"), none),
            Self::Lock { room, locked: true } => (format!("{room}/lock"), none),
            Self::Lock { room, locked: false } => (format!("{room}/unlock"), none),
            Self::End { room } => (format!("{room}/end"), none),
        }
    }

    /// The confirmation question.
    pub fn question(&self, room_name: &str) -> String {
        match self {
            Self::Approve { name, .. } => format!("Let {name} into {room_name}?"),
            Self::ApproveAll { .. } => format!("Let everyone waiting into {room_name}?"),
            Self::Reject { name, .. } => format!("Turn {name} away from {room_name}?"),
            Self::Kick { name, .. } => format!("Remove {name} from {room_name}?"),
            Self::Ban { name, .. } => format!("Ban {name} from {room_name}?"),
            Self::MuteAll { .. } => format!("Mute every guest in {room_name}?"),
            Self::UnmuteAll { .. } => format!("Let guests in {room_name} speak again?"),
            Self::Lock { locked: true, .. } => format!("Lock {room_name} (nobody new gets in)?"),
            Self::Lock { locked: false, .. } => format!("Unlock {room_name}?"),
            Self::End { .. } => format!("End the lecture {room_name} for everyone?"),
        }
    }

    pub fn room(&self) -> &str {
        match self {
            Self::Approve { room, .. }
            | Self::ApproveAll { room }
            | Self::Reject { room, .. }
            | Self::Kick { room, .. }
            | Self::Ban { room, .. }
            | Self::MuteAll { room }
            | Self::UnmuteAll { room }
            | Self::Lock { room, .. }
            | Self::End { room } => room,
        }
    }
}

/// A prompt over the current screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    None,
    /// Typing the filter (`/`).
    Filter,
    /// Typing a ban reason before the confirmation.
    BanReason(Action),
    Confirm(Action),
}

/// How many 30-second buckets the activity sparkline covers.
pub const SPARK_BUCKETS: usize = 10;
const EVENT_LOG: usize = 500;

/// Everything the screens show.
#[derive(Debug, Clone)]
pub struct State {
    pub server: String,
    pub readonly: bool,
    pub instance: Instance,
    pub rooms: Vec<Room>,
    pub link: Link,
    pub last_event_id: Option<u64>,
    pub screen: Screen,
    /// The selected room (kept by id, so a reload or a reconnect does not lose the place).
    pub selected: Option<String>,
    pub detail: Option<Detail>,
    pub pane: Pane,
    pub detail_cursor: usize,
    pub events: VecDeque<AdminEvent>,
    pub events_scroll: usize,
    pub filter: String,
    pub sort: Sort,
    pub prompt: Prompt,
    pub help: bool,
    /// The last action's outcome or an error, shown in the footer.
    pub message: Option<String>,
    /// Events per room in 30-second buckets, newest last.
    pub activity: HashMap<String, VecDeque<u32>>,
    pub now: DateTime<Utc>,
}

impl State {
    pub fn new(server: &str, readonly: bool) -> Self {
        Self {
            server: server.to_owned(),
            readonly,
            instance: Instance::default(),
            rooms: Vec::new(),
            link: Link::Connecting,
            last_event_id: None,
            screen: Screen::Rooms,
            selected: None,
            detail: None,
            pane: Pane::Lobby,
            detail_cursor: 0,
            events: VecDeque::new(),
            events_scroll: 0,
            filter: String::new(),
            sort: Sort::Activity,
            prompt: Prompt::None,
            help: false,
            message: None,
            activity: HashMap::new(),
            now: Utc::now(),
        }
    }

    /// A fresh snapshot (on connect, reconnect, `r` or a reset). The selection stays on the same room.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        self.instance = snap.instance;
        self.rooms = snap.rooms;
        self.last_event_id = Some(snap.last_event_id);
        self.link = Link::Live;
        if self.selected.as_ref().is_none_or(|id| !self.rooms.iter().any(|r| &r.id == id)) {
            self.selected = self.visible_rooms().first().map(|r| r.id.clone());
        }
    }

    pub fn apply_detail(&mut self, detail: Detail) {
        if let Some(room) = self.rooms.iter_mut().find(|r| r.id == detail.room.id) {
            *room = detail.room.clone();
        }
        self.detail = Some(detail);
        self.clamp_detail_cursor();
    }

    /// One event from the stream: the log, the sparkline, and the room it changes.
    pub fn apply_event(&mut self, event: AdminEvent) {
        self.last_event_id = Some(event.id);
        if let Some(room_id) = event.room_id.clone() {
            let buckets =
                self.activity.entry(room_id.clone()).or_insert_with(|| VecDeque::from(vec![0; SPARK_BUCKETS]));
            if let Some(last) = buckets.back_mut() {
                *last += 1;
            }
            if let Some(room) = self.rooms.iter_mut().find(|r| r.id == room_id) {
                apply_to_room(room, &event);
            }
            if let Some(detail) = self.detail.as_mut().filter(|d| d.room.id == room_id) {
                apply_to_room(&mut detail.room, &event);
                apply_to_detail(detail, &event);
                detail.recent_events.push(event.clone());
                if detail.recent_events.len() > 50 {
                    detail.recent_events.remove(0);
                }
            }
            self.clamp_detail_cursor();
        }
        self.events.push_back(event);
        if self.events.len() > EVENT_LOG {
            self.events.pop_front();
        }
    }

    /// Moves the sparkline on by one bucket (every 30 s).
    pub fn shift_activity(&mut self) {
        for buckets in self.activity.values_mut() {
            buckets.pop_front();
            buckets.push_back(0);
        }
    }

    fn activity_of(&self, room: &Room) -> u32 {
        let recent: u32 = self.activity.get(&room.id).map_or(0, |b| b.iter().sum());
        recent + room.participants.unwrap_or(0) + u32::try_from(room.lobby.len() * 2).unwrap_or(u32::MAX)
    }

    /// The rooms the list shows: filtered by the `/` text, in the chosen order.
    pub fn visible_rooms(&self) -> Vec<&Room> {
        let needle = self.filter.to_lowercase();
        let mut rooms: Vec<&Room> = self
            .rooms
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.name.to_lowercase().contains(&needle)
                    || r.host.to_lowercase().contains(&needle)
                    || r.id.to_lowercase().contains(&needle)
                    || r.status.to_lowercase().contains(&needle)
            })
            .collect();
        match self.sort {
            Sort::Activity => rooms.sort_by_key(|r| std::cmp::Reverse((self.activity_of(r), r.created_at))),
            Sort::Lobby => rooms.sort_by(|a, b| (b.lobby.len(), &a.name).cmp(&(a.lobby.len(), &b.name))),
            Sort::Name => rooms.sort_by_key(|r| r.name.to_lowercase()),
            Sort::Newest => rooms.sort_by_key(|r| std::cmp::Reverse(r.created_at)),
        }
        rooms
    }

    /// The events log as filtered by the `/` text.
    pub fn visible_events(&self) -> Vec<&AdminEvent> {
        let needle = self.filter.to_lowercase();
        let name_of = |id: &Option<String>| {
            id.as_ref().and_then(|id| self.rooms.iter().find(|r| &r.id == id)).map(|r| r.name.to_lowercase())
        };
        self.events
            .iter()
            .filter(|e| {
                needle.is_empty()
                    || e.kind.contains(&needle)
                    || e.summary().to_lowercase().contains(&needle)
                    || name_of(&e.room_id).is_some_and(|n| n.contains(&needle))
            })
            .collect()
    }

    pub fn selected_room(&self) -> Option<&Room> {
        let id = self.selected.as_ref()?;
        self.rooms.iter().find(|r| &r.id == id)
    }

    pub fn room_name(&self, id: &str) -> String {
        self.rooms.iter().find(|r| r.id == id).map_or_else(|| id.to_owned(), |r| r.name.clone())
    }

    /// Moves the cursor of the current screen by `delta` rows.
    pub fn move_cursor(&mut self, delta: isize) {
        match self.screen {
            Screen::Rooms => {
                let ids: Vec<String> = self.visible_rooms().iter().map(|r| r.id.clone()).collect();
                if ids.is_empty() {
                    return;
                }
                let at = self.selected.as_ref().and_then(|s| ids.iter().position(|id| id == s)).unwrap_or(0);
                let to = at.saturating_add_signed(delta).min(ids.len() - 1);
                self.selected = Some(ids[to].clone());
            }
            Screen::Detail => {
                self.detail_cursor = self.detail_cursor.saturating_add_signed(delta);
                self.clamp_detail_cursor();
            }
            Screen::Events => {
                let n = self.visible_events().len();
                self.events_scroll = self.events_scroll.saturating_add_signed(-delta).min(n.saturating_sub(1));
            }
        }
    }

    fn pane_len(&self) -> usize {
        let Some(d) = &self.detail else { return 0 };
        match self.pane {
            Pane::Lobby => d.room.lobby.len(),
            Pane::Participants => d.participants.as_ref().map_or(0, Vec::len),
        }
    }

    fn clamp_detail_cursor(&mut self) {
        self.detail_cursor = self.detail_cursor.min(self.pane_len().saturating_sub(1));
    }

    pub fn switch_pane(&mut self) {
        self.pane = match self.pane {
            Pane::Lobby => Pane::Participants,
            Pane::Participants => Pane::Lobby,
        };
        self.detail_cursor = 0;
    }

    /// The lobby entry under the cursor on the detail screen.
    pub fn cursor_entry(&self) -> Option<&LobbyEntry> {
        let d = self.detail.as_ref()?;
        (self.pane == Pane::Lobby).then(|| d.room.lobby.get(self.detail_cursor)).flatten()
    }

    /// The participant under the cursor on the detail screen.
    pub fn cursor_participant(&self) -> Option<&Participant> {
        let d = self.detail.as_ref()?;
        (self.pane == Pane::Participants).then(|| d.participants.as_ref()?.get(self.detail_cursor)).flatten()
    }
}

fn apply_to_room(room: &mut Room, event: &AdminEvent) {
    let d = &event.data;
    match event.kind.as_str() {
        "guest_waiting" => {
            if let Ok(entry) = serde_json::from_value::<LobbyEntry>(d["entry"].clone()) {
                room.lobby.retain(|e| e.id != entry.id);
                room.lobby.push(entry);
                room.lobby.sort_by_key(|e| e.waiting_since);
            }
        }
        "guest_left" => {
            let id = d["entryId"].as_str().unwrap_or_default();
            room.lobby.retain(|e| e.id != id);
        }
        "lobby_decided" => {
            for decided in d["entries"].as_array().into_iter().flatten() {
                let id = decided["id"].as_str().unwrap_or_default();
                room.lobby.retain(|e| e.id != id);
            }
        }
        "participant_joined" => room.participants = Some(room.participants.unwrap_or(0) + 1),
        "participant_left" => room.participants = room.participants.map(|n| n.saturating_sub(1)),
        "room_status" => {
            if let Some(status) = d["status"].as_str() {
                room.status = status.to_owned();
                if status == "LIVE" && room.started_at.is_none() {
                    room.started_at = Some(event.at);
                }
                room.follow_lecture(status == "LIVE");
            }
        }
        // The room is ready for its next lecture, which has not started.
        "lecture_ended" => {
            room.status = "READY".to_owned();
            room.started_at = None;
            room.ended_at = Some(event.at);
            room.lobby.clear();
            room.participants = Some(0);
            room.follow_lecture(false);
        }
        "room_updated" => {
            room.locked = d["locked"].as_bool().unwrap_or(room.locked);
            room.guests_muted = d["guestsMuted"].as_bool().unwrap_or(room.guests_muted);
        }
        "hands" => room.hands = d["hands"].as_array().map_or(room.hands, Vec::len),
        "assistant" => {
            if let Some(state) = d["assistant"].as_str() {
                state.clone_into(&mut room.assistant);
                room.assistant_problem = d["assistantProblem"].as_str().map(str::to_owned);
                room.last_caption_at =
                    serde_json::from_value(d["lastCaptionAt"].clone()).unwrap_or(room.last_caption_at);
            }
        }
        _ => {}
    }
}

fn apply_to_detail(detail: &mut Detail, event: &AdminEvent) {
    let d = &event.data;
    let Some(list) = detail.participants.as_mut() else { return };
    match event.kind.as_str() {
        "participant_joined" => {
            let identity = d["identity"].as_str().unwrap_or_default().to_owned();
            list.retain(|p| p.identity != identity);
            list.push(Participant {
                identity,
                name: d["name"].as_str().unwrap_or_default().to_owned(),
                role: d["role"].as_str().map(str::to_owned),
                joined_at: Some(event.at),
                audio_muted: true,
            });
        }
        "participant_left" => {
            let identity = d["identity"].as_str().unwrap_or_default();
            list.retain(|p| p.identity != identity);
        }
        _ => {}
    }
}

/// "1h05m", "12m", "40s".
pub fn duration_text(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
