//! The live streams of the lobby: a waiting guest's own status, and the host's view of the whole lobby. The
//! HTTP layer turns them into Server-Sent Events.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{GuestStatus, current_status, lobby_entry, status_given};
use crate::app::App;
use crate::error::{Error, Result};
use crate::events::{Decisions, GuestStreamGuard, HostEvent, LobbyEntry, Numbered, outbox};
use crate::store::{Admission, ParticipantRecord, RoomRecord};

/// How often a waiting guest's stream re-reads its state from the database, so a decision taken on another
/// replica (or an event lost to lag) reaches the guest anyway.
const RECHECK: Duration = Duration::from_secs(30);

/// A guest's status updates: the current state first (with a token if already admitted), then the decision;
/// the stream ends once the guest is approved or rejected, or when a newer stream of the same guest takes
/// over. Hosts hear of a waiting guest once, however many streams it opens, and hear it left when its
/// stream goes away undecided.
///
/// A decision on the hub only wakes the stream: the guest's row is read again before a token is minted, so
/// a ban or removal that raced the approval still wins.
///
/// Thousands of guests wait at once at the start of a lecture, so a waiting guest costs a stream's state
/// and nothing more (no task, no channel): the stream runs when the server polls it for its next event.
pub async fn guest(
    app: &App,
    room: RoomRecord,
    participant: ParticipantRecord,
    client_ip: &str,
) -> Result<impl Stream<Item = GuestStatus> + Send + use<>> {
    let per_ip = usize::try_from(app.live().rate_limits.lobby_streams_per_ip).unwrap_or(usize::MAX);
    let Some(registration) = app.hub().open_guest_stream(&participant.id, client_ip, per_ip) else {
        return Err(Error::RateLimited { retry_after: Duration::from_secs(10) });
    };
    // Subscribe before reading the stored state, so a decision made in between is not missed.
    let decisions = app.hub().subscribe_guest(&room.id);
    let first = current_status(app, &room, &participant).await?;
    let waiting = first.status == Admission::Pending;
    let announce = (waiting && registration.announce).then(|| Box::new(lobby_entry(&participant)));
    let wait = GuestWait {
        waiting,
        first: Some(first),
        announce,
        app: app.clone(),
        room_id: room.id,
        guest: Guest { id: participant.id, lecture_id: participant.lecture_id },
        registration: Some(registration),
        decisions,
        recheck: None,
        decided: false,
    };
    Ok(futures::stream::unfold(wait, |mut wait| async move { wait.next().await.map(|status| (status, wait)) }))
}

/// Which guest a stream is for: all a waiting stream keeps of the guest's row (ten thousand of them wait at
/// the start of a large lecture).
struct Guest {
    id: String,
    lecture_id: String,
}

/// One waiting guest's stream (see [`guest`]).
struct GuestWait {
    app: App,
    room_id: String,
    guest: Guest,
    /// The stored state, to send first.
    first: Option<GuestStatus>,
    /// What hosts are told with the first event: that this guest waits (once per guest, not per stream).
    announce: Option<Box<LobbyEntry>>,
    /// Whether the guest was waiting when the stream opened.
    waiting: bool,
    /// `None` once the stream is over (decided, replaced or never waiting).
    registration: Option<GuestStreamGuard>,
    decisions: broadcast::Receiver<Arc<Decisions>>,
    recheck: Option<tokio::time::Interval>,
    decided: bool,
}

impl GuestWait {
    /// The status to send when the stored state says the guest is no longer waiting; the stream is over then.
    fn settle(&mut self, status: Result<GuestStatus>) -> Option<GuestStatus> {
        match status {
            Ok(status) if status.status != Admission::Pending => {
                self.decided = true;
                self.registration.take().map(GuestStreamGuard::close);
                Some(status)
            }
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(error = %err, "cannot re-read a waiting guest's status");
                None
            }
        }
    }

    async fn next(&mut self) -> Option<GuestStatus> {
        if let Some(first) = self.first.take() {
            if !self.waiting {
                // Already decided: this is all there is to say.
                self.registration.take().map(GuestStreamGuard::close);
            } else if let Some(entry) = self.announce.take() {
                self.app.hub().to_hosts(&self.room_id, HostEvent::GuestWaiting { entry: *entry });
            }
            return Some(first);
        }
        loop {
            let registration = self.registration.as_mut()?;
            let recheck = self
                .recheck
                .get_or_insert_with(|| tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK));
            let woken = tokio::select! {
                _ = self.app.shutting_down() => Woken::End,
                _ = registration.replaced.changed() => Woken::Replaced,
                _ = recheck.tick() => Woken::Reread,
                msg = self.decisions.recv() => match msg {
                    Ok(batch) if batch.entries.contains_key(&self.guest.id) => Woken::Decided(batch),
                    Ok(_) => Woken::Other,
                    Err(broadcast::error::RecvError::Lagged(_)) => Woken::Reread,
                    Err(broadcast::error::RecvError::Closed) => Woken::End,
                },
            };
            match woken {
                Woken::End => return None,
                // A newer stream of this guest took over: this one ends quietly.
                Woken::Replaced => {
                    self.registration = None;
                    return None;
                }
                Woken::Other => {}
                // The two reads are boxed: a stream spends its life in the `select!` above, and its state
                // would otherwise be sized for these rarer futures (1,920 bytes a waiting guest, not 776).
                Woken::Decided(batch) => {
                    let status = Box::pin(decided_status(&self.app, &self.room_id, &self.guest, &batch)).await;
                    if let Some(status) = self.settle(status) {
                        return Some(status);
                    }
                }
                Woken::Reread => {
                    let status = Box::pin(reread_status(&self.app, &self.room_id, &self.guest)).await;
                    if let Some(status) = self.settle(status) {
                        return Some(status);
                    }
                }
            }
        }
    }
}

/// What woke a waiting guest's stream.
enum Woken {
    /// Decisions that include this guest: their stored state is read for the whole batch at once.
    Decided(Arc<Decisions>),
    /// Time to look at this guest's stored state (the periodic re-read, a missed event).
    Reread,
    /// A decision about others.
    Other,
    Replaced,
    End,
}

impl Drop for GuestWait {
    /// The stream went away (the guest's page closed, or the server stops) while the guest still waited:
    /// hosts hear the guest left, unless a newer stream of the same guest took over.
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            if registration.close() && self.waiting && !self.decided {
                let entry_id = self.guest.id.clone();
                self.app.hub().to_hosts(&self.room_id, HostEvent::GuestLeft { entry_id });
            }
        }
    }
}

/// The stored state after a batch of decisions, for the guests it decided: the room, and each guest with
/// whether a ban covers it.
#[derive(Debug)]
pub struct Decided {
    room: RoomRecord,
    participants: HashMap<String, (ParticipantRecord, bool)>,
}

/// This guest's status after `batch` decided it: from the state read once for the whole batch (by whichever
/// of its streams got there first), or read alone when that read failed or did not find the guest.
async fn decided_status(app: &App, room_id: &str, guest: &Guest, batch: &Decisions) -> Result<GuestStatus> {
    let decided = batch.stored.get_or_init(|| read_decided(app, room_id, batch)).await;
    let stored = decided
        .as_ref()
        .and_then(|d| d.participants.get(&guest.id).filter(|(p, _)| p.lecture_id == guest.lecture_id).map(|p| (d, p)));
    match stored {
        Some((decided, (p, banned))) => status_given(app, &decided.room, p, *banned),
        None => reread_status(app, room_id, guest).await,
    }
}

/// Reads the stored state of everyone `batch` decided; `None` (each stream then reads its own) when the
/// database did not answer.
async fn read_decided(app: &App, room_id: &str, batch: &Decisions) -> Option<Arc<Decided>> {
    let read = async {
        let room = app.store().room_by_id(room_id).await?;
        let ids: Vec<&str> = batch.entries.keys().map(String::as_str).collect();
        let participants = app.store().participants_by_ids(&ids).await?;
        let participants = participants.into_iter().map(|(p, banned)| (p.id.clone(), (p, banned))).collect();
        Ok::<_, Error>(Decided { room, participants })
    };
    match read.await {
        Ok(decided) => Some(Arc::new(decided)),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the decided guests together; each reads its own");
            None
        }
    }
}

async fn reread_status(app: &App, room_id: &str, guest: &Guest) -> Result<GuestStatus> {
    let room = app.store().room_by_id(room_id).await?;
    let participant = app.store().participant_by_id(&guest.lecture_id, &guest.id).await?;
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
