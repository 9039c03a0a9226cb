//! Queries for the AI assistant: agent tokens, transcript segments and lecture artifacts.

use super::{DbResult, Store};
use crate::error::{Error, Result};

/// An agent token row (the token itself is never stored).
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
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

macro_rules! token_columns {
    () => {
        "id, name, token_hash, created_by, created_at, last_used_at, revoked_at"
    };
}

/// A final caption segment (also the agent API's wire type for the summary context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    pub segment_id: String,
    pub speaker_identity: String,
    pub speaker_name: String,
    pub text: String,
    /// Milliseconds since the lecture went live.
    pub start_ms: i64,
    pub end_ms: i64,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub provider: String,
}

impl SegmentRecord {
    /// Who spoke, for people: the display name, else the identity.
    pub fn speaker(&self) -> &str {
        let name = self.speaker_name.trim();
        if name.is_empty() { self.speaker_identity.trim() } else { name }
    }
}

/// Text as search compares it: lower case by Unicode's rules (SQLite's `LOWER` knows only ASCII, so
/// confctl folds text itself, the same way for both databases).
pub(super) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Where a lecture's summary stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactState {
    /// Being written (or rewritten).
    Pending,
    Complete,
    Failed,
}

impl ArtifactState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }
}

/// `pending`, `complete`, and anything else failed.
impl From<String> for ArtifactState {
    fn from(text: String) -> Self {
        match text.as_str() {
            "pending" => Self::Pending,
            "complete" => Self::Complete,
            _ => Self::Failed,
        }
    }
}

/// The lecture artifact row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArtifactRecord {
    pub lecture_id: String,
    pub transcript_key: Option<String>,
    pub vtt_key: Option<String>,
    /// JSON text: the summary as shown, a host's edits included.
    pub summary: Option<String>,
    pub summary_kind: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    #[sqlx(rename = "status", try_from = "String")]
    pub state: ArtifactState,
    pub error: Option<String>,
    pub summary_edited_at: Option<i64>,
    pub summary_edited_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    pub async fn insert_agent_token(&self, t: &AgentTokenRecord) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO agent_tokens (id, name, token_hash, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.token_hash)
            .bind(t.created_by.as_deref())
            .bind(t.created_at),
        )
        .await
        .db("agent token")?;
        Ok(())
    }

    pub async fn agent_token_by_hash(&self, hash: &str) -> Result<Option<AgentTokenRecord>> {
        sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM agent_tokens WHERE token_hash = $1"))
            .bind(hash)
            .fetch_optional(self.reader())
            .await
            .db("agent token")
    }

    pub async fn list_agent_tokens(&self) -> Result<Vec<AgentTokenRecord>> {
        sqlx::query_as(concat!("SELECT ", token_columns!(), " FROM agent_tokens ORDER BY created_at, id"))
            .fetch_all(self.reader())
            .await
            .db("agent token")
    }

    pub async fn touch_agent_token(&self, id: &str, at: i64) -> Result<()> {
        self.write(sqlx::query("UPDATE agent_tokens SET last_used_at = $2 WHERE id = $1").bind(id).bind(at))
            .await
            .db("agent token")?;
        Ok(())
    }

    pub async fn revoke_agent_token(&self, id: &str) -> Result<()> {
        let n = self
            .write(
                sqlx::query("UPDATE agent_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(crate::time::now_ms()),
            )
            .await
            .db("agent token")?
            .rows_affected();
        if n == 0 { Err(Error::not_found("agent_token_not_found", "no such active agent token")) } else { Ok(()) }
    }

    /// Stores a final segment once; returns false when this segment id was already stored.
    pub async fn insert_segment(&self, lecture_id: &str, s: &SegmentRecord) -> Result<bool> {
        Ok(self.write(sqlx::query(
            "INSERT INTO transcript_segments (id, lecture_id, segment_id, speaker_identity, speaker_name, text, start_ms, end_ms, \
             language, provider, created_at, text_folded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (lecture_id, segment_id) DO NOTHING",
        )
        .bind(crate::ids::new_id())
        .bind(lecture_id)
        .bind(&s.segment_id)
        .bind(&s.speaker_identity)
        .bind(&s.speaker_name)
        .bind(&s.text)
        .bind(s.start_ms)
        .bind(s.end_ms)
        .bind(&s.language)
        .bind(&s.provider)
        .bind(crate::time::now_ms())
        .bind(fold(&s.text))
        )
        .await
        .db("transcript segment")?
        .rows_affected()
            == 1)
    }

    /// Folds every segment's search text again (after migration 6), a batch at a time.
    pub(super) async fn refold_segments(&self) -> Result<u64> {
        let mut done = 0;
        let mut after = String::new();
        loop {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, text FROM transcript_segments WHERE id > $1 ORDER BY id LIMIT 500")
                    .bind(&after)
                    .fetch_all(self.reader())
                    .await
                    .db("transcript segment")?;
            let Some((last, _)) = rows.last() else { return Ok(done) };
            after = last.clone();
            let folded: Vec<(String, String)> = rows.into_iter().map(|(id, text)| (id, fold(&text))).collect();
            done += folded.len() as u64;
            self.write_atomic(move |tx| {
                Box::pin(async move {
                    for (id, text) in &folded {
                        sqlx::query("UPDATE transcript_segments SET text_folded = $2 WHERE id = $1")
                            .bind(id)
                            .bind(text)
                            .execute(&mut *tx)
                            .await
                            .db("transcript segment")?;
                    }
                    Ok(())
                })
            })
            .await?;
        }
    }

    /// A lecture's final segments in spoken order (read as one JSON array: a two-hour lecture has over a
    /// thousand).
    pub async fn segments(&self, lecture_id: &str) -> Result<Vec<SegmentRecord>> {
        self.read_rows_as_json(
            "transcript segment",
            // SegmentRecord's fields, in their order.
            "segment_id, speaker_identity, speaker_name, text, start_ms, end_ms, language, provider",
            "FROM transcript_segments WHERE lecture_id = $1",
            "start_ms, end_ms, segment_id",
            lecture_id,
        )
        .await
    }

    /// Saves the artifact of a lecture, replacing an earlier one.
    pub async fn upsert_artifact(&self, a: &ArtifactRecord) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO lecture_artifacts (lecture_id, transcript_key, vtt_key, summary, summary_kind, provider, model, \
             status, error, summary_edited_at, summary_edited_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (lecture_id) DO UPDATE SET transcript_key = EXCLUDED.transcript_key, vtt_key = EXCLUDED.vtt_key, \
             summary = EXCLUDED.summary, summary_kind = EXCLUDED.summary_kind, provider = EXCLUDED.provider, \
             model = EXCLUDED.model, status = EXCLUDED.status, error = EXCLUDED.error, \
             summary_edited_at = EXCLUDED.summary_edited_at, summary_edited_by = EXCLUDED.summary_edited_by, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(&a.lecture_id)
        .bind(a.transcript_key.as_deref())
        .bind(a.vtt_key.as_deref())
        .bind(a.summary.as_deref())
        .bind(a.summary_kind.as_deref())
        .bind(a.provider.as_deref())
        .bind(a.model.as_deref())
        .bind(a.state.as_str())
        .bind(a.error.as_deref())
        .bind(a.summary_edited_at)
        .bind(a.summary_edited_by.as_deref())
        .bind(a.created_at)
        .bind(a.updated_at)
        )
        .await
        .db("lecture artifact")?;
        Ok(())
    }

    /// Replaces the summary with a host's edit, unless the artifact changed since the host read it
    /// (`expected_updated_at`); returns false then.
    pub async fn edit_summary(
        &self,
        lecture_id: &str,
        summary: &str,
        by: &str,
        at: i64,
        expected_updated_at: i64,
    ) -> Result<bool> {
        Ok(self
            .write(
                sqlx::query(
                    "UPDATE lecture_artifacts SET summary = $2, summary_edited_at = $4, summary_edited_by = $3, \
             updated_at = $4 WHERE lecture_id = $1 AND updated_at = $5",
                )
                .bind(lecture_id)
                .bind(summary)
                .bind(by)
                .bind(at)
                .bind(expected_updated_at),
            )
            .await
            .db("lecture artifact")?
            .rows_affected()
            == 1)
    }

    /// Records that a summary is expected for a lecture that just ended, unless an artifact exists already.
    pub async fn expect_summary(&self, lecture_id: &str, at: i64) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO lecture_artifacts (lecture_id, status, created_at, updated_at) VALUES ($1, 'pending', $2, $2) \
             ON CONFLICT (lecture_id) DO NOTHING",
        )
        .bind(lecture_id)
        .bind(at)
        )
        .await
        .db("lecture artifact")?;
        Ok(())
    }

    /// Marks a lecture's summary as being rewritten (creating the artifact row if there is none yet).
    pub async fn mark_summary_pending(&self, lecture_id: &str, at: i64) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO lecture_artifacts (lecture_id, status, created_at, updated_at) VALUES ($1, 'pending', $2, $2) \
             ON CONFLICT (lecture_id) DO UPDATE SET status = 'pending', error = NULL, updated_at = EXCLUDED.updated_at",
        )
        .bind(lecture_id)
        .bind(at)
        )
        .await
        .db("lecture artifact")?;
        Ok(())
    }

    pub async fn artifact(&self, lecture_id: &str) -> Result<Option<ArtifactRecord>> {
        sqlx::query_as(
            "SELECT lecture_id, transcript_key, vtt_key, summary, summary_kind, provider, model, status, error, \
             summary_edited_at, summary_edited_by, created_at, updated_at FROM lecture_artifacts WHERE lecture_id = $1",
        )
        .bind(lecture_id)
        .fetch_optional(self.reader())
        .await
        .db("lecture artifact")
    }
}
