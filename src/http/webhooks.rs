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
    let text = std::str::from_utf8(&body)
        .map_err(|_| crate::Error::unauthenticated("invalid_webhook", "webhook body is not UTF-8"))?;
    let event = app.livekit().verify_webhook(text, authorization)?;
    lifecycle::apply_webhook(&app, &event).await?;
    Ok(StatusCode::OK)
}
