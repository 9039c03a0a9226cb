//! The typst world of one lecture PDF: the template compiled into the binary and the lecture's JSON, nothing
//! else. The standard library and the embedded fonts are built once per process and shared by every render.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, Timestamp};

use crate::error::{Error, Result};

/// The template, compiled in.
const TEMPLATE: &str = include_str!("lecture.typ");
/// Where the template reads the lecture (`json("/lecture.json")`).
const DATA_PATH: &str = "/lecture.json";
const TEMPLATE_PATH: &str = "/lecture.typ";
/// Memoised layouts older than this many renders are dropped after each render: every lecture is different,
/// so keeping them would only grow the process.
const CACHE_RENDERS: usize = 1;

/// Everything that is the same for every lecture.
struct Typesetter {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    template: Source,
    data_id: FileId,
}

/// Parsed on the first render (a few tens of milliseconds), then shared; `Err` if the embedded fonts or the
/// template's paths could not be read, which a test would catch before any release.
static TYPESETTER: LazyLock<std::result::Result<Typesetter, String>> = LazyLock::new(Typesetter::new);

impl Typesetter {
    fn new() -> std::result::Result<Self, String> {
        // The fonts typst bundles: Libertinus Serif (text: Latin, Greek, Cyrillic), DejaVu Sans Mono (times),
        // New Computer Modern (a fallback with the same coverage). Their bytes are static, so a `Font` only
        // parses the tables and shares the bytes.
        let fonts: Vec<Font> = typst_assets::fonts().flat_map(|data| Font::iter(Bytes::new(data))).collect();
        if fonts.is_empty() {
            return Err("no embedded fonts could be read".to_owned());
        }
        Ok(Self {
            library: LazyHash::new(Library::default()),
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            template: Source::new(file_id(TEMPLATE_PATH)?, TEMPLATE.to_owned()),
            data_id: file_id(DATA_PATH)?,
            fonts,
        })
    }
}

/// The id typst knows a project path by.
pub(super) fn file_id(path: &str) -> std::result::Result<FileId, String> {
    VirtualPath::new(path)
        .map(|vpath| RootedPath::new(VirtualRoot::Project, vpath).intern())
        .map_err(|err| format!("typst path {path}: {err:?}"))
}

/// One render's world: the shared typesetter and this lecture's data.
pub(super) struct LectureWorld {
    typesetter: &'static Typesetter,
    data: Bytes,
}

impl LectureWorld {
    /// A world whose `/lecture.json` holds `json`.
    pub(super) fn new(json: Vec<u8>) -> Result<Self> {
        let typesetter = TYPESETTER.as_ref().map_err(|err| Error::internal(format!("lecture PDF: {err}")))?;
        Ok(Self { typesetter, data: Bytes::new(json) })
    }
}

impl World for LectureWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.typesetter.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.typesetter.book
    }

    fn main(&self) -> FileId {
        self.typesetter.template.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.typesetter.template.id() { Ok(self.typesetter.template.clone()) } else { Err(not_found(id)) }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.typesetter.data_id {
            Ok(self.data.clone())
        } else if id == self.typesetter.template.id() {
            Ok(Bytes::from_string(self.typesetter.template.clone()))
        } else {
            Err(not_found(id))
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.typesetter.fonts.get(index).cloned()
    }

    /// The template has no use for the date; typst's `datetime.today()` fails.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

fn not_found(id: FileId) -> FileError {
    FileError::NotFound(id.vpath().get_with_slash().into())
}

/// Typesets `data` (serialised as `/lecture.json`) with the template into a PDF. `ident` identifies the
/// document across renders (the lecture id); `created` becomes the PDF's creation date.
pub fn typeset(data: &impl Serialize, ident: &str, created: &DateTime<Utc>) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(data).map_err(|err| Error::internal(format!("lecture PDF data: {err}")))?;
    let world = LectureWorld::new(json)?;
    let compiled = typst::compile::<PagedDocument>(&world).output;
    let options =
        PdfOptions { ident: Smart::Custom(ident.to_owned()), timestamp: timestamp(created), ..Default::default() };
    let pdf = compiled.and_then(|document| typst_pdf::pdf(&document, &options));
    typst::comemo::evict(CACHE_RENDERS);
    pdf.map_err(|diagnostics| {
        Error::internal(format!("typesetting the lecture PDF: {}", describe(&world, &diagnostics)))
    })
}

fn timestamp(at: &DateTime<Utc>) -> Option<Timestamp> {
    let [month, day, hour, minute, second] =
        [at.month(), at.day(), at.hour(), at.minute(), at.second()].map(|v| v as u8);
    Datetime::from_ymd_hms(at.year(), month, day, hour, minute, second).map(Timestamp::new_utc)
}

/// The errors, each with the template line it points at: only a bug in the template (or in typst) fails a
/// render, since the data is always valid JSON of the shape the template reads.
fn describe(world: &LectureWorld, diagnostics: &[SourceDiagnostic]) -> String {
    let line = |diagnostic: &SourceDiagnostic| {
        let in_template = diagnostic.span.id() == Some(world.typesetter.template.id());
        let range = world.range(diagnostic.span).filter(|_| in_template)?;
        world.typesetter.template.lines().byte_to_line(range.start).map(|n| n + 1)
    };
    diagnostics
        .iter()
        .map(|d| match line(d) {
            Some(n) => format!("lecture.typ:{n}: {}", d.message),
            None => d.message.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
