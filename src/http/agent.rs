//! `/api/agent/*`: the AI assistant's API (see docs/agent-api.md), authenticated with agent tokens.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use futures::StreamExt;
use serde_json::json;

use super::error::{ApiError, ApiResult};
use super::extract::{Json, Path};
use super::sse::{self, json_event};
use crate::accounts::agent_tokens;
use crate::app::App;
use crate::artifacts::health::Report;
use crate::artifacts::stream::LecturesItem;
use crate::artifacts::{self, ArtifactUpload, Caption};

/// Proof that the request comes from an assistant holding a valid agent token (a guard: the token's record
/// itself is not needed by the routes).
#[derive(Debug)]
pub struct Agent;

impl FromRequestParts<App> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let token = value.strip_prefix("Bearer ").unwrap_or_default().trim();
        agent_tokens::authenticate(app, token).await?;
        Ok(Self)
    }
}

/// `GET /api/agent/lectures/stream`: the live lectures to join, live.
pub async fn lecture_stream(State(app): State<App>, _: Agent) -> ApiResult<impl IntoResponse> {
    let items = artifacts::stream::lectures(&app).await?;
    let events = items.map(|item| match item {
        LecturesItem::Snapshot(lectures) => json_event("lectures", &json!({ "lectures": lectures })),
        LecturesItem::Live(lecture) => json_event("lecture_live", &lecture),
        LecturesItem::Ended { lecture_id } => json_event("lecture_ended", &json!({ "lectureId": lecture_id })),
    });
    Ok(sse::respond(events, app))
}

pub async fn token(State(app): State<App>, _: Agent, Path(lecture_id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::assistant_token(&app, &lecture_id).await?))
}

pub async fn caption(
    State(app): State<App>,
    _: Agent,
    Path(lecture_id): Path<String>,
    Json(body): Json<Caption>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, axum::Json(artifacts::caption(&app, &lecture_id, body).await?)))
}

/// `POST /api/agent/lectures/{lectureId}/status` `{problem?}` → the assistant's state as the monitor shows it.
pub async fn status(
    State(app): State<App>,
    _: Agent,
    Path(lecture_id): Path<String>,
    Json(body): Json<Report>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::report(&app, &lecture_id, body).await?))
}

pub async fn context(State(app): State<App>, _: Agent, Path(lecture_id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::context(&app, &lecture_id).await?))
}

pub async fn put_artifact(
    State(app): State<App>,
    _: Agent,
    Path(lecture_id): Path<String>,
    Json(body): Json<ArtifactUpload>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(artifacts::save(&app, &lecture_id, body).await?))
}

pub async fn get_artifact(
    State(app): State<App>,
    _: Agent,
    Path(lecture_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let artifact = artifacts::get(&app, &lecture_id)
        .await?
        .ok_or_else(|| crate::Error::not_found("artifact_not_found", "no artifact for this lecture yet"))?;
    Ok(axum::Json(artifact))
}
