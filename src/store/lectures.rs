//! Queries on `lectures` (one session of a room each), their share links, and transcript search.

use super::{DbResult, SegmentRecord, Store, UnknownValue};
use crate::error::{Error, Result};

/// A lecture's life: OPEN until it goes live, LIVE while under way, ENDED for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LectureStatus {
    Open,
    Live,
    Ended,
}

impl TryFrom<String> for LectureStatus {
    type Error = UnknownValue;
    fn try_from(text: String) -> std::result::Result<Self, UnknownValue> {
        match text.as_str() {
            "OPEN" => Ok(Self::Open),
            "LIVE" => Ok(Self::Live),
            "ENDED" => Ok(Self::Ended),
            _ => Err(UnknownValue::new("lecture status", text)),
        }
    }
}

/// A lecture row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LectureRecord {
    pub id: String,
    pub room_id: String,
    /// 1 for a room's first lecture, then 2, 3…
    pub number: i64,
    #[sqlx(try_from = "String")]
    pub status: LectureStatus,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

macro_rules! lecture_columns {
    () => {
        "l.id, l.room_id, l.number, l.status, l.created_at, l.started_at, l.ended_at"
    };
}

/// A share link row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShareRecord {
    pub id: String,
    pub lecture_id: String,
    pub token_hash: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

macro_rules! share_columns {
    () => {
        "id, lecture_id, token_hash, created_by, created_at, expires_at, revoked_at, last_used_at"
    };
}

/// A transcript segment that matched a search, with the lecture it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SegmentHit {
    pub lecture_id: String,
    #[sqlx(flatten)]
    pub segment: SegmentRecord,
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(query: &str) -> String {
    let mut out = String::with_capacity(query.len() + 2);
    out.push('%');
    for c in super::assistant::fold(query).chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    pub async fn lecture_by_id(&self, id: &str) -> Result<LectureRecord> {
        sqlx::query_as(concat!("SELECT ", lecture_columns!(), " FROM lectures l WHERE l.id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("lecture")?
            .ok_or_else(|| Error::not_found("lecture_not_found", "no such lecture"))
    }

    /// The lectures of a room that went live (under way or ended), newest first. A lecture that never went
    /// live holds nothing worth listing.
    pub async fn lectures_of_room(&self, room_id: &str) -> Result<Vec<LectureRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            lecture_columns!(),
            " FROM lectures l WHERE l.room_id = $1 AND l.started_at IS NOT NULL ORDER BY l.number DESC"
        ))
        .bind(room_id)
        .fetch_all(self.reader())
        .await
        .db("lecture")
    }

    /// Lectures that went live, of one host's rooms (every host's with `None`), newest first.
    pub async fn lectures_of_host(&self, host_id: Option<&str>, limit: i64) -> Result<Vec<LectureRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            lecture_columns!(),
            " FROM lectures l JOIN rooms r ON r.id = l.room_id WHERE l.started_at IS NOT NULL \
             AND (CAST($1 AS TEXT) IS NULL OR r.host_id = $1) ORDER BY l.started_at DESC, l.id LIMIT $2"
        ))
        .bind(host_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .db("lecture")
    }

    /// Lectures that went live within `[since, until)` (either end open), oldest first: what batch export
    /// chooses from.
    pub async fn lectures_started_between(&self, since: Option<i64>, until: Option<i64>) -> Result<Vec<LectureRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            lecture_columns!(),
            " FROM lectures l WHERE l.started_at IS NOT NULL \
             AND (CAST($1 AS BIGINT) IS NULL OR l.started_at >= $1) \
             AND (CAST($2 AS BIGINT) IS NULL OR l.started_at < $2) ORDER BY l.started_at, l.id"
        ))
        .bind(since)
        .bind(until)
        .fetch_all(self.reader())
        .await
        .db("lecture")
    }

    /// Transcript segments of one lecture whose text contains `query` (case-insensitive by Unicode's rules),
    /// in spoken order.
    pub async fn search_segments(&self, lecture_id: &str, query: &str) -> Result<Vec<SegmentRecord>> {
        sqlx::query_as(
            "SELECT segment_id, speaker_identity, speaker_name, text, start_ms, end_ms, language, provider \
             FROM transcript_segments WHERE lecture_id = $1 AND text_folded LIKE $2 ESCAPE '\\' \
             ORDER BY start_ms, end_ms, segment_id",
        )
        .bind(lecture_id)
        .bind(like_pattern(query))
        .fetch_all(self.reader())
        .await
        .db("transcript segment")
    }

    /// Matching segments across the lectures of one host (all hosts with `None`), newest lecture first, at
    /// most `limit`.
    pub async fn search_host_segments(
        &self,
        host_id: Option<&str>,
        query: &str,
        limit: i64,
    ) -> Result<Vec<SegmentHit>> {
        sqlx::query_as(
            "SELECT s.lecture_id, s.segment_id, s.speaker_identity, s.speaker_name, s.text, s.start_ms, s.end_ms, \
             s.language, s.provider FROM transcript_segments s JOIN lectures l ON l.id = s.lecture_id \
             JOIN rooms r ON r.id = l.room_id WHERE (CAST($1 AS TEXT) IS NULL OR r.host_id = $1) \
             AND s.text_folded LIKE $2 ESCAPE '\\' ORDER BY l.started_at DESC, s.start_ms LIMIT $3",
        )
        .bind(host_id)
        .bind(like_pattern(query))
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .db("transcript segment")
    }

    pub async fn insert_share(&self, s: &ShareRecord) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO lecture_shares (id, lecture_id, token_hash, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&s.id)
            .bind(&s.lecture_id)
            .bind(&s.token_hash)
            .bind(s.created_by.as_deref())
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await
        .db("share link")?;
        Ok(())
    }

    pub async fn share_by_hash(&self, token_hash: &str) -> Result<Option<ShareRecord>> {
        sqlx::query_as(concat!("SELECT ", share_columns!(), " FROM lecture_shares WHERE token_hash = $1"))
            .bind(token_hash)
            .fetch_optional(self.reader())
            .await
            .db("share link")
    }

    pub async fn shares_of_lecture(&self, lecture_id: &str) -> Result<Vec<ShareRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            share_columns!(),
            " FROM lecture_shares WHERE lecture_id = $1 ORDER BY created_at DESC"
        ))
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("share link")
    }

    /// Revokes a share link of this lecture; false when there is no such link or it was revoked already.
    pub async fn revoke_share(&self, lecture_id: &str, id: &str, at: i64) -> Result<bool> {
        Ok(self.write(sqlx::query(
            "UPDATE lecture_shares SET revoked_at = $3 WHERE lecture_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(lecture_id)
        .bind(id)
        .bind(at)
        )
        .await
        .db("share link")?
        .rows_affected()
            == 1)
    }

    pub async fn touch_share(&self, id: &str, at: i64) -> Result<()> {
        self.write(sqlx::query("UPDATE lecture_shares SET last_used_at = $2 WHERE id = $1").bind(id).bind(at))
            .await
            .db("share link")?;
        Ok(())
    }
}
