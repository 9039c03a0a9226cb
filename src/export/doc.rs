//! `LectureDoc`: one lecture, denormalised for the renderers — and, serialised, the versioned JSON export
//! format documented in `docs/lecture-json.md` (a test below keeps the two in agreement).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::i18n::{Catalogue, Lang};

/// The JSON format's version. Adding an optional field keeps it; renaming, removing or changing the meaning
/// of one raises it.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything the renderers show of one lecture, as the viewer may see it: callers leave out what the viewer
/// may not see (`attendance` for guests and share links) and deleted chat messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LectureDoc {
    /// [`SCHEMA_VERSION`] when written by this confctl.
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    /// `confctl x.y.z`: [`LectureDoc::generator`].
    pub generator: String,
    pub lecture: LectureInfo,
    pub summary_status: SummaryStatus,
    /// Why the summary failed, for `summaryStatus: failed`.
    pub summary_error: Option<String>,
    pub summary: Option<Summary>,
    /// Ordered by `startMs`.
    pub transcript: Vec<TranscriptSegment>,
    /// Ordered by `at`; deleted messages are left out.
    pub chat: Vec<ChatMessage>,
    pub files: Vec<SharedFile>,
    /// `None` (and absent from the JSON) when the viewer may not see attendance: every renderer then leaves
    /// the section out entirely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendance: Option<Vec<Attendee>>,
}

impl LectureDoc {
    /// The catalogue the documents' own words come from: the lecture's language where confctl speaks it
    /// (English and Russian), else English. The people's words stay as they were said.
    pub fn words(&self) -> &'static Catalogue {
        Lang::parse(&self.lecture.language).unwrap_or(Lang::En).catalogue()
    }

    /// A document with the current schema version and generator and every list empty, for callers to fill.
    pub fn new(lecture: LectureInfo, summary_status: SummaryStatus, generated_at: DateTime<Utc>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            generated_at,
            generator: Self::generator(),
            lecture,
            summary_status,
            summary_error: None,
            summary: None,
            transcript: Vec::new(),
            chat: Vec::new(),
            files: Vec::new(),
            attendance: None,
        }
    }

    /// `confctl` and the version of this build.
    pub fn generator() -> String {
        format!("confctl {}", env!("CARGO_PKG_VERSION"))
    }
}

/// The lecture itself: one session of a room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LectureInfo {
    pub id: String,
    pub room_id: String,
    pub room_name: String,
    /// 1 for the room's first lecture, 2 for the next…
    pub number: u32,
    pub title: String,
    pub host_name: String,
    /// The spoken language's code (`en`, `ru`…).
    pub language: String,
    /// `None` before the lecture went live.
    pub started_at: Option<DateTime<Utc>>,
    /// `None` while it is live.
    pub ended_at: Option<DateTime<Utc>>,
    /// From start to end (to `generatedAt` while live); 0 before the start.
    pub duration_ms: i64,
}

/// Where the summary stands — the lecture page's states (`lectures::SummaryState`); every state but `ready`
/// is shown as a sentence instead of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SummaryStatus {
    Ready,
    /// Being written (after the lecture, or regenerating).
    Pending,
    /// The summariser failed; `summaryError` says why.
    Failed,
    /// The assistant was off in the room and wrote nothing.
    AssistantOff,
    /// Nothing was said that the assistant could transcribe.
    NoSpeech,
    /// The lecture is under way.
    Live,
    /// The lecture has not started (a room's next session).
    NotStarted,
    /// The lecture ended a while ago and no summary arrived (the assistant was not running).
    Missing,
}

impl SummaryStatus {
    /// The sentence a reader sees instead of a summary, in `words`' language; `None` for `ready`.
    pub fn message(self, error: Option<&str>, words: &Catalogue) -> Option<String> {
        let key = match self {
            Self::Ready => return None,
            Self::Failed => match error.map(str::trim).filter(|e| !e.is_empty()) {
                Some(error) => return Some(words.fill("export.state.failed_because", &[("error", error)])),
                None => "export.state.failed",
            },
            Self::Pending => "export.state.pending",
            Self::AssistantOff => "export.state.assistant_off",
            Self::NoSpeech => "export.state.no_speech",
            Self::Live => "export.state.live",
            Self::NotStarted => "export.state.not_started",
            Self::Missing => "export.state.missing",
        };
        Some(words.get(key).to_owned())
    }
}

impl Summary {
    /// Who wrote the summary, for the line above it: `Written by the AI assistant (language model).`
    pub fn byline(&self, words: &Catalogue) -> String {
        let by = words.get(match self.kind {
            SummaryKind::Llm => "export.by_llm",
            SummaryKind::Extractive => "export.by_extractive",
        });
        words.fill(if self.edited { "export.by_edited" } else { "export.by_plain" }, &[("by", by)])
    }
}

/// The structured summary; every item cites the stretch of the transcript it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Summary {
    /// A short paragraph; may be empty.
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub key_topics: Vec<SummaryItem>,
    pub action_items: Vec<SummaryItem>,
    pub qa: Vec<QaItem>,
    pub kind: SummaryKind,
    /// The host changed something in it.
    pub edited: bool,
}

/// Which summariser wrote the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummaryKind {
    Llm,
    Extractive,
}

/// A key topic or an action item, with the time range it cites (milliseconds from the lecture start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryItem {
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub edited: bool,
}

/// A question asked in the lecture and its answer, with the time range they cite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QaItem {
    pub question: String,
    pub answer: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub edited: bool,
}

/// One caption segment of the transcript; times in milliseconds from the lecture start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscriptSegment {
    pub id: String,
    /// The speaker's display name.
    pub speaker_name: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub text: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatMessage {
    pub at: DateTime<Utc>,
    /// Milliseconds from the lecture start (negative for a message before it).
    pub offset_ms: i64,
    pub sender_name: String,
    /// `host`, `admin` or `guest`.
    pub sender_role: String,
    pub text: String,
}

/// A file shared in the lecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedFile {
    pub id: String,
    /// The uploader's file name: shown, never used as a path as it stands.
    pub name: String,
    /// Bytes.
    pub size: u64,
    pub content_type: String,
    pub uploader_name: String,
    pub shared_at: DateTime<Utc>,
}

/// One participant's presence in the lecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attendee {
    pub name: String,
    /// `host`, `admin` or `guest`.
    pub role: String,
    pub first_join: DateTime<Utc>,
    /// `None` while still in the lecture.
    pub last_leave: Option<DateTime<Utc>>,
    /// Summed over rejoins, rounded to whole minutes.
    pub minutes_present: u32,
    pub joins: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../docs/lecture-json.md");

    /// The first ```json block of the documentation.
    fn documented_example() -> &'static str {
        let start = DOC.find("```json\n").expect("docs/lecture-json.md has a ```json example") + "```json\n".len();
        let len = DOC[start..].find("\n```").expect("the example block is closed");
        &DOC[start..start + len]
    }

    fn keys(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    out.push(key.clone());
                    keys(value, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, out)),
            _ => {}
        }
    }

    #[test]
    fn the_documented_example_is_exactly_what_the_type_reads_and_writes() {
        let example: serde_json::Value = serde_json::from_str(documented_example()).unwrap();
        // deny_unknown_fields: a field the documentation names but the type lacks fails here…
        let doc: LectureDoc = serde_json::from_value(example.clone()).unwrap();
        assert_eq!(doc.schema_version, SCHEMA_VERSION);
        // …and a field the type writes but the example lacks fails here.
        assert_eq!(serde_json::to_value(&doc).unwrap(), example);
    }

    #[test]
    fn every_field_of_the_example_is_described() {
        let example: serde_json::Value = serde_json::from_str(documented_example()).unwrap();
        let mut names = Vec::new();
        keys(&example, &mut names);
        let described = &DOC[..DOC.find("```json").unwrap_or(DOC.len())];
        for name in names {
            assert!(described.contains(&format!("`{name}`")), "docs/lecture-json.md does not describe `{name}`");
        }
    }

    #[test]
    fn attendance_is_absent_not_null_when_hidden() {
        let example: serde_json::Value = serde_json::from_str(documented_example()).unwrap();
        let mut doc: LectureDoc = serde_json::from_value(example).unwrap();
        doc.attendance = None;
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json.get("attendance").is_none());
        let back: LectureDoc = serde_json::from_value(json).unwrap();
        assert_eq!(back.attendance, None);
    }

    #[test]
    fn status_sentences() {
        let (en, ru) = (Lang::En.catalogue(), Lang::Ru.catalogue());
        assert_eq!(SummaryStatus::Ready.message(None, en), None);
        assert_eq!(
            SummaryStatus::Failed.message(Some("model timed out"), en).as_deref(),
            Some("The summary could not be written: model timed out")
        );
        assert_eq!(SummaryStatus::Failed.message(Some("  "), en).as_deref(), Some("The summary could not be written."));
        assert_eq!(
            SummaryStatus::Live.message(None, ru).as_deref(),
            Some("Лекция ещё идёт. Конспект будет написан, когда она закончится.")
        );
        assert_eq!(serde_json::to_value(SummaryStatus::AssistantOff).unwrap(), "assistantOff");
        assert_eq!(serde_json::to_value(SummaryStatus::NoSpeech).unwrap(), "noSpeech");
        assert_eq!(serde_json::to_value(SummaryStatus::NotStarted).unwrap(), "notStarted");
    }
}
