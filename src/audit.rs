//! Reading the audit log: who did what, newest first, filtered and paged. (Entries are written with
//! `app::audit` by the domain that acts.)

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{AuditEntry, AuditFilter};

/// Query string of the audit routes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    pub room: Option<String>,
    /// A user id.
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 time: entries at or after it.
    pub since: Option<String>,
    /// The `nextBefore` cursor of the previous page.
    pub before: Option<i64>,
    pub limit: Option<i64>,
}

/// One page of entries, and the cursor for the next (older) page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<i64>,
}

fn parse_time(text: &str) -> Result<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| Error::invalid("invalid_since", "since must be an RFC 3339 time such as 2026-11-28T09:00:00Z"))
}

/// Lists entries. `room_scope` forces the room filter (for a host's view of their own room).
pub async fn list(app: &App, query: AuditQuery, room_scope: Option<&str>) -> Result<AuditPage> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let filter = AuditFilter {
        room_id: room_scope.map(str::to_owned).or(query.room),
        actor_id: query.actor,
        action: query.action,
        since_ms: query.since.as_deref().map(parse_time).transpose()?,
        before_ms: query.before,
        limit,
    };
    let entries = app.store().list_audit(&filter).await?;
    let next_before =
        if entries.len() as i64 == limit { entries.last().map(|e| e.at.timestamp_millis()) } else { None };
    Ok(AuditPage { entries, next_before })
}
