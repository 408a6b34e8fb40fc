//! Opening inputs named on the command line: files by content sniffing, `-` as raw stdin.

use std::path::Path;

use synthscan::{AudioSource, FileSource, RawFormat, RawSource};

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
