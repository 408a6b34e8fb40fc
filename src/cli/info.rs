//! `synthscan info`: what model is in use and what it claims.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use synthscan::OnnxScorer;
use synthscan::model::runtime;

use super::ModelArgs;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: InfoArgs) -> Result<ExitCode> {
    let model = args.model.load()?;
    // Building a session proves the runtime loads and the graph matches the manifest.
    let _scorer = OnnxScorer::new(&model, 1)?;
    let m = &model.manifest;
    if args.json {
        println!("{}", serde_json::to_string_pretty(m)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = &m.features;
    println!("synthscan {}", env!("CARGO_PKG_VERSION"));
    println!("model      {} {}", m.name, m.version);
    if !m.description.is_empty() {
        println!("           {}", m.description);
    }
    println!("manifest   {}", model.manifest_path.display());
    println!(
        "onnx       {} ({} bytes)",
        model.onnx_path.display(),
        model.onnx_bytes.len()
    );
    println!("sha256     {} (verified)", m.sha256.to_lowercase());
    println!(
        "features   {} Hz, {}-point FFT, {} ms window, {} ms hop, {} {:?} bins {}-{} Hz",
        f.sample_rate_hz,
        f.n_fft,
        f.win_len * 1000 / f.sample_rate_hz as usize,
        f.hop_len * 1000 / f.sample_rate_hz as usize,
        f.n_bins,
        f.filterbank,
        f.f_min_hz,
        f.f_max_hz
    );
    println!(
        "windows    {} frames ({:.2} s), every {} frames ({:.2} s); scored when >= {:.0}% speech",
        m.window.frames,
        m.window_s(),
        m.window.hop_frames,
        m.window.hop_frames as f64 * f.hop_s(),
        m.window.min_speech_fraction * 100.0
    );
    let narrowband = match m.threshold_narrowband {
        Some(t) => format!(" ({t:.3} for input at <= {} Hz)", m.narrowband_max_rate_hz),
        None => String::new(),
    };
    println!(
        "decision   threshold {:.3}{narrowband}, calibration p = sigmoid({} * logit + {}), at least {:.1} s speech",
        m.threshold, m.calibration.scale, m.calibration.bias, m.min_speech_s
    );
    if let Some(p) = runtime::library_path() {
        println!("runtime    ONNX Runtime from {}", p.display());
    }
    if !m.training.is_null() {
        println!(
            "training   {}",
            serde_json::to_string_pretty(&m.training)?.replace('\n', "\n           ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
