//! What the served certificate is (issuer, names, expiry) and the last error getting or loading one — for
//! log lines, for tests, and for `confctl doctor`, which reads the copy saved in the data directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// The file in the data directory where a running `confctl serve` keeps its latest [`CertificateStatus`].
pub const STATUS_FILE: &str = "tls-status.json";

/// The certificate confctl serves, as far as an operator needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// Where certificates come from: `acme <directory URL>` or `file <path>`.
    pub source: String,
    /// The issuing CA's distinguished name; `None` while no certificate has been obtained yet.
    pub issuer: Option<String>,
    /// DNS names (and IP addresses) the certificate is valid for.
    pub names: Vec<String>,
    /// Serial number in lower-case hex, to tell one certificate from its renewal.
    pub serial: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    /// The most recent failure to obtain, renew or reload a certificate; cleared by the next success.
    pub last_error: Option<String>,
}

impl CertificateStatus {
    /// Describes a DER-encoded certificate (the leaf of a chain).
    pub fn from_der(der: &[u8]) -> anyhow::Result<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("not a valid X.509 certificate: {e}"))?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let time = |t: x509_parser::time::ASN1Time| DateTime::<Utc>::from_timestamp(t.timestamp(), 0);
        let serial: String = cert.tbs_certificate.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            source: String::new(),
            issuer: Some(cert.issuer().to_string()),
            names,
            serial: Some(serial),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            last_error: None,
        })
    }

    /// Describes the first certificate in PEM text (other blocks, such as a private key, are skipped).
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let first = CertificateDer::pem_slice_iter(pem)
            .next()
            .ok_or_else(|| anyhow::anyhow!("no CERTIFICATE block found"))?
            .map_err(|e| anyhow::anyhow!("unreadable PEM: {}", super::pem_error(&e)))?;
        Self::from_der(&first)
    }

    /// The certificate `config` would serve, read from disk (the ACME cache or `tls.cert_file`), without
    /// a running server. `Ok(None)` when TLS is off; an ACME status without issuer when nothing is cached
    /// yet. `last_error` comes from the status a running server saved, when there is one.
    pub fn from_disk(config: &Config) -> anyhow::Result<Option<Self>> {
        let (source, path) = if let Some(cert) = &config.tls.cert_file {
            (format!("file {}", cert.display()), Some(cert.clone()))
        } else if config.tls.acme_email.is_some() {
            let directory = super::acme::directory_url(config);
            let path = super::acme::cert_cache_path(config, &directory);
            (format!("acme {directory}"), path.exists().then_some(path))
        } else {
            return Ok(None);
        };
        let mut status = match path {
            Some(path) => {
                let pem = std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                Self::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => Self::default(),
        };
        status.source = source;
        if let Some(saved) = Self::saved(&config.data_dir) {
            if saved.source == status.source && saved.serial == status.serial {
                status.last_error = saved.last_error;
            }
        }
        Ok(Some(status))
    }

    /// The status a running (or the last) `confctl serve` saved in `data_dir`, if any.
    pub fn saved(data_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Names joined by commas, for log lines.
    pub fn names_text(&self) -> String {
        self.names.join(",")
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// The live status of a running server, shared between the certificate manager and whoever asks.
#[derive(Debug, Clone)]
pub struct StatusHandle {
    inner: Arc<RwLock<CertificateStatus>>,
    /// Where each change is saved for `confctl doctor`.
    save_to: PathBuf,
}

impl StatusHandle {
    pub(super) fn new(source: String, data_dir: &Path) -> Self {
        let status = CertificateStatus { source, ..CertificateStatus::default() };
        let handle = Self { inner: Arc::new(RwLock::new(status)), save_to: data_dir.join(STATUS_FILE) };
        handle.save();
        handle
    }

    /// A snapshot of the current status.
    pub fn get(&self) -> CertificateStatus {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A certificate was deployed: its description replaces the previous one and clears the last error.
    pub(super) fn set_certificate(&self, described: CertificateStatus) {
        {
            let mut status = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            let source = std::mem::take(&mut status.source);
            *status = CertificateStatus { source, last_error: None, ..described };
        }
        self.save();
    }

    /// Getting or loading a certificate failed; whatever is served stays as it was.
    pub(super) fn set_error(&self, error: String) {
        self.inner.write().unwrap_or_else(PoisonError::into_inner).last_error = Some(error);
        self.save();
    }

    fn save(&self) {
        let path = &self.save_to;
        let Ok(json) = serde_json::to_string_pretty(&self.get()) else { return };
        // Written beside and renamed, so a reader never sees half a file.
        let tmp = path.with_extension("json.tmp");
        if let Err(err) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::debug!(path = %path.display(), error = %err, "could not save the certificate status");
        }
    }
}
