//! Guest admission over HTTP: join, the waiting guest's event stream, a fresh token after reload; and the
//! host's lobby: list, approve, reject, approve all, and the host event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Client, Json, Path, Query};
use super::rooms::HostedRoom;
use crate::admission::stream::HostStreamItem;
use crate::admission::{self, JoinRequest};
use crate::app::App;

/// Header carrying a guest's session secret on guest routes.
pub const SESSION_HEADER: &str = "x-confctl-session";

/// Proxies close idle connections after a minute or so; a comment every 15 s keeps streams open.
const HEARTBEAT: Duration = Duration::from_secs(15);

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

fn sse<S>(stream: S, app: App) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    S: Stream<Item = Event> + Send + 'static,
{
    let until_shutdown = stream.take_until(async move { app.shutting_down().await }).map(Ok);
    Sse::new(until_shutdown).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().event(name).data("{}"))
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
    Ok(sse(updates.map(|status| json_event("status", &status)), app))
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
    Client(client): Client,
    hosted: HostedRoom,
    Path(p): Path<EntryPathWithRoom>,
) -> ApiResult<impl IntoResponse> {
    let actor = hosted.auth.user.actor(client.ip.clone());
    Ok(axum::Json(admission::approve(&app, &hosted.room, &p.entry_id, &actor).await?))
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
    Client(client): Client,
    hosted: HostedRoom,
    Path(p): Path<EntryPathWithRoom>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let actor = hosted.auth.user.actor(client.ip.clone());
    // The body is optional: an empty one means "no reason given".
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RejectBody>(&body)
            .map_err(|e| crate::Error::invalid("invalid_body", format!("invalid reject body: {e}")))?
            .reason
    };
    Ok(axum::Json(admission::reject(&app, &hosted.room, &p.entry_id, reason, &actor).await?))
}

pub async fn approve_all(
    State(app): State<App>,
    Client(client): Client,
    hosted: HostedRoom,
) -> ApiResult<impl IntoResponse> {
    let actor = hosted.auth.user.actor(client.ip.clone());
    let (approved, still_waiting) = admission::approve_all(&app, &hosted.room, &actor).await?;
    Ok(axum::Json(json!({ "approved": approved, "stillWaiting": still_waiting })))
}

/// `GET /api/rooms/{roomId}/events`: the host's live lobby.
pub async fn host_events(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    let items = admission::stream::host(&app, &hosted.room).await?;
    let events = items.map(|item| match item {
        HostStreamItem::Snapshot(entries) => json_event("lobby", &json!({ "entries": entries })),
        HostStreamItem::Event(event) => {
            let name = serde_json::to_value(event.as_ref())
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)))
                .unwrap_or_else(|| "update".into());
            json_event(&name, event.as_ref())
        }
    });
    Ok(sse(events, app))
}
