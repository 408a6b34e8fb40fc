//! The WebSocket media-stream message: JSON parsing, track names, base64 and G.711 decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::RawFormat;
use synthscan::service::media;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = media::decode_raw(data, RawFormat::S16le, &mut out);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = serde_json::from_str::<media::MediaMessage>(text) {
        if let Some(fmt) = msg.start.and_then(|s| s.media_format) {
            if let Some(enc) = fmt.encoding {
                let _ = media::encoding_from_name(&enc);
            }
        }
        if let Some(m) = msg.media {
            let _ = media::clean_track_name(m.track.as_deref());
            for f in [RawFormat::Ulaw, RawFormat::Alaw, RawFormat::S16le] {
                out.clear();
                let _ = media::decode_payload(&m.payload, f, &mut out);
            }
        }
    }
});
