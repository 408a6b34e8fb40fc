//! Any bytes, decoded by content sniffing as a file would be: never a panic, never a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synthscan::{AudioSource, FileSource};

fuzz_target!(|data: &[u8]| {
    let cursor = std::io::Cursor::new(data.to_vec());
    if let Ok(mut src) = FileSource::from_media_source(Box::new(cursor), "fuzz".into()) {
        // Bounded: a tiny input may legitimately claim hours of silence.
        let mut frames = 0usize;
        while let Ok(Some(chunk)) = src.next_chunk() {
            frames += chunk.frames();
            if frames > 2_000_000 {
                break;
            }
        }
    }
});
