//! Container and codec decoding through symphonia, by content sniffing (the file extension is
//! never trusted: call recorders name files carelessly).

use std::cell::Cell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use super::wav::{self, WideWav};
use super::{AudioChunk, AudioSource, StreamInfo, check_finite, check_stream_limits};
use crate::error::{Error, Result};

thread_local! {
    /// Set while third-party decoder code runs on this thread (see [`guarded`]).
    static IN_DECODER: Cell<bool> = const { Cell::new(false) };
}

/// Runs decoder code; a panic inside it (a decoder bug on malformed data) becomes an error for
/// this input instead of taking the process, or a whole batch, down.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let was = IN_DECODER.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_DECODER.with(|c| c.set(was));
    r.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(Error::Corrupt(format!("the decoder failed on this data ({msg})")))
    })
}

/// Keeps the default panic report (a "thread panicked" message on stderr) for real bugs but
/// silences it for decoder panics, which [`FileSource`] already turns into a clear error.
/// Programs call this once at start-up.
pub fn install_decoder_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_DECODER.with(Cell::get) {
            previous(info);
        }
    }));
}

/// The most consecutive undecodable packets tolerated before the input is declared corrupt.
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 64;

/// Decodes any container/codec symphonia knows, one packet per chunk, and WAV files of more
/// channels than symphonia reads (see [`super::wav`]).
pub struct FileSource {
    backend: Backend,
    info: StreamInfo,
    next_frame: u64,
    path: PathBuf,
    ended_early: bool,
    /// A decoder call failed or panicked: the decoder state is not to be trusted again.
    poisoned: bool,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("info", &self.info)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

enum Backend {
    Symphonia {
        format: Box<dyn FormatReader>,
        decoder: Box<dyn AudioDecoder>,
        track_id: u32,
    },
    WideWav(Box<WideWav>),
}

/// The first bytes of an unseekable source, read ahead to sniff the header, then the rest.
struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    inner: Box<dyn MediaSource>,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.at);
            buf[..n].copy_from_slice(&self.prefix[self.at..self.at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl Seek for Prefixed {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the input is a stream",
        ))
    }
}

impl MediaSource for Prefixed {
    fn is_seekable(&self) -> bool {
        false
    }
    fn byte_len(&self) -> Option<u64> {
        None
    }
}

/// A media source as a plain reader, for hound.
struct Reader(Box<dyn MediaSource>);

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

/// Reads up to `n` bytes (fewer only at the end of the data).
fn read_prefix(source: &mut dyn MediaSource, n: usize) -> Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(n);
    let mut chunk = [0u8; 8192];
    while prefix.len() < n {
        let want = chunk.len().min(n - prefix.len());
        match source.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(k) => prefix.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Corrupt(format!("read error at the start of the data: {e}"))),
        }
    }
    Ok(prefix)
}

impl FileSource {
    /// Opens and probes a file.
    pub fn open(path: &Path) -> Result<Self> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory, not an audio file",
            )));
        }
        // Only a regular file's size says it is empty: pipes, FIFOs and /dev/stdin report 0 and
        // are read as the streams they are.
        if meta.is_file() && meta.len() == 0 {
            return Err(Error::EmptyInput);
        }
        Self::from_media_source(Box::new(file), path.to_path_buf())
    }

    /// Probes any seekable or unseekable media source (`path` is only used in messages).
    pub fn from_media_source(source: Box<dyn MediaSource>, path: PathBuf) -> Result<Self> {
        guarded(move || Self::probe(source, path))
    }

    fn probe(mut source: Box<dyn MediaSource>, path: PathBuf) -> Result<Self> {
        // The WAV header's own channel count decides the decoder (symphonia misreads some
        // counts above 18), and a count beyond the limit is refused before anything is decoded.
        let prefix = read_prefix(source.as_mut(), wav::SNIFF_BYTES)?;
        let wav_format = wav::sniff(&prefix);
        let source: Box<dyn MediaSource> = if source.is_seekable() {
            source
                .seek(SeekFrom::Start(0))
                .map_err(|e| Error::Corrupt(format!("cannot go back to the start of the data: {e}")))?;
            source
        } else {
            Box::new(Prefixed {
                prefix,
                at: 0,
                inner: source,
            })
        };
        if let Some(fmt) = wav_format
            && fmt.channels > wav::SYMPHONIA_MAX_CHANNELS
        {
            check_stream_limits(crate::audio::MIN_SAMPLE_RATE_HZ, fmt.channels)?;
            let wide = WideWav::new(Box::new(Reader(source)), fmt)?;
            check_stream_limits(wide.sample_rate_hz(), fmt.channels)?;
            let info = StreamInfo {
                sample_rate_hz: wide.sample_rate_hz(),
                channels: fmt.channels,
                codec: wide.codec(),
                total_frames: Some(wide.total_frames()),
            };
            return Ok(Self {
                backend: Backend::WideWav(Box::new(wide)),
                info,
                next_frame: 0,
                path,
                ended_early: false,
                poisoned: false,
            });
        }
        let mss = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(&Hint::new(), mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => {
                    Error::UnsupportedFormat("no known audio container or codec was recognised in the data".into())
                }
                SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Error::UnsupportedFormat("the data ended before any known audio header was found".into())
                }
                other => map_symphonia(other),
            })?;
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| Error::UnsupportedFormat("the file holds no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| Error::UnsupportedFormat("the file holds no audio track".into()))?;
        let sample_rate_hz = params
            .sample_rate
            .ok_or_else(|| Error::Corrupt("the header states no sample rate".into()))?;
        let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
        check_stream_limits(sample_rate_hz, channels)?;
        if let Some(fmt) = wav_format
            && fmt.channels != channels
        {
            return Err(Error::Corrupt(format!(
                "the WAV header states {} channels but its layout reads as {channels}",
                fmt.channels
            )));
        }
        let codec_name = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .map(|d| d.codec.info.short_name)
            .unwrap_or("unknown");
        let codec = format!("{}/{}", format.format_info().short_name, codec_name);
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(what) => Error::UnsupportedFormat(format!("codec not supported ({what})")),
                other => map_symphonia(other),
            })?;
        let info = StreamInfo {
            sample_rate_hz,
            channels,
            codec,
            total_frames: track.num_frames,
        };
        let track_id = track.id;
        Ok(Self {
            backend: Backend::Symphonia {
                format,
                decoder,
                track_id,
            },
            info,
            next_frame: 0,
            path,
            ended_early: false,
            poisoned: false,
        })
    }
}

fn map_symphonia(e: SymError) -> Error {
    match e {
        SymError::IoError(io) => Error::Corrupt(format!("read error inside the stream: {io}")),
        SymError::DecodeError(msg) => Error::Corrupt(msg.to_string()),
        SymError::Unsupported(what) => Error::UnsupportedFormat(what.to_string()),
        SymError::LimitError(what) => Error::Limit(what.to_string()),
        other => Error::Corrupt(other.to_string()),
    }
}

impl AudioSource for FileSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn truncation(&self) -> Option<String> {
        let rate = f64::from(self.info.sample_rate_hz);
        let got_s = self.next_frame as f64 / rate;
        match self.info.total_frames {
            Some(total) if total > self.next_frame => Some(format!(
                "the file is shorter than its header says ({:.2} s of audio, header promises {:.2} s)",
                got_s,
                total as f64 / rate
            )),
            _ if self.ended_early => Some(format!("the data ends mid-stream after {got_s:.2} s")),
            _ => None,
        }
    }

    fn next_chunk(&mut self) -> Result<Option<AudioChunk>> {
        if self.poisoned {
            return Err(Error::Corrupt("the decoder already failed on this input".into()));
        }
        let r = guarded(|| self.decode_next());
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }
}

impl FileSource {
    fn decode_next(&mut self) -> Result<Option<AudioChunk>> {
        let (format, decoder, track_id) = match &mut self.backend {
            Backend::Symphonia {
                format,
                decoder,
                track_id,
            } => (format, decoder, *track_id),
            Backend::WideWav(wide) => {
                let (chunk, ended_early) = wide.next_chunk(self.next_frame)?;
                self.ended_early |= ended_early;
                if let Some(c) = &chunk {
                    self.next_frame += c.frames() as u64;
                }
                return Ok(chunk);
            }
        };
        let mut bad_packets = 0;
        loop {
            let packet = match format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                // A file cut short (a recorder killed mid-call) ends where the data ends.
                Err(SymError::IoError(io)) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.ended_early = true;
                    return Ok(None);
                }
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(map_symphonia(e)),
            };
            if packet.track_id != track_id {
                continue;
            }
            let buf = match decoder.decode(&packet) {
                Ok(buf) => buf,
                Err(SymError::DecodeError(msg)) => {
                    bad_packets += 1;
                    if bad_packets > MAX_CONSECUTIVE_BAD_PACKETS {
                        return Err(Error::Corrupt(format!(
                            "{} consecutive undecodable packets in {} (last: {msg})",
                            bad_packets,
                            self.path.display()
                        )));
                    }
                    continue;
                }
                Err(e) => return Err(map_symphonia(e)),
            };
            let spec = buf.spec();
            let channels = spec.channels().count();
            let rate = spec.rate();
            if channels != self.info.channels || rate != self.info.sample_rate_hz {
                return Err(Error::Corrupt(format!(
                    "stream parameters changed mid-file ({} ch at {} Hz, then {} ch at {} Hz)",
                    self.info.channels, self.info.sample_rate_hz, channels, rate
                )));
            }
            if buf.frames() == 0 {
                continue;
            }
            let mut samples = Vec::with_capacity(buf.samples_interleaved());
            buf.copy_to_vec_interleaved(&mut samples);
            check_finite(&samples, self.next_frame * channels as u64)?;
            let chunk = AudioChunk {
                samples,
                channels,
                sample_rate_hz: rate,
                start_sample: self.next_frame,
            };
            self.next_frame += chunk.frames() as u64;
            return Ok(Some(chunk));
        }
    }
}
