//! `confctl serve` as systemd runs it: HTTPS from certificate files given as flags, READY=1 once listening
//! and STOPPING=1 on SIGTERM (sd_notify over NOTIFY_SOCKET), a clean exit; and the `[tls]` flags' errors.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::confctl;

/// A self-signed certificate and key for `name`, made with openssl (scripts/test-services installs it).
fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={name}"), "-addext", &format!("subjectAltName=DNS:{name}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success());
    (cert.display().to_string(), key.display().to_string())
}

/// The next notification; on a timeout, stops the server and fails with its log.
fn receive(socket: &UnixDatagram, child: &mut std::process::Child) -> String {
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(err) => {
            let exited = child.try_wait().ok().flatten();
            eprintln!("server exit status before kill: {exited:?}");
            let _ = child.kill();
            let log: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
            panic!("no notification within the timeout ({err}); server log:\n{}", log.join("\n"));
        }
    }
}

#[test]
fn serve_over_https_tells_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (cert, key) = self_signed(dir.path(), "lectures.example.edu");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();

    let mut child = confctl(&data)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("CONFCTL_LOG_LEVEL", "info")
        .args(["serve", "--domain", "lectures.example.edu", "--tls-cert", &cert, "--tls-key", &key])
        .args(["--tls-listen", "127.0.0.1:0", "--tls-redirect-listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = receive(&notify, &mut child);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("STATUS=listening on https://127.0.0.1:"), "{ready}");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let stopping = receive(&notify, &mut child);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    let exit = child.wait().unwrap();
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map(Result::unwrap).collect();
    assert_eq!(exit.code(), Some(0), "graceful shutdown exits 0; log:\n{}", log.join("\n"));
    let served = log.iter().find(|l| l.contains("serving the certificate from")).expect("the certificate is logged");
    assert!(served.contains("lectures.example.edu") && served.contains("not_after"), "{served}");
}

#[test]
fn tls_flags_are_checked_like_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = confctl(&data).args(["serve", "--acme-email", "ops@example.edu"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`tls.acme_email`") && err.contains("--acme-email") && err.contains("domains"), "{err}");

    let out = confctl(&data).args(["serve", "--tls-cert", "/c.pem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));

    let out = confctl(&data)
        .env("CONFCTL_LOG_LEVEL", "error")
        .args(["serve", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"])
        .args(["--tls-listen", "127.0.0.1:0", "--tls-redirect-listen", "off"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read tls.cert_file /nonexistent/c.pem"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
