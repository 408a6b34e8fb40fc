//! Audio ingestion: the first stage of the pipeline.
//!
//! Sources decode a file or stream into [`AudioChunk`]s of interleaved `f32` samples in
//! `[-1, 1]`, at the source's own rate and channel count. A source never holds more than one
//! packet's worth of audio, so memory does not grow with the length of the input. Resampling to
//! the model's rate happens per channel in [`resample`].

#[cfg(feature = "mic")]
pub mod capture;
mod decode;
mod g711;
pub mod g722;
mod raw;
pub mod resample;
mod wav;

pub use decode::{FileSource, install_decoder_panic_hook};
pub use g711::{alaw_to_f32, f32_to_ulaw, ulaw_to_f32};
pub use raw::{RawFormat, RawSource};

use crate::error::{Error, Result};

/// The largest sample rate accepted; anything above is treated as a hostile or broken header.
pub const MAX_SAMPLE_RATE_HZ: u32 = 768_000;
/// The smallest sample rate accepted (telephony goes down to 8 kHz; allow some slack).
pub const MIN_SAMPLE_RATE_HZ: u32 = 1_000;
/// The most channels accepted in one input.
pub const MAX_CHANNELS: usize = 64;

/// A run of interleaved samples moved between stages.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioChunk {
    /// Interleaved samples, `channels` per frame, nominally in `[-1, 1]`.
    pub samples: Vec<f32>,
    /// Number of interleaved channels.
    pub channels: usize,
    /// Sample rate of `samples`.
    pub sample_rate_hz: u32,
    /// Index (per channel) of the first frame of this chunk in the stream.
    pub start_sample: u64,
}

impl AudioChunk {
    /// Number of frames (samples per channel) in the chunk.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1)
    }

    /// Replaces `out` with channel `channel`'s samples (de-interleaved).
    pub fn channel_into(&self, channel: usize, out: &mut Vec<f32>) {
        deinterleave_into(&self.samples, self.channels, channel, out);
    }
}

/// Replaces `out` with channel `channel` of `interleaved` samples of `channels` channels.
pub fn deinterleave_into(interleaved: &[f32], channels: usize, channel: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(interleaved.iter().skip(channel).step_by(channels.max(1)).copied());
}

/// What a source knows about its stream before decoding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub sample_rate_hz: u32,
    pub channels: usize,
    /// Short codec or container description, for reports.
    pub codec: String,
    /// Frames per channel, when the container states it.
    pub total_frames: Option<u64>,
}

/// A source of audio chunks. `Ok(None)` is the end of the stream.
pub trait AudioSource {
    fn info(&self) -> &StreamInfo;
    fn next_chunk(&mut self) -> Result<Option<AudioChunk>>;
    /// Why the stream ended before its header said it would (a recorder killed mid-call, sizes
    /// that lie), if it did. Complete only after the stream has ended.
    fn truncation(&self) -> Option<String> {
        None
    }
    /// Problems that did not stop decoding, for the report. Complete only after the stream
    /// has ended.
    fn warnings(&self) -> Vec<String> {
        self.truncation()
            .map(|t| format!("{t}: analysed what is there"))
            .into_iter()
            .collect()
    }
    /// Fails with [`Error::Truncated`] if the stream was cut short (callers that refuse
    /// truncated input call this after the stream has ended).
    fn check_complete(&self) -> Result<()> {
        self.truncation().map_or(Ok(()), |t| Err(Error::Truncated(t)))
    }
}

/// A source that ends with [`Error::TooMuchAudio`] past `max_samples` decoded samples (all
/// channels, at the source rate) and with [`Error::TooSlow`] past a deadline: what a service
/// gives one upload. The stated length is checked before anything is decoded; the decoded
/// length as it comes, in case the header lies.
pub struct BoundedSource<'a> {
    inner: &'a mut dyn AudioSource,
    max_samples: u64,
    decoded: u64,
    deadline: std::time::Instant,
    time_limit: std::time::Duration,
}

impl<'a> BoundedSource<'a> {
    pub fn new(inner: &'a mut dyn AudioSource, max_samples: u64, time_limit: std::time::Duration) -> Result<Self> {
        let info = inner.info();
        if let Some(frames) = info.total_frames {
            let stated = frames.saturating_mul(info.channels as u64);
            if stated > max_samples {
                return Err(Error::TooMuchAudio(format!(
                    "the header states {:.0} s of {} channels at {} Hz, over the limit of {max_samples} samples",
                    frames as f64 / f64::from(info.sample_rate_hz.max(1)),
                    info.channels,
                    info.sample_rate_hz
                )));
            }
        }
        Ok(Self {
            inner,
            max_samples,
            decoded: 0,
            deadline: std::time::Instant::now() + time_limit,
            time_limit,
        })
    }
}

impl AudioSource for BoundedSource<'_> {
    fn info(&self) -> &StreamInfo {
        self.inner.info()
    }

    fn next_chunk(&mut self) -> Result<Option<AudioChunk>> {
        if std::time::Instant::now() > self.deadline {
            return Err(Error::TooSlow(format!(
                "over {:.0} s for one upload",
                self.time_limit.as_secs_f64()
            )));
        }
        let chunk = self.inner.next_chunk()?;
        if let Some(c) = &chunk {
            self.decoded += c.samples.len() as u64;
            if self.decoded > self.max_samples {
                return Err(Error::TooMuchAudio(format!(
                    "more than {} samples decoded (the header understates the length)",
                    self.max_samples
                )));
            }
        }
        Ok(chunk)
    }

    fn truncation(&self) -> Option<String> {
        self.inner.truncation()
    }

    fn warnings(&self) -> Vec<String> {
        self.inner.warnings()
    }
}

/// Checks stream parameters against the limits above.
pub(crate) fn check_stream_limits(sample_rate_hz: u32, channels: usize) -> Result<()> {
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&sample_rate_hz) {
        return Err(Error::Limit(format!(
            "sample rate {sample_rate_hz} Hz is outside {MIN_SAMPLE_RATE_HZ}..={MAX_SAMPLE_RATE_HZ} Hz"
        )));
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(Error::Limit(format!(
            "{channels} channels is outside 1..={MAX_CHANNELS}"
        )));
    }
    Ok(())
}

/// The largest sample magnitude accepted: 80 dB over full scale. Float files can hold any
/// finite value, and values near `f32::MAX` overflow to infinity inside the FFTs.
pub const MAX_ABS_SAMPLE: f32 = 1e4;

/// Fails on the first NaN, infinite or absurdly large sample; `first_index` is the chunk's
/// first sample index.
pub(crate) fn check_finite(samples: &[f32], first_index: u64) -> Result<()> {
    match samples.iter().position(|s| !s.is_finite() || s.abs() > MAX_ABS_SAMPLE) {
        Some(i) if samples[i].is_finite() => Err(Error::SampleOutOfRange {
            sample_index: first_index + i as u64,
            value: samples[i],
        }),
        Some(i) => Err(Error::NonFiniteSample {
            sample_index: first_index + i as u64,
        }),
        None => Ok(()),
    }
}
