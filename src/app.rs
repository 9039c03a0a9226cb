//! The application context every domain operation receives: configuration, store, limiter, shutdown signal.

use std::sync::Arc;

use tokio::sync::watch;

use crate::admission::hub::Hub;
use crate::config::Config;
use crate::files::storage::Storage;
use crate::livekit::LiveKit;
use crate::ratelimit::{InMemoryRateLimiter, RateLimiter};
use crate::store::Store;

/// Shared application state; cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    live: std::sync::RwLock<Arc<LiveSettings>>,
    store: Store,
    limiter: Arc<dyn RateLimiter>,
    livekit: LiveKit,
    storage: Storage,
    hub: Hub,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

impl App {
    /// Builds the application around an opened store; fails when the file storage cannot be set up.
    pub fn new(config: Config, store: Store) -> anyhow::Result<Self> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let livekit = LiveKit::new(&config);
        let storage = Storage::from_config(&config)?;
        let live = std::sync::RwLock::new(Arc::new(LiveSettings::of(&config)));
        Ok(Self {
            inner: Arc::new(Inner {
                live,
                config,
                store,
                limiter: Arc::new(InMemoryRateLimiter::default()),
                livekit,
                storage,
                hub: Hub::default(),
                shutdown,
                shutdown_tx,
            }),
        })
    }

    /// The configuration the server started with. Settings that change on reload are in [`App::live`].
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The settings a SIGHUP can change without a restart.
    pub fn live(&self) -> Arc<LiveSettings> {
        self.inner.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies a reloaded configuration: live settings take effect now; the keys that need a restart are
    /// returned so the operator is told.
    pub fn reload(&self, new: &Config) -> Reload {
        let changed = self.inner.config.changed_keys(new);
        let (applied, need_restart): (Vec<&'static str>, Vec<&'static str>) =
            changed.into_iter().partition(|k| LiveSettings::is_live(k));
        *self.inner.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(LiveSettings::of(new));
        if applied.contains(&"log_level") {
            crate::telemetry::set_level(&new.log_level);
        }
        Reload { applied, need_restart }
    }
    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn limiter(&self) -> &dyn RateLimiter {
        self.inner.limiter.as_ref()
    }
    pub fn livekit(&self) -> &LiveKit {
        &self.inner.livekit
    }
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Tells long-lived work (event streams, background loops) to finish.
    pub fn begin_shutdown(&self) {
        let _ = self.inner.shutdown_tx.send(true);
    }

    /// Resolves once shutdown has begun.
    pub async fn shutting_down(&self) {
        let mut rx = self.inner.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Settings that change live on SIGHUP: limits against abuse and who may register.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub rate_limits: crate::config::RateLimitConfig,
    pub registration: crate::config::RegistrationPolicy,
}

impl LiveSettings {
    fn of(config: &Config) -> Self {
        Self { rate_limits: config.rate_limits.clone(), registration: config.auth.registration }
    }

    /// Keys a reload applies without a restart (TLS certificate files are re-read on their own).
    pub fn is_live(key: &str) -> bool {
        key.starts_with("rate_limits.") || key == "auth.registration" || key == "log_level"
    }
}

/// What a reload did.
#[derive(Debug, Default)]
pub struct Reload {
    pub applied: Vec<&'static str>,
    pub need_restart: Vec<&'static str>,
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
pub async fn audit(
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
    app.hub().admin().publish(
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
