//! `/api/rooms/{roomId}/chat`: post and read the room's chat (members only), remove a message (hosts).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Json, Path, Query};
use super::rooms::{HostedRoom, RoomMember};
use crate::app::App;
use crate::chat;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostBody {
    text: String,
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct MessagePath {
    #[serde(rename = "roomId")]
    _room_id: String,
    #[serde(rename = "messageId")]
    message_id: String,
}

pub async fn post(
    State(app): State<App>,
    member: RoomMember,
    Json(body): Json<PostBody>,
) -> ApiResult<impl IntoResponse> {
    let (message, delivered) = chat::post(&app, &member.room, &member.member, &body.text).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "message": message, "delivered": delivered }))))
}

pub async fn history(
    State(app): State<App>,
    member: RoomMember,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "messages": chat::history(&app, &member.room, q.after, q.limit).await? })))
}

pub async fn delete(
    State(app): State<App>,
    hosted: HostedRoom,
    Path(p): Path<MessagePath>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "message": chat::delete(&app, &hosted.room, &p.message_id, &hosted.actor).await? })))
}
