//! Lectures after (and during) the session: the lists hosts browse, the lecture page's content — summary
//! with its state, transcript by speaker turn, chat, files, attendance — transcript search, summary edits
//! and regeneration. Who may read a lecture is `access`'s question; share links are `shares`'.

pub mod access;
pub mod attendance;
pub mod batch;
pub mod document;
pub mod downloads;
pub mod shares;

use serde::{Deserialize, Serialize};

use crate::accounts::AuthUser;
use crate::app::App;
use crate::artifacts::summary::Summary;
use crate::audit;
use crate::error::{Error, Result};
use crate::store::{ArtifactRecord, ArtifactState, LectureRecord, LectureStatus, RoomRecord, SegmentRecord};
pub use access::{Credentials, Opened, Reader};
pub use attendance::Attendee;

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

/// Where the summary stands, for the page to say so (never an empty box).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SummaryState {
    /// The lecture has not started (the room's next session).
    NotStarted,
    /// The lecture is still under way.
    Live,
    /// The assistant is off in this room and wrote nothing.
    AssistantOff,
    /// Being written (after the lecture, or regenerating).
    Pending,
    /// The summariser failed (`error` says why); the host may retry.
    Failed,
    /// Nothing was said that the assistant could transcribe.
    NoSpeech,
    /// The lecture ended a while ago and no summary ever arrived (the assistant was not running).
    Missing,
    Ready,
}

/// How long after a lecture's end a missing summary still counts as "being written".
const SUMMARY_GRACE_MS: i64 = 30 * 60 * 1000;

/// The summary block of the lecture page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryView {
    pub state: SummaryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// Why it failed, or why the last regeneration failed (the earlier summary kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub kind: Option<String>,
    pub model: Option<String>,
    pub edited: bool,
    pub edited_at: Option<chrono::DateTime<chrono::Utc>>,
    pub edited_by: Option<String>,
    /// Send it back with an edit: an edit of an older version is refused (409).
    pub version: Option<i64>,
}

fn summary_view(
    lecture: &LectureRecord,
    room: &RoomRecord,
    artifact: Option<&ArtifactRecord>,
    segments: usize,
    now: i64,
) -> SummaryView {
    let summary: Option<Summary> = artifact
        .and_then(|a| a.summary.as_deref())
        .and_then(|s| serde_json::from_str::<Summary>(s).ok())
        .map(Summary::normalised);
    let state = match (lecture.status, artifact.map(|a| a.state)) {
        (LectureStatus::Open, _) => SummaryState::NotStarted,
        (LectureStatus::Live, _) => SummaryState::Live,
        (_, Some(ArtifactState::Pending)) => SummaryState::Pending,
        (_, Some(ArtifactState::Failed)) if summary.is_none() => SummaryState::Failed,
        (_, Some(_)) if segments == 0 => SummaryState::NoSpeech,
        (_, Some(_)) if summary.is_some() => SummaryState::Ready,
        (_, Some(_)) => SummaryState::Failed,
        (_, None) if !room.ai_assistant => SummaryState::AssistantOff,
        (_, None) if lecture.ended_at.is_some_and(|end| now - end > SUMMARY_GRACE_MS) => {
            if segments == 0 {
                SummaryState::NoSpeech
            } else {
                SummaryState::Missing
            }
        }
        (_, None) => SummaryState::Pending,
    };
    SummaryView {
        state,
        edited: summary.as_ref().is_some_and(Summary::has_edits),
        summary: if state == SummaryState::Ready { summary } else { None },
        error: artifact.and_then(|a| a.error.clone()),
        kind: artifact.and_then(|a| a.summary_kind.clone()),
        model: artifact.and_then(|a| a.model.clone()),
        edited_at: artifact.and_then(|a| a.summary_edited_at).map(crate::time::to_datetime),
        edited_by: artifact.and_then(|a| a.summary_edited_by.clone()),
        version: artifact.map(|a| a.updated_at),
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
            .list_chat(&lecture.id, Some(0), i64::MAX)
            .await?
            .into_iter()
            .filter(|m| m.deleted_at.is_none())
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

/// A host's edit of the summary.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SummaryEdit {
    pub summary: Summary,
    /// The `version` the edit was made on.
    pub version: i64,
}

/// Replaces the summary with the host's edit: validated (no empty topic, citations in the transcript), new
/// or changed items marked as edited, refused when the summary changed since the host read it.
pub async fn edit_summary(app: &App, opened: &Opened, edit: SummaryEdit) -> Result<SummaryView> {
    let auth = opened.require_host()?;
    let lecture = &opened.lecture;
    let artifact = app
        .store()
        .artifact(&lecture.id)
        .await?
        .filter(|a| a.state != ArtifactState::Pending)
        .ok_or_else(|| Error::conflict("no_summary", "there is no summary to edit yet"))?;
    let segments = app.store().segments(&lecture.id).await?;
    let mut summary = edit.summary.normalised();
    summary.validate_edit(&segments)?;
    let before =
        artifact.summary.as_deref().and_then(|s| serde_json::from_str::<Summary>(s).ok()).map(Summary::normalised);
    summary.mark_edits(before.as_ref());
    if summary.kind.is_empty() {
        summary.kind = before.as_ref().map(|b| b.kind.clone()).unwrap_or_default();
    }
    let text = serde_json::to_string(&summary).map_err(|e| Error::internal(format!("summary to JSON: {e}")))?;
    let now = app.clock().now_ms().max(artifact.updated_at + 1);
    if !app.store().edit_summary(&lecture.id, &text, &auth.user.name, now, edit.version).await? {
        return Err(Error::conflict(
            "summary_changed",
            "the summary changed since you opened it; reload and edit again",
        ));
    }
    audit::record(
        app,
        &opened.actor(),
        "lecture.summary_edit",
        Some(("lecture", &lecture.id)),
        Some(&opened.room.id),
        serde_json::json!({ "topics": summary.key_topics.len(), "actionItems": summary.action_items.len(), "qa": summary.qa.len() }),
    )
    .await;
    let artifact = app.store().artifact(&lecture.id).await?;
    Ok(summary_view(lecture, &opened.room, artifact.as_ref(), segments.len(), now))
}

/// Regenerates the summary in the background (the summariser can take minutes): 409 `summary_edited` when
/// the host's edits would be replaced and `replace_edits` is not set, 409 for a lecture still under way.
pub async fn regenerate(app: &App, opened: &Opened, replace_edits: bool) -> Result<SummaryView> {
    opened.require_host()?;
    let lecture = &opened.lecture;
    if lecture.status != LectureStatus::Ended {
        return Err(Error::conflict("lecture_live", "the summary is written when the lecture has ended"));
    }
    // Said now rather than from the background task, which would only restore the summary as it was.
    if !crate::admin::ai_settings::current(app).await?.summaries {
        return Err(Error::conflict(
            "summaries_off",
            "summaries are switched off in the AI settings (confctl admin settings set summaries on)",
        ));
    }
    let before = app.store().artifact(&lecture.id).await?;
    if let Some(b) = &before {
        if b.state == ArtifactState::Pending {
            return Err(Error::conflict("summary_pending", "a summary is being written already"));
        }
        let edited =
            b.summary.as_deref().and_then(|s| serde_json::from_str::<Summary>(s).ok()).is_some_and(|s| s.has_edits());
        if edited && !replace_edits {
            return Err(Error::conflict(
                "summary_edited",
                "the summary has edits that regenerating would replace; confirm to replace them",
            ));
        }
    }
    let now = app.clock().now_ms();
    app.store().mark_summary_pending(&lecture.id, now).await?;
    audit::record(
        app,
        &opened.actor(),
        "lecture.summary_regenerate",
        Some(("lecture", &lecture.id)),
        Some(&opened.room.id),
        serde_json::json!({ "replaceEdits": replace_edits }),
    )
    .await;
    let (task_app, lecture_id) = (app.clone(), lecture.id.clone());
    tokio::spawn(async move {
        if let Err(err) = crate::artifacts::resummarize_after(&task_app, &lecture_id, before).await {
            tracing::warn!(lecture = %lecture_id, error = %err, "regenerating a summary failed");
        }
    });
    let artifact = app.store().artifact(&lecture.id).await?;
    let segments = app.store().segments(&lecture.id).await?.len();
    Ok(summary_view(lecture, &opened.room, artifact.as_ref(), segments, now))
}
