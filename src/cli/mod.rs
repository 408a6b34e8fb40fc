//! Command-line front end: one module per subcommand. Nothing here is used by the library.

mod analyze;
mod batch;
mod devices;
mod features;
mod info;
mod input;
mod monitor;
mod output;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use synthscan::model::{LoadedModel, runtime};

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
    Serve(serve::ServeArgs),
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
    /// models/synthscan.json.
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
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    /// Loads and verifies the manifest and model (and points the runtime at --ort-lib).
    fn load(&self) -> Result<LoadedModel> {
        if let Some(p) = &self.ort_lib {
            runtime::set_library_path(p.clone());
        }
        let path = self.manifest_path();
        LoadedModel::load(&path).with_context(|| format!("cannot load the model {}", path.display()))
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
        Command::Serve(args) => serve::run(args),
        Command::Features(args) => features::run(args),
        Command::Info(args) => info::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "synthscan", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
