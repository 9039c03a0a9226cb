//! `/api/admin/*` for administrators: accounts (list, create, role, disable, password reset, sign-out
//! everywhere), the audit log with filters, and the global AI settings. Callers are administrators' sessions or
//! admin API tokens: any may look, an `admin` token or a session may also change ([`ActingAdmin`]). Thin over
//! `accounts`, `audit` and `admin::ai_settings`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{ActingAdmin, AdminCaller, Json, OptionalJson, Path, Query};
use crate::accounts::{self, Role};
use crate::admin::ai_settings::{self, SettingsPatch};
use crate::app::App;
use crate::audit::{self, AuditQuery};
use crate::error::{Error, Result};

/// `GET /api/admin/audit?room=&actor=&action=&since=&before=&limit=`.
pub async fn audit(
    State(app): State<App>,
    _caller: AdminCaller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(audit::list(&app, q, None).await?))
}

/// `GET /api/admin/users`.
pub async fn users(State(app): State<App>, _caller: AdminCaller) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({ "users": accounts::list_users(&app).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUserBody {
    email: String,
    name: String,
    #[serde(default)]
    role: Option<String>,
    /// Absent or empty: a random password is generated and returned once.
    #[serde(default)]
    password: Option<String>,
}

fn parse_role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| Error::invalid("invalid_role", "role must be ADMIN or HOST"))
}

/// `POST /api/admin/users` → 201 `{user, password}` (`password` only when generated).
pub async fn create_user(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Json(body): Json<NewUserBody>,
) -> ApiResult<impl IntoResponse> {
    let role = body.role.as_deref().map(parse_role).transpose()?.unwrap_or(Role::Host);
    let given = body.password.filter(|p| !p.is_empty());
    let generated = given.is_none();
    let password = given.unwrap_or_else(accounts::generate_password);
    let user = accounts::create_user(&app, &actor, &body.email, &body.name, role, password.clone()).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "user": user, "password": generated.then_some(password) }))))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/admin/users/{userId}` `{role?, disabled?}` → `{user}`.
pub async fn update_user(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Path(user_id): Path<String>,
    Json(body): Json<UserPatch>,
) -> ApiResult<impl IntoResponse> {
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let user = accounts::update_user(&app, &actor, &user_id, role, body.disabled).await?;
    Ok(axum::Json(json!({ "user": user })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordBody {
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/admin/users/{userId}/password` `{password?}` → `{password}` (only when generated). Every
/// session of the user ends.
pub async fn reset_password(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Path(user_id): Path<String>,
    // No body means "generate one".
    OptionalJson(body): OptionalJson<PasswordBody>,
) -> ApiResult<impl IntoResponse> {
    let user = accounts::find_user(&app, &user_id).await?;
    let given = body.password.filter(|p| !p.is_empty());
    let generated = given.is_none();
    let password = given.unwrap_or_else(accounts::generate_password);
    accounts::set_password(&app, &actor, &user.id, password.clone()).await?;
    Ok(axum::Json(json!({ "password": generated.then_some(password) })))
}

/// `POST /api/admin/users/{userId}/revoke-sessions` → `{revoked}`.
pub async fn revoke_sessions(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Path(user_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let user = accounts::find_user(&app, &user_id).await?;
    let revoked = accounts::revoke_sessions(&app, &actor, &user.id).await?;
    Ok(axum::Json(json!({ "revoked": revoked })))
}

/// `GET /api/admin/settings` → `{settings, stored, defaults}`.
pub async fn settings(State(app): State<App>, _caller: AdminCaller) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(ai_settings::view(&app).await?))
}

/// `PATCH /api/admin/settings` with the settings to change (`null` returns one to its default) → as `GET`.
pub async fn update_settings(
    State(app): State<App>,
    ActingAdmin(actor): ActingAdmin,
    Json(patch): Json<SettingsPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(ai_settings::update(&app, &actor, patch).await?))
}
