//! What an open HTTP/1.1 connection with a streaming response costs in hyper itself, with nothing of
//! confctl's: the floor under what a guest waiting on its waiting-room stream can cost the server. A server
//! process (this binary, run again with `--serve`) answers every request with an endless event stream (a
//! comment every 15 s, as confctl's streams); this process opens the connections from many loopback
//! addresses, sends each a request like a browser's `EventSource`, reads the response head and holds on.
//! Measured for the two ways confctl has served cleartext connections: hyper's HTTP/1.1 connection
//! (`src/http/plain.rs`, now) and hyper-util's auto connection, which can also speak HTTP/2 (what
//! `axum::serve` uses, before). Same allocator as confctl (jemalloc, declared by the library).
//!
//! Run: `cargo bench --bench connection_floor [-- 10000]`. Prints resident memory before and after, and per
//! connection. A measurement, not a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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
        return serve(kind == "auto").await;
    }
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    println!("connection floor: {n} open streaming responses, hyper alone, jemalloc");
    for kind in ["http1", "auto"] {
        measure(kind, n).await;
    }
}

async fn measure(kind: &str, n: usize) {
    let mut server =
        Command::new(std::env::current_exe().unwrap()).args(["--serve", kind]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let idle = rss_mb(server.id());
    let mut open = Vec::with_capacity(n);
    for i in 0..n {
        // 250 connections an address, as the waiting-room benchmark's guests come from many addresses.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("127.0.{}.{}:0", 1 + i / 250 / 250, 1 + (i / 250) % 250).parse().unwrap()).unwrap();
        let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
        stream.write_all(request(port).as_bytes()).await.unwrap();
        let mut head = [0u8; 1024];
        let read = stream.read(&mut head).await.unwrap();
        assert!(head[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head[..read]));
        open.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = rss_mb(server.id());
    let label =
        if kind == "http1" { "HTTP/1.1 connection (src/http/plain.rs)" } else { "auto connection (axum::serve)" };
    println!(
        "  {label}: {idle:.1} MB idle, {held:.1} MB with {n} open ({:.1} KB a connection)",
        (held - idle) * 1000.0 / n as f64
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

/// What a browser's `EventSource` sends for a waiting guest's stream.
fn request(port: u16) -> String {
    format!(
        "GET /api/rooms/Zx9Qm2Lr8TwP4cVb1NkS3a/lobby/stream?sessionId=-3Fq8kLmNo1Pq2Rs3Tu4Vw5Xy6Za7Bc8De9Fg0Hi1Jk2Lm3No4 \
         HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36\r\n\
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

/// The server side: every request gets an event stream that never ends.
async fn serve(auto: bool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_request| async {
                let events = futures::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                    Some((Ok::<_, Infallible>(Frame::data(Bytes::from_static(b":heartbeat\n\n"))), ()))
                });
                hyper::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(StreamBody::new(Box::pin(events)))
            });
            let io = TokioIo::new(stream);
            let _ = if auto {
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(io, service)
                    .await
            } else {
                hyper::server::conn::http1::Builder::new().serve_connection(io, service).await.map_err(Into::into)
            };
        });
    }
}
