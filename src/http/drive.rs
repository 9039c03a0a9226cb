//! `/api/drive` (a host's Google Drive connection) and `/auth/google/callback`, where Google sends the
//! host's browser back after consent.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::error::ApiResult;
use super::extract::{Client, SignedIn, cookie};
use crate::accounts;
use crate::app::App;
use crate::gdrive::{self, Callback};

/// `GET /api/drive`: whether Drive is offered here and connected for the caller.
pub async fn status(State(app): State<App>, SignedIn(auth): SignedIn) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(gdrive::status(&app, &auth.user.id).await?))
}

/// `POST /api/drive/connect`: Google's consent URL for the browser to open.
pub async fn connect(State(app): State<App>, SignedIn(auth): SignedIn) -> ApiResult<impl IntoResponse> {
    let url = gdrive::start_connect(&app, &auth).await?;
    Ok(axum::Json(json!({ "authorizeUrl": url.as_str() })))
}

/// `DELETE /api/drive`: revokes at Google and forgets the token.
pub async fn disconnect(
    State(app): State<App>,
    Client(client): Client,
    SignedIn(auth): SignedIn,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(gdrive::disconnect(&app, &auth, &client).await?))
}

/// `GET /auth/google/callback?state=…&code=…` (or `error=…`): finishes connecting and sends the browser to
/// the account page, which says how it went (`?drive=connected` or `?drive=<error code>`).
pub async fn callback(
    State(app): State<App>,
    Client(client): Client,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let token = cookie(&headers, super::session_cookie_name(app.config())).unwrap_or_default();
    let auth = match accounts::authenticate(&app, token).await {
        Ok(Some(auth)) => auth,
        // Signed out meanwhile: this `state` belonged to that session and cannot be finished by another.
        Ok(None) => return Redirect::to("/login?next=%2Faccount").into_response(),
        Err(err) => return to_account(&err),
    };
    let mut callback = Callback::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "state" => callback.state = Some(value.into_owned()),
            "code" => callback.code = Some(value.into_owned()),
            "error" => callback.error = Some(value.into_owned()),
            _ => {}
        }
    }
    match gdrive::finish_connect(&app, &auth, callback, &client).await {
        Ok(_) => Redirect::to("/account?drive=connected").into_response(),
        Err(err) => to_account(&err),
    }
}

/// Back to the account page with the error's code (a fixed word, never the message).
fn to_account(err: &crate::Error) -> Response {
    if let crate::Error::Internal(detail) = err {
        tracing::error!(error = format!("{detail:#}"), "connecting Google Drive failed");
    } else {
        tracing::info!(code = err.code(), "connecting Google Drive failed");
    }
    Redirect::to(&format!("/account?drive={}", err.code())).into_response()
}
