//! `POST /api/webhooks/livekit`: LiveKit's signed event notifications.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiResult;
use crate::app::App;
use crate::rooms::lifecycle;

/// Verifies the signature over the raw body (401 on any mismatch), then applies the event idempotently.
/// Unknown events are acknowledged and ignored, so LiveKit does not retry them.
pub async fn livekit(State(app): State<App>, headers: HeaderMap, body: axum::body::Bytes) -> ApiResult<StatusCode> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    lifecycle::receive_webhook(&app, &body, authorization).await?;
    Ok(StatusCode::OK)
}
