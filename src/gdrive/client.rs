//! The HTTP side of Google shared by OAuth and Drive: endpoints, the OAuth client's credentials, one
//! connection pool, the retry policy, the cache of access tokens, and how Google's error bodies read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::DriveError;
use crate::config::GoogleConfig;
use crate::secret::Secret;

/// Drive takes resumable chunks in multiples of 256 KiB (all but the last).
pub const CHUNK_UNIT: usize = 256 * 1024;

/// How often and how patiently to retry what Google says is worth retrying (429, 5xx, rate-limit 403s,
/// network failures): exponential backoff from `base_delay`, doubling, at most `max_delay`, with jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Google's guidance: start around a second, double, give up after about a minute of trying.
    fn default() -> Self {
        Self { attempts: 7, base_delay: Duration::from_secs(1), max_delay: Duration::from_secs(32) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): full backoff plus up to half again as
    /// jitter, so many clients failing together do not come back together; never less than `at_least`
    /// (a `Retry-After`).
    pub fn delay(&self, retry: u32, at_least: Option<Duration>) -> Duration {
        let backoff = self.base_delay.saturating_mul(2u32.saturating_pow(retry.min(16))).min(self.max_delay);
        let [r] = crate::ids::random_bytes::<1>();
        let jitter = backoff.mul_f64(f64::from(r) / 510.0);
        (backoff + jitter).max(at_least.unwrap_or_default())
    }
}

/// Everything needed to talk to Google for this instance.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: String,
    pub client_secret: Secret,
    pub auth_url: url::Url,
    pub token_url: url::Url,
    pub revoke_url: url::Url,
    /// `https://www.googleapis.com`: Drive is under `/drive/v3`, uploads under `/upload/drive/v3`.
    pub drive_url: url::Url,
    pub retry: RetryPolicy,
    /// Bytes per resumable-upload request, a multiple of [`CHUNK_UNIT`].
    pub chunk_size: usize,
}

impl Settings {
    /// From the configuration; `None` while the OAuth client is not configured.
    pub fn from_config(google: &GoogleConfig) -> Option<Self> {
        if !google.drive_configured() {
            return None;
        }
        Some(Self {
            client_id: google.client_id.clone()?.trim().to_owned(),
            client_secret: google.client_secret.clone()?,
            auth_url: google.auth_url.clone(),
            token_url: google.token_url.clone(),
            revoke_url: google.revoke_url.clone(),
            drive_url: google.drive_url.clone(),
            retry: RetryPolicy::default(),
            // 8 MiB: few requests per file, little memory per upload, and little to resend after a break.
            chunk_size: 32 * CHUNK_UNIT,
        })
    }
}

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
pub(super) struct AccessToken {
    pub token: Secret,
    pub fresh_until: Instant,
}

/// The Google client of this instance: cheap to share, holds the access tokens it got.
#[derive(Debug)]
pub struct Google {
    pub(super) settings: Settings,
    pub(super) http: reqwest::Client,
    /// Access tokens by account id, until shortly before they expire.
    tokens: Mutex<HashMap<String, AccessToken>>,
}

impl Google {
    pub fn new(mut settings: Settings) -> anyhow::Result<Self> {
        settings.chunk_size = (settings.chunk_size / CHUNK_UNIT).max(1) * CHUNK_UNIT;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Long enough for one chunk over a slow uplink; a stalled request is retried from the offset
            // Google has.
            .timeout(Duration::from_secs(300))
            .build()?;
        Ok(Self { settings, http, tokens: Mutex::default() })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn cached_token(&self, account: &str) -> Option<Secret> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(account).filter(|t| t.fresh_until > Instant::now()).map(|t| t.token.clone())
    }

    pub(super) fn cache_token(&self, account: &str, token: AccessToken) {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(account.to_owned(), token);
    }

    /// Forgets an account's access token (Google refused it, or the account disconnected).
    pub(super) fn forget_token(&self, account: &str) {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }
}

/// The error Google's APIs answer with: `{"error": {"code", "message", "errors": [{"reason"}], "status"}}`
/// for Drive, `{"error": "invalid_grant", "error_description"}` for OAuth.
#[derive(Debug, Default)]
pub(super) struct GoogleError {
    /// Drive's first `errors[].reason`, its `status`, or OAuth's `error`.
    pub reason: String,
    pub message: String,
}

impl GoogleError {
    pub async fn read(response: reqwest::Response) -> Self {
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let error = &body["error"];
        if let Some(code) = error.as_str() {
            return Self {
                reason: code.to_owned(),
                message: body["error_description"].as_str().unwrap_or_default().to_owned(),
            };
        }
        let reason = error["errors"][0]["reason"].as_str().or_else(|| error["status"].as_str()).unwrap_or_default();
        Self { reason: reason.to_owned(), message: error["message"].as_str().unwrap_or_default().to_owned() }
    }
}

/// `Retry-After` in seconds, when Google sent one.
pub(super) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Logs a failed call without tokens or bodies and turns it into the error callers see.
pub(super) fn rejected(what: &str, status: u16, error: GoogleError) -> DriveError {
    tracing::warn!(status, reason = %error.reason, message = %error.message, "Google refused {what}");
    DriveError::Rejected { status, reason: error.reason }
}

/// An `application/x-www-form-urlencoded` body (the OAuth endpoints take nothing else).
pub(super) fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k, v);
    }
    out.finish()
}
