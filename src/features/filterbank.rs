//! Triangular filterbanks on the mel (HTK) or linear frequency scale.

use serde::{Deserialize, Serialize};

use super::FeatureConfig;

/// Spacing of the filter edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterbankKind {
    /// Edges equally spaced on the HTK mel scale, `2595 log10(1 + f/700)`.
    Mel,
    /// Edges equally spaced in Hz (LFCC-style).
    Linear,
}

/// Sparse triangular filters: each is a first bin and its weights.
#[derive(Debug, Clone)]
pub struct Filterbank {
    filters: Vec<(usize, Vec<f32>)>,
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

impl Filterbank {
    pub fn new(cfg: &FeatureConfig) -> Self {
        let n = cfg.n_bins;
        let (lo, hi) = (f64::from(cfg.f_min_hz), f64::from(cfg.f_max_hz));
        let edges: Vec<f64> = match cfg.filterbank {
            FilterbankKind::Mel => {
                let (mlo, mhi) = (hz_to_mel(lo), hz_to_mel(hi));
                (0..n + 2)
                    .map(|i| mel_to_hz(mlo + (mhi - mlo) * i as f64 / (n + 1) as f64))
                    .collect()
            }
            FilterbankKind::Linear => (0..n + 2).map(|i| lo + (hi - lo) * i as f64 / (n + 1) as f64).collect(),
        };
        let n_freqs = cfg.n_fft / 2 + 1;
        let bin_hz = f64::from(cfg.sample_rate_hz) / cfg.n_fft as f64;
        let filters = (0..n)
            .map(|m| {
                let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
                let weights: Vec<(usize, f32)> = (0..n_freqs)
                    .filter_map(|k| {
                        let f = k as f64 * bin_hz;
                        let w = ((f - left) / (centre - left)).min((right - f) / (right - centre));
                        (w > 0.0).then_some((k, w as f32))
                    })
                    .collect();
                match weights.first() {
                    Some(&(first, _)) => (first, weights.iter().map(|&(_, w)| w).collect()),
                    // A filter narrower than one bin catches no bin: it reports the floor.
                    None => (0, Vec::new()),
                }
            })
            .collect();
        Self { filters }
    }

    /// Writes `ln(filter energy + floor)` for each filter into `out`.
    pub fn apply_log(&self, power: &[f32], floor: f32, out: &mut [f32]) {
        for ((first, weights), dst) in self.filters.iter().zip(out.iter_mut()) {
            let e: f32 = weights.iter().zip(&power[*first..]).map(|(w, p)| w * p).sum();
            *dst = (e + floor).ln();
        }
    }
}
