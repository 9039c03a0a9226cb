//! The host's side of the lobby: who is waiting, and the decisions — approve one, approve all, reject —
//! each written first, then broadcast to the waiting guests' streams and audited.

use std::collections::HashMap;

use super::lobby_entry;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::events;
use crate::events::{Decision, Decisions, LobbyEntry};
use crate::rooms;
use crate::store::{Admission, RoomRecord, RoomStatus};

/// Guests waiting in the lobby of a room's current lecture, longest-waiting first.
pub async fn lobby(app: &App, room: &RoomRecord) -> Result<Vec<LobbyEntry>> {
    Ok(app.store().pending_lobby(&room.lecture_id).await?.iter().map(lobby_entry).collect())
}

/// Lets one waiting guest in (409 if already decided; refused when the room is full).
pub async fn approve(app: &App, room: &RoomRecord, entry_id: &str, actor: &Actor) -> Result<LobbyEntry> {
    if room.status == RoomStatus::Archived {
        return Err(rooms::archived());
    }
    if let Some(max) = room.max_participants {
        if app.store().count_admitted(&room.lecture_id).await? >= max {
            return Err(Error::conflict("room_full", "the room is at its participant limit"));
        }
    }
    let approved = events::atomically(app, async {
        let entry =
            app.store().decide_entry(&room.lecture_id, entry_id, Admission::Approved, None, &actor.label).await?;
        publish(app, room, [(entry.id.clone(), Decision { status: Admission::Approved, reason: None })]);
        audit::record(
            app,
            actor,
            "lobby.approve",
            Some(("participant", &entry.id)),
            Some(&room.id),
            serde_json::json!({ "displayName": entry.display_name }),
        )
        .await;
        Ok(entry)
    })
    .await;
    match approved {
        Ok(entry) => Ok(lobby_entry(&entry)),
        Err(err @ Error::Conflict { code: "guest_banned", .. }) => {
            // A ban that raced this guest's join: turn the entry away instead of leaving it waiting.
            let turned_away = events::atomically(app, async {
                let e = app
                    .store()
                    .decide_entry(&room.lecture_id, entry_id, Admission::Rejected, Some("banned"), "ban")
                    .await?;
                publish(app, room, [(e.id, Decision { status: Admission::Rejected, reason: Some("banned".into()) })]);
                Ok(())
            })
            .await;
            if let Err(other) = turned_away {
                tracing::debug!(error = %other, "could not turn away a banned guest's waiting entry");
            }
            Err(err)
        }
        Err(other) => Err(other),
    }
}

/// Turns one waiting guest away.
pub async fn reject(
    app: &App,
    room: &RoomRecord,
    entry_id: &str,
    reason: Option<String>,
    actor: &Actor,
) -> Result<LobbyEntry> {
    let reason = reason.map(|r| r.trim().chars().take(300).collect::<String>()).filter(|r| !r.is_empty());
    let entry = events::atomically(app, async {
        let entry = app
            .store()
            .decide_entry(&room.lecture_id, entry_id, Admission::Rejected, reason.as_deref(), &actor.label)
            .await?;
        publish(app, room, [(entry.id.clone(), Decision { status: Admission::Rejected, reason: reason.clone() })]);
        audit::record(
            app,
            actor,
            "lobby.reject",
            Some(("participant", &entry.id)),
            Some(&room.id),
            serde_json::json!({ "displayName": entry.display_name, "reason": reason }),
        )
        .await;
        Ok(entry)
    })
    .await?;
    Ok(lobby_entry(&entry))
}

/// Lets everyone waiting in, in arrival order, up to the room's participant limit: one transaction, one
/// broadcast. Returns how many were admitted and how many still wait.
pub async fn approve_all(app: &App, room: &RoomRecord, actor: &Actor) -> Result<(usize, usize)> {
    if room.status == RoomStatus::Archived {
        return Err(rooms::archived());
    }
    let limit = match room.max_participants {
        Some(max) => Some((max - app.store().count_admitted(&room.lecture_id).await?).max(0)),
        None => None,
    };
    let count = events::atomically(app, async {
        let approved = app.store().approve_all(&room.lecture_id, limit, &actor.label).await?;
        let ids: Vec<&str> = approved.iter().map(|p| p.id.as_str()).collect();
        audit::record(
            app,
            actor,
            "lobby.approve_all",
            Some(("room", &room.id)),
            Some(&room.id),
            serde_json::json!({ "count": ids.len(), "entries": ids }),
        )
        .await;
        let count = approved.len();
        publish(
            app,
            room,
            approved.into_iter().map(|p| (p.id, Decision { status: Admission::Approved, reason: None })),
        );
        Ok(count)
    })
    .await?;
    // Read once the approvals are committed (a change's own reads do not see its writes).
    let remaining = if limit.is_some() { app.store().pending_lobby(&room.lecture_id).await?.len() } else { 0 };
    Ok((count, remaining))
}

fn publish(app: &App, room: &RoomRecord, entries: impl IntoIterator<Item = (String, Decision)>) {
    let entries: HashMap<String, Decision> = entries.into_iter().collect();
    app.hub().decided(&room.id, Decisions::new(entries));
}
