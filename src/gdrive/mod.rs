//! Google Drive for hosts: connecting a Drive (OAuth 2.0 authorization code with PKCE and `state`, scope
//! `drive.file`), keeping its refresh token sealed, disconnecting (revoked at Google), rotating the sealing
//! key, and uploading a lecture's files into `confctl/<room>/<date> <lecture>` so that exporting it again
//! updates the same files.
//!
//! `confctl export --to gdrive` and the lecture page's "Export to Drive" call [`upload_lecture`] with the
//! files the renderers wrote; everything Google-specific stays in this module.

mod client;
mod drive;
mod oauth;
mod seal;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use client::{CHUNK_UNIT, Google, RetryPolicy, Settings};
pub use drive::{Drive, Source, Uploaded, query_literal};
pub use oauth::{DRIVE_FILE_SCOPE, Pkce, challenge_of};
pub use seal::Rotation;

use crate::accounts::{AuthUser, ClientInfo};
use crate::app::App;
use crate::audit::{self, Actor};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids;
use crate::store::{DriveAuthorizationRecord, DriveConnectionRecord};

/// Where Google sends the host's browser back, below the instance's public address.
pub const CALLBACK_PATH: &str = "/auth/google/callback";

/// How long a host has to consent at Google before the request expires.
const AUTHORIZATION_TTL: Duration = Duration::from_secs(10 * 60);

/// What went wrong with Drive, in terms a host (or the CLI) can act on.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("Google Drive export is not configured on this instance")]
    NotConfigured,
    #[error("Google Drive is not connected: connect it on the account page")]
    NotConnected,
    #[error("Google Drive access was revoked or has expired: reconnect Google Drive on the account page")]
    Reconnect,
    #[error("the Google Drive storage quota is exceeded: free space in Drive, then export again")]
    QuotaExceeded,
    /// Google refused a request confctl made (logged with Google's message where it happened).
    #[error("Google Drive refused the request ({status} {reason})")]
    Rejected { status: u16, reason: String },
    #[error("Google Drive is not answering; try again later")]
    Unavailable,
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Other(#[from] Error),
}

impl DriveError {
    /// The stable code the HTTP API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "drive_not_configured",
            Self::NotConnected => "drive_not_connected",
            Self::Reconnect => "drive_reconnect",
            Self::QuotaExceeded => "drive_quota_exceeded",
            Self::Rejected { .. } => "drive_refused",
            Self::Unavailable => "drive_unavailable",
            Self::Read { .. } => "internal",
            Self::Other(err) => err.code(),
        }
    }
}

impl From<DriveError> for Error {
    fn from(err: DriveError) -> Self {
        let code = err.code();
        match err {
            DriveError::NotConfigured
            | DriveError::NotConnected
            | DriveError::Reconnect
            | DriveError::QuotaExceeded => Error::conflict(code, err.to_string()),
            DriveError::Rejected { .. } => {
                Error::unavailable(code, "Google Drive refused the request; the details are in the server log")
            }
            DriveError::Unavailable => Error::unavailable(code, "Google Drive is not answering; try again shortly"),
            DriveError::Read { .. } => Error::Internal(anyhow::Error::new(err)),
            DriveError::Other(err) => err,
        }
    }
}

/// The redirect URI registered with Google: `<public_url>/auth/google/callback`, or the first domain over
/// HTTPS, or the listen address for a development instance.
pub fn redirect_uri(config: &Config) -> String {
    let base = match (&config.public_url, config.domains.first()) {
        (Some(url), _) => url.as_str().trim_end_matches('/').to_owned(),
        (None, Some(domain)) => format!("https://{domain}"),
        (None, None) => format!("http://{}", config.listen),
    };
    format!("{base}{CALLBACK_PATH}")
}

fn google(app: &App) -> Result<&Google, DriveError> {
    app.google().ok_or(DriveError::NotConfigured)
}

/// A host's Drive as the account page shows it. The token itself is never shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveStatus {
    /// Whether this instance offers Drive at all.
    pub configured: bool,
    pub connected: bool,
    /// The Google account connected, when Google told us.
    pub email: Option<String>,
    pub connected_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn status(app: &App, user_id: &str) -> Result<DriveStatus> {
    let connection = app.store().drive_connection(user_id).await?;
    Ok(DriveStatus {
        configured: app.google().is_some(),
        connected: connection.is_some(),
        email: connection.as_ref().and_then(|c| c.google_email.clone()),
        connected_at: connection.map(|c| crate::time::to_datetime(c.connected_at)),
    })
}

/// Starts connecting: remembers a fresh `state` (bound to this sign-in session) and PKCE verifier, and
/// returns Google's consent URL for the browser to open.
pub async fn start_connect(app: &App, auth: &AuthUser) -> Result<url::Url> {
    let google = google(app)?;
    let pkce = Pkce::new();
    let state = ids::new_secret();
    let redirect = redirect_uri(app.config());
    let now = app.clock().now_ms();
    app.store()
        .insert_drive_authorization(&DriveAuthorizationRecord {
            state_hash: ids::secret_hash(&state),
            user_id: auth.user.id.clone(),
            session_id: auth.session_id.clone(),
            code_verifier: pkce.verifier,
            redirect_uri: redirect.clone(),
            created_at: now,
            expires_at: now + AUTHORIZATION_TTL.as_millis() as i64,
        })
        .await?;
    Ok(google.authorize_url(&redirect, &state, &pkce.challenge))
}

/// The query Google sends the browser back with.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    /// `access_denied` when the host said no.
    pub error: Option<String>,
}

/// Finishes connecting: the `state` must be one this very session started, unused and unexpired; the code
/// is exchanged with the PKCE verifier and the same redirect URI; the refresh token is sealed and stored.
pub async fn finish_connect(
    app: &App,
    auth: &AuthUser,
    callback: Callback,
    client: &ClientInfo,
) -> Result<DriveStatus> {
    let google = google(app)?;
    let refused = || {
        Error::invalid(
            "drive_state_invalid",
            "this Google sign-in does not match one started here, was already used or has expired: connect again",
        )
    };
    let state = callback.state.as_deref().filter(|s| !s.is_empty()).ok_or_else(refused)?;
    // Taken out before anything is checked: whatever the outcome, a `state` works once.
    let pending = app.store().take_drive_authorization(&ids::secret_hash(state)).await?.ok_or_else(refused)?;
    if pending.session_id != auth.session_id
        || pending.user_id != auth.user.id
        || pending.expires_at < app.clock().now_ms()
    {
        return Err(refused());
    }
    if let Some(error) = callback.error {
        let message = if error == "access_denied" {
            "Google Drive was not connected: access was not granted at Google".to_owned()
        } else {
            format!("Google did not connect Drive ({error})")
        };
        return Err(Error::invalid("drive_consent_denied", message));
    }
    let code = callback.code.filter(|c| !c.is_empty()).ok_or_else(refused)?;
    let grant =
        google.exchange_code(&code, &pending.code_verifier, &pending.redirect_uri).await.map_err(|err| match err {
            DriveError::Reconnect => {
                Error::invalid("drive_code_refused", "Google refused the sign-in code: connect again")
            }
            other => other.into(),
        })?;
    let Some(refresh_token) = grant.refresh_token else {
        tracing::warn!("Google's code exchange gave no refresh token");
        return Err(DriveError::Rejected { status: 200, reason: "no_refresh_token".into() }.into());
    };
    if !grant.scope.split_whitespace().any(|s| s == DRIVE_FILE_SCOPE) {
        // Granular consent: the host unticked Drive. Give the rest back rather than keep a useless grant.
        let _ = google.revoke(&refresh_token).await;
        return Err(Error::invalid(
            "drive_scope_missing",
            "Google Drive was not connected: allow confctl to see and add the files it creates in your Drive",
        ));
    }
    let user_id = &auth.user.id;
    google.cache_token(user_id, grant.access);
    let drive = google.drive(user_id, refresh_token.clone());
    // Which account it is, to show; not worth failing the connection over.
    let email = drive.email().await.unwrap_or_else(|err| {
        tracing::info!(%err, "could not read the connected Google account's address");
        None
    });
    let key = seal::current(app).await?;
    app.store()
        .upsert_drive_connection(&DriveConnectionRecord {
            user_id: user_id.clone(),
            refresh_token: key.seal(user_id, &refresh_token)?,
            key_version: key.version,
            scope: grant.scope,
            google_email: email.clone(),
            connected_at: app.clock().now_ms(),
        })
        .await?;
    let actor = auth.user.actor(client.ip.clone());
    audit::record(
        app,
        &actor,
        "drive.connect",
        Some(("user", user_id)),
        None,
        serde_json::json!({ "googleAccount": email }),
    )
    .await;
    status(app, user_id).await
}

/// What disconnecting did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    /// Google confirmed the revocation. `false`: Google could not be reached or refused; the token was
    /// deleted here all the same, and the host may remove confctl's access in their Google account.
    pub revoked: bool,
}

/// Revokes the host's grant at Google and deletes the token, even when Google cannot be reached.
pub async fn disconnect(app: &App, auth: &AuthUser, client: &ClientInfo) -> Result<Disconnected> {
    let user_id = &auth.user.id;
    let connection = app.store().drive_connection(user_id).await?.ok_or(DriveError::NotConnected)?;
    let revoked = match (app.google(), open(app, &connection).await?) {
        (Some(google), Some(token)) => {
            google.forget_token(user_id);
            match google.revoke(&token).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::warn!(%err, "could not revoke a Drive grant at Google; deleting it here anyway");
                    false
                }
            }
        }
        _ => false,
    };
    app.store().delete_drive_connection(user_id).await?;
    let actor = auth.user.actor(client.ip.clone());
    audit::record(
        app,
        &actor,
        "drive.disconnect",
        Some(("user", user_id)),
        None,
        serde_json::json!({ "revoked": revoked }),
    )
    .await;
    Ok(Disconnected { revoked })
}

/// Re-seals every refresh token with a new key version and deletes the old versions (`confctl admin drive
/// rotate-key`).
pub async fn rotate_key(app: &App, actor: &Actor) -> Result<Rotation> {
    let rotation = seal::rotate(app).await?;
    audit::record(app, actor, "drive.rotate_key", None, None, serde_json::to_value(&rotation).unwrap_or_default())
        .await;
    Ok(rotation)
}

/// The refresh token of a connection; `None` when no key opens it any more.
async fn open(app: &App, connection: &DriveConnectionRecord) -> Result<Option<crate::secret::Secret>> {
    let key = seal::version(app, connection.key_version).await?;
    let token = key.and_then(|k| k.open(&connection.user_id, &connection.refresh_token));
    if token.is_none() {
        tracing::error!(user = %connection.user_id, version = connection.key_version, "a sealed Drive token does not open");
    }
    Ok(token)
}

/// One file of a lecture export.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// The name in Drive, unique within the lecture (`lecture.pdf`, `files/slides.pdf`).
    pub name: String,
    pub mime: String,
    pub source: Source,
}

/// Where a lecture's export went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedLecture {
    pub folder_id: String,
    pub files: Vec<ExportedFile>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportedFile {
    pub name: String,
    pub file_id: String,
    pub size: u64,
    /// An earlier export's file was updated in place (rather than a new one made).
    pub updated: bool,
}

/// Uploads a lecture's files to the host's Drive, into `confctl/<room_name>/<folder_label>` (created on
/// demand; a lecture exported before goes back into its folder), updating the files an earlier export made.
///
/// `folder_label` is the caller's `<date> <lecture>` text. A consent that Google no longer honours ends the
/// connection (`Reconnect`: the host connects again); quota and outage errors leave it in place.
pub async fn upload_lecture(
    app: &App,
    user_id: &str,
    lecture_id: &str,
    room_name: &str,
    folder_label: &str,
    files: Vec<ExportFile>,
) -> Result<ExportedLecture, DriveError> {
    let google = google(app)?;
    let connection = app.store().drive_connection(user_id).await?.ok_or(DriveError::NotConnected)?;
    let token = open(app, &connection).await?.ok_or(DriveError::Reconnect)?;
    let drive = google.drive(user_id, token);
    let result = upload_with(app, &drive, user_id, lecture_id, &["confctl", room_name, folder_label], files).await;
    if matches!(result, Err(DriveError::Reconnect)) {
        // The grant is dead for good (revoked, expired, password change): keeping it would only fail again.
        google.forget_token(user_id);
        app.store().delete_drive_connection(user_id).await?;
    }
    result
}

async fn upload_with(
    app: &App,
    drive: &Drive<'_>,
    user_id: &str,
    lecture_id: &str,
    path: &[&str],
    files: Vec<ExportFile>,
) -> Result<ExportedLecture, DriveError> {
    let store = app.store();
    let folder_id = match store.drive_export_folder(user_id, lecture_id).await? {
        Some(id) if drive.exists(&id).await? => id,
        _ => drive.ensure_folder(path).await?,
    };
    store.set_drive_export_folder(user_id, lecture_id, &folder_id).await?;
    let mut exported = Vec::with_capacity(files.len());
    for file in files {
        let existing = store.drive_file_id(user_id, lecture_id, &file.name).await?;
        let uploaded = drive.upload(&folder_id, &file.name, &file.mime, &file.source, existing.as_deref()).await?;
        store.set_drive_file(user_id, lecture_id, &file.name, &uploaded.file_id, uploaded.size).await?;
        exported.push(ExportedFile {
            name: file.name,
            file_id: uploaded.file_id,
            size: uploaded.size,
            updated: uploaded.updated,
        });
    }
    Ok(ExportedLecture { folder_id, files: exported })
}
