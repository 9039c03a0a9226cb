//! Queries on `instance_state`: small instance-wide values such as the one-time setup code and the global AI
//! settings (one row per setting, so two admins changing different settings never overwrite each other).

use super::{DbResult, Store};
use crate::error::Result;

impl Store {
    pub async fn instance_value(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM instance_state WHERE key = $1")
            .bind(key)
            .fetch_optional(self.reader())
            .await
            .db("instance setting")
    }

    /// Stores `value` under `key` unless a value is already there; returns the value in effect.
    pub async fn instance_value_or_insert(&self, key: &str, value: &str) -> Result<String> {
        self.write(
            sqlx::query("INSERT INTO instance_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value),
        )
        .await
        .db("instance setting")?;
        Ok(self.instance_value(key).await?.unwrap_or_else(|| value.to_owned()))
    }

    /// Every `(key, value)` whose key starts with `prefix`, in one query.
    pub async fn instance_values(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        // A plain comparison rather than LIKE, whose `_` and `%` would be wildcards inside the prefix (and
        // rather than a range, which PostgreSQL's locale-aware collations would not keep to the prefix).
        sqlx::query_as("SELECT key, value FROM instance_state WHERE substr(key, 1, length($1)) = $1")
            .bind(prefix)
            .fetch_all(self.reader())
            .await
            .db("instance setting")
    }

    /// Sets (`Some`) or removes (`None`) several values together: all of them or none.
    pub async fn set_instance_values(&self, changes: &[(&str, Option<String>)]) -> Result<()> {
        let changes: Vec<(String, Option<String>)> =
            changes.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        self.write_atomic(move |tx| {
            Box::pin(async move {
                for (key, value) in changes {
                    let query = match value {
                        Some(value) => sqlx::query(
                            "INSERT INTO instance_state (key, value) VALUES ($1, $2) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        )
                        .bind(key)
                        .bind(value),
                        None => sqlx::query("DELETE FROM instance_state WHERE key = $1").bind(key),
                    };
                    query.execute(&mut *tx).await.db("instance setting")?;
                }
                Ok(())
            })
        })
        .await
    }
}
