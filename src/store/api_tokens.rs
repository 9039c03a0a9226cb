//! Queries on `api_tokens`: the admin API's bearer tokens (only their hashes are stored).

use serde::Serialize;

use super::{DbResult, Store, UnknownValue};
use crate::error::{Error, Result};

/// What a token may do on `/api/admin/*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiTokenScope {
    /// Look only: snapshots, the event stream, lists.
    Read,
    /// Look and act: approve, kick, ban, lock, end, …
    Admin,
}

impl ApiTokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl TryFrom<String> for ApiTokenScope {
    type Error = UnknownValue;
    fn try_from(text: String) -> std::result::Result<Self, UnknownValue> {
        Self::parse(&text).ok_or_else(|| UnknownValue::new("API token scope", text))
    }
}

/// An API token row (the token itself is never stored).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ApiTokenRecord {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    #[sqlx(try_from = "String")]
    pub scope: ApiTokenScope,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

macro_rules! columns {
    () => {
        "id, name, token_hash, scope, created_by, created_at, expires_at, last_used_at, revoked_at"
    };
}

impl Store {
    pub async fn insert_api_token(&self, t: &ApiTokenRecord) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO api_tokens (id, name, token_hash, scope, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.token_hash)
            .bind(t.scope.as_str())
            .bind(t.created_by.as_deref())
            .bind(t.created_at)
            .bind(t.expires_at),
        )
        .await
        .db("API token")?;
        Ok(())
    }

    pub async fn api_token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRecord>> {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM api_tokens WHERE token_hash = $1"))
            .bind(hash)
            .fetch_optional(self.reader())
            .await
            .db("API token")
    }

    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM api_tokens ORDER BY created_at, id"))
            .fetch_all(self.reader())
            .await
            .db("API token")
    }

    pub async fn touch_api_token(&self, id: &str, at: i64) -> Result<()> {
        self.write(sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1").bind(id).bind(at))
            .await
            .db("API token")?;
        Ok(())
    }

    /// Revokes an active token by id; not found when there is none.
    pub async fn revoke_api_token(&self, id: &str, at: i64) -> Result<()> {
        let n = self
            .write(
                sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(at),
            )
            .await
            .db("API token")?
            .rows_affected();
        if n == 0 { Err(Error::not_found("api_token_not_found", "no such active API token")) } else { Ok(()) }
    }

    /// Deletes short-lived tokens that expired more than a day ago (the monitor's local tokens pile up).
    pub async fn delete_expired_api_tokens(&self, before: i64) -> Result<u64> {
        Ok(self
            .write(sqlx::query("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < $1").bind(before))
            .await
            .db("API token")?
            .rows_affected())
    }
}
