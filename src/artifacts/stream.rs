//! The assistants' lecture list, live: the lectures to join first, then each lecture that goes live or ends,
//! until the client goes away or the server stops. A task writes into a channel; the HTTP layer turns it into
//! events.

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{AssistantLecture, assistant_lecture, default_language, live_lectures};
use crate::app::App;
use crate::error::Result;
use crate::events::AgentEvent;

/// What the assistants' stream carries.
#[derive(Debug)]
pub enum LecturesItem {
    /// Every lecture to be in: sent first, and again whenever the stream fell behind.
    Snapshot(Vec<AssistantLecture>),
    Live(AssistantLecture),
    Ended {
        lecture_id: String,
    },
}

pub async fn lectures(app: &App) -> Result<ReceiverStream<LecturesItem>> {
    // Subscribe before reading the list, so a lecture that starts in between is not missed.
    let mut events = app.hub().subscribe_agents();
    let snapshot = live_lectures(app).await?;
    let (tx, rx) = mpsc::channel(64);
    let app = app.clone();
    tokio::spawn(async move {
        if tx.send(LecturesItem::Snapshot(snapshot)).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                _ = app.shutting_down() => return,
                msg = events.recv() => msg,
            };
            let item = match next {
                Ok(AgentEvent::LectureLive { room_id }) => {
                    let room = match app.store().room_by_id(&room_id).await {
                        Ok(room) => room,
                        Err(err) => {
                            tracing::warn!(error = %err, "cannot read a room that went live for an assistant stream");
                            continue;
                        }
                    };
                    let language = default_language(&app).await.unwrap_or_else(|err| {
                        // Captions in the configured language rather than none while the database is away.
                        tracing::warn!(error = %err, "cannot read the AI settings; using [agent] default_language");
                        app.config().agent.default_language.clone()
                    });
                    LecturesItem::Live(assistant_lecture(&room, &language))
                }
                Ok(AgentEvent::LectureEnded { lecture_id }) => LecturesItem::Ended { lecture_id },
                // Fell behind: send the whole list again rather than guess what was missed.
                Err(RecvError::Lagged(_)) => match live_lectures(&app).await {
                    Ok(lectures) => LecturesItem::Snapshot(lectures),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot reload the lecture list for a lagging assistant stream");
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
