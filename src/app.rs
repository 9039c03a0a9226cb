//! The application context every domain operation receives: configuration, store, limiter, clock, replica
//! identity, shutdown signal.

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::live::Live;
use crate::config::{Config, LiveSettings, Reload};
use crate::events::Hub;
use crate::gdrive::Google;
use crate::livekit::LiveKit;
use crate::ratelimit::RateLimiter;
use crate::replicas::Replica;
use crate::storage::Storage;
use crate::store::Store;
use crate::time::Clock;
use crate::traffic::Traffic;

/// Shared application state; cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    live: Live,
    store: Store,
    limiter: Arc<dyn RateLimiter>,
    livekit: LiveKit,
    storage: Storage,
    hub: Hub,
    clock: Clock,
    traffic: Traffic,
    /// Who this process is among the replicas on one database, and whether it leads the background jobs.
    replica: Replica,
    /// `None` while Google Drive export is not configured.
    google: Option<Google>,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

impl App {
    /// Builds the application around an opened store; fails when the file storage cannot be set up.
    pub fn new(config: Config, store: Store) -> anyhow::Result<Self> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let livekit = LiveKit::new(&config);
        let storage = Storage::from_config(&config)?;
        let live = Live::new(&config);
        let google = crate::gdrive::Settings::from_config(&config.google).map(Google::new).transpose()?;
        let clock = Clock::default();
        let replica = Replica::new(&store, clock.now_ms());
        let limiter = crate::ratelimit::for_store(&store);
        Ok(Self {
            inner: Arc::new(Inner {
                live,
                config,
                store,
                limiter,
                livekit,
                storage,
                hub: Hub::default(),
                clock,
                traffic: Traffic::default(),
                replica,
                google,
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
        self.inner.live.get()
    }

    /// Applies a reloaded configuration: live settings take effect now; the keys that need a restart are
    /// returned so the operator is told.
    pub fn reload(&self, new: &Config) -> Reload {
        let reload = self.inner.live.apply(&self.inner.config, new);
        if reload.applied.contains(&"log_level") {
            crate::telemetry::set_level(&new.log_level);
        }
        reload
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
    /// The time as this application sees it: read it here rather than from `time::now_ms`.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }
    /// Requests per second, for the monitor.
    pub fn traffic(&self) -> &Traffic {
        &self.inner.traffic
    }
    /// This process among the replicas sharing its database.
    pub fn replica(&self) -> &Replica {
        &self.inner.replica
    }
    /// The Google client, when Drive export is configured.
    pub fn google(&self) -> Option<&Google> {
        self.inner.google.as_ref()
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
