//! `confctl serve`: prepares the data directory and database, binds the listener, runs the HTTP server and
//! its background jobs, and shuts down gracefully on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::App;
use crate::config::Config;
use crate::store::Store;

/// Start-up choices that are not configuration.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Do not apply pending migrations (refuse to start if any are pending instead).
    pub no_migrate: bool,
    /// Where the configuration came from, so SIGHUP can read it again. `None`: no reloading.
    pub reload_from: Option<crate::config::Sources>,
    /// Run the AI assistant in this process too (`--with-agent`, see `crate::agent`).
    pub with_agent: bool,
}

/// Opens the store for `config`: creates the data directory and applies (or checks) migrations.
pub async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", config.data_dir.display()))?;
    let store = Store::connect(&config.effective_database_url()).await?;
    if migrate {
        store.migrate().await?;
    } else {
        store.ensure_migrated().await?;
    }
    Ok(store)
}

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    app: App,
    /// The application's listener: `listen`, or `tls.listen` when TLS is on.
    listener: TcpListener,
    tls: Option<crate::tls::Tls>,
    reload_from: Option<crate::config::Sources>,
    with_agent: bool,
}

impl Server {
    /// Prepares everything `serve` needs and binds the listener (port 0 picks a free port).
    pub async fn bind(config: Config, options: &ServeOptions) -> anyhow::Result<Self> {
        crate::tls_provider();
        let store = open_store(&config, !options.no_migrate).await?;
        let tls = crate::tls::Tls::prepare(&config).await?;
        // With TLS on, nothing but the redirect answers in plain HTTP, so `listen` is not bound at all.
        let listen = if tls.is_some() { config.tls.listen } else { config.listen };
        let listener = TcpListener::bind(listen).await.map_err(|e| crate::tls::listen_error(listen, &e))?;
        let app = App::new(config, store)?;
        announce(&app).await?;
        Ok(Self { app, listener, tls, reload_from: options.reload_from.clone(), with_agent: options.with_agent })
    }

    /// Where plain HTTP is redirected to HTTPS, when TLS is on and the redirect is not off.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|t| t.redirect_addr())
    }

    /// The served certificate's live status, when TLS is on.
    pub fn certificate_status(&self) -> Option<crate::tls::StatusHandle> {
        self.tls.as_ref().map(|t| t.status())
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (for up to
    /// `http::plain::SHUTDOWN_GRACE`), ends event streams and closes the database.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let app = self.app.clone();
        app.hub().assistants().listen(app.clock().now_ms());
        // Background jobs run on the leader only (always this process on SQLite; see `replicas`).
        let leadership = tokio::spawn(crate::replicas::lead(app.clone()));
        let heartbeat = tokio::spawn(crate::replicas::heartbeat(app.clone(), self.listener.local_addr().ok()));
        let housekeeping = tokio::spawn(crate::replicas::housekeeping(app.clone()));
        // On PostgreSQL every event goes through the outbox, so every replica delivers it.
        let outbox = crate::events::outbox::start(&app).await;
        let sweeper = tokio::spawn(sweep_sessions(app.clone()));
        let reconciler = tokio::spawn(crate::rooms::lifecycle::reconcile_forever(app.clone()));
        let upload_sweeper = tokio::spawn(crate::files::sweep_forever(app.clone()));
        let reloader = self.reload_from.map(|sources| tokio::spawn(reload_on_sighup(app.clone(), sources)));
        let assistant = match (self.with_agent, self.listener.local_addr()) {
            (true, Ok(addr)) => Some(spawn_assistant(app.clone(), addr)),
            _ => None,
        };
        let router = crate::http::router(app.clone());
        let stopping = app.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            stopping.begin_shutdown();
        };
        match self.tls {
            Some(tls) => tls.serve(self.listener, router, graceful).await?,
            None => crate::http::plain::serve(self.listener, router, graceful).await,
        }
        sweeper.abort();
        reconciler.abort();
        // The leader lock is given up as shutdown begins; waited for here so it is released before the pool
        // closes (bounded: a database that stopped answering must not hold the shutdown up).
        housekeeping.abort();
        if let Some((writer, reader)) = outbox {
            // What this replica published last is appended before the pool closes (bounded).
            let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
            reader.abort();
        }
        if tokio::time::timeout(Duration::from_secs(5), leadership).await.is_err() {
            tracing::warn!("the leader lock was not released in time; the database will release it");
        }
        // The heartbeat row goes as well, so `confctl doctor` does not list a replica that stopped.
        let _ = tokio::time::timeout(Duration::from_secs(5), heartbeat).await;
        upload_sweeper.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        if let Some(assistant) = assistant {
            assistant.abort();
        }
        app.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Start-up log lines an operator must see.
async fn announce(app: &App) -> anyhow::Result<()> {
    let config = app.config();
    if config.uses_livekit_dev_credentials() {
        tracing::warn!(
            "LiveKit is configured with the public DEVELOPMENT credentials (devkey/secret): anyone can mint \
             tokens for this media server. Set [livekit] api_key and api_secret before real use."
        );
    }
    if config.effective_dev_access_key().is_some() {
        tracing::info!("development access key is on: browsers must open a link with ?key=… once");
    }
    if config.is_public() {
        if let Some(code) = crate::accounts::setup_code(app).await? {
            tracing::warn!(
                setup_code = %code,
                "no account exists yet: register the first (administrator) account with this one-time setup code"
            );
        }
    }
    Ok(())
}

/// Deletes expired and idle sessions every few minutes (on the leader).
async fn sweep_sessions(app: App) {
    let mut turns = crate::replicas::LeaderTicks::new(&app, Duration::from_secs(300));
    while turns.next().await.is_some() {
        let now = app.clock().now_ms();
        let idle = i64::try_from(app.config().auth.session_idle_timeout.as_millis()).unwrap_or(i64::MAX / 2);
        match app.store().delete_stale_sessions(now, now.saturating_sub(idle)).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(count = n, "removed stale sessions"),
            Err(err) => tracing::warn!(error = %err, "could not remove stale sessions"),
        }
    }
}

/// Re-reads the configuration on every SIGHUP: live settings (rate limits, registration policy, log level)
/// change at once; anything else is named as needing a restart. An invalid file changes nothing.
async fn reload_on_sighup(app: App, sources: crate::config::Sources) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            // The process environment and flags cannot change while it runs; only the file is re-read.
            match crate::config::load(&sources) {
                Err(err) => tracing::error!(error = %err, "configuration reload refused; keeping the running settings"),
                Ok(new) => {
                    let report = app.reload(&new);
                    if report.applied.is_empty() && report.need_restart.is_empty() {
                        tracing::info!("configuration reloaded: nothing changed");
                    }
                    if !report.applied.is_empty() {
                        tracing::info!(keys = %report.applied.join(", "), "configuration reloaded: applied now");
                    }
                    if !report.need_restart.is_empty() {
                        tracing::warn!(keys = %report.need_restart.join(", "), "configuration reloaded: these changes need a restart (systemctl restart confctl)");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (app, sources);
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
///
/// The handlers are installed when this is called, not when the future is first polled: call it before
/// telling systemd the service is ready, or a `systemctl stop` right after start would kill the process
/// with the default action instead of shutting it down gracefully.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                // Without handlers there is nothing to wait for; the default actions still stop the process.
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Name of the agent token `serve --with-agent` makes for itself at every start (revoking the last one).
const IN_PROCESS_TOKEN: &str = "serve --with-agent";

/// Runs [`run_assistant`] for the server listening at `addr` while this replica leads: with several replicas
/// on one PostgreSQL only one of them runs the assistant (two would both join every lecture), and the next
/// leader starts its own (revoking the last one's token). Always this process on SQLite. Failures are
/// logged and retried.
fn spawn_assistant(app: App, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut leading = app.replica().watch_leader();
        loop {
            tokio::select! {
                became = leading.wait_for(|leads| *leads) => if became.is_err() { return },
                _ = app.shutting_down() => return,
            }
            let mut followers = leading.clone();
            let stopping = app.clone();
            let stop = async move {
                tokio::select! {
                    _ = stopping.shutting_down() => {}
                    _ = followers.wait_for(|leads| !*leads) => {}
                }
            };
            match run_assistant(app.clone(), addr, stop).await {
                Ok(()) => {
                    tracing::info!("the in-process AI assistant stopped (shutdown, or another replica leads now)")
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "the in-process AI assistant stopped; retrying in 30 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                        _ = app.shutting_down() => return,
                    }
                }
            }
        }
    })
}

/// `confctl serve --with-agent`: the same worker inside the server, talking to it over loopback (HTTPS with the
/// server's own name when TLS is on) with an agent token made for this process.
async fn run_assistant(
    app: App,
    addr: SocketAddr,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let actor = crate::audit::Actor::system();
    for old in crate::accounts::agent_tokens::list(&app).await? {
        if old.name == IN_PROCESS_TOKEN && old.revoked_at.is_none() {
            crate::accounts::agent_tokens::revoke(&app, &actor, &old.id).await?;
        }
    }
    let (_, token) = crate::accounts::agent_tokens::create(&app, &actor, IN_PROCESS_TOKEN).await?;
    let config = app.config();
    let loopback = SocketAddr::new(
        if addr.ip().is_unspecified() {
            if addr.is_ipv6() { std::net::Ipv6Addr::LOCALHOST.into() } else { std::net::Ipv4Addr::LOCALHOST.into() }
        } else {
            addr.ip()
        },
        addr.port(),
    );
    let api = match (config.tls.enabled(), config.domains.first()) {
        (true, Some(domain)) => {
            let url: url::Url = format!("https://{domain}:{}", addr.port()).parse()?;
            crate::agent::api::AgentApi::with_resolve(&url, crate::secret::Secret::new(token), domain, loopback)?
        }
        _ => {
            crate::agent::api::AgentApi::new(&format!("http://{loopback}").parse()?, crate::secret::Secret::new(token))?
        }
    };
    let agent = crate::agent::Agent::new(&config.agent, api)?;
    tracing::info!(stt = agent.stt.provider(), "the AI assistant runs inside this server (--with-agent)");
    crate::agent::worker::run(std::sync::Arc::new(agent), stop).await;
    Ok(())
}
