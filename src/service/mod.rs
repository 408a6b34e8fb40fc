//! The network service (`synthscan serve`): the call-centre edge. Async (tokio + axum) only
//! here; scoring runs on the [`engine`] worker threads.
//!
//! Endpoints: `POST /v1/analyze` (a file in the body -> the analyze object), `GET /v1/stream`
//! (WebSocket: live call audio in, score/alert/summary events out), `GET /healthz`,
//! `GET /metrics`. The service keeps no state beyond open connections and writes no audio to
//! disk, so replicas scale out behind any load balancer.

mod audio;
mod engine;
mod guard;
mod listener;
pub mod media;
mod metrics;
mod page;
pub mod siprec;
mod spectrogram;
mod stream;
mod upload;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::{Semaphore, watch};

use self::engine::Engine;
use self::guard::{Access, Guard};
pub use self::listener::ConnectionLimits;
use self::metrics::Metrics;
use crate::Detector;
use crate::detect::LivePolicy;
use crate::error::{Error, Result};
use crate::model::{LoadedModel, OnnxScorer};

/// Service settings (the CLI fills them from flags).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    /// Bearer token; required unless `listen` is a loopback address.
    pub token: Option<String>,
    /// Scoring worker threads (one ONNX Runtime session each).
    pub workers: usize,
    pub max_streams: usize,
    pub connections: ConnectionLimits,
    /// Decoded stream audio waiting to be scored, over all connections, in samples.
    pub max_buffered_samples: usize,
    pub uploads: UploadLimits,
    /// A stream that sends no audio for this long is finished and closed.
    pub idle_timeout: Duration,
    /// On shutdown, how long open calls may go on before they are summarised and closed.
    pub drain_timeout: Duration,
    pub policy: LivePolicy,
}

/// What one `POST /v1/analyze` may cost.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest body, in bytes.
    pub max_body_bytes: usize,
    /// Time the client has to send the whole body.
    pub body_timeout: Duration,
    /// Decoded audio at most, in samples of all channels at the file's own rate.
    pub max_samples: u64,
    /// Time one analysis may take once it has a worker.
    pub analysis_timeout: Duration,
}

struct App {
    detector: Detector,
    model: Arc<LoadedModel>,
    engine: Engine,
    metrics: Arc<Metrics>,
    guard: Guard,
    max_streams: u64,
    idle_timeout: Duration,
    uploads: UploadLimits,
    next_conn: AtomicU64,
    draining: AtomicBool,
    /// Flips to true when open streams must finish now.
    finish_now: watch::Receiver<bool>,
    /// The server-wide budget of decoded stream samples waiting for a scorer.
    buffer: Arc<Semaphore>,
    /// Scorers for `POST /v1/analyze`, checked out one per request.
    analyze_scorers: Mutex<Vec<OnnxScorer>>,
    analyze_slots: Semaphore,
}

/// Runs the service until Ctrl-C or SIGTERM; `on_ready` gets the bound address.
pub fn run(
    config: ServiceConfig,
    model: LoadedModel,
    detector: Detector,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    if config.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        // an empty or blank token would let any client that sends a blank header in
        return Err(Error::Config(
            "the token is empty or blank; give one with characters in it".into(),
        ));
    }
    if !config.listen.ip().is_loopback() && config.token.is_none() {
        return Err(Error::TokenRequired(config.listen));
    }
    let workers = config.workers.clamp(1, 256);
    let runtime = async_runtime(workers.min(4))?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(&model, &detector, &config.policy, workers, &metrics)?;
    let (finish_tx, finish_rx) = watch::channel(false);
    let app = Arc::new(App {
        detector,
        model,
        engine,
        metrics: Arc::clone(&metrics),
        guard: Guard::new(config.token.clone()),
        max_streams: config.max_streams as u64,
        idle_timeout: config.idle_timeout,
        uploads: config.uploads,
        next_conn: AtomicU64::new(1),
        draining: AtomicBool::new(false),
        finish_now: finish_rx,
        // at least one connection's worth, so a lone client is never stuck
        buffer: Arc::new(Semaphore::new(
            config
                .max_buffered_samples
                .clamp(stream::CONNECTION_BUFFER_SAMPLES, Semaphore::MAX_PERMITS),
        )),
        analyze_scorers: Mutex::new(Vec::new()),
        analyze_slots: Semaphore::new(workers),
    });
    // The token of a POST or a metrics scrape is checked from the headers before the body is
    // read (a route layer runs before the handler's extractors), so an unauthenticated client
    // cannot make the server buffer an upload. `?token=` is for WebSocket clients only.
    let with_token = axum::middleware::from_fn_with_state(Arc::clone(&app), require_header_token);
    let router = Router::new()
        .route("/v1/analyze", post(upload::analyze).route_layer(with_token.clone()))
        .route("/v1/audio", post(audio::audio).route_layer(with_token.clone()))
        .route(
            "/v1/spectrogram",
            post(spectrogram::spectrogram).route_layer(with_token.clone()),
        )
        .route("/v1/stream", get(stream::upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text).route_layer(with_token))
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/tap.js", get(page::tap))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(Arc::clone(&app));
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Runtime(format!("cannot read the bound address: {e}")))?;
        on_ready(addr);
        let mut limits = config.connections;
        if let Some(fits) = listener::fit_to_file_limit(limits.max_connections) {
            eprintln!(
                "synthscan: the open-file limit allows {fits} connections, not {}: serving at most {fits} \
                 (raise it with `ulimit -n` or LimitNOFILE=)",
                limits.max_connections
            );
            limits.max_connections = fits;
        }
        // The drain: the server keeps answering (/healthz says "draining", new streams and
        // uploads get 503) while open calls go on for the drain period; then they are summarised
        // and closed, and only then does the listener stop and the connections left get a
        // short grace period (listener.rs): no client can hold the exit up.
        let (stop_tx, stop_rx) = watch::channel(false);
        let drain_app = Arc::clone(&app);
        let drain_timeout = config.drain_timeout;
        tokio::spawn(async move {
            shutdown_signal().await;
            drain_app.draining.store(true, Ordering::SeqCst);
            eprintln!("synthscan: shutting down: no new streams; waiting for open calls");
            wait_for_streams(&drain_app.metrics, drain_timeout).await;
            let _ = finish_tx.send(true);
            wait_for_streams(&drain_app.metrics, Duration::from_secs(5)).await;
            let _ = stop_tx.send(true);
        });
        listener::serve(listener, router, limits, metrics, stop_rx).await;
        Ok(())
    });
    // an upload still being analysed is abandoned with the process
    runtime.shutdown_timeout(Duration::from_millis(500));
    served
}

/// The network side's runtime; scoring runs on the engine's own threads.
fn async_runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))
}

/// Waits until no stream is open, or `limit` has passed.
async fn wait_for_streams(metrics: &Metrics, limit: Duration) {
    let deadline = Instant::now() + limit;
    while metrics.streams_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// `response` with `Connection: close`: for a refusal sent while the request's body is still
/// unread, so the connection cannot carry another request; without it, a client that pools
/// connections sends its next request into a closing socket.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request's query string, or the sentence of the 400 for one that does not parse.
fn query<T>(
    query: std::result::Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> std::result::Result<T, String> {
    query
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| format!("the query string is not valid: {e}"))
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no such endpoint (GET /, POST /v1/analyze, POST /v1/spectrogram, POST /v1/audio, GET /v1/stream, GET /healthz, GET /metrics)",
    )
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
    )
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The refusal for a request from `client` carrying `token`, if it is refused: 401, or 429
/// with Retry-After for an address that has sent too many wrong tokens.
fn refuse_access(app: &App, client: SocketAddr, token: Option<&str>) -> Option<Response> {
    match app.guard.check(Some(client.ip()), token) {
        Access::Allowed => None,
        Access::Unauthorized => {
            Metrics::inc(&app.metrics.unauthorized);
            Some(error_response(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required",
            ))
        }
        Access::Throttled { retry_after_s } => {
            Metrics::inc(&app.metrics.throttled);
            let mut r = error_response(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong tokens from this address; retry in {retry_after_s} s"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            Some(r)
        }
    }
}

/// Refuses a request without the bearer token in its headers, before anything else of it is read.
async fn require_header_token(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let client = listener::client_addr(&request).unwrap_or(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
    if let Some(mut refusal) = refuse_access(&app, client, bearer(request.headers())) {
        // the body is left unread
        let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
            || request
                .headers()
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0");
        if has_body {
            refusal = closing(refusal);
        }
        return refusal;
    }
    next.run(request).await
}

async fn healthz(axum::extract::State(app): axum::extract::State<Arc<App>>) -> Response {
    let m = &app.model.manifest;
    let status = if app.draining.load(Ordering::SeqCst) {
        "draining"
    } else {
        "ok"
    };
    axum::Json(json!({
        "status": status,
        "model": {
            "name": m.name,
            "version": m.version,
            "sha256": m.sha256.to_lowercase(),
            // what the page needs to say why a result is inconclusive
            "window_s": m.window.frames as f64 * m.features.hop_s(),
            "min_speech_s": m.min_speech_s,
            // what the live view draws its threshold line at (browsers capture at 44.1 or 48 kHz)
            "threshold": app.detector.threshold_for(48_000),
            "threshold_narrowband": app.detector.threshold_for(8_000),
        },
        "streams_open": app.metrics.streams_open.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn metrics_text(axum::extract::State(app): axum::extract::State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
