//! The accept loop: HTTP/1.1 connections (WebSocket upgrades included) with the limits a
//! hostile or careless client must not get past. A connection beyond the cap is closed at once;
//! one that does not finish its request head in time (or sits idle between requests) is closed;
//! on shutdown the listener stops and every connection is told to finish, and none is waited on
//! for more than a grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::metrics::Metrics;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open TCP connections at most (WebSocket streams count until they are upgraded; streams
    /// have their own cap).
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, counted from when it opens or
    /// finished its previous request: covers half-sent headers and idle keep-alive sockets.
    pub header_timeout: Duration,
}

/// How long connections get to finish once the listener has stopped.
const GRACE: Duration = Duration::from_secs(2);

/// Accepts connections until `stop` turns true, then stops accepting, asks every connection to
/// finish and returns once they have, or after [`GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // each connection holds a clone; when all are gone, every connection has ended
    let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
    let told_to_stop = stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, addr) = match accepted {
                    Ok(a) => a,
                    Err(_) => {
                        // out of file descriptors or a connection reset before accept: back off
                        // instead of spinning, the open connections keep being served
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    Metrics::inc(&metrics.connections_refused);
                    drop(tcp);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone().map_request(
                    move |mut request: axum::http::Request<Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(addr));
                        request
                    },
                ));
                let mut stop = told_to_stop.clone();
                let alive = alive_tx.clone();
                let header_timeout = limits.header_timeout;
                tokio::spawn(async move {
                    let _slot = slot;
                    let _alive = alive;
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_timeout)
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades();
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        _ = stop.wait_for(|s| *s) => {}
                    }
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(GRACE, connection).await;
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    drop(alive_tx);
    let _ = tokio::time::timeout(GRACE + Duration::from_millis(500), alive_rx.recv()).await;
}

/// File descriptors kept free of connections: the listener, the model, logs, the runtime.
const SPARE_FILES: usize = 64;

/// `max_connections` lowered to what the process's open-file limit allows (Linux: the soft
/// limit in /proc/self/limits), so the cap, not an accept error, is what a flood meets, and
/// `/healthz` keeps answering. `None` when nothing had to change.
pub fn fit_to_file_limit(max_connections: usize) -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft: usize = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    let fits = soft.saturating_sub(SPARE_FILES).max(1);
    (max_connections > fits).then_some(fits)
}

/// The client address a request came from (set by [`serve`]).
pub fn client_addr(request: &axum::http::Request<axum::body::Body>) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
