//! A channel's scored windows, summarised as they arrive in memory that does not grow with the
//! length of the stream: the pooled score is a running sum, segments are closed run by run, and
//! the per-window series kept for plots merges neighbours (like [`Envelope`](super::Envelope))
//! once it is full. A monitor or service stream can run for months; a file is summarised by
//! the very same code, so the two still agree.

use std::collections::VecDeque;

use super::Envelope;
use super::result::{ChannelResult, Segment, Verdict, WindowScore, pooled_logit, verdict_for};
use crate::model::Calibration;

/// Most windows kept for the plotted series (a 34-minute channel at the default hop); beyond
/// that, neighbours merge and each entry stands for twice as many windows.
const MAX_SERIES: usize = 4096;
/// Most closed segments kept; older ones are dropped (and counted) on streams whose score
/// keeps crossing the threshold for hours.
const MAX_SEGMENTS: usize = 4096;

/// The run of windows on one side of the threshold that is still open.
#[derive(Debug, Clone)]
struct Run {
    start_s: f64,
    end_s: f64,
    logit_sum: f64,
    n: u64,
    flagged: bool,
}

/// Windows not yet merged into one series entry (while the series' stride is above 1).
#[derive(Debug, Clone)]
struct Pending {
    first: WindowScore,
    end_s: f64,
    logit_sum: f64,
    speech_sum: f64,
    n: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    threshold: f64,
    n: u64,
    logit_sum: f64,
    segments: VecDeque<Segment>,
    segments_dropped: u64,
    run: Option<Run>,
    series: Vec<WindowScore>,
    /// Windows per series entry (a power of two).
    stride: u64,
    pending: Option<Pending>,
}

impl Timeline {
    pub(crate) fn new(threshold: f64) -> Self {
        Self {
            threshold,
            n: 0,
            logit_sum: 0.0,
            segments: VecDeque::new(),
            segments_dropped: 0,
            run: None,
            series: Vec::new(),
            stride: 1,
            pending: None,
        }
    }

    /// Windows scored so far.
    pub(crate) fn len(&self) -> u64 {
        self.n
    }

    /// Calibrated probability of the mean logit so far.
    pub(crate) fn score(&self, cal: &Calibration) -> Option<f64> {
        pooled_logit(self.logit_sum, self.n).map(|m| cal.probability(m))
    }

    pub(crate) fn push(&mut self, w: &WindowScore, cal: &Calibration) {
        self.n += 1;
        self.logit_sum += w.logit;
        self.extend_run(w, cal);
        self.extend_series(w, cal);
    }

    fn extend_run(&mut self, w: &WindowScore, cal: &Calibration) {
        let flagged = w.probability >= self.threshold;
        if let Some(run) = &mut self.run
            && run.flagged == flagged
            && w.start_s <= run.end_s
        {
            run.end_s = w.end_s;
            run.logit_sum += w.logit;
            run.n += 1;
            return;
        }
        self.close_run(cal);
        self.run = Some(Run {
            start_s: w.start_s,
            end_s: w.end_s,
            logit_sum: w.logit,
            n: 1,
            flagged,
        });
    }

    fn close_run(&mut self, cal: &Calibration) {
        let Some(run) = self.run.take() else { return };
        if self.segments.len() == MAX_SEGMENTS {
            self.segments.pop_front();
            self.segments_dropped += 1;
        }
        self.segments.push_back(run_segment(&run, cal));
    }

    fn extend_series(&mut self, w: &WindowScore, cal: &Calibration) {
        let p = self.pending.get_or_insert_with(|| Pending::starting_at(w));
        p.add(w);
        if p.n < self.stride {
            return;
        }
        if let Some(p) = self.pending.take() {
            self.series.push(p.merged(cal));
        }
        if self.series.len() == MAX_SERIES {
            // Both entries of a pair stand for `stride` windows, so the mean of their means is exact.
            let halved = self
                .series
                .chunks(2)
                .map(|pair| {
                    let mut p = Pending::starting_at(&pair[0]);
                    pair.iter().for_each(|w| p.add(w));
                    p.merged(cal)
                })
                .collect();
            self.series = halved;
            self.stride *= 2;
        }
    }

    /// The channel's conclusion so far.
    pub(crate) fn result(
        &self,
        channel: usize,
        speech_s: f64,
        cal: &Calibration,
        min_speech_s: f64,
        envelope: Envelope,
    ) -> ChannelResult {
        let score = self.score(cal);
        let verdict: Verdict = verdict_for(score, speech_s, self.threshold, min_speech_s);
        let mut segments: Vec<Segment> = self.segments.iter().cloned().collect();
        if let Some(run) = &self.run {
            segments.push(run_segment(run, cal));
        }
        // Windows overlap, so neighbouring segments do too: split each overlap at its middle
        // so the timeline reads as consecutive, non-overlapping stretches.
        for i in 1..segments.len() {
            if segments[i].start_s < segments[i - 1].end_s {
                let mid = 0.5 * (segments[i].start_s + segments[i - 1].end_s);
                segments[i - 1].end_s = mid;
                segments[i].start_s = mid;
            }
        }
        let mut windows = self.series.clone();
        if let Some(p) = &self.pending {
            windows.push(p.merged(cal));
        }
        ChannelResult {
            channel,
            score,
            verdict,
            speech_s,
            segments,
            segments_dropped: self.segments_dropped,
            windows,
            windows_scored: self.n,
            envelope,
        }
    }
}

fn run_segment(run: &Run, cal: &Calibration) -> Segment {
    Segment {
        start_s: run.start_s,
        end_s: run.end_s,
        score: cal.probability(run.logit_sum / run.n as f64),
    }
}

impl Pending {
    fn starting_at(w: &WindowScore) -> Self {
        Self {
            first: w.clone(),
            end_s: w.end_s,
            logit_sum: 0.0,
            speech_sum: 0.0,
            n: 0,
        }
    }

    fn add(&mut self, w: &WindowScore) {
        self.end_s = w.end_s;
        self.logit_sum += w.logit;
        self.speech_sum += f64::from(w.speech_fraction);
        self.n += 1;
    }

    /// One series entry standing for these `n` consecutive windows: their span and mean logit.
    fn merged(&self, cal: &Calibration) -> WindowScore {
        if self.n == 1 {
            return self.first.clone();
        }
        let logit = self.logit_sum / self.n as f64;
        WindowScore {
            channel: self.first.channel,
            start_s: self.first.start_s,
            end_s: self.end_s,
            logit,
            probability: cal.probability(logit),
            speech_fraction: (self.speech_sum / self.n as f64) as f32,
            canonical: self.first.canonical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(i: usize, logit: f64, cal: &Calibration) -> WindowScore {
        let start_s = i as f64 * 0.5;
        WindowScore {
            channel: 0,
            start_s,
            end_s: start_s + 1.0,
            logit,
            probability: cal.probability(logit),
            speech_fraction: 1.0,
            canonical: true,
        }
    }

    fn cal() -> Calibration {
        Calibration { scale: 1.0, bias: 0.0 }
    }

    #[test]
    fn segments_follow_threshold_crossings_and_split_overlaps() {
        let cal = cal();
        let mut t = Timeline::new(0.5);
        for (i, l) in [2.0, 2.0, -1.0, -3.0, 1.0].into_iter().enumerate() {
            t.push(&window(i, l, &cal), &cal);
        }
        let r = t.result(0, 10.0, &cal, 1.0, Envelope::new(16000));
        let spans: Vec<(f64, f64)> = r.segments.iter().map(|s| (s.start_s, s.end_s)).collect();
        // runs [0,1.5) [1,2.5) [2,3): overlaps split at their middles
        assert_eq!(spans, vec![(0.0, 1.25), (1.25, 2.25), (2.25, 3.0)]);
        assert!((r.segments[1].score - cal.probability(-2.0)).abs() < 1e-12);
        assert!((r.score.unwrap() - cal.probability(0.2)).abs() < 1e-12);
        assert_eq!(r.windows_scored, 5);
        assert_eq!(r.windows.len(), 5);
    }

    #[test]
    fn a_day_long_stream_keeps_bounded_state_and_the_exact_mean() {
        let cal = cal();
        let mut t = Timeline::new(0.5);
        // 24 h at two windows a second, the score crossing the threshold every window
        let n = 24 * 3600 * 2;
        let mut sum = 0.0;
        for i in 0..n {
            let l = if i % 2 == 0 { 1.5 } else { -0.5 };
            sum += l;
            t.push(&window(i, l, &cal), &cal);
        }
        assert!(t.series.len() <= MAX_SERIES);
        assert!(t.segments.len() <= MAX_SEGMENTS);
        let r = t.result(0, 1e5, &cal, 1.0, Envelope::new(16000));
        assert_eq!(r.windows_scored, n as u64);
        assert_eq!(r.segments_dropped as usize + r.segments.len(), n);
        assert!((r.score.unwrap() - cal.probability(sum / n as f64)).abs() < 1e-12);
        // every merged entry covers consecutive windows: the series still spans the whole day
        assert_eq!(r.windows.first().unwrap().start_s, 0.0);
        assert!((r.windows.last().unwrap().end_s - (n as f64 * 0.5 + 0.5)).abs() < 1e-9);
        // and each merged pair of (1.5, -0.5) has the mean logit 0.5
        assert!(r.windows.iter().all(|w| (w.logit - 0.5).abs() < 1e-12));
    }
}
