//! Extractors every handler uses: JSON bodies with uniform errors, the client's address, and the
//! authorisation gates ("signed-in user", "admin", and the admin API's callers: sessions or API tokens).

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::accounts::{self, AuthUser, ClientInfo};
use crate::admin::tokens;
use crate::app::App;
use crate::audit::Actor;
use crate::error::Error;
use crate::store::ApiTokenScope;

/// A JSON body whose every failure (syntax, types, unknown fields, size, content type) is a JSON error.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Error::TooLarge { code: "body_too_large", message: "the request body is too large".into() }
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType {
            code: "unsupported_media_type",
            message: "send the body as JSON with Content-Type: application/json".into(),
        },
        _ => match rejection {
            JsonRejection::JsonSyntaxError(_) => Error::invalid("malformed_json", "the request body is not valid JSON"),
            JsonRejection::JsonDataError(err) => {
                // The serde message names the field and the expected type; drop axum's generic prefix.
                let text = err.body_text();
                let detail = text.split_once(": ").map_or(text.as_str(), |(_, d)| d).to_owned();
                Error::invalid("invalid_body", detail)
            }
            other => Error::invalid("invalid_body", other.body_text()),
        },
    }
}

/// A JSON body that may be left out: an empty (or all-whitespace) body is `T::default()`; anything else must
/// parse, with the same errors as [`Json`].
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::TooLarge { code: "body_too_large", message: "the request body is too large".into() })
            } else {
                ApiError(Error::invalid("invalid_body", rejection.body_text()))
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|e| ApiError(Error::invalid("invalid_body", e.to_string())))
    }
}

/// A query string whose decoding failures are JSON errors like every other.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError(Error::invalid("invalid_query", e.body_text())))
    }
}

/// Path parameters whose decoding failures are JSON errors like every other.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError(Error::invalid("invalid_path", e.body_text())))
    }
}

/// The resolved client address, put into request extensions by the client-address middleware.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Who is calling: address and user agent, for rate limits and the audit log.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|c| c.0)
            .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Self(ClientInfo { ip: ip.map(|ip| ip.to_string()), user_agent }))
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A signed-in host or admin (401 otherwise).
#[derive(Debug, Clone)]
pub struct SignedIn(pub AuthUser);

impl FromRequestParts<App> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(found) = parts.extensions.get::<AuthUser>() {
            return Ok(Self(found.clone()));
        }
        let name = super::session_cookie_name(app.config());
        let token = cookie(&parts.headers, name).unwrap_or_default();
        match accounts::authenticate(app, token).await? {
            Some(auth) => {
                parts.extensions.insert(auth.clone());
                Ok(Self(auth))
            }
            None => Err(ApiError(Error::unauthenticated("not_signed_in", "sign in first"))),
        }
    }
}

/// A signed-in admin (401 when not signed in, 403 for hosts).
#[derive(Debug, Clone)]
pub struct Admin(pub AuthUser);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let SignedIn(auth) = SignedIn::from_request_parts(parts, app).await?;
        if !auth.user.is_admin() {
            return Err(ApiError(Error::forbidden("admin_only", "only administrators may do this")));
        }
        Ok(Self(auth))
    }
}

/// Who calls an `/api/admin/*` route: an administrator's session, or an admin API token presented as
/// `Authorization: Bearer cfm_…` (which wins when both come). Either may look; see [`ActingAdmin`] to act.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub actor: Actor,
    pub scope: ApiTokenScope,
}

impl FromRequestParts<App> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ip = Client::from_request_parts(parts, app).await?.0.ip;
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer {
            let caller = tokens::authenticate(app, token).await?;
            return Ok(Self { actor: caller.actor(ip), scope: caller.token.scope });
        }
        let Admin(auth) = Admin::from_request_parts(parts, app).await?;
        Ok(Self { actor: auth.user.actor(ip), scope: ApiTokenScope::Admin })
    }
}

/// An admin caller allowed to act: an administrator's session or an `admin` token. A `read` token gets
/// `403 read_only_token`.
#[derive(Debug, Clone)]
pub struct ActingAdmin(pub Actor);

impl FromRequestParts<App> for ActingAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let caller = AdminCaller::from_request_parts(parts, app).await?;
        if caller.scope != ApiTokenScope::Admin {
            return Err(ApiError(Error::forbidden(
                "read_only_token",
                "this API token has the read scope: it may look but not act",
            )));
        }
        Ok(Self(caller.actor))
    }
}
