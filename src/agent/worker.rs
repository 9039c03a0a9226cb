//! The worker loop: follows confctl's live list of lectures that want the assistant, starts a session for
//! each (of this worker's shard of rooms) and tells it when the lecture ended, reconnecting to confctl with
//! backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Agent;
use super::api::{ApiError, Lecture, LectureEvent};
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
    let (events_tx, mut events) = mpsc::channel::<LectureEvent>(64);
    let stream = {
        let agent = agent.clone();
        tokio::spawn(async move { follow_lectures(agent, events_tx).await })
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
                    LectureEvent::Lectures(list) => {
                        let wanted: HashMap<String, Lecture> = list
                            .into_iter()
                            .filter(|l| agent.takes(&l.room_id))
                            .map(|l| (l.lecture_id.clone(), l))
                            .collect();
                        // Lectures missing from a full list ended while the stream was down (or were handed over).
                        for (id, running) in &rooms {
                            if !wanted.contains_key(id) {
                                let _ = running.stop.send(Some(Stop::Ended));
                            }
                        }
                        for (id, room) in wanted {
                            rooms.entry(id).or_insert_with(|| start(&agent, room));
                        }
                    }
                    LectureEvent::Live(lecture) => {
                        if agent.takes(&lecture.room_id) {
                            rooms.entry(lecture.lecture_id.clone()).or_insert_with(|| start(&agent, lecture));
                        }
                    }
                    LectureEvent::Ended { lecture_id } => {
                        if let Some(running) = rooms.get(&lecture_id) {
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

fn start(agent: &Arc<Agent>, lecture: Lecture) -> Running {
    tracing::info!(lecture = %lecture.lecture_id, language = %lecture.language, "joining a lecture");
    let (stop, stop_rx) = watch::channel(None);
    let task = tokio::spawn(session::run(agent.clone(), lecture, stop_rx));
    Running { stop, task }
}

/// Keeps the lecture stream open, reconnecting with backoff; each reconnect starts with the full list again.
async fn follow_lectures(agent: Arc<Agent>, events: mpsc::Sender<LectureEvent>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        match agent.api.lecture_events(&events).await {
            Ok(()) => return,
            Err(ApiError::Unauthorized(message)) => {
                tracing::error!(%message, "confctl refused the agent token; check [agent] token (confctl admin agent-token create)");
                backoff = MAX_BACKOFF;
            }
            Err(err) => tracing::warn!(error = %err, retry_in = ?backoff, "the lecture stream from confctl broke"),
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
