//! Agent tokens: the credentials `confctl agent` uses to reach `confctl serve`. Created by an administrator,
//! shown once, stored as a hash, revocable.

use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::AgentTokenRecord;

/// Agent tokens carry this prefix so they are recognisable in a config file or a leak scanner.
const PREFIX: &str = "cfa_";

/// Creates a token; returns the record and the token itself (shown once).
pub async fn create(app: &App, actor: &Actor, name: &str) -> Result<(AgentTokenRecord, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("invalid_name", "the token name must have 1 to 100 characters"));
    }
    let token = format!("{PREFIX}{}", ids::new_secret());
    let record = AgentTokenRecord {
        id: ids::new_id(),
        name: name.to_owned(),
        token_hash: ids::secret_hash(&token),
        created_by: Some(actor.label.clone()),
        created_at: app.clock().now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    app.store().insert_agent_token(&record).await?;
    audit::record(
        app,
        actor,
        "agent_token.create",
        Some(("agent_token", &record.id)),
        None,
        serde_json::json!({ "name": name }),
    )
    .await;
    Ok((record, token))
}

pub async fn list(app: &App) -> Result<Vec<AgentTokenRecord>> {
    app.store().list_agent_tokens().await
}

pub async fn revoke(app: &App, actor: &Actor, id: &str) -> Result<()> {
    app.store().revoke_agent_token(id).await?;
    audit::record(app, actor, "agent_token.revoke", Some(("agent_token", id)), None, serde_json::json!({})).await;
    Ok(())
}

/// Resolves a bearer token to an active agent token.
pub async fn authenticate(app: &App, token: &str) -> Result<AgentTokenRecord> {
    let invalid = || {
        Error::unauthenticated(
            "invalid_agent_token",
            "a valid agent token is required (confctl admin agent-token create)",
        )
    };
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Err(invalid());
    }
    let record = app.store().agent_token_by_hash(&ids::secret_hash(token)).await?.ok_or_else(invalid)?;
    if record.revoked_at.is_some() {
        return Err(invalid());
    }
    let now = app.clock().now_ms();
    if record.last_used_at.is_none_or(|at| now - at > 60_000) {
        app.store().touch_agent_token(&record.id, now).await?;
    }
    Ok(record)
}
