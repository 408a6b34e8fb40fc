//! `POST /v1/analyze`: a recording in the body, the `analyze` object back. Every refusal is a
//! JSON object with an `error` sentence: 413 for a body or an audio length over the limits,
//! 408 for a body that does not arrive in time, 422 for undecodable audio or an analysis over
//! its time, 503 while draining. The token was checked before the body is read (mod.rs).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::audio::with_file;
use super::metrics::Metrics;
use super::{App, error_response};
use crate::analyze_recording;
use crate::error::{Error, Result};
use crate::model::OnnxScorer;
use crate::packet::CaptureOptions;
use crate::report::{CallReport, ErrorReport, FileReport, ModelInfo};

#[derive(Debug, Deserialize)]
pub(super) struct AnalyzeQuery {
    /// Echoed as `file` in the result.
    name: Option<String>,
    /// `1`/`true`: analyse a file that holds less audio than its header says.
    allow_truncated: Option<String>,
}

fn refused(app: &App, status: StatusCode, message: String) -> Response {
    Metrics::inc(&app.metrics.uploads_refused);
    error_response(status, message)
}

pub(super) async fn analyze(
    State(app): State<Arc<App>>,
    query: std::result::Result<Query<AnalyzeQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = match super::query(query) {
        Ok(q) => q,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let allow_truncated = q.allow_truncated.as_deref().is_some_and(|v| v == "1" || v == "true");
    let work = move |app: &App, name: &str, body| analyze_bytes(app, name, body, allow_truncated);
    match process(&app, &headers, body, q.name, "analysis", work).await {
        Ok((_, Ok(Uploaded::File(report)))) => {
            Metrics::inc(&app.metrics.files_analyzed);
            if report.verdict == crate::Verdict::Synthetic {
                Metrics::inc(&app.metrics.calls_flagged);
            }
            axum::Json(report).into_response()
        }
        Ok((_, Ok(Uploaded::Calls(calls)))) => {
            Metrics::inc(&app.metrics.files_analyzed);
            for c in &calls {
                if c.call.verdict == crate::Verdict::Synthetic {
                    Metrics::inc(&app.metrics.calls_flagged);
                }
            }
            axum::Json(calls).into_response()
        }
        Ok((name, Err(e))) => failed(&app, name, e),
        Err(refusal) => refusal,
    }
}

/// An upload accepted (see [`accept`]) and handed to `work` on a blocking thread while it
/// holds a worker slot: the upload's name and what `work` made of it, or the refusal to send
/// (500 when the task itself failed; `what` names the task in that sentence).
pub(super) async fn process<T: Send + 'static>(
    app: &Arc<App>,
    headers: &HeaderMap,
    body: Body,
    name: Option<String>,
    what: &str,
    work: impl FnOnce(&App, &str, Bytes) -> Result<T> + Send + 'static,
) -> std::result::Result<(String, Result<T>), Response> {
    let (body, name, _slot) = accept(app, headers, body, name).await?;
    let task_app = Arc::clone(app);
    let task_name = name.clone();
    match tokio::task::spawn_blocking(move || work(&task_app, &task_name, body)).await {
        Ok(made) => Ok((name, made)),
        Err(_) => {
            Metrics::inc(&app.metrics.errors);
            Err(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the {what} task failed"),
            ))
        }
    }
}

/// The answer for an upload that could not be analysed: 413 for too much audio, 422 for audio
/// that cannot be read or an analysis over its time, 500 for a fault of the server.
pub(super) fn failed(app: &App, name: String, e: Error) -> Response {
    let status = match &e {
        Error::TooMuchAudio(_) => StatusCode::PAYLOAD_TOO_LARGE,
        e if e.is_input_error() => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if matches!(e, Error::TooMuchAudio(_) | Error::TooSlow(_)) {
        Metrics::inc(&app.metrics.uploads_refused);
    } else {
        Metrics::inc(&app.metrics.errors);
    }
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

/// What every upload handler does first: the body within the limits, the name it is known by
/// (`?name=`, else "body"), and a worker slot to analyse it in; or the refusal to send (an
/// empty body is a 422 like an undecodable one).
async fn accept<'a>(
    app: &'a App,
    headers: &HeaderMap,
    body: Body,
    name: Option<String>,
) -> std::result::Result<(Bytes, String, tokio::sync::SemaphorePermit<'a>), Response> {
    let body = receive(app, headers, body).await?;
    let name = name.unwrap_or_else(|| "body".into());
    if body.is_empty() {
        return Err(failed(app, name, Error::EmptyInput));
    }
    match app.analyze_slots.acquire().await {
        Ok(slot) => Ok((body, name, slot)),
        Err(_) => Err(error_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down")),
    }
}

/// The body of an upload within the limits, or the refusal to send: 503 while draining, 413
/// for a body over the limit, 408 for one that does not arrive in time, 400 for one that broke
/// off.
async fn receive(app: &App, headers: &HeaderMap, body: Body) -> std::result::Result<Bytes, Response> {
    if app.draining.load(Ordering::SeqCst) {
        return Err(error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is draining; send it elsewhere",
        ));
    }
    let limits = app.uploads;
    let too_large = || {
        format!(
            "the upload is over the limit of {} MB",
            limits.max_body_bytes as f64 / f64::from(1u32 << 20)
        )
    };
    // A stated length far over the limit is refused before one byte of the body is read. A
    // body a little over it is read to its end and dropped first: a client that sends its
    // whole body before reading the answer would otherwise see a reset instead of the 413.
    let stated = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if stated.is_some_and(|n| n > (limits.max_body_bytes + DRAIN_SLACK_BYTES) as u64) {
        // the body stays unread
        return Err(super::closing(refused(app, StatusCode::PAYLOAD_TOO_LARGE, too_large())));
    }
    // A refusal sent while part of the body is still unread closes the connection: the rest of
    // the body must not be read as the next request.
    match tokio::time::timeout(limits.body_timeout, read_body(body, limits.max_body_bytes)).await {
        Ok(Ok(Received::Whole(b))) => Ok(b),
        Ok(Ok(Received::Over { read_to_end: true })) => Err(refused(app, StatusCode::PAYLOAD_TOO_LARGE, too_large())),
        Ok(Ok(Received::Over { read_to_end: false })) => {
            Err(super::closing(refused(app, StatusCode::PAYLOAD_TOO_LARGE, too_large())))
        }
        Ok(Err(e)) => Err(error_response(
            StatusCode::BAD_REQUEST,
            format!("the upload broke off: {e}"),
        )),
        Err(_) => Err(super::closing(refused(
            app,
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the upload did not arrive within {:.0} s",
                limits.body_timeout.as_secs_f64()
            ),
        ))),
    }
}

/// What [`read_body`] read.
enum Received {
    /// The whole body, within the limit.
    Whole(Bytes),
    /// A body over the limit, dropped; read to its end, or cut off once it went
    /// [`DRAIN_SLACK_BYTES`] past the limit.
    Over { read_to_end: bool },
}

/// Bytes of a body over the limit read and dropped, at most, so that the client gets its 413.
const DRAIN_SLACK_BYTES: usize = 16 << 20;

/// The body, unless it is over `max` bytes (then read on, and dropped, up to
/// [`DRAIN_SLACK_BYTES`] more).
async fn read_body(body: Body, max: usize) -> std::result::Result<Received, axum::Error> {
    let mut frames = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = frames.next().await {
        let frame = frame?;
        seen = seen.saturating_add(frame.len());
        if seen > max + DRAIN_SLACK_BYTES {
            return Ok(Received::Over { read_to_end: false });
        }
        if seen <= max {
            kept.extend_from_slice(&frame);
        } else {
            kept = Vec::new();
        }
    }
    Ok(if seen <= max {
        Received::Whole(Bytes::from(kept))
    } else {
        Received::Over { read_to_end: true }
    })
}

/// What an upload held: a recording, or the calls of a packet capture (a JSON array).
enum Uploaded {
    File(Box<FileReport>),
    Calls(Vec<CallReport>),
}

/// The calls of a packet capture, each leg analysed like a file, within the upload's limits.
fn analyze_capture(app: &App, name: &str, bytes: Bytes, scorer: &mut OnnxScorer) -> Result<Vec<CallReport>> {
    let limits = app.uploads;
    let options = CaptureOptions {
        ranges: Vec::new(),
        max_samples: Some(limits.max_samples),
    };
    let input = std::io::Cursor::new(bytes);
    let calls =
        crate::detect::analyze_capture(&app.detector, input, &options, scorer, 1, Some(limits.analysis_timeout))?;
    Ok(CallReport::for_capture(
        name,
        &calls,
        &ModelInfo::from(&app.model.manifest),
    ))
}

fn analyze_bytes(app: &App, name: &str, bytes: Bytes, allow_truncated: bool) -> Result<Uploaded> {
    let scorer = app.analyze_scorers.lock().ok().and_then(|mut pool| pool.pop());
    let mut scorer = match scorer {
        Some(s) => s,
        None => OnnxScorer::new(&app.model, 1)?,
    };
    let result = if crate::packet::is_capture(&bytes) {
        analyze_capture(app, name, bytes, &mut scorer).map(Uploaded::Calls)
    } else {
        // the same routine and windows per model call as `synthscan analyze`, inside the limits
        with_file(app, name, bytes, |file| {
            analyze_recording(&app.detector, file, &mut scorer, 1, allow_truncated)
        })
        .map(|r| {
            Uploaded::File(Box::new(FileReport::new(
                name,
                &r.codec,
                &r.analysis,
                r.warnings,
                ModelInfo::from(&app.model.manifest),
            )))
        })
    };
    if let Ok(mut pool) = app.analyze_scorers.lock() {
        pool.push(scorer);
    }
    result
}
