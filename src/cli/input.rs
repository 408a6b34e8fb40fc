//! Opening inputs named on the command line: files by content sniffing, `-` as raw stdin.

use std::path::Path;

use synthscan::{Analysis, AudioSource, Detector, FileSource, RawFormat, RawSource, WindowScorer, analyze_source};

use super::{RawArgs, RawFormatArg};

/// Opens `name` as an audio source. `-` reads headerless PCM from standard input.
pub fn open(name: &str, raw: &RawArgs) -> synthscan::Result<Box<dyn AudioSource>> {
    if name == "-" {
        return Ok(Box::new(open_stdin(raw)?));
    }
    Ok(Box::new(FileSource::open(Path::new(name))?))
}

/// Raw PCM from standard input, as described by the --raw-* options.
pub fn open_stdin(raw: &RawArgs) -> synthscan::Result<RawSource<std::io::Stdin>> {
    let (Some(format), Some(rate)) = (raw.raw_format, raw.raw_rate) else {
        return Err(synthscan::Error::Config(
            "reading '-' (standard input) needs --raw-format and --raw-rate".into(),
        ));
    };
    let format = match format {
        RawFormatArg::S16le => RawFormat::S16le,
        RawFormatArg::Ulaw => RawFormat::Ulaw,
        RawFormatArg::Alaw => RawFormat::Alaw,
    };
    RawSource::new(std::io::stdin(), format, rate, raw.raw_channels)
}

/// Windows per model call and ONNX Runtime thread when analysing files. 8 runs as fast as 32 on one
/// core and peaks ~15 MB lower, because the runtime's activation buffers grow with the batch
/// (BENCHMARKS.md); a scorer with more threads gets a larger batch to share out.
pub const BATCH_WINDOWS_PER_THREAD: usize = 8;

/// Analyses a whole source; returns its codec, the analysis and its warnings. Unless
/// `allow_truncated`, a source that ended before its header said is an error.
pub fn analyze(
    source: &mut dyn AudioSource,
    detector: &Detector,
    scorer: &mut dyn WindowScorer,
    batch_windows: usize,
    allow_truncated: bool,
) -> synthscan::Result<(String, Analysis, Vec<String>)> {
    let codec = source.info().codec.clone();
    let analysis = analyze_source(detector, source, scorer, batch_windows)?;
    if !allow_truncated {
        source.check_complete()?;
    }
    Ok((codec, analysis, source.warnings()))
}
