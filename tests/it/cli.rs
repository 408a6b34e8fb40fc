//! The real binary, as a user runs it.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::{assert_one_clear_error, fixture, path_str, shipped_model, synthscan, test_model};

/// Runs `analyze --format jsonl` with the test model; returns (exit code, parsed lines, stderr).
fn analyze(files: &[String], extra: &[&str]) -> (i32, Vec<Value>, String) {
    let out = synthscan()
        .args(["analyze", "--format", "jsonl", "--model"])
        .arg(test_model())
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn f(name: &str) -> String {
    path_str(&fixture(name))
}

#[test]
fn every_supported_format_decodes_to_about_three_seconds() {
    let names = [
        "speech_16000.wav",
        "fmt_pcm_u8.wav",
        "fmt_float32.wav",
        "fmt_mulaw.wav",
        "fmt_alaw.wav",
        "fmt_adpcm_ima.wav",
        "fmt_adpcm_ms.wav",
        "fmt_flac.flac",
        "fmt_vorbis.ogg",
        "fmt_mp3.mp3",
        "mp3_named.wav",
    ];
    let files: Vec<String> = names.iter().map(|n| f(n)).collect();
    let (code, lines, stderr) = analyze(&files, &[]);
    assert_ne!(code, 2, "{stderr}");
    assert_eq!(lines.len(), names.len());
    for (line, name) in lines.iter().zip(names) {
        assert_eq!(line["file"], f(name), "order and names are kept");
        let d = line["duration_s"].as_f64().unwrap_or_else(|| panic!("{name}: {line}"));
        assert!((2.9..3.2).contains(&d), "{name}: duration {d}");
        assert!(line["speech_s"].as_f64().unwrap() > 1.0, "{name}: {line}");
        assert_eq!(line["model"]["name"], "synthscan-test");
    }
    // The high-resolution formats (short fixtures) decode too.
    let short = [
        "extra_chunks.wav",
        "fmt_pcm_s24.wav",
        "fmt_pcm_s32.wav",
        "fmt_float64_extensible.wav",
        "fmt_pcm_s24_extensible.wav",
    ];
    let files: Vec<String> = short.iter().map(|n| f(n)).collect();
    let (_, lines, _) = analyze(&files, &[]);
    for (line, name) in lines.iter().zip(short) {
        assert!(line["duration_s"].as_f64().unwrap() >= 0.99, "{name}: {line}");
        assert!(line.get("error").is_none(), "{name}: {line}");
    }
}

#[test]
fn malformed_inputs_each_give_one_clear_error_and_exit_2_while_others_are_analysed() {
    let bad = [
        ("empty.wav", "empty"),
        ("not_audio.wav", "unrecognised"),
        ("random_bytes.flac", "unrecognised"),
        ("zero_rate.wav", "sample rate 0 Hz"),
        ("zero_channels.wav", "channel"),
        ("nan_inf_float32.wav", "non-finite"),
        ("does_not_exist.wav", "cannot read"),
    ];
    let mut files: Vec<String> = bad.iter().map(|(n, _)| f(n)).collect();
    files.push(f("speech_16000.wav"));
    let (code, lines, stderr) = analyze(&files, &[]);
    assert_eq!(code, 2);
    assert_eq!(lines.len(), bad.len() + 1);
    for (line, (name, phrase)) in lines.iter().zip(bad) {
        let err = line["error"].as_str().unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(err.contains(phrase), "{name}: {err}");
        assert_eq!(
            stderr.lines().filter(|l| l.contains(&f(name))).count(),
            1,
            "one message for {name}"
        );
    }
    assert!(
        lines.last().unwrap()["verdict"].is_string(),
        "the good file is still analysed"
    );
}

#[test]
fn truncated_and_lying_headers_are_refused_unless_allowed() {
    let (code, lines, stderr) = analyze(&[f("truncated.wav"), f("lying_sizes.wav"), f("speech_16000.wav")], &[]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    for l in &lines[..2] {
        let e = l["error"].as_str().unwrap();
        assert!(e.contains("refusing a truncated file"), "{e}");
        // the library says what went wrong; the command line adds the flag that helps
        assert!(e.contains("--allow-truncated"), "{e}");
    }
    assert!(lines[2]["score"].is_number());
    let (code, lines, _) = analyze(&[f("truncated.wav"), f("lying_sizes.wav")], &["--allow-truncated"]);
    assert_ne!(code, 2);
    assert!((lines[0]["duration_s"].as_f64().unwrap() - 10000.0 / 2.0 / 16000.0).abs() < 0.01);
    assert!((lines[1]["duration_s"].as_f64().unwrap() - 1.0).abs() < 0.01);
    let warning = lines[0]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("shorter than its header"), "{warning}");
    let (_, ok, _) = analyze(&[f("speech_16000.wav")], &[]);
    assert!(ok[0].get("warnings").is_none());
}

#[test]
fn silence_noise_and_tone_are_inconclusive_not_scored() {
    for name in ["silence_16000.wav", "tone1k_16000.wav"] {
        let (code, lines, _) = analyze(&[f(name)], &[]);
        assert_eq!(code, 0, "{name}");
        assert_eq!(lines[0]["verdict"], "inconclusive", "{name}: {}", lines[0]);
        assert!(lines[0]["speech_s"].as_f64().unwrap() < 0.5, "{name}");
    }
}

#[test]
fn stereo_is_scored_per_channel() {
    let (_, lines, _) = analyze(&[f("stereo_speech_tone_16000.wav"), f("quad_8000.wav")], &[]);
    let chans = lines[0]["channels"].as_array().unwrap();
    assert_eq!(chans.len(), 2);
    assert_ne!(chans[0]["verdict"], "inconclusive", "speech channel is judged");
    assert_eq!(chans[1]["verdict"], "inconclusive", "tone channel is not");
    assert_eq!(
        lines[0]["score"], chans[0]["score"],
        "file score is the deciding channel's"
    );
    assert_eq!(lines[1]["channels"].as_array().unwrap().len(), 4);
    let (_, mono, _) = analyze(&[f("speech_16000.wav")], &[]);
    assert!(mono[0].get("channels").is_none());
}

#[test]
fn raw_stdin_in_every_encoding_matches_the_wav() {
    let (_, wav, _) = analyze(&[f("speech_8000.wav")], &[]);
    for (name, format, rate) in [
        ("speech_s16le_16000.raw", "s16le", "16000"),
        ("speech_ulaw_8000.ul", "ulaw", "8000"),
        ("speech_alaw_8000.al", "alaw", "8000"),
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let mut child = synthscan()
            .args([
                "analyze",
                "-f",
                "jsonl",
                "--raw-format",
                format,
                "--raw-rate",
                rate,
                "--model",
            ])
            .arg(crate::test_model())
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["file"], "-");
        assert!((v["duration_s"].as_f64().unwrap() - 3.0).abs() < 0.01, "{name}: {v}");
        assert!(v["speech_s"].as_f64().unwrap() > 1.0);
        if format != "s16le" {
            // G.711 of the same 8 kHz speech lands near the 16-bit WAV's score.
            let d = (v["score"].as_f64().unwrap() - wav[0]["score"].as_f64().unwrap()).abs();
            assert!(d < 0.1, "{name}: {d}");
        }
    }
    let out = synthscan()
        .args(["analyze", "-"])
        .arg("--model")
        .arg(test_model())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--raw-format"));
}

#[test]
fn a_tampered_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = crate::root().join("models/test");
    std::fs::copy(src.join("synthscan-test.json"), dir.path().join("m.json")).unwrap();
    let mut onnx = std::fs::read(src.join("synthscan-test.onnx")).unwrap();
    let last = onnx.len() - 1;
    onnx[last] ^= 1;
    std::fs::write(dir.path().join("synthscan-test.onnx"), onnx).unwrap();
    let out = synthscan()
        .args(["analyze", "--model"])
        .arg(dir.path().join("m.json"))
        .arg(f("speech_16000.wav"))
        .output()
        .unwrap();
    assert_one_clear_error(&out, "does not match its manifest", "corrupted model");
}

#[test]
fn the_default_model_flags_the_synthetic_sample_and_exit_codes_follow() {
    let root = crate::root();
    let run = |name: &str| {
        synthscan()
            .args(["analyze", "-f", "json"])
            .arg(root.join("samples").join(name))
            .output()
            .unwrap()
    };
    let synthetic = run("synthetic_robocall.wav");
    assert_eq!(synthetic.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&synthetic.stdout).unwrap();
    assert_eq!(v[0]["verdict"], "synthetic");
    assert_eq!(v[0]["model"]["name"], "synthscan");
    let genuine = run("genuine_jfk.wav");
    assert_eq!(genuine.status.code(), Some(0));
}

#[test]
fn csv_text_and_features_outputs() {
    let out = synthscan()
        .args(["analyze", "-f", "csv", "--model"])
        .arg(test_model())
        .args([f("stereo_speech_tone_16000.wav"), f("empty.wav")])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("file,channel,score,verdict"));
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows[3].contains(",error,"));

    let dir = tempfile::tempdir().unwrap();
    #[cfg(feature = "plot")]
    {
        let plot = dir.path().join("p.svg");
        let out = synthscan()
            .args(["analyze", "--color", "never", "--model"])
            .arg(test_model())
            .arg("--plot")
            .arg(&plot)
            .arg(f("speech_16000.wav"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("score") && text.contains("speech"), "{text}");
        assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));
    }

    let out = synthscan()
        .args(["features", "--model"])
        .arg(test_model())
        .arg("--out-dir")
        .arg(dir.path())
        .arg(f("speech_16000.wav"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let feats: ndarray::Array2<f32> = ndarray_npy::read_npy(dir.path().join("speech_16000.features.npy")).unwrap();
    assert_eq!(feats.shape(), &[299, 64]);
}

#[test]
fn info_reports_the_verified_model() {
    let out = synthscan().arg("info").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(verified)") && text.contains("synthscan"), "{text}");
}

/// Issue 40: ONNX Runtime writes usage events (a device id and a database) under the user's
/// cache directory unless told not to; the README promises nothing is written to disk.
#[test]
fn a_run_leaves_nothing_in_the_users_home_or_cache() {
    let home = tempfile::tempdir().unwrap();
    let out = synthscan()
        .args([
            "analyze",
            "--model",
            &path_str(&shipped_model()),
            &f("speech_16000.wav"),
        ])
        .env("HOME", home.path())
        .env_remove("XDG_CACHE_HOME")
        .env_remove("ORT_DISABLE_TELEMETRY")
        .output()
        .unwrap();
    assert!(out.status.success() || out.status.code() == Some(1), "{out:?}");
    let left = walk(home.path());
    assert!(left.is_empty(), "files written under HOME: {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Issue 40: when the reader of standard output goes away, results were lost: exit 2 with one
/// line, not 0 ("nothing flagged") whatever was found.
#[test]
fn a_closed_standard_output_ends_analyze_with_exit_2_and_a_message() {
    // ~366 bytes a record: 300 records overflow the pipe's 64 KiB, so writing must outlast the
    // reader whatever the timing
    let files: Vec<String> = (0..300).map(|_| f("speech_16000.wav")).collect();
    let mut child = synthscan()
        .args(["analyze", "-f", "jsonl", "--model"])
        .arg(test_model())
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // read one line, then hang up, as `| head -1` does
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    assert!(first.starts_with("{\"file\""), "{first}");
    drop(out);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(2));
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("standard output was closed"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Issue 40: a pipe named as a file (/dev/stdin, `<(cat x.wav)`) reports a size of 0 and used to
/// be refused as empty; it is read as a stream and scores like the file. A directory is named as one.
#[test]
fn a_pipe_named_as_a_file_is_read_as_a_stream_and_a_directory_is_refused_clearly() {
    let (_, file, _) = analyze(&[f("speech_16000.wav")], &[]);
    let mut child = synthscan()
        .args(["analyze", "-f", "jsonl", "--model"])
        .arg(test_model())
        .arg("/dev/stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(fixture("speech_16000.wav")).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let piped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        (piped["score"].as_f64().unwrap() - file[0]["score"].as_f64().unwrap()).abs() < 1e-4,
        "{piped} vs {}",
        file[0]
    );
    assert!((piped["duration_s"].as_f64().unwrap() - file[0]["duration_s"].as_f64().unwrap()).abs() < 1e-3);

    let dir = tempfile::tempdir().unwrap();
    let out = synthscan()
        .args(["analyze", "-f", "jsonl", "--model"])
        .arg(test_model())
        .arg(dir.path())
        .output()
        .unwrap();
    assert_one_clear_error(&out, "is a directory", "a directory");
}
