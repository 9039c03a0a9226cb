//! HTTPS with the operator's own certificate and key (PEM files), re-read when either file changes. A
//! new pair that cannot be used is logged and the previous certificate keeps being served.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::status::{CertificateStatus, StatusHandle};
use crate::config::Config;

/// How often the files are checked for changes. A change is loaded once it has stayed the same for one
/// more check, so a certificate and key written one after the other are picked up together.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A certificate expiring sooner than this is logged as a warning at load time and once a day.
const EXPIRY_WARNING: chrono::TimeDelta = chrono::TimeDelta::days(14);

/// The certificate currently served; swapped on reload, read on every handshake.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// Certificate files in use, loaded once successfully at start.
#[derive(Debug)]
pub(super) struct Files {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<Current>,
    loaded: CertificateStatus,
    seen: Signature,
    server_config: Arc<ServerConfig>,
}

/// What identifies a version of the two files without reading them.
type Signature = [Option<(SystemTime, u64, u64)>; 2];

fn signature(cert: &Path, key: &Path) -> Signature {
    use std::os::unix::fs::MetadataExt;
    [cert, key].map(|path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len(), meta.ino()))
    })
}

/// Reads and checks a certificate chain and its private key.
fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<(CertifiedKey, CertificateStatus)> {
    let cert_pem = std::fs::read(cert_path)
        .map_err(|e| anyhow::anyhow!("cannot read tls.cert_file {}: {e}", cert_path.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
        anyhow::anyhow!("tls.cert_file {} is not valid PEM: {}", cert_path.display(), super::pem_error(&e))
    })?;
    let Some(leaf) = chain.first() else {
        anyhow::bail!("tls.cert_file {} holds no CERTIFICATE block", cert_path.display());
    };
    let mut status =
        CertificateStatus::from_der(leaf).map_err(|e| anyhow::anyhow!("tls.cert_file {}: {e}", cert_path.display()))?;
    let key_pem =
        std::fs::read(key_path).map_err(|e| anyhow::anyhow!("cannot read tls.key_file {}: {e}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("tls.key_file {} holds no usable private key (PEM): {e}", key_path.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        anyhow::anyhow!("tls.key_file {} does not fit tls.cert_file {}: {e}", key_path.display(), cert_path.display())
    })?;
    status.source = format!("file {}", cert_path.display());
    Ok((certified, status))
}

impl Files {
    /// Loads the configured pair; failing here stops `serve` with the reason.
    pub(super) fn new(config: &Config) -> anyhow::Result<Self> {
        let (Some(cert_path), Some(key_path)) = (config.tls.cert_file.clone(), config.tls.key_file.clone()) else {
            anyhow::bail!("tls.cert_file and tls.key_file are both needed");
        };
        let seen = signature(&cert_path, &key_path);
        let (certified, loaded) = load(&cert_path, &key_path)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(certified))));
        let mut server_config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        server_config.alpn_protocols = super::alpn_protocols();
        Ok(Self { cert_path, key_path, current, loaded, seen, server_config: Arc::new(server_config) })
    }

    /// The certificate loaded at start.
    pub(super) fn loaded(&self) -> &CertificateStatus {
        &self.loaded
    }

    /// The acceptor for the HTTPS listener (with axum-server's handshake timeout).
    pub(super) fn acceptor(&self) -> axum_server::tls_rustls::RustlsAcceptor {
        axum_server::tls_rustls::RustlsAcceptor::new(axum_server::tls_rustls::RustlsConfig::from_config(
            self.server_config.clone(),
        ))
    }

    /// Says which certificate the listener serves.
    pub(super) fn log_start(&self) {
        log_loaded(&self.loaded, "serving the certificate from");
    }

    /// Watches both files and swaps in each new pair that loads. Runs until aborted.
    pub(super) async fn run(self, status: StatusHandle) {
        let Self { cert_path, key_path, current, mut seen, .. } = self;
        let mut pending: Option<Signature> = None;
        let mut last_expiry_check = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            if last_expiry_check.elapsed() >= Duration::from_secs(24 * 3600) {
                last_expiry_check = tokio::time::Instant::now();
                warn_if_expiring(&status.get());
            }
            let now = signature(&cert_path, &key_path);
            if now == seen {
                pending = None;
                continue;
            }
            if pending != Some(now) {
                pending = Some(now);
                continue;
            }
            seen = now;
            pending = None;
            match load(&cert_path, &key_path) {
                Ok((certified, described)) => {
                    *current.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
                    log_loaded(&described, "reloaded the certificate from");
                    status.set_certificate(described);
                }
                Err(err) => {
                    let message = super::one_line(&format!("{err:#}"));
                    tracing::error!(error = %message, "the changed certificate files cannot be used; still serving the previous certificate");
                    status.set_error(message);
                }
            }
        }
    }
}

fn log_loaded(cert: &CertificateStatus, what: &str) {
    tracing::info!(
        names = %cert.names_text(),
        issuer = cert.issuer.as_deref().unwrap_or_default(),
        serial = cert.serial.as_deref().unwrap_or_default(),
        not_after = %cert.not_after.map(|t| t.to_rfc3339()).unwrap_or_default(),
        "{what} {}",
        cert.source.trim_start_matches("file ")
    );
    warn_if_expiring(cert);
}

fn warn_if_expiring(cert: &CertificateStatus) {
    let Some(not_after) = cert.not_after else { return };
    let left = not_after - chrono::Utc::now();
    if left <= chrono::TimeDelta::zero() {
        tracing::error!(not_after = %not_after.to_rfc3339(), "the served certificate has EXPIRED: replace {}", cert.source);
    } else if left < EXPIRY_WARNING {
        tracing::warn!(not_after = %not_after.to_rfc3339(), days_left = left.num_days(), "the served certificate expires soon: replace {}", cert.source);
    }
}
