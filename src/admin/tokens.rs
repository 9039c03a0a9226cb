//! Admin API tokens: created by an administrator (`confctl admin api-token create`), shown once, stored as a
//! hash, with a scope (`read` looks, `admin` also acts), an optional expiry and a last-used time.

use std::time::Duration;

use crate::app::App;
use crate::audit::{self, Actor};
use crate::error::{Error, Result};
use crate::ids;
use crate::store::{ApiTokenRecord, ApiTokenScope};

/// API tokens carry this prefix so they are recognisable in a config file or a leak scanner.
pub const PREFIX: &str = "cfm_";

/// How long the token `confctl admin monitor` mints for itself on the server lives.
pub const LOCAL_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Parses an expiry such as `90d`, `12h`, `30m` or `never`.
pub fn parse_expiry(text: &str) -> Result<Option<Duration>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let bad = || Error::invalid("invalid_expiry", "give the expiry as a number with d, h or m (e.g. 90d) or `never`");
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .filter(|s| *s > 0 && *s <= 10 * 365 * 86_400)
    .ok_or_else(bad)?;
    Ok(Some(Duration::from_secs(secs)))
}

/// Creates a token; returns the record and the token itself (shown once).
pub async fn create(
    app: &App,
    actor: &Actor,
    name: &str,
    scope: ApiTokenScope,
    expires_in: Option<Duration>,
) -> Result<(ApiTokenRecord, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("invalid_name", "the token name must have 1 to 100 characters"));
    }
    let token = format!("{PREFIX}{}", ids::new_secret());
    let now = app.clock().now_ms();
    let record = ApiTokenRecord {
        id: ids::new_id(),
        name: name.to_owned(),
        token_hash: ids::secret_hash(&token),
        scope,
        created_by: Some(actor.label.clone()),
        created_at: now,
        expires_at: expires_in.map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))),
        last_used_at: None,
        revoked_at: None,
    };
    app.store().insert_api_token(&record).await?;
    audit::record(
        app,
        actor,
        "api_token.create",
        Some(("api_token", &record.id)),
        None,
        serde_json::json!({ "name": name, "scope": scope.as_str(), "expiresAt": record.expires_at }),
    )
    .await;
    Ok((record, token))
}

/// The short-lived admin token `confctl admin monitor` makes for itself when it runs on the server, with
/// the database at hand. Tokens of earlier runs that expired are cleared at the same time.
pub async fn mint_local(app: &App, actor: &Actor) -> Result<String> {
    let day_ago = app.clock().now_ms() - 86_400_000;
    app.store().delete_expired_api_tokens(day_ago).await?;
    let name = format!("monitor ({})", actor.label);
    Ok(create(app, actor, &name, ApiTokenScope::Admin, Some(LOCAL_TOKEN_TTL)).await?.1)
}

pub async fn list(app: &App) -> Result<Vec<ApiTokenRecord>> {
    app.store().list_api_tokens().await
}

pub async fn revoke(app: &App, actor: &Actor, id: &str) -> Result<()> {
    app.store().revoke_api_token(id, app.clock().now_ms()).await?;
    audit::record(app, actor, "api_token.revoke", Some(("api_token", id)), None, serde_json::json!({})).await;
    Ok(())
}

/// Someone calling the admin API with a token.
#[derive(Debug, Clone)]
pub struct TokenCaller {
    pub token: ApiTokenRecord,
}

impl TokenCaller {
    /// The token as the actor of an audited action: its name, and who created it.
    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor { user_id: None, label: format!("token:{}", self.token.name), ip }
    }
}

/// Resolves a bearer token to an active API token: unknown, revoked and expired tokens are 401, each with
/// its own code so the monitor can say which.
pub async fn authenticate(app: &App, token: &str) -> Result<TokenCaller> {
    let invalid = || {
        Error::unauthenticated(
            "invalid_api_token",
            "a valid admin API token is required (confctl admin api-token create)",
        )
    };
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Err(invalid());
    }
    let record = app.store().api_token_by_hash(&ids::secret_hash(token)).await?.ok_or_else(invalid)?;
    if record.revoked_at.is_some() {
        return Err(Error::unauthenticated("api_token_revoked", "this API token was revoked"));
    }
    let now = app.clock().now_ms();
    if record.expires_at.is_some_and(|at| at <= now) {
        return Err(Error::unauthenticated("api_token_expired", "this API token has expired"));
    }
    if record.last_used_at.is_none_or(|at| now - at > 60_000) {
        app.store().touch_api_token(&record.id, now).await?;
    }
    Ok(TokenCaller { token: record })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_parse_with_units_and_never() {
        assert_eq!(parse_expiry("90d").ok().flatten(), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_expiry("12h").ok().flatten(), Some(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_expiry("30m").ok().flatten(), Some(Duration::from_secs(1_800)));
        assert!(matches!(parse_expiry("never"), Ok(None)));
        for bad in ["", "d", "90", "90x", "0d", "-1d", "99999d"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }
}
