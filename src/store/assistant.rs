//! Queries for the AI assistant: agent tokens, transcript segments and lecture artifacts.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, map_err};
use crate::error::{Error, Result};

/// An agent token row (the token itself is never stored).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTokenRecord {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn token_from_row(row: &AnyRow) -> std::result::Result<AgentTokenRecord, sqlx::Error> {
    Ok(AgentTokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// A final caption segment.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    pub segment_id: String,
    pub speaker_identity: String,
    pub speaker_name: String,
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub language: String,
    pub provider: String,
}

/// The lecture artifact row.
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    pub room_id: String,
    pub transcript_key: Option<String>,
    pub vtt_key: Option<String>,
    /// JSON text.
    pub summary: Option<String>,
    pub summary_kind: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub complete: bool,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    pub async fn insert_agent_token(&self, t: &AgentTokenRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_tokens (id, name, token_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(t.created_by.as_deref())
        .bind(t.created_at)
        .execute(self.pool())
        .await
        .map_err(map_err("agent token"))?;
        Ok(())
    }

    pub async fn agent_token_by_hash(&self, hash: &str) -> Result<Option<AgentTokenRecord>> {
        let row = sqlx::query("SELECT id, name, token_hash, created_by, created_at, last_used_at, revoked_at FROM agent_tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err("agent token"))?;
        row.as_ref().map(token_from_row).transpose().map_err(map_err("agent token"))
    }

    pub async fn list_agent_tokens(&self) -> Result<Vec<AgentTokenRecord>> {
        let rows = sqlx::query("SELECT id, name, token_hash, created_by, created_at, last_used_at, revoked_at FROM agent_tokens ORDER BY created_at, id")
            .fetch_all(self.pool())
            .await
            .map_err(map_err("agent token"))?;
        rows.iter().map(token_from_row).collect::<std::result::Result<_, _>>().map_err(map_err("agent token"))
    }

    pub async fn touch_agent_token(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE agent_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(self.pool())
            .await
            .map_err(map_err("agent token"))?;
        Ok(())
    }

    pub async fn revoke_agent_token(&self, id: &str) -> Result<()> {
        let n = sqlx::query("UPDATE agent_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(crate::time::now_ms())
            .execute(self.pool())
            .await
            .map_err(map_err("agent token"))?
            .rows_affected();
        if n == 0 { Err(Error::not_found("agent_token_not_found", "no such active agent token")) } else { Ok(()) }
    }

    /// Stores a final segment once; returns false when this segment id was already stored.
    pub async fn insert_segment(&self, room_id: &str, s: &SegmentRecord) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO transcript_segments (id, room_id, segment_id, speaker_identity, speaker_name, text, start_ms, end_ms, \
             language, provider, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (room_id, segment_id) DO NOTHING",
        )
        .bind(crate::ids::new_id())
        .bind(room_id)
        .bind(&s.segment_id)
        .bind(&s.speaker_identity)
        .bind(&s.speaker_name)
        .bind(&s.text)
        .bind(s.start_ms)
        .bind(s.end_ms)
        .bind(&s.language)
        .bind(&s.provider)
        .bind(crate::time::now_ms())
        .execute(self.pool())
        .await
        .map_err(map_err("transcript segment"))?
        .rows_affected()
            == 1)
    }

    /// A room's final segments in spoken order.
    pub async fn segments(&self, room_id: &str) -> Result<Vec<SegmentRecord>> {
        let rows = sqlx::query(
            "SELECT segment_id, speaker_identity, speaker_name, text, start_ms, end_ms, language, provider \
             FROM transcript_segments WHERE room_id = $1 ORDER BY start_ms, end_ms, segment_id",
        )
        .bind(room_id)
        .fetch_all(self.pool())
        .await
        .map_err(map_err("transcript segment"))?;
        rows.iter()
            .map(|r| {
                Ok(SegmentRecord {
                    segment_id: r.try_get("segment_id")?,
                    speaker_identity: r.try_get("speaker_identity")?,
                    speaker_name: r.try_get("speaker_name")?,
                    text: r.try_get("text")?,
                    start_ms: r.try_get("start_ms")?,
                    end_ms: r.try_get("end_ms")?,
                    language: r.try_get("language")?,
                    provider: r.try_get("provider")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(map_err("transcript segment"))
    }

    /// Saves the artifact of a lecture, replacing an earlier one.
    pub async fn upsert_artifact(&self, a: &ArtifactRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO lecture_artifacts (room_id, transcript_key, vtt_key, summary, summary_kind, provider, model, status, \
             error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (room_id) DO UPDATE SET transcript_key = EXCLUDED.transcript_key, vtt_key = EXCLUDED.vtt_key, \
             summary = EXCLUDED.summary, summary_kind = EXCLUDED.summary_kind, provider = EXCLUDED.provider, \
             model = EXCLUDED.model, status = EXCLUDED.status, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
        )
        .bind(&a.room_id)
        .bind(a.transcript_key.as_deref())
        .bind(a.vtt_key.as_deref())
        .bind(a.summary.as_deref())
        .bind(a.summary_kind.as_deref())
        .bind(a.provider.as_deref())
        .bind(a.model.as_deref())
        .bind(if a.complete { "complete" } else { "failed" })
        .bind(a.error.as_deref())
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(self.pool())
        .await
        .map_err(map_err("lecture artifact"))?;
        Ok(())
    }

    pub async fn artifact(&self, room_id: &str) -> Result<Option<ArtifactRecord>> {
        let row = sqlx::query(
            "SELECT room_id, transcript_key, vtt_key, summary, summary_kind, provider, model, status, error, created_at, updated_at \
             FROM lecture_artifacts WHERE room_id = $1",
        )
        .bind(room_id)
        .fetch_optional(self.pool())
        .await
        .map_err(map_err("lecture artifact"))?;
        let Some(r) = row else { return Ok(None) };
        let status: String = r.try_get("status").map_err(map_err("lecture artifact"))?;
        let get = |c: &str| r.try_get::<Option<String>, _>(c).map_err(map_err("lecture artifact"));
        Ok(Some(ArtifactRecord {
            room_id: r.try_get("room_id").map_err(map_err("lecture artifact"))?,
            transcript_key: get("transcript_key")?,
            vtt_key: get("vtt_key")?,
            summary: get("summary")?,
            summary_kind: get("summary_kind")?,
            provider: get("provider")?,
            model: get("model")?,
            complete: status == "complete",
            error: get("error")?,
            created_at: r.try_get("created_at").map_err(map_err("lecture artifact"))?,
            updated_at: r.try_get("updated_at").map_err(map_err("lecture artifact"))?,
        }))
    }
}
