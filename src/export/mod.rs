//! The lecture renderers: a [`LectureDoc`] in, the bytes of a download out (PDF, Markdown, JSON, WebVTT,
//! SRT, plain text, attendance CSV, and a ZIP of them all with the shared files). Pure functions — no
//! database, no HTTP — shared by the lecture downloads and `confctl export`.
//!
//! ```no_run
//! # fn demo(doc: &confctl::export::LectureDoc) -> confctl::Result<()> {
//! use confctl::export::{self, Format};
//! let format: Format = "pdf".parse()?; // an unknown name is an `Error::Invalid` listing the allowed ones
//! let bytes = export::render(doc, format)?;
//! let (content_type, file_name) = (format.content_type(), format.file_name());
//! # Ok(()) }
//! ```

pub(crate) mod archive;
mod attendance;
pub mod clock;
mod doc;
mod markdown;
mod pdf;
pub mod synthetic;
pub mod transcript;
pub mod worker;

use std::fmt;
use std::io::{Read, Seek, Write};
use std::str::FromStr;

pub use doc::{
    Attendee, ChatMessage, LectureDoc, LectureInfo, QaItem, SCHEMA_VERSION, SharedFile, Summary, SummaryItem,
    SummaryKind, SummaryStatus, TranscriptSegment,
};

use crate::error::{Error, Result};

/// A download format, named as in `?format=` and `confctl export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Pdf,
    Markdown,
    Json,
    Vtt,
    Srt,
    Text,
    AttendanceCsv,
    Zip,
}

impl Format {
    /// Every format, in the order they are listed to people (and written into the ZIP).
    pub const ALL: [Format; 8] = [
        Format::Pdf,
        Format::Markdown,
        Format::Json,
        Format::Vtt,
        Format::Srt,
        Format::Text,
        Format::AttendanceCsv,
        Format::Zip,
    ];

    /// The name in `?format=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Markdown => "md",
            Self::Json => "json",
            Self::Vtt => "vtt",
            Self::Srt => "srt",
            Self::Text => "txt",
            Self::AttendanceCsv => "attendance.csv",
            Self::Zip => "zip",
        }
    }

    /// The `Content-Type` of a download.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Json => "application/json",
            Self::Vtt => "text/vtt; charset=utf-8",
            Self::Srt => "application/x-subrip",
            Self::Text => "text/plain; charset=utf-8",
            Self::AttendanceCsv => "text/csv; charset=utf-8; header=present",
            Self::Zip => "application/zip",
        }
    }

    /// The file name of a download (and of the entry in the ZIP and the export folder).
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Pdf => "lecture.pdf",
            Self::Markdown => "lecture.md",
            Self::Json => "lecture.json",
            Self::Vtt => "captions.vtt",
            Self::Srt => "captions.srt",
            Self::Text => "transcript.txt",
            Self::AttendanceCsv => "attendance.csv",
            Self::Zip => "lecture.zip",
        }
    }

    /// `pdf, md, json, …`: for messages that list the choices.
    pub fn allowed() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|f| f.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
            let shown: String = name.chars().take(40).collect();
            Error::invalid("unknown_format", format!("unknown format `{shown}`; allowed: {}", Self::allowed()))
        })
    }
}

/// Renders one format into memory. The ZIP is not one of them: it holds the shared files, so it is streamed
/// with [`write_zip`]. Attendance CSV for a document without attendance is `Error::Forbidden`
/// (`attendance_hidden`): a caller answering a share link may prefer to say 404.
pub fn render(doc: &LectureDoc, format: Format) -> Result<Vec<u8>> {
    Ok(match format {
        Format::Pdf => pdf::render(doc)?,
        Format::Markdown => markdown::render(doc).into_bytes(),
        Format::Json => serde_json::to_vec_pretty(doc).map_err(|e| Error::internal(format!("lecture JSON: {e}")))?,
        Format::Vtt => transcript::vtt(&doc.transcript).into_bytes(),
        Format::Srt => transcript::srt(&doc.transcript).into_bytes(),
        Format::Text => transcript::text_file(doc).into_bytes(),
        Format::AttendanceCsv => match &doc.attendance {
            Some(attendance) => attendance::render(attendance)?,
            None => {
                return Err(Error::forbidden(
                    "attendance_hidden",
                    "attendance is shown only to the lecture's host and administrators",
                ));
            }
        },
        Format::Zip => {
            return Err(Error::invalid("zip_not_buffered", "the ZIP is streamed: write it with export::write_zip"));
        }
    })
}

/// Writes `lecture.zip` into `out` (a file, a temporary file, a `Cursor`) and returns it: every format
/// [`render`] makes (attendance only when `doc` carries it) and the shared files under `files/`, their
/// content read from `open(file)` one at a time and streamed, never held in memory. A failing `open` fails
/// the archive.
pub fn write_zip<W, R, F>(doc: &LectureDoc, open: F, out: W) -> Result<W>
where
    W: Write + Seek,
    R: Read,
    F: FnMut(&SharedFile) -> Result<R>,
{
    archive::write(doc, open, out)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    fn seg(id: &str, who: &str, start_ms: i64, end_ms: i64, text: &str) -> TranscriptSegment {
        TranscriptSegment { id: id.into(), speaker_name: who.into(), start_ms, end_ms, text: text.into() }
    }

    fn attendee(name: &str, role: &str, first: &str, last: Option<&str>, minutes: u32, joins: u32) -> Attendee {
        Attendee {
            name: name.into(),
            role: role.into(),
            first_join: at(first),
            last_leave: last.map(at),
            minutes_present: minutes,
            joins,
        }
    }

    /// A lecture with everything a renderer must handle: Cyrillic and Greek, markup-like and formula-like
    /// user text, every section filled.
    pub(crate) fn sample() -> LectureDoc {
        let lecture = LectureInfo {
            id: "lec_7Yp2".into(),
            room_id: "room_Q3x".into(),
            room_name: "Биология 101".into(),
            number: 3,
            title: "Фотосинтез: как растения запасают свет".into(),
            host_name: "Анна Смирнова".into(),
            language: "ru".into(),
            started_at: Some(at("2026-03-05T10:00:00Z")),
            ended_at: Some(at("2026-03-05T11:12:00Z")),
            duration_ms: 72 * 60_000,
        };
        let mut doc = LectureDoc::new(lecture, SummaryStatus::Ready, at("2026-03-05T12:00:00Z"));
        let item = |text: &str, start_ms, end_ms, edited| SummaryItem { text: text.into(), start_ms, end_ms, edited };
        doc.summary = Some(Summary {
            abstract_text: "Как хлорофилл превращает свет в химическую энергию.".into(),
            key_topics: vec![
                item("Хлорофилл поглощает *красный* и синий свет", 62_000, 180_000, true),
                item("Глюкоза как запас энергии", 1_200_000, 1_500_000, false),
            ],
            action_items: vec![item("Read chapter 4", 4_200_000, 4_200_500, false)],
            qa: vec![QaItem {
                question: "What happens at night?".into(),
                answer: "Respiration continues.".into(),
                start_ms: 1_860_000,
                end_ms: 1_930_000,
                edited: false,
            }],
            kind: SummaryKind::Llm,
            edited: true,
        });
        doc.transcript = vec![
            seg("s1", "Анна Смирнова", 12_000, 15_000, "Растения превращают свет в энергию."),
            seg("s2", "Анна Смирнова", 15_500, 20_000, "Хлорофилл поглощает красный и синий свет."),
            seg("s3", "Bob <script>", 62_000, 65_000, "Почему листья зелёные? #import \"/etc/passwd\""),
            seg("s4", "Анна Смирнова", 66_000, 180_000, "Они отражают зелёный свет. *Не* поглощают его."),
            seg("s5", "Ελένη", 1_860_000, 1_870_000, "Τι γίνεται τη νύχτα;"),
            seg("s6", "Анна Смирнова", 1_880_000, 1_930_000, "Дыхание продолжается."),
        ];
        doc.chat = vec![
            ChatMessage {
                at: at("2026-03-05T10:05:00Z"),
                offset_ms: 300_000,
                sender_name: "Bob <script>".into(),
                sender_role: "guest".into(),
                text: "#import \"/etc/passwd\"".into(),
            },
            ChatMessage {
                at: at("2026-03-05T10:06:00Z"),
                offset_ms: 360_000,
                sender_name: "Ελένη".into(),
                sender_role: "guest".into(),
                text: "*bold* Καλημέρα".into(),
            },
            ChatMessage {
                at: at("2026-03-05T10:07:00Z"),
                offset_ms: 420_000,
                sender_name: "Анна Смирнова".into(),
                sender_role: "host".into(),
                text: "Ссылка: https://example.org/a/very/long/path/that/must/wrap/somewhere/in/the/table".into(),
            },
        ];
        doc.files = vec![
            SharedFile {
                id: "f1".into(),
                name: "slides | v2.pdf".into(),
                size: 1_500_000,
                content_type: "application/pdf".into(),
                uploader_name: "Анна Смирнова".into(),
                shared_at: at("2026-03-05T10:03:00Z"),
            },
            SharedFile {
                id: "f2".into(),
                name: "notes.txt".into(),
                size: 12,
                content_type: "text/plain".into(),
                uploader_name: "Bob <script>".into(),
                shared_at: at("2026-03-05T10:08:00Z"),
            },
        ];
        doc.attendance = Some(vec![
            attendee("Анна Смирнова", "host", "2026-03-05T10:00:00Z", Some("2026-03-05T11:12:00Z"), 72, 1),
            attendee("=HYPERLINK(\"http://x\")", "guest", "2026-03-05T10:01:00Z", None, 70, 2),
            attendee("Smith, \"Bob\"\nJr", "guest", "2026-03-05T10:02:00Z", Some("2026-03-05T10:30:00Z"), 28, 1),
            attendee("+1 555", "guest", "2026-03-05T10:04:00Z", Some("2026-03-05T10:20:00Z"), 16, 3),
            attendee("-2", "guest", "2026-03-05T10:05:00Z", Some("2026-03-05T10:06:00Z"), 1, 1),
            attendee("@SUM(A1)", "guest", "2026-03-05T10:05:00Z", Some("2026-03-05T10:06:00Z"), 1, 1),
        ]);
        doc
    }

    #[test]
    fn formats_parse_and_name_themselves() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
        }
        assert_eq!(" PDF ".parse::<Format>().unwrap(), Format::Pdf);
        assert_eq!("attendance.csv".parse::<Format>().unwrap().file_name(), "attendance.csv");
        assert_eq!(Format::Vtt.file_name(), "captions.vtt");
        assert_eq!(Format::Text.content_type(), "text/plain; charset=utf-8");
        let err = "docx".parse::<Format>().unwrap_err();
        assert_eq!(err.code(), "unknown_format");
        assert_eq!(
            err.to_string(),
            "unknown format `docx`; allowed: pdf, md, json, vtt, srt, txt, attendance.csv, zip"
        );
    }

    #[test]
    fn json_is_the_document_pretty_printed() {
        let doc = sample();
        let json = String::from_utf8(render(&doc, Format::Json).unwrap()).unwrap();
        assert!(json.starts_with("{\n  \"schemaVersion\": 1,\n  \"generatedAt\": \"2026-03-05T12:00:00Z\",\n"));
        assert!(json.contains("\"text\": \"#import \\\"/etc/passwd\\\"\""));
        assert_eq!(serde_json::from_str::<LectureDoc>(&json).unwrap(), doc);
    }

    #[test]
    fn hidden_attendance_is_an_error_for_the_csv_and_zip_is_not_buffered() {
        let mut doc = sample();
        doc.attendance = None;
        let err = render(&doc, Format::AttendanceCsv).unwrap_err();
        assert!(matches!(err, Error::Forbidden { code: "attendance_hidden", .. }), "{err:?}");
        assert_eq!(render(&doc, Format::Zip).unwrap_err().code(), "zip_not_buffered");
    }
}
