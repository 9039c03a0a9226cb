//! Queries on `sessions` (sign-in sessions of hosts and admins; only a hash of each token is stored).

use super::users::UserRecord;
use super::{DbResult, Store};
use crate::error::Result;

/// A session row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_session(
        &self,
        id: &str,
        user_id: &str,
        token_hash: &str,
        expires_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        let now = crate::time::now_ms();
        self.write(
            sqlx::query(
                "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(user_id)
            .bind(token_hash)
            .bind(now)
            .bind(now)
            .bind(expires_at)
            .bind(ip)
            .bind(user_agent),
        )
        .await
        .db("session")?;
        Ok(())
    }

    /// The session with this token hash and its user, if any (expiry is the caller's decision).
    pub async fn session_by_token_hash(&self, token_hash: &str) -> Result<Option<(SessionRecord, UserRecord)>> {
        let session: Option<SessionRecord> = sqlx::query_as(
            "SELECT id, user_id, created_at, last_seen_at, expires_at FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await
        .db("session")?;
        let Some(session) = session else { return Ok(None) };
        let user = self.user_by_id(&session.user_id).await?;
        Ok(Some((session, user)))
    }

    pub async fn touch_session(&self, id: &str, now: i64) -> Result<()> {
        self.write(sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1").bind(id).bind(now))
            .await
            .db("session")?;
        Ok(())
    }

    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.write(sqlx::query("DELETE FROM sessions WHERE id = $1").bind(id)).await.db("session")?;
        Ok(())
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        Ok(self
            .write(sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id))
            .await
            .db("session")?
            .rows_affected())
    }

    /// Removes sessions past their absolute expiry or idle since before `idle_cutoff`.
    pub async fn delete_stale_sessions(&self, now: i64, idle_cutoff: i64) -> Result<u64> {
        Ok(self
            .write(
                sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
                    .bind(now)
                    .bind(idle_cutoff),
            )
            .await
            .db("session")?
            .rows_affected())
    }
}
