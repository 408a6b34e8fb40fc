//! Headerless PCM from any reader (stdin pipes from `arecord`, `sox`, SIP tools).

use std::io::Read;

use super::{AudioChunk, AudioSource, StreamInfo, alaw_to_f32, check_stream_limits, ulaw_to_f32};
use crate::error::{Error, Result};

/// Sample encodings accepted for raw input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFormat {
    /// Signed 16-bit little-endian PCM.
    S16le,
    /// G.711 mu-law, one byte per sample.
    Ulaw,
    /// G.711 A-law, one byte per sample.
    Alaw,
}

impl RawFormat {
    fn bytes_per_sample(self) -> usize {
        match self {
            RawFormat::S16le => 2,
            RawFormat::Ulaw | RawFormat::Alaw => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RawFormat::S16le => "raw s16le",
            RawFormat::Ulaw => "raw mu-law",
            RawFormat::Alaw => "raw A-law",
        }
    }
}

/// Frames per chunk read from a raw stream (20 ms at 8 kHz is 160; this is 128 ms at 8 kHz).
const RAW_CHUNK_FRAMES: usize = 1024;

/// Decodes a raw PCM byte stream.
pub struct RawSource<R: Read> {
    reader: R,
    format: RawFormat,
    info: StreamInfo,
    bytes: Vec<u8>,
    /// Bytes at the front of `bytes` left over from the last read (a partial frame).
    carried: usize,
    next_frame: u64,
    done: bool,
}

impl<R: Read> RawSource<R> {
    pub fn new(reader: R, format: RawFormat, sample_rate_hz: u32, channels: usize) -> Result<Self> {
        check_stream_limits(sample_rate_hz, channels)?;
        let frame_bytes = format.bytes_per_sample() * channels;
        Ok(Self {
            reader,
            format,
            info: StreamInfo {
                sample_rate_hz,
                channels,
                codec: format.name().to_string(),
                total_frames: None,
            },
            bytes: vec![0; RAW_CHUNK_FRAMES * frame_bytes],
            carried: 0,
            next_frame: 0,
            done: false,
        })
    }
}

impl<R: Read> AudioSource for RawSource<R> {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_chunk(&mut self) -> Result<Option<AudioChunk>> {
        if self.done {
            return Ok(None);
        }
        let frame_bytes = self.format.bytes_per_sample() * self.info.channels;
        let mut filled = self.carried;
        // Fill the buffer, but hand over what a pipe has delivered as soon as one read returns
        // whole frames, so live streams are not delayed until a full buffer arrives.
        while filled < frame_bytes || (!filled.is_multiple_of(frame_bytes) && filled < self.bytes.len()) {
            match self.reader.read(&mut self.bytes[filled..]) {
                Ok(0) => {
                    self.done = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: "-".into(),
                        source,
                    });
                }
            }
        }
        let whole = filled - filled % frame_bytes;
        // A trailing partial frame at the end of the stream is not a sample: it is dropped.
        if whole == 0 {
            self.done = true;
            return Ok(None);
        }
        let samples: Vec<f32> = match self.format {
            RawFormat::S16le => self.bytes[..whole]
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                .collect(),
            RawFormat::Ulaw => self.bytes[..whole].iter().map(|&b| ulaw_to_f32(b)).collect(),
            RawFormat::Alaw => self.bytes[..whole].iter().map(|&b| alaw_to_f32(b)).collect(),
        };
        self.bytes.copy_within(whole..filled, 0);
        self.carried = filled - whole;
        let chunk = AudioChunk {
            channels: self.info.channels,
            sample_rate_hz: self.info.sample_rate_hz,
            start_sample: self.next_frame,
            samples,
        };
        self.next_frame += chunk.frames() as u64;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s16le_decodes_and_keeps_order_across_chunks() {
        let values: Vec<i16> = (0..3000).map(|i| (i * 7 % 2000 - 1000) as i16).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut src = RawSource::new(&bytes[..], RawFormat::S16le, 8000, 1).unwrap();
        let mut all = Vec::new();
        let mut expected_start = 0;
        while let Some(c) = src.next_chunk().unwrap() {
            assert_eq!(c.start_sample, expected_start);
            expected_start += c.frames() as u64;
            all.extend(c.samples);
        }
        assert_eq!(all.len(), values.len());
        for (a, v) in all.iter().zip(&values) {
            assert!((a - f32::from(*v) / 32768.0).abs() < 1e-9);
        }
    }

    #[test]
    fn odd_trailing_byte_is_dropped_not_an_error() {
        let bytes = [0u8, 64, 0, 192, 7];
        let mut src = RawSource::new(&bytes[..], RawFormat::S16le, 8000, 1).unwrap();
        let c = src.next_chunk().unwrap().unwrap();
        assert_eq!(c.samples.len(), 2);
        assert!(src.next_chunk().unwrap().is_none());
    }

    #[test]
    fn absurd_rate_is_refused() {
        let bytes = [0u8; 4];
        assert!(matches!(
            RawSource::new(&bytes[..], RawFormat::Ulaw, 0, 1),
            Err(Error::Limit(_))
        ));
    }
}
