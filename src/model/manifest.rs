//! The model manifest: the JSON file beside each `.onnx`, and the single source of truth for
//! feature parameters, windowing, voice-activity gating, calibration and the threshold.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::features::FeatureConfig;

/// The largest manifest accepted (a manifest is a few KB; anything huge is not one).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The largest model accepted (the product targets <= 4 MB).
const MAX_MODEL_BYTES: u64 = 256 << 20;

/// How frames are grouped into windows, the unit the model scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Frames per window (the model's time dimension).
    pub frames: usize,
    /// Frames between window starts.
    pub hop_frames: usize,
    /// A window is scored only when at least this share of its frames is speech.
    pub min_speech_fraction: f32,
}

/// Voice-activity gate parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VadConfig {
    /// Frames quieter than this (dBFS) are never speech.
    pub min_energy_db: f32,
    /// Frames whose strongest bins hold more than this share of the power are tones, not speech.
    pub max_tonality: f32,
    /// Frames must also be this far above the running noise floor (dB).
    #[serde(default = "default_noise_margin_db")]
    pub noise_margin_db: f32,
}

fn default_noise_margin_db() -> f32 {
    6.0
}

/// ONNX input and output names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoNames {
    pub input: String,
    pub output: String,
}

/// Affine calibration of the model's logit: `p = sigmoid(scale * logit + bias)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub scale: f64,
    pub bias: f64,
}

impl Calibration {
    pub fn probability(&self, logit: f64) -> f64 {
        1.0 / (1.0 + (-(self.scale * logit + self.bias)).exp())
    }
}

/// The default of [`Manifest::narrowband_max_rate_hz`]: G.711 calls are 8 kHz.
pub const NARROWBAND_MAX_RATE_HZ: u32 = 8000;

fn default_narrowband_max_rate_hz() -> u32 {
    NARROWBAND_MAX_RATE_HZ
}

/// A model manifest as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Path of the ONNX file, relative to the manifest.
    pub onnx: String,
    /// Lower-case hex sha256 of the ONNX file.
    pub sha256: String,
    pub features: FeatureConfig,
    pub window: WindowConfig,
    pub vad: VadConfig,
    pub io: IoNames,
    pub calibration: Calibration,
    /// Probability at or above which speech is called synthetic.
    pub threshold: f64,
    /// The threshold for input at a telephone sample rate (at most `narrowband_max_rate_hz`).
    /// Through the telephone band the model sees only 300-3400 Hz, and genuine speech scores
    /// differently there than on wideband audio, so each gets the threshold chosen on its own kind
    /// of input. Absent: `threshold` for every input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_narrowband: Option<f64>,
    /// Input at or below this sample rate gets `threshold_narrowband`. Telephone audio resampled
    /// to a higher rate gets the wideband threshold, the stricter of the two in every shipped
    /// manifest, so mislabelled input errs towards fewer false alarms. Absent: 8000.
    #[serde(default = "default_narrowband_max_rate_hz")]
    pub narrowband_max_rate_hz: u32,
    /// Less speech than this (seconds) gives an inconclusive verdict.
    pub min_speech_s: f64,
    /// Free-form summary of the training data and results.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// A manifest that was read, validated, and whose model file matched its sha256.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub onnx_path: PathBuf,
    pub onnx_bytes: Vec<u8>,
}

impl LoadedModel {
    /// Reads a manifest, validates it and verifies the ONNX file's sha256.
    pub fn load(manifest_path: &Path) -> Result<Self> {
        let merr = |reason: String| Error::Manifest {
            path: manifest_path.to_path_buf(),
            reason,
        };
        let text = read_limited(manifest_path, MAX_MANIFEST_BYTES)?;
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| merr(format!("not a valid manifest: {e}")))?;
        manifest.validate().map_err(|e| match e {
            Error::Config(reason) => merr(reason),
            other => other,
        })?;
        let onnx_path = manifest_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&manifest.onnx);
        let onnx_bytes = read_limited(&onnx_path, MAX_MODEL_BYTES)?;
        let actual = sha256_hex(&onnx_bytes);
        if !actual.eq_ignore_ascii_case(&manifest.sha256) {
            return Err(Error::ModelHashMismatch {
                path: onnx_path,
                expected: manifest.sha256.clone(),
                actual,
            });
        }
        Ok(Self {
            manifest,
            manifest_path: manifest_path.to_path_buf(),
            onnx_path,
            onnx_bytes,
        })
    }
}

impl Manifest {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        self.features.validate()?;
        if self.window.frames == 0 || self.window.frames > 10_000 {
            return bad("window.frames must be in 1..=10000");
        }
        if self.window.hop_frames == 0 || self.window.hop_frames > self.window.frames {
            return bad("window.hop_frames must be in 1..=window.frames");
        }
        if !(0.0..=1.0).contains(&self.window.min_speech_fraction) {
            return bad("window.min_speech_fraction must be in 0..=1");
        }
        if !(0.0..=1.0).contains(&self.vad.max_tonality) {
            return bad("vad.max_tonality must be in 0..=1");
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad("threshold must be strictly between 0 and 1");
        }
        if self.threshold_narrowband.is_some_and(|t| !(t > 0.0 && t < 1.0)) {
            return bad("threshold_narrowband must be strictly between 0 and 1");
        }
        if !(1000..=48_000).contains(&self.narrowband_max_rate_hz) {
            return bad("narrowband_max_rate_hz must be in 1000..=48000");
        }
        if !(self.calibration.scale.is_finite() && self.calibration.bias.is_finite()) {
            return bad("calibration must be finite");
        }
        if !(self.min_speech_s >= 0.0 && self.min_speech_s.is_finite()) {
            return bad("min_speech_s must be >= 0");
        }
        if self.sha256.len() != 64 || !self.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return bad("sha256 must be 64 hex digits");
        }
        Ok(())
    }

    /// The decision threshold for input at `sample_rate_hz`.
    pub fn threshold_for(&self, sample_rate_hz: u32) -> f64 {
        match self.threshold_narrowband {
            Some(t) if sample_rate_hz <= self.narrowband_max_rate_hz => t,
            _ => self.threshold,
        }
    }

    /// Seconds of audio in one window.
    pub fn window_s(&self) -> f64 {
        let f = &self.features;
        ((self.window.frames - 1) * f.hop_len + f.win_len) as f64 / f64::from(f.sample_rate_hz)
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(Error::Manifest {
            path: path.to_path_buf(),
            reason: format!("file is larger than the {limit}-byte limit"),
        });
    }
    Ok(bytes)
}
