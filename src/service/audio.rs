//! `POST /v1/audio`: one channel of a recording, or one leg of a call in a packet capture, as a
//! 16-bit PCM WAV file at its own rate, decoded by the same code as the analysis. The page
//! plays and draws what the browser cannot decode itself: G.711 and ADPCM WAV files, and the
//! legs of captures. Same token, limits and refusals as `POST /v1/analyze`.
//!
//! Which audio: `?channel=N` of a recording (default 0), `?call=I&leg=J` of a capture (both
//! default 0; calls and legs in the order `analyze` reports them).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::upload::{failed, process};
use super::{App, error_response};
use crate::audio::{AudioSource, BoundedSource, FileSource};
use crate::error::{Error, Result};
use crate::packet::{CaptureOptions, LegSource};

/// Most audio one answer carries: an hour at 16 kHz (a 115 MB WAV), more than a page plays.
const MAX_SAMPLES: usize = 16_000 * 3600;

/// Which audio of an upload (from the query of `/v1/audio` and `/v1/spectrogram`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Selection {
    /// A channel of a recording.
    pub channel: Option<usize>,
    /// A call of a capture, and a leg of it.
    pub call: Option<usize>,
    pub leg: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AudioQuery {
    // (not a flattened Selection: the query-string parser cannot flatten numbers)
    channel: Option<usize>,
    call: Option<usize>,
    leg: Option<usize>,
    /// Echoed in error answers, as in `/v1/analyze`.
    name: Option<String>,
}

/// Runs `f` on an uploaded recording (any format `analyze` reads), within the upload's limits
/// of audio and time.
pub(super) fn with_file<T>(
    app: &App,
    name: &str,
    bytes: Bytes,
    f: impl FnOnce(&mut dyn AudioSource) -> Result<T>,
) -> Result<T> {
    let limits = app.uploads;
    let mut source = FileSource::from_media_source(Box::new(std::io::Cursor::new(bytes)), name.into())?;
    let mut bounded = BoundedSource::new(&mut source, limits.max_samples, limits.analysis_timeout)?;
    f(&mut bounded)
}

/// Runs `f` on the selected leg of a capture, as a mono source, within the upload's limits.
pub(super) fn with_leg<T>(
    app: &App,
    bytes: Bytes,
    selection: Selection,
    f: impl FnOnce(&mut dyn AudioSource) -> Result<T>,
) -> Result<T> {
    let options = CaptureOptions {
        ranges: Vec::new(),
        max_samples: Some(app.uploads.max_samples),
    };
    let (calls, _) = crate::packet::read_calls(std::io::Cursor::new(bytes), &options)?;
    let (i, j) = (selection.call.unwrap_or(0), selection.leg.unwrap_or(0));
    let call = calls
        .get(i)
        .ok_or_else(|| Error::Config(format!("the capture holds {} calls: there is no call {i}", calls.len())))?;
    let leg = call
        .legs
        .get(j)
        .ok_or_else(|| Error::Config(format!("call {i} has {} legs: there is no leg {j}", call.legs.len())))?;
    if leg.stream.samples.is_empty() {
        return Err(Error::UnsupportedFormat(format!(
            "leg {j} of call {i} holds no audio decoded here ({})",
            leg.stream.codec
        )));
    }
    f(&mut LegSource::new(leg))
}

/// One channel of a decoded source as 16-bit samples; an error past [`MAX_SAMPLES`].
fn channel_of(source: &mut dyn AudioSource, channel: usize) -> Result<(u32, Vec<i16>)> {
    let info = source.info().clone();
    if channel >= info.channels {
        return Err(Error::Config(format!(
            "the recording has {} channels: there is no channel {channel}",
            info.channels
        )));
    }
    let mut out = Vec::new();
    let mut one = Vec::new();
    while let Some(chunk) = source.next_chunk()? {
        chunk.channel_into(channel, &mut one);
        if out.len() + one.len() > MAX_SAMPLES {
            return Err(Error::TooMuchAudio(format!(
                "more than an hour at 16 kHz ({MAX_SAMPLES} samples) for one channel to play"
            )));
        }
        // G.711 and G.722 decode to multiples of 1/32768: exact in 16 bits
        out.extend(
            one.iter()
                .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
        );
    }
    Ok((info.sample_rate_hz, out))
}

fn wav(rate_hz: u32, samples: &[i16]) -> Result<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = Vec::with_capacity(44 + 2 * samples.len());
    let werr = |e: hound::Error| Error::Runtime(format!("cannot write the WAV answer: {e}"));
    let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut bytes), spec).map_err(werr)?;
    for &s in samples {
        w.write_sample(s).map_err(werr)?;
    }
    w.finalize().map_err(werr)?;
    Ok(bytes)
}

fn decode(app: &App, name: &str, bytes: Bytes, selection: Selection) -> Result<Vec<u8>> {
    let (rate, samples) = if crate::packet::is_capture(&bytes) {
        with_leg(app, bytes, selection, |leg| channel_of(leg, 0))?
    } else {
        with_file(app, name, bytes, |file| {
            channel_of(file, selection.channel.unwrap_or(0))
        })?
    };
    wav(rate, &samples)
}

pub(super) async fn audio(
    State(app): State<Arc<App>>,
    query: std::result::Result<Query<AudioQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let q = match super::query(query) {
        Ok(q) => q,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, message),
    };
    let selection = Selection {
        channel: q.channel,
        call: q.call,
        leg: q.leg,
    };
    let work = move |app: &App, name: &str, body| decode(app, name, body, selection);
    match process(&app, &headers, body, q.name, "decoding", work).await {
        Ok((_, Ok(wav))) => {
            let mut r = wav.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
            r
        }
        Ok((_, Err(Error::Config(message)))) => error_response(StatusCode::BAD_REQUEST, message),
        Ok((name, Err(e))) => failed(&app, name, e),
        Err(refusal) => refusal,
    }
}
