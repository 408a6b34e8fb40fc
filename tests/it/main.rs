//! Integration tests: the real binary and the library on generated fixtures (tests/fixtures,
//! made by scripts/make_fixtures.sh) and the shipped samples.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batch;
#[cfg(feature = "serve")]
mod browser;
mod capture;
mod channels;
mod cli;
mod hostile;
mod live;
mod monitor;
mod pipeline;
#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "serve")]
mod serve_hostile;
mod siprec;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// The binary under test.
pub fn synthscan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synthscan"))
}

/// Asserts that a run failed as bad input must: exit 2 and one stderr line saying `expect`.
/// `what` names the case in failure messages.
/// The word after `prefix` in a server's start line (`sip:`, `http://`: its address).
pub fn word_after(line: &str, prefix: &str) -> String {
    line.split(prefix)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {prefix} address in the start line: {line}"))
        .to_string()
}

pub fn assert_one_clear_error(out: &Output, expect: &str, what: &str) {
    assert_eq!(out.status.code(), Some(2), "{what}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(expect), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
}

/// `synthscan analyze -f json` with the test model: the first record (exit status below 2).
pub fn analyze_json(path: &Path) -> serde_json::Value {
    let out = synthscan()
        .args(["analyze", "-f", "json", "--model"])
        .arg(test_model())
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.code().unwrap() < 2,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

pub fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
