//! HTTPS with the operator's own certificate files: served, reloaded when the files change, a broken
//! replacement logged and ignored; plus the `[tls]` configuration errors.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use confctl::tls::HSTS_VALUE;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SerialNumber};

use crate::support::tls::{self, DOMAIN, TlsServer, https_client, https_get};

struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "confctl test CA");
        Self { cert: params.self_signed(&key).unwrap(), key }
    }

    /// A leaf certificate for [`DOMAIN`] with this serial, as (certificate PEM, key PEM).
    fn leaf(&self, serial: u64) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![DOMAIN.to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
}

/// The configuration of an instance serving the certificate files in `files` on `https`.
fn files_config(files: &Path, data_dir: &Path, https: SocketAddr) -> confctl::config::Config {
    let cert = files.join("cert.pem").display().to_string();
    let key = files.join("key.pem").display().to_string();
    tls::config(data_dir, https, &[("CONFCTL_TLS__CERT_FILE", &cert), ("CONFCTL_TLS__KEY_FILE", &key)]).unwrap()
}

/// An instance serving certificate 1 of a fresh CA from files, as the tests that change or use them need it.
struct OwnFiles {
    ca: TestCa,
    /// The CA's certificate, for the client to trust.
    root: Vec<u8>,
    files: tempfile::TempDir,
    data_dir: tempfile::TempDir,
    server: TlsServer,
}

impl OwnFiles {
    async fn start() -> Self {
        let ca = TestCa::new();
        let root = ca.cert.pem().into_bytes();
        let files = tempfile::tempdir().unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        write_pair(files.path(), &ca.leaf(1));
        // Port 0 for HTTPS too: nothing external needs to reach it.
        let config = files_config(files.path(), data_dir.path(), "127.0.0.1:0".parse().unwrap());
        let server = TlsServer::start(config).await;
        Self { ca, root, files, data_dir, server }
    }
}

fn free_loopback() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_certificate_is_served_and_reloaded_when_the_files_change() {
    let OwnFiles { ca, root, files, data_dir, server } = OwnFiles::start().await;
    assert_eq!(server.status.get().serial.as_deref(), Some("01"));

    let (response, served) = https_get(&https_client(&root, server.https), server.https, "/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["strict-transport-security"], HSTS_VALUE);
    assert_eq!(served.serial.as_deref(), Some("01"));
    assert_eq!(served.names, vec![DOMAIN.to_owned()]);

    // A broken replacement is reported and the previous certificate stays in use.
    std::fs::write(files.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    server.wait_for("the broken file to be noticed", Duration::from_secs(20), |s| s.last_error.is_some()).await;
    let status = server.status.get();
    assert!(status.last_error.as_deref().unwrap().contains("cert.pem"), "names the file: {status:?}");
    assert_eq!(status.serial.as_deref(), Some("01"));
    let (_, served) = https_get(&https_client(&root, server.https), server.https, "/healthz").await;
    assert_eq!(served.serial.as_deref(), Some("01"), "still the old certificate");

    // A good new pair is picked up without a restart.
    write_pair(files.path(), &ca.leaf(2));
    server.wait_for("the new certificate", Duration::from_secs(20), |s| s.serial.as_deref() == Some("02")).await;
    assert!(server.status.get().last_error.is_none());
    let (response, served) = https_get(&https_client(&root, server.https), server.https, "/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(served.serial.as_deref(), Some("02"));

    // What `confctl doctor` will show, saved in the data directory.
    let saved = confctl::tls::CertificateStatus::saved(data_dir.path()).unwrap();
    assert_eq!(saved.serial.as_deref(), Some("02"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_over_https_is_host_prefixed_secure_httponly_and_same_site() {
    // The files and the data directory stay for as long as the server runs.
    let OwnFiles { root, server, files: _files, data_dir: _data_dir, .. } = OwnFiles::start().await;
    let origin = format!("https://{DOMAIN}:{}", server.https.port());
    let client = https_client(&root, server.https);
    // The first account of a public instance needs the one-time setup code from the log.
    let code = confctl::accounts::setup_code(&server.app).await.unwrap().unwrap();
    let response = client
        .post(format!("{origin}/api/auth/register"))
        .header("origin", &origin)
        .json(&serde_json::json!({"email": "ada@uni.edu", "password": "correct horse battery", "name": "Ada",
            "setupCode": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Host-confctl_session=")).expect("a __Host- session cookie");
    let attributes: Vec<String> = session.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect();
    for wanted in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(attributes.iter().any(|a| a == wanted), "{wanted} missing: {session}");
    }
    assert!(!attributes.iter().any(|a| a.starts_with("domain")), "__Host- cookies carry no Domain: {session}");
    assert!(!cookies.iter().any(|c| c.starts_with("confctl_session=")), "no unprefixed cookie over HTTPS");

    let value = session.split(';').next().unwrap();
    let me = client.get(format!("{origin}/api/auth/me")).header("cookie", value).send().await.unwrap();
    assert_eq!(me.status(), 200, "the cookie signs in");
    server.stop().await;
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_start_with_the_reason() {
    let ca = TestCa::new();
    let files = tempfile::tempdir().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let (cert, _) = ca.leaf(1);
    let (_, other_key) = ca.leaf(2);
    write_pair(files.path(), &(cert, other_key));
    let config = files_config(files.path(), data_dir.path(), free_loopback());
    let err = confctl::server::Server::bind(config, &Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("key.pem") && err.contains("does not fit") && err.contains("cert.pem"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");

    let missing =
        [("CONFCTL_TLS__CERT_FILE", "/nonexistent/cert.pem"), ("CONFCTL_TLS__KEY_FILE", "/nonexistent/key.pem")];
    let config = tls::config(data_dir.path(), free_loopback(), &missing).unwrap();
    let err = confctl::server::Server::bind(config, &Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("cannot read tls.cert_file /nonexistent/cert.pem"), "{err}");
}

#[test]
fn tls_configuration_mistakes_are_one_line_errors_naming_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let https = "127.0.0.1:8443".parse().unwrap();
    let err = |env: &[(&str, &str)]| tls::config(dir.path(), https, env).unwrap_err().to_string();

    let e = err(&[("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"), ("CONFCTL_DOMAINS", "")]);
    assert!(e.contains("tls.acme_email") && e.contains("domains") && e.contains("CONFCTL_TLS__ACME_EMAIL"), "{e}");
    let e = err(&[("CONFCTL_TLS__ACME_EMAIL", "not-an-address")]);
    assert!(e.contains("not-an-address") && e.contains("an email address"), "{e}");
    let e = err(&[
        ("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"),
        ("CONFCTL_TLS__CERT_FILE", "/c"),
        ("CONFCTL_TLS__KEY_FILE", "/k"),
    ]);
    assert!(e.contains("tls.acme_email") && e.contains("tls.cert_file") && e.contains("not both"), "{e}");
    let e = err(&[("CONFCTL_TLS__CERT_FILE", "/c")]);
    assert!(e.contains("tls.key_file"), "{e}");
    let e = err(&[("CONFCTL_TLS__ACME_STAGING", "true")]);
    assert!(e.contains("tls.acme_staging") && e.contains("ACME is off"), "{e}");
    let e = err(&[
        ("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"),
        ("CONFCTL_TLS__ACME_STAGING", "yes"),
        ("CONFCTL_TLS__ACME_DIRECTORY", "https://ca.example.edu/acme/directory"),
    ]);
    assert!(e.contains("tls.acme_directory") && e.contains("tls.acme_staging"), "{e}");
    let e = err(&[
        ("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"),
        ("CONFCTL_TLS__ACME_DIRECTORY", "http://ca.example.edu/dir"),
    ]);
    assert!(e.contains("tls.acme_directory") && e.contains("https://"), "{e}");
    let e = err(&[("CONFCTL_TLS__REDIRECT_LISTEN", "port eighty")]);
    assert!(e.contains("tls.redirect_listen") && e.contains("port eighty") && e.contains("or off"), "{e}");
    assert!(!e.contains('\n'));

    let config = tls::config(dir.path(), https, &[("CONFCTL_TLS__REDIRECT_LISTEN", "off")]).unwrap();
    assert_eq!(config.tls.redirect_listen, None);
    assert!(!config.tls.enabled(), "TLS stays off until ACME or a certificate is configured");
    let config = tls::config(
        dir.path(),
        https,
        &[("CONFCTL_TLS__ACME_EMAIL", "ops@example.edu"), ("CONFCTL_TLS__ACME_STAGING", "true")],
    )
    .unwrap();
    assert!(config.tls.enabled());
    assert!(confctl::http::serves_https(&config), "cookies get Secure and the __Host- prefix");
}
