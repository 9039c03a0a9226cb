//! Queries on `shared_files`.

use super::{DbResult, Flag, Store};
use crate::error::{Error, Result};

/// A shared-file row. `PENDING` until the upload is confirmed complete, then `SHARED`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FileRecord {
    pub id: String,
    pub room_id: String,
    pub lecture_id: String,
    pub object_key: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub participant_id: Option<String>,
    pub user_id: Option<String>,
    pub uploader_name: String,
    /// Read from `status` (see `file_columns!()`).
    #[sqlx(try_from = "Flag")]
    pub shared: bool,
    pub created_at: i64,
    pub completed_at: Option<i64>,
}

/// The columns of a [`FileRecord`], `status` read as the `shared` flag.
macro_rules! file_columns {
    () => {
        "id, room_id, lecture_id, object_key, file_name, content_type, size, participant_id, user_id, uploader_name, \
         CASE WHEN status = 'SHARED' THEN 1 ELSE 0 END AS shared, created_at, completed_at"
    };
}

/// Inserts a file row on `conn` (the pool or a transaction).
async fn insert_file_on<'c, E>(conn: E, f: &FileRecord) -> Result<()>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO shared_files (id, room_id, lecture_id, object_key, file_name, content_type, size, participant_id, \
         user_id, uploader_name, status, created_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&f.id)
    .bind(&f.room_id)
    .bind(&f.lecture_id)
    .bind(&f.object_key)
    .bind(&f.file_name)
    .bind(&f.content_type)
    .bind(f.size)
    .bind(f.participant_id.as_deref())
    .bind(f.user_id.as_deref())
    .bind(&f.uploader_name)
    .bind(if f.shared { "SHARED" } else { "PENDING" })
    .bind(f.created_at)
    .bind(f.completed_at)
    .execute(conn)
    .await
    .db("file")?;
    Ok(())
}

impl Store {
    pub async fn insert_file(&self, f: &FileRecord) -> Result<()> {
        let f = f.clone();
        self.write_atomic(move |tx| Box::pin(async move { insert_file_on(&mut *tx, &f).await })).await
    }

    /// Records a pending upload only if the room's stored and reserved bytes leave room for it under
    /// `quota`; false (and nothing recorded) when they do not. The check and the insert are one transaction
    /// that first writes the room's row: that takes PostgreSQL's row lock and SQLite's write lock, so
    /// parallel reservations for one room queue there and each one counts the rows of those before it.
    pub async fn reserve_file(&self, f: &FileRecord, quota: i64) -> Result<bool> {
        let f = f.clone();
        let room_id = f.room_id.clone();
        let reserved = self
            .write_atomic(move |tx| {
                Box::pin(async move {
                    // Writing the room's row takes PostgreSQL's row lock (SQLite has one writer anyway).
                    let locked = sqlx::query("UPDATE rooms SET id = id WHERE id = $1")
                        .bind(&f.room_id)
                        .execute(&mut *tx)
                        .await
                        .db("room")?
                        .rows_affected();
                    if locked != 1 {
                        return Err(Error::not_found("room_not_found", "no such room"));
                    }
                    let used: i64 = sqlx::query_scalar(
                        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM shared_files \
                         WHERE room_id = $1 AND deleted_at IS NULL",
                    )
                    .bind(&f.room_id)
                    .fetch_one(&mut *tx)
                    .await
                    .db("file")?;
                    if used.saturating_add(f.size) > quota {
                        return Ok(false);
                    }
                    insert_file_on(&mut *tx, &f).await?;
                    Ok(true)
                })
            })
            .await?;
        // The lock above raised the room's version: the cached copy is stale.
        self.rooms.forget(&room_id);
        Ok(reserved)
    }

    /// Unfinished uploads started before `before` (deleted or not): what the sweep removes.
    pub async fn stale_pending_files(&self, before: i64, limit: i64) -> Result<Vec<FileRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            file_columns!(),
            " FROM shared_files WHERE status = 'PENDING' AND created_at < $1 ORDER BY created_at LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .db("file")
    }

    /// Removes an unfinished upload's row; false when it was completed meanwhile (then it stays).
    pub async fn delete_pending_file(&self, id: &str) -> Result<bool> {
        Ok(self
            .write(sqlx::query("DELETE FROM shared_files WHERE id = $1 AND status = 'PENDING'").bind(id))
            .await
            .db("file")?
            .rows_affected()
            == 1)
    }

    /// A file that has not been deleted.
    pub async fn file_by_id(&self, id: &str) -> Result<FileRecord> {
        sqlx::query_as(concat!("SELECT ", file_columns!(), " FROM shared_files WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .db("file")?
            .ok_or_else(|| Error::not_found("file_not_found", "no such file"))
    }

    /// A lecture's shared files, oldest first.
    pub async fn shared_files(&self, lecture_id: &str) -> Result<Vec<FileRecord>> {
        sqlx::query_as(concat!(
            "SELECT ",
            file_columns!(),
            " FROM shared_files WHERE lecture_id = $1 AND status = 'SHARED' AND deleted_at IS NULL ORDER BY created_at, id"
        ))
        .bind(lecture_id)
        .fetch_all(self.reader())
        .await
        .db("file")
    }

    /// PENDING → SHARED; false when it was not pending.
    pub async fn mark_file_shared(&self, id: &str) -> Result<bool> {
        Ok(self
            .write(
                sqlx::query(
                    "UPDATE shared_files SET status = 'SHARED', completed_at = $2 WHERE id = $1 AND status = 'PENDING'",
                )
                .bind(id)
                .bind(crate::time::now_ms()),
            )
            .await
            .db("file")?
            .rows_affected()
            == 1)
    }

    /// Storage keys of every file of a room that is still in storage.
    pub async fn room_object_keys(&self, room_id: &str) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT object_key AS k FROM shared_files WHERE room_id = $1 AND deleted_at IS NULL \
             UNION ALL SELECT a.transcript_key AS k FROM lecture_artifacts a JOIN lectures l ON l.id = a.lecture_id \
             WHERE l.room_id = $1 AND a.transcript_key IS NOT NULL \
             UNION ALL SELECT a.vtt_key AS k FROM lecture_artifacts a JOIN lectures l ON l.id = a.lecture_id \
             WHERE l.room_id = $1 AND a.vtt_key IS NOT NULL",
        )
        .bind(room_id)
        .fetch_all(self.reader())
        .await
        .db("file")
    }

    pub async fn mark_file_deleted(&self, id: &str) -> Result<()> {
        self.write(
            sqlx::query("UPDATE shared_files SET deleted_at = $2 WHERE id = $1").bind(id).bind(crate::time::now_ms()),
        )
        .await
        .db("file")?;
        Ok(())
    }
}
