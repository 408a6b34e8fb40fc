//! Criterion benches: feature extraction per window, inference per window, and the whole
//! pipeline on a shipped sample. Run with `cargo bench`; results go in BENCHMARKS.md.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};

use synthscan::{
    AudioSource, Detector, FeatureExtractor, FileSource, FrameBatch, LoadedModel, OnnxScorer, WindowScorer,
    analyze_source,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_samples(path: &std::path::Path) -> Vec<f32> {
    let mut src = FileSource::open(path).expect("sample opens");
    let mut all = Vec::new();
    while let Some(c) = src.next_chunk().expect("sample decodes") {
        all.extend(c.samples);
    }
    all
}

fn benches(c: &mut Criterion) {
    let model = LoadedModel::load(&root().join("models/synthscan.json")).expect("model loads");
    let m = &model.manifest;
    let sample = root().join("samples/synthetic_robocall.wav");
    let audio = load_samples(&sample);
    // One window's worth of new samples at the window hop (what a stream adds per window).
    let hop_samples = m.window.hop_frames * m.features.hop_len;

    let mut fx = FeatureExtractor::new(&m.features).expect("extractor");
    let mut frames = FrameBatch::new(m.features.n_bins);
    let mut offset = 0;
    c.bench_function("features per window hop", |b| {
        b.iter(|| {
            if offset + hop_samples > audio.len() {
                offset = 0;
            }
            frames.clear();
            fx.push(black_box(&audio[offset..offset + hop_samples]), &mut frames)
                .expect("push");
            offset += hop_samples;
        })
    });

    let mut scorer = OnnxScorer::new(&model, 1).expect("scorer");
    let window = vec![-5.0f32; m.window.frames * m.features.n_bins];
    let batch32: Vec<f32> = window.iter().copied().cycle().take(window.len() * 32).collect();
    let mut logits = Vec::with_capacity(32);
    c.bench_function("inference 1 window", |b| {
        b.iter(|| {
            logits.clear();
            scorer.score_batch(black_box(&window), 1, &mut logits).expect("score");
        })
    });
    c.bench_function("inference 32 windows (batch)", |b| {
        b.iter(|| {
            logits.clear();
            scorer.score_batch(black_box(&batch32), 32, &mut logits).expect("score");
        })
    });

    let detector = Detector::new(m.clone()).expect("detector");
    c.bench_function("analyze 9.8 s sample (decode to verdict)", |b| {
        b.iter(|| {
            let mut src = FileSource::open(&sample).expect("open");
            black_box(analyze_source(&detector, &mut src, &mut scorer, 32).expect("analyze"))
        })
    });
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
