//! The front end (resampler, STFT, filterbank, voice gate) on arbitrary samples: NaN, Inf,
//! denormals, full-scale square waves, silence. Errors are fine, panics and non-finite
//! features from finite input are not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use synthscan::Manifest;
use synthscan::detect::FrontEnd;

fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        let text = include_str!("../../models/synthscan.json");
        serde_json::from_str(text).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let rate = [8_000, 16_000, 22_050, 44_100][usize::from(data[0] % 4)];
    let chunk = usize::from(data[1]).max(1) * 7;
    let samples: Vec<f32> = data[2..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let all_finite = samples.iter().all(|s| s.is_finite() && s.abs() <= 1e4);
    let Ok(mut fe) = FrontEnd::new(manifest(), rate) else {
        return;
    };
    let pieces: Vec<&[f32]> = samples.chunks(chunk).collect();
    for (i, piece) in pieces.iter().enumerate() {
        if fe.push(piece, i + 1 == pieces.len()).is_err() {
            return;
        }
        if all_finite {
            assert!(
                fe.frames.features.iter().all(|f| f.is_finite()),
                "non-finite features from finite input"
            );
        }
    }
});
