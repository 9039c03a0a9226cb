//! What a lecture leaves behind: caption segments stored as they arrive, and after the lecture the
//! transcript files and the summary written by the assistant.

pub mod stream;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, Result};
use crate::livekit::{self, Grant, ParticipantRole};
use crate::store::{ArtifactRecord, RoomRecord, RoomStatus, SegmentRecord};

/// LiveKit data topic for captions.
pub const TOPIC: &str = "transcription";

/// A room as the assistant sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantRoom {
    pub room_id: String,
    pub name: String,
    pub livekit_room_name: String,
    pub language: String,
    /// When the room became ACTIVE: caption times count from here.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn assistant_room(app: &App, room: &RoomRecord) -> AssistantRoom {
    AssistantRoom {
        room_id: room.id.clone(),
        name: room.name.clone(),
        livekit_room_name: livekit::room_name(&room.id),
        language: crate::rooms::language_of(app, room),
        started_at: room.started_at.map(crate::time::to_datetime),
    }
}

/// Active rooms that want the assistant.
pub async fn active_rooms(app: &App) -> Result<Vec<AssistantRoom>> {
    Ok(app
        .store()
        .rooms_with_status(RoomStatus::Active)
        .await?
        .iter()
        .filter(|r| r.ai_assistant)
        .map(|r| assistant_room(app, r))
        .collect())
}

/// The assistant's way into a room.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantToken {
    pub token: String,
    pub livekit_url: String,
    pub identity: &'static str,
}

async fn assistant_room_record(app: &App, room_id: &str) -> Result<RoomRecord> {
    let room = app.store().room_by_id(room_id).await?;
    if !room.ai_assistant {
        return Err(Error::not_found("assistant_off", "the AI assistant is switched off in this room"));
    }
    Ok(room)
}

/// A hidden listen-only token, for a live lecture only: the assistant has no business in a room before it
/// starts or after it ends, and a leaked agent token must not be a way to listen in on one.
pub async fn assistant_token(app: &App, room_id: &str) -> Result<AssistantToken> {
    let room = assistant_room_record(app, room_id).await?;
    match room.status {
        RoomStatus::Active => {}
        RoomStatus::Ended => return Err(Error::gone("room_ended", "this lecture has ended")),
        RoomStatus::Created => {
            return Err(Error::conflict("room_not_live", "this lecture has not started; join when it is announced"));
        }
    }
    let livekit_room = livekit::room_name(&room.id);
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
        identity: livekit::ASSISTANT_IDENTITY,
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

/// Publishes a caption into the room (topic `transcription`) and stores it when final.
pub async fn caption(app: &App, room_id: &str, caption: Caption) -> Result<CaptionReceipt> {
    let room = assistant_room_record(app, room_id).await?;
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
    let stored = if caption.is_final && !caption.text.trim().is_empty() {
        app.store()
            .insert_segment(
                &room.id,
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
    let delivered = match app.livekit().send_data(&livekit::room_name(&room.id), TOPIC, &payload).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!(error = %err, "caption stored but not delivered live");
            false
        }
    };
    Ok(CaptionReceipt { stored, delivered })
}

/// What the summariser needs, and nothing more: the room's name and language, the final caption segments the
/// assistant itself posted, and the names of the people who spoke. Not the chat and not the shared files: an
/// agent token works for every room, so whatever this returns, a leaked token reads.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryContext {
    pub room: AssistantRoom,
    pub segments: Vec<SegmentRecord>,
    /// Speakers' display names, in the order they first spoke.
    pub speakers: Vec<String>,
}

pub async fn context(app: &App, room_id: &str) -> Result<SummaryContext> {
    let room = assistant_room_record(app, room_id).await?;
    let segments = app.store().segments(&room.id).await?;
    let mut speakers: Vec<String> = Vec::new();
    for segment in &segments {
        if !segment.speaker_name.is_empty() && !speakers.contains(&segment.speaker_name) {
            speakers.push(segment.speaker_name.clone());
        }
    }
    Ok(SummaryContext { room: assistant_room(app, &room), segments, speakers })
}

/// The artifact as the assistant writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactUpload {
    pub transcript_text: String,
    pub transcript_vtt: String,
    #[serde(default)]
    pub summary: Option<serde_json::Value>,
    #[serde(default)]
    pub summary_kind: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    pub status: ArtifactStatus,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactStatus {
    Complete,
    Failed,
}

/// The artifact as it reads back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub room_id: String,
    pub status: ArtifactStatus,
    pub summary: Option<serde_json::Value>,
    pub summary_kind: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub error: Option<String>,
    pub transcript_text: Option<String>,
    pub transcript_vtt: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Stores the transcript files in object storage and records the artifact (replacing an earlier one).
pub async fn save(app: &App, room_id: &str, upload: ArtifactUpload) -> Result<Artifact> {
    let room = assistant_room_record(app, room_id).await?;
    if let Some(kind) = &upload.summary_kind {
        if !matches!(kind.as_str(), "llm" | "extractive") {
            return Err(Error::invalid("invalid_artifact", "summaryKind must be llm or extractive"));
        }
    }
    let txt_key = format!("rooms/{}/transcript.txt", room.id);
    let vtt_key = format!("rooms/{}/transcript.vtt", room.id);
    app.storage().put_bytes(&txt_key, upload.transcript_text.into_bytes()).await?;
    app.storage().put_bytes(&vtt_key, upload.transcript_vtt.into_bytes()).await?;
    let now = app.clock().now_ms();
    let created_at = app.store().artifact(&room.id).await?.map_or(now, |a| a.created_at);
    app.store()
        .upsert_artifact(&ArtifactRecord {
            room_id: room.id.clone(),
            transcript_key: Some(txt_key),
            vtt_key: Some(vtt_key),
            summary: upload.summary.map(|s| s.to_string()),
            summary_kind: upload.summary_kind,
            provider: upload.provider,
            model: upload.model,
            complete: upload.status == ArtifactStatus::Complete,
            error: upload.error.map(|e| e.chars().take(2000).collect()),
            created_at,
            updated_at: now,
        })
        .await?;
    get(app, &room.id).await?.ok_or_else(|| Error::internal("the artifact vanished after saving"))
}

/// The artifact of a lecture, with the transcript read back from storage.
pub async fn get(app: &App, room_id: &str) -> Result<Option<Artifact>> {
    let Some(record) = app.store().artifact(room_id).await? else { return Ok(None) };
    let read = |key: Option<String>| async move {
        match key {
            Some(k) => app.storage().get_text(&k).await.map(Some),
            None => Ok(None),
        }
    };
    Ok(Some(Artifact {
        room_id: record.room_id,
        status: if record.complete { ArtifactStatus::Complete } else { ArtifactStatus::Failed },
        summary: record.summary.as_deref().and_then(|s| serde_json::from_str(s).ok()),
        summary_kind: record.summary_kind,
        provider: record.provider,
        model: record.model,
        error: record.error,
        transcript_text: read(record.transcript_key).await?,
        transcript_vtt: read(record.vtt_key).await?,
        updated_at: crate::time::to_datetime(record.updated_at),
    }))
}
