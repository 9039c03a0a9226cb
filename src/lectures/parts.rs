//! What a lecture exports to, for every destination alike (the folder tree of `confctl export`, a host's
//! Google Drive, the page's downloads): the chosen formats, each rendered by `export::render` off the async
//! runtime, and the shared files under `files/` — one list of names, so a folder and a Drive folder hold the
//! same files under the same names.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

use crate::app::App;
use crate::error::{Error, Result};
use crate::export::{self, Format, LectureDoc};

/// One thing to write per lecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    Format(Format),
    /// The shared files, under `files/`.
    Files,
}

impl Item {
    /// Every item `--format all` stands for (the ZIP is not one: the folder holds the same).
    pub const ALL: [Item; 8] = [
        Item::Format(Format::Pdf),
        Item::Format(Format::Markdown),
        Item::Format(Format::Json),
        Item::Format(Format::Vtt),
        Item::Format(Format::Srt),
        Item::Format(Format::Text),
        Item::Format(Format::AttendanceCsv),
        Item::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Format(f) => f.as_str(),
            Self::Files => "files",
        }
    }

    /// `pdf,md,json,…` or `all` (comma-separated; repeated names count once).
    pub fn parse_list(text: &str) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let items: Vec<Item> = if name.eq_ignore_ascii_case("all") {
                Self::ALL.to_vec()
            } else if name.eq_ignore_ascii_case("files") {
                vec![Item::Files]
            } else {
                match name.parse::<Format>() {
                    Ok(Format::Zip) | Err(_) => {
                        let allowed: Vec<&str> = Self::ALL.iter().map(|i| i.name()).collect();
                        return Err(Error::invalid(
                            "unknown_format",
                            format!("unknown format `{name}`; allowed: {}, or all", allowed.join(", ")),
                        ));
                    }
                    Ok(f) => vec![Item::Format(f)],
                }
            };
            for item in items {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
        }
        if out.is_empty() {
            return Err(Error::invalid("unknown_format", "name at least one format, or all"));
        }
        Ok(out)
    }
}

/// One file of a lecture's export, before it is written anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Relative to the lecture's folder, unique within it (`lecture.pdf`, `files/slides.pdf`).
    pub name: String,
    pub kind: PartKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    /// Rendered from the lecture's document.
    Rendered(Format),
    /// A shared file, copied from object storage as it is.
    Shared { file_id: String, content_type: String },
}

impl Part {
    /// The media type without parameters (Drive wants `text/markdown`, not `…; charset=utf-8`).
    pub fn mime(&self) -> &str {
        let full = match &self.kind {
            PartKind::Rendered(format) => format.content_type(),
            PartKind::Shared { content_type, .. } => content_type.as_str(),
        };
        full.split(';').next().map_or(full, str::trim)
    }
}

/// The files `items` stand for in this document, in order: attendance only where the document has it (the
/// reader may see it), shared files under unique names.
pub fn parts(doc: &LectureDoc, items: &[Item]) -> Vec<Part> {
    let mut out = Vec::new();
    let mut taken = HashSet::new();
    for item in items {
        match item {
            Item::Format(Format::AttendanceCsv) if doc.attendance.is_none() => {}
            Item::Format(format) => {
                out.push(Part { name: format.file_name().to_owned(), kind: PartKind::Rendered(*format) });
            }
            Item::Files => {
                for f in &doc.files {
                    out.push(Part {
                        name: format!("files/{}", export::archive::unique_name(&f.name, &mut taken)),
                        kind: PartKind::Shared { file_id: f.id.clone(), content_type: f.content_type.clone() },
                    });
                }
            }
        }
    }
    out
}

/// Renders at once across the process: a PDF of a long lecture takes about half a second of one core.
static RENDERING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// A slot of the process-wide render limit, held while rendering (a class downloading the PDF together, or
/// hosts exporting to Drive, cannot starve the server).
pub async fn render_slot() -> Result<tokio::sync::SemaphorePermit<'static>> {
    RENDERING.acquire().await.map_err(|_| Error::internal("the render limiter closed"))
}

/// `doc` in `format`, rendered on a blocking thread.
pub async fn render(doc: &Arc<LectureDoc>, format: Format) -> Result<Vec<u8>> {
    let doc = Arc::clone(doc);
    tokio::task::spawn_blocking(move || export::render(&doc, format))
        .await
        .map_err(|e| Error::internal(format!("the render task failed: {e}")))?
}

/// Copies a shared file from object storage to `path`; its size.
pub async fn fetch_shared(app: &App, file_id: &str, path: &Path) -> Result<u64> {
    let record = app.store().file_by_id(file_id).await?;
    app.storage().download_to(&record.object_key, path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_lists_parse_with_all_and_files() {
        assert_eq!(
            Item::parse_list("pdf, json,vtt").unwrap(),
            [Item::Format(Format::Pdf), Item::Format(Format::Json), Item::Format(Format::Vtt)]
        );
        assert_eq!(Item::parse_list("all").unwrap().len(), 8);
        assert_eq!(Item::parse_list("files,pdf,files").unwrap(), [Item::Files, Item::Format(Format::Pdf)]);
        let err = Item::parse_list("pdf,docx").unwrap_err().to_string();
        assert!(err.contains("`docx`") && err.contains("attendance.csv, files, or all"), "{err}");
        assert!(Item::parse_list("zip").is_err(), "a folder holds what the ZIP would");
        assert!(Item::parse_list(" , ").is_err());
    }

    #[test]
    fn media_types_lose_their_parameters() {
        let part = Part { name: "lecture.md".into(), kind: PartKind::Rendered(Format::Markdown) };
        assert_eq!(part.mime(), "text/markdown");
        let part = Part {
            name: "files/a.pdf".into(),
            kind: PartKind::Shared { file_id: "f".into(), content_type: "application/pdf".into() },
        };
        assert_eq!(part.mime(), "application/pdf");
    }
}
