//! Liveness and readiness probes for systemd, load balancers and monitoring.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::App;

/// The process is alive and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers (503 otherwise, so a load balancer skips this replica).
pub async fn readyz(State(app): State<App>) -> (StatusCode, Json<Value>) {
    if app.store().ping().await {
        (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "database": "unreachable" })))
    }
}
