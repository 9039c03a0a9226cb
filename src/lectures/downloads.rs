//! Downloads of a lecture for the page's buttons (`GET /api/lectures/{id}/export?format=`): one format
//! rendered from the reader's document, or the ZIP of every format with the shared files. Rendering runs off
//! the async runtime, a few at a time, so a class downloading the PDF together cannot starve the server.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use super::Opened;
use crate::app::App;
use crate::error::{Error, Result};
use crate::export::{self, Format};

/// Renders at once across the process: a PDF of a long lecture takes about half a second of one core.
static RENDERING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// A rendered download.
#[derive(Debug)]
pub struct Download {
    pub content_type: &'static str,
    /// `<room>-<number>-<file name>`, for `Content-Disposition`.
    pub file_name: String,
    pub body: Body,
}

#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// A ZIP on disk (deleted when dropped), streamed to the client.
    File(tempfile::NamedTempFile),
}

/// The lecture in `format` for this reader: attendance only for hosts and admins (`403 attendance_hidden`
/// otherwise, in the CSV and left out of the ZIP). Audited like the page for readers other than the host.
pub async fn download(app: &App, opened: &Opened, format: Format) -> Result<Download> {
    let doc = super::document::document(app, opened).await?;
    let file_name = format!("{}-{}-{}", slug(&doc.lecture.room_name), doc.lecture.number, format.file_name());
    let _slot = RENDERING.acquire().await.map_err(|_| Error::internal("the render limiter closed"))?;
    let body = if format == Format::Zip {
        // The shared files come from object storage to a scratch directory first, so the archive (written
        // off the runtime) reads plain files, one at a time.
        let scratch = tempfile::tempdir().map_err(|e| Error::internal(format!("scratch directory: {e}")))?;
        let store = app.store();
        let mut keys = std::collections::HashMap::new();
        for file in &doc.files {
            let record = store.file_by_id(&file.id).await?;
            let path = scratch.path().join(&file.id);
            app.storage().download_to(&record.object_key, &path).await?;
            keys.insert(file.id.clone(), path);
        }
        let zip = tokio::task::spawn_blocking(move || {
            let out = tempfile::NamedTempFile::new().map_err(|e| Error::internal(format!("temporary ZIP: {e}")))?;
            let open = |f: &export::SharedFile| {
                let path = keys.get(&f.id).ok_or_else(|| Error::internal("a shared file was not fetched"))?;
                std::fs::File::open(path).map_err(|e| Error::internal(format!("reading a shared file: {e}")))
            };
            let out = export::write_zip(&doc, open, out)?;
            drop(scratch);
            Ok::<_, Error>(out)
        })
        .await
        .map_err(|e| Error::internal(format!("the ZIP task failed: {e}")))??;
        Body::File(zip)
    } else {
        let bytes = tokio::task::spawn_blocking(move || export::render(&doc, format))
            .await
            .map_err(|e| Error::internal(format!("the render task failed: {e}")))??;
        Body::Bytes(bytes)
    };
    opened.audit_read(app, &format!("export:{format}")).await;
    Ok(Download { content_type: format.content_type(), file_name, body })
}

/// A file-name-safe slug of a room name (letters of any script kept, lower case, dashes between words).
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(60).collect();
    if out.is_empty() { "lecture".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_keep_letters_of_every_script() {
        assert_eq!(super::slug("Биология 101: Фотосинтез!"), "биология-101-фотосинтез");
        assert_eq!(super::slug("  ../etc/passwd "), "etc-passwd");
        assert_eq!(super::slug("???"), "lecture");
    }
}
