//! What arrives on a stream: raw binary frames in a declared encoding, or the JSON media-stream
//! messages of cloud telephony platforms (`start` / `media` with base64 mu-law / `stop`).

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
}
