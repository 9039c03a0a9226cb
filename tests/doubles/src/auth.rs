//! Owns request authentication: the bearer-token middleware and the per-method grant checks, worded as livekit-server's `auth.go`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use livekit_api::access_token::{Claims, TokenVerifier, VideoGrants};

use crate::twirp::TwirpError;

const BEARER_PREFIX: &str = "Bearer ";

/// The middleware's verdict. The real server rejects a bad token before Twirp sees the
/// request, with a plain-text body rather than a Twirp JSON error; `Anonymous` requests go on
/// and fail later at the grant check, with a Twirp error.
#[derive(Debug)]
pub(crate) enum Caller {
    Anonymous,
    Verified(Box<Claims>),
    Rejected(String),
}

impl Caller {
    pub(crate) fn grants(&self) -> Option<&VideoGrants> {
        match self {
            Self::Verified(claims) => Some(&claims.video),
            Self::Anonymous | Self::Rejected(_) => None,
        }
    }
}

pub(crate) fn authenticate(headers: &HeaderMap, query: Option<&str>, api_key: &str, api_secret: &str) -> Caller {
    let token = match headers.get(AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().unwrap_or_default();
            match value.strip_prefix(BEARER_PREFIX) {
                Some(token) => token.to_owned(),
                None => {
                    return Caller::Rejected(format!("invalid authorization header. Must start with {BEARER_PREFIX}"));
                }
            }
        }
        // Browsers cannot set headers on some requests, so LiveKit also reads `access_token`.
        None => match query.and_then(access_token_param) {
            Some(token) => token,
            None => return Caller::Anonymous,
        },
    };
    if token.is_empty() {
        return Caller::Anonymous;
    }
    let Ok(unverified) = Claims::from_unverified(&token) else {
        return Caller::Rejected("invalid authorization token".to_owned());
    };
    // LiveKit looks the secret up by the token's issuer, so an unknown key is its own error.
    if unverified.iss != api_key {
        return Caller::Rejected("invalid API key".to_owned());
    }
    match TokenVerifier::with_api_key(api_key, api_secret).verify(&token) {
        Ok(claims) => Caller::Verified(Box::new(claims)),
        Err(err) => Caller::Rejected(format!("invalid authorization token: {err}")),
    }
}

fn access_token_param(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| pair.strip_prefix("access_token=").map(|v| v.replace('+', " ")))
}

/// Every grant failure surfaces as Twirp `unauthenticated` "permissions denied": the real
/// RoomService wraps `ErrPermissionDenied` with `twirpAuthError`, never `permission_denied`.
fn denied() -> TwirpError {
    TwirpError::unauthenticated("permissions denied")
}

/// `EnsureCreatePermission`: CreateRoom and DeleteRoom.
pub(crate) fn ensure_create(grants: Option<&VideoGrants>) -> Result<(), TwirpError> {
    match grants {
        Some(g) if g.room_create => Ok(()),
        _ => Err(denied()),
    }
}

/// `EnsureListPermission`: ListRooms.
pub(crate) fn ensure_list(grants: Option<&VideoGrants>) -> Result<(), TwirpError> {
    match grants {
        Some(g) if g.room_list => Ok(()),
        _ => Err(denied()),
    }
}

/// `EnsureAdminPermission`: every per-room method, and the token's room must be exactly the
/// request's room, so an admin token for one lecture cannot touch another.
pub(crate) fn ensure_admin(grants: Option<&VideoGrants>, room: &str) -> Result<(), TwirpError> {
    match grants {
        Some(g) if g.room_admin && g.room == room => Ok(()),
        _ => Err(denied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use livekit_api::access_token::AccessToken;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn classifies_tokens_like_the_middleware() {
        let good = AccessToken::with_api_key("key", "secret").to_jwt().unwrap();
        let other_key = AccessToken::with_api_key("other", "secret").to_jwt().unwrap();
        let bad_secret = AccessToken::with_api_key("key", "nope").to_jwt().unwrap();
        assert!(matches!(
            authenticate(&headers(&format!("Bearer {good}")), None, "key", "secret"),
            Caller::Verified(_)
        ));
        assert!(matches!(authenticate(&HeaderMap::new(), None, "key", "secret"), Caller::Anonymous));
        assert!(matches!(
            authenticate(&headers(&good), None, "key", "secret"),
            Caller::Rejected(m) if m.starts_with("invalid authorization header")
        ));
        assert!(matches!(
            authenticate(&headers(&format!("Bearer {other_key}")), None, "key", "secret"),
            Caller::Rejected(m) if m == "invalid API key"
        ));
        assert!(matches!(
            authenticate(&headers(&format!("Bearer {bad_secret}")), None, "key", "secret"),
            Caller::Rejected(m) if m.starts_with("invalid authorization token:")
        ));
        assert!(matches!(
            authenticate(&HeaderMap::new(), Some(&format!("access_token={good}")), "key", "secret"),
            Caller::Verified(_)
        ));
    }

    #[test]
    fn admin_grant_is_bound_to_its_room() {
        let grants = VideoGrants { room_admin: true, room: "a".into(), ..Default::default() };
        assert!(ensure_admin(Some(&grants), "a").is_ok());
        assert!(ensure_admin(Some(&grants), "b").is_err());
        assert!(ensure_create(Some(&grants)).is_err());
        assert!(ensure_list(None).is_err());
    }
}
