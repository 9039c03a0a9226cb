//! Certificates from an ACME directory over TLS-ALPN-01 (rustls-acme), cached in `<data_dir>/acme` with
//! owner-only permissions so a restart reuses them instead of ordering again.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls_acme::acme::{LETS_ENCRYPT_PRODUCTION_DIRECTORY, LETS_ENCRYPT_STAGING_DIRECTORY};
use rustls_acme::{AccountCache, AcmeConfig, AcmeState, CertCache, EventError, EventOk};
use sha2::{Digest, Sha256};

use super::status::{CertificateStatus, StatusHandle};
use crate::config::Config;

/// The ACME side of a serving instance: the state machine that orders and renews, and the TLS
/// configuration whose certificate resolver it feeds.
pub(super) struct Acme {
    state: AcmeState<io::Error>,
    server_config: Arc<ServerConfig>,
    last_pem: Arc<Mutex<Option<Vec<u8>>>>,
    directory: String,
    cache_dir: PathBuf,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme").field("directory", &self.directory).finish_non_exhaustive()
    }
}

/// The ACME directory in effect.
pub(super) fn directory_url(config: &Config) -> String {
    match (&config.tls.acme_directory, config.tls.acme_staging) {
        (Some(url), _) => url.to_string(),
        (None, true) => LETS_ENCRYPT_STAGING_DIRECTORY.to_owned(),
        (None, false) => LETS_ENCRYPT_PRODUCTION_DIRECTORY.to_owned(),
    }
}

fn cache_dir(config: &Config) -> PathBuf {
    config.data_dir.join("acme")
}

/// The cached certificate for these domains from this directory (a new domain list or directory means
/// a new certificate, so both are part of the name).
pub(super) fn cert_cache_path(config: &Config, directory: &str) -> PathBuf {
    cache_dir(config).join(cert_file_name(&config.domains, directory))
}

fn cert_file_name(domains: &[String], directory: &str) -> String {
    format!("cert-{}.pem", digest(domains, directory))
}

fn account_file_name(contact: &[String], directory: &str) -> String {
    format!("account-{}.key", digest(contact, directory))
}

fn digest(items: &[String], directory: &str) -> String {
    let mut hash = Sha256::new();
    for item in items {
        hash.update(item.as_bytes());
        hash.update([0]);
    }
    hash.update(directory.as_bytes());
    crate::ids::hex(&hash.finalize()[..12])
}

impl Acme {
    /// Prepares the ACME client and cache; nothing is requested until [`Acme::run`] is polled.
    pub(super) fn new(config: &Config) -> anyhow::Result<Self> {
        let email = config.tls.acme_email.clone().unwrap_or_default();
        let directory = directory_url(config);
        let cache_dir = cache_dir(config);
        create_private_dir(&cache_dir)?;

        let acme = match &config.tls.acme_ca_file {
            Some(path) => AcmeConfig::new_with_client_config(&config.domains, client_config(path)?),
            None => AcmeConfig::new(&config.domains),
        };
        let cache = DirCache { dir: cache_dir.clone(), last_pem: Arc::default() };
        let last_pem = cache.last_pem.clone();
        let state = acme.directory(&directory).contact_push(format!("mailto:{email}")).cache(cache).state();

        let mut server_config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(state.resolver());
        server_config.alpn_protocols = super::alpn_protocols();
        Ok(Self { state, server_config: Arc::new(server_config), last_pem, directory, cache_dir })
    }

    pub(super) fn directory(&self) -> &str {
        &self.directory
    }

    /// The acceptor for the HTTPS listener: answers TLS-ALPN-01 validation handshakes itself and hands
    /// every other connection on with the obtained certificate.
    pub(super) fn acceptor(&self) -> rustls_acme::axum::AxumAcceptor {
        self.state.axum_acceptor(self.server_config.clone())
    }

    /// Loads the cached certificate or orders one, renews it when two thirds of its lifetime have passed,
    /// and retries failures with growing pauses. Runs until aborted.
    pub(super) async fn run(mut self, status: StatusHandle, names: String) {
        while let Some(event) = self.state.next().await {
            match event {
                Ok(EventOk::DeployedCachedCert) => match self.described() {
                    Ok(cert) => {
                        tracing::info!(
                            names = %cert.names_text(),
                            issuer = cert.issuer.as_deref().unwrap_or_default(),
                            not_after = %show_time(cert.not_after),
                            renew_after = %show_time(renewal_time(&cert)),
                            "using the cached certificate from {}",
                            self.cache_dir.display()
                        );
                        status.set_certificate(cert);
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the cached certificate is in use but cannot be described")
                    }
                },
                // Logged once saved (the next event), when the new certificate's PEM is at hand.
                Ok(EventOk::DeployedNewCert) => {}
                Ok(EventOk::CertCacheStore) => self.announce_new(&status),
                Err(EventError::CertCacheStore(err)) => {
                    self.announce_new(&status);
                    tracing::error!(
                        dir = %self.cache_dir.display(),
                        error = %err,
                        "could not save the new certificate: it is served now but will be ordered again at the next start"
                    );
                }
                Ok(EventOk::AccountCacheStore) => tracing::debug!("saved the ACME account key"),
                Err(err) => {
                    let message = super::one_line(&err.to_string());
                    tracing::error!(
                        names = %names,
                        directory = %self.directory,
                        error = %message,
                        "could not obtain a certificate; retrying with growing pauses"
                    );
                    status.set_error(message);
                }
            }
        }
    }

    fn described(&self) -> anyhow::Result<CertificateStatus> {
        let pem = self.last_pem.lock().unwrap_or_else(PoisonError::into_inner).clone();
        CertificateStatus::from_pem(&pem.unwrap_or_default())
    }

    fn announce_new(&self, status: &StatusHandle) {
        let renewed = status.get().serial.is_some();
        match self.described() {
            Ok(cert) => {
                tracing::info!(
                    names = %cert.names_text(),
                    issuer = cert.issuer.as_deref().unwrap_or_default(),
                    serial = cert.serial.as_deref().unwrap_or_default(),
                    not_after = %show_time(cert.not_after),
                    renew_after = %show_time(renewal_time(&cert)),
                    "{}",
                    if renewed { "certificate renewed" } else { "certificate issued" }
                );
                status.set_certificate(cert);
            }
            Err(err) => tracing::warn!(error = %err, "a new certificate is in use but cannot be described"),
        }
    }
}

/// When rustls-acme starts renewing: after two thirds of the validity period.
fn renewal_time(cert: &CertificateStatus) -> Option<chrono::DateTime<chrono::Utc>> {
    let (from, to) = (cert.not_before?, cert.not_after?);
    Some(to - (to - from) / 3)
}

fn show_time(time: Option<chrono::DateTime<chrono::Utc>>) -> String {
    time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default()
}

/// TLS client settings for talking to an ACME directory whose HTTPS certificate comes from `ca_file`.
fn client_config(ca_file: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_file)
        .map_err(|e| anyhow::anyhow!("cannot read tls.acme_ca_file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| {
            anyhow::anyhow!("tls.acme_ca_file {} is not valid PEM: {}", ca_file.display(), super::pem_error(&e))
        })?;
        roots.add(cert).map_err(|e| {
            anyhow::anyhow!("tls.acme_ca_file {} holds an unusable CA certificate: {e}", ca_file.display())
        })?;
    }
    if roots.is_empty() {
        anyhow::bail!("tls.acme_ca_file {} holds no CERTIFICATE block", ca_file.display());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Creates `dir` (and parents) and makes it accessible to its owner only: it holds private keys.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| anyhow::anyhow!("cannot restrict the permissions of {}: {e}", dir.display()))
}

/// Writes a file readable by its owner only, atomically (a crash leaves the old file or the new one).
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// rustls-acme's cache in `<data_dir>/acme`. Unlike its own `DirCache` it keeps files owner-only (they
/// hold private keys) and remembers the last certificate PEM so it can be described in logs.
struct DirCache {
    dir: PathBuf,
    last_pem: Arc<Mutex<Option<Vec<u8>>>>,
}

impl DirCache {
    async fn read(&self, name: String) -> io::Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        tokio::task::spawn_blocking(move || read_optional(&path)).await.map_err(io::Error::other)?
    }

    async fn write(&self, name: String, contents: &[u8]) -> io::Result<()> {
        let (dir, contents) = (self.dir.clone(), contents.to_vec());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            write_private(&dir.join(name), &contents)
        })
        .await
        .map_err(io::Error::other)?
    }
}

#[async_trait::async_trait]
impl CertCache for DirCache {
    type EC = io::Error;

    async fn load_cert(&self, domains: &[String], directory_url: &str) -> io::Result<Option<Vec<u8>>> {
        let pem = self.read(cert_file_name(domains, directory_url)).await?;
        if let Some(pem) = &pem {
            *self.last_pem.lock().unwrap_or_else(PoisonError::into_inner) = Some(pem.clone());
        }
        Ok(pem)
    }

    async fn store_cert(&self, domains: &[String], directory_url: &str, cert: &[u8]) -> io::Result<()> {
        *self.last_pem.lock().unwrap_or_else(PoisonError::into_inner) = Some(cert.to_vec());
        self.write(cert_file_name(domains, directory_url), cert).await
    }
}

#[async_trait::async_trait]
impl AccountCache for DirCache {
    type EA = io::Error;

    async fn load_account(&self, contact: &[String], directory_url: &str) -> io::Result<Option<Vec<u8>>> {
        self.read(account_file_name(contact, directory_url)).await
    }

    async fn store_account(&self, contact: &[String], directory_url: &str, account: &[u8]) -> io::Result<()> {
        self.write(account_file_name(contact, directory_url), account).await
    }
}
