//! The lecture's summary as people see it: its state on the page (never an empty box), the host's edits
//! (validated, versioned, audited) and regeneration in the background.

use serde::{Deserialize, Serialize};

use super::Opened;
use crate::app::App;
use crate::artifacts::summary::Summary;
use crate::audit;
use crate::error::{Error, Result};
use crate::store::{ArtifactRecord, ArtifactState, LectureRecord, LectureStatus, RoomRecord};

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

pub(super) fn summary_view(
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
