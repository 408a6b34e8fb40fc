//! Integration tests: the real binary and the library on generated fixtures (tests/fixtures,
//! made by scripts/make_fixtures.sh) and the shipped samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
mod cli;
mod hostile;
mod live;
mod monitor;
mod pipeline;
mod serve;

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(name)
}

pub fn test_model() -> PathBuf {
    root().join("models").join("test").join("synthscan-test.json")
}

pub fn shipped_model() -> PathBuf {
    root().join("models").join("synthscan.json")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
