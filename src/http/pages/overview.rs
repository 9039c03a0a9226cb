//! `GET /api/dashboard/rooms` and `GET /api/rooms/{roomId}/participants`: the dashboard's live counts and
//! the host's list of who is in the media room (see `rooms::overview`).

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::http::error::ApiResult;
use crate::http::extract::{Query, SignedIn};
use crate::rooms::overview::{present, summaries};

#[derive(Debug, Deserialize)]
pub struct OverviewQuery {
    /// Every room (admins only), not just one's own.
    #[serde(default)]
    all: bool,
}

pub async fn rooms(
    State(app): State<App>,
    SignedIn(auth): SignedIn,
    Query(q): Query<OverviewQuery>,
) -> ApiResult<impl IntoResponse> {
    let (rooms, media_server_reachable) = summaries(&app, &auth, q.all).await?;
    Ok(axum::Json(json!({ "rooms": rooms, "mediaServerReachable": media_server_reachable })))
}

/// `GET /api/rooms/{roomId}/participants` (host): who is in the media session.
pub async fn participants(
    State(app): State<App>,
    hosted: crate::http::rooms::HostedRoom,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "participants": present(&app, &hosted.room).await? })))
}
