//! What an open connection with a streaming response costs in hyper (and rustls) itself, with nothing of
//! confctl's: the floor under what a guest waiting on its waiting-room stream can cost the server. A server
//! process (this binary, run again with `--serve`) answers every request with an endless event stream (a
//! comment every 15 s, as confctl's streams); this process opens the connections from many loopback
//! addresses, sends each a request like a browser's `EventSource`, reads the response head and holds on.
//! Measured for the two ways confctl has served cleartext connections: hyper's HTTP/1.1 connection
//! (`src/http/plain.rs`, now) and hyper-util's auto connection, which can also speak HTTP/2 (what
//! `axum::serve` uses, before); and for HTTPS as confctl serves it with TLS on and browsers speak it: rustls,
//! ALPN picking HTTP/2, hyper-util's auto connection (`src/tls`, through axum-server), every connection a
//! browser of its own with its stream on it. Same allocator as confctl (jemalloc, declared by the library).
//!
//! Run: `cargo bench --bench connection_floor [-- 10000] [http1|auto|https]`. Prints resident memory before
//! and after, and per connection. A measurement, not a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::any::Any;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The library declares the allocator; linking it is enough.
use confctl as _;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let Some(kind) = args.iter().position(|a| a == "--serve").and_then(|i| args.get(i + 1)) {
        let certificates = args.iter().position(|a| a == "--certificates").and_then(|i| args.get(i + 1));
        return serve(kind, certificates.map(Path::new)).await;
    }
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10_000);
    let picked: Vec<&str> = args.iter().map(String::as_str).filter(|a| KINDS.contains(a)).collect();
    println!("connection floor: {n} open streaming responses, hyper alone, jemalloc");
    for kind in KINDS {
        if picked.is_empty() || picked.contains(&kind) {
            measure(kind, n).await;
        }
    }
}

/// The servers measured: cleartext through hyper's HTTP/1.1 connection and through hyper-util's auto
/// connection; HTTPS through the auto connection, as confctl serves it. (Serving HTTPS through hyper's
/// HTTP/2 connection, picked by what ALPN agreed, was measured once and held no less: 31.6 KB a connection.)
const KINDS: [&str; 3] = ["http1", "auto", "https"];

async fn measure(kind: &str, n: usize) {
    let certificates = tempfile::tempdir().unwrap();
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--serve", kind]).stdout(Stdio::piped());
    let tls = kind.starts_with("https").then(|| {
        confctl::tls_provider();
        command.arg("--certificates").arg(certificates.path());
        tokio_rustls::TlsConnector::from(Arc::new(common::certificate_files(certificates.path())))
    });
    let mut server = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let idle = rss_mb(server.id());
    let mut open: Vec<Box<dyn Any>> = Vec::with_capacity(n);
    for i in 0..n {
        // 250 connections an address, as the waiting-room benchmark's guests come from many addresses.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.{}.{}:0", 1 + i / 250 / 250, 1 + (i / 250) % 250).parse().unwrap()).unwrap();
        let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        // The TLS and HTTP/2 handshakes are several small writes; Nagle would hold each back for an ACK.
        stream.set_nodelay(true).unwrap();
        if let Some(tls) = &tls {
            let held = tokio::time::timeout(Duration::from_secs(30), https_stream(tls, stream, port));
            open.push(Box::new(held.await.expect("an HTTPS connection stalled")));
            continue;
        }
        stream.write_all(request(port).as_bytes()).await.unwrap();
        let mut head = [0u8; 1024];
        let read = stream.read(&mut head).await.unwrap();
        assert!(head[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..read]));
        open.push(Box::new(stream));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = rss_mb(server.id());
    let label = match kind {
        "http1" => "HTTP/1.1 connection (src/http/plain.rs)",
        "auto" => "auto connection (axum::serve)",
        _ => "HTTPS: rustls, HTTP/2, auto connection (src/tls)",
    };
    println!(
        "  {label}: {idle:.1} MB idle, {held:.1} MB with {n} open ({:.1} KB a connection)",
        (held - idle) * 1000.0 / n as f64
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A browser's connection over HTTPS: TLS with ALPN, HTTP/2, and its `EventSource` request as one stream
/// on it. Returns what keeps the stream open.
async fn https_stream(tls: &tokio_rustls::TlsConnector, tcp: tokio::net::TcpStream, port: u16) -> impl Any + use<> {
    let name = rustls::pki_types::ServerName::try_from(common::TLS_NAME).unwrap();
    let tls = tls.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the server did not pick HTTP/2");
    let (mut send, connection) = h2::client::handshake(tls).await.unwrap();
    let driver = tokio::spawn(connection);
    let host = format!("{}:{port}", common::TLS_NAME);
    let request = axum::http::Request::get(format!("https://{host}{STREAM_PATH}"))
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache")
        .header("user-agent", USER_AGENT)
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.8")
        .header("accept-encoding", "gzip, deflate, br")
        .header("referer", format!("https://{host}/r/Zx9Qm2Lr"))
        .body(())
        .unwrap();
    let (response, _) = send.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    (send, response.into_body(), driver)
}

const STREAM_PATH: &str =
    "/api/rooms/Zx9Qm2Lr8TwP4cVb1NkS3a/lobby/stream?sessionId=-3Fq8kLmNo1Pq2Rs3Tu4Vw5Xy6Za7Bc8De9Fg0Hi1Jk2Lm3No4";
const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// What a browser's `EventSource` sends for a waiting guest's stream.
fn request(port: u16) -> String {
    format!(
        "GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\nUser-Agent: {USER_AGENT}\r\n\
         Accept-Language: ru-RU,ru;q=0.9,en;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n\
         Referer: http://127.0.0.1:{port}/r/Zx9Qm2Lr\r\nConnection: keep-alive\r\n\r\n"
    )
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1000.0
}

/// rustls with the certificate in `dir`, offering HTTP/2 first, as `src/tls` sets it up.
fn server_tls(dir: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(dir.join("cert.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The server side: every request gets an event stream that never ends.
async fn serve(kind: &str, certificates: Option<&Path>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let tls = certificates.map(server_tls);
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        // As confctl's listeners do (`src/http/plain.rs`, `src/tls`).
        stream.set_nodelay(true).unwrap();
        // Each kind its own task: one future for all three would be sized for the largest of them.
        match (&tls, kind) {
            (Some(tls), _) => drop(tokio::spawn(https(tls.clone(), stream))),
            (None, "http1") => drop(tokio::spawn(http1(stream))),
            (None, _) => drop(tokio::spawn(auto(stream))),
        }
    }
}

async fn http1(stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(endless_stream);
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
}

async fn auto(stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(endless_stream);
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
}

async fn https(tls: tokio_rustls::TlsAcceptor, stream: tokio::net::TcpStream) {
    let Ok(stream) = tls.accept(stream).await else { return };
    let service = hyper::service::service_fn(endless_stream);
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await;
}

/// Every request's answer: an event stream with a comment every 15 s, for ever.
async fn endless_stream<B>(
    _request: hyper::Request<B>,
) -> Result<hyper::Response<impl hyper::body::Body<Data = Bytes, Error = Infallible>>, Infallible> {
    let events = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_secs(15)).await;
        Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(b":heartbeat\n\n"))), ()))
    });
    let mut response = hyper::Response::new(StreamBody::new(Box::pin(events)));
    response.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("text/event-stream"));
    Ok(response)
}
