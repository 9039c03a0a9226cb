//! Files shared in a lecture: the browser uploads straight to storage through a short-lived signed URL,
//! confctl checks the result and announces it on LiveKit topic `files`; downloads are signed the same way.
//! Object keys are the server's; the uploader's file name is only ever shown and sent back on download.

use serde::{Deserialize, Serialize};

use crate::admission::Member;
use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::storage::{self, UploadTarget};
use crate::store::{FileRecord, RoomRecord, RoomStatus};
use crate::{ids, livekit};

pub const TOPIC: &str = "files";

/// A shared file as clients see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileView {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub uploader_name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub download_url: String,
}

impl From<&FileRecord> for FileView {
    fn from(f: &FileRecord) -> Self {
        Self {
            id: f.id.clone(),
            file_name: f.file_name.clone(),
            content_type: f.content_type.clone(),
            size: f.size,
            uploader_name: f.uploader_name.clone(),
            created_at: crate::time::to_datetime(f.created_at),
            download_url: format!("/api/files/{}/download", f.id),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadRequest {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

/// How to upload: send `method` to `uploadUrl` with exactly `headers`, before `expiresAt`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    pub file_id: String,
    pub upload_url: String,
    pub method: &'static str,
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// A download: a redirect to the store, or the bytes from confctl (local storage).
pub enum Download {
    Redirect(String),
    Stream {
        file: Box<FileRecord>,
        content_disposition: String,
        body: futures::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    },
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redirect(_) => f.write_str("Download::Redirect"),
            Self::Stream { file, .. } => write!(f, "Download::Stream({})", file.id),
        }
    }
}

fn validate_file_name(name: &str) -> Result<String> {
    // Keep only the last path component a browser might send, and nothing a header or a file system chokes on.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let n = base.chars().count();
    if n == 0 || n > 255 || base.chars().any(char::is_control) || base == "." || base == ".." {
        return Err(Error::invalid("invalid_file_name", "the file name must have 1 to 255 characters"));
    }
    Ok(base.to_owned())
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).filter(|e| !e.is_empty())
}

fn validate_content_type(ct: &str) -> Result<String> {
    let ct = ct.trim().to_ascii_lowercase();
    let valid = ct.len() <= 127
        && ct.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty() && !s.is_empty() && ct.chars().all(|c| c.is_ascii_alphanumeric() || "/.+-_".contains(c))
        });
    if !valid {
        return Err(Error::invalid("invalid_content_type", "contentType must be a media type such as application/pdf"));
    }
    Ok(ct)
}

/// `attachment` with the original name, safely: an ASCII fallback and the exact UTF-8 name (RFC 6266/8187).
pub fn content_disposition(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = file_name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn may_upload(room: &RoomRecord, member: &Member) -> bool {
    member.is_host() || room.guest_uploads
}

/// Starts an upload: checks the rules and the room's quota, records a pending file, and returns where to
/// send the bytes.
pub async fn request_upload(
    app: &App,
    room: &RoomRecord,
    member: &Member,
    request: UploadRequest,
) -> Result<UploadTicket> {
    if room.status == RoomStatus::Archived {
        return Err(crate::rooms::archived());
    }
    if !may_upload(room, member) {
        return Err(Error::forbidden("uploads_not_allowed", "the host has not allowed guests to share files"));
    }
    let limits = &app.config().files;
    let file_name = validate_file_name(&request.file_name)?;
    let content_type = validate_content_type(&request.content_type)?;
    let ext = extension(&file_name).unwrap_or_default();
    if !limits.allowed_extensions.iter().any(|a| a.eq_ignore_ascii_case(&ext)) {
        return Err(Error::invalid("file_type_not_allowed", format!("files of type .{ext} cannot be shared here")));
    }
    if request.size == 0 || request.size > limits.max_size_bytes {
        return Err(Error::TooLarge {
            code: "file_too_large",
            message: format!("files may be at most {} MB", limits.max_size_bytes / (1024 * 1024)),
        });
    }
    let size = i64::try_from(request.size).map_err(|_| Error::invalid("file_too_large", "file too large"))?;
    let now = app.clock().now_ms();
    let id = ids::new_id();
    let object_key = format!("rooms/{}/{}", room.id, id);
    let (participant_id, user_id) = match member {
        Member::Guest(p) => (Some(p.id.clone()), None),
        Member::Host(auth) => (None, Some(auth.user.id.clone())),
    };
    // Signed before the reservation: a presigning failure then leaves no reserved bytes behind.
    let target = app.storage().upload_target(&object_key, &content_type, request.size, storage::UPLOAD_TTL).await?;
    let record = FileRecord {
        id: id.clone(),
        room_id: room.id.clone(),
        lecture_id: room.lecture_id.clone(),
        object_key,
        file_name,
        content_type: content_type.clone(),
        size,
        participant_id,
        user_id,
        uploader_name: member.display_name().to_owned(),
        shared: false,
        created_at: now,
        completed_at: None,
    };
    // Stored and reserved bytes together, checked and reserved in one step (parallel tickets queue).
    let quota = i64::try_from(limits.room_quota_bytes).unwrap_or(i64::MAX);
    if !app.store().reserve_file(&record, quota).await? {
        return Err(Error::conflict(
            "room_quota_exceeded",
            "this lecture's file space is full; the host can remove files",
        ));
    }
    let expires = now / 1000 + i64::try_from(storage::UPLOAD_TTL.as_secs()).unwrap_or(900);
    let upload_url = match target {
        UploadTarget::Presigned(url) => url.to_string(),
        UploadTarget::Local => {
            let key = signing_key(app).await?;
            let sig = storage::local_signature(&key, "PUT", &id, expires);
            let base = app
                .config()
                .public_url
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned())
                .unwrap_or_default();
            format!("{base}/api/files/{id}/content?expires={expires}&sig={sig}")
        }
    };
    let headers = [("Content-Type".to_owned(), content_type)].into_iter().collect();
    Ok(UploadTicket {
        file_id: id,
        upload_url,
        method: "PUT",
        headers,
        expires_at: crate::time::to_datetime(expires * 1000),
    })
}

/// The instance's key for signing local-storage URLs (created once, shared by replicas via the database).
async fn signing_key(app: &App) -> Result<Secret> {
    let fresh = ids::new_secret();
    Ok(Secret::new(app.store().instance_value_or_insert("files_signing_key", &fresh).await?))
}

/// Receives the bytes of a local-storage upload on a signed URL.
pub async fn receive_local_upload<S, E>(app: &App, file_id: &str, expires: i64, signature: &str, body: S) -> Result<()>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    storage::verify_local_signature(&signing_key(app).await?, "PUT", file_id, expires, signature)?;
    let file = app.store().file_by_id(file_id).await?;
    if file.shared {
        return Err(Error::conflict("already_uploaded", "this file was already shared"));
    }
    let declared = u64::try_from(file.size).unwrap_or(0);
    // At most the declared size is ever stored: the stream is cut (413) at the first byte past it, and the
    // partial object is discarded. Fewer bytes are caught at "complete", as for S3.
    app.storage().write_stream(&file.object_key, body, declared).await?;
    // The sweep may have removed an upload that outlived its reservation while it streamed: then the object
    // it left must go too, or it would take space that no quota counts.
    if app.store().file_by_id(file_id).await.is_err() {
        app.storage().delete(&file.object_key).await?;
        return Err(Error::gone("upload_expired", "this upload took too long and was discarded; start it again"));
    }
    Ok(())
}

/// Confirms an upload: the object must exist with exactly the declared size; then the file is shared and
/// announced to the room.
pub async fn complete(app: &App, room: &RoomRecord, member: &Member, file_id: &str) -> Result<FileView> {
    let file = app.store().file_by_id(file_id).await?;
    let own = match member {
        Member::Guest(p) => file.participant_id.as_deref() == Some(p.id.as_str()),
        Member::Host(_) => true,
    };
    if file.room_id != room.id || !own {
        return Err(Error::not_found("file_not_found", "no such file"));
    }
    if file.shared {
        return Ok(FileView::from(&file));
    }
    if app.clock().now_ms() >= file.created_at.saturating_add(pending_lifetime_ms()) {
        discard(app, &file).await?;
        return Err(Error::gone("upload_expired", "this upload took too long and was discarded; start it again"));
    }
    match app.storage().size(&file.object_key).await? {
        None => {
            return Err(Error::conflict(
                "upload_missing",
                "the upload has not arrived; send the file to the upload URL first",
            ));
        }
        Some(actual) if i64::try_from(actual).ok() != Some(file.size) => {
            discard(app, &file).await?;
            return Err(Error::conflict(
                "size_mismatch",
                format!("the uploaded file has {actual} bytes but {} were declared; it was discarded", file.size),
            ));
        }
        Some(_) => {}
    }
    app.store().mark_file_shared(&file.id).await?;
    let view = FileView::from(&app.store().file_by_id(file_id).await?);
    let payload = serde_json::to_value(&view).unwrap_or_default();
    if let Err(err) = app.livekit().send_data(&livekit::room_name(&room.lecture_id), TOPIC, &payload).await {
        tracing::warn!(error = %err, "file shared but not announced live; it is in the list");
    }
    Ok(view)
}

/// How long an unfinished upload keeps its reserved bytes: the link's lifetime, and as long again for an
/// upload that started just before the link expired to finish. Then the sweep deletes it.
pub const PENDING_LIFETIME: std::time::Duration = std::time::Duration::from_secs(2 * storage::UPLOAD_TTL.as_secs());

fn pending_lifetime_ms() -> i64 {
    i64::try_from(PENDING_LIFETIME.as_millis()).unwrap_or(i64::MAX)
}

/// Removes an unfinished upload: its object (if any arrived), then its row, which frees its reservation.
async fn discard(app: &App, file: &FileRecord) -> Result<()> {
    app.storage().delete(&file.object_key).await?;
    app.store().delete_pending_file(&file.id).await?;
    Ok(())
}

/// Deletes the objects and rows of uploads unfinished for longer than [`PENDING_LIFETIME`] as of `now_ms`
/// (a parameter, so tests need not wait); returns how many went. A storage failure leaves that row for the
/// next sweep, so no object is orphaned.
pub async fn sweep_unfinished(app: &App, now_ms: i64) -> Result<usize> {
    let mut removed = 0;
    loop {
        let stale = app.store().stale_pending_files(now_ms.saturating_sub(pending_lifetime_ms()), 100).await?;
        let batch = stale.len();
        for file in &stale {
            match discard(app, file).await {
                Ok(()) => removed += 1,
                Err(err) => {
                    tracing::warn!(error = %err, file = %file.id, "could not remove an unfinished upload; retrying later");
                    return Ok(removed);
                }
            }
        }
        if batch < 100 {
            return Ok(removed);
        }
    }
}

/// The background sweep of unfinished uploads, every few minutes for the life of the server (on the leader:
/// two replicas sweeping at once would both try to delete the same objects).
pub async fn sweep_forever(app: App) {
    let mut turns = crate::replicas::LeaderTicks::new(&app, std::time::Duration::from_secs(300));
    while turns.next().await.is_some() {
        match sweep_unfinished(&app, app.clock().now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "removed unfinished uploads"),
            Err(err) => tracing::warn!(error = %err, "could not sweep unfinished uploads"),
        }
    }
}

pub async fn list(app: &App, room: &RoomRecord) -> Result<Vec<FileView>> {
    Ok(app.store().shared_files(&room.lecture_id).await?.iter().map(FileView::from).collect())
}

/// The room a file belongs to (for authorising a download by file id).
pub async fn room_of(app: &App, file_id: &str) -> Result<(FileRecord, RoomRecord)> {
    let file = app.store().file_by_id(file_id).await?;
    if !file.shared {
        return Err(Error::not_found("file_not_found", "no such file"));
    }
    let room = app.store().room_by_id(&file.room_id).await?;
    Ok((file, room))
}

/// A download for a member of the file's room.
pub async fn download(app: &App, file: FileRecord) -> Result<Download> {
    let disposition = content_disposition(&file.file_name);
    match app.storage().download_url(&file.object_key, &disposition, &file.content_type).await? {
        Some(url) => Ok(Download::Redirect(url.to_string())),
        None => {
            let body = app.storage().read_stream(&file.object_key).await?;
            Ok(Download::Stream { file: Box::new(file), content_disposition: disposition, body })
        }
    }
}

/// Removes a shared file (hosts); recorded in the audit log.
pub async fn delete(app: &App, room: &RoomRecord, file_id: &str, actor: &Actor) -> Result<()> {
    let file = app.store().file_by_id(file_id).await?;
    if file.room_id != room.id {
        return Err(Error::not_found("file_not_found", "no such file"));
    }
    app.store().mark_file_deleted(&file.id).await?;
    app.storage().delete(&file.object_key).await?;
    audit::record(
        app,
        actor,
        "file.delete",
        Some(("file", file_id)),
        Some(&room.id),
        serde_json::json!({ "fileName": file.file_name, "size": file.size }),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_is_safe_and_keeps_the_name() {
        let d = content_disposition("Лекция 1 \"final\".pdf");
        assert!(d.starts_with("attachment; filename=\""));
        assert!(d.contains("filename*=UTF-8''%D0%9B"));
        assert!(!d.contains("\"final\""));
        assert!(d.is_ascii());
    }

    #[test]
    fn file_names_lose_paths() {
        assert_eq!(validate_file_name("C:\\Users\\ann\\slides.pdf").unwrap(), "slides.pdf");
        assert_eq!(validate_file_name("../../etc/passwd").unwrap(), "passwd");
        assert!(validate_file_name("..").is_err());
        assert!(validate_file_name("a\u{0}b.pdf").is_err());
    }
}
