//! `/api/rooms/*` for hosts and admins: create, list, read, change, delete, invite codes, end the lecture,
//! archive, host token; plus the public invite-code lookup.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Client, Json, Path, Query, SignedIn};
use crate::accounts::AuthUser;
use crate::admission;
use crate::app::App;
use crate::audit::Actor;
use crate::rooms::{self, NewRoom, RoomPatch, RoomView, lifecycle};
use crate::store::RoomRecord;

/// A room the signed-in user hosts (or any room, for an admin), from the `{roomId}` path segment. Other
/// hosts' rooms are "not found".
#[derive(Debug)]
pub struct HostedRoom {
    pub room: RoomRecord,
    pub auth: AuthUser,
    /// The signed-in user as the actor of what the handler does (for the audit log).
    pub actor: Actor,
}

impl FromRequestParts<App> for HostedRoom {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = SignedIn::from_request_parts(parts, app).await?;
        let room_id = room_id_from_path(parts, app).await?;
        let room = rooms::get_for_host(app, &auth, &room_id).await?;
        let Client(client) = Client::from_request_parts(parts, app).await?;
        let actor = auth.user.actor(client.ip);
        Ok(Self { room, auth, actor })
    }
}

/// Someone inside a room — its host or an admin (by session cookie) or an admitted guest (by the
/// `X-Confctl-Session` header) — with the room. Everyone else is refused before the handler runs.
#[derive(Debug)]
pub struct RoomMember {
    pub room: RoomRecord,
    pub member: admission::Member,
}

impl FromRequestParts<App> for RoomMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let room_id = room_id_from_path(parts, app).await?;
        let room = app.store().room_by_id(&room_id).await?;
        let auth = match SignedIn::from_request_parts(parts, app).await {
            Ok(SignedIn(auth)) => Some(auth),
            Err(_) => None,
        };
        let session = parts.headers.get(super::SESSION_HEADER).and_then(|v| v.to_str().ok());
        let member = admission::member(app, &room, auth, session).await?;
        Ok(Self { room, member })
    }
}

/// The `{roomId}` segment of the path.
pub async fn room_id_from_path(parts: &mut Parts, app: &App) -> Result<String, ApiError> {
    let Path(params) = Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, app)
        .await
        .map_err(|_| ApiError(crate::Error::not_found("room_not_found", "no such room")))?;
    params.get("roomId").cloned().ok_or_else(|| ApiError(crate::Error::not_found("room_not_found", "no such room")))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    all: bool,
}

pub async fn create(
    State(app): State<App>,
    Client(client): Client,
    SignedIn(auth): SignedIn,
    Json(body): Json<NewRoom>,
) -> ApiResult<impl IntoResponse> {
    let room = rooms::create(&app, &auth, body, &auth.user.actor(client.ip.clone())).await?;
    Ok((StatusCode::CREATED, axum::Json(RoomView::from(&room))))
}

pub async fn list(
    State(app): State<App>,
    SignedIn(auth): SignedIn,
    Query(q): Query<ListQuery>,
) -> ApiResult<impl IntoResponse> {
    let rooms = rooms::list(&app, &auth, q.all).await?;
    Ok(axum::Json(json!({ "rooms": rooms.iter().map(RoomView::from).collect::<Vec<_>>() })))
}

pub async fn get(hosted: HostedRoom) -> impl IntoResponse {
    axum::Json(RoomView::from(&hosted.room))
}

pub async fn patch(
    State(app): State<App>,
    hosted: HostedRoom,
    Json(body): Json<RoomPatch>,
) -> ApiResult<impl IntoResponse> {
    let room = rooms::update(&app, hosted.room, body, &hosted.actor).await?;
    Ok(axum::Json(RoomView::from(&room)))
}

pub async fn delete(State(app): State<App>, hosted: HostedRoom) -> ApiResult<StatusCode> {
    rooms::delete(&app, hosted.room, &hosted.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn regenerate_invite_code(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    let room = rooms::regenerate_invite_code(&app, hosted.room, &hosted.actor).await?;
    Ok(axum::Json(RoomView::from(&room)))
}

/// Ends the lecture under way: the answer names it (`endedLectureId`, for its page) and the room, which is
/// ready for the next one.
pub async fn end(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    let closed = lifecycle::end(&app, &hosted.room, &hosted.actor).await?;
    let room = app.store().room_by_id(&hosted.room.id).await?;
    Ok(axum::Json(json!({
        "room": RoomView::from(&room),
        "endedLectureId": hosted.room.lecture_id,
        "livekitClosed": closed,
    })))
}

pub async fn archive(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(RoomView::from(&rooms::archive(&app, hosted.room, &hosted.actor).await?)))
}

pub async fn unarchive(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(RoomView::from(&rooms::unarchive(&app, hosted.room, &hosted.actor).await?)))
}

pub async fn host_token(
    State(app): State<App>,
    Client(client): Client,
    hosted: HostedRoom,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(admission::host_token(&app, &hosted.auth, &hosted.room, &client).await?))
}

pub async fn by_code(
    State(app): State<App>,
    Client(client): Client,
    Path(code): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(rooms::by_invite_code(&app, &code, client.ip.as_deref()).await?))
}
