//! synthscan: a local, CPU-only detector of synthetic speech in phone calls.
//!
//! The pipeline has four stages, one module each:
//! [`audio`] (decode, resample) -> [`features`] (STFT, log filterbank) -> [`model`] (ONNX
//! scoring of windows) -> [`detect`] (voice gating, windows, aggregation, verdicts), and
//! [`report`] turns the result into text, JSON, JSON Lines, CSV or a plot. The library never
//! knows about the command line.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod audio;
pub mod detect;
pub mod error;
pub mod features;
pub mod model;
pub mod packet;
pub mod report;
#[cfg(feature = "serve")]
pub mod service;

pub use audio::{AudioChunk, AudioSource, FileSource, RawFormat, RawSource, StreamInfo};
pub use detect::{
    Analysis, Detector, LiveEvent, LivePolicy, LiveStream, RecordingAnalysis, StreamDetector, Verdict, WindowScore,
    analyze_recording, analyze_source,
};
pub use error::{Error, Result};
pub use features::{FeatureConfig, FeatureExtractor, FrameBatch};
pub use model::{LoadedModel, Manifest, OnnxScorer, WindowScorer};
pub use report::{ErrorReport, FileReport, Format, ModelInfo, Reporter};
