//! A lecture as the renderers take it (`export::LectureDoc`): the page's content for this reader, with the
//! transcript's speakers named as people joined, and the states the export format knows.

use std::sync::Arc;

use super::{Content, Opened, SummaryState};
use crate::app::App;
use crate::error::Result;
use crate::export::{self, LectureDoc, LectureInfo};

/// The document of an opened lecture, exactly what this reader may see (attendance only for hosts, admins
/// and the operator). Shared, so that the renderers (on blocking threads, or a render worker's request
/// being written) take it without a copy of its transcript each.
pub async fn document(app: &App, opened: &Opened) -> Result<Arc<LectureDoc>> {
    let content = Content::load(app, opened).await?;
    let names = super::speaker_names(app, &opened.lecture.id).await?;
    Ok(Arc::new(build(content, &names, crate::time::to_datetime(app.clock().now_ms()))))
}

fn build(
    content: Content,
    names: &std::collections::HashMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> LectureDoc {
    let view = content.view;
    let lecture = &view.lecture;
    let info = LectureInfo {
        id: lecture.id.clone(),
        room_id: lecture.room_id.clone(),
        room_name: lecture.room_name.clone(),
        number: u32::try_from(lecture.number).unwrap_or(u32::MAX),
        title: format!("{} — {}", lecture.room_name, lecture.number),
        host_name: view.host_name.clone(),
        language: view.language.clone(),
        started_at: lecture.started_at,
        ended_at: lecture.ended_at,
        duration_ms: lecture.duration_ms.unwrap_or(0),
    };
    let status = match view.summary.state {
        SummaryState::Ready => export::SummaryStatus::Ready,
        SummaryState::Pending => export::SummaryStatus::Pending,
        SummaryState::Failed => export::SummaryStatus::Failed,
        SummaryState::AssistantOff => export::SummaryStatus::AssistantOff,
        SummaryState::NoSpeech => export::SummaryStatus::NoSpeech,
        SummaryState::Live => export::SummaryStatus::Live,
        SummaryState::NotStarted => export::SummaryStatus::NotStarted,
        SummaryState::Missing => export::SummaryStatus::Missing,
    };
    let error = view.summary.error.clone();
    let mut doc = LectureDoc::new(info, status, now);
    doc.summary_error = error;
    doc.summary = view.summary.summary.as_ref().map(|s| export::Summary {
        abstract_text: s.abstract_text.clone(),
        key_topics: s
            .key_topics
            .iter()
            .map(|t| export::SummaryItem {
                text: t.topic.clone(),
                start_ms: t.cite.start_ms,
                end_ms: t.cite.end_ms,
                edited: t.edited,
            })
            .collect(),
        action_items: s
            .action_items
            .iter()
            .map(|a| export::SummaryItem {
                text: a.text.clone(),
                start_ms: a.cite.start_ms,
                end_ms: a.cite.end_ms,
                edited: a.edited,
            })
            .collect(),
        qa: s
            .qa
            .iter()
            .map(|q| export::QaItem {
                question: q.question.clone(),
                answer: q.answer.clone(),
                start_ms: q.cite.start_ms,
                end_ms: q.cite.end_ms,
                edited: q.edited,
            })
            .collect(),
        kind: if s.kind == "llm" { export::SummaryKind::Llm } else { export::SummaryKind::Extractive },
        edited: view.summary.edited,
    });
    doc.transcript = content
        .segments
        .into_iter()
        .map(|s| export::TranscriptSegment {
            speaker_name: names.get(&s.speaker_identity).cloned().unwrap_or_else(|| s.speaker().to_owned()),
            id: s.segment_id,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            text: s.text,
        })
        .collect();
    doc.chat = view
        .chat
        .into_iter()
        .map(|m| export::ChatMessage {
            at: m.at,
            offset_ms: m.offset_ms.unwrap_or(0),
            sender_name: m.sender_name,
            sender_role: m.sender_role,
            text: m.text,
        })
        .collect();
    doc.files = view
        .files
        .into_iter()
        .map(|f| export::SharedFile {
            id: f.id,
            name: f.name,
            size: u64::try_from(f.size).unwrap_or(0),
            content_type: f.content_type,
            uploader_name: f.uploader_name,
            shared_at: f.shared_at,
        })
        .collect();
    doc.attendance = view.attendance.map(|rows| {
        rows.into_iter()
            .map(|a| export::Attendee {
                name: a.name,
                role: a.role.to_owned(),
                first_join: a.first_join,
                last_leave: a.last_leave,
                minutes_present: a.minutes_present.round().clamp(0.0, f64::from(u32::MAX)) as u32,
                joins: a.joins,
            })
            .collect()
    });
    doc
}
