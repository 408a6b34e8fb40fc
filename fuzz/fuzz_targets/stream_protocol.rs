//! The WebSocket stream's protocol state machine: any sequence of text and binary messages, with
//! or without a raw format declared on the URL, through `StreamProtocol` as a connection drives it.
//! Checks what the server relies on: whole frames of audio, rates within the limits, never more
//! than MAX_TRACKS tracks, and a name of at most 64 printable characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::RawFormat;
use synthscan::service::media::{Action, MAX_TRACKS, StreamProtocol};

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else { return };
    // the first byte: no raw format, or one of three encodings at one of four rates, 1-4 channels
    let raw = (head & 1 == 1).then(|| {
        let format = [RawFormat::S16le, RawFormat::Ulaw, RawFormat::Alaw][usize::from(head >> 1) % 3];
        let rate = [8000, 16000, 44100, 1000][usize::from(head >> 3) % 4];
        (format, rate, usize::from(head >> 5) % 4 + 1)
    });
    let mut protocol = StreamProtocol::new("fuzz".into(), raw);
    // then messages: a kind byte (even: text, odd: binary), a 16-bit length, the payload
    while rest.len() >= 3 {
        let kind = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let payload = &rest[3..3 + len];
        rest = &rest[3 + len..];
        let action = if kind % 2 == 0 {
            let Ok(text) = std::str::from_utf8(payload) else { continue };
            protocol.on_text(text)
        } else {
            protocol.on_binary(payload)
        };
        if let Ok(Action::Audio { channels, rate_hz, samples, track }) = action {
            assert!((1..=64).contains(&channels));
            assert!(samples.len() % channels == 0);
            assert!((1000..=768_000).contains(&rate_hz));
            assert!(!track.is_empty() && track.len() <= 32);
        }
        assert!(protocol.tracks() <= MAX_TRACKS);
        assert!(protocol.label().chars().count() <= 64);
    }
});
