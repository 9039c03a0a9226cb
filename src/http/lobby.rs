//! Guest admission over HTTP: join, the waiting guest's event stream, a fresh token after reload; and the
//! host's lobby: list, approve, reject, approve all, and the host event stream.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Client, Json, OptionalJson, Path, Query};
use super::rooms::HostedRoom;
use super::sse::{self, json_event};
use crate::admission::stream::HostStreamItem;
use crate::admission::{self, JoinRequest};
use crate::app::App;

/// Header carrying a guest's session secret on guest routes.
pub const SESSION_HEADER: &str = "x-confctl-session";

fn session_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
}

pub async fn join(
    State(app): State<App>,
    Client(client): Client,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<JoinRequest>,
) -> ApiResult<impl IntoResponse> {
    let response = admission::join(&app, &room_id, body, &client, session_header(&headers)).await?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(response)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamQuery {
    session_id: String,
}

/// `GET /api/rooms/{roomId}/lobby/stream?sessionId=…`: the waiting guest's status, live.
pub async fn guest_stream(
    State(app): State<App>,
    Client(client): Client,
    Path(room_id): Path<String>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<impl IntoResponse> {
    let participant = admission::guest_session(&app, &room_id, &q.session_id).await?;
    let room = app.store().room_by_id(&room_id).await?;
    let ip = client.ip.unwrap_or_default();
    let updates = admission::stream::guest(&app, room, participant, &ip).await?;
    Ok(sse::respond(updates.map(|status| json_event("status", &status)), app))
}

/// `POST /api/rooms/{roomId}/guest-token`: a fresh token for an admitted guest (session in the header).
pub async fn guest_token(
    State(app): State<App>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let session = session_header(&headers).unwrap_or_default();
    Ok(axum::Json(admission::refresh_guest_token(&app, &room_id, session).await?))
}

pub async fn lobby(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "entries": admission::lobby(&app, &hosted.room).await? })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(default)]
    reason: Option<String>,
}

pub async fn approve(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<EntryPathWithRoom>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(admission::approve(&app, &hosted.room, &p.entry_id, &hosted.actor).await?))
}

/// Both path segments of `/rooms/{roomId}/lobby/{entryId}/…`.
#[derive(Debug, Deserialize)]
pub struct EntryPathWithRoom {
    #[serde(rename = "roomId")]
    _room_id: String,
    #[serde(rename = "entryId")]
    entry_id: String,
}

pub async fn reject(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<EntryPathWithRoom>,
    OptionalJson(body): OptionalJson<RejectBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(admission::reject(&app, &hosted.room, &p.entry_id, body.reason, &hosted.actor).await?))
}

pub async fn approve_all(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    let (approved, still_waiting) = admission::approve_all(&app, &hosted.room, &hosted.actor).await?;
    Ok(axum::Json(json!({ "approved": approved, "stillWaiting": still_waiting })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEventsQuery {
    /// For clients that cannot set headers (`EventSource` on a first connect).
    #[serde(default)]
    last_event_id: Option<u64>,
}

/// `GET /api/rooms/{roomId}/events`: the host's live lobby, each event with an `id:`. A client reconnecting
/// with `Last-Event-ID` (header, or `?lastEventId=`) gets the events it missed when they are all known (on
/// PostgreSQL, from any replica); otherwise, and on a first connect, a `lobby` snapshot comes first.
pub async fn host_events(
    State(app): State<App>,
    hosted: HostedRoom,
    Query(q): Query<HostEventsQuery>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let last_id = sse::last_event_id(&headers, q.last_event_id)?;
    let items = admission::stream::host(&app, &hosted.room, last_id).await?;
    let events = items.map(|item| match item {
        HostStreamItem::Snapshot { entries, last_id } => {
            json_event("lobby", &json!({ "entries": entries })).id(last_id.to_string())
        }
        HostStreamItem::Event(numbered) => {
            json_event(numbered.event.name(), &numbered.event).id(numbered.id.to_string())
        }
    });
    Ok(sse::respond(events, app))
}
