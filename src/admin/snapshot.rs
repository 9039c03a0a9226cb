//! What the monitor loads on (re)connect: every room in use or with a recently ended lecture, with its live
//! counts, one room in detail, and the instance header. The event feed keeps it current from there.

use serde::Serialize;
use std::collections::HashMap;

use super::feed::AdminEvent;
use crate::admission;
use crate::app::App;
use crate::artifacts::{self, health::AssistantStatus};
use crate::error::{Error, Result};
use crate::events::LobbyEntry;
use crate::livekit;
use crate::moderation;
use crate::rooms::overview::{self, Present};
use crate::store::{BanRecord, RoomRecord, RoomStatus};

/// Which rooms a snapshot lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomState {
    /// Not archived and not `recent`: a lecture under way, or a room ready for its next one.
    Live,
    /// No lecture under way (archived rooms excluded).
    Ready,
    /// A lecture under way.
    Active,
    /// Ready again after a lecture that ended within the last 24 hours.
    Recent,
    Archived,
    All,
}

impl RoomState {
    pub fn parse(text: &str) -> Result<Self> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "live" => Self::Live,
            "ready" => Self::Ready,
            "active" => Self::Active,
            "recent" => Self::Recent,
            "archived" => Self::Archived,
            "all" => Self::All,
            _ => {
                return Err(Error::invalid(
                    "invalid_state",
                    "state must be live, ready, active, recent, archived or all",
                ));
            }
        })
    }

    fn includes(self, room: &RoomRecord, now: i64) -> bool {
        let recent = room.status == RoomStatus::Ready && room.last_ended_at.is_some_and(|at| now - at < 86_400_000);
        match self {
            Self::Live => room.status != RoomStatus::Archived && !recent,
            Self::Ready => room.status == RoomStatus::Ready,
            Self::Active => room.status == RoomStatus::Live,
            Self::Recent => recent,
            Self::Archived => room.status == RoomStatus::Archived,
            Self::All => true,
        }
    }
}

/// The instance header.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub version: &'static str,
    pub database: &'static str,
    /// Whether the media server answered while this snapshot was taken.
    pub livekit_reachable: bool,
    #[serde(flatten)]
    pub stats: Stats,
    /// When the certificate confctl serves expires; `None` without TLS served by confctl.
    pub certificate_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub generated_at: chrono::DateTime<chrono::Utc>,
}

/// The header's figures that move from moment to moment, read from counters this process keeps (no query):
/// part of every snapshot, and sent on the event stream every few seconds to a client that asks for them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests this server answered per second, over the last ten seconds.
    pub requests_per_second: f64,
    /// Admin event streams open right now (the monitor's own included).
    pub event_streams: usize,
    /// Assistant workers connected (`confctl agent` or `serve --with-agent`).
    pub assistant_workers: usize,
}

pub fn stats(app: &App) -> Stats {
    Stats {
        // One decimal is all a header shows; the JSON stays short.
        requests_per_second: (app.traffic().per_second() * 10.0).round() / 10.0,
        event_streams: app.hub().admin().open_streams(),
        assistant_workers: app.hub().agent_streams(),
    }
}

/// One room as the monitor lists it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRow {
    pub id: String,
    pub name: String,
    pub host_id: String,
    /// The host's display name (their email when the account is gone).
    pub host: String,
    pub status: RoomStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// People in the media room; `None` when the media server could not be asked.
    pub participants: Option<u32>,
    /// Participants publishing at least one track; `None` as above.
    pub publishers: Option<u32>,
    /// Guests waiting, longest first.
    pub lobby: Vec<LobbyEntry>,
    pub hands: usize,
    pub locked: bool,
    pub guests_muted: bool,
    pub lobby_enabled: bool,
    /// `assistant` (off, on, joining, captioning, failing), `assistantProblem` and `lastCaptionAt`.
    #[serde(flatten)]
    pub assistant: AssistantStatus,
}

/// Every room of one state, with the instance header and the id of the newest event it includes: a client
/// opens the event stream with that id as `Last-Event-ID` and misses nothing.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub instance: Instance,
    pub rooms: Vec<RoomRow>,
    pub last_event_id: u64,
}

/// One room in detail.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomDetail {
    pub room: RoomRow,
    /// Who is in the media room; `None` when the media server could not be asked.
    pub participants: Option<Vec<Present>>,
    pub hands: Vec<moderation::Hand>,
    pub bans: Vec<BanRecord>,
    /// The room's newest events, oldest first.
    pub recent_events: Vec<AdminEvent>,
    pub last_event_id: u64,
}

fn instance(app: &App, livekit_reachable: bool) -> Instance {
    Instance {
        version: env!("CARGO_PKG_VERSION"),
        database: app.store().dialect().name(),
        livekit_reachable,
        stats: stats(app),
        certificate_expires_at: if app.config().tls.enabled() {
            crate::tls::CertificateStatus::saved(&app.config().data_dir).and_then(|c| c.not_after)
        } else {
            None
        },
        generated_at: chrono::Utc::now(),
    }
}

/// Live counts from the media server: participants and publishers by LiveKit room name.
async fn live_counts(app: &App) -> Option<HashMap<String, (u32, u32)>> {
    match app.livekit().list_rooms().await {
        Ok(list) => Some(list.into_iter().map(|r| (r.name, (r.num_participants, r.num_publishers))).collect()),
        Err(err) => {
            tracing::debug!(error = %err, "media server unreachable for the admin snapshot");
            None
        }
    }
}

async fn row(
    app: &App,
    room: &RoomRecord,
    live: Option<&HashMap<String, (u32, u32)>>,
    hosts: &mut HashMap<String, String>,
) -> Result<RoomRow> {
    let archived = room.status == RoomStatus::Archived;
    let host = match hosts.get(&room.host_id) {
        Some(name) => name.clone(),
        None => {
            let name = match app.store().user_by_id(&room.host_id).await {
                Ok(user) => user.display_name,
                Err(Error::NotFound { .. }) => String::new(),
                Err(err) => return Err(err),
            };
            hosts.insert(room.host_id.clone(), name.clone());
            name
        }
    };
    let counts = if archived {
        Some((0, 0))
    } else {
        live.map(|m| m.get(&livekit::room_name(&room.lecture_id)).copied().unwrap_or((0, 0)))
    };
    let mut lobby = if archived { Vec::new() } else { admission::lobby(app, room).await? };
    lobby.sort_by_key(|e| e.waiting_since);
    let hands = if archived { 0 } else { app.store().raised_hands(&room.lecture_id).await?.len() };
    Ok(RoomRow {
        id: room.id.clone(),
        name: room.name.clone(),
        host_id: room.host_id.clone(),
        host,
        status: room.status,
        created_at: crate::time::to_datetime(room.created_at),
        started_at: room.started_at.map(crate::time::to_datetime),
        ended_at: room.last_ended_at.map(crate::time::to_datetime),
        participants: counts.map(|c| c.0),
        publishers: counts.map(|c| c.1),
        lobby,
        hands,
        locked: room.locked,
        guests_muted: room.guests_muted,
        lobby_enabled: room.lobby_enabled,
        assistant: artifacts::assistant_status(app, room),
    })
}

/// Every room in `state`, newest first.
pub async fn rooms(app: &App, state: RoomState) -> Result<Snapshot> {
    let last_event_id = app.hub().admin().last_id();
    let now = app.clock().now_ms();
    let records: Vec<RoomRecord> =
        app.store().list_rooms(None).await?.into_iter().filter(|r| state.includes(r, now)).collect();
    let live = if records.iter().any(|r| r.status != RoomStatus::Archived) { live_counts(app).await } else { None };
    let reachable = live.is_some();
    let mut hosts = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        rows.push(row(app, record, live.as_ref(), &mut hosts).await?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    Ok(Snapshot { instance: instance(app, reachable || records.is_empty()), rooms: rows, last_event_id })
}

/// One room in detail (404 `room_not_found` for an unknown id).
pub async fn room(app: &App, room_id: &str) -> Result<RoomDetail> {
    let last_event_id = app.hub().admin().last_id();
    let record = find_room(app, room_id).await?;
    let live = if record.status == RoomStatus::Archived { None } else { live_counts(app).await };
    let row = row(app, &record, live.as_ref(), &mut HashMap::new()).await?;
    let participants = match overview::present(app, &record).await {
        Ok(list) => Some(list),
        Err(err) => {
            tracing::debug!(error = %err, "media server unreachable for the room detail");
            None
        }
    };
    let hands =
        if record.status == RoomStatus::Archived { Vec::new() } else { moderation::hands(app, &record).await? };
    Ok(RoomDetail {
        room: row,
        participants,
        hands,
        bans: moderation::bans(app, &record).await?,
        recent_events: app.hub().admin().recent(&record.id, 50).iter().map(|e| AdminEvent::clone(e)).collect(),
        last_event_id,
    })
}

/// A room by id, or 404 with a message that names the id.
pub async fn find_room(app: &App, room_id: &str) -> Result<RoomRecord> {
    match app.store().room_by_id(room_id).await {
        Err(Error::NotFound { .. }) => Err(Error::not_found("room_not_found", format!("no room with id {room_id}"))),
        other => other,
    }
}
