//! The assistants' room list, live: the rooms to join first, then each room that goes live or ends, until the
//! client goes away or the server stops. A task writes into a channel; the HTTP layer turns it into events.

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{AssistantRoom, active_rooms, assistant_room};
use crate::app::App;
use crate::error::Result;
use crate::events::AgentEvent;

/// What the assistants' stream carries.
#[derive(Debug)]
pub enum RoomsItem {
    /// Every room to be in: sent first, and again whenever the stream fell behind.
    Snapshot(Vec<AssistantRoom>),
    Active(AssistantRoom),
    Ended {
        room_id: String,
    },
}

pub async fn rooms(app: &App) -> Result<ReceiverStream<RoomsItem>> {
    // Subscribe before reading the list, so a room that starts in between is not missed.
    let mut events = app.hub().subscribe_agents();
    let snapshot = active_rooms(app).await?;
    let (tx, rx) = mpsc::channel(64);
    let app = app.clone();
    tokio::spawn(async move {
        if tx.send(RoomsItem::Snapshot(snapshot)).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                _ = app.shutting_down() => return,
                msg = events.recv() => msg,
            };
            let item = match next {
                Ok(AgentEvent::RoomActive(room)) => RoomsItem::Active(assistant_room(&app, &room)),
                Ok(AgentEvent::RoomEnded { room_id }) => RoomsItem::Ended { room_id },
                // Fell behind: send the whole list again rather than guess what was missed.
                Err(RecvError::Lagged(_)) => match active_rooms(&app).await {
                    Ok(rooms) => RoomsItem::Snapshot(rooms),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot reload the room list for a lagging assistant stream");
                        continue;
                    }
                },
                Err(RecvError::Closed) => return,
            };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
