//! Shared by the TLS tests: confctl with TLS on, running in-process on loopback, and HTTPS clients that
//! trust only a given root and resolve the test domain to loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use confctl::config::{self, Config, Sources};
use confctl::server::{ServeOptions, Server};
use confctl::tls::{CertificateStatus, StatusHandle};
use tokio::sync::oneshot;

/// The name certificates are requested for; pebble-challtestsrv resolves every name to 127.0.0.1.
pub const DOMAIN: &str = "lectures.confctl.test";

/// The configuration of a TLS test instance: `env`-style overrides on top of a data directory, HTTPS on
/// `https` and the redirect on a free loopback port.
pub fn config(data_dir: &Path, https: SocketAddr, env: &[(&str, &str)]) -> Result<Config, config::ConfigError> {
    let mut vars: Vec<(String, String)> = vec![
        ("CONFCTL_DATA_DIR".into(), data_dir.display().to_string()),
        ("CONFCTL_DOMAINS".into(), DOMAIN.into()),
        ("CONFCTL_TLS__LISTEN".into(), https.to_string()),
        ("CONFCTL_TLS__REDIRECT_LISTEN".into(), "127.0.0.1:0".into()),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    config::load(&Sources { env: vars, ..Sources::default() })
}

/// A running TLS instance.
pub struct TlsServer {
    /// The running application (for what a test must read or set up behind the API).
    pub app: confctl::app::App,
    pub https: SocketAddr,
    pub redirect: Option<SocketAddr>,
    pub status: StatusHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TlsServer {
    pub async fn start(config: Config) -> Self {
        confctl::telemetry::init(config::LogFormat::Human, "warn");
        confctl::tls_provider();
        let server = Server::bind(config, &ServeOptions::default()).await.unwrap();
        let https = server.local_addr().unwrap();
        let redirect = server.redirect_addr();
        let status = server.certificate_status().expect("TLS is on");
        let app = server.app().clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self { app, https, redirect, status, stop: Some(tx), task: Some(task) }
    }

    /// Waits until `done` holds for the certificate status, or fails showing the status.
    pub async fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&CertificateStatus) -> bool) {
        let started = Instant::now();
        loop {
            let status = self.status.get();
            if done(&status) {
                return;
            }
            assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}; status: {status:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops gracefully; fails if the server returned an error.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the server stops within 15 s")
                .unwrap()
                .unwrap();
        }
    }
}

/// A fresh HTTPS client (no pooled connection, so every request sees the certificate served now) that
/// trusts only `root_pem` and reaches [`DOMAIN`] at `addr`.
pub fn https_client(root_pem: &[u8], addr: SocketAddr) -> reqwest::Client {
    confctl::tls_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root_pem).unwrap()])
        .resolve(DOMAIN, addr)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GETs `path` over HTTPS from [`DOMAIN`]; returns the response and the description of the certificate
/// the server presented.
pub async fn https_get(
    client: &reqwest::Client,
    https: SocketAddr,
    path: &str,
) -> (reqwest::Response, CertificateStatus) {
    let url = format!("https://{DOMAIN}:{}{path}", https.port());
    let response = client.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the TLS connection exposes the server certificate")
        .to_vec();
    (response, CertificateStatus::from_der(&der).unwrap())
}

/// A plain-HTTP client that does not follow redirects and reaches [`DOMAIN`] at `addr`.
pub fn http_client(addr: SocketAddr) -> reqwest::Client {
    confctl::tls_provider();
    reqwest::Client::builder().resolve(DOMAIN, addr).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
