//! What hosts see at a glance: their rooms with live counts (people in the media room, guests waiting),
//! and who is in a room's media session right now, as LiveKit reports it.

use std::collections::HashMap;

use serde::Serialize;

use crate::accounts::AuthUser;
use crate::app::App;
use crate::error::Result;
use crate::rooms::{self, RoomView};
use crate::store::{RoomRecord, RoomStatus};
use crate::{admission, livekit};

/// A room with its live counts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    #[serde(flatten)]
    room: RoomView,
    /// People in the media room; `None` when the media server could not be asked.
    participants: Option<u32>,
    /// Guests waiting in the lobby.
    waiting: usize,
}

/// The rooms with their counts, and whether the media server answered.
pub async fn summaries(app: &App, auth: &AuthUser, all: bool) -> Result<(Vec<RoomSummary>, bool)> {
    let records = rooms::list(app, auth, all).await?;
    let open = records.iter().any(|r| r.status == RoomStatus::Live);
    // One call for every room; a dashboard must still load when the media server is down.
    let live: Option<HashMap<String, u32>> = if open {
        match app.livekit().list_rooms().await {
            Ok(list) => Some(list.into_iter().map(|r| (r.name, r.num_participants)).collect()),
            Err(_) => None,
        }
    } else {
        Some(HashMap::new())
    };
    let mut out = Vec::with_capacity(records.len());
    for record in &records {
        let archived = record.status == RoomStatus::Archived;
        let waiting = if archived { 0 } else { admission::lobby(app, record).await?.len() };
        let participants = if record.status != RoomStatus::Live {
            Some(0)
        } else {
            live.as_ref().map(|m| m.get(&livekit::room_name(&record.lecture_id)).copied().unwrap_or(0))
        };
        out.push(RoomSummary { room: RoomView::from(record), participants, waiting });
    }
    Ok((out, live.is_some()))
}

/// Someone connected to a room's media session, as the media server reports them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Present {
    identity: String,
    name: String,
    /// `host`, `guest` or `assistant`; `None` for participants confctl did not let in.
    role: Option<&'static str>,
    joined_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Publishes a microphone that is not muted.
    speaking_allowed: bool,
    audio_muted: bool,
}

/// Who is in a room's media session right now. The host's page shows this list even when its own media
/// connection is down, so moderation never depends on the host's browser reaching the media server.
pub async fn present(app: &App, room: &RoomRecord) -> Result<Vec<Present>> {
    if room.status == RoomStatus::Archived {
        return Ok(Vec::new());
    }
    let name = livekit::room_name(&room.lecture_id);
    // A room the media server has not opened yet has nobody in it (the livekit module answers empty).
    let mut people: Vec<Present> = app
        .livekit()
        .list_participants(&name)
        .await?
        .into_iter()
        .map(|info| {
            let mics: Vec<_> =
                info.tracks.iter().filter(|t| t.source == livekit_protocol::TrackSource::Microphone as i32).collect();
            Present {
                role: livekit::role_of(&info),
                joined_at: (info.joined_at > 0).then(|| crate::time::to_datetime(info.joined_at * 1000)),
                speaking_allowed: info.permission.as_ref().is_some_and(|p| p.can_publish),
                audio_muted: mics.is_empty() || mics.iter().all(|t| t.muted),
                identity: info.identity,
                name: info.name,
            }
        })
        .collect();
    people.sort_by(|a, b| {
        (a.role != Some("host"), a.name.to_lowercase()).cmp(&(b.role != Some("host"), b.name.to_lowercase()))
    });
    Ok(people)
}
