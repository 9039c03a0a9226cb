//! Plain-HTTP serving: the accept loop that gives each connection to hyper's HTTP/1.1 server, and the
//! graceful stop. (HTTPS is served by `crate::tls`, which negotiates HTTP/2 or HTTP/1.1 with the browser.)
//!
//! Why not `axum::serve`: it serves every connection through hyper-util's "auto" connection, which can also
//! turn into HTTP/2 over cleartext, and a connection's task is sized for the larger of the two whichever it
//! speaks. Measured with hyper alone (an endless streaming response, 10,000 open connections, jemalloc):
//! 163.9 MB resident through the auto connection, 75.5 MB through HTTP/1.1's own. A waiting room holds one
//! connection per waiting guest for as long as they wait, and browsers do not speak HTTP/2 without TLS, so
//! the cleartext port speaks HTTP/1.1 only (docs/performance.md, "What a connection costs, measured right";
//! `benches/connection_floor.rs` measures both).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::Service;

/// How long a stopping server waits for requests in flight. A connection that has sent only part of a
/// request counts as one in flight, so without a bound a single slow client would hold the stop up for ever.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, asks every connection to
/// finish its request in flight and close (event streams end by themselves at shutdown), and returns once
/// they have or after [`SHUTDOWN_GRACE`]. Handlers see the peer's address as `ConnectInfo<SocketAddr>`, as
/// with `axum::serve`.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) {
    // Every connection task holds a receiver: `true` asks it to stop, and `closed()` resolves once the last
    // one has ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors (or another failure of the listener itself): wait instead of
                // spinning; a connection reset before it was accepted is only that connection's loss.
                if !is_connection_error(&err) {
                    tracing::error!(error = %err, "accepting a connection failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                continue;
            }
        };
        no_delay(&stream);
        tokio::spawn(connection(stream, peer, router.clone(), stop_rx.clone()));
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed()).await.is_err() {
        tracing::warn!(
            connections = stop_tx.receiver_count(),
            "connections still busy after {}s; no longer waiting for them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

/// Sets `TCP_NODELAY` on an accepted connection (both listeners: here and `crate::tls`, before the handshake).
/// Without it the kernel holds a small write back while an earlier one is unacknowledged, and clients
/// acknowledge late on purpose (delayed ACK: 40 ms on Linux, up to 200 ms on Windows): a TLS handshake's and
/// HTTP/2's opening writes, and events that follow each other on a stream, waited for it.
pub(crate) fn no_delay(stream: &tokio::net::TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// One connection, until it closes or the server stops.
async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, router: Router, mut stop: watch::Receiver<bool>) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().call(request)
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return log_end(result),
        _ = stop.wait_for(|stopping| *stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    log_end(conn.await);
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        // A client that went away mid-request, a malformed request: the connection's business only.
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(err.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}
