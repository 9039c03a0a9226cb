//! `/api/agent/*`: the AI assistant's API (see docs/agent-api.md), authenticated with agent tokens.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Path};
use crate::accounts::agent_tokens;
use crate::app::App;
use crate::artifacts::{self, ArtifactUpload, Caption};
use crate::events::AgentEvent;
use crate::store::AgentTokenRecord;

/// A request from an assistant holding a valid agent token.
#[derive(Debug)]
pub struct Agent(#[allow(dead_code)] pub AgentTokenRecord);

impl FromRequestParts<App> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = value.strip_prefix("Bearer ").unwrap_or_default().trim();
        Ok(Self(agent_tokens::authenticate(app, token).await?))
    }
}

fn event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

/// `GET /api/agent/rooms/stream`: the rooms to join, live.
pub async fn room_stream(State(app): State<App>, Agent(_): Agent) -> ApiResult<impl IntoResponse> {
    let mut events = app.hub().subscribe_agents();
    let snapshot = artifacts::active_rooms(&app).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(64);
    let task_app = app.clone();
    tokio::spawn(async move {
        if tx.send(event("rooms", &json!({ "rooms": snapshot }))).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                _ = task_app.shutting_down() => return,
                msg = events.recv() => msg,
            };
            let item = match next {
                Ok(AgentEvent::RoomActive(room)) => event("room_active", &artifacts::assistant_room(&task_app, &room)),
                Ok(AgentEvent::RoomEnded { room_id }) => event("room_ended", &json!({ "roomId": room_id })),
                // Fell behind: send the whole list again rather than guess what was missed.
                Err(RecvError::Lagged(_)) => match artifacts::active_rooms(&task_app).await {
                    Ok(rooms) => event("rooms", &json!({ "rooms": rooms })),
                    Err(_) => continue,
                },
                Err(RecvError::Closed) => return,
            };
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)).text("heartbeat")))
}

pub async fn token(
    State(app): State<App>,
    Agent(_): Agent,
    Path(room_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::assistant_token(&app, &room_id).await?))
}

pub async fn caption(
    State(app): State<App>,
    Agent(_): Agent,
    Path(room_id): Path<String>,
    Json(body): Json<Caption>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, axum::Json(artifacts::caption(&app, &room_id, body).await?)))
}

pub async fn context(
    State(app): State<App>,
    Agent(_): Agent,
    Path(room_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::context(&app, &room_id).await?))
}

pub async fn put_artifact(
    State(app): State<App>,
    Agent(_): Agent,
    Path(room_id): Path<String>,
    Json(body): Json<ArtifactUpload>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::save(&app, &room_id, body).await?))
}

pub async fn get_artifact(
    State(app): State<App>,
    Agent(_): Agent,
    Path(room_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let artifact = artifacts::get(&app, &room_id)
        .await?
        .ok_or_else(|| crate::Error::not_found("artifact_not_found", "no artifact for this lecture yet"))?;
    Ok(axum::Json(artifact))
}
