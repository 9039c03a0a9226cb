//! Queries on the Google Drive tables: token-sealing keys, hosts' connections (sealed refresh tokens),
//! authorization requests under way, and where each lecture's files went in Drive.

use super::{DbResult, Store};
use crate::error::Result;

/// One version of the key material that seals refresh tokens.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriveKeyRecord {
    pub version: i64,
    /// base64url of 32 random bytes; the sealing key is derived from it.
    #[sqlx(try_from = "String")]
    pub material: crate::secret::Secret,
}

/// A host's connection to Google Drive. `refresh_token` is sealed (see `gdrive::seal`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriveConnectionRecord {
    pub user_id: String,
    pub refresh_token: String,
    pub key_version: i64,
    pub scope: String,
    pub google_email: Option<String>,
    pub connected_at: i64,
}

/// An authorization request under way (the `state` itself is only kept as a hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DriveAuthorizationRecord {
    pub state_hash: String,
    pub user_id: String,
    pub session_id: String,
    #[sqlx(try_from = "String")]
    pub code_verifier: crate::secret::Secret,
    pub redirect_uri: String,
    pub created_at: i64,
    pub expires_at: i64,
}

macro_rules! connection_columns {
    () => {
        "user_id, refresh_token, key_version, scope, google_email, connected_at"
    };
}

impl Store {
    /// Every key version, oldest first.
    pub async fn drive_token_keys(&self) -> Result<Vec<DriveKeyRecord>> {
        sqlx::query_as("SELECT version, material FROM drive_token_keys ORDER BY version")
            .fetch_all(self.reader())
            .await
            .db("Drive token key")
    }

    /// Adds a key version; `false` when that version already exists (another process made it first).
    pub async fn insert_drive_token_key(&self, version: i64, material: &str) -> Result<bool> {
        let added = self
            .write(
                sqlx::query(
                    "INSERT INTO drive_token_keys (version, material, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version) DO NOTHING",
                )
                .bind(version)
                .bind(material)
                .bind(crate::time::now_ms()),
            )
            .await
            .db("Drive token key")?
            .rows_affected();
        Ok(added == 1)
    }

    /// Deletes the key versions older than `current` that no connection uses any more; returns them.
    pub async fn delete_unused_drive_token_keys(&self, current: i64) -> Result<Vec<i64>> {
        let versions: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM drive_token_keys k WHERE version < $1 \
             AND NOT EXISTS (SELECT 1 FROM drive_connections c WHERE c.key_version = k.version)",
        )
        .bind(current)
        .fetch_all(self.reader())
        .await
        .db("Drive token key")?;
        let mut deleted = Vec::new();
        for version in versions {
            // The reference check again, inside the DELETE: a connection sealed meanwhile keeps its key.
            let gone = self
                .write(
                    sqlx::query(
                        "DELETE FROM drive_token_keys WHERE version = $1 \
                 AND NOT EXISTS (SELECT 1 FROM drive_connections c WHERE c.key_version = $1)",
                    )
                    .bind(version),
                )
                .await
                .db("Drive token key")?
                .rows_affected();
            if gone == 1 {
                deleted.push(version);
            }
        }
        Ok(deleted)
    }

    /// Stores (or replaces) a host's connection.
    pub async fn upsert_drive_connection(&self, c: &DriveConnectionRecord) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO drive_connections (user_id, refresh_token, key_version, scope, google_email, connected_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id) DO UPDATE SET \
             refresh_token = excluded.refresh_token, key_version = excluded.key_version, scope = excluded.scope, \
             google_email = excluded.google_email, connected_at = excluded.connected_at",
        )
        .bind(&c.user_id)
        .bind(&c.refresh_token)
        .bind(c.key_version)
        .bind(&c.scope)
        .bind(&c.google_email)
        .bind(c.connected_at)
        )
        .await
        .db("Drive connection")?;
        Ok(())
    }

    pub async fn drive_connection(&self, user_id: &str) -> Result<Option<DriveConnectionRecord>> {
        sqlx::query_as(concat!("SELECT ", connection_columns!(), " FROM drive_connections WHERE user_id = $1"))
            .bind(user_id)
            .fetch_optional(self.reader())
            .await
            .db("Drive connection")
    }

    /// Connections sealed with a key version older than `version`, for rotation.
    pub async fn drive_connections_sealed_before(&self, version: i64) -> Result<Vec<DriveConnectionRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM drive_connections WHERE key_version < $1 ORDER BY user_id"
        ))
        .bind(version)
        .fetch_all(self.reader())
        .await
        .db("Drive connection")
    }

    /// Replaces a sealed token with its re-sealed form, only if the row still holds `old` (a host who
    /// reconnected meanwhile keeps the new token). `true` when it was replaced.
    pub async fn reseal_drive_connection(&self, user_id: &str, old: &str, sealed: &str, version: i64) -> Result<bool> {
        let changed = self
            .write(
                sqlx::query(
                    "UPDATE drive_connections SET refresh_token = $3, key_version = $4 \
             WHERE user_id = $1 AND refresh_token = $2",
                )
                .bind(user_id)
                .bind(old)
                .bind(sealed)
                .bind(version),
            )
            .await
            .db("Drive connection")?
            .rows_affected();
        Ok(changed == 1)
    }

    /// Deletes a host's connection; `false` when there was none.
    pub async fn delete_drive_connection(&self, user_id: &str) -> Result<bool> {
        let gone = self
            .write(sqlx::query("DELETE FROM drive_connections WHERE user_id = $1").bind(user_id))
            .await
            .db("Drive connection")?
            .rows_affected();
        Ok(gone == 1)
    }

    /// Records an authorization request, and drops the ones that have expired.
    pub async fn insert_drive_authorization(&self, a: &DriveAuthorizationRecord) -> Result<()> {
        self.write(sqlx::query("DELETE FROM drive_authorizations WHERE expires_at < $1").bind(a.created_at))
            .await
            .db("Drive authorization")?;
        self.write(
            sqlx::query(
                "INSERT INTO drive_authorizations \
             (state_hash, user_id, session_id, code_verifier, redirect_uri, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&a.state_hash)
            .bind(&a.user_id)
            .bind(&a.session_id)
            .bind(a.code_verifier.expose())
            .bind(&a.redirect_uri)
            .bind(a.created_at)
            .bind(a.expires_at),
        )
        .await
        .db("Drive authorization")?;
        Ok(())
    }

    /// Takes an authorization request out (single use): of two callbacks with the same `state`, only one
    /// gets it.
    pub async fn take_drive_authorization(&self, state_hash: &str) -> Result<Option<DriveAuthorizationRecord>> {
        let record: Option<DriveAuthorizationRecord> = sqlx::query_as(
            "SELECT state_hash, user_id, session_id, code_verifier, redirect_uri, created_at, expires_at \
             FROM drive_authorizations WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(self.reader())
        .await
        .db("Drive authorization")?;
        let Some(record) = record else { return Ok(None) };
        let taken = self
            .write(sqlx::query("DELETE FROM drive_authorizations WHERE state_hash = $1").bind(state_hash))
            .await
            .db("Drive authorization")?
            .rows_affected();
        Ok((taken == 1).then_some(record))
    }

    /// The Drive folder this host's export of the lecture went to.
    pub async fn drive_export_folder(&self, user_id: &str, lecture_id: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT folder_id FROM drive_exports WHERE user_id = $1 AND lecture_id = $2")
            .bind(user_id)
            .bind(lecture_id)
            .fetch_optional(self.reader())
            .await
            .db("Drive export")
    }

    pub async fn set_drive_export_folder(&self, user_id: &str, lecture_id: &str, folder_id: &str) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO drive_exports (user_id, lecture_id, folder_id, exported_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, lecture_id) DO UPDATE SET folder_id = excluded.folder_id, \
             exported_at = excluded.exported_at",
            )
            .bind(user_id)
            .bind(lecture_id)
            .bind(folder_id)
            .bind(crate::time::now_ms()),
        )
        .await
        .db("Drive export")?;
        Ok(())
    }

    /// The Drive file an exported file became, by its name in the lecture's folder.
    pub async fn drive_file_id(&self, user_id: &str, lecture_id: &str, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT file_id FROM drive_files WHERE user_id = $1 AND lecture_id = $2 AND name = $3")
            .bind(user_id)
            .bind(lecture_id)
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .db("Drive file")
    }

    pub async fn set_drive_file(
        &self,
        user_id: &str,
        lecture_id: &str,
        name: &str,
        file_id: &str,
        size: u64,
    ) -> Result<()> {
        self.write(
            sqlx::query(
                "INSERT INTO drive_files (user_id, lecture_id, name, file_id, size, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, lecture_id, name) DO UPDATE SET \
             file_id = excluded.file_id, size = excluded.size, uploaded_at = excluded.uploaded_at",
            )
            .bind(user_id)
            .bind(lecture_id)
            .bind(name)
            .bind(file_id)
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(crate::time::now_ms()),
        )
        .await
        .db("Drive file")?;
        Ok(())
    }
}
