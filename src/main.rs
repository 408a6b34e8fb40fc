//! The `synthscan` command: parse -> validate -> run -> exit code.
//!
//! Exit codes: 0 = nothing flagged, 1 = something flagged synthetic, 2 = an error (bad usage,
//! unreadable model, or any input that could not be analysed; the other inputs are still
//! analysed and reported).

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    synthscan::audio::install_decoder_panic_hook();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("synthscan: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
