//! The live streams of the lobby: a waiting guest's own status, and the host's view of the whole lobby.
//! Each stream is a task writing into a channel; the HTTP layer turns the channel into Server-Sent Events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{GuestStatus, current_status, lobby_entry};
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::{HostEvent, LobbyEntry, Numbered, outbox};
use crate::store::{Admission, ParticipantRecord, RoomRecord};

/// How often a waiting guest's stream re-reads its state from the database, so a decision taken on another
/// replica (or an event lost to lag) reaches the guest anyway.
const RECHECK: Duration = Duration::from_secs(30);

/// A guest's status updates: the current state first (with a token if already admitted), then the decision;
/// the stream ends once the guest is approved or rejected, or when a newer stream of the same guest takes
/// over. Hosts hear of a waiting guest once, however many streams it opens.
///
/// A decision on the hub only wakes the stream: the guest's row is read again before a token is minted, so
/// a ban or removal that raced the approval still wins.
pub async fn guest(
    app: &App,
    room: RoomRecord,
    participant: ParticipantRecord,
    client_ip: &str,
) -> Result<ReceiverStream<GuestStatus>> {
    let per_ip = usize::try_from(app.live().rate_limits.lobby_streams_per_ip).unwrap_or(usize::MAX);
    let Some(mut registration) = app.hub().open_guest_stream(&participant.id, client_ip, per_ip) else {
        return Err(Error::RateLimited { retry_after: Duration::from_secs(10) });
    };
    // Subscribe before reading the stored state, so a decision made in between is not missed.
    let mut decisions = app.hub().subscribe_guest(&room.id);
    let first = current_status(app, &room, &participant).await?;
    let (tx, rx) = mpsc::channel(4);
    let app = app.clone();
    tokio::spawn(async move {
        let waiting = first.status == Admission::Pending;
        if tx.send(first).await.is_err() || !waiting {
            if registration.close() && waiting {
                app.hub().to_hosts(&room.id, HostEvent::GuestLeft { entry_id: participant.id.clone() });
            }
            return;
        }
        if registration.announce {
            app.hub().to_hosts(&room.id, HostEvent::GuestWaiting { entry: lobby_entry(&participant) });
        }
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        let decided = loop {
            let reread = tokio::select! {
                _ = tx.closed() => break false,
                _ = app.shutting_down() => break false,
                // A newer stream of this guest took over: this one ends quietly.
                _ = registration.replaced.changed() => return,
                _ = recheck.tick() => true,
                msg = decisions.recv() => match msg {
                    Ok(batch) => batch.entries.contains_key(&participant.id),
                    Err(broadcast::error::RecvError::Lagged(_)) => true,
                    Err(broadcast::error::RecvError::Closed) => break false,
                },
            };
            if reread {
                match reread_status(&app, &room.id, &participant).await {
                    Ok(status) if status.status != Admission::Pending => {
                        let _ = tx.send(status).await;
                        break true;
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "cannot re-read a waiting guest's status"),
                }
            }
        };
        if registration.close() && !decided {
            app.hub().to_hosts(&room.id, HostEvent::GuestLeft { entry_id: participant.id.clone() });
        }
    });
    Ok(ReceiverStream::new(rx))
}

async fn reread_status(app: &App, room_id: &str, participant: &ParticipantRecord) -> Result<GuestStatus> {
    let room = app.store().room_by_id(room_id).await?;
    let participant = app.store().participant_by_id(&participant.lecture_id, &participant.id).await?;
    current_status(app, &room, &participant).await
}

/// What the host's stream carries.
#[derive(Debug, Clone)]
pub enum HostStreamItem {
    /// The whole lobby as of the event `last_id`: sent first (unless the stream resumed), and again
    /// whenever the stream fell behind.
    Snapshot {
        entries: Vec<LobbyEntry>,
        last_id: u64,
    },
    Event(Arc<Numbered>),
}

/// The host's lobby view until the client goes away or the server stops: a snapshot, then every change —
/// or, for a client that comes back with the id of the last event it had (`resume_after`), the events it
/// missed instead of the snapshot, when they are all still known (on PostgreSQL, on any replica).
pub async fn host(app: &App, room: &RoomRecord, resume_after: Option<u64>) -> Result<ReceiverStream<HostStreamItem>> {
    let (mut events, subscribed_at) = app.hub().subscribe_host(&room.id);
    let missed = match resume_after {
        Some(last) => outbox::missed(app, &room.id, last, subscribed_at).await,
        None => None,
    };
    // Live events at or below this were sent already (in the replay).
    let mut sent_through = 0;
    let first: Vec<HostStreamItem> = match missed {
        Some(missed) => {
            sent_through = missed.through;
            missed.events.into_iter().map(|e| HostStreamItem::Event(Arc::new(e))).collect()
        }
        None => vec![HostStreamItem::Snapshot { entries: super::lobby(app, room).await?, last_id: subscribed_at }],
    };
    let (tx, rx) = mpsc::channel(256);
    let app = app.clone();
    let room = room.clone();
    tokio::spawn(async move {
        for item in first {
            if tx.send(item).await.is_err() {
                return;
            }
        }
        loop {
            let item = tokio::select! {
                _ = tx.closed() => return,
                _ = app.shutting_down() => return,
                msg = events.recv() => match msg {
                    Ok(event) if event.id <= sent_through => continue,
                    Ok(event) => HostStreamItem::Event(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let last_id = app.hub().last_id();
                        match super::lobby(&app, &room).await {
                            Ok(entries) => HostStreamItem::Snapshot { entries, last_id },
                            Err(err) => {
                                tracing::warn!(error = %err, "cannot reload the lobby for a lagging host stream");
                                continue;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
