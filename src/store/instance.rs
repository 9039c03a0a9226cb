//! Queries on `instance_state`: small instance-wide values such as the one-time setup code.

use sqlx::Row;

use super::{Store, map_err};
use crate::error::Result;

impl Store {
    pub async fn instance_value(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM instance_state WHERE key = $1")
            .bind(key)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err("instance setting"))?;
        row.map(|r| r.try_get("value")).transpose().map_err(map_err("instance setting"))
    }

    /// Stores `value` under `key` unless a value is already there; returns the value in effect.
    pub async fn instance_value_or_insert(&self, key: &str, value: &str) -> Result<String> {
        self.write(
            sqlx::query("INSERT INTO instance_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value),
        )
        .await
        .map_err(map_err("instance setting"))?;
        Ok(self.instance_value(key).await?.unwrap_or_else(|| value.to_owned()))
    }
}
