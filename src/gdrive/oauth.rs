//! Google's OAuth 2.0 for web server applications: the consent URL (authorization code with PKCE S256 and
//! `state`, offline access), the code exchange, access tokens from the refresh token, and revocation.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::DriveError;
use super::client::{AccessToken, Google, GoogleError, form, rejected, retry_after};
use crate::secret::Secret;

/// The only scope confctl asks for: files confctl itself created, nothing else in the host's Drive.
pub const DRIVE_FILE_SCOPE: &str = "https://www.googleapis.com/auth/drive.file";

/// An access token is used until this long before Google said it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The unreserved characters RFC 7636 allows in a code verifier.
const VERIFIER_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// A PKCE pair: the verifier stays on the server, the challenge goes to Google with the consent request.
#[derive(Debug)]
pub struct Pkce {
    pub verifier: Secret,
    pub challenge: String,
}

impl Pkce {
    /// 64 characters (about 380 bits) from the verifier alphabet; the challenge is their S256 form.
    pub fn new() -> Self {
        let verifier = crate::ids::random_chars(VERIFIER_ALPHABET, 64);
        let challenge = challenge_of(&verifier);
        Self { verifier: Secret::new(verifier), challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(verifier))`, the S256 method.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What the code exchange gives.
#[derive(Debug)]
pub struct Grant {
    pub(super) access: AccessToken,
    /// Present for `access_type=offline` with `prompt=consent`.
    pub refresh_token: Option<Secret>,
    /// The scopes the host actually granted (granular consent lets them untick ours).
    pub scope: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    #[serde(default)]
    scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenResponse(..)")
    }
}

impl Google {
    /// Where the host's browser goes to consent.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str, challenge: &str) -> url::Url {
        let mut url = self.settings.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", DRIVE_FILE_SCOPE)
            .append_pair("access_type", "offline")
            // Consent every time, so Google issues a refresh token even to an account that granted before.
            .append_pair("prompt", "consent")
            .append_pair("state", state)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        url
    }

    /// Exchanges an authorization code, proving with the verifier and the very redirect URI of the request.
    pub async fn exchange_code(&self, code: &str, verifier: &Secret, redirect_uri: &str) -> Result<Grant, DriveError> {
        let body = form(&[
            ("code", code),
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose()),
            ("redirect_uri", redirect_uri),
            ("grant_type", "authorization_code"),
            ("code_verifier", verifier.expose()),
        ]);
        let response = self.token_request(body).await?;
        Ok(Grant {
            access: access_token(&response),
            refresh_token: response.refresh_token.map(Secret::new),
            scope: response.scope,
        })
    }

    /// A fresh access token from a refresh token. `Reconnect` when Google no longer honours it.
    pub(super) async fn refresh(&self, refresh_token: &Secret) -> Result<AccessToken, DriveError> {
        let body = form(&[
            ("client_id", &self.settings.client_id),
            ("client_secret", self.settings.client_secret.expose()),
            ("refresh_token", refresh_token.expose()),
            ("grant_type", "refresh_token"),
        ]);
        Ok(access_token(&self.token_request(body).await?))
    }

    /// The token endpoint, retried on 429, 5xx and network failures. `invalid_grant` (a code or refresh
    /// token that is unknown, used, expired or revoked) is `Reconnect`.
    async fn token_request(&self, body: String) -> Result<TokenResponse, DriveError> {
        let retry = self.settings.retry;
        let mut failures = 0;
        loop {
            let sent = self
                .http
                .post(self.settings.token_url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let wait = match sent {
                Ok(r) if r.status().is_success() => {
                    return r.json::<TokenResponse>().await.map_err(|err| {
                        tracing::warn!(%err, "Google's token endpoint answered something that is not a token");
                        DriveError::Unavailable
                    });
                }
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => retry_after(&r),
                Ok(r) => {
                    let status = r.status().as_u16();
                    let error = GoogleError::read(r).await;
                    if error.reason == "invalid_grant" {
                        return Err(DriveError::Reconnect);
                    }
                    return Err(rejected("the token request", status, error));
                }
                Err(err) => {
                    tracing::warn!(err = %err.without_url(), "cannot reach Google's token endpoint");
                    None
                }
            };
            failures += 1;
            if failures >= retry.attempts {
                return Err(DriveError::Unavailable);
            }
            tokio::time::sleep(retry.delay(failures - 1, wait)).await;
        }
    }

    /// Revokes a token (and with a refresh token, the whole grant). Not retried: the host is waiting, and
    /// the token is deleted here either way.
    pub async fn revoke(&self, token: &Secret) -> Result<(), DriveError> {
        let response = self
            .http
            .post(self.settings.revoke_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form(&[("token", token.expose())]))
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(err = %err.without_url(), "cannot reach Google's revocation endpoint");
                DriveError::Unavailable
            })?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status().as_u16();
        let error = GoogleError::read(response).await;
        // Already revoked at Google (the host removed access there): what we wanted.
        if error.reason == "invalid_token" {
            return Ok(());
        }
        if status == 429 || status >= 500 {
            return Err(DriveError::Unavailable);
        }
        Err(rejected("the revocation", status, error))
    }
}

fn access_token(response: &TokenResponse) -> AccessToken {
    let lifetime = Duration::from_secs(response.expires_in.unwrap_or(3600)).saturating_sub(EXPIRY_MARGIN);
    AccessToken {
        token: Secret::new(response.access_token.clone()),
        fresh_until: tokio::time::Instant::now() + lifetime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s() {
        // The example of RFC 7636, appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::new();
        assert_eq!(pkce.verifier.expose().len(), 64);
        assert_eq!(pkce.challenge, challenge_of(pkce.verifier.expose()));
    }
}
