//! The HTTP surface: routes, layers and the translation between HTTP and domain calls. Handlers stay thin.

mod admin;
mod admin_rooms;
mod agent;
mod auth;
mod chat;
mod drive;
pub mod error;
pub mod extract;
mod files;
mod health;
mod lectures;
mod lobby;
mod middleware;
mod moderation;
mod pages;
pub mod plain;
mod rooms;
mod routes;
mod sse;
mod webhooks;

pub use lobby::SESSION_HEADER;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::App;
use crate::config::Config;
use error::error_response;
use routes::Routes;

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
    pages::warm_up();
    let api = api_routes().into_router().fallback(api_not_found);
    outer_routes()
        .into_router()
        .nest("/api", api)
        .fallback(pages::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config().max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::csrf))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::access))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::request_log))
        .with_state(app)
}

/// Every route the application serves, as `METHOD /path` with the path as clients write it (`/api/…`).
pub fn served() -> Vec<String> {
    api_routes().listed_under("/api").chain(outer_routes().listed_under("")).collect()
}

/// The JSON API, nested under `/api`.
fn api_routes() -> Routes {
    Routes::new()
        .post("/auth/register", auth::register)
        .post("/auth/login", auth::login)
        .post("/auth/logout", auth::logout)
        .get("/auth/me", auth::me)
        .post("/auth/password", auth::change_password)
        .get("/drive", drive::status)
        .delete("/drive", drive::disconnect)
        .post("/drive/connect", drive::connect)
        .post("/rooms", rooms::create)
        .get("/rooms", rooms::list)
        .get("/rooms/by-code/{code}", rooms::by_code)
        .get("/rooms/{roomId}", rooms::get)
        .patch("/rooms/{roomId}", rooms::patch)
        .delete("/rooms/{roomId}", rooms::delete)
        .post("/rooms/{roomId}/invite-code", rooms::regenerate_invite_code)
        .post("/rooms/{roomId}/end", rooms::end)
        .post("/rooms/{roomId}/archive", rooms::archive)
        .post("/rooms/{roomId}/unarchive", rooms::unarchive)
        .get("/rooms/{roomId}/lectures", lectures::of_room)
        .post("/rooms/{roomId}/token", rooms::host_token)
        .post("/rooms/{roomId}/join", lobby::join)
        .post("/rooms/{roomId}/guest-token", lobby::guest_token)
        .get("/rooms/{roomId}/lobby", lobby::lobby)
        .get("/rooms/{roomId}/lobby/stream", lobby::guest_stream)
        .post("/rooms/{roomId}/lobby/approve-all", lobby::approve_all)
        .post("/rooms/{roomId}/lobby/{entryId}/approve", lobby::approve)
        .post("/rooms/{roomId}/lobby/{entryId}/reject", lobby::reject)
        .get("/rooms/{roomId}/events", lobby::host_events)
        .post("/rooms/{roomId}/participants/{identity}/kick", moderation::kick)
        .post("/rooms/{roomId}/participants/{identity}/ban", moderation::ban)
        .post("/rooms/{roomId}/participants/{identity}/permissions", moderation::permissions)
        .get("/rooms/{roomId}/bans", moderation::bans)
        .delete("/rooms/{roomId}/bans/{banId}", moderation::unban)
        .post("/rooms/{roomId}/mute-all", moderation::mute_all)
        .post("/rooms/{roomId}/unmute-all", moderation::unmute_all)
        .post("/rooms/{roomId}/lock", moderation::lock)
        .post("/rooms/{roomId}/unlock", moderation::unlock)
        .post("/rooms/{roomId}/hand", moderation::hand)
        .get("/rooms/{roomId}/hands", moderation::hands)
        .get("/rooms/{roomId}/audit", moderation::room_audit)
        .post("/rooms/{roomId}/chat", chat::post)
        .get("/rooms/{roomId}/chat", chat::history)
        .delete("/rooms/{roomId}/chat/{messageId}", chat::delete)
        .post("/rooms/{roomId}/files", files::request_upload)
        .get("/rooms/{roomId}/files", files::list)
        .post("/rooms/{roomId}/files/{fileId}/complete", files::complete)
        .delete("/rooms/{roomId}/files/{fileId}", files::delete)
        .get("/lectures", lectures::list)
        .get("/lectures/{lectureId}", lectures::get)
        .get("/lectures/{lectureId}/transcript", lectures::transcript)
        .put("/lectures/{lectureId}/summary", lectures::edit_summary)
        .post("/lectures/{lectureId}/summary/regenerate", lectures::regenerate_summary)
        .get("/lectures/{lectureId}/files/{fileId}", lectures::file)
        .get("/lectures/{lectureId}/export", lectures::export)
        .post("/lectures/{lectureId}/drive-export", lectures::drive_export)
        .post("/lectures/{lectureId}/shares", lectures::create_share)
        .get("/lectures/{lectureId}/shares", lectures::list_shares)
        .delete("/lectures/{lectureId}/shares/{shareId}", lectures::revoke_share)
        .put("/files/{fileId}/content", files::upload_content)
        .get("/files/{fileId}/download", files::download)
        .get("/agent/lectures/stream", agent::lecture_stream)
        .post("/agent/lectures/{lectureId}/token", agent::token)
        .post("/agent/lectures/{lectureId}/captions", agent::caption)
        .post("/agent/lectures/{lectureId}/status", agent::status)
        .get("/agent/lectures/{lectureId}/context", agent::context)
        .put("/agent/lectures/{lectureId}/artifact", agent::put_artifact)
        .get("/agent/lectures/{lectureId}/artifact", agent::get_artifact)
        // Every /admin route: administrators' sessions or admin API tokens (`Authorization: Bearer cfm_…`).
        .get("/admin/audit", admin::audit)
        .get("/admin/users", admin::users)
        .post("/admin/users", admin::create_user)
        .patch("/admin/users/{userId}", admin::update_user)
        .post("/admin/users/{userId}/password", admin::reset_password)
        .post("/admin/users/{userId}/revoke-sessions", admin::revoke_sessions)
        .get("/admin/settings", admin::settings)
        .patch("/admin/settings", admin::update_settings)
        .get("/admin/rooms", admin_rooms::rooms)
        .get("/admin/events", admin_rooms::events)
        .get("/admin/rooms/{roomId}", admin_rooms::room)
        .post("/admin/rooms/{roomId}/end", admin_rooms::end)
        .post("/admin/rooms/{roomId}/lock", admin_rooms::lock)
        .post("/admin/rooms/{roomId}/unlock", admin_rooms::unlock)
        .post("/admin/rooms/{roomId}/mute-all", admin_rooms::mute_all)
        .post("/admin/rooms/{roomId}/unmute-all", admin_rooms::unmute_all)
        .post("/admin/rooms/{roomId}/lobby/approve-all", admin_rooms::approve_all)
        .post("/admin/rooms/{roomId}/lobby/{entryId}/approve", admin_rooms::approve)
        .post("/admin/rooms/{roomId}/lobby/{entryId}/reject", admin_rooms::reject)
        .post("/admin/rooms/{roomId}/participants/{identity}/kick", admin_rooms::kick)
        .post("/admin/rooms/{roomId}/participants/{identity}/ban", admin_rooms::ban)
        .get("/admin/bans", admin_rooms::bans)
        .delete("/admin/bans/{banId}", admin_rooms::lift_ban)
        .post("/webhooks/livekit", webhooks::livekit)
        .merge(pages::api())
}

/// Everything outside `/api`: health checks and the pages.
fn outer_routes() -> Routes {
    Routes::new()
        .get("/healthz", health::healthz)
        .get("/readyz", health::readyz)
        .get("/auth/google/callback", drive::callback)
        .merge(pages::router())
}

async fn api_not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not accept that method")
}
