//! The worker loop: follows confctl's live list of rooms that want the assistant, starts a session for each
//! (of this worker's shard) and tells it when the lecture ended, reconnecting to confctl with backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Agent;
use super::api::{ApiError, Room, RoomEvent};
use super::session::{self, Stop};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long sessions get to finish captions when the worker stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

struct Running {
    stop: watch::Sender<Option<Stop>>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs until `shutdown` resolves.
pub async fn run(agent: Arc<Agent>, shutdown: impl std::future::Future<Output = ()>) {
    let (events_tx, mut events) = mpsc::channel::<RoomEvent>(64);
    let stream = {
        let agent = agent.clone();
        tokio::spawn(async move { follow_rooms(agent, events_tx).await })
    };
    let mut rooms: HashMap<String, Running> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = events.recv() => {
                let Some(event) = event else { break };
                rooms.retain(|_, r| !r.task.is_finished());
                match event {
                    RoomEvent::Rooms(list) => {
                        let wanted: HashMap<String, Room> =
                            list.into_iter().filter(|r| agent.takes(&r.room_id)).map(|r| (r.room_id.clone(), r)).collect();
                        // Rooms missing from a full list ended while the stream was down (or were handed over).
                        for (id, running) in &rooms {
                            if !wanted.contains_key(id) {
                                let _ = running.stop.send(Some(Stop::Ended));
                            }
                        }
                        for (id, room) in wanted {
                            rooms.entry(id).or_insert_with(|| start(&agent, room));
                        }
                    }
                    RoomEvent::Active(room) => {
                        if agent.takes(&room.room_id) {
                            rooms.entry(room.room_id.clone()).or_insert_with(|| start(&agent, room));
                        }
                    }
                    RoomEvent::Ended { room_id } => {
                        if let Some(running) = rooms.get(&room_id) {
                            let _ = running.stop.send(Some(Stop::Ended));
                        }
                    }
                }
            }
        }
    }
    stream.abort();
    tracing::info!(rooms = rooms.len(), "the assistant is stopping: finishing captions");
    for running in rooms.values() {
        let _ = running.stop.send(Some(Stop::Leave));
    }
    let all = futures::future::join_all(rooms.into_values().map(|r| r.task));
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("some rooms did not finish within {SHUTDOWN_GRACE:?}");
    }
}

fn start(agent: &Arc<Agent>, room: Room) -> Running {
    tracing::info!(room = %room.room_id, language = %room.language, "joining a lecture");
    let (stop, stop_rx) = watch::channel(None);
    let task = tokio::spawn(session::run(agent.clone(), room, stop_rx));
    Running { stop, task }
}

/// Keeps the room stream open, reconnecting with backoff; each reconnect starts with the full list again.
async fn follow_rooms(agent: Arc<Agent>, events: mpsc::Sender<RoomEvent>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        match agent.api.room_events(&events).await {
            Ok(()) => return,
            Err(ApiError::Unauthorized(message)) => {
                tracing::error!(%message, "confctl refused the agent token; check [agent] token (confctl admin agent-token create)");
                backoff = MAX_BACKOFF;
            }
            Err(err) => tracing::warn!(error = %err, retry_in = ?backoff, "the room stream from confctl broke"),
        }
        if events.is_closed() {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
