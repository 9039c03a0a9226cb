//! HTTPS terminated by confctl itself: certificates from ACME (TLS-ALPN-01) or from PEM files, the
//! plain-HTTP listener that only redirects to HTTPS, HSTS, and the [`CertificateStatus`] reported in logs
//! and by `confctl doctor`. `server.rs` uses [`Tls::prepare`] and [`Tls::serve`]; nothing else does.

mod acme;
mod files;
mod redirect;
mod status;

pub use status::{CertificateStatus, STATUS_FILE, StatusHandle};

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;

/// Browsers keep using HTTPS for a year after seeing this. No `includeSubDomains`: other hosts under the
/// same name are not confctl's to decide for.
pub const HSTS_VALUE: &str = "max-age=31536000";

/// How long a client may take to complete the TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Source {
    Acme(acme::Acme),
    Files(files::Files),
}

/// TLS prepared for one `confctl serve`: the certificate source and the bound redirect listener.
pub struct Tls {
    source: Source,
    redirect: Option<TcpListener>,
    status: StatusHandle,
    domains: Vec<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("status", &self.status.get()).finish_non_exhaustive()
    }
}

impl Tls {
    /// `Ok(None)` when the configuration leaves TLS off. Otherwise loads the certificate files (or sets up
    /// the ACME client and its cache) and binds the redirect listener; the HTTPS listener itself is bound
    /// by the caller on `tls.listen`.
    pub async fn prepare(config: &Config) -> anyhow::Result<Option<Self>> {
        if !config.tls.enabled() {
            return Ok(None);
        }
        let (source, description) = if let Some(cert_file) = &config.tls.cert_file {
            (Source::Files(files::Files::new(config)?), format!("file {}", cert_file.display()))
        } else {
            let acme = acme::Acme::new(config)?;
            let description = format!("acme {}", acme.directory());
            (Source::Acme(acme), description)
        };
        let redirect = match config.tls.redirect_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| listen_error(addr, &e))?),
            None => None,
        };
        let status = StatusHandle::new(description, &config.data_dir);
        if let Source::Files(files) = &source {
            // Logged here, before `serve` says it is ready, so the log has it however soon it is stopped.
            files.log_start();
            status.set_certificate(files.loaded().clone());
        }
        Ok(Some(Self { source, redirect, status, domains: config.domains.clone() }))
    }

    /// The live certificate status (also saved to [`STATUS_FILE`] in the data directory on every change).
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// Where the plain-HTTP redirect listens, unless it is off.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves `router` over HTTPS on `listener` (with HSTS), the redirect on its own listener, and keeps
    /// the certificate current, until `shutdown` resolves; then stops accepting and lets in-flight
    /// requests finish, as plain HTTP does (for up to the same grace).
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let https_addr = listener.local_addr()?;
        let router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS_VALUE),
        ));
        let make_service = router.into_make_service_with_connect_info::<SocketAddr>();

        let handle = axum_server::Handle::<SocketAddr>::new();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopper = {
            let handle = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                handle.graceful_shutdown(Some(crate::http::plain::SHUTDOWN_GRACE));
                let _ = stop_tx.send(true);
            })
        };
        let redirect = self.redirect.map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "plain HTTP redirects to HTTPS");
            }
            let app = redirect::router(&self.domains, https_addr.port());
            let mut stop = stop_rx;
            tokio::spawn(async move {
                crate::http::plain::serve(listener, app, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
            })
        });

        let server = axum_server::Server::<SocketAddr>::from_listener(listener).handle(handle);
        let names = self.domains.join(",");
        let result = match self.source {
            Source::Acme(acme) => {
                tracing::info!(%https_addr, names = %names, directory = acme.directory(), "serving HTTPS with ACME certificates");
                let acceptor = NoDelay(WithHandshakeTimeout(acme.acceptor()));
                let manager = tokio::spawn(acme.run(self.status.clone(), names));
                let result = server.acceptor(acceptor).serve(make_service).await;
                manager.abort();
                result
            }
            Source::Files(files) => {
                tracing::info!(%https_addr, "serving HTTPS with the configured certificate files");
                let acceptor = NoDelay(files.acceptor());
                let manager = tokio::spawn(files.run(self.status.clone()));
                let result = server.acceptor(acceptor).serve(make_service).await;
                manager.abort();
                result
            }
        };
        stopper.abort();
        if let Some(redirect) = redirect {
            if let Err(err) = redirect.await {
                tracing::warn!(error = %err, "the HTTP redirect listener stopped abnormally");
            }
        }
        result.map_err(|e| anyhow::anyhow!("the HTTPS server failed: {e}"))
    }
}

/// A bind failure with the likely fix when the port is privileged.
pub fn listen_error(addr: SocketAddr, err: &io::Error) -> anyhow::Error {
    let hint = if err.kind() == io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        " (ports below 1024 need CAP_NET_BIND_SERVICE: run from the packaged systemd unit, or pick a port \
         above 1023 with tls.listen / tls.redirect_listen)"
    } else {
        ""
    };
    anyhow::anyhow!("cannot listen on {addr}: {err}{hint}")
}

/// HTTP/2 first, then HTTP/1.1, as browsers expect.
fn alpn_protocols() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// A PEM parse error in words (the library shows a missing end marker as a list of byte values).
fn pem_error(err: &rustls::pki_types::pem::Error) -> String {
    match err {
        rustls::pki_types::pem::Error::MissingSectionEnd { end_marker } => {
            format!("the -----END {}----- line is missing", String::from_utf8_lossy(end_marker))
        }
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sets `TCP_NODELAY` on every accepted connection before the TLS handshake (why: `http::plain::no_delay`).
#[derive(Clone)]
struct NoDelay<A>(A);

impl<S, A> axum_server::accept::Accept<tokio::net::TcpStream, S> for NoDelay<A>
where
    A: axum_server::accept::Accept<tokio::net::TcpStream, S>,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = A::Future;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        crate::http::plain::no_delay(&stream);
        self.0.accept(stream, service)
    }
}

/// rustls-acme's acceptor waits for a ClientHello forever; a client that never sends one would hold its
/// connection task forever.
#[derive(Clone)]
struct WithHandshakeTimeout<A>(A);

impl<I, S, A> axum_server::accept::Accept<I, S> for WithHandshakeTimeout<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accept = self.0.accept(stream, service);
        Box::pin(async move {
            tokio::time::timeout(HANDSHAKE_TIMEOUT, accept)
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))?
        })
    }
}
