//! confctl: a self-hosted video-lecture platform around LiveKit — the library behind the `confctl` binary.
//!
//! Each domain owns one module; `http` only translates between HTTP and these domains, and all SQL lives in
//! `store`.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod agent;
pub mod app;
pub mod artifacts;
pub mod audit;
pub mod backup;
pub mod chat;
pub mod config;
pub mod doctor;
pub mod error;
pub mod events;
pub mod export;
pub mod files;
pub mod gdrive;
pub mod i18n;
pub mod ids;
pub mod lectures;
pub mod livekit;
pub mod moderation;
pub mod names;
pub mod net;
pub mod ratelimit;
pub mod replicas;
pub mod rooms;
pub mod secret;
pub mod server;
pub mod storage;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod traffic;

pub mod http;

pub use error::{Error, Result};

/// jemalloc rather than glibc's allocator, for every process that links this library — the binary, its
/// render workers, the tests and the benchmarks alike, so they measure what ships. Typesetting a lecture
/// PDF takes about a tenth less CPU with it, and the server answers more requests a second at the same tail
/// latency (docs/performance.md, "The allocator: jemalloc"); mimalloc, tried first, raised the join path's
/// p99 from 10 to 60 ms.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Installs ring as the process-wide rustls crypto provider (HTTPS clients and servers need exactly one).
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
