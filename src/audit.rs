//! The audit log: who acts ([`Actor`]), writing an entry ([`record`], called by the domain that acts) and
//! reading them back, newest first, filtered and paged.

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

/// Who is acting, for authorisation and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    /// An email, `cli`, `guest:<name>` or `system`.
    pub label: String,
    pub ip: Option<String>,
}

impl Actor {
    /// The administrator at the terminal (`confctl admin …`).
    pub fn cli() -> Self {
        let who = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
        Self { user_id: None, label: format!("cli:{who}"), ip: None }
    }

    /// confctl itself (reconciliation, webhooks).
    pub fn system() -> Self {
        Self { user_id: None, label: "system".into(), ip: None }
    }
}

/// Records an audit entry; a failure to record is logged but does not undo the action it describes.
pub async fn record(
    app: &App,
    actor: &Actor,
    action: &str,
    target: Option<(&str, &str)>,
    room_id: Option<&str>,
    details: serde_json::Value,
) {
    let entry = crate::store::NewAuditEntry {
        actor_id: actor.user_id.clone(),
        actor_label: actor.label.clone(),
        action: action.to_owned(),
        target_type: target.map(|(t, _)| t.to_owned()),
        target_id: target.map(|(_, id)| id.to_owned()),
        room_id: room_id.map(str::to_owned),
        ip: actor.ip.clone(),
        details,
    };
    if let Err(err) = app.store().insert_audit(&entry).await {
        tracing::error!(action, error = %err, "could not write the audit log");
    }
    // Admins watching the instance (`confctl admin monitor`) see every audited action as it happens.
    app.hub().to_admins(
        "audit",
        room_id,
        serde_json::json!({
            "action": action,
            "actor": entry.actor_label,
            "targetType": entry.target_type,
            "targetId": entry.target_id,
            "details": entry.details,
        }),
    );
}
