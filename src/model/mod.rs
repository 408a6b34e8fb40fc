//! Scoring: the third stage. Windows of frames in, one logit per window out.
//!
//! A [`LoadedModel`] (manifest + verified ONNX bytes) is shared and immutable; an
//! [`OnnxScorer`] owns an ort session, whose `run` takes `&mut self`, so each worker thread has
//! its own scorer. Anything implementing [`WindowScorer`] can drive the detector, which keeps
//! the detection logic testable without ONNX Runtime.

mod manifest;
pub mod runtime;

pub use manifest::{
    Calibration, IoNames, LoadedModel, Manifest, NARROWBAND_MAX_RATE_HZ, VadConfig, WindowConfig, sha256_hex,
};

use ndarray::ArrayView3;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorRef, ValueType};

use crate::error::{Error, Result};

/// Scores windows. `windows` holds `n` windows of `frames * n_bins` values each (row-major,
/// time first); one logit per window is appended to `logits`.
pub trait WindowScorer {
    fn score_batch(&mut self, windows: &[f32], n: usize, logits: &mut Vec<f32>) -> Result<()>;
}

/// An ONNX Runtime session for one worker.
pub struct OnnxScorer {
    session: Session,
    input: String,
    output: String,
    frames: usize,
    n_bins: usize,
}

impl std::fmt::Debug for OnnxScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxScorer")
            .field("input", &self.input)
            .field("frames", &self.frames)
            .field("n_bins", &self.n_bins)
            .finish_non_exhaustive()
    }
}

fn rt<E: std::fmt::Display>(e: E) -> Error {
    Error::Runtime(e.to_string())
}

impl OnnxScorer {
    /// Builds a session with `intra_threads` threads (1 for a worker in a pool) and checks that
    /// the graph's input and output agree with the manifest.
    pub fn new(model: &LoadedModel, intra_threads: usize) -> Result<Self> {
        let env = runtime::environment()?;
        let m = &model.manifest;
        let session = Session::builder(env)
            .map_err(rt)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(rt)?
            .with_intra_threads(intra_threads.max(1))
            .map_err(rt)?
            .with_inter_threads(1)
            .map_err(rt)?
            .commit_from_memory(&model.onnx_bytes)
            .map_err(|e| Error::Runtime(format!("cannot load {}: {e}", model.onnx_path.display())))?;
        let merr = |reason: String| Error::Manifest {
            path: model.manifest_path.clone(),
            reason,
        };
        let input = session
            .inputs()
            .iter()
            .find(|o| o.name() == m.io.input)
            .ok_or_else(|| merr(format!("the model has no input named {:?}", m.io.input)))?;
        if let ValueType::Tensor { shape, .. } = input.dtype() {
            let dims: Vec<i64> = shape.iter().copied().collect();
            let want = [m.window.frames as i64, m.features.n_bins as i64];
            if dims.len() != 3 || (dims[1] > 0 && dims[1] != want[0]) || (dims[2] > 0 && dims[2] != want[1]) {
                return Err(merr(format!(
                    "the model's input {:?} has shape {dims:?}, but the manifest describes windows of [batch, {}, {}]",
                    m.io.input, want[0], want[1]
                )));
            }
        }
        if !session.outputs().iter().any(|o| o.name() == m.io.output) {
            return Err(merr(format!("the model has no output named {:?}", m.io.output)));
        }
        Ok(Self {
            input: m.io.input.clone(),
            output: m.io.output.clone(),
            frames: m.window.frames,
            n_bins: m.features.n_bins,
            session,
        })
    }
}

impl WindowScorer for OnnxScorer {
    fn score_batch(&mut self, windows: &[f32], n: usize, logits: &mut Vec<f32>) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let view = ArrayView3::from_shape((n, self.frames, self.n_bins), windows)
            .map_err(|e| Error::Runtime(format!("window batch has the wrong size: {e}")))?;
        let tensor = TensorRef::from_array_view(view).map_err(rt)?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(rt)?;
        let out = outputs[self.output.as_str()].try_extract_array::<f32>().map_err(rt)?;
        if out.len() != n {
            return Err(Error::Runtime(format!(
                "the model returned {} values for {n} windows",
                out.len()
            )));
        }
        logits.extend(out.iter().copied());
        Ok(())
    }
}
