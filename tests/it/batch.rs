//! `synthscan batch`: directories and lists in, one record per file out, resumable.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{fixture, path_str, synthscan, test_model};

fn batch(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_synthscan"))
        .arg("batch")
        .arg("--model")
        .arg(test_model())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn records(text: &str) -> Vec<Value> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn by_file(recs: &[Value]) -> HashMap<String, Value> {
    let mut m = HashMap::new();
    for r in recs {
        let name = r["file"].as_str().unwrap().to_string();
        assert!(m.insert(name.clone(), r.clone()).is_none(), "{name} reported twice");
    }
    m
}

/// A directory of mixed inputs: good files in several formats (one in a subdirectory),
/// broken ones, and a file the default patterns skip.
fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for (src, dst) in [
        ("speech_16000.wav", "a.wav"),
        ("fmt_flac.flac", "b.flac"),
        ("fmt_mp3.mp3", "sub/c.mp3"),
        ("fmt_vorbis.ogg", "sub/d.ogg"),
        ("stereo_speech_tone_16000.wav", "e.wav"),
        ("not_audio.wav", "broken.wav"),
        ("empty.wav", "sub/empty.wav"),
        ("speech_s16le_16000.raw", "skipped.raw"),
    ] {
        std::fs::copy(fixture(src), dir.join(dst)).unwrap();
    }
}

#[test]
fn a_directory_is_walked_recursively_and_bad_files_are_records_not_the_end() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let out = batch(&[&path_str(dir.path()), "--jobs", "2"], None);
    assert_eq!(out.status.code(), Some(2), "errors -> exit 2");
    let recs = by_file(&records(&String::from_utf8(out.stdout).unwrap()));
    assert_eq!(recs.len(), 7, "{:?}", recs.keys());
    let errors: Vec<&String> = recs
        .iter()
        .filter(|(_, r)| r.get("error").is_some())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        recs.values()
            .filter(|r| r.get("error").is_none())
            .all(|r| r["score"].is_number())
    );
    assert!(!recs.keys().any(|k| k.ends_with(".raw")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("7 files analysed"), "{stderr}");
    assert!(stderr.contains("2 errors"), "{stderr}");

    // --glob narrows what directories yield; CSV has a header and a row per channel.
    let out = batch(&[&path_str(dir.path()), "--glob", "sub/*.mp3", "--format", "csv"], None);
    assert_eq!(out.status.code().map(|c| c < 2), Some(true));
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("file,channel,score,verdict"));
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains("c.mp3"));
}

#[test]
fn one_job_and_two_jobs_agree_and_a_list_on_stdin_works() {
    let files: Vec<String> = ["speech_8000.wav", "speech_44100.wav", "fmt_mulaw.wav", "quad_8000.wav"]
        .iter()
        .map(|f| path_str(&fixture(f)))
        .collect();
    let list = files.join("\n") + "\n";
    let one = by_file(&records(
        &String::from_utf8(batch(&["--from-list", "-", "-j", "1"], Some(&list)).stdout).unwrap(),
    ));
    let two = by_file(&records(
        &String::from_utf8(batch(&["--from-list", "-", "-j", "2"], Some(&list)).stdout).unwrap(),
    ));
    assert_eq!(one.len(), 4);
    for f in &files {
        let (a, b) = (&one[f], &two[f]);
        assert_eq!(a["verdict"], b["verdict"]);
        assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-6);
    }
}

#[test]
fn resume_skips_what_was_scored_and_survives_a_partial_last_line() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let out_path = dir.path().join("out.jsonl");
    // A first run over part of the tree, then "killed" mid-record.
    let first = batch(
        &[
            &path_str(&dir.path().join("a.wav")),
            &path_str(&dir.path().join("b.flac")),
            "--resume",
            &path_str(&out_path),
        ],
        None,
    );
    assert!(first.status.code().unwrap() < 2);
    let mut f = std::fs::OpenOptions::new().append(true).open(&out_path).unwrap();
    write!(f, "{{\"file\":\"{}\",\"sco", dir.path().join("e.wav").display()).unwrap();
    drop(f);
    let second = batch(&[&path_str(dir.path()), "--resume", &path_str(&out_path)], None);
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("2 skipped as already scored"), "{stderr}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let recs = by_file(&records(&text));
    assert_eq!(recs.len(), 7, "each file once: {:?}", recs.keys());
    assert!(recs[&path_str(&dir.path().join("e.wav"))]["score"].is_number());
    // A third run has nothing left but the two broken files (errors are retried).
    let third = batch(&[&path_str(dir.path()), "--resume", &path_str(&out_path)], None);
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(
        stderr.contains("2 files analysed") && stderr.contains("5 skipped"),
        "{stderr}"
    );
}

#[test]
fn batch_needs_inputs() {
    let out = batch(&[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to analyse"));
}

/// `batch` run in `cwd` (for relative names).
fn batch_in(cwd: &Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synthscan"))
        .current_dir(cwd)
        .arg("batch")
        .arg("--model")
        .arg(test_model())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn resume_matches_files_however_they_are_named_including_names_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    std::fs::create_dir(&calls).unwrap();
    std::fs::copy(fixture("speech_16000.wav"), calls.join("a.wav")).unwrap();
    // Latin-1 "café.wav": not UTF-8
    let latin1 = OsStr::from_bytes(b"caf\xe9.wav");
    std::fs::copy(fixture("speech_8000.wav"), calls.join(latin1)).unwrap();
    let other = dir.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let out = dir.path().join("out.jsonl");

    // relative names from the directory above...
    let first = batch_in(
        dir.path(),
        &[OsStr::new("calls"), OsStr::new("--resume"), OsStr::new("out.jsonl")],
    );
    assert!(
        first.status.code().unwrap() < 2,
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // ...then absolute ones, then a detour through `..` from another directory: nothing redone
    let abs = batch_in(&other, &[calls.as_os_str(), OsStr::new("--resume"), out.as_os_str()]);
    let detour = batch_in(
        &other,
        &[
            OsStr::new("../calls/../calls"),
            OsStr::new("--resume"),
            OsStr::new("../out.jsonl"),
        ],
    );
    for run in [&abs, &detour] {
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.contains("0 files analysed") && stderr.contains("2 skipped"),
            "{stderr}"
        );
    }
    let recs = by_file(&records(&std::fs::read_to_string(&out).unwrap()));
    assert_eq!(recs.len(), 2, "{:?}", recs.keys());
    // the file is read by its real name; the report prints the name lossily
    let lossy = format!("{}/caf\u{fffd}.wav", calls.display());
    assert!(recs[&lossy]["score"].is_number(), "{:?}", recs[&lossy]);

    // analyze takes the name too, and prints it lossily
    let analyzed = Command::new(env!("CARGO_BIN_EXE_synthscan"))
        .args(["analyze", "-f", "jsonl", "--model"])
        .arg(test_model())
        .arg(calls.join(latin1))
        .output()
        .unwrap();
    assert!(analyzed.status.code().unwrap() < 2);
    let rec: Value = serde_json::from_slice(&analyzed.stdout).unwrap();
    assert_eq!(rec["file"], lossy);
    assert_eq!(rec["score"], recs[&lossy]["score"]);
}

#[test]
fn a_resume_file_in_use_or_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)
        .unwrap();
    held.lock().unwrap();
    let wav = path_str(&fixture("speech_16000.wav"));
    let second = batch(&[&wav, "--resume", &path_str(&out)], None);
    crate::assert_one_clear_error(&second, "is being written by another batch run", "locked");
    held.unlock().unwrap();
    let ok = batch(&[&wav, "--resume", &path_str(&out)], None);
    assert!(ok.status.code().unwrap() < 2);
    #[cfg(target_os = "linux")]
    {
        // /dev/full reads as endless zeros: it must be refused, not read into memory
        let started = std::time::Instant::now();
        let full = batch(&[&wav, "--resume", "/dev/full"], None);
        crate::assert_one_clear_error(&full, "needs a regular file", "/dev/full");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // and results written to a full device end the run with one clear error
        let to_full = batch(&[&wav, "-o", "/dev/full"], None);
        crate::assert_one_clear_error(&to_full, "No space left on device", "-o /dev/full");
    }
}

/// `features --from-list` reads its list as `batch` does: names that are not UTF-8, CRLF line
/// ends and `#` comments (it stopped at such a name before).
#[cfg(unix)]
#[test]
fn features_reads_a_list_with_names_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join(OsStr::from_bytes(b"caf\xe9.wav"));
    std::fs::copy(fixture("speech_16000.wav"), &latin1).unwrap();
    let mut list = b"# calls to extract\r\n".to_vec();
    list.extend_from_slice(latin1.as_os_str().as_bytes());
    list.extend_from_slice(b"\r\n\r\n");
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let out_dir = dir.path().join("features");
    let out = synthscan()
        .args(["features", "--from-list"])
        .arg(&list_path)
        .arg("-o")
        .arg(&out_dir)
        .args(["--model", test_model().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // read by its real name; the outputs are named lossily (U+FFFD for the byte)
    assert!(
        written
            .iter()
            .any(|n| n.to_string_lossy() == "caf\u{FFFD}.features.npy"),
        "{written:?}"
    );
}
