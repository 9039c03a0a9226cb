//! HTTPS with certificates from a real ACME server: Debian's pebble on loopback, started by
//! `scripts/test-services start` (which prints the TEST_PEBBLE_* variables this test reads). One test
//! function, because pebble validates TLS-ALPN-01 on one fixed port that confctl must be listening on.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use confctl::tls::{CertificateStatus, HSTS_VALUE};

use crate::support::tls::{self, DOMAIN, TlsServer, http_client, https_client, https_get};
use crate::support::{self, Service};

const SECOND_NAME: &str = "media.confctl.test";

struct Pebble {
    directory: String,
    ca_file: String,
    management: String,
    tls_port: u16,
}

impl Pebble {
    /// The test asks `require(&[Service::Acme])` first.
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the suite with scripts/test, or eval \"$(scripts/test-services start)\" first")
            })
        };
        Self {
            directory: var("TEST_PEBBLE_DIRECTORY"),
            ca_file: var("TEST_PEBBLE_CA"),
            management: var("TEST_PEBBLE_MANAGEMENT"),
            tls_port: var("TEST_PEBBLE_TLS_PORT").parse().expect("TEST_PEBBLE_TLS_PORT is a port"),
        }
    }

    /// The root pebble signs certificates with (a new one every time pebble starts).
    async fn issuing_root(&self) -> Vec<u8> {
        let ca = std::fs::read(&self.ca_file).unwrap();
        confctl::tls_provider();
        let client =
            reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()]).build().unwrap();
        let response = client.get(format!("{}/roots/0", self.management)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap().to_vec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acme_certificate_is_issued_served_redirected_and_reused_after_restart() {
    if !support::require(&[Service::Acme]) {
        return;
    }
    let pebble = Pebble::from_env();
    let data_dir = tempfile::tempdir().unwrap();
    let https: SocketAddr = format!("127.0.0.1:{}", pebble.tls_port).parse().unwrap();
    // Two names: one certificate covers both, each validated separately.
    let domains = format!("{DOMAIN},{SECOND_NAME}");
    let env = [
        ("CONFCTL_DOMAINS", domains.as_str()),
        ("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"),
        ("CONFCTL_TLS__ACME_DIRECTORY", pebble.directory.as_str()),
        ("CONFCTL_TLS__ACME_CA_FILE", pebble.ca_file.as_str()),
    ];
    let config = tls::config(data_dir.path(), https, &env).unwrap();

    // First start: nothing cached, so a certificate is ordered and validated over TLS-ALPN-01.
    let started = Instant::now();
    let server = TlsServer::start(config.clone()).await;
    server.wait_for("the first certificate", Duration::from_secs(90), |s| s.serial.is_some()).await;
    eprintln!("ACME certificate obtained from pebble in {:.1} s", started.elapsed().as_secs_f64());
    let issued = server.status.get();
    assert_eq!(issued.names, vec![DOMAIN.to_owned(), SECOND_NAME.to_owned()]);
    assert!(issued.issuer.as_deref().is_some_and(|i| i.contains("Pebble")), "{issued:?}");
    assert!(issued.not_after.is_some_and(|t| t > chrono::Utc::now()), "{issued:?}");
    assert!(issued.last_error.is_none(), "{issued:?}");
    assert_eq!(issued.source, format!("acme {}", pebble.directory));

    // A client that trusts only pebble's issuing root gets the application, with HSTS.
    let root = pebble.issuing_root().await;
    let (response, served) = https_get(&https_client(&root, server.https), server.https, "/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["strict-transport-security"], HSTS_VALUE);
    assert_eq!(served.serial, issued.serial, "the served certificate is the one reported");

    // Plain HTTP only redirects, to the same path and query over HTTPS, and only to a configured name.
    let redirect = server.redirect.expect("the redirect listener is on");
    let plain = http_client(redirect);
    let response = plain.get(format!("http://{DOMAIN}:{}/api/auth/me?x=1", redirect.port())).send().await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.headers()["location"], format!("https://{DOMAIN}:{}/api/auth/me?x=1", https.port()));
    assert!(!response.headers().contains_key("set-cookie"));
    let forged =
        plain.get(format!("http://{DOMAIN}:{}/", redirect.port())).header("host", "evil.example").send().await.unwrap();
    assert_eq!(forged.headers()["location"], format!("https://{DOMAIN}:{}/", https.port()));
    let second =
        plain.get(format!("http://{DOMAIN}:{}/x", redirect.port())).header("host", SECOND_NAME).send().await.unwrap();
    assert_eq!(second.headers()["location"], format!("https://{SECOND_NAME}:{}/x", https.port()));

    // The cache holds private keys: owner-only.
    let cache = data_dir.path().join("acme");
    assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777, 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with("cert-")), "{files:?}");
    for file in &files {
        assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    }
    // What `confctl doctor` can read without a running server.
    let on_disk = CertificateStatus::from_disk(&config).unwrap().unwrap();
    assert_eq!(on_disk.serial, issued.serial);

    server.stop().await;

    // Second start with the same data directory: the cached certificate is served, nothing is ordered
    // (an order would give a new serial), and it is there at once.
    let restarted = Instant::now();
    let server = TlsServer::start(config).await;
    server.wait_for("the cached certificate", Duration::from_secs(10), |s| s.serial.is_some()).await;
    eprintln!("cached certificate in use {:.2} s after restart", restarted.elapsed().as_secs_f64());
    assert_eq!(server.status.get().serial, issued.serial, "the cached certificate is reused");
    let (response, served) = https_get(&https_client(&root, server.https), server.https, "/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(served.serial, issued.serial, "no new certificate was ordered");
    server.stop().await;
}
