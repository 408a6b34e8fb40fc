//! Command-line front end: one module per subcommand. Nothing here is used by the library.

mod analyze;
mod batch;
mod devices;
mod features;
mod info;
mod input;
mod monitor;
mod output;
#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "serve")]
mod siprec;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use synthscan::model::{LoadedModel, runtime};
use synthscan::{Detector, LivePolicy};

/// Detects synthetic (machine-generated) speech in phone calls and recordings, locally.
#[derive(Debug, Parser)]
#[command(name = "synthscan", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse recorded calls: how likely is the speech in each to be synthetic, and where.
    Analyze(analyze::AnalyzeArgs),
    /// Analyse many recorded calls in parallel (directories, lists), streaming results.
    Batch(batch::BatchArgs),
    /// Watch a live input (sound card or raw stdin) and warn within seconds of synthetic speech.
    Monitor(monitor::MonitorArgs),
    /// Serve scoring over HTTP and WebSocket (files and live call audio) for call-centre pipelines.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// Record calls a session border controller or PBX forks with SIPREC, and score each
    /// participant's voice live.
    #[cfg(feature = "serve")]
    Siprec(siprec::SiprecArgs),
    /// List the audio input devices `monitor` can listen to.
    Devices(devices::DevicesArgs),
    /// Write the exact features the model sees to .npy files (for training and inspection).
    Features(features::FeaturesArgs),
    /// Show the model card summary, the model's sha256 and the ONNX Runtime in use.
    Info(info::InfoArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

/// Options shared by every subcommand that loads the model.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model manifest (JSON beside the .onnx). Default: $SYNTHSCAN_MODEL, else the shipped
    /// models/synthscan.json in a parent folder of the executable, else in the current folder.
    #[arg(long, value_name = "MANIFEST")]
    model: Option<PathBuf>,
    /// ONNX Runtime shared library (default: $ORT_DYLIB_PATH, next to the executable, .ort/).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
}

impl ModelArgs {
    fn manifest_path(&self) -> PathBuf {
        if let Some(p) = &self.model {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("SYNTHSCAN_MODEL") {
            return PathBuf::from(p);
        }
        let rel = PathBuf::from("models").join("synthscan.json");
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(PathBuf::from)) {
            for dir in exe_dir.ancestors().take(4) {
                let p = dir.join(&rel);
                if p.is_file() {
                    return p;
                }
            }
        }
        rel
    }

    /// Loads and verifies the manifest and model (and points the runtime at --ort-lib).
    fn load(&self) -> Result<LoadedModel> {
        if let Some(p) = &self.ort_lib {
            runtime::set_library_path(p.clone());
        }
        let path = self.manifest_path();
        LoadedModel::load(&path).with_context(|| {
            format!(
                "cannot load the model {} (--model or $SYNTHSCAN_MODEL names another)",
                path.display()
            )
        })
    }
}

/// What a user of this command can do about a library error, when a flag is the answer.
fn hint(e: &synthscan::Error) -> Option<&'static str> {
    match e {
        synthscan::Error::Truncated(_) => Some("--allow-truncated analyses what is there"),
        synthscan::Error::RuntimeLibrary(_) => Some("or name the library with --ort-lib"),
        synthscan::Error::UnsupportedSampleFormat(_) => {
            Some("--sample-format, --rate and --channels ask the device for other settings")
        }
        synthscan::Error::TokenRequired(_) => Some("--token or $SYNTHSCAN_TOKEN sets one"),
        _ => None,
    }
}

/// A library error as the command line reports it: its sentence, and the flag that helps.
pub fn error_text(e: &synthscan::Error) -> String {
    match hint(e) {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

/// An error that ends the command, with the hint of the library error behind it if any.
pub fn fatal_text(e: &anyhow::Error) -> String {
    match e
        .chain()
        .find_map(|c| c.downcast_ref::<synthscan::Error>())
        .and_then(hint)
    {
        Some(h) => format!("{e:#} ({h})"),
        None => format!("{e:#}"),
    }
}

/// The model and the decision threshold: every subcommand that scores audio takes these.
#[derive(Debug, Args, Clone)]
pub struct DetectorArgs {
    /// Probability at or above which speech is called synthetic, for every input rate (default:
    /// the model's, one for wideband input and one for input at <= 8 kHz).
    #[arg(long, value_name = "P")]
    threshold: Option<f64>,
    #[command(flatten)]
    model: ModelArgs,
}

impl DetectorArgs {
    /// Loads and verifies the model, and builds its detector with --threshold applied.
    fn build(&self) -> Result<(LoadedModel, Detector)> {
        let model = self.model.load()?;
        let mut detector = Detector::new(model.manifest.clone())?;
        if let Some(t) = self.threshold {
            detector = detector.with_threshold(t)?;
        }
        Ok((model, detector))
    }
}

/// The live update and alert policy of `monitor` and `serve`.
#[derive(Debug, Args, Clone)]
pub struct AlertArgs {
    /// Milliseconds of audio between two score updates.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    update_ms: u32,
    /// Seconds of recent windows averaged into the live score that raises alerts.
    #[arg(long, value_name = "S", default_value_t = LivePolicy::default().smoothing_s)]
    smoothing_seconds: f64,
    /// Seconds the live score must stay at or above the threshold before an alert is raised:
    /// longer means fewer false alarms on genuine callers and later alerts on synthetic ones.
    #[arg(long, value_name = "S", default_value_t = LivePolicy::default().raise_hold_s)]
    alert_hold_seconds: f64,
    /// How far (in probability) above the threshold the live score must be to raise an alert;
    /// 0 raises at the threshold itself.
    #[arg(long, value_name = "P", default_value_t = LivePolicy::default().raise_margin)]
    alert_margin: f64,
}

impl AlertArgs {
    /// The policy these options describe, checked, so that a bad value stops the command
    /// before any audio is read.
    fn policy(&self) -> Result<LivePolicy> {
        if !(10..=10_000).contains(&self.update_ms) {
            bail!("--update-ms must be in 10..=10000");
        }
        let policy = LivePolicy {
            update_interval_s: f64::from(self.update_ms) / 1e3,
            smoothing_s: self.smoothing_seconds,
            raise_hold_s: self.alert_hold_seconds,
            raise_margin: self.alert_margin,
            ..LivePolicy::default()
        };
        policy.validate()?;
        Ok(policy)
    }
}

/// Raw headerless input options (for `-`, standard input, or `--raw` files).
#[derive(Debug, Args, Clone)]
pub struct RawArgs {
    /// Sample encoding of headerless input (required when a FILE is `-`).
    #[arg(long, value_enum, value_name = "FORMAT")]
    raw_format: Option<RawFormatArg>,
    /// Sample rate of headerless input, in Hz.
    #[arg(long, value_name = "HZ")]
    raw_rate: Option<u32>,
    /// Interleaved channels in headerless input.
    #[arg(long, value_name = "N", default_value_t = 1)]
    raw_channels: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RawFormatArg {
    S16le,
    Ulaw,
    Alaw,
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Devices(args) => devices::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        #[cfg(feature = "serve")]
        Command::Siprec(args) => siprec::run(args),
        Command::Features(args) => features::run(args),
        Command::Info(args) => info::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "synthscan", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
