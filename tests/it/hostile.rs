//! Hostile and broken inputs (tests/fixtures/malformed, made by scripts/make_malformed.py):
//! each is one clear error and exit 2, never a panic or a hang, and a batch goes on past them.

use serde_json::Value;

use crate::{assert_one_clear_error, fixture, path_str, synthscan, test_model};

fn malformed_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(fixture("malformed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    files
}

#[test]
fn every_malformed_file_is_one_clear_error() {
    for f in malformed_files() {
        let out = synthscan()
            .args(["analyze", "-f", "jsonl", "--model"])
            .arg(test_model())
            .arg(&f)
            .output()
            .unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}: one line, got:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
        let msg = rec["error"].as_str().unwrap_or_else(|| panic!("{name}: {rec}"));
        assert!(msg.len() > 10 && !msg.contains('\n'), "{name}: {msg}");
    }
}

#[test]
fn a_batch_scores_the_good_files_among_the_malformed_ones() {
    let mut args: Vec<String> = malformed_files().iter().map(|p| path_str(p)).collect();
    args.insert(5, path_str(&fixture("speech_16000.wav")));
    args.push(path_str(&fixture("fmt_flac.flac")));
    let list = args.join("\n");
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let out = synthscan()
        .args(["batch", "-j", "2", "--model"])
        .arg(test_model())
        .arg("--from-list")
        .arg(&list_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let recs: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), args.len());
    let scored: Vec<&Value> = recs.iter().filter(|r| r.get("error").is_none()).collect();
    assert_eq!(scored.len(), 2, "{scored:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// Replays fuzz findings (tests/fixtures/fuzz) through the same harness as fuzz/fuzz_targets.
#[test]
fn fuzz_regressions_replay_without_panics() {
    use synthscan::detect::FrontEnd;
    let model = synthscan::LoadedModel::load(&crate::shipped_model()).unwrap();
    // features: NaN/Inf or huge floats fed straight to the front end once reached rubato's
    // FFT and panicked inside it; now the front end refuses them with an error.
    let data = std::fs::read(fixture("fuzz/features-crash-f26a7a3f.bin")).unwrap();
    let rate = [8_000, 16_000, 22_050, 44_100][usize::from(data[0] % 4)];
    let chunk = usize::from(data[1]).max(1) * 7;
    let samples: Vec<f32> = data[2..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut fe = FrontEnd::new(&model.manifest, rate).unwrap();
    let pieces: Vec<&[f32]> = samples.chunks(chunk).collect();
    let mut failed = false;
    for (i, piece) in pieces.iter().enumerate() {
        if fe.push(piece, i + 1 == pieces.len()).is_err() {
            failed = true;
            break;
        }
    }
    assert!(
        failed,
        "the crash input holds non-finite or huge samples and must be refused"
    );
}

/// A manifest that disagrees with its (untampered) model: each is refused at load, one line.
#[test]
fn manifests_that_do_not_match_their_model_are_refused() {
    let src = crate::root().join("models/test");
    let base: Value = serde_json::from_slice(&std::fs::read(src.join("synthscan-test.json")).unwrap()).unwrap();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 4] = [
        ("n_bins", |m| m["features"]["n_bins"] = 40.into(), "has shape"),
        ("window", |m| m["window"]["frames"] = 100.into(), "has shape"),
        (
            "output",
            |m| m["io"]["output"] = "probability".into(),
            "no output named",
        ),
        ("input", |m| m["io"]["input"] = "audio".into(), "input"),
    ];
    for (what, edit, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(src.join("synthscan-test.onnx"), dir.path().join("synthscan-test.onnx")).unwrap();
        let mut m = base.clone();
        edit(&mut m);
        std::fs::write(dir.path().join("m.json"), serde_json::to_vec(&m).unwrap()).unwrap();
        let out = synthscan()
            .args(["analyze", "--model"])
            .arg(dir.path().join("m.json"))
            .arg(fixture("speech_16000.wav"))
            .output()
            .unwrap();
        assert_one_clear_error(&out, expect, what);
    }
}
