//! A lecture into its host's Google Drive: the lecture page's "Export to Drive" and `confctl export --to
//! gdrive`. The files are the folder export's (`parts`), rendered by the same renderers; `gdrive` uploads
//! them into `confctl/<room name>/<date> Lecture <n>`, updating the files an earlier export made.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Opened;
use super::parts::{self, Item, Part, PartKind};
use crate::app::App;
use crate::audit;
use crate::error::{Error, Result};
use crate::export::LectureDoc;
use crate::gdrive::{self, DriveError, ExportFile, ExportedFile, ExportedLecture, Source};
use crate::store::LectureStatus;

/// The lecture's folder name under its room's: `<YYYY-MM-DD> Lecture <n>`, dated by its start (or, for a
/// lecture that never went live, its end).
pub fn folder_label(started_at: Option<DateTime<Utc>>, ended_at: Option<DateTime<Utc>>, number: i64) -> String {
    match started_at.or(ended_at) {
        Some(at) => format!("{} Lecture {number}", at.format("%Y-%m-%d")),
        None => format!("Lecture {number}"),
    }
}

/// `confctl/<room name>/<label>`, as Drive shows the path.
pub fn folder_path(room_name: &str, label: &str) -> String {
    format!("confctl/{room_name}/{label}")
}

/// Renders `parts` of `doc` (shared files fetched to a scratch directory first) and uploads them to
/// `user_id`'s Drive.
pub async fn upload(
    app: &App,
    user_id: &str,
    doc: &Arc<LectureDoc>,
    parts: &[Part],
) -> std::result::Result<ExportedLecture, DriveError> {
    let scratch = tempfile::tempdir().map_err(|e| Error::internal(format!("scratch directory: {e}")))?;
    let mut files = Vec::with_capacity(parts.len());
    for part in parts {
        let source = match &part.kind {
            PartKind::Rendered(format) => {
                let _slot = parts::render_slot().await?;
                Source::Bytes(parts::render(doc, *format).await?.into())
            }
            PartKind::Shared { file_id, .. } => {
                let path = scratch.path().join(file_id);
                parts::fetch_shared(app, file_id, &path).await?;
                Source::Path(path)
            }
        };
        files.push(ExportFile { name: part.name.clone(), mime: part.mime().to_owned(), source });
    }
    let info = &doc.lecture;
    let label = folder_label(info.started_at, info.ended_at, i64::from(info.number));
    gdrive::upload_lecture(app, user_id, &info.id, &info.room_name, &label, files).await
}

/// What "Export to Drive" answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriveExport {
    pub folder_id: String,
    /// The folder in Drive's web interface.
    pub folder_url: String,
    /// `confctl/<room>/<date> Lecture <n>`.
    pub folder_path: String,
    pub files: Vec<ExportedFile>,
}

/// The lecture page's "Export to Drive": every format the host may read (attendance included) and the
/// shared files, into the host's own Drive. Only the room's host — an admin reads the lecture but has no
/// business filling someone's Drive with it, nor their own with someone's lecture — and only once ended.
pub async fn export_for_host(app: &App, opened: &Opened) -> Result<DriveExport> {
    let auth = opened.require_host()?;
    if auth.user.id != opened.room.host_id {
        return Err(Error::forbidden("drive_host_only", "only the lecture's host can export it to Google Drive"));
    }
    if opened.lecture.status != LectureStatus::Ended {
        return Err(Error::conflict(
            "lecture_not_ended",
            "a lecture can be exported to Google Drive once it has ended",
        ));
    }
    gdrive::check_connected(app, &auth.user.id).await?;
    let doc = super::document::document(app, opened).await?;
    let exported = upload(app, &auth.user.id, &doc, &parts::parts(&doc, &Item::ALL)).await?;
    audit::record(
        app,
        &opened.actor(),
        "lecture.drive_export",
        Some(("lecture", &opened.lecture.id)),
        Some(&opened.room.id),
        serde_json::json!({ "folderId": exported.folder_id, "files": exported.files.len() }),
    )
    .await;
    let label = folder_label(doc.lecture.started_at, doc.lecture.ended_at, i64::from(doc.lecture.number));
    Ok(DriveExport {
        folder_url: gdrive::folder_url(&exported.folder_id),
        folder_path: folder_path(&doc.lecture.room_name, &label),
        folder_id: exported.folder_id,
        files: exported.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_by_day_and_number() {
        let day = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(folder_label(day("2026-11-28T09:15:00Z"), day("2026-11-28T10:45:00Z"), 3), "2026-11-28 Lecture 3");
        assert_eq!(folder_label(None, day("2026-12-01T08:00:00Z"), 1), "2026-12-01 Lecture 1", "never went live");
        assert_eq!(folder_label(None, None, 2), "Lecture 2");
        assert_eq!(folder_path("Optics", "Lecture 2"), "confctl/Optics/Lecture 2");
    }
}
