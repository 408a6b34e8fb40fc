//! `POST /v1/spectrogram[?columns=N]`: a recording in the body, the spectrogram of each of its
//! channels back, made of the frames the model scores (detect::spectrogram), for the page to
//! draw beside the waveform and the score timeline. Same limits, token and refusals as
//! `POST /v1/analyze`; a packet capture is refused (its legs have no channels to draw).
//!
//! The answer is JSON: the frame hop, the seconds each column covers, the filterbank's range,
//! and per channel the columns as base64 bytes, column-major, lowest frequency first; byte
//! `q` stands for `db_min + q / 255 * (db_max - db_min)` dB of filterbank energy.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::audio::{Selection, with_file, with_leg};
use super::upload::{failed, process};
use super::{App, error_response};
use crate::error::{Error, Result};
use crate::features::Spectrogram;

/// Columns per channel when the query names none: about one per pixel of a wide screen.
const DEFAULT_COLUMNS: usize = 2000;
/// Columns per channel at most: at 100 frames a second, 2 min 44 s of audio at full resolution.
const MAX_COLUMNS: usize = 16384;
/// The picture spans this many dB below its loudest value; quieter is drawn as the floor.
const DYNAMIC_RANGE_DB: f32 = 80.0;

#[derive(Debug, Deserialize)]
pub(super) struct SpectrogramQuery {
    columns: Option<usize>,
    /// The call and leg of a packet capture (both default 0).
    call: Option<usize>,
    leg: Option<usize>,
    /// Echoed in error answers, as in `/v1/analyze`.
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct ChannelImage {
    channel: usize,
    columns: usize,
    /// Base64 of `columns * n_bins` bytes.
    data: String,
}

#[derive(Debug, Serialize)]
struct SpectrogramAnswer {
    /// Seconds between model frames.
    hop_s: f64,
    /// Seconds each column covers (a whole number of frames).
    seconds_per_column: f64,
    /// Model frames per channel.
    frames: u64,
    filterbank: crate::features::FilterbankKind,
    n_bins: usize,
    f_min_hz: f32,
    f_max_hz: f32,
    db_min: f32,
    db_max: f32,
    channels: Vec<ChannelImage>,
}

/// Natural-log energy to decibels.
const LN_TO_DB: f32 = 10.0 / std::f32::consts::LN_10;

fn answer(app: &App, images: &[Spectrogram]) -> SpectrogramAnswer {
    let f = &app.model.manifest.features;
    let (lo, hi) = images
        .iter()
        .filter_map(Spectrogram::range)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (a, b)| {
            (lo.min(a), hi.max(b))
        });
    let (db_min, db_max) = if lo.is_finite() && hi.is_finite() {
        let top = hi * LN_TO_DB;
        ((lo * LN_TO_DB).max(top - DYNAMIC_RANGE_DB), top)
    } else {
        (0.0, 0.0)
    };
    let span = (db_max - db_min).max(1e-3);
    let frames_per_column = images.first().map_or(1, |s| s.frames_per_column);
    SpectrogramAnswer {
        hop_s: f.hop_s(),
        seconds_per_column: f.hop_s() * frames_per_column as f64,
        frames: images.first().map_or(0, |s| s.frames),
        filterbank: f.filterbank,
        n_bins: f.n_bins,
        f_min_hz: f.f_min_hz,
        f_max_hz: f.f_max_hz,
        db_min,
        db_max,
        channels: images
            .iter()
            .enumerate()
            .map(|(channel, s)| {
                let bytes: Vec<u8> = s
                    .values
                    .iter()
                    .map(|&v| ((v * LN_TO_DB - db_min) / span * 255.0).round().clamp(0.0, 255.0) as u8)
                    .collect();
                ChannelImage {
                    channel,
                    columns: s.columns(),
                    data: base64::engine::general_purpose::STANDARD.encode(bytes),
                }
            })
            .collect(),
    }
}

fn compute(app: &App, name: &str, bytes: Bytes, columns: usize, selection: Selection) -> Result<Vec<Spectrogram>> {
    if crate::packet::is_capture(&bytes) {
        return with_leg(app, bytes, selection, |leg| {
            crate::detect::spectrogram(&app.model.manifest, leg, columns)
        });
    }
    with_file(app, name, bytes, |file| {
        crate::detect::spectrogram(&app.model.manifest, file, columns)
    })
}

pub(super) async fn spectrogram(
    State(app): State<Arc<App>>,
    query: std::result::Result<Query<SpectrogramQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = match super::query(query) {
        Ok(q) => q,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let columns = q.columns.unwrap_or(DEFAULT_COLUMNS);
    if !(1..=MAX_COLUMNS).contains(&columns) {
        return error_response(
            StatusCode::BAD_REQUEST,
            format!("columns must be 1 to {MAX_COLUMNS}, not {columns}"),
        );
    }
    let selection = Selection {
        channel: None,
        call: q.call,
        leg: q.leg,
    };
    let work = move |app: &App, name: &str, body| compute(app, name, body, columns, selection);
    match process(&app, &headers, body, q.name, "spectrogram", work).await {
        Ok((_, Ok(images))) => axum::Json(answer(&app, &images)).into_response(),
        Ok((_, Err(Error::Config(message)))) => error_response(StatusCode::BAD_REQUEST, message),
        Ok((name, Err(e))) => failed(&app, name, e),
        Err(refusal) => refusal,
    }
}
