//! Feature extraction: the second stage. Samples at the model's rate in, frames out.
//!
//! A frame is one STFT column reduced to `n_bins` log filterbank energies, plus two side values
//! the voice-activity gate uses: the frame's energy in dBFS and its tonality (the share of power in
//! the strongest few bins, near 1 for a pure tone). Everything is parameterised by
//! [`FeatureConfig`], which comes from the model manifest, never from constants in code.
//!
//! Invariant: the frames depend only on the samples, not on how they were chunked. Frame `t`
//! covers samples `[t*hop, t*hop + win)`; past the end of the stream samples are zero, and
//! [`FeatureExtractor::finish`] emits `1 + ceil((n - win) / hop)` frames in all (1 if
//! `0 < n <= win`), so a short tail is never dropped. The Python reference in
//! `training/synthscan_train/features_ref.py` implements the same definition.

mod filterbank;
mod spectrogram;

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub use filterbank::{Filterbank, FilterbankKind};
pub use spectrogram::{Spectrogram, SpectrogramBuilder};

/// Feature parameters (the `features` section of a model manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    pub sample_rate_hz: u32,
    pub n_fft: usize,
    pub win_len: usize,
    pub hop_len: usize,
    pub filterbank: FilterbankKind,
    pub n_bins: usize,
    pub f_min_hz: f32,
    pub f_max_hz: f32,
    /// Added to filterbank energies before the natural log.
    pub log_floor: f32,
}

impl FeatureConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(4000..=48000).contains(&self.sample_rate_hz) {
            return bad(format!("feature sample rate {} Hz", self.sample_rate_hz));
        }
        if self.n_fft < 16 || self.n_fft > 8192 || !self.n_fft.is_multiple_of(2) {
            return bad(format!("n_fft {} must be even and in 16..=8192", self.n_fft));
        }
        if self.win_len == 0 || self.win_len > self.n_fft {
            return bad(format!("win_len {} must be in 1..=n_fft", self.win_len));
        }
        if self.hop_len == 0 || self.hop_len > self.win_len {
            return bad(format!("hop_len {} must be in 1..=win_len", self.hop_len));
        }
        if self.n_bins == 0 || self.n_bins > self.n_fft / 2 + 1 {
            return bad(format!("n_bins {} must be in 1..=n_fft/2+1", self.n_bins));
        }
        let nyquist = self.sample_rate_hz as f32 / 2.0;
        if !(self.f_min_hz >= 0.0 && self.f_min_hz < self.f_max_hz && self.f_max_hz <= nyquist) {
            return bad(format!(
                "filterbank range {}..{} Hz must be within 0..{nyquist} Hz",
                self.f_min_hz, self.f_max_hz
            ));
        }
        if !(self.log_floor > 0.0 && self.log_floor.is_finite()) {
            return bad(format!("log_floor {} must be positive", self.log_floor));
        }
        Ok(())
    }

    /// Seconds between frame starts.
    pub fn hop_s(&self) -> f64 {
        self.hop_len as f64 / f64::from(self.sample_rate_hz)
    }

    /// Number of frames `finish` will have emitted for a stream of `n_samples`.
    pub fn frames_for(&self, n_samples: u64) -> u64 {
        let win = self.win_len as u64;
        let hop = self.hop_len as u64;
        match n_samples {
            0 => 0,
            n if n <= win => 1,
            n => 1 + (n - win).div_ceil(hop),
        }
    }
}

/// Frames produced by the extractor, stored flat: `features[t * n_bins + m]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameBatch {
    pub n_bins: usize,
    pub features: Vec<f32>,
    pub energy_db: Vec<f32>,
    pub tonality: Vec<f32>,
}

impl FrameBatch {
    pub fn new(n_bins: usize) -> Self {
        Self {
            n_bins,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.energy_db.len()
    }

    pub fn is_empty(&self) -> bool {
        self.energy_db.is_empty()
    }

    pub fn clear(&mut self) {
        self.features.clear();
        self.energy_db.clear();
        self.tonality.clear();
    }

    /// The feature row of frame `t`.
    pub fn frame(&self, t: usize) -> &[f32] {
        &self.features[t * self.n_bins..(t + 1) * self.n_bins]
    }
}

/// Bins whose power counts as "the strongest few" for tonality (a Hann main lobe is ~3 bins,
/// so this covers two tones, as in DTMF, plus leakage).
const TONAL_BINS: usize = 8;

/// Streaming STFT + filterbank. One per channel; the FFT is planned once.
pub struct FeatureExtractor {
    cfg: FeatureConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    window_power: f32,
    filterbank: Filterbank,
    pending: Vec<f32>,
    total_samples: u64,
    frames_emitted: u64,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("cfg", &self.cfg)
            .field("frames_emitted", &self.frames_emitted)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    pub fn new(cfg: &FeatureConfig) -> Result<Self> {
        cfg.validate()?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        // Periodic Hann, computed in f64 so it matches the reference to the last bit of f32.
        let window: Vec<f32> = (0..cfg.win_len)
            .map(|n| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / cfg.win_len as f64).cos()) as f32)
            .collect();
        let window_power = window.iter().map(|w| w * w).sum();
        let fft_in = fft.make_input_vec();
        let fft_out = fft.make_output_vec();
        let fft_scratch = fft.make_scratch_vec();
        Ok(Self {
            filterbank: Filterbank::new(cfg),
            cfg: cfg.clone(),
            fft,
            window,
            window_power,
            pending: Vec::with_capacity(cfg.win_len * 4),
            total_samples: 0,
            frames_emitted: 0,
            fft_in,
            fft_out,
            fft_scratch,
            power: vec![0.0; cfg.n_fft / 2 + 1],
        })
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    /// Frames emitted so far.
    pub fn frames_emitted(&self) -> u64 {
        self.frames_emitted
    }

    /// Consumes samples and appends every frame that is complete to `out`.
    pub fn push(&mut self, samples: &[f32], out: &mut FrameBatch) -> Result<()> {
        self.total_samples += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        let (win, hop) = (self.cfg.win_len, self.cfg.hop_len);
        let mut start = 0;
        while self.pending.len() - start >= win {
            self.compute_frame(start, out)?;
            start += hop;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Emits the frames that overlap the end of the stream (zero-padded) and resets nothing:
    /// the extractor is finished.
    pub fn finish(&mut self, out: &mut FrameBatch) -> Result<()> {
        let target = self.cfg.frames_for(self.total_samples);
        let hop = self.cfg.hop_len;
        let mut start = 0;
        if self.frames_emitted < target {
            self.pending.resize(self.pending.len() + self.cfg.win_len, 0.0);
        }
        while self.frames_emitted < target {
            self.compute_frame(start, out)?;
            start += hop;
        }
        self.pending.clear();
        Ok(())
    }

    fn compute_frame(&mut self, start: usize, out: &mut FrameBatch) -> Result<()> {
        let win = self.cfg.win_len;
        let frame = &self.pending[start..start + win];
        let mut energy = 0.0f32;
        for ((dst, &x), &w) in self.fft_in.iter_mut().zip(frame).zip(&self.window) {
            let v = x * w;
            energy += v * v;
            *dst = v;
        }
        self.fft_in[win..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.fft_in, &mut self.fft_out, &mut self.fft_scratch)
            .map_err(|e| Error::Config(format!("FFT failed: {e}")))?;
        let mut total_power = 0.0f32;
        for (p, c) in self.power.iter_mut().zip(&self.fft_out) {
            *p = c.norm_sqr();
            total_power += *p;
        }
        let first = out.features.len();
        out.features.resize(first + self.cfg.n_bins, 0.0);
        self.filterbank
            .apply_log(&self.power, self.cfg.log_floor, &mut out.features[first..]);
        out.energy_db.push(10.0 * (energy / self.window_power + 1e-10).log10());
        out.tonality.push(tonality(&self.power, total_power));
        self.frames_emitted += 1;
        Ok(())
    }
}

/// Share of the power in the `TONAL_BINS` strongest bins (0 for a silent frame).
fn tonality(power: &[f32], total: f32) -> f32 {
    if total <= f32::MIN_POSITIVE {
        return 0.0;
    }
    let mut top = [0.0f32; TONAL_BINS];
    for &p in power {
        // `top` is kept sorted descending; insert p if it beats the smallest.
        if p > top[TONAL_BINS - 1] {
            let mut i = TONAL_BINS - 1;
            while i > 0 && top[i - 1] < p {
                top[i] = top[i - 1];
                i -= 1;
            }
            top[i] = p;
        }
    }
    (top.iter().sum::<f32>() / total).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn test_config() -> FeatureConfig {
        FeatureConfig {
            sample_rate_hz: 16000,
            n_fft: 512,
            win_len: 400,
            hop_len: 160,
            filterbank: FilterbankKind::Mel,
            n_bins: 64,
            f_min_hz: 20.0,
            f_max_hz: 8000.0,
            log_floor: 1e-6,
        }
    }

    fn chirp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 16000.0;
                (0.3 * (2.0 * std::f64::consts::PI * (200.0 * t + 900.0 * t * t)).sin()
                    + 0.01 * ((i * 7919 % 1000) as f64 / 1000.0 - 0.5)) as f32
            })
            .collect()
    }

    fn extract(samples: &[f32], chunk: usize) -> FrameBatch {
        let cfg = test_config();
        let mut fx = FeatureExtractor::new(&cfg).unwrap();
        let mut out = FrameBatch::new(cfg.n_bins);
        for piece in samples.chunks(chunk.max(1)) {
            fx.push(piece, &mut out).unwrap();
        }
        fx.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn frame_count_follows_the_definition() {
        let cfg = test_config();
        for n in [0usize, 1, 399, 400, 401, 560, 561, 16000, 16001] {
            let out = extract(&chirp(n), 1000);
            assert_eq!(out.len() as u64, cfg.frames_for(n as u64), "n = {n}");
        }
        assert_eq!(cfg.frames_for(400), 1);
        assert_eq!(cfg.frames_for(401), 2);
        assert_eq!(cfg.frames_for(560), 2);
        assert_eq!(cfg.frames_for(561), 3);
    }

    #[test]
    fn chunking_gives_identical_frames() {
        let samples = chirp(16000 * 2 + 77);
        let whole = extract(&samples, samples.len());
        for chunk in [1usize, 7, 160, 400, 401, 4096] {
            let pieces = extract(&samples, chunk);
            assert_eq!(whole.len(), pieces.len(), "chunk {chunk}");
            // Same arithmetic in the same order: bit-identical.
            assert_eq!(whole, pieces, "chunk {chunk}");
        }
    }

    #[test]
    fn tone_is_tonal_and_noise_is_not() {
        let tone: Vec<f32> = (0..4000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin() * 0.5)
            .collect();
        let out = extract(&tone, 4000);
        assert!(out.tonality[3] > 0.95, "tone tonality {}", out.tonality[3]);
        // Full-scale 0.5 amplitude sine: -9 dBFS (0.125 mean power).
        assert!((out.energy_db[3] - (-9.03)).abs() < 0.1, "{}", out.energy_db[3]);
        let mut state = 12345u32;
        let noise: Vec<f32> = (0..4000)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (state >> 16) as f32 / 65536.0 - 0.5
            })
            .collect();
        let out = extract(&noise, 4000);
        assert!(out.tonality[3] < 0.2, "noise tonality {}", out.tonality[3]);
    }

    #[test]
    fn silence_sits_at_the_log_floor() {
        let out = extract(&vec![0.0; 2000], 2000);
        let floor = (1e-6f32).ln();
        assert!(out.features.iter().all(|v| (v - floor).abs() < 1e-4));
        assert!(out.energy_db.iter().all(|&e| e <= -99.0));
    }
}
