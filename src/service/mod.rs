//! The network service (`synthscan serve`): the call-centre edge. Async (tokio + axum) only
//! here; scoring runs on the [`engine`] worker threads.
//!
//! Endpoints: `POST /v1/analyze` (a file in the body -> the analyze object), `GET /v1/stream`
//! (WebSocket: live call audio in, score/alert/summary events out), `GET /healthz`,
//! `GET /metrics`. The service keeps no state beyond open connections and writes no audio to
//! disk, so replicas scale out behind any load balancer.

mod engine;
pub mod media;
mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

use self::engine::{Engine, Job, Reply};
use self::metrics::Metrics;
use crate::audio::{FileSource, RawFormat};
use crate::detect::LivePolicy;
use crate::error::{Error, Result};
use crate::model::{LoadedModel, OnnxScorer};
use crate::report::{ErrorEvent, ErrorReport, FileReport, ModelInfo, event_text};
use crate::{Detector, analyze_recording};

/// Service settings (the CLI fills them from flags).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    /// Bearer token; required unless `listen` is a loopback address.
    pub token: Option<String>,
    /// Scoring worker threads (one ONNX Runtime session each).
    pub workers: usize,
    pub max_streams: usize,
    pub max_body_bytes: usize,
    /// A stream that sends nothing for this long is finished and closed.
    pub idle_timeout: Duration,
    /// On shutdown, how long open calls may go on before they are summarised and closed.
    pub drain_timeout: Duration,
    pub policy: LivePolicy,
}

struct App {
    detector: Detector,
    model: Arc<LoadedModel>,
    engine: Engine,
    metrics: Arc<Metrics>,
    token: Option<String>,
    max_streams: u64,
    idle_timeout: Duration,
    next_conn: AtomicU64,
    draining: AtomicBool,
    /// Flips to true when open streams must finish now.
    finish_now: watch::Receiver<bool>,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.min(4))
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))?;
    let model = Arc::new(model);
    let metrics = Arc::new(Metrics::default());
    let engine = Engine::start(&model, &detector, &config.policy, workers, &metrics)?;
    let (finish_tx, finish_rx) = watch::channel(false);
    let app = Arc::new(App {
        detector,
        model,
        engine,
        metrics,
        token: config.token.clone(),
        max_streams: config.max_streams as u64,
        idle_timeout: config.idle_timeout,
        next_conn: AtomicU64::new(1),
        draining: AtomicBool::new(false),
        finish_now: finish_rx,
        analyze_scorers: Mutex::new(Vec::new()),
        analyze_slots: Semaphore::new(workers),
    });
    // The token of a POST or a metrics scrape is checked from the headers before the body is
    // read (a route layer runs before the handler's extractors), so an unauthenticated client
    // cannot make the server buffer an upload. `?token=` is for WebSocket clients only.
    let with_token = axum::middleware::from_fn_with_state(Arc::clone(&app), require_header_token);
    let router = Router::new()
        .route("/v1/analyze", post(analyze).route_layer(with_token.clone()))
        .route("/v1/stream", get(stream))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text).route_layer(with_token))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(Arc::clone(&app));
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Runtime(format!("cannot read the bound address: {e}")))?;
        on_ready(addr);
        // The drain: the server keeps answering (/healthz says "draining", new streams and
        // uploads get 503) while open calls go on for the drain period; then they are summarised
        // and closed, and only then does the listener stop.
        let drain_app = Arc::clone(&app);
        let drain_timeout = config.drain_timeout;
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
        let drain = async move {
            shutdown_signal().await;
            drain_app.draining.store(true, Ordering::SeqCst);
            eprintln!("synthscan: shutting down: no new streams; waiting for open calls");
            let deadline = Instant::now() + drain_timeout;
            while drain_app.metrics.streams_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = finish_tx.send(true);
            let deadline = Instant::now() + Duration::from_secs(5);
            while drain_app.metrics.streams_open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = drained_tx.send(());
        };
        let server = axum::serve(listener, router).with_graceful_shutdown(drain);
        tokio::select! {
            served = server => served.map_err(|e| Error::Runtime(format!("the server failed: {e}")))?,
            // A connection that never finishes its request (or sits idle) must not hold the exit
            // up: once the calls are done, stragglers get 2 s.
            () = async {
                if drained_rx.await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {}
        }
        Ok(())
    })
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

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a request without the bearer token in its headers, before anything else of it is read.
async fn require_header_token(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !authorized(&app, request.headers(), None) {
        return error_response(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    }
    next.run(request).await
}

/// Checks `Authorization: Bearer <token>` (or `?token=`, which only the WebSocket upgrade passes,
/// for clients that cannot set headers).
fn authorized(app: &App, headers: &HeaderMap, query_token: Option<&str>) -> bool {
    let Some(expected) = &app.token else { return true };
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = from_header
        .or(query_token)
        .is_some_and(|t| same_secret(t.as_bytes(), expected.as_bytes()));
    if !ok {
        Metrics::inc(&app.metrics.unauthorized);
    }
    ok
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let m = &app.model.manifest;
    let status = if app.draining.load(Ordering::SeqCst) {
        "draining"
    } else {
        "ok"
    };
    axum::Json(json!({
        "status": status,
        "model": {"name": m.name, "version": m.version, "sha256": m.sha256.to_lowercase()},
        "streams_open": app.metrics.streams_open.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct AnalyzeQuery {
    /// Echoed as `file` in the result.
    name: Option<String>,
    /// `1`/`true`: analyse a file that holds less audio than its header says.
    allow_truncated: Option<String>,
}

async fn analyze(State(app): State<Arc<App>>, Query(q): Query<AnalyzeQuery>, body: Bytes) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is draining; send it elsewhere",
        );
    }
    let name = q.name.unwrap_or_else(|| "body".into());
    if body.is_empty() {
        Metrics::inc(&app.metrics.errors);
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(ErrorReport {
                file: name,
                error: Error::EmptyInput.to_string(),
            }),
        )
            .into_response();
    }
    let Ok(_slot) = app.analyze_slots.acquire().await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let task_app = Arc::clone(&app);
    let task_name = name.clone();
    let allow_truncated = q.allow_truncated.as_deref().is_some_and(|v| v == "1" || v == "true");
    let joined =
        tokio::task::spawn_blocking(move || analyze_bytes(&task_app, &task_name, body.to_vec(), allow_truncated)).await;
    match joined {
        Ok(Ok(report)) => {
            Metrics::inc(&app.metrics.files_analyzed);
            if report.verdict == crate::Verdict::Synthetic {
                Metrics::inc(&app.metrics.calls_flagged);
            }
            axum::Json(report).into_response()
        }
        Ok(Err(e)) => {
            Metrics::inc(&app.metrics.errors);
            let status = if e.is_input_error() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (
                status,
                axum::Json(ErrorReport {
                    file: name,
                    error: match e {
                        Error::Truncated(_) => format!("{e} (allow_truncated=1 analyses what is there)"),
                        _ => e.to_string(),
                    },
                }),
            )
                .into_response()
        }
        Err(_) => {
            Metrics::inc(&app.metrics.errors);
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "the analysis task failed")
        }
    }
}

fn analyze_bytes(app: &App, name: &str, bytes: Vec<u8>, allow_truncated: bool) -> Result<FileReport> {
    let scorer = app.analyze_scorers.lock().ok().and_then(|mut pool| pool.pop());
    let mut scorer = match scorer {
        Some(s) => s,
        None => OnnxScorer::new(&app.model, 1)?,
    };
    // the same routine and windows per model call as `synthscan analyze`
    let result = FileSource::from_media_source(Box::new(std::io::Cursor::new(bytes)), name.into())
        .and_then(|mut source| analyze_recording(&app.detector, &mut source, &mut scorer, 1, allow_truncated))
        .map(|r| {
            FileReport::new(
                name,
                &r.codec,
                &r.analysis,
                r.warnings,
                ModelInfo::from(&app.model.manifest),
            )
        });
    if let Ok(mut pool) = app.analyze_scorers.lock() {
        pool.push(scorer);
    }
    result
}

#[derive(Debug, Deserialize)]
struct StreamQuery {
    token: Option<String>,
    /// Encoding of raw binary frames: s16le, ulaw or alaw.
    encoding: Option<String>,
    /// Sample rate of raw binary frames (default 8000).
    rate: Option<u32>,
    /// Interleaved channels in raw binary frames (default 1).
    channels: Option<usize>,
}

/// Decrements the open-stream gauge however the connection ends.
struct StreamSlot(Arc<Metrics>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn stream(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    if !authorized(&app, &headers, q.token.as_deref()) {
        return error_response(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    }
    if app.draining.load(Ordering::SeqCst) {
        Metrics::inc(&app.metrics.streams_rejected);
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down");
    }
    let raw = match raw_format(&q) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Reserve a slot before upgrading, so a full server says so with a status code.
    let open = app.metrics.streams_open.fetch_add(1, Ordering::SeqCst);
    let slot = StreamSlot(Arc::clone(&app.metrics));
    if open >= app.max_streams {
        Metrics::inc(&app.metrics.streams_rejected);
        drop(slot);
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server is at its limit of {} concurrent streams", app.max_streams),
        );
    }
    Metrics::inc(&app.metrics.streams_total);
    ws.max_message_size(1 << 20).on_upgrade(move |socket| async move {
        let _slot = slot;
        handle_socket(app, socket, raw).await;
    })
}

/// The raw-frame format declared in the query, if any.
fn raw_format(q: &StreamQuery) -> Result<Option<(RawFormat, u32, usize)>> {
    let Some(enc) = &q.encoding else { return Ok(None) };
    let format = media::encoding_from_name(enc)?;
    let rate = q.rate.unwrap_or(8000);
    let channels = q.channels.unwrap_or(1);
    crate::audio::check_stream_limits(rate, channels)?;
    Ok(Some((format, rate, channels)))
}

/// Messages of audio a connection may have queued for scoring before it stops reading from
/// its socket (TCP then slows the sender): memory stays bounded however fast a client sends.
const MAX_IN_FLIGHT: usize = 16;

/// Per-connection protocol state.
struct Connection {
    conn: u64,
    label: String,
    media_format: RawFormat,
    media_rate: u32,
    raw: Option<(RawFormat, u32, usize)>,
    /// The permit the next audio job will carry.
    permit: Option<OwnedSemaphorePermit>,
}

impl Connection {
    /// Queues decoded audio for the worker that owns this connection, with the connection's
    /// in-flight permit.
    fn queue_audio(
        &mut self,
        app: &App,
        track: String,
        rate_hz: u32,
        channels: usize,
        samples: Vec<f32>,
        reply: &mpsc::UnboundedSender<Reply>,
    ) {
        app.engine.send(
            self.conn,
            Job::Audio {
                conn: self.conn,
                track,
                rate_hz,
                channels,
                samples,
                received: Instant::now(),
                reply: reply.clone(),
                permit: self.permit.take(),
            },
        );
    }
}

enum Step {
    Continue,
    Finish,
}

async fn handle_socket(app: Arc<App>, socket: WebSocket, raw: Option<(RawFormat, u32, usize)>) {
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut incoming) = socket.split();
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Reply>();
    let mut connection = Connection {
        conn,
        label: format!("stream-{conn}"),
        media_format: RawFormat::Ulaw,
        media_rate: 8000,
        raw,
        permit: None,
    };
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut finish_now = app.finish_now.clone();
    let mut finishing = false;
    let mut peer_gone = false;
    let idle = app.idle_timeout;
    let mut idle_deadline = tokio::time::Instant::now() + idle;
    loop {
        tokio::select! {
            permit = Arc::clone(&in_flight).acquire_owned(), if !finishing && connection.permit.is_none() => {
                connection.permit = permit.ok();
                // Time spent waiting for the scorer is not the client's silence.
                idle_deadline = tokio::time::Instant::now() + idle;
            }
            msg = incoming.next(), if !finishing && connection.permit.is_some() => {
                idle_deadline = tokio::time::Instant::now() + idle;
                let step = match msg {
                    None | Some(Err(_)) => { peer_gone = true; Step::Finish }
                    Some(Ok(Message::Close(_))) => Step::Finish,
                    Some(Ok(Message::Binary(bytes))) => on_binary(&app, &mut connection, &bytes, &reply_tx),
                    Some(Ok(Message::Text(text))) => on_text(&app, &mut connection, &text, &reply_tx),
                    Some(Ok(_)) => Step::Continue,
                };
                if matches!(step, Step::Finish) {
                    if peer_gone {
                        app.engine.send(conn, Job::Forget { conn });
                        break;
                    }
                    finishing = true;
                    app.engine.send(conn, Job::Finish { conn, label: connection.label.clone(), reply: reply_tx.clone() });
                }
            }
            () = tokio::time::sleep_until(idle_deadline), if !finishing => {
                Metrics::inc(&app.metrics.errors);
                let e = format!("no data for {:.0} s: closing the stream", idle.as_secs_f64());
                let _ = sink.send(Message::Text(Utf8Bytes::from(event_text(&ErrorEvent::new(None, &e))))).await;
                finishing = true;
                app.engine.send(conn, Job::Finish { conn, label: connection.label.clone(), reply: reply_tx.clone() });
            }
            changed = finish_now.changed(), if !finishing => {
                if changed.is_ok() && *finish_now.borrow() {
                    let e = ErrorEvent::new(None, "the server is shutting down: closing the stream");
                    let _ = sink.send(Message::Text(Utf8Bytes::from(event_text(&e)))).await;
                    finishing = true;
                    app.engine.send(conn, Job::Finish { conn, label: connection.label.clone(), reply: reply_tx.clone() });
                }
            }
            reply = reply_rx.recv() => {
                match reply {
                    Some(Reply::Event(text)) => {
                        if sink.send(Message::Text(Utf8Bytes::from(text))).await.is_err() {
                            app.engine.send(conn, Job::Forget { conn });
                            break;
                        }
                    }
                    Some(Reply::Done) | None => {
                        let _ = sink.send(Message::Close(None)).await;
                        break;
                    }
                }
            }
        }
    }
}

fn send_error(app: &App, reply: &mpsc::UnboundedSender<Reply>, e: &Error) {
    Metrics::inc(&app.metrics.errors);
    let _ = reply.send(Reply::Event(event_text(&ErrorEvent::new(None, &e.to_string()))));
}

fn on_binary(app: &App, s: &mut Connection, bytes: &[u8], reply: &mpsc::UnboundedSender<Reply>) -> Step {
    let Some((format, rate, channels)) = s.raw else {
        send_error(
            app,
            reply,
            &Error::Config("binary frames need ?encoding=s16le|ulaw|alaw&rate=HZ on the stream URL".into()),
        );
        return Step::Continue;
    };
    let mut samples = Vec::with_capacity(bytes.len());
    if let Err(e) = media::decode_raw(bytes, format, &mut samples) {
        send_error(app, reply, &e);
        return Step::Continue;
    }
    if samples.len() % channels != 0 {
        send_error(
            app,
            reply,
            &Error::Corrupt(format!(
                "a frame of {} samples does not hold whole {channels}-channel frames",
                samples.len()
            )),
        );
        return Step::Continue;
    }
    s.queue_audio(app, "raw".into(), rate, channels, samples, reply);
    Step::Continue
}

fn on_text(app: &App, s: &mut Connection, text: &str, reply: &mpsc::UnboundedSender<Reply>) -> Step {
    let msg: media::MediaMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            send_error(
                app,
                reply,
                &Error::Corrupt(format!("the message is not a media-stream JSON object: {e}")),
            );
            return Step::Continue;
        }
    };
    match msg.event.as_str() {
        "start" => {
            let sid = msg
                .stream_sid
                .or_else(|| msg.start.as_ref().and_then(|st| st.stream_sid.clone()));
            if let Some(sid) = sid {
                s.label = sid.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            }
            if let Some(fmt) = msg.start.and_then(|st| st.media_format) {
                if let Some(enc) = fmt.encoding {
                    match media::encoding_from_name(&enc) {
                        Ok(f) => s.media_format = f,
                        Err(e) => send_error(app, reply, &e),
                    }
                }
                if let Some(rate) = fmt.sample_rate {
                    match crate::audio::check_stream_limits(rate, 1) {
                        Ok(()) => s.media_rate = rate,
                        Err(e) => send_error(app, reply, &e),
                    }
                }
                if fmt.channels.is_some_and(|c| c != 1) {
                    send_error(
                        app,
                        reply,
                        &Error::Config("media payloads must be mono; send one track per channel".into()),
                    );
                }
            }
            Step::Continue
        }
        "media" => {
            let Some(media) = msg.media else {
                send_error(
                    app,
                    reply,
                    &Error::Corrupt("a media message without a `media` object".into()),
                );
                return Step::Continue;
            };
            let track = match media::clean_track_name(media.track.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    send_error(app, reply, &e);
                    return Step::Continue;
                }
            };
            let mut samples = Vec::with_capacity(media.payload.len());
            if let Err(e) = media::decode_payload(&media.payload, s.media_format, &mut samples) {
                send_error(app, reply, &e);
                return Step::Continue;
            }
            let rate = s.media_rate;
            s.queue_audio(app, track, rate, 1, samples, reply);
            Step::Continue
        }
        "stop" | "closed" => Step::Finish,
        // Platform bookkeeping messages carry no audio.
        "connected" | "mark" | "dtmf" | "clear" => Step::Continue,
        other => {
            send_error(
                app,
                reply,
                &Error::Corrupt(format!(
                    "unknown event '{}'",
                    other.chars().take(32).collect::<String>()
                )),
            );
            Step::Continue
        }
    }
}
