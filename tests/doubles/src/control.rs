//! Owns the `/_double/...` JSON control surface, so tests in another process (browser tests) can drive and inspect the double.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use livekit_protocol as proto;
use serde::Deserialize;
use serde_json::json;

use crate::webhook::{WebhookTamper, events};
use crate::{LiveKitDouble, Shared};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_double/health", get(health))
        .route("/_double/reset", post(reset))
        .route("/_double/rooms", get(list_rooms).post(add_room))
        .route("/_double/rooms/{room}", get(get_room).delete(remove_room))
        .route("/_double/rooms/{room}/participants", get(list_participants).post(add_participant))
        .route("/_double/rooms/{room}/participants/{identity}", get(get_participant).delete(remove_participant))
        .route("/_double/rooms/{room}/participants/{identity}/tracks", post(add_track))
        .route("/_double/rooms/{room}/data", get(sent_data))
        .route("/_double/calls", get(calls).delete(clear_calls))
        .route("/_double/webhook-url", get(webhook_url).put(set_webhook_url))
        .route("/_double/webhooks", get(webhooks).post(send_webhook))
}

fn double(shared: Arc<Shared>) -> LiveKitDouble {
    LiveKitDouble::handle(shared)
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": what }))).into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "ok": true }))
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    double(shared).reset();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct AddRoom {
    name: String,
    #[serde(default)]
    metadata: String,
}

async fn add_room(State(shared): State<Arc<Shared>>, Json(body): Json<AddRoom>) -> Response {
    let d = double(shared);
    let room = d.add_room(&body.name);
    let room =
        if body.metadata.is_empty() { room } else { d.set_room_metadata(&body.name, &body.metadata).unwrap_or(room) };
    (StatusCode::CREATED, Json(room)).into_response()
}

async fn list_rooms(State(shared): State<Arc<Shared>>) -> Json<Vec<proto::Room>> {
    Json(double(shared).rooms())
}

async fn get_room(State(shared): State<Arc<Shared>>, Path(room): Path<String>) -> Response {
    match double(shared).room(&room) {
        Some(room) => Json(room).into_response(),
        None => not_found("room not found"),
    }
}

async fn remove_room(State(shared): State<Arc<Shared>>, Path(room): Path<String>) -> Response {
    if double(shared).remove_room(&room) { StatusCode::NO_CONTENT.into_response() } else { not_found("room not found") }
}

#[derive(Debug, Deserialize)]
struct AddParticipant {
    identity: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    metadata: String,
    /// Protobuf JSON (camelCase) of `ParticipantPermission`; absent means a plain join token's.
    #[serde(default)]
    permission: Option<proto::ParticipantPermission>,
}

async fn add_participant(
    State(shared): State<Arc<Shared>>,
    Path(room): Path<String>,
    Json(body): Json<AddParticipant>,
) -> Response {
    let p = double(shared).add_participant(&room, &body.identity, &body.name, &body.metadata, body.permission);
    (StatusCode::CREATED, Json(p)).into_response()
}

async fn list_participants(
    State(shared): State<Arc<Shared>>,
    Path(room): Path<String>,
) -> Json<Vec<proto::ParticipantInfo>> {
    Json(double(shared).participants(&room))
}

async fn get_participant(
    State(shared): State<Arc<Shared>>,
    Path((room, identity)): Path<(String, String)>,
) -> Response {
    match double(shared).participant(&room, &identity) {
        Some(p) => Json(p).into_response(),
        None => not_found("participant not found"),
    }
}

async fn remove_participant(
    State(shared): State<Arc<Shared>>,
    Path((room, identity)): Path<(String, String)>,
) -> Response {
    if double(shared).remove_participant(&room, &identity) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found("participant not found")
    }
}

#[derive(Debug, Deserialize)]
struct AddTrack {
    #[serde(default)]
    name: String,
    /// `AUDIO`, `VIDEO` or `DATA`.
    #[serde(rename = "type", default)]
    kind: Option<proto::TrackType>,
    /// `CAMERA`, `MICROPHONE`, `SCREEN_SHARE`, `SCREEN_SHARE_AUDIO`.
    #[serde(default)]
    source: Option<proto::TrackSource>,
}

async fn add_track(
    State(shared): State<Arc<Shared>>,
    Path((room, identity)): Path<(String, String)>,
    Json(body): Json<AddTrack>,
) -> Response {
    let kind = body.kind.unwrap_or(proto::TrackType::Audio);
    let source = body.source.unwrap_or(proto::TrackSource::Microphone);
    match double(shared).add_track(&room, &identity, &body.name, kind, source) {
        Ok(track) => (StatusCode::CREATED, Json(track)).into_response(),
        Err(err) => not_found(&err.to_string()),
    }
}

async fn sent_data(State(shared): State<Arc<Shared>>, Path(room): Path<String>) -> Response {
    Json(double(shared).sent_data(&room)).into_response()
}

async fn calls(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let d = double(shared);
    let calls = match query.get("method") {
        Some(method) => d.calls_for(method),
        None => d.calls(),
    };
    Json(calls).into_response()
}

async fn clear_calls(State(shared): State<Arc<Shared>>) -> StatusCode {
    double(shared).clear_calls();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct WebhookUrl {
    url: Option<String>,
}

async fn webhook_url(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "url": double(shared).webhook_url() }))
}

async fn set_webhook_url(State(shared): State<Arc<Shared>>, Json(body): Json<WebhookUrl>) -> StatusCode {
    double(shared).set_webhook_url(body.url);
    StatusCode::NO_CONTENT
}

async fn webhooks(State(shared): State<Arc<Shared>>) -> Response {
    let d = double(shared);
    d.flush_webhooks().await;
    Json(d.webhook_deliveries()).into_response()
}

#[derive(Debug, Deserialize)]
struct SendWebhook {
    /// Defaults to the configured webhook URL.
    #[serde(default)]
    url: Option<String>,
    /// Protobuf JSON of `WebhookEvent`; a missing `id`/`createdAt` is filled in.
    event: proto::WebhookEvent,
    #[serde(default)]
    tamper: WebhookTamper,
}

async fn send_webhook(State(shared): State<Arc<Shared>>, Json(body): Json<SendWebhook>) -> Response {
    let d = double(shared);
    let Some(url) = body.url.or_else(|| d.webhook_url()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "no url given and no webhook url configured" })))
            .into_response();
    };
    let mut event = body.event;
    let stamp = events::new_event(&event.event);
    if event.id.is_empty() {
        event.id = stamp.id;
    }
    if event.created_at == 0 {
        event.created_at = stamp.created_at;
    }
    match d.send_webhook_with(&url, event, body.tamper).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": format!("{err:#}") }))).into_response(),
    }
}
