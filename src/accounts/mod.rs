//! Host and admin accounts: registration, sign-in sessions, roles, and the administrator's user commands.

pub mod agent_tokens;
pub mod devices;
pub mod password;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::audit::{self, Actor};
use crate::config::RegistrationPolicy;
use crate::error::{Error, Result};
use crate::ids;
use crate::ratelimit;
pub use crate::store::Role;
use crate::store::{NewUser, UserRecord};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        Self {
            id: r.id,
            email: r.email,
            name: r.display_name,
            role: r.role,
            disabled: r.disabled,
            created_at: crate::time::to_datetime(r.created_at),
        }
    }
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    /// This user as the actor of an audited action.
    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor { user_id: Some(self.id.clone()), label: self.email.clone(), ip }
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Normalises and checks an email address (trimmed; at most 254 characters; one `@`; a dotted domain).
pub fn validate_email(email: &str) -> Result<String> {
    let email = email.trim();
    let bad = || Error::invalid("invalid_email", "enter a valid email address such as name@university.edu");
    if email.is_empty() || email.chars().count() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 || local.contains('@') || !domain.contains('.') {
        return Err(bad());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(email.to_owned())
}

/// Normalises and checks a person's display name (1–100 characters; the rules are in `crate::names`).
pub fn validate_name(name: &str) -> Result<String> {
    // The shared normaliser: account names are shown beside guests' display names.
    crate::names::normalize(name, 100, "invalid_name", crate::names::Labels::Allowed)
}

/// A registration request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    /// Needed for the very first account of a public instance.
    #[serde(default)]
    pub setup_code: Option<String>,
}

/// A new sign-in session: the cookie value is returned exactly once.
#[derive(Debug)]
pub struct NewSession {
    pub user: User,
    pub token: String,
    pub expires_at: i64,
    /// The signed device cookie to set (after a password login): this browser has signed in to the
    /// account before.
    pub device: Option<String>,
}

/// A signed-in user, resolved from a session cookie.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub session_id: String,
}

const SETUP_CODE_KEY: &str = "setup_code";
const SETUP_CODE_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// The one-time setup code that guards the first registration of a public instance; `None` once any account
/// exists. Created on first use and kept until that first account is made.
pub async fn setup_code(app: &App) -> Result<Option<String>> {
    if app.store().count_users().await? > 0 {
        return Ok(None);
    }
    let fresh = ids::random_chars(SETUP_CODE_ALPHABET, 12);
    let fresh = format!("{}-{}-{}", &fresh[0..4], &fresh[4..8], &fresh[8..12]);
    Ok(Some(app.store().instance_value_or_insert(SETUP_CODE_KEY, &fresh).await?))
}

/// Self-service registration through the API; the new account is signed in at once.
pub async fn register(app: &App, input: Registration, client: &ClientInfo) -> Result<NewSession> {
    let ip = client.ip.clone().unwrap_or_default();
    ratelimit::check(
        app.limiter(),
        &format!("register:ip:{ip}"),
        app.live().rate_limits.register_per_ip_per_hour,
        Duration::from_secs(3600),
    )
    .await?;
    let email = validate_email(&input.email)?;
    let name = validate_name(&input.name)?;
    password::validate(&input.password)?;

    let first = app.store().count_users().await? == 0;
    if !first && app.live().registration == RegistrationPolicy::Closed {
        return Err(Error::forbidden(
            "registration_closed",
            "registration is closed; ask an administrator for an account",
        ));
    }
    if first && app.config().is_public() {
        let expected = app.store().instance_value(SETUP_CODE_KEY).await?;
        let given = input.setup_code.as_deref().map(str::trim).unwrap_or_default();
        let ok = matches!(&expected, Some(code) if bool::from(code.as_bytes().ct_eq(given.as_bytes())));
        if !ok {
            return Err(Error::forbidden(
                "setup_code_required",
                "the first account needs the setup code shown in the server log (or by `confctl admin setup-code`)",
            ));
        }
    }
    let hash = password::hash(input.password).await?;
    let id = ids::new_id();
    let record = app
        .store()
        .create_user(NewUser { id: &id, email: &email, display_name: &name, password_hash: &hash, role: None })
        .await?;
    let user = User::from(record);
    audit::record(
        app,
        &user.actor(client.ip.clone()),
        "user.register",
        Some(("user", &user.id)),
        None,
        serde_json::json!({ "role": user.role }),
    )
    .await;
    let mut session = start_session(app, &user.id, client).await?;
    session.device = Some(devices::issue(app, &email.to_lowercase(), None).await?);
    Ok(session)
}

/// Signs in with email and password. Unknown email and wrong password answer the same, after the same work.
///
/// Both limits are taken before the password is checked. The per-account limit is one a stranger can
/// exhaust from anywhere, so a browser that signed in to this account before (`device`, the signed cookie
/// of [`NewSession::device`]) is counted under a limit of its own instead: the owner is never locked out.
pub async fn login(
    app: &App,
    email: &str,
    password: &str,
    device: Option<&str>,
    client: &ClientInfo,
) -> Result<NewSession> {
    let live = app.live();
    let limits = &live.rate_limits;
    let ip = client.ip.clone().unwrap_or_default();
    let minute = Duration::from_secs(60);
    ratelimit::check(app.limiter(), &format!("login:ip:{ip}"), limits.login_per_ip_per_minute, minute).await?;
    let email_key = email.trim().to_lowercase();
    let known_device = match device {
        Some(cookie) => devices::verify(app, cookie, &email_key).await?,
        None => None,
    };
    let account_key = match &known_device {
        Some(device_id) => format!("login:device:{device_id}"),
        None => format!("login:account:{email_key}"),
    };
    ratelimit::check(app.limiter(), &account_key, limits.login_per_account_per_minute, minute).await?;
    let invalid = || Error::unauthenticated("invalid_credentials", "wrong email or password");
    if password.chars().count() > password::MAX_LEN || email_key.chars().count() > 254 {
        return Err(invalid());
    }
    let record = app.store().user_by_email(&email_key).await?;
    let ok = password::verify(password.to_owned(), record.as_ref().map(|r| r.password_hash.clone())).await?;
    let record = match (ok, record) {
        (true, Some(record)) => record,
        (_, record) => {
            let actor = Actor { user_id: record.map(|r| r.id), label: email_key.clone(), ip: client.ip.clone() };
            audit::record(app, &actor, "auth.login_failed", None, None, serde_json::json!({})).await;
            return Err(invalid());
        }
    };
    if record.disabled {
        return Err(Error::forbidden("account_disabled", "this account is disabled; contact an administrator"));
    }
    let mut session = start_session(app, &record.id, client).await?;
    session.device = Some(devices::issue(app, &email_key, known_device).await?);
    audit::record(
        app,
        &session.user.actor(client.ip.clone()),
        "auth.login",
        Some(("user", &session.user.id)),
        None,
        serde_json::json!({}),
    )
    .await;
    Ok(session)
}

async fn start_session(app: &App, user_id: &str, client: &ClientInfo) -> Result<NewSession> {
    let token = ids::new_secret();
    let lifetime = app.config().auth.session_lifetime;
    let expires_at = app.clock().now_ms() + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2);
    let user_agent = client.user_agent.as_deref().map(|ua| ua.chars().take(300).collect::<String>());
    app.store()
        .insert_session(
            &ids::new_id(),
            user_id,
            &ids::secret_hash(&token),
            expires_at,
            client.ip.as_deref(),
            user_agent.as_deref(),
        )
        .await?;
    let user = User::from(app.store().user_by_id(user_id).await?);
    Ok(NewSession { user, token, expires_at, device: None })
}

/// Last-seen times are written at most this often, so every request is not a database write.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// Resolves a session cookie to its user; `None` when unknown, expired, idle too long or the user is disabled.
pub async fn authenticate(app: &App, token: &str) -> Result<Option<AuthUser>> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let Some((session, record)) = app.store().session_by_token_hash(&ids::secret_hash(token)).await? else {
        return Ok(None);
    };
    let now = app.clock().now_ms();
    let idle_ms = i64::try_from(app.config().auth.session_idle_timeout.as_millis()).unwrap_or(i64::MAX / 2);
    if record.disabled || session.expires_at <= now || session.last_seen_at + idle_ms <= now {
        app.store().delete_session(&session.id).await?;
        return Ok(None);
    }
    if now - session.last_seen_at > TOUCH_INTERVAL_MS {
        app.store().touch_session(&session.id, now).await?;
    }
    Ok(Some(AuthUser { user: User::from(record), session_id: session.id }))
}

/// Ends one session.
pub async fn logout(app: &App, auth: &AuthUser, client: &ClientInfo) -> Result<()> {
    app.store().delete_session(&auth.session_id).await?;
    audit::record(
        app,
        &auth.user.actor(client.ip.clone()),
        "auth.logout",
        Some(("user", &auth.user.id)),
        None,
        serde_json::json!({}),
    )
    .await;
    Ok(())
}

/// Changes one's own password: every session of the user ends, and a fresh one is returned for this browser.
pub async fn change_password(
    app: &App,
    auth: &AuthUser,
    current: &str,
    new: String,
    client: &ClientInfo,
) -> Result<NewSession> {
    // Limited like a login: a stolen session must not be able to guess the password at argon2 speed.
    let slot = app
        .limiter()
        .acquire(
            &format!("password:user:{}", auth.user.id),
            app.live().rate_limits.login_per_account_per_minute,
            Duration::from_secs(60),
        )
        .await?;
    let record = app.store().user_by_id(&auth.user.id).await?;
    if !password::verify(current.to_owned(), Some(record.password_hash)).await? {
        let actor = auth.user.actor(client.ip.clone());
        audit::record(
            app,
            &actor,
            "user.password_change_failed",
            Some(("user", &auth.user.id)),
            None,
            serde_json::json!({}),
        )
        .await;
        return Err(Error::forbidden("invalid_credentials", "the current password is wrong"));
    }
    app.limiter().release(slot).await;
    password::validate(&new)?;
    let hash = password::hash(new).await?;
    app.store().set_user_password_hash(&auth.user.id, &hash).await?;
    app.store().delete_user_sessions(&auth.user.id).await?;
    audit::record(
        app,
        &auth.user.actor(client.ip.clone()),
        "user.password_changed",
        Some(("user", &auth.user.id)),
        None,
        serde_json::json!({}),
    )
    .await;
    start_session(app, &auth.user.id, client).await
}

/// Looks a user up by id or email (for the CLI, which takes either).
pub async fn find_user(app: &App, id_or_email: &str) -> Result<User> {
    let record = if id_or_email.contains('@') {
        app.store().user_by_email(id_or_email).await?
    } else {
        Some(app.store().user_by_id(id_or_email).await?)
    };
    record.map(User::from).ok_or_else(|| Error::not_found("user_not_found", format!("no user {id_or_email}")))
}

pub async fn list_users(app: &App) -> Result<Vec<User>> {
    Ok(app.store().list_users().await?.into_iter().map(User::from).collect())
}

/// An administrator creates an account with a chosen role.
pub async fn create_user(
    app: &App,
    actor: &Actor,
    email: &str,
    name: &str,
    role: Role,
    password: String,
) -> Result<User> {
    let email = validate_email(email)?;
    let name = validate_name(name)?;
    password::validate(&password)?;
    let hash = password::hash(password).await?;
    let id = ids::new_id();
    let record = app
        .store()
        .create_user(NewUser { id: &id, email: &email, display_name: &name, password_hash: &hash, role: Some(role) })
        .await?;
    audit::record(
        app,
        actor,
        "user.create",
        Some(("user", &id)),
        None,
        serde_json::json!({ "email": email, "role": role }),
    )
    .await;
    Ok(record.into())
}

pub async fn set_role(app: &App, actor: &Actor, user_id: &str, role: Role) -> Result<()> {
    let before = app.store().user_by_id(user_id).await?;
    app.store().set_user_role(user_id, role).await?;
    audit::record(
        app,
        actor,
        "user.role_changed",
        Some(("user", user_id)),
        None,
        serde_json::json!({ "from": before.role, "to": role }),
    )
    .await;
    Ok(())
}

/// An administrator (or an admin API token) changes an account's role and/or disabled flag (through the API).
/// Nobody may lock themselves out: disabling or demoting one's own account is refused.
pub async fn update_user(
    app: &App,
    actor: &Actor,
    user_id: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<User> {
    let user = find_user(app, user_id).await?;
    if actor.user_id.as_deref() == Some(user.id.as_str()) && (disabled == Some(true) || role == Some(Role::Host)) {
        return Err(Error::conflict("cannot_change_self", "you cannot disable or demote your own account"));
    }
    if let Some(role) = role.filter(|r| *r != user.role) {
        set_role(app, actor, &user.id, role).await?;
    }
    if let Some(disabled) = disabled.filter(|d| *d != user.disabled) {
        set_disabled(app, actor, &user.id, disabled).await?;
    }
    find_user(app, &user.id).await
}

/// Disables (and signs out at once) or re-enables an account.
pub async fn set_disabled(app: &App, actor: &Actor, user_id: &str, disabled: bool) -> Result<()> {
    app.store().set_user_disabled(user_id, disabled).await?;
    if disabled {
        app.store().delete_user_sessions(user_id).await?;
    }
    let action = if disabled { "user.disabled" } else { "user.enabled" };
    audit::record(app, actor, action, Some(("user", user_id)), None, serde_json::json!({})).await;
    Ok(())
}

/// Sets a user's password (administrator reset); every session of that user ends.
///
/// Limited per acting administrator like a login, so a stolen admin session cannot take over accounts in bulk.
pub async fn set_password(app: &App, actor: &Actor, user_id: &str, password: String) -> Result<()> {
    ratelimit::check(
        app.limiter(),
        &format!("password-reset:{}", actor.label),
        app.live().rate_limits.login_per_account_per_minute,
        Duration::from_secs(60),
    )
    .await?;
    password::validate(&password)?;
    let hash = password::hash(password).await?;
    app.store().set_user_password_hash(user_id, &hash).await?;
    app.store().delete_user_sessions(user_id).await?;
    audit::record(app, actor, "user.password_reset", Some(("user", user_id)), None, serde_json::json!({})).await;
    Ok(())
}

/// Ends every session of a user; returns how many ended.
pub async fn revoke_sessions(app: &App, actor: &Actor, user_id: &str) -> Result<u64> {
    app.store().user_by_id(user_id).await?;
    let n = app.store().delete_user_sessions(user_id).await?;
    audit::record(
        app,
        actor,
        "user.sessions_revoked",
        Some(("user", user_id)),
        None,
        serde_json::json!({ "count": n }),
    )
    .await;
    Ok(n)
}

/// A random password for accounts created without one (shown once to the administrator): 23 characters from
/// 55 are 133 bits, at least the 128 that every secret has.
pub fn generate_password() -> String {
    ids::random_chars(b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ", 23)
}
