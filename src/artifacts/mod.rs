//! What a lecture leaves behind and the assistant's side of it: the live lectures it joins, caption
//! segments stored as they arrive, how it is doing meanwhile, and after the lecture the transcript files and
//! the summary it writes.
//! The agent API's wire types live here, used by both ends.

pub mod health;
pub mod stream;
pub mod summary;

use serde::{Deserialize, Serialize};

use crate::admin::ai_settings::{self, SummarySettings};
use crate::app::App;
use crate::error::{Error, Result};
use crate::livekit::{self, Grant, ParticipantRole};
use crate::store::{ArtifactRecord, ArtifactState, LectureRecord, LectureStatus, RoomRecord, SegmentRecord};
use health::{AssistantStatus, News, Report};

/// LiveKit data topic for captions.
pub const TOPIC: &str = "transcription";

/// A live lecture as the assistant sees it (the agent API's wire type, both ways).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantLecture {
    /// What the assistant addresses: every agent route is per lecture.
    pub lecture_id: String,
    pub room_id: String,
    pub name: String,
    pub livekit_room_name: String,
    pub language: String,
    /// When the lecture went live: caption times count from here.
    #[serde(default)]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The room's current lecture, for the assistant. A room without its own language has the instance's default
/// language as the AI settings say now, which is how a changed default reaches the assistant without a restart.
pub fn assistant_lecture(room: &RoomRecord, default_language: &str) -> AssistantLecture {
    AssistantLecture {
        lecture_id: room.lecture_id.clone(),
        room_id: room.id.clone(),
        name: room.name.clone(),
        livekit_room_name: livekit::room_name(&room.lecture_id),
        language: crate::rooms::language_of(room, default_language),
        started_at: room.started_at.map(crate::time::to_datetime),
    }
}

/// The instance's default caption language now.
pub async fn default_language(app: &App) -> Result<String> {
    Ok(ai_settings::current(app).await?.default_language)
}

/// Live lectures in rooms that want the assistant.
pub async fn live_lectures(app: &App) -> Result<Vec<AssistantLecture>> {
    let language = default_language(app).await?;
    Ok(app
        .store()
        .rooms_by_lecture_state(true)
        .await?
        .iter()
        .filter(|r| r.ai_assistant)
        .map(|r| assistant_lecture(r, &language))
        .collect())
}

/// The assistant's way into a lecture (the agent API's wire type, both ways).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantToken {
    pub token: String,
    pub livekit_url: String,
    pub identity: String,
}

/// A lecture the assistant may work on, with its room: 404 for an unknown lecture or a room with the
/// assistant switched off.
async fn assistant_lecture_record(app: &App, lecture_id: &str) -> Result<(LectureRecord, RoomRecord)> {
    let lecture = app.store().lecture_by_id(lecture_id).await?;
    let mut room = app.store().room_by_id(&lecture.room_id).await?;
    if !room.ai_assistant {
        return Err(Error::not_found("assistant_off", "the AI assistant is switched off in this room"));
    }
    // The room as it was for this lecture: its LiveKit room and caption time base are the lecture's.
    room.lecture_id = lecture.id.clone();
    room.started_at = lecture.started_at;
    Ok((lecture, room))
}

/// A hidden listen-only token, for a live lecture only: the assistant has no business in a room before it
/// starts or after it ends, and a leaked agent token must not be a way to listen in on one.
pub async fn assistant_token(app: &App, lecture_id: &str) -> Result<AssistantToken> {
    let (lecture, _) = assistant_lecture_record(app, lecture_id).await?;
    match lecture.status {
        LectureStatus::Live => {}
        LectureStatus::Ended => return Err(Error::gone("room_ended", "this lecture has ended")),
        LectureStatus::Open => {
            return Err(Error::conflict("room_not_live", "this lecture has not started; join when it is announced"));
        }
    }
    let livekit_room = livekit::room_name(&lecture.id);
    let token = app.livekit().token(&Grant {
        livekit_room: &livekit_room,
        identity: livekit::ASSISTANT_IDENTITY,
        name: "AI assistant",
        role: ParticipantRole::Assistant,
        can_publish: false,
        screen_share: false,
    })?;
    Ok(AssistantToken {
        token,
        livekit_url: app.livekit().server_ws_url().to_owned(),
        identity: livekit::ASSISTANT_IDENTITY.to_owned(),
    })
}

/// One caption segment: what the assistant posts (with its provider) and, without the provider, what the
/// room receives on topic `transcription`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Caption {
    pub segment_id: String,
    pub speaker_identity: String,
    pub speaker_name: String,
    pub text: String,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub start_ms: i64,
    pub end_ms: i64,
    pub language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// What happened to a caption.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptionReceipt {
    pub stored: bool,
    pub delivered: bool,
}

/// Publishes a caption into the lecture's room (topic `transcription`) and stores it when final.
pub async fn caption(app: &App, lecture_id: &str, caption: Caption) -> Result<CaptionReceipt> {
    let (lecture, room) = assistant_lecture_record(app, lecture_id).await?;
    let bad = |m: &str| Error::invalid("invalid_caption", m.to_owned());
    if caption.segment_id.is_empty() || caption.segment_id.len() > 128 {
        return Err(bad("segmentId must have 1 to 128 characters"));
    }
    if caption.text.chars().count() > 10_000 {
        return Err(bad("text is too long"));
    }
    if caption.start_ms < 0 || caption.end_ms < caption.start_ms {
        return Err(bad("startMs and endMs must be non-negative and in order"));
    }
    if !crate::config::is_language_code(&caption.language) {
        return Err(bad("language must be a code such as en or ru"));
    }
    let now = app.clock().now_ms();
    let changed = app.hub().assistants().captioned(&lecture.id, now);
    if changed {
        announce_assistant(app, &room);
    }
    if app.hub().assistants().tell_caption(&lecture.id, changed, now) {
        app.hub().tell_replicas(&lecture.id, News::Caption, now);
    }
    let stored = if caption.is_final && !caption.text.trim().is_empty() {
        app.store()
            .insert_segment(
                &lecture.id,
                &SegmentRecord {
                    segment_id: caption.segment_id.clone(),
                    speaker_identity: caption.speaker_identity.clone(),
                    speaker_name: caption.speaker_name.clone(),
                    text: caption.text.trim().to_owned(),
                    start_ms: caption.start_ms,
                    end_ms: caption.end_ms,
                    language: caption.language.clone(),
                    provider: caption.provider.clone().unwrap_or_else(|| "unknown".into()),
                },
            )
            .await?
    } else {
        false
    };
    // The room gets the caption without the provider: that is bookkeeping for the stored segment.
    let payload = serde_json::to_value(Caption { provider: None, ..caption }).unwrap_or_default();
    let delivered = match app.livekit().send_data(&livekit::room_name(&lecture.id), TOPIC, &payload).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "caption stored but not delivered live");
            false
        }
    };
    Ok(CaptionReceipt { stored, delivered })
}

/// The assistant's state in a room's current lecture, from what this process has heard from it.
pub fn assistant_status(app: &App, room: &RoomRecord) -> AssistantStatus {
    app.hub().assistants().status(room, app.hub().agent_streams(), app.clock().now_ms())
}

/// Tells admins watching the instance that the assistant's state in a room changed.
fn announce_assistant(app: &App, room: &RoomRecord) {
    let status = serde_json::to_value(assistant_status(app, room)).unwrap_or_default();
    app.hub().to_admins("assistant", Some(&room.id), status);
}

/// The assistant says how it is doing in a lecture (every 30 s while it is in, and at once when joining
/// fails).
pub async fn report(app: &App, lecture_id: &str, report: Report) -> Result<AssistantStatus> {
    let (lecture, room) = assistant_lecture_record(app, lecture_id).await?;
    let now = app.clock().now_ms();
    let news = News::Report { problem: report.problem.clone() };
    if app.hub().assistants().reported(&lecture.id, report, now) {
        announce_assistant(app, &room);
    }
    app.hub().tell_replicas(&lecture.id, news, now);
    Ok(assistant_status(app, &room))
}

/// What the summariser needs, and nothing more: the lecture's name and language, the final caption segments
/// the assistant itself posted, the names of the people who spoke, and the summary settings in effect. Not the
/// chat and not the shared files: an agent token works for every lecture, so whatever this returns, a leaked
/// token reads. (The agent API's wire type, both ways.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryContext {
    pub lecture: AssistantLecture,
    pub segments: Vec<SegmentRecord>,
    /// Speakers' display names, in the order they first spoke.
    #[serde(default)]
    pub speakers: Vec<String>,
    /// Read when the summary is about to be written, so the assistant follows a change made during the
    /// lecture. Absent from an older server: summaries on, the assistant's own configuration.
    #[serde(default)]
    pub settings: SummarySettings,
}

pub async fn context(app: &App, lecture_id: &str) -> Result<SummaryContext> {
    let (lecture, room) = assistant_lecture_record(app, lecture_id).await?;
    let segments = app.store().segments(&lecture.id).await?;
    let mut speakers: Vec<String> = Vec::new();
    for segment in &segments {
        if !segment.speaker_name.is_empty() && !speakers.contains(&segment.speaker_name) {
            speakers.push(segment.speaker_name.clone());
        }
    }
    let settings = ai_settings::view(app).await?;
    let lecture = assistant_lecture(&room, &settings.settings.default_language);
    Ok(SummaryContext { lecture, segments, speakers, settings: settings.for_summary() })
}

/// The artifact as the assistant writes it (the agent API's wire type, both ways).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactUpload {
    pub transcript_text: String,
    pub transcript_vtt: String,
    #[serde(default)]
    pub summary: Option<serde_json::Value>,
    /// `llm` or `extractive`.
    #[serde(default)]
    pub summary_kind: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// `complete` or `failed`.
    pub status: ArtifactStatus,
    #[serde(default)]
    pub error: Option<String>,
}

/// Where a lecture's summary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactStatus {
    /// Being written (or rewritten); never uploaded.
    Pending,
    Complete,
    Failed,
}

impl std::fmt::Display for ArtifactStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Complete => "complete",
            Self::Failed => "failed",
        })
    }
}

impl From<ArtifactState> for ArtifactStatus {
    fn from(state: ArtifactState) -> Self {
        match state {
            ArtifactState::Pending => Self::Pending,
            ArtifactState::Complete => Self::Complete,
            ArtifactState::Failed => Self::Failed,
        }
    }
}

/// The artifact as it reads back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub lecture_id: String,
    pub status: ArtifactStatus,
    pub summary: Option<serde_json::Value>,
    pub summary_kind: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub error: Option<String>,
    pub transcript_text: Option<String>,
    pub transcript_vtt: Option<String>,
    /// When a host last edited the summary, and who.
    pub summary_edited_at: Option<chrono::DateTime<chrono::Utc>>,
    pub summary_edited_by: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Stores the transcript files in object storage and records the artifact (replacing an earlier one, and
/// with it any edit of the summary: the caller asked before).
pub async fn save(app: &App, lecture_id: &str, upload: ArtifactUpload) -> Result<Artifact> {
    let (lecture, _) = assistant_lecture_record(app, lecture_id).await?;
    if let Some(kind) = &upload.summary_kind {
        if !matches!(kind.as_str(), "llm" | "extractive") {
            return Err(Error::invalid("invalid_artifact", "summaryKind must be llm or extractive"));
        }
    }
    let state = match upload.status {
        ArtifactStatus::Complete => ArtifactState::Complete,
        ArtifactStatus::Failed => ArtifactState::Failed,
        ArtifactStatus::Pending => {
            return Err(Error::invalid("invalid_artifact", "status must be complete or failed"));
        }
    };
    let txt_key = format!("lectures/{}/transcript.txt", lecture.id);
    let vtt_key = format!("lectures/{}/transcript.vtt", lecture.id);
    app.storage().put_bytes(&txt_key, upload.transcript_text.into_bytes()).await?;
    app.storage().put_bytes(&vtt_key, upload.transcript_vtt.into_bytes()).await?;
    let now = app.clock().now_ms();
    let created_at = app.store().artifact(&lecture.id).await?.map_or(now, |a| a.created_at);
    app.store()
        .upsert_artifact(&ArtifactRecord {
            lecture_id: lecture.id.clone(),
            transcript_key: Some(txt_key),
            vtt_key: Some(vtt_key),
            summary: upload.summary.map(|s| s.to_string()),
            summary_kind: upload.summary_kind,
            provider: upload.provider,
            model: upload.model,
            state,
            error: upload.error.map(|e| e.chars().take(2000).collect()),
            summary_edited_at: None,
            summary_edited_by: None,
            created_at,
            updated_at: now,
        })
        .await?;
    get(app, &lecture.id).await?.ok_or_else(|| Error::internal("the artifact vanished after saving"))
}

/// The artifact of a lecture, with the transcript read back from storage.
pub async fn get(app: &App, lecture_id: &str) -> Result<Option<Artifact>> {
    let Some(record) = app.store().artifact(lecture_id).await? else { return Ok(None) };
    let read = |key: Option<String>| async move {
        match key {
            Some(k) => app.storage().get_text(&k).await.map(Some),
            None => Ok(None),
        }
    };
    Ok(Some(Artifact {
        lecture_id: record.lecture_id,
        status: record.state.into(),
        summary: record.summary.as_deref().and_then(|s| serde_json::from_str(s).ok()),
        summary_kind: record.summary_kind,
        provider: record.provider,
        model: record.model,
        error: record.error,
        transcript_text: read(record.transcript_key).await?,
        transcript_vtt: read(record.vtt_key).await?,
        summary_edited_at: record.summary_edited_at.map(crate::time::to_datetime),
        summary_edited_by: record.summary_edited_by,
        updated_at: crate::time::to_datetime(record.updated_at),
    }))
}

/// `confctl admin lecture resummarize ID`: summarises an ended lecture again from its stored transcript, with
/// the summariser configured now and chosen by the AI settings, and replaces its artifact.
pub async fn resummarize(app: &App, lecture_id: &str) -> Result<Artifact> {
    let before = app.store().artifact(lecture_id).await?;
    resummarize_after(app, lecture_id, before).await
}

/// Summarises again, `before` being the artifact as it was before the attempt (the lecture page marks it
/// pending meanwhile). Safely: a summary that fails does not replace one that exists — that one comes back,
/// with the failure recorded beside it — so a good summary is never lost to a retry.
pub async fn resummarize_after(app: &App, lecture_id: &str, before: Option<ArtifactRecord>) -> Result<Artifact> {
    let context = context(app, lecture_id).await?;
    if !context.settings.enabled {
        // Summarising again with summaries off would only throw the summary away.
        if let Some(previous) = before {
            app.store().upsert_artifact(&previous).await?;
        }
        return Err(Error::conflict(
            "summaries_off",
            "summaries are switched off in the AI settings (confctl admin settings set summaries on)",
        ));
    }
    let summariser = crate::agent::summary::Summariser::from_config(&app.config().agent).map_err(|err| {
        tracing::error!(error = %format!("{err:#}"), "cannot build the summariser");
        Error::unavailable("summariser_unavailable", "the summariser is not configured correctly (see the server log)")
    });
    let upload = match summariser {
        Ok(summariser) => crate::agent::artifact_for(&summariser, &context, &app.config().agent.default_language).await,
        Err(err) => {
            if let Some(previous) = before {
                app.store().upsert_artifact(&previous).await?;
            }
            return Err(err);
        }
    };
    match (&upload.error, before) {
        (Some(error), Some(previous)) if previous.summary.is_some() => {
            tracing::warn!(lecture = lecture_id, error, "a new summary failed; the existing one is kept");
            let kept = ArtifactRecord {
                state: ArtifactState::Complete,
                error: Some(format!("regenerating failed, the earlier summary is kept: {error}")),
                updated_at: app.clock().now_ms().max(previous.updated_at + 1),
                ..previous
            };
            app.store().upsert_artifact(&kept).await?;
            Err(Error::unavailable(
                "summary_failed",
                "the summariser failed; the existing summary is kept (the lecture page and the server log say why)",
            ))
        }
        _ => save(app, lecture_id, upload).await,
    }
}
