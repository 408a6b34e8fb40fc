//! The library's one error type, grouped by pipeline stage.
//!
//! Every variant carries enough context to print one clear sentence. Errors that concern a single
//! input (decode, limits) are recoverable by the caller: a batch reports them and moves on. Model
//! and runtime errors are fatal for the process.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in synthscan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- ingestion (recoverable: one input is bad, the next may be fine) ---
    /// The input could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input is empty.
    #[error("the input is empty (0 bytes)")]
    EmptyInput,
    /// No decoder recognised the content.
    #[error("unsupported or unrecognised audio format: {0}")]
    UnsupportedFormat(String),
    /// The container or stream is corrupt.
    #[error("corrupt audio data: {0}")]
    Corrupt(String),
    /// The stream's parameters are outside what synthscan accepts (hostile or broken headers).
    #[error("audio parameter out of range: {0}")]
    Limit(String),
    /// The decoded audio contains NaN or infinite samples.
    #[error("the audio contains non-finite samples (NaN or infinity) at sample {sample_index}")]
    NonFiniteSample { sample_index: u64 },
    /// A float sample is finite but absurdly far outside [-1, 1].
    #[error("sample {sample_index} has the value {value:e}, far outside the audio range [-1, 1]")]
    SampleOutOfRange { sample_index: u64, value: f32 },
    /// A live input device could not be found, opened or kept running.
    #[error("audio device: {0}")]
    Device(String),
    /// The device offers only a sample format the capture cannot convert; another can be asked for.
    #[error("audio device: the device's sample format {0} is not supported; ask the device for another one")]
    UnsupportedSampleFormat(String),
    /// The file holds less audio than its header promises (cut short, or sizes that lie);
    /// refused unless the caller allows truncated input.
    #[error("{0}; refusing a truncated file")]
    Truncated(String),
    /// The resampler could not be built or run.
    #[error("resampling failed: {0}")]
    Resample(String),

    // --- configuration and model (fatal) ---
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The service was asked to listen beyond loopback without a token.
    #[error("invalid configuration: refusing to listen on {0} without a token: give one, or bind to 127.0.0.1")]
    TokenRequired(std::net::SocketAddr),
    /// The model manifest is missing, malformed or inconsistent.
    #[error("model manifest {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// The ONNX file does not match the sha256 recorded in its manifest.
    #[error(
        "model {path} does not match its manifest: sha256 is {actual}, manifest says {expected}; \
         the model was modified or the manifest belongs to another model"
    )]
    ModelHashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("{0}")]
    RuntimeLibrary(String),
    /// ONNX Runtime reported an error while loading or running the model.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),

    // --- output ---
    /// The input holds more audio than the caller accepts (a service's upload limit).
    #[error("the audio is too long: {0}")]
    TooMuchAudio(String),

    /// The analysis ran past the time the caller gives one input.
    #[error("the analysis took too long: {0}")]
    TooSlow(String),

    /// Writing a report, feature file or plot failed.
    #[error("cannot write {what}: {reason}")]
    Output { what: String, reason: String },
}

impl Error {
    /// Whether the error concerns one input only (so a batch may continue with the next).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Error::Io { .. }
                | Error::EmptyInput
                | Error::UnsupportedFormat(_)
                | Error::Corrupt(_)
                | Error::Limit(_)
                | Error::NonFiniteSample { .. }
                | Error::SampleOutOfRange { .. }
                | Error::Truncated(_)
                | Error::Resample(_)
                | Error::TooMuchAudio(_)
                | Error::TooSlow(_)
        )
    }
}
