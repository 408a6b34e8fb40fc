//! Scores, segments and verdicts: what detection concludes.

use serde::Serialize;

use super::Envelope;

/// The decision for a channel, a file or a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Synthetic,
    Genuine,
    /// Too little speech to judge.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Synthetic => "synthetic",
            Verdict::Genuine => "genuine",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The model's output for one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowScore {
    pub channel: usize,
    pub start_s: f64,
    pub end_s: f64,
    /// Raw model output.
    pub logit: f64,
    /// Calibrated probability that the window's speech is synthetic.
    pub probability: f64,
    /// Share of the window's frames that the gate called speech.
    pub speech_fraction: f32,
    /// Whether the window sits on the manifest's hop grid (or is the end-aligned tail), i.e.
    /// counts in the analysis; live-only windows in between are `false`.
    pub canonical: bool,
}

/// A run of consecutive scored windows on the same side of the threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    /// Calibrated probability of the segment's mean logit.
    pub score: f64,
}

/// One channel's conclusion.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelResult {
    pub channel: usize,
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub speech_s: f64,
    pub segments: Vec<Segment>,
    /// Oldest segments dropped to keep memory bounded (only on very long streams whose score
    /// keeps crossing the threshold).
    #[serde(skip_serializing_if = "is_zero")]
    pub segments_dropped: u64,
    /// The scored windows in order, for plots. Past 4096 windows, neighbours are merged (span
    /// and mean logit), so each entry may stand for 2, 4, ... windows.
    #[serde(skip)]
    pub windows: Vec<WindowScore>,
    /// Windows scored on this channel.
    #[serde(skip)]
    pub windows_scored: u64,
    #[serde(skip)]
    pub envelope: Envelope,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The mean of `n` logits summing to `sum`, if any were scored.
pub(crate) fn pooled_logit(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

/// `x` rounded to `decimals` decimal places, for reports and events.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

/// The verdict for a channel's pooled score and the speech heard.
pub(crate) fn verdict_for(score: Option<f64>, speech_s: f64, threshold: f64, min_speech_s: f64) -> Verdict {
    match score {
        Some(_) if speech_s < min_speech_s => Verdict::Inconclusive,
        Some(p) if p >= threshold => Verdict::Synthetic,
        Some(_) => Verdict::Genuine,
        None => Verdict::Inconclusive,
    }
}

/// The conclusion for a whole input.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub duration_s: f64,
    pub sample_rate_hz: u32,
    pub channels: Vec<ChannelResult>,
    /// Index into `channels` of the channel that decides the verdict.
    pub deciding_channel: usize,
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub threshold: f64,
}

impl Analysis {
    /// The file's verdict is its most suspicious conclusive channel's; with no conclusive
    /// channel it is inconclusive (scored by whatever windows there were).
    pub fn combine(duration_s: f64, sample_rate_hz: u32, mut channels: Vec<ChannelResult>, threshold: f64) -> Self {
        // The last frame is zero-padded past the end; no segment reaches beyond the audio.
        for s in channels.iter_mut().flat_map(|c| c.segments.iter_mut()) {
            s.end_s = s.end_s.min(duration_s);
        }
        let most_suspicious = |conclusive_only: bool| {
            channels
                .iter()
                .enumerate()
                .filter(|(_, c)| c.score.is_some() && (!conclusive_only || c.verdict != Verdict::Inconclusive))
                .max_by(|a, b| a.1.score.partial_cmp(&b.1.score).unwrap_or(std::cmp::Ordering::Equal))
                .map(|(i, _)| i)
        };
        let (deciding_channel, verdict) = match most_suspicious(true) {
            Some(i) => (i, channels[i].verdict),
            None => (most_suspicious(false).unwrap_or(0), Verdict::Inconclusive),
        };
        let score = channels.get(deciding_channel).and_then(|c| c.score);
        Self {
            duration_s,
            sample_rate_hz,
            channels,
            deciding_channel,
            score,
            verdict,
            threshold,
        }
    }

    /// Speech heard on the deciding channel.
    pub fn speech_s(&self) -> f64 {
        self.channels.get(self.deciding_channel).map_or(0.0, |c| c.speech_s)
    }

    /// Segments of the deciding channel.
    pub fn segments(&self) -> &[Segment] {
        self.channels
            .get(self.deciding_channel)
            .map_or(&[], |c| c.segments.as_slice())
    }

    pub fn is_flagged(&self) -> bool {
        self.verdict == Verdict::Synthetic
    }
}
