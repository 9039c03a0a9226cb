//! Lectures after (and during) the session: the lists hosts browse, the lecture page's content — summary
//! with its state, transcript by speaker turn, chat, files, attendance — and transcript search. Who may read
//! a lecture is `access`'s question; share links are `shares`'; the summary's state, edits and regeneration
//! are `summary`'s.

pub mod access;
pub mod attendance;
pub mod batch;
pub mod document;
pub mod downloads;
pub mod drive;
pub mod parts;
pub mod shares;
mod summary;
pub mod workers;

use serde::Serialize;

use crate::accounts::AuthUser;
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{LectureRecord, LectureStatus, RoomRecord, SegmentRecord};
pub use access::{Credentials, Opened, Reader};
pub use attendance::Attendee;
use summary::summary_view;
pub use summary::{SummaryEdit, SummaryState, SummaryView, edit_summary, regenerate};

/// A lecture in a list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LectureItem {
    pub id: String,
    pub room_id: String,
    pub room_name: String,
    pub number: i64,
    pub status: LectureStatus,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub duration_ms: Option<i64>,
}

fn item(lecture: &LectureRecord, room_name: &str, now: i64) -> LectureItem {
    LectureItem {
        id: lecture.id.clone(),
        room_id: lecture.room_id.clone(),
        room_name: room_name.to_owned(),
        number: lecture.number,
        status: lecture.status,
        started_at: lecture.started_at.map(crate::time::to_datetime),
        ended_at: lecture.ended_at.map(crate::time::to_datetime),
        duration_ms: duration_ms(lecture, now),
    }
}

fn duration_ms(lecture: &LectureRecord, now: i64) -> Option<i64> {
    lecture.started_at.map(|start| (lecture.ended_at.unwrap_or(now) - start).max(0))
}

/// The lectures a room held (live or ended), newest first. The caller checked the room is the user's.
pub async fn of_room(app: &App, room: &RoomRecord) -> Result<Vec<LectureItem>> {
    let now = app.clock().now_ms();
    Ok(app.store().lectures_of_room(&room.id).await?.iter().map(|l| item(l, &room.name, now)).collect())
}

/// A transcript passage that matched a search across lectures.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub lecture: LectureItem,
    pub segment_id: String,
    pub speaker_name: String,
    pub start_ms: i64,
    pub text: String,
}

/// Most matches a search across lectures returns.
const SEARCH_LIMIT: i64 = 200;

/// Validates a search text: 2 to 200 characters.
fn search_text(q: &str) -> Result<&str> {
    let q = q.trim();
    let n = q.chars().count();
    if !(2..=200).contains(&n) {
        return Err(Error::invalid("invalid_query", "q must have 2 to 200 characters"));
    }
    Ok(q)
}

/// The signed-in host's lectures (every lecture for an admin with `all`), newest first; with `q`, the
/// transcript passages that contain it instead.
pub async fn of_host(app: &App, auth: &AuthUser, all: bool, q: Option<&str>) -> Result<serde_json::Value> {
    if all && !auth.user.is_admin() {
        return Err(Error::forbidden("admin_only", "only administrators may list every lecture"));
    }
    let host = if all { None } else { Some(auth.user.id.as_str()) };
    let now = app.clock().now_ms();
    let mut rooms: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut room_name = async |room_id: &str| -> Result<String> {
        if let Some(name) = rooms.get(room_id) {
            return Ok(name.clone());
        }
        let name = app.store().room_by_id(room_id).await?.name;
        rooms.insert(room_id.to_owned(), name.clone());
        Ok(name)
    };
    match q {
        None => {
            let mut out = Vec::new();
            for lecture in app.store().lectures_of_host(host, 500).await? {
                let name = room_name(&lecture.room_id).await?;
                out.push(item(&lecture, &name, now));
            }
            Ok(serde_json::json!({ "lectures": out }))
        }
        Some(q) => {
            let q = search_text(q)?;
            let mut lectures: std::collections::HashMap<String, LectureItem> = std::collections::HashMap::new();
            let mut hits = Vec::new();
            for hit in app.store().search_host_segments(host, q, SEARCH_LIMIT).await? {
                let lecture = match lectures.get(&hit.lecture_id) {
                    Some(l) => l.clone(),
                    None => {
                        let record = app.store().lecture_by_id(&hit.lecture_id).await?;
                        let name = room_name(&record.room_id).await?;
                        let l = item(&record, &name, now);
                        lectures.insert(hit.lecture_id.clone(), l.clone());
                        l
                    }
                };
                hits.push(SearchHit {
                    lecture,
                    segment_id: hit.segment.segment_id,
                    speaker_name: hit.segment.speaker_name,
                    start_ms: hit.segment.start_ms,
                    text: hit.segment.text,
                });
            }
            Ok(serde_json::json!({ "query": q, "hits": hits, "truncated": hits.len() as i64 == SEARCH_LIMIT }))
        }
    }
}

/// A chat line of the lecture.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatLine {
    pub id: String,
    pub sender_name: String,
    pub sender_role: String,
    pub text: String,
    pub at: chrono::DateTime<chrono::Utc>,
    /// Milliseconds since the lecture went live (negative before it did).
    pub offset_ms: Option<i64>,
}

/// A shared file of the lecture.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileLine {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub uploader_name: String,
    pub shared_at: chrono::DateTime<chrono::Utc>,
}

/// What the reader may do on the page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerView {
    /// `host`, `admin`, `participant` or `share`.
    pub role: &'static str,
    pub can_edit: bool,
    pub can_see_attendance: bool,
}

/// The lecture page's content, but the transcript (which has its own route, for search).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LectureView {
    #[serde(flatten)]
    pub lecture: LectureItem,
    pub host_name: String,
    pub language: String,
    pub assistant: bool,
    pub viewer: ViewerView,
    pub summary: SummaryView,
    pub segment_count: usize,
    pub chat: Vec<ChatLine>,
    pub files: Vec<FileLine>,
    /// Host and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendance: Option<Vec<Attendee>>,
}

/// Everything the lecture page shows, read for this reader (and audited when it is not the host).
pub async fn view(app: &App, opened: &Opened) -> Result<LectureView> {
    let content = Content::load(app, opened).await?;
    opened.audit_read(app, "page").await;
    Ok(content.view)
}

/// The lecture's content as the page (and the renderers) use it.
#[derive(Debug)]
pub struct Content {
    pub view: LectureView,
    pub segments: Vec<SegmentRecord>,
}

impl Content {
    pub async fn load(app: &App, opened: &Opened) -> Result<Self> {
        let (lecture, room) = (&opened.lecture, &opened.room);
        let now = app.clock().now_ms();
        let store = app.store();
        let segments = store.segments(&lecture.id).await?;
        let artifact = store.artifact(&lecture.id).await?;
        let host_name = match store.user_by_id(&room.host_id).await {
            Ok(user) => user.display_name,
            Err(Error::NotFound { .. }) => String::new(),
            Err(err) => return Err(err),
        };
        let chat = store
            .lecture_chat(&lecture.id)
            .await?
            .into_iter()
            .map(|m| ChatLine {
                offset_ms: lecture.started_at.map(|s| m.created_at - s),
                at: crate::time::to_datetime(m.created_at),
                id: m.id,
                sender_name: m.sender_name,
                sender_role: m.sender_role,
                text: m.text,
            })
            .collect();
        let files = store
            .shared_files(&lecture.id)
            .await?
            .into_iter()
            .map(|f| FileLine {
                shared_at: crate::time::to_datetime(f.completed_at.unwrap_or(f.created_at)),
                id: f.id,
                name: f.file_name,
                size: f.size,
                content_type: f.content_type,
                uploader_name: f.uploader_name,
            })
            .collect();
        let attendance = if opened.reader.sees_attendance() {
            let participants = store.participants_of_lecture(&lecture.id).await?;
            let stays = store.attendance(&lecture.id).await?;
            Some(attendance::compute(lecture, &participants, &stays, now))
        } else {
            None
        };
        let view = LectureView {
            lecture: item(lecture, &room.name, now),
            host_name,
            language: crate::rooms::language_of(room, &crate::artifacts::default_language(app).await?),
            assistant: room.ai_assistant,
            viewer: ViewerView {
                role: opened.reader.role(room),
                can_edit: opened.reader.is_host(),
                can_see_attendance: opened.reader.sees_attendance(),
            },
            summary: summary_view(lecture, room, artifact.as_ref(), segments.len(), now),
            segment_count: segments.len(),
            chat,
            files,
            attendance,
        };
        Ok(Self { view, segments })
    }
}

/// One speaker's turn: consecutive segments of the same speaker.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paragraph {
    pub speaker_name: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub segments: Vec<TranscriptSegment>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TranscriptSegment {
    pub id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub text: String,
}

/// Speaker names as people know them: the display name the participant joined with (identities are
/// opaque), else what the assistant heard.
async fn speaker_names(app: &App, lecture_id: &str) -> Result<std::collections::HashMap<String, String>> {
    Ok(app
        .store()
        .participants_of_lecture(lecture_id)
        .await?
        .into_iter()
        .map(|p| (p.identity, p.display_name))
        .collect())
}

/// Segments grouped into paragraphs per speaker turn.
pub fn paragraphs(segments: &[SegmentRecord], names: &std::collections::HashMap<String, String>) -> Vec<Paragraph> {
    let mut out: Vec<Paragraph> = Vec::new();
    for s in segments {
        let name = names.get(&s.speaker_identity).cloned().unwrap_or_else(|| s.speaker().to_owned());
        let segment = TranscriptSegment {
            id: s.segment_id.clone(),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: s.text.clone(),
        };
        match out.last_mut() {
            Some(p) if p.speaker_name == name => {
                p.end_ms = p.end_ms.max(s.end_ms);
                p.segments.push(segment);
            }
            _ => out.push(Paragraph {
                speaker_name: name,
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                segments: vec![segment],
            }),
        }
    }
    out
}

/// The transcript by speaker turn; with `q`, only the segments that contain it (case-insensitive), found
/// by the database.
pub async fn transcript(app: &App, opened: &Opened, q: Option<&str>) -> Result<serde_json::Value> {
    let names = speaker_names(app, &opened.lecture.id).await?;
    let body = match q {
        None => {
            let segments = app.store().segments(&opened.lecture.id).await?;
            serde_json::json!({ "paragraphs": paragraphs(&segments, &names), "segmentCount": segments.len() })
        }
        Some(q) => {
            let q = search_text(q)?;
            let segments = app.store().search_segments(&opened.lecture.id, q).await?;
            serde_json::json!({ "query": q, "paragraphs": paragraphs(&segments, &names), "matches": segments.len() })
        }
    };
    opened.audit_read(app, "transcript").await;
    Ok(body)
}

/// A shared file of the lecture, for whoever may read it (the read is audited like the page's).
pub async fn file(app: &App, opened: &Opened, file_id: &str) -> Result<crate::store::FileRecord> {
    let file = match app.store().file_by_id(file_id).await {
        Ok(f) if f.lecture_id == opened.lecture.id && f.shared => f,
        Ok(_) | Err(Error::NotFound { .. }) => return Err(Error::not_found("file_not_found", "no such file")),
        Err(err) => return Err(err),
    };
    opened.audit_read(app, &format!("file:{}", file.file_name)).await;
    Ok(file)
}
