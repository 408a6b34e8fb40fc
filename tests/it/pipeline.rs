//! Library-level tests: features against the Python reference, the scorer against Python
//! onnxruntime, and streaming against whole-file analysis.

use ndarray::{Array1, Array2, Array3};
use ndarray_npy::read_npy;

use synthscan::detect::FrontEnd;
use synthscan::{AudioChunk, AudioSource, Detector, FileSource, LoadedModel, OnnxScorer, WindowScorer, analyze_source};

use crate::{fixture, max_abs_diff, shipped_model, test_model};

fn frontend_frames(model: &LoadedModel, file: &str, filterbank_linear: bool) -> (Vec<f32>, Vec<f32>) {
    let mut manifest = model.manifest.clone();
    if filterbank_linear {
        manifest.features.filterbank = synthscan::features::FilterbankKind::Linear;
    }
    let mut src = FileSource::open(&fixture(file)).unwrap();
    let mut fe = FrontEnd::new(&manifest, src.info().sample_rate_hz).unwrap();
    let (mut feats, mut energy) = (Vec::new(), Vec::new());
    while let Some(c) = src.next_chunk().unwrap() {
        fe.push(&c.samples, false).unwrap();
        feats.extend_from_slice(&fe.frames.features);
        energy.extend_from_slice(&fe.frames.energy_db);
    }
    fe.push(&[], true).unwrap();
    feats.extend_from_slice(&fe.frames.features);
    energy.extend_from_slice(&fe.frames.energy_db);
    (feats, energy)
}

/// Rust computes in f32 with an FFT, the reference in f64 with numpy: log energies agree to
/// well under 1e-2 nats (measured: ~1.5e-4 worst case, in near-silent bins).
const FEATURE_TOLERANCE: f32 = 1e-2;

#[test]
fn features_match_the_python_reference_mel_and_linear() {
    let model = LoadedModel::load(&test_model()).unwrap();
    let golden: Array2<f32> = read_npy(fixture("golden/speech16k.features.npy")).unwrap();
    let golden_energy: Array1<f32> = read_npy(fixture("golden/speech16k.energy.npy")).unwrap();
    let (feats, energy) = frontend_frames(&model, "speech_16000.wav", false);
    assert_eq!(feats.len(), golden.len());
    let d = max_abs_diff(&feats, golden.as_slice().unwrap());
    assert!(d < FEATURE_TOLERANCE, "mel features differ by {d}");
    let d = max_abs_diff(&energy, golden_energy.as_slice().unwrap());
    assert!(d < 1e-3, "energy differs by {d} dB");

    let golden_lin: Array2<f32> = read_npy(fixture("golden/speech16k.linear.features.npy")).unwrap();
    let (feats, _) = frontend_frames(&model, "speech_16000.wav", true);
    let d = max_abs_diff(&feats, golden_lin.as_slice().unwrap());
    assert!(d < FEATURE_TOLERANCE, "linear features differ by {d}");
}

/// Scores the golden windows `input` (float32 [n, frames, bins]) with the Rust scorer; returns
/// the largest difference from the Python onnxruntime logits in `reference`.
fn max_diff_from_onnxruntime(model: &LoadedModel, input: &str, reference: &str) -> f32 {
    let input: Array3<f32> = read_npy(fixture(input)).unwrap();
    let expected: Array1<f32> = read_npy(fixture(reference)).unwrap();
    assert_eq!(
        &input.shape()[1..],
        &[model.manifest.window.frames, model.manifest.features.n_bins]
    );
    let mut scorer = OnnxScorer::new(model, 1).unwrap();
    let mut logits = Vec::new();
    scorer
        .score_batch(input.as_slice().unwrap(), input.shape()[0], &mut logits)
        .unwrap();
    max_abs_diff(&logits, expected.as_slice().unwrap())
}

#[test]
fn scorer_matches_python_onnxruntime() {
    let model = LoadedModel::load(&test_model()).unwrap();
    let d = max_diff_from_onnxruntime(&model, "golden/test_model_input.npy", "golden/test_model_logits.npy");
    // Same runtime version, same bytes in: identical up to float reassociation.
    assert!(d < 1e-5, "logits differ by {d}");
}

#[test]
fn shipped_model_matches_python_onnxruntime() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let reference_sha = std::fs::read_to_string(fixture("golden/shipped_model.sha256")).unwrap();
    assert_eq!(
        reference_sha.trim(),
        model.manifest.sha256,
        "the reference logits belong to another model: run scripts/make_shipped_golden.sh"
    );
    let d = max_diff_from_onnxruntime(
        &model,
        "golden/shipped_model_input.npy",
        "golden/shipped_model_logits.npy",
    );
    // Same runtime version, same bytes in: identical up to float reassociation.
    assert!(d < 1e-4, "logits differ by {d}");
}

/// Reads a whole file into chunks of `frames_per_chunk` frames.
fn rechunk(file: &str, frames_per_chunk: usize) -> (u32, usize, Vec<AudioChunk>) {
    let mut src = FileSource::open(&fixture(file)).unwrap();
    let (rate, ch) = (src.info().sample_rate_hz, src.info().channels);
    let mut all = Vec::new();
    while let Some(c) = src.next_chunk().unwrap() {
        all.extend(c.samples);
    }
    let chunks = all
        .chunks(frames_per_chunk * ch)
        .scan(0u64, |start, s| {
            let c = AudioChunk {
                samples: s.to_vec(),
                channels: ch,
                sample_rate_hz: rate,
                start_sample: *start,
            };
            *start += (s.len() / ch) as u64;
            Some(c)
        })
        .collect();
    (rate, ch, chunks)
}

#[test]
fn streaming_in_20ms_chunks_equals_file_analysis() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    for file in ["speech_8000.wav", "speech_44100.wav", "stereo_speech_tone_16000.wav"] {
        let mut src = FileSource::open(&fixture(file)).unwrap();
        let whole = analyze_source(&detector, &mut src, &mut scorer, 32).unwrap();
        let (rate, ch, chunks) = rechunk(file, rate_20ms(file));
        let mut stream = detector.stream(rate, ch, 1).unwrap();
        for c in &chunks {
            stream.push(c, &mut scorer).unwrap();
        }
        let streamed = stream.finish(&mut scorer).unwrap();
        assert_eq!(whole.verdict, streamed.verdict, "{file}");
        for (a, b) in whole.channels.iter().zip(&streamed.channels) {
            assert_eq!(a.windows.len(), b.windows.len(), "{file}");
            for (x, y) in a.windows.iter().zip(&b.windows) {
                assert!((x.start_s - y.start_s).abs() < 1e-9);
                // Batch 32 vs batch 1 may reassociate sums inside ONNX Runtime.
                assert!((x.logit - y.logit).abs() < 1e-4, "{file}: {} vs {}", x.logit, y.logit);
            }
        }
    }
}

fn rate_20ms(file: &str) -> usize {
    let src = FileSource::open(&fixture(file)).unwrap();
    src.info().sample_rate_hz as usize / 50
}

#[test]
fn shipped_model_loads_and_separates_the_shipped_samples() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    assert_eq!(
        synthscan::model::sha256_hex(&model.onnx_bytes),
        model.manifest.sha256.to_lowercase()
    );
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let mut score = |name: &str| {
        let path = crate::root().join("samples").join(name);
        let mut src = FileSource::open(&path).unwrap();
        analyze_source(&detector, &mut src, &mut scorer, 32).unwrap()
    };
    let synthetic = score("synthetic_robocall.wav");
    let jfk = score("genuine_jfk.wav");
    let prompt = score("genuine_phone_prompt.wav");
    let (s, j, p) = (synthetic.score.unwrap(), jfk.score.unwrap(), prompt.score.unwrap());
    assert!(s > j + 0.2 && s > p + 0.2, "synthetic {s}, jfk {j}, prompt {p}");
    assert_eq!(synthetic.verdict, synthscan::Verdict::Synthetic);
    assert_eq!(jfk.verdict, synthscan::Verdict::Genuine);
}

#[test]
fn every_sample_rate_gives_the_same_duration_and_similar_features() {
    let model = LoadedModel::load(&test_model()).unwrap();
    let detector = Detector::new(model.manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let mut scores = Vec::new();
    for rate in [8000, 16000, 44100, 48000] {
        let mut src = FileSource::open(&fixture(&format!("speech_{rate}.wav"))).unwrap();
        let a = analyze_source(&detector, &mut src, &mut scorer, 32).unwrap();
        assert!((a.duration_s - 3.0).abs() < 0.01, "{rate}: {}", a.duration_s);
        assert!(a.speech_s() > 1.0, "{rate}: speech {}", a.speech_s());
        scores.push(a.channels[0].windows.len());
    }
    // Same speech at every rate: the same number of windows is scored.
    assert!(scores.iter().all(|&n| n == scores[0]), "{scores:?}");
}

#[test]
fn telephone_rate_input_is_judged_by_the_narrowband_threshold() {
    let model = LoadedModel::load(&shipped_model()).unwrap();
    let mut manifest = model.manifest.clone();
    manifest.threshold = 0.9;
    manifest.threshold_narrowband = Some(0.3);
    let detector = Detector::new(manifest.clone()).unwrap();
    let mut scorer = OnnxScorer::new(&model, 1).unwrap();
    let mut analyse = |detector: &Detector, file: &str| {
        let mut src = FileSource::open(&fixture(file)).unwrap();
        analyze_source(detector, &mut src, &mut scorer, 32).unwrap()
    };
    let narrow = analyse(&detector, "speech_8000.wav");
    let wide = analyse(&detector, "speech_16000.wav");
    assert_eq!(narrow.threshold, 0.3);
    assert_eq!(wide.threshold, 0.9);
    // the verdict follows the threshold of the input's rate
    let p = narrow.score.unwrap();
    let expect = if p >= 0.3 {
        synthscan::Verdict::Synthetic
    } else {
        synthscan::Verdict::Genuine
    };
    assert_eq!(narrow.verdict, expect, "score {p}");

    // the manifest says which rates are telephone rates
    let mut up_to_16k = manifest.clone();
    up_to_16k.narrowband_max_rate_hz = 16_000;
    let detector = Detector::new(up_to_16k).unwrap();
    assert_eq!(analyse(&detector, "speech_16000.wav").threshold, 0.3);
    assert_eq!(analyse(&detector, "speech_44100.wav").threshold, 0.9);

    // a user's --threshold replaces both
    let fixed = Detector::new(manifest.clone()).unwrap().with_threshold(0.6).unwrap();
    assert_eq!(analyse(&fixed, "speech_8000.wav").threshold, 0.6);
    assert_eq!(analyse(&fixed, "speech_16000.wav").threshold, 0.6);

    // without one, every rate gets the wideband threshold
    manifest.threshold_narrowband = None;
    let single = Detector::new(manifest.clone()).unwrap();
    assert_eq!(analyse(&single, "speech_8000.wav").threshold, 0.9);

    manifest.threshold_narrowband = Some(1.5);
    assert!(
        Detector::new(manifest).is_err(),
        "a narrowband threshold outside (0, 1) is refused"
    );
}
