//! `synthscan analyze`: recorded calls in, scores and verdicts out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use synthscan::report::{self, ErrorReport, FileReport, ModelInfo};
use synthscan::{OnnxScorer, RecordingAnalysis, analyze_recording};

use super::output::{ColorArg, FormatArg, use_color};
use super::{DetectorArgs, RawArgs, input, output};

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Audio files (WAV incl. G.711/ADPCM, FLAC, OGG/Vorbis, MP3); `-` reads raw PCM from stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Draw the score timeline over the waveform (.png or .svg). With several inputs, the
    /// input's name is added to each plot's file name.
    #[cfg(feature = "plot")]
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// ONNX Runtime threads for scoring.
    #[arg(long, value_name = "N", default_value_t = 1)]
    threads: usize,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Analyse files that hold less audio than their header says (recorders killed mid-call,
    /// streamed WAVs with placeholder sizes) instead of refusing them; the report then carries
    /// a warning.
    #[arg(long)]
    allow_truncated: bool,
    /// In packet captures, take only UDP datagrams to or from these ports as RTP (LO-HI or one
    /// port; repeatable), for captures whose signalling is missing or encrypted.
    #[arg(long, value_name = "LO-HI", value_parser = parse_rtp_range)]
    rtp_port: Vec<(u16, u16)>,
    #[command(flatten)]
    detector: DetectorArgs,
    #[command(flatten)]
    raw: RawArgs,
}

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    if args.threads == 0 || args.threads > 256 {
        anyhow::bail!("--threads must be in 1..=256");
    }
    let (model, detector) = args.detector.build()?;
    let mut scorer = OnnxScorer::new(&model, args.threads)?;
    let model_info = ModelInfo::from(&model.manifest);
    let format = args.format.report_format();
    let color = use_color(args.color);
    let mut reporter = report::reporter(format, Box::new(output::Stdout::new()), color);
    reporter.begin()?;
    let (mut flagged, mut errors) = (false, false);
    let ports = synthscan::packet::CaptureOptions {
        ranges: args.rtp_port.clone(),
        max_samples: None,
    };
    for path in &args.files {
        let name = &input::display_name(path);
        if input::is_capture(path) {
            match analyze_capture(
                path,
                name,
                &ports,
                &detector,
                &mut scorer,
                args.threads,
                &model_info,
                reporter.as_mut(),
            ) {
                Ok(any_flagged) => flagged |= any_flagged,
                Err(e) => {
                    errors = true;
                    input_error(reporter.as_mut(), name, &e)?;
                }
            }
            continue;
        }
        let result = input::open(path, &args.raw).and_then(|mut source| {
            analyze_recording(
                &detector,
                source.as_mut(),
                &mut scorer,
                args.threads,
                args.allow_truncated,
            )
        });
        match result {
            Ok(RecordingAnalysis {
                codec,
                analysis,
                warnings,
            }) => {
                flagged |= analysis.is_flagged();
                for w in &warnings {
                    eprintln!("synthscan: {name}: warning: {w}");
                }
                reporter.file(&FileReport::new(name, &codec, &analysis, warnings, model_info.clone()))?;
                #[cfg(feature = "plot")]
                if let Some(plot) = &args.plot {
                    let path = plot_path(plot, name, args.files.len() > 1);
                    report::write_plot(&path, name, &analysis)
                        .with_context(|| format!("cannot draw the plot for {name}"))?;
                }
            }
            Err(e) if e.is_input_error() || matches!(e, synthscan::Error::Config(_)) => {
                errors = true;
                input_error(reporter.as_mut(), name, &e)?;
            }
            Err(e) => return Err(e).with_context(|| format!("while analysing {name}")),
        }
    }
    reporter.finish()?;
    Ok(if errors {
        ExitCode::from(2)
    } else if flagged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn parse_rtp_range(text: &str) -> std::result::Result<(u16, u16), String> {
    synthscan::packet::CaptureOptions::parse_range(text).map_err(|e| e.to_string())
}

/// An input that could not be analysed: one line on standard error, an error record in the report.
fn input_error(reporter: &mut dyn report::Reporter, name: &str, e: &synthscan::Error) -> Result<()> {
    let text = super::error_text(e);
    eprintln!("synthscan: {name}: {text}");
    reporter.error(&ErrorReport {
        file: name.to_string(),
        error: text,
    })?;
    Ok(())
}

/// Every call of a packet capture, one report each; whether any was flagged.
#[allow(clippy::too_many_arguments)]
fn analyze_capture(
    path: &Path,
    name: &str,
    ports: &synthscan::packet::CaptureOptions,
    detector: &synthscan::Detector,
    scorer: &mut OnnxScorer,
    threads: usize,
    model_info: &ModelInfo,
    reporter: &mut dyn report::Reporter,
) -> synthscan::Result<bool> {
    let file = std::fs::File::open(path).map_err(|source| synthscan::Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let calls = synthscan::detect::analyze_capture(detector, file, ports, scorer, threads, None)?;
    let mut flagged = false;
    for call in report::CallReport::for_capture(name, &calls, model_info) {
        flagged |= call.call.verdict == synthscan::Verdict::Synthetic;
        reporter.call(&call)?;
    }
    Ok(flagged)
}

/// `calls.png` + `a/b/x.wav` -> `calls.x.png` when several inputs share one --plot.
#[cfg(feature = "plot")]
fn plot_path(plot: &Path, input: &str, several: bool) -> PathBuf {
    if !several {
        return plot.to_path_buf();
    }
    let stem = Path::new(input)
        .file_stem()
        .map_or_else(|| "stdin".into(), |s| s.to_string_lossy().into_owned());
    let ext = plot
        .extension()
        .map_or("png".into(), |e| e.to_string_lossy().into_owned());
    let base = plot.with_extension("");
    PathBuf::from(format!("{}.{stem}.{ext}", base.display()))
}
