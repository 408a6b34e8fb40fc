//! Raw PCM in any of the three encodings, rates and channel counts chosen by the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::{AudioSource, RawFormat, RawSource};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let format = match data[0] % 3 {
        0 => RawFormat::S16le,
        1 => RawFormat::Ulaw,
        _ => RawFormat::Alaw,
    };
    let rate = u32::from(u16::from_le_bytes([data[1], data[2]])) * 16;
    let channels = usize::from(data[3] % 80);
    if let Ok(mut src) = RawSource::new(&data[4..], format, rate, channels) {
        while let Ok(Some(_)) = src.next_chunk() {}
    }
});
