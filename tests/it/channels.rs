//! Every WAV channel layout gets a correct answer or a clear error: 1-64 channels, plain and
//! WAVE_FORMAT_EXTENSIBLE, decode to the channels written; 65 and more are refused; a channel
//! scores the same whichever decoder reads its file (symphonia up to 18 channels, hound above).

use std::path::Path;

use synthscan::{AudioSource, FileSource};

use crate::{assert_one_clear_error, fixture, synthscan, test_model};

/// A 16-bit WAV of `channels` interleaved channels holding `frames[channel][i]`.
fn write_wav(
    path: &Path,
    rate: u32,
    channels: usize,
    extensible: bool,
    frames: &dyn Fn(usize, usize) -> i16,
    len: usize,
) {
    let block = (channels * 2) as u16;
    let mut fmt = Vec::new();
    let tag: u16 = if extensible { 0xFFFE } else { 1 };
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&(channels as u16).to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    fmt.extend_from_slice(&block.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    if extensible {
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&0u32.to_le_bytes()); // no speaker positions: channels are tracks
        fmt.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    }
    let mut data = Vec::with_capacity(len * channels * 2);
    for i in 0..len {
        for c in 0..channels {
            data.extend_from_slice(&frames(c, i).to_le_bytes());
        }
    }
    let mut body = b"WAVEfmt ".to_vec();
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(&data);
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend_from_slice(&body);
    std::fs::write(path, file).unwrap();
}

/// A value that differs for every channel and frame.
fn marker(channel: usize, i: usize) -> i16 {
    ((channel as i32 + 1) * 300 - (i as i32 % 7) * 40) as i16
}

#[test]
fn every_channel_count_from_1_to_64_decodes_to_the_channels_written() {
    let dir = tempfile::tempdir().unwrap();
    let len = 1500; // more than one hound chunk for the wide files
    for channels in 1..=64 {
        for extensible in [false, true] {
            let path = dir.path().join(format!("{channels}-{extensible}.wav"));
            write_wav(&path, 8000, channels, extensible, &marker, len);
            let what = format!("{channels} channels, extensible {extensible}");
            let mut src = FileSource::open(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(src.info().channels, channels, "{what}");
            assert_eq!(src.info().total_frames, Some(len as u64), "{what}");
            let mut frames = 0;
            while let Some(chunk) = src.next_chunk().unwrap() {
                assert_eq!(chunk.channels, channels, "{what}");
                for (k, v) in chunk.samples.iter().enumerate() {
                    let (i, c) = (frames + k / channels, k % channels);
                    let want = f32::from(marker(c, i)) / 32768.0;
                    // both decoders scale by 1/32768 exactly
                    assert!((v - want).abs() < 1e-7, "{what}: frame {i} channel {c}: {v} != {want}");
                }
                frames += chunk.frames();
            }
            assert_eq!(frames, len, "{what}");
            assert!(src.truncation().is_none(), "{what}");
        }
    }
}

#[test]
fn more_than_64_channels_are_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    for (channels, extensible) in [(65, false), (65, true), (80, true), (128, false)] {
        let path = dir.path().join(format!("{channels}-{extensible}.wav"));
        write_wav(&path, 8000, channels, extensible, &marker, 800);
        let out = synthscan()
            .args(["analyze", "--model"])
            .arg(test_model())
            .arg(&path)
            .output()
            .unwrap();
        assert_one_clear_error(
            &out,
            &format!("{channels} channels is outside 1..=64"),
            &path.display().to_string(),
        );
    }
}

fn channel_scores(path: &Path) -> Vec<Option<f64>> {
    let v = crate::analyze_json(path);
    v["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|c| c["score"].as_f64())
        .collect()
}

#[test]
fn a_channel_scores_the_same_in_an_18_and_a_19_channel_file() {
    let mut speech = FileSource::open(&fixture("speech_8000.wav")).unwrap();
    assert_eq!(speech.info().channels, 1);
    let mut samples = Vec::new();
    while let Some(c) = speech.next_chunk().unwrap() {
        samples.extend(c.samples);
    }
    let pcm: Vec<i16> = samples
        .iter()
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect();
    // the speech on channel 0 and channel 17, quiet noise elsewhere
    let frames = |c: usize, i: usize| {
        if c == 0 || c == 17 {
            pcm[i]
        } else {
            ((i * 7919 + c * 31) % 61) as i16 - 30
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (narrow, wide) = (dir.path().join("18.wav"), dir.path().join("19.wav"));
    write_wav(&narrow, 8000, 18, false, &frames, pcm.len());
    write_wav(&wide, 8000, 19, true, &frames, pcm.len());
    let (a, b) = (channel_scores(&narrow), channel_scores(&wide));
    assert_eq!((a.len(), b.len()), (18, 19));
    for c in [0, 17] {
        let (x, y) = (a[c].expect("speech is scored"), b[c].expect("speech is scored"));
        // the same samples into the same model: only float summation order could differ
        assert!((x - y).abs() < 1e-6, "channel {c}: {x} vs {y}");
    }
}
