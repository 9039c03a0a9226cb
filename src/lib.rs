//! confctl: a self-hosted video-lecture platform around LiveKit — the library behind the `confctl` binary.
//!
//! Each domain owns one module; `http` only translates between HTTP and these domains, and all SQL lives in
//! `store`.

pub mod accounts;
pub mod app;
pub mod config;
pub mod error;
pub mod ids;
pub mod net;
pub mod ratelimit;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod time;

pub mod http;

pub use error::{Error, Result};

/// Installs ring as the process-wide rustls crypto provider (HTTPS clients and servers need exactly one).
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
