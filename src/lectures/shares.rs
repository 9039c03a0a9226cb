//! Share links: a host hands a lecture's page to people outside the room — random, expiring, revocable,
//! read-only, without attendance. Only a hash of the token is stored; the link is shown once.

use serde::{Deserialize, Serialize};

use super::access::Opened;
use crate::app::App;
use crate::audit;
use crate::error::{Error, Result};
use crate::ids;
use crate::store::ShareRecord;

/// How long a link lives unless the host says otherwise, and at most.
const DEFAULT_DAYS: u64 = 7;
const MAX_DAYS: u64 = 365;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewShare {
    /// `7d`, `12h`, `90d`…; default 7 days, at most a year.
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// A share link as its host sees it (the token only right after creation).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareView {
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_by: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The page's path with the token (only right after creation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn view(s: &ShareRecord, now: i64) -> ShareView {
    ShareView {
        id: s.id.clone(),
        created_at: crate::time::to_datetime(s.created_at),
        expires_at: crate::time::to_datetime(s.expires_at),
        revoked_at: s.revoked_at.map(crate::time::to_datetime),
        last_used_at: s.last_used_at.map(crate::time::to_datetime),
        created_by: s.created_by.clone(),
        state: if s.revoked_at.is_some() {
            "revoked"
        } else if s.expires_at <= now {
            "expired"
        } else {
            "active"
        },
        token: None,
        path: None,
    }
}

pub async fn create(app: &App, opened: &Opened, request: NewShare) -> Result<ShareView> {
    opened.require_host()?;
    let lifetime = match request.expires_in.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => std::time::Duration::from_secs(DEFAULT_DAYS * 86_400),
        Some(text) => crate::time::parse_duration(text)
            .filter(|d| d.as_secs() >= 60 && d.as_secs() <= MAX_DAYS * 86_400)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid_expires_in",
                    format!("expiresIn must be a duration such as 7d or 12h, from 1m to {MAX_DAYS}d"),
                )
            })?,
    };
    let now = app.clock().now_ms();
    let token = ids::new_secret();
    let record = ShareRecord {
        id: ids::new_id(),
        lecture_id: opened.lecture.id.clone(),
        token_hash: ids::secret_hash(&token),
        created_by: Some(opened.actor().label),
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2)),
        revoked_at: None,
        last_used_at: None,
    };
    app.store().insert_share(&record).await?;
    audit::record(
        app,
        &opened.actor(),
        "lecture.share_create",
        Some(("lecture", &opened.lecture.id)),
        Some(&opened.room.id),
        serde_json::json!({ "shareId": record.id, "expiresAt": crate::time::to_datetime(record.expires_at) }),
    )
    .await;
    let mut out = view(&record, now);
    out.path = Some(format!("/lectures/{}?share={token}", opened.lecture.id));
    out.token = Some(token);
    Ok(out)
}

pub async fn list(app: &App, opened: &Opened) -> Result<Vec<ShareView>> {
    opened.require_host()?;
    let now = app.clock().now_ms();
    Ok(app.store().shares_of_lecture(&opened.lecture.id).await?.iter().map(|s| view(s, now)).collect())
}

pub async fn revoke(app: &App, opened: &Opened, share_id: &str) -> Result<()> {
    opened.require_host()?;
    if !app.store().revoke_share(&opened.lecture.id, share_id, app.clock().now_ms()).await? {
        return Err(Error::not_found("share_not_found", "no such active share link for this lecture"));
    }
    audit::record(
        app,
        &opened.actor(),
        "lecture.share_revoke",
        Some(("lecture", &opened.lecture.id)),
        Some(&opened.room.id),
        serde_json::json!({ "shareId": share_id }),
    )
    .await;
    Ok(())
}
