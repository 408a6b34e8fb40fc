//! What arrives on a stream: raw binary frames in a declared encoding, or the JSON media-stream
//! messages of cloud telephony platforms (`start` / `media` with base64 mu-law / `stop`), and
//! [`StreamProtocol`], the per-connection state machine that turns them into audio.

use std::collections::HashSet;

use base64::Engine as _;
use serde::Deserialize;

use crate::audio::{RawFormat, alaw_to_f32, ulaw_to_f32};
use crate::error::{Error, Result};

/// The largest decoded payload accepted in one message (10 s of 48 kHz 16-bit stereo).
pub const MAX_PAYLOAD_BYTES: usize = 48_000 * 2 * 2 * 10;

/// Decodes raw bytes of `format` into samples (appended to `out`). Odd trailing bytes of
/// 16-bit PCM are an error: a frame must hold whole samples.
pub fn decode_raw(bytes: &[u8], format: RawFormat, out: &mut Vec<f32>) -> Result<()> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(Error::Limit(format!(
            "a frame of {} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit",
            bytes.len()
        )));
    }
    match format {
        RawFormat::S16le => {
            if !bytes.len().is_multiple_of(2) {
                return Err(Error::Corrupt(format!(
                    "a frame of {} bytes does not hold whole 16-bit samples",
                    bytes.len()
                )));
            }
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
            );
        }
        RawFormat::Ulaw => out.extend(bytes.iter().map(|&b| ulaw_to_f32(b))),
        RawFormat::Alaw => out.extend(bytes.iter().map(|&b| alaw_to_f32(b))),
    }
    Ok(())
}

/// One JSON message of the media-stream protocol (unknown fields are ignored).
#[derive(Debug, Deserialize)]
pub struct MediaMessage {
    pub event: String,
    #[serde(default, rename = "streamSid")]
    pub stream_sid: Option<String>,
    #[serde(default)]
    pub start: Option<StartInfo>,
    #[serde(default)]
    pub media: Option<MediaPayload>,
}

#[derive(Debug, Deserialize)]
pub struct StartInfo {
    #[serde(default, rename = "streamSid")]
    pub stream_sid: Option<String>,
    #[serde(default, rename = "mediaFormat")]
    pub media_format: Option<MediaFormat>,
}

#[derive(Debug, Deserialize)]
pub struct MediaFormat {
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default, rename = "sampleRate")]
    pub sample_rate: Option<u32>,
    #[serde(default)]
    pub channels: Option<u16>,
}

#[derive(Debug, Deserialize)]
pub struct MediaPayload {
    #[serde(default)]
    pub track: Option<String>,
    pub payload: String,
}

/// The encoding named by a `mediaFormat.encoding` string.
pub fn encoding_from_name(name: &str) -> Result<RawFormat> {
    match name.to_ascii_lowercase().as_str() {
        "audio/x-mulaw" | "audio/pcmu" | "mulaw" | "ulaw" | "pcmu" => Ok(RawFormat::Ulaw),
        "audio/x-alaw" | "audio/pcma" | "alaw" | "pcma" => Ok(RawFormat::Alaw),
        "audio/l16" | "l16" | "s16le" | "linear16" => Ok(RawFormat::S16le),
        other => Err(Error::UnsupportedFormat(format!(
            "media encoding '{other}' (use audio/x-mulaw, audio/x-alaw or audio/l16)"
        ))),
    }
}

/// Decodes a base64 payload in `format` into samples (appended to `out`).
pub fn decode_payload(payload: &str, format: RawFormat, out: &mut Vec<f32>) -> Result<()> {
    if payload.len() > MAX_PAYLOAD_BYTES * 4 / 3 + 4 {
        return Err(Error::Limit("a media payload is over the size limit".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| Error::Corrupt(format!("the media payload is not valid base64: {e}")))?;
    decode_raw(&bytes, format, out)
}

/// Track names are echoed back in events: keep them short and printable.
pub fn clean_track_name(name: Option<&str>) -> Result<String> {
    let name = name.unwrap_or("inbound");
    if name.is_empty() || name.len() > 32 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::Corrupt(format!(
            "track name {:?} must be 1-32 letters, digits, '-' or '_'",
            name.chars().take(40).collect::<String>()
        )));
    }
    Ok(name.to_string())
}

/// Most tracks one connection may carry (a call has two legs; conferences and stereo
/// recorders a few more). Each track holds a live stream's state on a worker.
pub const MAX_TRACKS: usize = 16;

/// What a message asks of the connection.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Nothing to score (bookkeeping messages, a new format).
    None,
    /// Audio for one track.
    Audio {
        track: String,
        rate_hz: u32,
        channels: usize,
        samples: Vec<f32>,
    },
    /// The client ended the stream (`stop`): summarise it.
    Stop,
}

/// The per-connection protocol state: the raw-frame format declared on the URL, the media
/// format announced by `start`, the stream's name and its tracks. An error concerns one message
/// only; the stream goes on.
#[derive(Debug)]
pub struct StreamProtocol {
    label: String,
    media_format: RawFormat,
    media_rate: u32,
    raw: Option<(RawFormat, u32, usize)>,
    tracks: HashSet<String>,
}

impl StreamProtocol {
    /// `raw`: the encoding, rate and channels of binary frames, when the URL declared them.
    pub fn new(label: String, raw: Option<(RawFormat, u32, usize)>) -> Self {
        Self {
            label,
            media_format: RawFormat::Ulaw,
            media_rate: 8000,
            raw,
            tracks: HashSet::new(),
        }
    }

    /// The stream's name in summaries (the platform's stream id once `start` gave one).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Tracks opened so far.
    pub fn tracks(&self) -> usize {
        self.tracks.len()
    }

    fn admit_track(&mut self, track: &str) -> Result<()> {
        if self.tracks.contains(track) {
            return Ok(());
        }
        if self.tracks.len() >= MAX_TRACKS {
            return Err(Error::Limit(format!(
                "a stream carries at most {MAX_TRACKS} tracks; the audio of track '{track}' is dropped"
            )));
        }
        self.tracks.insert(track.to_string());
        Ok(())
    }

    /// A binary frame: raw audio in the format the URL declared.
    pub fn on_binary(&mut self, bytes: &[u8]) -> Result<Action> {
        let Some((format, rate, channels)) = self.raw else {
            return Err(Error::Config(
                "binary frames need ?encoding=s16le|ulaw|alaw&rate=HZ on the stream URL".into(),
            ));
        };
        let mut samples = Vec::with_capacity(bytes.len());
        decode_raw(bytes, format, &mut samples)?;
        if !samples.len().is_multiple_of(channels) {
            return Err(Error::Corrupt(format!(
                "a frame of {} samples does not hold whole {channels}-channel frames",
                samples.len()
            )));
        }
        self.admit_track("raw")?;
        Ok(Action::Audio {
            track: "raw".into(),
            rate_hz: rate,
            channels,
            samples,
        })
    }

    /// A text frame: one media-stream JSON message.
    pub fn on_text(&mut self, text: &str) -> Result<Action> {
        let msg: MediaMessage = serde_json::from_str(text)
            .map_err(|e| Error::Corrupt(format!("the message is not a media-stream JSON object: {e}")))?;
        match msg.event.as_str() {
            "start" => {
                let sid = msg
                    .stream_sid
                    .or_else(|| msg.start.as_ref().and_then(|st| st.stream_sid.clone()));
                if let Some(sid) = sid {
                    self.label = sid.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
                }
                let Some(fmt) = msg.start.and_then(|st| st.media_format) else {
                    return Ok(Action::None);
                };
                // the whole format is checked before any of it is taken
                let format = fmt.encoding.as_deref().map(encoding_from_name).transpose()?;
                if let Some(rate) = fmt.sample_rate {
                    crate::audio::check_stream_limits(rate, 1)?;
                }
                if fmt.channels.is_some_and(|c| c != 1) {
                    return Err(Error::Config(
                        "media payloads must be mono; send one track per channel".into(),
                    ));
                }
                if let Some(f) = format {
                    self.media_format = f;
                }
                if let Some(rate) = fmt.sample_rate {
                    self.media_rate = rate;
                }
                Ok(Action::None)
            }
            "media" => {
                let media = msg
                    .media
                    .ok_or_else(|| Error::Corrupt("a media message without a `media` object".into()))?;
                let track = clean_track_name(media.track.as_deref())?;
                let mut samples = Vec::with_capacity(media.payload.len());
                decode_payload(&media.payload, self.media_format, &mut samples)?;
                self.admit_track(&track)?;
                Ok(Action::Audio {
                    track,
                    rate_hz: self.media_rate,
                    channels: 1,
                    samples,
                })
            }
            "stop" | "closed" => Ok(Action::Stop),
            // Platform bookkeeping messages carry no audio.
            "connected" | "mark" | "dtmf" | "clear" => Ok(Action::None),
            other => Err(Error::Corrupt(format!(
                "unknown event '{}'",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_shaped_messages_parse_and_decode() {
        let m: MediaMessage = serde_json::from_str(
            r#"{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"2","timestamp":"5","payload":"/wB/gA=="},"streamSid":"MZ1"}"#,
        )
        .unwrap();
        assert_eq!(m.event, "media");
        let media = m.media.unwrap();
        assert_eq!(media.track.as_deref(), Some("outbound"));
        let mut out = Vec::new();
        decode_payload(&media.payload, RawFormat::Ulaw, &mut out).unwrap();
        // 0xFF and 0x7F are mu-law's two zeros; 0x00 and 0x80 its extremes.
        assert_eq!(out.len(), 4);
        assert!(out[0].abs() < 1e-6 && out[2].abs() < 1e-6);
        assert!(out[1] < -0.9 && out[3] > 0.9, "{out:?}");
        assert!(decode_payload("not base64!", RawFormat::Ulaw, &mut out).is_err());
        assert!(decode_raw(&[1, 2, 3], RawFormat::S16le, &mut out).is_err());
        assert!(clean_track_name(Some("in bound\n")).is_err());
        assert_eq!(encoding_from_name("audio/x-mulaw").unwrap(), RawFormat::Ulaw);
    }

    #[test]
    fn a_connection_opens_at_most_max_tracks_and_keeps_scoring_them() {
        let mut p = StreamProtocol::new("s".into(), None);
        let media = |t: &str| format!(r#"{{"event":"media","media":{{"track":"{t}","payload":"/w=="}}}}"#);
        for i in 0..MAX_TRACKS {
            assert!(matches!(p.on_text(&media(&format!("t{i}"))), Ok(Action::Audio { .. })));
        }
        let e = p.on_text(&media("one-more")).unwrap_err();
        assert!(e.to_string().contains("at most 16 tracks"), "{e}");
        // the tracks already open go on
        assert!(matches!(p.on_text(&media("t3")), Ok(Action::Audio { .. })));
        assert_eq!(p.tracks(), MAX_TRACKS);
        assert_eq!(p.on_text(r#"{"event":"stop"}"#).unwrap(), Action::Stop);
    }

    #[test]
    fn a_start_with_one_bad_field_changes_nothing() {
        let mut p = StreamProtocol::new("s".into(), None);
        let bad = r#"{"event":"start","start":{"mediaFormat":{"encoding":"audio/l16","sampleRate":5}}}"#;
        assert!(p.on_text(bad).is_err());
        let Ok(Action::Audio { rate_hz, samples, .. }) = p.on_text(r#"{"event":"media","media":{"payload":"/w=="}}"#)
        else {
            panic!("audio expected")
        };
        // still mu-law at 8 kHz: one byte, one sample
        assert_eq!((rate_hz, samples.len()), (8000, 1));
    }
}
