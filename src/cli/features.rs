//! `synthscan features`: the exact frames the model sees, as .npy, so the training pipeline
//! learns from what inference computes.
//!
//! For each input (and each channel of a multi-channel input) it writes
//! `<out>/<stem>[.chN].features.npy` (float32, [frames, n_bins]) and
//! `<out>/<stem>[.chN].speech.npy` (uint8, [frames], 1 where the voice gate saw speech), made
//! by the same [`FrontEnd`] the detector runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use ndarray::{Array1, Array2};
use ndarray_npy::write_npy;

use synthscan::detect::FrontEnd;
use synthscan::{LoadedModel, Manifest};

use super::{ModelArgs, RawArgs, input};

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Audio files; `-` reads raw PCM from stdin.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Read more input paths from this file, one per line (`-` for stdin).
    #[arg(long, value_name = "LIST")]
    from_list: Option<PathBuf>,
    /// Directory for the .npy files.
    #[arg(long, short, value_name = "DIR")]
    out_dir: PathBuf,
    /// Take feature parameters from this manifest without loading its ONNX file (for training a
    /// new model whose .onnx does not exist yet).
    #[arg(long, value_name = "MANIFEST", conflicts_with = "model")]
    feature_config: Option<PathBuf>,
    /// Name outputs by the input's path relative to this directory (slashes become `__`)
    /// instead of by the file stem, so inputs from different folders cannot collide.
    #[arg(long, value_name = "DIR")]
    relative_to: Option<PathBuf>,
    /// Also write `<stem>.energy.npy` (float32 frame energy in dBFS, what the gate sees).
    #[arg(long)]
    energy: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    raw: RawArgs,
}

pub fn run(args: FeaturesArgs) -> Result<ExitCode> {
    let manifest: Manifest = match &args.feature_config {
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let m: Manifest =
                serde_json::from_slice(&text).with_context(|| format!("{} is not a valid manifest", p.display()))?;
            m.validate()?;
            m
        }
        None => LoadedModel::load(&args.model.manifest_path())?.manifest,
    };
    let mut names = args.files.clone();
    if let Some(list) = &args.from_list {
        for p in input::list_paths(list)? {
            names.push(p?);
        }
    }
    if names.is_empty() {
        anyhow::bail!("no input files (give FILEs or --from-list)");
    }
    std::fs::create_dir_all(&args.out_dir).with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let mut errors = false;
    for path in &names {
        if let Err(e) = one(path, &args, &manifest) {
            errors = true;
            eprintln!("synthscan: {}: {e:#}", input::display_name(path));
        }
    }
    Ok(if errors { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

fn out_stem(p: &Path, relative_to: Option<&Path>) -> String {
    if p.as_os_str() == "-" {
        return "stdin".into();
    }
    match relative_to.and_then(|base| p.strip_prefix(base).ok()) {
        Some(rel) => rel.with_extension("").to_string_lossy().replace(['/', '\\'], "__"),
        None => p
            .file_stem()
            .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned()),
    }
}

fn one(path: &Path, args: &FeaturesArgs, m: &Manifest) -> Result<()> {
    let mut source = input::open(path, &args.raw)?;
    let info = source.info().clone();
    let n_bins = m.features.n_bins;
    let mut chans = (0..info.channels)
        .map(|_| FrontEnd::new(m, info.sample_rate_hz))
        .collect::<synthscan::Result<Vec<_>>>()?;
    let mut feats: Vec<Vec<f32>> = vec![Vec::new(); info.channels];
    let mut speech: Vec<Vec<u8>> = vec![Vec::new(); info.channels];
    let mut energy: Vec<Vec<f32>> = vec![Vec::new(); info.channels];
    let mut one_channel = Vec::new();
    let mut collect = |c: usize, front: &FrontEnd| {
        feats[c].extend_from_slice(&front.frames.features);
        speech[c].extend(front.speech.iter().map(|&s| u8::from(s)));
        energy[c].extend_from_slice(&front.frames.energy_db);
    };
    while let Some(chunk) = source.next_chunk()? {
        for (c, front) in chans.iter_mut().enumerate() {
            chunk.channel_into(c, &mut one_channel);
            front.push(&one_channel, false)?;
            collect(c, front);
        }
    }
    for (c, front) in chans.iter_mut().enumerate() {
        front.push(&[], true)?;
        collect(c, front);
    }
    let stem = out_stem(path, args.relative_to.as_deref());
    for c in 0..info.channels {
        let n_frames = speech[c].len();
        let suffix = if info.channels > 1 {
            format!(".ch{c}")
        } else {
            String::new()
        };
        let base = args.out_dir.join(format!("{stem}{suffix}")).display().to_string();
        let f = Array2::from_shape_vec((n_frames, n_bins), std::mem::take(&mut feats[c]))?;
        write(&format!("{base}.features.npy"), &f)?;
        write(
            &format!("{base}.speech.npy"),
            &Array1::from(std::mem::take(&mut speech[c])),
        )?;
        if args.energy {
            write(
                &format!("{base}.energy.npy"),
                &Array1::from(std::mem::take(&mut energy[c])),
            )?;
        }
    }
    Ok(())
}

fn write<A: ndarray_npy::WritableElement, D: ndarray::Dimension>(
    path: &str,
    array: &ndarray::Array<A, D>,
) -> Result<()> {
    write_npy(path, array).with_context(|| format!("cannot write {path}"))
}
