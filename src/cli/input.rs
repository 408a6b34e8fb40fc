//! Opening inputs named on the command line: files by content sniffing, `-` as raw stdin.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;

use synthscan::{AudioSource, FileSource, RawFormat, RawSource};

use super::{RawArgs, RawFormatArg};

/// Opens `path` as an audio source. `-` reads headerless PCM from standard input.
pub fn open(path: &Path, raw: &RawArgs) -> synthscan::Result<Box<dyn AudioSource>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(open_stdin(raw)?));
    }
    Ok(Box::new(FileSource::open(path)?))
}

/// Whether `path` is a packet capture (pcap or pcapng), by its first bytes.
pub fn is_capture(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return false;
    }
    // only a regular file: reading the start of a pipe would take it from the decoder
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| {
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            std::io::Read::read_exact(&mut f, &mut magic)
        })
        .is_ok_and(|()| synthscan::packet::is_capture(&magic))
}

/// A path as reports print it: lossily where it is not UTF-8 (the file itself is opened by its
/// real name).
pub fn display_name(path: &Path) -> String {
    path.to_string_lossy().into_owned()
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

/// The paths of a list file (`-`: standard input), one a line, as `batch --from-list` and
/// `features --from-list` read them: as bytes, so a name that is not UTF-8 is still opened by
/// its real name; a trailing CR is dropped, blank lines and `#` comments are skipped. Lazy, so
/// a list of millions streams.
pub fn list_paths(list: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<PathBuf>>> {
    let reader: Box<dyn Read> = if list.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(list).with_context(|| format!("cannot read the list {}", list.display()))?)
    };
    Ok(BufReader::new(reader).split(b'\n').filter_map(|line| {
        let mut line = match line.context("cannot read the input list") {
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return None;
        }
        Some(Ok(path_from_bytes(line)))
    }))
}

/// A path's bytes as a path (on Unix exactly; elsewhere lists are UTF-8).
fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}
