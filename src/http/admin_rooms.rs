//! `/api/admin/rooms*` and `/api/admin/events` for the terminal monitor and scripts: the rooms snapshot, one
//! room in detail, the instance's event stream with `Last-Event-ID` resume, and the room actions. Callers
//! are signed-in administrators or admin API tokens ([`AdminCaller`]); a `read` token may look but not act.
//! Thin over `admin`, `admission`, `moderation` and `rooms`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::error::{ApiError, ApiResult};
use super::extract::{ActingAdmin, AdminCaller, Path, Query};
use crate::admin::bans;
use crate::admin::feed::{AdminEvent, Resume};
use crate::admin::snapshot::{self, RoomState};
use crate::app::App;
use crate::audit::Actor;
use crate::error::Error;
use crate::moderation::BanRequest;
use crate::rooms::lifecycle;
use crate::store::RoomRecord;
use crate::{admission, moderation};

const HEARTBEAT: Duration = Duration::from_secs(15);

/// An admin caller allowed to act (an administrator's session or an `admin` token), and the room of the path.
#[derive(Debug)]
pub struct ActingOn {
    pub actor: Actor,
    pub room: RoomRecord,
}

impl FromRequestParts<App> for ActingOn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ActingAdmin(actor) = ActingAdmin::from_request_parts(parts, app).await?;
        let room_id = super::rooms::room_id_from_path(parts, app).await?;
        let room = snapshot::find_room(app, &room_id).await?;
        Ok(Self { actor, room })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    #[serde(default)]
    state: Option<String>,
}

/// `GET /api/admin/rooms?state=live|ready|active|recent|archived|all` (default `live`).
pub async fn rooms(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<StateQuery>,
) -> ApiResult<impl IntoResponse> {
    let state = q.state.as_deref().map(RoomState::parse).transpose()?.unwrap_or(RoomState::Live);
    Ok(axum::Json(snapshot::rooms(&app, state).await?))
}

/// `GET /api/admin/rooms/{roomId}`: participants, lobby, hands, bans and the room's recent events.
pub async fn room(
    State(app): State<App>,
    _caller: AdminCaller,
    Path(room_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(snapshot::room(&app, &room_id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventsQuery {
    /// For clients that cannot set headers (`EventSource` on a first connect).
    #[serde(default)]
    last_event_id: Option<u64>,
    /// Also an `instance` event with the header's figures every few seconds (the monitor's requests/s).
    #[serde(default)]
    instance: bool,
}

/// How often a client that asked for them gets the instance's figures.
const INSTANCE_EVERY: Duration = Duration::from_secs(5);

fn event_of(e: &AdminEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.as_str())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().event(e.kind.as_str()).data("{}"))
}

fn reset_event(reason: &str) -> Event {
    Event::default().event("reset").data(json!({ "reason": reason }).to_string())
}

/// `GET /api/admin/events`: every event of the instance as SSE, each with an `id:`. Reconnecting with
/// `Last-Event-ID` (header, or `?lastEventId=`) replays what was missed; when that is no longer possible the
/// first event is `reset` and the client reloads its snapshot. `?instance=true` adds the header's figures.
pub async fn events(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<EventsQuery>,
    headers: axum::http::HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let last_id = super::sse::last_event_id(&headers, q.last_event_id)?;
    let sub = app.hub().admin().subscribe(last_id);
    let first: Vec<Event> = match &sub.resume {
        Resume::Fresh => Vec::new(),
        Resume::Reset => vec![reset_event("too_far_behind")],
        Resume::Replay(events) => events.iter().map(|e| event_of(e)).collect(),
    };
    let open = sub.open;
    let live = BroadcastStream::new(sub.live).map(move |item| {
        let _still_open = &open;
        match item {
            Ok(e) => event_of(&e),
            Err(BroadcastStreamRecvError::Lagged(_)) => reset_event("lagged"),
        }
    });
    // The figures are not feed events (no id, not replayed): they are current or worthless.
    let figures = q.instance.then(|| {
        let app = app.clone();
        let first_tick = tokio::time::Instant::now() + INSTANCE_EVERY;
        futures::stream::unfold(tokio::time::interval_at(first_tick, INSTANCE_EVERY), move |mut every| {
            let app = app.clone();
            async move {
                every.tick().await;
                let event = Event::default().event("instance").json_data(snapshot::stats(&app)).ok()?;
                Some((event, every))
            }
        })
    });
    let live = futures::stream::select(live, futures::stream::iter(figures).flatten());
    let stop = app.clone();
    let stream = futures::stream::iter(first)
        .chain(live)
        .take_until(async move { stop.shutting_down().await })
        .map(Ok::<_, Infallible>);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

/// `POST /api/admin/rooms/{roomId}/end`.
pub async fn end(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    let closed = lifecycle::end(&app, &on.room, &on.actor).await?;
    Ok(axum::Json(json!({ "ended": true, "livekitClosed": closed })))
}

/// `POST /api/admin/rooms/{roomId}/lock`.
pub async fn lock(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    moderation::set_locked(&app, &on.room, true, &on.actor).await?;
    Ok(axum::Json(json!({ "locked": true })))
}

/// `POST /api/admin/rooms/{roomId}/unlock`.
pub async fn unlock(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    moderation::set_locked(&app, &on.room, false, &on.actor).await?;
    Ok(axum::Json(json!({ "locked": false })))
}

/// `POST /api/admin/rooms/{roomId}/mute-all`.
pub async fn mute_all(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::mute_all(&app, &on.room, &on.actor).await?))
}

/// `POST /api/admin/rooms/{roomId}/unmute-all`.
pub async fn unmute_all(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::unmute_all(&app, &on.room, &on.actor).await?))
}

/// `POST /api/admin/rooms/{roomId}/lobby/approve-all`.
pub async fn approve_all(State(app): State<App>, on: ActingOn) -> ApiResult<impl IntoResponse> {
    let (approved, still_waiting) = admission::approve_all(&app, &on.room, &on.actor).await?;
    Ok(axum::Json(json!({ "approved": approved, "stillWaiting": still_waiting })))
}

#[derive(Debug, Deserialize)]
pub struct EntryPath {
    #[serde(rename = "roomId")]
    _room_id: String,
    #[serde(rename = "entryId")]
    entry_id: String,
}

/// `POST /api/admin/rooms/{roomId}/lobby/{entryId}/approve`.
pub async fn approve(State(app): State<App>, on: ActingOn, Path(p): Path<EntryPath>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(admission::approve(&app, &on.room, &p.entry_id, &on.actor).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::invalid("invalid_body", e.to_string()))
}

/// `POST /api/admin/rooms/{roomId}/lobby/{entryId}/reject` `{reason?}`.
pub async fn reject(
    State(app): State<App>,
    on: ActingOn,
    Path(p): Path<EntryPath>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let ReasonBody { reason } = optional_body(&body)?;
    Ok(axum::Json(admission::reject(&app, &on.room, &p.entry_id, reason, &on.actor).await?))
}

#[derive(Debug, Deserialize)]
pub struct IdentityPath {
    #[serde(rename = "roomId")]
    _room_id: String,
    identity: String,
}

/// `POST /api/admin/rooms/{roomId}/participants/{identity}/kick`.
pub async fn kick(State(app): State<App>, on: ActingOn, Path(p): Path<IdentityPath>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::kick(&app, &on.room, &p.identity, &on.actor).await?))
}

/// `POST /api/admin/rooms/{roomId}/participants/{identity}/ban` `{reason?, scope?}`.
pub async fn ban(
    State(app): State<App>,
    on: ActingOn,
    Path(p): Path<IdentityPath>,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let request: BanRequest = optional_body(&body)?;
    Ok((StatusCode::CREATED, axum::Json(moderation::ban(&app, &on.room, &p.identity, request, &on.actor).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BansQuery {
    #[serde(default)]
    room: Option<String>,
}

/// `GET /api/admin/bans?room=` → `{bans}`: every ban, or those that apply to one room.
pub async fn bans(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<BansQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "bans": bans::list(&app, q.room.as_deref()).await? })))
}

/// `DELETE /api/admin/bans/{banId}` → `{lifted}`.
pub async fn lift_ban(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Path(ban_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let ban = bans::lift(&app, &actor, &ban_id).await?;
    Ok(axum::Json(json!({ "lifted": ban })))
}
