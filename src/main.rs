//! The `synthscan` command: parse -> validate -> run -> exit code.
//!
//! Exit codes: 0 = nothing flagged, 1 = something flagged synthetic, 2 = an error (bad usage,
//! unreadable model, or any input that could not be analysed; the other inputs are still
//! analysed and reported).

// One unsafe block below, at the start of `main` (see there); nothing else may use unsafe.
#![deny(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    disable_runtime_telemetry();
    synthscan::audio::install_decoder_panic_hook();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("synthscan: error: {}", cli::fatal_text(&e));
            ExitCode::from(2)
        }
    }
}

/// ONNX Runtime records usage events (process information, OS, CPU, a device id) in a database
/// under the user's cache directory on every run unless `ORT_DISABLE_TELEMETRY` is set when it
/// starts; the ort builder's telemetry switch does not stop that. Nothing may be written or
/// sent, so the variable is set for this process before anything else runs.
#[allow(unsafe_code)]
fn disable_runtime_telemetry() {
    // SAFETY: called first thing in `main`, before any other thread exists, so no thread can
    // read the environment while it changes.
    unsafe { std::env::set_var("ORT_DISABLE_TELEMETRY", "1") };
}
