//! The accept loop: hyper connections with the limits `axum::serve` does not set.
//!
//! - A request head must arrive within `request_timeout` (hyper's header read timeout), so a
//!   client trickling header bytes (slowloris) is cut off; when part of a request had arrived it
//!   gets `408` before the close. The same timer closes keep-alive connections left idle.
//! - A request head of at most [`MAX_HEADERS`] fields and [`MAX_HEAD_BYTES`] bytes (431 past it).
//! - At most `max_connections` connections at once; a connection past it is answered `503` with
//!   `Retry-After` and closed, so idle or slow clients cannot starve the others of file
//!   descriptors or memory.
//! - Accept errors (out of file descriptors, say) are logged and retried, never fatal.
//! - HTTP/1.1 only: webhook senders and the reverse proxies in front of hookgate speak it; an
//!   HTTP/2 connection would need timers of its own for the same guarantees.
//! - Graceful stop: no new connections; open ones finish their in-flight request and close.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// Limits for one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request head may take to arrive, and how long a connection may sit idle.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Header fields a request may carry (431 past it).
pub const MAX_HEADERS: usize = 100;
/// Bytes the request line and header fields may take together (431 past it): room for large
/// cookies and long tokens, not for a client that sends headers without end.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: 103\r\n\r\n{\"type\":\"about:blank\",\"title\":\"Request Timeout\",\"status\":408,\"detail\":\"the request head took too long\"}";
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\ncontent-type: application/problem+json\r\ncontent-length: 117\r\n\r\n{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many open connections; retry shortly\"}";

/// Serves `router` on `listener` until `stop` is cancelled, then lets open connections finish
/// their in-flight requests and returns when all have closed.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, stop: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD_BYTES);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE/ENFILE and friends: wait for connections to close, then go on.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying shortly");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "server.max_connections reached; refusing a connection with 503");
            // A fresh socket's send buffer is empty: this write does not block or come up short.
            let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::new(AtomicU8::new(IDLE));
        let io = TokioIo::new(Watched {
            inner: stream,
            state: state.clone(),
        });
        let service = TowerToHyperService::new(router.clone().map_request(
            |req: hyper::Request<Incoming>| -> Request { req.map(axum::body::Body::new) },
        ));
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            let conn = pin!(conn);
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    // Read before the connection (and its socket) is dropped: `Watched` answers 408
                    // on drop when part of a request had arrived.
                    state.fetch_or(TIMED_OUT, Ordering::Relaxed);
                } else {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// No request bytes since the last response.
const IDLE: u8 = 0;
/// Part of a request has arrived and no response has been written yet.
const PARTIAL: u8 = 1;
/// The connection timed out waiting for a request head.
const TIMED_OUT: u8 = 2;

/// A TCP stream that remembers whether an unanswered request has started to arrive, so a
/// header timeout can be told apart from an idle keep-alive connection closing.
struct Watched {
    inner: TcpStream,
    state: Arc<AtomicU8>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.state.load(Ordering::Relaxed) == PARTIAL | TIMED_OUT {
            // Nothing was written since the partial request: the send buffer has room.
            let _ = self.inner.try_write(REQUEST_TIMEOUT);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.store(PARTIAL, Ordering::Relaxed);
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.state.store(IDLE, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.state.store(IDLE, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_answers_announce_their_own_length() {
        for answer in [REQUEST_TIMEOUT, TOO_MANY_CONNECTIONS] {
            let text = std::str::from_utf8(answer).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let announced = format!("content-length: {}", body.len());
            assert!(head.split("\r\n").any(|l| l == announced), "{head}");
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
    }
}
