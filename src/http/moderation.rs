//! `/api/rooms/{roomId}/…` in-room control: kick, ban, bans, mute all, lock, hands, speaking rights, and the
//! room's audit log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Json, OptionalJson, Path, Query};
use super::rooms::{HostedRoom, RoomMember};
use crate::app::App;
use crate::audit::{self, AuditQuery};
use crate::moderation::{self, BanRequest};

#[derive(Debug, Deserialize)]
pub struct IdentityPath {
    #[serde(rename = "roomId")]
    _room_id: String,
    identity: String,
}

#[derive(Debug, Deserialize)]
pub struct BanPath {
    #[serde(rename = "roomId")]
    _room_id: String,
    #[serde(rename = "banId")]
    ban_id: String,
}

/// An optional JSON body: empty means the defaults.
pub async fn kick(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<IdentityPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::kick(&app, &hosted.room, &p.identity, &hosted.actor).await?))
}

pub async fn ban(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<IdentityPath>,
    OptionalJson(request): OptionalJson<BanRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((
        StatusCode::CREATED,
        axum::Json(moderation::ban(&app, &hosted.room, &p.identity, request, &hosted.actor).await?),
    ))
}

pub async fn bans(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "bans": moderation::bans(&app, &hosted.room).await? })))
}

pub async fn unban(State(app): State<App>, hosted: HostedRoom, Path(p): Path<BanPath>) -> ApiResult<StatusCode> {
    moderation::unban(&app, &hosted.room, &p.ban_id, &hosted.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn mute_all(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::mute_all(&app, &hosted.room, &hosted.actor).await?))
}

pub async fn unmute_all(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::unmute_all(&app, &hosted.room, &hosted.actor).await?))
}

pub async fn lock(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    moderation::set_locked(&app, &hosted.room, true, &hosted.actor).await?;
    Ok(axum::Json(json!({ "locked": true })))
}

pub async fn unlock(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    moderation::set_locked(&app, &hosted.room, false, &hosted.actor).await?;
    Ok(axum::Json(json!({ "locked": false })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandBody {
    raised: bool,
}

pub async fn hand(
    State(app): State<App>,
    member: RoomMember,
    Json(body): Json<HandBody>,
) -> ApiResult<impl IntoResponse> {
    let hands = moderation::raise_hand(&app, &member.room, &member.member, body.raised).await?;
    Ok(axum::Json(json!({ "raised": body.raised, "hands": hands })))
}

pub async fn hands(State(app): State<App>, hosted: HostedRoom) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "hands": moderation::hands(&app, &hosted.room).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PermissionsBody {
    can_publish: bool,
}

pub async fn permissions(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<IdentityPath>,
    Json(body): Json<PermissionsBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(moderation::set_can_publish(&app, &hosted.room, &p.identity, body.can_publish, &hosted.actor).await?))
}

pub async fn room_audit(
    State(app): State<App>,
    hosted: HostedRoom,
    Query(q): Query<AuditQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(audit::list(&app, q, Some(&hosted.room.id)).await?))
}
