//! `/api/auth/*`: register, sign in and out, who am I, change password.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Client, Json, SignedIn};
use crate::accounts::{self, NewSession, Registration};
use crate::app::App;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

fn session_cookie(app: &App, session: &NewSession) -> HeaderValue {
    let name = super::session_cookie_name(app.config());
    let max_age = app.config().auth.session_lifetime.as_secs();
    let secure = if super::serves_https(app.config()) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        session.token
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Browsers cap cookie lifetimes at 400 days.
const DEVICE_COOKIE_MAX_AGE_SECS: u64 = 400 * 24 * 3600;

fn device_cookie_name(app: &App) -> &'static str {
    if super::serves_https(app.config()) { "__Host-confctl_device" } else { "confctl_device" }
}

fn device_cookie(app: &App, value: &str) -> HeaderValue {
    let name = device_cookie_name(app);
    let secure = if super::serves_https(app.config()) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={DEVICE_COOKIE_MAX_AGE_SECS}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie(app: &App) -> HeaderValue {
    let name = super::session_cookie_name(app.config());
    let secure = if super::serves_https(app.config()) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn signed_in_response(app: &App, status: StatusCode, session: NewSession) -> Response {
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, session_cookie(app, &session));
    if let Some(device) = &session.device {
        headers.append(header::SET_COOKIE, device_cookie(app, device));
    }
    (status, headers, axum::Json(json!({ "user": session.user }))).into_response()
}

/// `POST /api/auth/register`: creates the account and signs it in.
pub async fn register(
    State(app): State<App>,
    Client(client): Client,
    Json(body): Json<Registration>,
) -> ApiResult<Response> {
    let session = accounts::register(&app, body, &client).await?;
    Ok(signed_in_response(&app, StatusCode::CREATED, session))
}

/// `POST /api/auth/login`: a fresh session (a new cookie every time: the token rotates at login).
pub async fn login(
    State(app): State<App>,
    Client(client): Client,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> ApiResult<Response> {
    let device = super::extract::cookie(&headers, device_cookie_name(&app));
    let session = accounts::login(&app, &body.email, &body.password, device, &client).await?;
    Ok(signed_in_response(&app, StatusCode::OK, session))
}

/// `POST /api/auth/logout`: ends the session server-side and clears the cookie.
pub async fn logout(State(app): State<App>, Client(client): Client, SignedIn(auth): SignedIn) -> ApiResult<Response> {
    accounts::logout(&app, &auth, &client).await?;
    Ok(([(header::SET_COOKIE, clear_cookie(&app))], StatusCode::NO_CONTENT).into_response())
}

/// `GET /api/auth/me`.
pub async fn me(SignedIn(auth): SignedIn) -> impl IntoResponse {
    axum::Json(json!({ "user": auth.user }))
}

/// `POST /api/auth/password`: every other session of the user ends; this browser gets a new cookie.
pub async fn change_password(
    State(app): State<App>,
    Client(client): Client,
    SignedIn(auth): SignedIn,
    Json(body): Json<PasswordBody>,
) -> ApiResult<Response> {
    let session = accounts::change_password(&app, &auth, &body.current_password, body.new_password, &client).await?;
    Ok(signed_in_response(&app, StatusCode::OK, session))
}
