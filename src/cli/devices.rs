//! `synthscan devices`: the input devices `monitor` can open.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "mic")]
pub fn run(args: DevicesArgs) -> Result<ExitCode> {
    let devices = synthscan::audio::capture::list_input_devices()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(ExitCode::SUCCESS);
    }
    if devices.is_empty() {
        println!("no audio input devices found");
        return Ok(ExitCode::SUCCESS);
    }
    for d in &devices {
        let mark = if d.is_default { "* " } else { "  " };
        println!("{mark}{}  (id: {})", d.name, d.id);
        if let Some(c) = &d.default_config {
            println!(
                "    default: {} Hz, {} ch, {}",
                c.min_rate_hz, c.channels, c.sample_format
            );
        }
        // Devices list every channel count x format separately; fold them per rate range.
        let mut ranges: Vec<(u32, u32, u16, u16, Vec<&str>)> = Vec::new();
        for c in &d.configs {
            match ranges.iter_mut().find(|r| r.0 == c.min_rate_hz && r.1 == c.max_rate_hz) {
                Some(r) => {
                    r.2 = r.2.min(c.channels);
                    r.3 = r.3.max(c.channels);
                    if !r.4.contains(&c.sample_format.as_str()) {
                        r.4.push(&c.sample_format);
                    }
                }
                None => ranges.push((
                    c.min_rate_hz,
                    c.max_rate_hz,
                    c.channels,
                    c.channels,
                    vec![&c.sample_format],
                )),
            }
        }
        for (lo, hi, cmin, cmax, formats) in ranges {
            let chans = if cmin == cmax {
                cmin.to_string()
            } else {
                format!("{cmin}-{cmax}")
            };
            println!("    supports: {lo}-{hi} Hz, {chans} ch, {}", formats.join("/"));
        }
    }
    println!("(* = default; pass a name, id or a unique part of one to `monitor --device`)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "mic"))]
pub fn run(_: DevicesArgs) -> Result<ExitCode> {
    anyhow::bail!("this build has no sound-card support (built without the `mic` feature)")
}
