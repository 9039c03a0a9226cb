//! The web pages people use — landing, sign-in, the host dashboard and room forms, the invite and waiting
//! room, the video room, the admin area and the lecture page — rendered on the server from `web/templates`
//! and brought to life by the ES modules in `web/static`. Pages carry a shell and the data their script
//! needs; everything else they load from the JSON API, so every action has exactly one server path.

mod assets;
mod overview;
mod render;

pub(super) use assets::warm_up;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::config::RegistrationPolicy;
use crate::error::Error;
use crate::http::routes::Routes;
use crate::rooms::{self, RoomView};
use render::{PageCtx, Shell, error_page, page};

/// The pages and their assets.
pub(super) fn router() -> Routes {
    Routes::new()
        .get("/", landing)
        .get("/login", login)
        .get("/register", register)
        .get("/account", account)
        .get("/dashboard", dashboard)
        .get("/rooms/new", new_room)
        .get("/rooms/{roomId}", room)
        .get("/rooms/{roomId}/settings", room_settings)
        .get("/j", join_by_form)
        .get("/j/{code}", join)
        .get("/lectures/{lectureId}", lecture)
        .get("/admin", admin_users)
        .get("/admin/rooms", admin_rooms)
        .get("/admin/audit", admin_audit)
        .get("/admin/settings", admin_settings)
        .get("/assets/{file}", assets::serve)
        .get("/favicon.ico", favicon)
}

/// JSON routes the pages need beyond the domain APIs (mounted under `/api`).
pub(super) fn api() -> Routes {
    Routes::new().get("/dashboard/rooms", overview::rooms).get("/rooms/{roomId}/participants", overview::participants)
}

/// Any other path outside `/api`: a page saying so.
pub async fn not_found(ctx: PageCtx) -> Response {
    error_page(&ctx, StatusCode::NOT_FOUND, "error.not_found.title", "error.not_found.text")
}

async fn favicon() -> Response {
    Redirect::permanent(&assets::url("icon.svg")).into_response()
}

/// Pages that are only the shell: their script loads the rest.
macro_rules! shell_pages {
    ($($name:ident => $path:literal),+ $(,)?) => {
        $(
            #[derive(Template)]
            #[template(path = $path)]
            struct $name {
                s: Shell,
            }
        )+
    };
}

shell_pages!(
    Landing => "landing.html",
    Login => "login.html",
    Register => "register.html",
    Account => "account.html",
    Dashboard => "dashboard.html",
    Join => "join.html",
    Lecture => "lecture.html",
    AdminUsers => "admin_users.html",
    AdminRooms => "admin_rooms.html",
    AdminAudit => "admin_audit.html",
    AdminSettings => "admin_settings.html",
);

#[derive(Template)]
#[template(path = "room_form.html")]
struct RoomForm {
    s: Shell,
    /// The settings of an existing room, rather than the new-room form.
    settings: bool,
    /// Whether the assistant box starts ticked on the new-room form (the AI settings' default).
    ai_default: bool,
}

fn ok(ctx: &PageCtx, template: &impl Template) -> Response {
    page(ctx, StatusCode::OK, template)
}

async fn landing(ctx: PageCtx) -> Response {
    ok(&ctx, &Landing { s: Shell::new(&ctx, "landing.title", "home", Some("landing.js"), json!({})) })
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a local path may be a `next` target, so the sign-in page cannot be used to send people elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && !n.starts_with("/api/") => {
            n.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

async fn login(ctx: PageCtx, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if ctx.user.is_some() {
        return Redirect::to(&next).into_response();
    }
    ok(
        &ctx,
        &Login {
            s: Shell::new(&ctx, "login.title", "login", Some("auth.js"), json!({ "page": "login", "next": next })),
        },
    )
}

async fn register(State(app): State<App>, ctx: PageCtx) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    let users = match app.store().count_users().await {
        Ok(n) => n,
        Err(err) => return domain_error_page(&ctx, &err),
    };
    let state = match (users, app.live().registration) {
        (0, _) => "first",
        (_, RegistrationPolicy::Closed) => "closed",
        (_, RegistrationPolicy::Open) => "open",
    };
    let setup_code = users == 0 && ctx.public_instance;
    let data = json!({ "page": "register", "state": state, "setupCodeRequired": setup_code });
    ok(&ctx, &Register { s: Shell::new(&ctx, "register.title", "register", Some("auth.js"), data) })
}

async fn account(State(app): State<App>, ctx: PageCtx) -> Response {
    if ctx.user.is_none() {
        return ctx.sign_in_redirect();
    }
    // Without an OAuth client the Drive section stays hidden.
    let data = json!({ "page": "account", "driveConfigured": app.google().is_some() });
    ok(&ctx, &Account { s: Shell::new(&ctx, "account.title", "account", Some("auth.js"), data) })
}

async fn dashboard(ctx: PageCtx) -> Response {
    if ctx.user.is_none() {
        return ctx.sign_in_redirect();
    }
    ok(&ctx, &Dashboard { s: Shell::new(&ctx, "dashboard.title", "dashboard", Some("dashboard.js"), json!({})) })
}

async fn new_room(State(app): State<App>, ctx: PageCtx) -> Response {
    if ctx.user.is_none() {
        return ctx.sign_in_redirect();
    }
    let ai_default = match crate::admin::ai_settings::current(&app).await {
        Ok(settings) => settings.assistant_default,
        Err(err) => return domain_error_page(&ctx, &err),
    };
    let s = Shell::new(&ctx, "room_form.new_title", "dashboard", Some("room-form.js"), json!({ "roomId": null }));
    ok(&ctx, &RoomForm { s, settings: false, ai_default })
}

/// The room when the signed-in user hosts it (or is an admin); `None` for everyone else.
async fn hosted_room(app: &App, ctx: &PageCtx, room_id: &str) -> Result<Option<RoomView>, Response> {
    let Some(user) = &ctx.user else { return Ok(None) };
    let auth = crate::accounts::AuthUser { user: user.clone(), session_id: String::new() };
    match rooms::get_for_host(app, &auth, room_id).await {
        Ok(room) => Ok(Some(RoomView::from(&room))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(err) => Err(domain_error_page(ctx, &err)),
    }
}

async fn room_settings(State(app): State<App>, ctx: PageCtx, Path(room_id): Path<String>) -> Response {
    if ctx.user.is_none() {
        return ctx.sign_in_redirect();
    }
    match hosted_room(&app, &ctx, &room_id).await {
        Ok(Some(room)) => {
            let data = json!({ "roomId": room.id, "room": room });
            ok(
                &ctx,
                &RoomForm {
                    s: Shell::new(&ctx, "room_form.settings_title", "dashboard", Some("room-form.js"), data),
                    settings: true,
                    // The form shows the room's own value.
                    ai_default: room.ai_assistant,
                },
            )
        }
        Ok(None) => not_found(ctx).await,
        Err(response) => response,
    }
}

#[derive(Template)]
#[template(path = "room.html")]
struct RoomPage {
    s: Shell,
    host: bool,
    room_name: String,
}

/// The video room. Hosts (and admins) are recognised by their session; anyone else is a guest whose
/// admission lives in the browser tab (sessionStorage), so the page itself reveals nothing about the room.
async fn room(State(app): State<App>, ctx: PageCtx, Path(room_id): Path<String>) -> Response {
    let hosted = match hosted_room(&app, &ctx, &room_id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let host = hosted.is_some();
    let room_name = hosted.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    let data = json!({ "roomId": room_id, "role": if host { "host" } else { "guest" }, "room": hosted });
    let s = Shell::new(&ctx, "room.title", "room", Some("room.js"), data).wide();
    page(&ctx, StatusCode::OK, &RoomPage { s, host, room_name })
}

#[derive(Debug, Deserialize)]
struct CodeQuery {
    code: Option<String>,
}

/// The landing page's "join with a code" form works without script too.
async fn join_by_form(ctx: PageCtx, Query(q): Query<CodeQuery>) -> Response {
    let code = q.code.unwrap_or_default();
    match rooms::normalize_invite_code(&code) {
        Some(code) => Redirect::to(&format!("/j/{code}")).into_response(),
        None => error_page(&ctx, StatusCode::NOT_FOUND, "join.invalid_code.title", "join.invalid_code.text"),
    }
}

async fn join(ctx: PageCtx, Path(code): Path<String>) -> Response {
    ok(&ctx, &Join { s: Shell::new(&ctx, "join.title", "join", Some("join.js"), json!({ "code": code })) })
}

/// A lecture's page. Who may read it is the API's question (host or admin by cookie, an admitted guest by
/// the session kept in the browser, a share link's token): the shell reveals nothing, so every reader gets
/// the same page and its script asks `GET /api/lectures/{lectureId}` with what it holds.
async fn lecture(State(app): State<App>, ctx: PageCtx, Path(lecture_id): Path<String>) -> Response {
    // Whether to offer "Export to Drive" (to the host; the script knows who reads).
    let data = json!({ "lectureId": lecture_id, "driveConfigured": app.google().is_some() });
    ok(&ctx, &Lecture { s: Shell::new(&ctx, "lecture.title", "lecture", Some("lecture.js"), data) })
}

/// Admin pages: sign-in first, then administrators only.
fn admin_gate(ctx: &PageCtx) -> Option<Response> {
    if ctx.user.is_none() {
        return Some(ctx.sign_in_redirect());
    }
    if !ctx.is_admin() {
        return Some(error_page(ctx, StatusCode::FORBIDDEN, "error.forbidden.title", "error.admin_only.text"));
    }
    None
}

fn admin_shell(ctx: &PageCtx, title: &str, section: &str) -> Shell {
    Shell::new(ctx, title, "admin", Some("admin.js"), json!({ "section": section }))
}

async fn admin_users(ctx: PageCtx) -> Response {
    admin_gate(&ctx).unwrap_or_else(|| ok(&ctx, &AdminUsers { s: admin_shell(&ctx, "admin.users.title", "users") }))
}

async fn admin_rooms(ctx: PageCtx) -> Response {
    admin_gate(&ctx).unwrap_or_else(|| ok(&ctx, &AdminRooms { s: admin_shell(&ctx, "admin.rooms.title", "rooms") }))
}

async fn admin_audit(ctx: PageCtx) -> Response {
    admin_gate(&ctx).unwrap_or_else(|| ok(&ctx, &AdminAudit { s: admin_shell(&ctx, "admin.audit.title", "audit") }))
}

async fn admin_settings(ctx: PageCtx) -> Response {
    admin_gate(&ctx)
        .unwrap_or_else(|| ok(&ctx, &AdminSettings { s: admin_shell(&ctx, "admin.settings.title", "settings") }))
}

fn domain_error_page(ctx: &PageCtx, err: &Error) -> Response {
    tracing::error!(error = %err, "page: a domain call failed");
    error_page(ctx, StatusCode::SERVICE_UNAVAILABLE, "error.unavailable.title", "error.unavailable.text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_targets_stay_on_this_site() {
        assert_eq!(safe_next(Some("/rooms/abc/settings")), "/rooms/abc/settings");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "/api/auth/logout", "javascript:x"] {
            assert_eq!(safe_next(Some(bad)), "/dashboard", "{bad}");
        }
        assert_eq!(safe_next(None), "/dashboard");
    }
}
