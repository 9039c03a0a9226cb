//! The HTTP surface: routes, layers and the translation between HTTP and domain calls. Handlers stay thin.

mod admin;
mod admin_rooms;
mod agent;
mod auth;
mod chat;
pub mod error;
pub mod extract;
mod files;
mod health;
mod lectures;
mod lobby;
mod middleware;
mod moderation;
mod pages;
mod rooms;
mod sse;
mod webhooks;

pub use lobby::SESSION_HEADER;

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

/// True when browsers reach this instance over HTTPS (a domain with TLS, TLS served by confctl itself, or
/// an https public URL).
pub fn serves_https(config: &Config) -> bool {
    config.is_public() || config.tls.enabled() || config.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
}

/// Builds the whole application router.
pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/auth/password", post(auth::change_password))
        .route("/rooms", post(rooms::create).get(rooms::list))
        .route("/rooms/by-code/{code}", get(rooms::by_code))
        .route("/rooms/{roomId}", get(rooms::get).patch(rooms::patch).delete(rooms::delete))
        .route("/rooms/{roomId}/invite-code", post(rooms::regenerate_invite_code))
        .route("/rooms/{roomId}/end", post(rooms::end))
        .route("/rooms/{roomId}/archive", post(rooms::archive))
        .route("/rooms/{roomId}/unarchive", post(rooms::unarchive))
        .route("/rooms/{roomId}/lectures", get(lectures::of_room))
        .route("/rooms/{roomId}/token", post(rooms::host_token))
        .route("/rooms/{roomId}/join", post(lobby::join))
        .route("/rooms/{roomId}/guest-token", post(lobby::guest_token))
        .route("/rooms/{roomId}/lobby", get(lobby::lobby))
        .route("/rooms/{roomId}/lobby/stream", get(lobby::guest_stream))
        .route("/rooms/{roomId}/lobby/approve-all", post(lobby::approve_all))
        .route("/rooms/{roomId}/lobby/{entryId}/approve", post(lobby::approve))
        .route("/rooms/{roomId}/lobby/{entryId}/reject", post(lobby::reject))
        .route("/rooms/{roomId}/events", get(lobby::host_events))
        .route("/rooms/{roomId}/participants/{identity}/kick", post(moderation::kick))
        .route("/rooms/{roomId}/participants/{identity}/ban", post(moderation::ban))
        .route("/rooms/{roomId}/participants/{identity}/permissions", post(moderation::permissions))
        .route("/rooms/{roomId}/bans", get(moderation::bans))
        .route("/rooms/{roomId}/bans/{banId}", axum::routing::delete(moderation::unban))
        .route("/rooms/{roomId}/mute-all", post(moderation::mute_all))
        .route("/rooms/{roomId}/unmute-all", post(moderation::unmute_all))
        .route("/rooms/{roomId}/lock", post(moderation::lock))
        .route("/rooms/{roomId}/unlock", post(moderation::unlock))
        .route("/rooms/{roomId}/hand", post(moderation::hand))
        .route("/rooms/{roomId}/hands", get(moderation::hands))
        .route("/rooms/{roomId}/audit", get(moderation::room_audit))
        .route("/rooms/{roomId}/chat", post(chat::post).get(chat::history))
        .route("/rooms/{roomId}/chat/{messageId}", axum::routing::delete(chat::delete))
        .route("/rooms/{roomId}/files", post(files::request_upload).get(files::list))
        .route("/rooms/{roomId}/files/{fileId}/complete", post(files::complete))
        .route("/rooms/{roomId}/files/{fileId}", axum::routing::delete(files::delete))
        .route("/lectures", get(lectures::list))
        .route("/lectures/{lectureId}", get(lectures::get))
        .route("/lectures/{lectureId}/transcript", get(lectures::transcript))
        .route("/lectures/{lectureId}/summary", axum::routing::put(lectures::edit_summary))
        .route("/lectures/{lectureId}/summary/regenerate", post(lectures::regenerate_summary))
        .route("/lectures/{lectureId}/files/{fileId}", get(lectures::file))
        .route("/lectures/{lectureId}/shares", post(lectures::create_share).get(lectures::list_shares))
        .route("/lectures/{lectureId}/shares/{shareId}", axum::routing::delete(lectures::revoke_share))
        .route("/files/{fileId}/content", axum::routing::put(files::upload_content))
        .route("/files/{fileId}/download", get(files::download))
        .route("/agent/lectures/stream", get(agent::lecture_stream))
        .route("/agent/lectures/{lectureId}/token", post(agent::token))
        .route("/agent/lectures/{lectureId}/captions", post(agent::caption))
        .route("/agent/lectures/{lectureId}/context", get(agent::context))
        .route("/agent/lectures/{lectureId}/artifact", axum::routing::put(agent::put_artifact).get(agent::get_artifact))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{userId}", axum::routing::patch(admin::update_user))
        .route("/admin/users/{userId}/password", post(admin::reset_password))
        .route("/admin/users/{userId}/revoke-sessions", post(admin::revoke_sessions))
        // The monitor's API: admins' sessions or admin API tokens (`Authorization: Bearer`).
        .route("/admin/rooms", get(admin_rooms::rooms))
        .route("/admin/events", get(admin_rooms::events))
        .route("/admin/rooms/{roomId}", get(admin_rooms::room))
        .route("/admin/rooms/{roomId}/end", post(admin_rooms::end))
        .route("/admin/rooms/{roomId}/lock", post(admin_rooms::lock))
        .route("/admin/rooms/{roomId}/unlock", post(admin_rooms::unlock))
        .route("/admin/rooms/{roomId}/mute-all", post(admin_rooms::mute_all))
        .route("/admin/rooms/{roomId}/unmute-all", post(admin_rooms::unmute_all))
        .route("/admin/rooms/{roomId}/lobby/approve-all", post(admin_rooms::approve_all))
        .route("/admin/rooms/{roomId}/lobby/{entryId}/approve", post(admin_rooms::approve))
        .route("/admin/rooms/{roomId}/lobby/{entryId}/reject", post(admin_rooms::reject))
        .route("/admin/rooms/{roomId}/participants/{identity}/kick", post(admin_rooms::kick))
        .route("/admin/rooms/{roomId}/participants/{identity}/ban", post(admin_rooms::ban))
        .route("/admin/bans", get(admin_rooms::bans))
        .route("/admin/bans/{banId}", axum::routing::delete(admin_rooms::lift_ban))
        .route("/webhooks/livekit", post(webhooks::livekit))
        .merge(pages::api())
        .fallback(api_not_found);

    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api", api)
        .merge(pages::router())
        .fallback(pages::not_found)
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
