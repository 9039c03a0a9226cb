//! The HTTP surface: routes, layers and the translation between HTTP and domain calls. Handlers stay thin.

mod auth;
pub mod error;
pub mod extract;
mod health;
mod middleware;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::App;
use crate::config::Config;
use error::error_response;

/// The session cookie's name: `__Host-` prefixed (bound to this exact origin, Secure) when served over HTTPS.
pub fn session_cookie_name(config: &Config) -> &'static str {
    if serves_https(config) { "__Host-confctl_session" } else { "confctl_session" }
}

/// True when browsers reach this instance over HTTPS (a domain with TLS, or an https public URL).
pub fn serves_https(config: &Config) -> bool {
    config.is_public() || config.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
}

/// Builds the whole application router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/password", post(auth::change_password))
        .fallback(api_not_found);

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api", api)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config().max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::csrf))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::access))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::request_log))
        .with_state(app)
}

async fn api_not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
}
