//! Detection: the fourth stage, and the one state machine that file analysis, the microphone
//! monitor and the network service all drive.
//!
//! Per channel: resample to the model rate -> extract frames -> gate each frame with a
//! voice-activity test -> group frames into windows -> score windows that are mostly speech ->
//! aggregate. [`Detector`] holds what is shared and immutable (the manifest and its thresholds, or a
//! user's override); [`StreamDetector`] holds one stream's state. Feeding a recording in one piece
//! or in 20 ms pieces gives the same windows and, with batch size 1 vs N, the same logits up to
//! ONNX Runtime's batch arithmetic.
//!
//! Aggregation rule (documented in the README): a channel's score is the calibrated probability
//! of the mean logit over its scored windows; a file's score is that of its most suspicious
//! conclusive channel.

mod envelope;
mod live;
mod result;
mod timeline;
mod vad;

use std::sync::Arc;

pub use envelope::Envelope;
pub use live::{Alert, AlertState, LiveEvent, LivePolicy, LiveStream, Step, Update};
pub(crate) use result::round;
pub use result::{Analysis, ChannelResult, Segment, Verdict, WindowScore};
pub use vad::VoiceGate;

use crate::audio::AudioChunk;
use crate::audio::resample::StreamResampler;
use crate::error::{Error, Result};
use crate::features::{FeatureExtractor, FrameBatch, Spectrogram, SpectrogramBuilder};
use crate::model::{Manifest, WindowScorer};
use timeline::Timeline;

/// A channel's conclusion so far (see [`StreamDetector::channel_status`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStatus {
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub speech_s: f64,
    pub windows: usize,
}

impl Default for ChannelStatus {
    fn default() -> Self {
        Self {
            score: None,
            verdict: Verdict::Inconclusive,
            speech_s: 0.0,
            windows: 0,
        }
    }
}

/// Shared, immutable detection context.
#[derive(Debug, Clone)]
pub struct Detector {
    manifest: Arc<Manifest>,
    /// A user's threshold, for every input rate; `None`: the manifest's thresholds.
    threshold_override: Option<f64>,
}

impl Detector {
    pub fn new(manifest: Manifest) -> Result<Self> {
        manifest.validate()?;
        Ok(Self {
            manifest: Arc::new(manifest),
            threshold_override: None,
        })
    }

    /// Overrides the manifest's thresholds (wideband and narrowband alike).
    pub fn with_threshold(mut self, threshold: f64) -> Result<Self> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(Error::Config(format!(
                "threshold {threshold} must be strictly between 0 and 1"
            )));
        }
        self.threshold_override = Some(threshold);
        Ok(self)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The decision threshold for input at `sample_rate_hz` (see [`Manifest::threshold_for`]).
    pub fn threshold_for(&self, sample_rate_hz: u32) -> f64 {
        self.threshold_override
            .unwrap_or_else(|| self.manifest.threshold_for(sample_rate_hz))
    }

    /// Starts a stream of `channels` channels at `sample_rate_hz`. `batch_windows` windows are
    /// collected before the model is called (1 for lowest latency).
    pub fn stream(&self, sample_rate_hz: u32, channels: usize, batch_windows: usize) -> Result<StreamDetector> {
        crate::audio::check_stream_limits(sample_rate_hz, channels)?;
        let threshold = self.threshold_for(sample_rate_hz);
        let chans = (0..channels)
            .map(|c| ChannelState::new(c, &self.manifest, sample_rate_hz, threshold))
            .collect::<Result<Vec<_>>>()?;
        let m = &self.manifest;
        Ok(StreamDetector {
            detector: self.clone(),
            input_rate_hz: sample_rate_hz,
            channels: chans,
            batch_windows: batch_windows.max(1),
            batch: Vec::with_capacity(batch_windows.max(1) * m.window.frames * m.features.n_bins),
            batch_meta: Vec::with_capacity(batch_windows.max(1)),
            logits: Vec::with_capacity(batch_windows.max(1)),
            deinterleaved: Vec::new(),
            new_scores: Vec::new(),
            collect_new_scores: false,
            input_frames: 0,
            step_frames: m.window.hop_frames,
        })
    }
}

/// One stream's detection state.
#[derive(Debug)]
pub struct StreamDetector {
    detector: Detector,
    input_rate_hz: u32,
    channels: Vec<ChannelState>,
    batch_windows: usize,
    batch: Vec<f32>,
    batch_meta: Vec<(usize, WindowMeta)>,
    logits: Vec<f32>,
    deinterleaved: Vec<f32>,
    new_scores: Vec<WindowScore>,
    /// Whether scored windows are queued for [`StreamDetector::take_new_scores`]; off for file
    /// analysis, where nobody takes them and the queue would grow with the length of the input.
    collect_new_scores: bool,
    input_frames: u64,
    /// Frames between consecutive scored windows: the manifest's hop, or a divisor of it for
    /// live views (see [`StreamDetector::set_live_step`]).
    step_frames: usize,
}

#[derive(Debug, Clone, Copy)]
struct WindowMeta {
    start_frame: u64,
    speech_fraction: f32,
    canonical: bool,
}

impl StreamDetector {
    /// Feeds one chunk (interleaved, at the stream's rate and channel count).
    pub fn push(&mut self, chunk: &AudioChunk, scorer: &mut dyn WindowScorer) -> Result<()> {
        if chunk.channels != self.channels.len() || chunk.sample_rate_hz != self.input_rate_hz {
            return Err(Error::Corrupt(format!(
                "chunk of {} ch at {} Hz pushed into a stream of {} ch at {} Hz",
                chunk.channels,
                chunk.sample_rate_hz,
                self.channels.len(),
                self.input_rate_hz
            )));
        }
        self.push_interleaved(&chunk.samples, scorer)
    }

    /// Feeds interleaved samples (whole frames, at the stream's rate and channel count).
    pub fn push_interleaved(&mut self, samples: &[f32], scorer: &mut dyn WindowScorer) -> Result<()> {
        self.push_frames(samples, Some(scorer))
    }

    /// Feeds interleaved samples like [`push_interleaved`](Self::push_interleaved), but scores
    /// nothing: the windows they complete wait in [`pending`](Self::pending) until
    /// [`apply_logits`](Self::apply_logits) brings their scores. A scoring worker uses it to
    /// score the windows of many streams in one model call; the windows, and so the results,
    /// are the same.
    pub fn push_interleaved_deferred(&mut self, samples: &[f32]) -> Result<()> {
        self.push_frames(samples, None)
    }

    fn push_frames<'s>(&mut self, samples: &[f32], mut scorer: Option<&mut (dyn WindowScorer + 's)>) -> Result<()> {
        let n_ch = self.channels.len();
        if !samples.len().is_multiple_of(n_ch) {
            return Err(Error::Corrupt(format!(
                "{} samples do not make whole frames of {n_ch} channels",
                samples.len()
            )));
        }
        // No finiteness check here: each channel's FrontEnd checks the samples it is given.
        self.input_frames += (samples.len() / n_ch) as u64;
        for c in 0..n_ch {
            crate::audio::deinterleave_into(samples, n_ch, c, &mut self.deinterleaved);
            let ch = &mut self.channels[c];
            ch.push_samples(&self.deinterleaved, false)?;
            self.collect_windows(c, false, scorer.as_deref_mut())?;
        }
        Ok(())
    }

    /// Drops the windows waiting for scores (a caller whose model call failed); they count
    /// nowhere.
    pub fn discard_pending(&mut self) {
        self.batch.clear();
        self.batch_meta.clear();
    }

    /// The windows waiting for scores: their features, flat (`frames * n_bins` values a
    /// window, in order), and how many there are.
    pub fn pending(&self) -> (&[f32], usize) {
        (&self.batch, self.batch_meta.len())
    }

    /// Scores extra windows between the manifest's hop positions, every `step_frames` frames
    /// (a divisor of the hop), so that live views update more often. The extra windows appear
    /// only in [`take_new_scores`](Self::take_new_scores) (with `canonical: false`); the
    /// analysis is still made of the hop-aligned windows alone, so it equals file analysis.
    /// Call before the first push.
    pub fn set_live_step(&mut self, step_frames: usize) -> Result<()> {
        let hop = self.detector.manifest.window.hop_frames;
        if step_frames == 0 || !hop.is_multiple_of(step_frames) {
            return Err(Error::Config(format!(
                "live step of {step_frames} frames must divide the window hop of {hop} frames"
            )));
        }
        if self.input_frames > 0 {
            return Err(Error::Config("the live step must be set before audio is pushed".into()));
        }
        self.step_frames = step_frames;
        Ok(())
    }

    /// Ends the stream: flushes the resamplers and feature tails, scores what is left and
    /// returns the analysis.
    pub fn finish(mut self, scorer: &mut dyn WindowScorer) -> Result<Analysis> {
        self.end(scorer)?;
        Ok(self.snapshot())
    }

    /// Flushes the resamplers and feature tails and scores what is left; nothing may be pushed
    /// afterwards. [`finish`](Self::finish) for callers that keep the stream.
    pub fn end(&mut self, scorer: &mut dyn WindowScorer) -> Result<()> {
        for c in 0..self.channels.len() {
            self.channels[c].push_samples(&[], true)?;
            self.collect_windows(c, true, Some(&mut *scorer))?;
        }
        self.flush(scorer)
    }

    /// The decision threshold in use (it depends on the input rate: [`Detector::threshold_for`]).
    pub fn threshold(&self) -> f64 {
        self.detector.threshold_for(self.input_rate_hz)
    }

    /// The model's calibration (logit -> probability).
    pub fn calibration(&self) -> &crate::model::Calibration {
        &self.detector.manifest.calibration
    }

    /// One channel's conclusion so far, without copying its windows (cheap enough to call on
    /// every live update).
    pub fn channel_status(&self, channel: usize) -> ChannelStatus {
        let m = &self.detector.manifest;
        let Some(ch) = self.channels.get(channel) else {
            return ChannelStatus::default();
        };
        let speech_s = ch.speech_frames as f64 * m.features.hop_s();
        let score = ch.timeline.score(&m.calibration);
        ChannelStatus {
            score,
            verdict: result::verdict_for(score, speech_s, self.threshold(), m.min_speech_s),
            speech_s,
            windows: usize::try_from(ch.timeline.len()).unwrap_or(usize::MAX),
        }
    }

    /// Scores every window waiting in a partly filled batch.
    pub fn flush(&mut self, scorer: &mut dyn WindowScorer) -> Result<()> {
        if self.batch_meta.is_empty() {
            return Ok(());
        }
        let mut logits = std::mem::take(&mut self.logits);
        logits.clear();
        let scored = scorer.score_batch(&self.batch, self.batch_meta.len(), &mut logits);
        let applied = scored.and_then(|()| self.apply_logits(&logits));
        self.logits = logits;
        applied
    }

    /// Gives the windows in [`pending`](Self::pending) their logits (one per window, in order)
    /// and files them as a scorer's answer would be.
    pub fn apply_logits(&mut self, logits: &[f32]) -> Result<()> {
        if logits.len() != self.batch_meta.len() {
            return Err(Error::Runtime(format!(
                "{} logits for {} windows",
                logits.len(),
                self.batch_meta.len()
            )));
        }
        let m = &self.detector.manifest;
        let hop_s = m.features.hop_s();
        let window_s = m.window_s();
        for ((c, meta), &logit) in self.batch_meta.iter().zip(logits) {
            if !logit.is_finite() {
                return Err(Error::Runtime(format!(
                    "the model returned a non-finite logit ({logit})"
                )));
            }
            let start_s = meta.start_frame as f64 * hop_s;
            let ws = WindowScore {
                channel: *c,
                start_s,
                end_s: start_s + window_s,
                logit: f64::from(logit),
                probability: m.calibration.probability(f64::from(logit)),
                speech_fraction: meta.speech_fraction,
                canonical: meta.canonical,
            };
            if meta.canonical {
                self.channels[*c].timeline.push(&ws, &m.calibration);
            }
            if self.collect_new_scores {
                self.new_scores.push(ws);
            }
        }
        self.batch.clear();
        self.batch_meta.clear();
        Ok(())
    }

    /// Queues every scored window (canonical or live-only) for
    /// [`take_new_scores`](Self::take_new_scores); the caller must then take them regularly.
    pub fn collect_new_scores(&mut self) {
        self.collect_new_scores = true;
    }

    /// Window scores produced since the last call (for live views and event streams); empty
    /// unless [`collect_new_scores`](Self::collect_new_scores) was called.
    pub fn take_new_scores(&mut self) -> Vec<WindowScore> {
        std::mem::take(&mut self.new_scores)
    }

    /// Seconds of input consumed so far.
    pub fn duration_s(&self) -> f64 {
        self.input_frames as f64 / f64::from(self.input_rate_hz)
    }

    /// The analysis of everything scored so far.
    pub fn snapshot(&self) -> Analysis {
        let m = &self.detector.manifest;
        let hop_s = m.features.hop_s();
        let channels = self
            .channels
            .iter()
            .map(|ch| {
                ch.timeline.result(
                    ch.index,
                    ch.speech_frames as f64 * hop_s,
                    &m.calibration,
                    m.min_speech_s,
                    ch.front.envelope().clone(),
                )
            })
            .collect();
        Analysis::combine(self.duration_s(), self.input_rate_hz, channels, self.threshold())
    }

    /// Forms the windows channel `c` can complete; with a scorer, scores them in batches of
    /// `batch_windows`, without one leaves them pending.
    fn collect_windows<'s>(
        &mut self,
        c: usize,
        at_end: bool,
        mut scorer: Option<&mut (dyn WindowScorer + 's)>,
    ) -> Result<()> {
        let m = Arc::clone(&self.detector.manifest);
        let (w, hop) = (m.window.frames, m.window.hop_frames);
        let step = self.step_frames;
        let n_bins = m.features.n_bins;
        loop {
            let ch = &mut self.channels[c];
            let Some((start, canonical)) = ch.next_window(w, hop, at_end) else {
                break;
            };
            let offset = (start - ch.buf_start) as usize;
            let speech = ch.speech[offset..offset + w].iter().filter(|&&s| s).count();
            let fraction = speech as f32 / w as f32;
            if canonical {
                ch.last_canonical_start = Some(start);
            }
            ch.next_start = ch.next_start.max(start + step as u64);
            if fraction >= m.window.min_speech_fraction && speech > 0 {
                self.batch
                    .extend_from_slice(&ch.features[offset * n_bins..(offset + w) * n_bins]);
                self.batch_meta.push((
                    c,
                    WindowMeta {
                        start_frame: start,
                        speech_fraction: fraction,
                        canonical,
                    },
                ));
            }
            ch.drain_before(start);
            if self.batch_meta.len() >= self.batch_windows
                && let Some(scorer) = scorer.as_deref_mut()
            {
                self.flush(scorer)?;
            }
        }
        Ok(())
    }
}

/// The per-channel front end shared by detection and `synthscan features`: resample to the
/// model rate, extract frames, gate each frame. Training features come from this very code.
#[derive(Debug)]
pub struct FrontEnd {
    resampler: StreamResampler,
    extractor: FeatureExtractor,
    gate: VoiceGate,
    resampled: Vec<f32>,
    envelope: Envelope,
    /// Frames produced by the last call.
    pub frames: FrameBatch,
    /// Speech decision per frame of `frames`.
    pub speech: Vec<bool>,
}

impl FrontEnd {
    pub fn new(m: &Manifest, input_rate_hz: u32) -> Result<Self> {
        let f = &m.features;
        Ok(Self {
            resampler: StreamResampler::new(input_rate_hz, f.sample_rate_hz)?,
            extractor: FeatureExtractor::new(f)?,
            gate: VoiceGate::new(&m.vad, f.hop_s()),
            resampled: Vec::new(),
            envelope: Envelope::new(f.sample_rate_hz),
            frames: FrameBatch::new(f.n_bins),
            speech: Vec::new(),
        })
    }

    /// Replaces `frames`/`speech` with the frames completed by `samples` (one channel at the
    /// input rate); with `at_end`, also the frames that flush the stream.
    pub fn push(&mut self, samples: &[f32], at_end: bool) -> Result<()> {
        // Sources check too; this guards library callers who feed samples of their own.
        crate::audio::check_finite(samples, self.resampler.consumed())?;
        self.resampled.clear();
        self.resampler.push(samples, &mut self.resampled)?;
        if at_end {
            self.resampler.finish(&mut self.resampled)?;
        }
        self.envelope.push(&self.resampled);
        self.frames.clear();
        self.extractor.push(&self.resampled, &mut self.frames)?;
        if at_end {
            self.extractor.finish(&mut self.frames)?;
        }
        self.speech.clear();
        for t in 0..self.frames.len() {
            let is_speech = self.gate.is_speech(self.frames.energy_db[t], self.frames.tonality[t]);
            self.speech.push(is_speech);
        }
        Ok(())
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

/// Per-channel detection state.
#[derive(Debug)]
struct ChannelState {
    index: usize,
    front: FrontEnd,
    /// Features of frames `buf_start..`, flat.
    features: Vec<f32>,
    speech: Vec<bool>,
    n_bins: usize,
    buf_start: u64,
    total_frames: u64,
    /// Start of the next regular window (every `step` frames).
    next_start: u64,
    last_canonical_start: Option<u64>,
    speech_frames: u64,
    timeline: Timeline,
}

impl ChannelState {
    fn new(index: usize, m: &Manifest, input_rate_hz: u32, threshold: f64) -> Result<Self> {
        Ok(Self {
            index,
            front: FrontEnd::new(m, input_rate_hz)?,
            features: Vec::with_capacity(2 * m.window.frames * m.features.n_bins),
            speech: Vec::with_capacity(2 * m.window.frames),
            n_bins: m.features.n_bins,
            buf_start: 0,
            total_frames: 0,
            next_start: 0,
            last_canonical_start: None,
            speech_frames: 0,
            timeline: Timeline::new(threshold),
        })
    }

    fn push_samples(&mut self, samples: &[f32], at_end: bool) -> Result<()> {
        self.front.push(samples, at_end)?;
        self.speech.extend_from_slice(&self.front.speech);
        self.speech_frames += self.front.speech.iter().filter(|&&s| s).count() as u64;
        self.features.extend_from_slice(&self.front.frames.features);
        self.total_frames += self.front.frames.len() as u64;
        Ok(())
    }

    /// The next window that can be formed, if any, and whether it is canonical. Windows start
    /// every live step; those on the manifest's hop (`hop`, a multiple of the step) are the
    /// canonical windows that file analysis scores, the others only feed live views. At the
    /// end of the stream, a tail of at least half a hop that no canonical window covered gets a
    /// canonical window aligned to the last frame, so the end of a call is never ignored.
    fn next_window(&self, w: usize, hop: usize, at_end: bool) -> Option<(u64, bool)> {
        let (w, hop) = (w as u64, hop as u64);
        let next = self.next_start;
        if next + w <= self.total_frames {
            return Some((next, next.is_multiple_of(hop)));
        }
        if at_end && self.total_frames >= w {
            let covered_to = self.last_canonical_start.map_or(0, |s| s + w);
            let tail_start = self.total_frames - w;
            if self.total_frames > covered_to
                && self.total_frames - covered_to >= hop.div_ceil(2)
                && self.last_canonical_start.is_none_or(|s| tail_start > s)
            {
                return Some((tail_start, true));
            }
        }
        None
    }

    fn drain_before(&mut self, frame: u64) {
        if frame <= self.buf_start {
            return;
        }
        let n = (frame - self.buf_start) as usize;
        self.features.drain(..n * self.n_bins);
        self.speech.drain(..n);
        self.buf_start = frame;
    }
}

/// Windows per model call and ONNX Runtime thread when analysing a recording: 8 runs as fast
/// as 32 on one core and peaks ~15 MB lower, because the runtime's activation buffers grow with
/// the batch (BENCHMARKS.md); a scorer with more threads gets a larger batch to share out.
pub const WINDOWS_PER_CALL: usize = 8;

/// A recording analysed whole: what it was, what was found, and what the reader should know.
#[derive(Debug, Clone)]
pub struct RecordingAnalysis {
    /// The decoder's name for the format (e.g. `wave/pcm_s16le`).
    pub codec: String,
    pub analysis: Analysis,
    /// Warnings the source raised (e.g. a file shorter than its header, when allowed).
    pub warnings: Vec<String>,
}

/// Analyses a whole recording, as `analyze`, `batch` and the service's uploads all do:
/// `threads` is the scorer's ONNX Runtime thread count (the batch is [`WINDOWS_PER_CALL`] per
/// thread). Unless `allow_truncated`, a source that ended before its header said is an error.
pub fn analyze_recording(
    detector: &Detector,
    source: &mut dyn crate::audio::AudioSource,
    scorer: &mut dyn WindowScorer,
    threads: usize,
    allow_truncated: bool,
) -> Result<RecordingAnalysis> {
    let codec = source.info().codec.clone();
    let analysis = analyze_source(detector, source, scorer, WINDOWS_PER_CALL * threads.max(1))?;
    if !allow_truncated {
        source.check_complete()?;
    }
    Ok(RecordingAnalysis {
        codec,
        analysis,
        warnings: source.warnings(),
    })
}

/// A call of a packet capture, analysed: each leg on its own (as its audio in a file would be),
/// and the call as a whole, decided by its most suspicious conclusive leg.
#[derive(Debug, Clone)]
pub struct CallAnalysis {
    pub call: Analysis,
    /// Per leg, in the call's order; `None` for a leg with no decodable audio.
    pub legs: Vec<Option<Analysis>>,
}

/// Analyses every leg of a captured call with the file-analysis routine.
pub fn analyze_call(
    detector: &Detector,
    call: &crate::packet::CapturedCall,
    scorer: &mut dyn WindowScorer,
    threads: usize,
) -> Result<CallAnalysis> {
    let mut legs = Vec::with_capacity(call.legs.len());
    for leg in &call.legs {
        if leg.stream.samples.is_empty() {
            legs.push(None);
            continue;
        }
        let mut source = crate::packet::LegSource::new(leg);
        legs.push(Some(
            analyze_recording(detector, &mut source, scorer, threads, false)?.analysis,
        ));
    }
    let results: Vec<ChannelResult> = legs
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let mut c = a.as_ref()?.channels.first()?.clone();
            c.channel = i;
            Some(c)
        })
        .collect();
    let duration_s = legs.iter().flatten().map(|a| a.duration_s).fold(0.0, f64::max);
    let rate_hz = call.legs.iter().map(|l| l.stream.rate_hz).max().unwrap_or(8000);
    let mut combined = Analysis::combine(duration_s, rate_hz, results, detector.threshold_for(rate_hz));
    // the threshold shown is the deciding leg's (narrowband and wideband legs differ)
    if let Some(leg) = combined
        .channels
        .get(combined.deciding_channel)
        .and_then(|c| legs.get(c.channel)?.as_ref())
    {
        combined.threshold = leg.threshold;
    }
    Ok(CallAnalysis { call: combined, legs })
}

/// Every call of a packet capture, analysed: the routine `analyze` and the service's uploads
/// share. `time_limit`, when given, is checked between calls.
pub fn analyze_capture(
    detector: &Detector,
    input: impl std::io::Read,
    options: &crate::packet::CaptureOptions,
    scorer: &mut dyn WindowScorer,
    threads: usize,
    time_limit: Option<std::time::Duration>,
) -> Result<Vec<(crate::packet::CapturedCall, CallAnalysis)>> {
    let started = std::time::Instant::now();
    let (calls, _) = crate::packet::read_calls(input, options)?;
    if calls.is_empty() {
        return Err(Error::UnsupportedFormat(
            "the capture holds no RTP call audio (UDP streams of at least 10 RTP packets)".into(),
        ));
    }
    let mut analysed = Vec::with_capacity(calls.len());
    for call in calls {
        if let Some(limit) = time_limit
            && started.elapsed() > limit
        {
            return Err(Error::TooSlow(format!(
                "over {:.0} s for one upload",
                limit.as_secs_f64()
            )));
        }
        let analysis = analyze_call(detector, &call, scorer, threads)?;
        analysed.push((call, analysis));
    }
    Ok(analysed)
}

/// Spectrogram columns at most over all channels of one source: 65,536 columns of 80 bins are
/// 21 MB of floats, so a 64-channel file cannot make the pictures cost more than its analysis.
pub const SPECTROGRAM_COLUMN_BUDGET: usize = 1 << 16;

/// The spectrogram of each channel of a whole source, built from the frames the model scores
/// (the same front end as detection: resampled to the model's rate, its STFT and filterbank),
/// with at most `max_columns` columns a channel, and fewer when the channels together would
/// exceed [`SPECTROGRAM_COLUMN_BUDGET`].
pub fn spectrogram(
    manifest: &Manifest,
    source: &mut dyn crate::audio::AudioSource,
    max_columns: usize,
) -> Result<Vec<Spectrogram>> {
    let info = source.info().clone();
    let n_ch = info.channels.max(1);
    let columns = max_columns.clamp(1, (SPECTROGRAM_COLUMN_BUDGET / n_ch).max(1));
    let mut fronts = (0..n_ch)
        .map(|_| FrontEnd::new(manifest, info.sample_rate_hz))
        .collect::<Result<Vec<_>>>()?;
    let mut builders: Vec<_> = (0..n_ch)
        .map(|_| SpectrogramBuilder::new(manifest.features.n_bins, columns))
        .collect();
    let mut channel = Vec::new();
    while let Some(chunk) = source.next_chunk()? {
        for (c, (front, builder)) in fronts.iter_mut().zip(&mut builders).enumerate() {
            chunk.channel_into(c, &mut channel);
            front.push(&channel, false)?;
            builder.push(&front.frames.features);
        }
    }
    for (front, builder) in fronts.iter_mut().zip(&mut builders) {
        front.push(&[], true)?;
        builder.push(&front.frames.features);
    }
    Ok(builders.into_iter().map(SpectrogramBuilder::finish).collect())
}

/// Runs a whole source through a new stream: the file-analysis path.
pub fn analyze_source(
    detector: &Detector,
    source: &mut dyn crate::audio::AudioSource,
    scorer: &mut dyn WindowScorer,
    batch_windows: usize,
) -> Result<Analysis> {
    let info = source.info().clone();
    let mut stream = detector.stream(info.sample_rate_hz, info.channels, batch_windows)?;
    while let Some(chunk) = source.next_chunk()? {
        stream.push(&chunk, scorer)?;
    }
    stream.finish(scorer)
}
