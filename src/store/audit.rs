//! Queries on `audit_log`: who did what to which object, from where, and when.

use super::{DbResult, Store};
use crate::error::Result;

/// An entry to record.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub actor_id: Option<String>,
    /// Human-readable actor: an email, `cli`, `guest:<name>`, `system`.
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub room_id: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// A recorded entry.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub room_id: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub room_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub since_ms: Option<i64>,
    /// Entries strictly older than this (ms), for paging.
    pub before_ms: Option<i64>,
    pub limit: i64,
}

/// An `audit_log` row as stored: [`AuditEntry`] with its time in ms and its details as JSON text.
#[derive(sqlx::FromRow)]
struct AuditRow {
    id: String,
    at: i64,
    actor_id: Option<String>,
    actor_label: String,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    room_id: Option<String>,
    ip: Option<String>,
    details: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        Self {
            id: row.id,
            at: crate::time::to_datetime(row.at),
            actor_id: row.actor_id,
            actor_label: row.actor_label,
            action: row.action,
            target_type: row.target_type,
            target_id: row.target_id,
            room_id: row.room_id,
            ip: row.ip,
            // Details that no longer parse are shown as null rather than hiding the whole entry.
            details: serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl Store {
    pub async fn insert_audit(&self, entry: &NewAuditEntry) -> Result<()> {
        self.write(sqlx::query(
            "INSERT INTO audit_log (id, at, actor_id, actor_label, action, target_type, target_id, room_id, ip, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(crate::ids::new_id())
        .bind(crate::time::now_ms())
        .bind(entry.actor_id.as_deref())
        .bind(&entry.actor_label)
        .bind(&entry.action)
        .bind(entry.target_type.as_deref())
        .bind(entry.target_id.as_deref())
        .bind(entry.room_id.as_deref())
        .bind(entry.ip.as_deref())
        .bind(entry.details.to_string())
        )
        .await
        .db("audit entry")?;
        Ok(())
    }

    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        // Each optional filter is written as `($n IS NULL OR column = $n)` so one statement serves every
        // combination; the casts give PostgreSQL a type for a NULL parameter.
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor_id, actor_label, action, target_type, target_id, room_id, ip, details FROM audit_log \
             WHERE (CAST($1 AS TEXT) IS NULL OR room_id = $1) AND (CAST($2 AS TEXT) IS NULL OR actor_id = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR action = $3) AND (CAST($4 AS BIGINT) IS NULL OR at >= $4) \
             AND (CAST($5 AS BIGINT) IS NULL OR at < $5) ORDER BY at DESC, id DESC LIMIT $6",
        )
        .bind(filter.room_id.as_deref())
        .bind(filter.actor_id.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.since_ms)
        .bind(filter.before_ms)
        .bind(filter.limit.clamp(1, 500))
        .fetch_all(self.reader())
        .await
        .db("audit entry")?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
