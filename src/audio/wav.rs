//! WAV files with more channels than symphonia's channel map holds (19-64: microphone arrays,
//! multitrack call recorders). symphonia describes channels as speaker positions, so beyond 18
//! it refuses the file, or for some counts (65 and up in WAVE_FORMAT_EXTENSIBLE) reads a wrong,
//! smaller count and would give a confident answer about the wrong audio. The header is read
//! here first: the channel count it states is the truth every decoder must agree with.

use std::io::Read;

use super::{AudioChunk, check_finite};
use crate::error::{Error, Result};

/// The most channels symphonia reads correctly, plain and extensible (checked for 1-64).
pub(crate) const SYMPHONIA_MAX_CHANNELS: usize = 18;

/// Bytes read ahead to find the `fmt ` chunk (after JUNK, bext or LIST chunks).
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// What a WAV header's `fmt ` chunk says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WavFormat {
    pub channels: usize,
    /// 1 PCM, 3 IEEE float, 6 A-law, 7 mu-law, ... (the subformat's tag for EXTENSIBLE).
    pub format_tag: u16,
    pub bits_per_sample: u16,
}

const WAVE_FORMAT_PCM: u16 = 1;
const WAVE_FORMAT_IEEE_FLOAT: u16 = 3;
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the `fmt ` chunk of a RIFF/RF64 WAVE file from its first bytes; `None` when the data
/// is not WAVE or the chunk is not among them.
pub(crate) fn sniff(prefix: &[u8]) -> Option<WavFormat> {
    let magic = prefix.get(0..4)?;
    if !matches!(magic, b"RIFF" | b"RF64" | b"BW64") || prefix.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    while at + 8 <= prefix.len() {
        let id = &prefix[at..at + 4];
        let size = u32_at(prefix, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            let mut format_tag = u16_at(prefix, body)?;
            let channels = usize::from(u16_at(prefix, body + 2)?);
            let bits_per_sample = u16_at(prefix, body + 14)?;
            if format_tag == WAVE_FORMAT_EXTENSIBLE && size >= 40 {
                // the subformat GUID starts with the plain format tag
                format_tag = u16_at(prefix, body + 24)?;
            }
            return Some(WavFormat {
                channels,
                format_tag,
                bits_per_sample,
            });
        }
        // chunks are padded to an even size
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// Decodes a PCM or float WAV of any channel count with hound.
pub(crate) struct WideWav {
    reader: hound::WavReader<Box<dyn Read + Send + Sync>>,
    scale: f32,
    float: bool,
    channels: usize,
}

/// Frames per chunk (about 0.5 s at 8 kHz; a 64-channel chunk is 1 MiB of f32).
const CHUNK_FRAMES: usize = 4096;

impl WideWav {
    pub fn new(source: Box<dyn Read + Send + Sync>, format: WavFormat) -> Result<Self> {
        let supported = match format.format_tag {
            WAVE_FORMAT_PCM => matches!(format.bits_per_sample, 8 | 16 | 24 | 32),
            WAVE_FORMAT_IEEE_FLOAT => format.bits_per_sample == 32,
            _ => false,
        };
        if !supported {
            return Err(Error::UnsupportedFormat(format!(
                "a {}-channel WAV must hold 8/16/24/32-bit integer or 32-bit float PCM \
                 (this one: format tag {}, {} bits); up to {SYMPHONIA_MAX_CHANNELS} channels every WAV codec is read",
                format.channels, format.format_tag, format.bits_per_sample
            )));
        }
        let reader = hound::WavReader::new(source).map_err(map_hound)?;
        let spec = reader.spec();
        if usize::from(spec.channels) != format.channels {
            return Err(Error::Corrupt(format!(
                "the WAV header states {} channels in one place and {} in another",
                format.channels, spec.channels
            )));
        }
        Ok(Self {
            scale: 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32,
            float: spec.sample_format == hound::SampleFormat::Float,
            channels: format.channels,
            reader,
        })
    }

    pub fn sample_rate_hz(&self) -> u32 {
        self.reader.spec().sample_rate
    }

    /// Frames per channel the data chunk holds, by its size.
    pub fn total_frames(&self) -> u64 {
        u64::from(self.reader.duration())
    }

    pub fn codec(&self) -> String {
        let spec = self.reader.spec();
        match spec.sample_format {
            hound::SampleFormat::Float => "wave/pcm_f32le".into(),
            hound::SampleFormat::Int if spec.bits_per_sample == 8 => "wave/pcm_u8".into(),
            hound::SampleFormat::Int => format!("wave/pcm_s{}le", spec.bits_per_sample),
        }
    }

    /// The next chunk of whole frames starting at frame `start`; `Ok((None, ended_early))` at
    /// the end, `ended_early` when the data stopped before the size the header states.
    pub fn next_chunk(&mut self, start: u64) -> Result<(Option<AudioChunk>, bool)> {
        let want = CHUNK_FRAMES * self.channels;
        let mut samples = Vec::with_capacity(want);
        let ended_early = if self.float {
            read_into(self.reader.samples::<f32>(), want, |v| v, &mut samples)?
        } else {
            let scale = self.scale;
            read_into(self.reader.samples::<i32>(), want, |v| v as f32 * scale, &mut samples)?
        };
        // a frame cut in the middle is dropped, as symphonia drops it
        samples.truncate(samples.len() - samples.len() % self.channels);
        if samples.is_empty() {
            return Ok((None, ended_early));
        }
        check_finite(&samples, start * self.channels as u64)?;
        let chunk = AudioChunk {
            samples,
            channels: self.channels,
            sample_rate_hz: self.sample_rate_hz(),
            start_sample: start,
        };
        Ok((Some(chunk), ended_early))
    }
}

/// Reads up to `want` samples into `out`, converted; whether the data ended before the size
/// its header states.
fn read_into<T>(
    samples: impl Iterator<Item = hound::Result<T>>,
    want: usize,
    convert: impl Fn(T) -> f32,
    out: &mut Vec<f32>,
) -> Result<bool> {
    for s in samples.take(want) {
        match s {
            Ok(v) => out.push(convert(v)),
            Err(e) if is_eof(&e) => return Ok(true),
            Err(e) => return Err(map_hound(e)),
        }
    }
    Ok(false)
}

fn is_eof(e: &hound::Error) -> bool {
    matches!(e, hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
}

fn map_hound(e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(io) => Error::Corrupt(format!("read error inside the stream: {io}")),
        hound::Error::FormatError(what) => Error::Corrupt(format!("WAV header: {what}")),
        hound::Error::Unsupported => Error::UnsupportedFormat("a WAV layout hound does not read".into()),
        other => Error::Corrupt(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_finds_fmt_after_other_chunks_and_reads_the_extensible_subformat() {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        b.extend_from_slice(b"JUNK\x03\0\0\0abc\0"); // odd size, padded
        b.extend_from_slice(b"fmt \x28\0\0\0");
        b.extend_from_slice(&0xFFFEu16.to_le_bytes());
        b.extend_from_slice(&80u16.to_le_bytes());
        b.extend_from_slice(&[0; 10]);
        b.extend_from_slice(&24u16.to_le_bytes());
        b.extend_from_slice(&22u16.to_le_bytes());
        b.extend_from_slice(&[0; 6]);
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&[0; 14]);
        assert_eq!(
            sniff(&b),
            Some(WavFormat {
                channels: 80,
                format_tag: 3,
                bits_per_sample: 24
            })
        );
        assert_eq!(sniff(b"OggS\0\0\0\0\0\0\0\0\0\0\0\0"), None);
        assert_eq!(sniff(&b[..20]), None);
    }
}
