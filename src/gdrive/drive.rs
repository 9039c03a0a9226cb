//! Drive API v3 for one connected account: folders found or created by name under their parent, and files
//! uploaded with the resumable protocol (created, or updated in place when their id is known). Every call
//! carries the account's access token; a 401 refreshes it and retries once; 429, 5xx and rate-limit 403s
//! are retried with backoff; an upload that breaks asks Google how much arrived and goes on from there.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::DriveError;
use super::client::{Google, GoogleError, rejected, retry_after};
use crate::secret::Secret;

const FOLDER_MIME: &str = "application/vnd.google-apps.folder";

/// Resumable sessions restarted from scratch (Google forgot one) before giving up on a file.
const SESSION_RESTARTS: u32 = 2;

/// What to upload: a file on disk (read a chunk at a time) or bytes in memory.
#[derive(Debug, Clone)]
pub enum Source {
    Path(PathBuf),
    Bytes(Bytes),
}

impl Source {
    async fn len(&self) -> Result<u64, DriveError> {
        match self {
            Self::Path(path) => Ok(tokio::fs::metadata(path).await.map_err(|e| read_error(path, e))?.len()),
            Self::Bytes(bytes) => Ok(bytes.len() as u64),
        }
    }

    /// `len` bytes from `offset`.
    async fn chunk(&self, offset: u64, len: usize) -> Result<Bytes, DriveError> {
        match self {
            Self::Path(path) => {
                let mut file = tokio::fs::File::open(path).await.map_err(|e| read_error(path, e))?;
                file.seek(std::io::SeekFrom::Start(offset)).await.map_err(|e| read_error(path, e))?;
                let mut buf = vec![0; len];
                file.read_exact(&mut buf).await.map_err(|e| read_error(path, e))?;
                Ok(Bytes::from(buf))
            }
            Self::Bytes(bytes) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(bytes.len());
                Ok(bytes.slice(start..(start + len).min(bytes.len())))
            }
        }
    }
}

fn read_error(path: &std::path::Path, source: std::io::Error) -> DriveError {
    DriveError::Read { path: path.to_owned(), source }
}

/// One call's outcome before retries are decided.
enum Attempt {
    /// Google answered something the caller handles (2xx, 308, 404).
    Answer(Response),
    /// The access token was refused and a new one is in the cache: go again at once.
    Refreshed,
    /// Worth retrying after a pause (at least `Retry-After` when Google sent one).
    Transient(Option<std::time::Duration>),
}

/// Drive as one connected account sees it.
#[derive(Debug)]
pub struct Drive<'a> {
    google: &'a Google,
    /// The key of this account's cached access token (confctl's user id).
    account: String,
    refresh_token: Secret,
}

/// An uploaded file's id, and whether an existing file was updated (rather than a new one made).
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub file_id: String,
    pub updated: bool,
    pub size: u64,
}

impl Google {
    /// Drive for the account whose refresh token this is; `account` keys its cached access token.
    pub fn drive(&self, account: &str, refresh_token: Secret) -> Drive<'_> {
        Drive { google: self, account: account.to_owned(), refresh_token }
    }
}

/// Escapes a string for a single-quoted literal of a Drive query (`\` and `'`).
pub fn query_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Drive<'_> {
    fn api(&self, path: &str) -> url::Url {
        let base = self.google.settings.drive_url.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| self.google.settings.drive_url.clone())
    }

    /// The account's access token: the cached one, or a fresh one from the refresh token.
    pub async fn access_token(&self) -> Result<Secret, DriveError> {
        if let Some(token) = self.google.cached_token(&self.account) {
            return Ok(token);
        }
        let fresh = self.google.refresh(&self.refresh_token).await?;
        let token = fresh.token.clone();
        self.google.cache_token(&self.account, fresh);
        Ok(token)
    }

    /// Sends once with the access token and sorts the answer. `refreshed`: a 401 was already answered by a
    /// refresh, so a second one means Google no longer accepts this account.
    async fn attempt(
        &self,
        request: &(dyn Fn() -> RequestBuilder + Sync),
        refreshed: &mut bool,
    ) -> Result<Attempt, DriveError> {
        let token = self.access_token().await?;
        let response = match request().bearer_auth(token.expose()).send().await {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(err = %err.without_url(), "Google Drive request failed");
                return Ok(Attempt::Transient(None));
            }
        };
        let status = response.status();
        if status.is_success() || status.as_u16() == 308 || status == StatusCode::NOT_FOUND {
            return Ok(Attempt::Answer(response));
        }
        if status == StatusCode::UNAUTHORIZED {
            self.google.forget_token(&self.account);
            if std::mem::replace(refreshed, true) {
                return Err(DriveError::Reconnect);
            }
            return Ok(Attempt::Refreshed);
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Ok(Attempt::Transient(retry_after(&response)));
        }
        let wait = retry_after(&response);
        let error = GoogleError::read(response).await;
        match error.reason.as_str() {
            "storageQuotaExceeded" | "quotaExceeded" => Err(DriveError::QuotaExceeded),
            "rateLimitExceeded" | "userRateLimitExceeded" => Ok(Attempt::Transient(wait)),
            _ => Err(rejected("a Drive request", status.as_u16(), error)),
        }
    }

    /// Sends until Google answers or the retry policy gives up.
    async fn call(&self, request: &(dyn Fn() -> RequestBuilder + Sync)) -> Result<Response, DriveError> {
        let retry = self.google.settings.retry;
        let mut refreshed = false;
        let mut failures = 0;
        loop {
            match self.attempt(request, &mut refreshed).await? {
                Attempt::Answer(response) => return Ok(response),
                Attempt::Refreshed => {}
                Attempt::Transient(wait) => {
                    failures += 1;
                    if failures >= retry.attempts {
                        return Err(DriveError::Unavailable);
                    }
                    tokio::time::sleep(retry.delay(failures - 1, wait)).await;
                }
            }
        }
    }

    /// A JSON answer from a 2xx, or why not.
    async fn json(&self, what: &str, response: Response) -> Result<serde_json::Value, DriveError> {
        let status = response.status();
        if !status.is_success() {
            return Err(rejected(what, status.as_u16(), GoogleError::read(response).await));
        }
        response.json().await.map_err(|err| {
            tracing::warn!(%err, "Google Drive answered {what} with something that is not JSON");
            DriveError::Unavailable
        })
    }

    /// The Google account's email address (`about.get`), to show which Drive is connected.
    pub async fn email(&self) -> Result<Option<String>, DriveError> {
        let mut url = self.api("/drive/v3/about");
        url.query_pairs_mut().append_pair("fields", "user(emailAddress)");
        let response = self.call(&|| self.google.http.get(url.clone())).await?;
        let about = self.json("about.get", response).await?;
        Ok(about["user"]["emailAddress"].as_str().map(str::to_owned))
    }

    /// True when the file or folder exists and is not in the trash.
    pub async fn exists(&self, file_id: &str) -> Result<bool, DriveError> {
        let mut url = self.api(&format!("/drive/v3/files/{}", encode(file_id)));
        url.query_pairs_mut().append_pair("fields", "id,trashed");
        let response = self.call(&|| self.google.http.get(url.clone())).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let file = self.json("files.get", response).await?;
        Ok(file["trashed"].as_bool() != Some(true))
    }

    /// The folder at `path` below My Drive (`["confctl", room, lecture]`), each level found by name under its
    /// parent or created. Returns the last folder's id.
    pub async fn ensure_folder(&self, path: &[&str]) -> Result<String, DriveError> {
        let mut parent = "root".to_owned();
        for name in path {
            parent = match self.find_folder(name, &parent).await? {
                Some(id) => id,
                None => self.create_folder(name, &parent).await?,
            };
        }
        Ok(parent)
    }

    async fn find_folder(&self, name: &str, parent: &str) -> Result<Option<String>, DriveError> {
        let q = format!(
            "name = {} and mimeType = '{FOLDER_MIME}' and {} in parents and trashed = false",
            query_literal(name),
            query_literal(parent)
        );
        let mut url = self.api("/drive/v3/files");
        url.query_pairs_mut()
            .append_pair("q", &q)
            .append_pair("spaces", "drive")
            .append_pair("orderBy", "createdTime")
            .append_pair("fields", "files(id)")
            .append_pair("pageSize", "1");
        let response = self.call(&|| self.google.http.get(url.clone())).await?;
        let list = self.json("files.list", response).await?;
        Ok(list["files"][0]["id"].as_str().map(str::to_owned))
    }

    async fn create_folder(&self, name: &str, parent: &str) -> Result<String, DriveError> {
        let mut url = self.api("/drive/v3/files");
        url.query_pairs_mut().append_pair("fields", "id");
        let body = json!({ "name": name, "mimeType": FOLDER_MIME, "parents": [parent] });
        let response = self.call(&|| self.google.http.post(url.clone()).json(&body)).await?;
        let file = self.json("files.create", response).await?;
        file["id"].as_str().map(str::to_owned).ok_or(DriveError::Unavailable)
    }

    /// Uploads `source` as `name` into `folder`: an update of `existing` when given and still there (the
    /// id stays), a new file otherwise. Resumable, in chunks of the configured size.
    pub async fn upload(
        &self,
        folder: &str,
        name: &str,
        mime: &str,
        source: &Source,
        existing: Option<&str>,
    ) -> Result<Uploaded, DriveError> {
        let total = source.len().await?;
        let mut restarts = 0;
        loop {
            let (session, updated) = match existing {
                Some(id) => match self.start_session(Some(id), folder, name, mime, total).await? {
                    Some(session) => (session, true),
                    // Gone (the host deleted it in Drive): make a new one.
                    None => (self.new_session(folder, name, mime, total).await?, false),
                },
                None => (self.new_session(folder, name, mime, total).await?, false),
            };
            match self.send_content(&session, source, total).await? {
                Some(file_id) => return Ok(Uploaded { file_id, updated, size: total }),
                None if restarts < SESSION_RESTARTS => {
                    restarts += 1;
                    tracing::info!(name, "Google Drive forgot an upload session; starting it again");
                }
                None => return Err(DriveError::Unavailable),
            }
        }
    }

    async fn new_session(&self, folder: &str, name: &str, mime: &str, total: u64) -> Result<url::Url, DriveError> {
        self.start_session(None, folder, name, mime, total)
            .await?
            .ok_or(DriveError::Rejected { status: 404, reason: "parentNotFound".into() })
    }

    /// Opens a resumable session (`files.create`, or `files.update` of `existing`); its URI is in
    /// `Location`. `None` when the file to update (or the parent folder) does not exist.
    async fn start_session(
        &self,
        existing: Option<&str>,
        folder: &str,
        name: &str,
        mime: &str,
        total: u64,
    ) -> Result<Option<url::Url>, DriveError> {
        let (method, mut url, metadata) = match existing {
            // `parents` cannot be written by an update: the file stays where it is.
            Some(id) => (
                Method::PATCH,
                self.api(&format!("/upload/drive/v3/files/{}", encode(id))),
                json!({ "name": name, "mimeType": mime }),
            ),
            None => (
                Method::POST,
                self.api("/upload/drive/v3/files"),
                json!({ "name": name, "mimeType": mime, "parents": [folder] }),
            ),
        };
        url.query_pairs_mut().append_pair("uploadType", "resumable").append_pair("fields", "id");
        let response = self
            .call(&|| {
                self.google
                    .http
                    .request(method.clone(), url.clone())
                    .header("X-Upload-Content-Type", mime)
                    .header("X-Upload-Content-Length", total)
                    .json(&metadata)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(rejected("an upload session", response.status().as_u16(), GoogleError::read(response).await));
        }
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
        let session = location.and_then(|l| url::Url::parse(l).ok()).ok_or_else(|| {
            tracing::warn!("Google Drive opened an upload session without a Location");
            DriveError::Unavailable
        })?;
        Ok(Some(session))
    }

    /// Sends the content to a session, chunk by chunk; after a failed chunk, asks how much arrived
    /// (`Content-Range: bytes */TOTAL`) and goes on from there. The file id when done; `None` when the
    /// session is gone (404) and must start over.
    async fn send_content(
        &self,
        session: &url::Url,
        source: &Source,
        total: u64,
    ) -> Result<Option<String>, DriveError> {
        let retry = self.google.settings.retry;
        let chunk_size = self.google.settings.chunk_size as u64;
        let mut offset = 0u64;
        let mut failures = 0;
        loop {
            let response = if total > 0 && offset >= total {
                // Everything arrived but the answer was lost: ask for the file.
                self.status_query(session, total).await?
            } else {
                let len = (total - offset).min(chunk_size);
                let chunk = source.chunk(offset, usize::try_from(len).unwrap_or(usize::MAX)).await?;
                let range = if total == 0 {
                    "bytes */0".to_owned()
                } else {
                    format!("bytes {offset}-{}/{total}", offset + len - 1)
                };
                let mut refreshed = false;
                let request = || {
                    self.google
                        .http
                        .put(session.clone())
                        .header(reqwest::header::CONTENT_RANGE, &range)
                        .body(chunk.clone())
                };
                // A chunk is never sent twice blindly: part of it may have arrived. On any failure, pause,
                // then ask Google where the upload stands.
                loop {
                    match self.attempt(&request, &mut refreshed).await? {
                        Attempt::Answer(response) => break response,
                        Attempt::Refreshed => continue,
                        Attempt::Transient(wait) => {
                            failures += 1;
                            if failures >= retry.attempts {
                                return Err(DriveError::Unavailable);
                            }
                            tokio::time::sleep(retry.delay(failures - 1, wait)).await;
                            break self.status_query(session, total).await?;
                        }
                    }
                }
            };
            match response.status().as_u16() {
                200 | 201 => {
                    let file = self.json("an upload", response).await?;
                    return file["id"].as_str().map(|id| Some(id.to_owned())).ok_or(DriveError::Unavailable);
                }
                308 => {
                    let received = received_bytes(&response);
                    if received > offset {
                        failures = 0;
                    }
                    offset = received;
                }
                404 | 410 => return Ok(None),
                status => return Err(rejected("an upload", status, GoogleError::read(response).await)),
            }
        }
    }

    /// `PUT` with `Content-Range: bytes */TOTAL` and no body: Google answers 308 with what it has, or the
    /// finished file.
    async fn status_query(&self, session: &url::Url, total: u64) -> Result<Response, DriveError> {
        self.call(&|| {
            self.google
                .http
                .put(session.clone())
                .header(reqwest::header::CONTENT_RANGE, format!("bytes */{total}"))
                .header(reqwest::header::CONTENT_LENGTH, 0)
        })
        .await
    }
}

/// How many bytes a 308 says arrived: `Range: bytes=0-N` means N + 1; no `Range`, none.
fn received_bytes(response: &Response) -> u64 {
    response
        .headers()
        .get(reqwest::header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes=0-"))
        .and_then(|end| end.trim().parse::<u64>().ok())
        .map_or(0, |end| end + 1)
}

/// A path segment (file ids are URL-safe already; this keeps a damaged one from changing the path).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_literals_escape_quotes_and_backslashes() {
        assert_eq!(query_literal("Prof. O'Brien's \\ class"), "'Prof. O\\'Brien\\'s \\\\ class'");
    }
}
