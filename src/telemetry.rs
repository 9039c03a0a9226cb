//! Logging: human-readable or JSON lines through `tracing`, filtered by the configured level, which a
//! reload (SIGHUP) can change while running.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::LogFormat;

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. `RUST_LOG` overrides `level` when set. Safe to call more than once.
pub fn init(format: LogFormat, level: &str) {
    let initial = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(level));
    let (filter_layer, handle) = reload::Layer::new(initial);
    let registry = tracing_subscriber::registry().with(filter_layer);
    let installed = match format {
        LogFormat::Human => registry.with(fmt::layer().with_writer(std::io::stderr)).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(false).with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// Changes the log filter of the running process (ignored while `RUST_LOG` decides).
pub fn set_level(level: &str) {
    if std::env::var_os("RUST_LOG").is_some() {
        return;
    }
    if let Some(handle) = FILTER.get() {
        let _ = handle.reload(filter(level));
    }
}
