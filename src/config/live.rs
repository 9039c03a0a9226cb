//! The settings a SIGHUP changes without a restart (limits against abuse, who may register, the log level),
//! and what a reload did.

use std::sync::{Arc, RwLock};

use super::{Config, RateLimitConfig, RegistrationPolicy};

/// Settings that change live on SIGHUP.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub rate_limits: RateLimitConfig,
    pub registration: RegistrationPolicy,
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

/// The live settings in effect, swapped whole on reload so readers never see half of a change.
#[derive(Debug)]
pub struct Live {
    current: RwLock<Arc<LiveSettings>>,
}

impl Live {
    pub fn new(config: &Config) -> Self {
        Self { current: RwLock::new(Arc::new(LiveSettings::of(config))) }
    }

    pub fn get(&self) -> Arc<LiveSettings> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies `new` over the configuration the process started with: the live keys take effect now, the
    /// others are returned as needing a restart.
    pub fn apply(&self, started: &Config, new: &Config) -> Reload {
        let (applied, need_restart): (Vec<&'static str>, Vec<&'static str>) =
            started.changed_keys(new).into_iter().partition(|k| LiveSettings::is_live(k));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(LiveSettings::of(new));
        Reload { applied, need_restart }
    }
}
