//! `synthscan monitor` as a user runs it: a virtual microphone (an ALSA `file` PCM whose
//! `infile` is a recording) drives the real cpal capture path with no sound card, and raw PCM
//! on stdin drives the pipe path. Every live summary must equal `analyze` on the same audio.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::synthscan;
#[cfg(feature = "mic")]
use crate::{assert_one_clear_error, path_str};

fn sample(name: &str) -> PathBuf {
    crate::root().join("samples").join(name)
}

fn read_i16(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect()
}

#[cfg(feature = "mic")]
fn write_raw(path: &Path, interleaved: &[i16]) {
    let bytes: Vec<u8> = interleaved.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

#[cfg(feature = "mic")]
fn write_wav(path: &Path, interleaved: &[i16], channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in interleaved {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

#[cfg(feature = "mic")]
/// An ALSA configuration with one hinted capture PCM, `testmic`, reading `infile`.
fn virtual_mic(dir: &Path, infile: &Path) -> PathBuf {
    let conf = dir.join("asoundrc");
    std::fs::write(
        &conf,
        format!(
            "pcm.testmic {{ type file; slave.pcm \"null\"; file \"/dev/null\"; infile \"{}\"; format \"raw\";\n\
             hint {{ show on description \"synthscan test mic\" }} }}\n",
            infile.display()
        ),
    )
    .unwrap();
    conf
}

fn jsonl(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn analyze(path: &Path) -> Value {
    let out = synthscan()
        .args(["analyze", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

/// The live summary agrees with file analysis (scores to 1e-3: batch 1 vs 32 in ONNX Runtime).
fn assert_same_result(summary: &Value, file: &Value) {
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["verdict"], file["verdict"], "{summary} vs {file}");
    let close = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-3,
        _ => a == b,
    };
    assert!(close(&summary["score"], &file["score"]), "{summary} vs {file}");
    assert!(close(&summary["speech_s"], &file["speech_s"]));
    assert!(close(&summary["duration_s"], &file["duration_s"]));
    assert_eq!(
        summary["segments"].as_array().unwrap().len(),
        file["segments"].as_array().unwrap().len()
    );
    if let Some(chs) = file["channels"].as_array() {
        let live = summary["channels"].as_array().unwrap();
        for (a, b) in live.iter().zip(chs) {
            assert_eq!(a["verdict"], b["verdict"]);
            assert!(close(&a["score"], &b["score"]), "{a} vs {b}");
        }
    }
}

fn alerts(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "alert").collect()
}

/// Runs `monitor` on the virtual mic for exactly `seconds` of audio. The file PCM is not paced
/// (it delivers as fast as the callback returns) and repeats stale data past the end of its
/// file: the ring buffer must hold the whole file so nothing in it is dropped however slowly
/// the analysis starts, and the monitor must never read more than the file holds.
#[cfg(feature = "mic")]
fn monitor_mic(conf: &Path, channels: u16, seconds: f64, extra: &[&str]) -> Output {
    synthscan()
        .env(
            "ALSA_CONFIG_PATH",
            format!("/usr/share/alsa/alsa.conf:{}", conf.display()),
        )
        .args([
            "monitor",
            "--device",
            "testmic",
            "--rate",
            "16000",
            "--sample-format",
            "i16",
        ])
        .args(["--channels", &channels.to_string(), "--format", "jsonl"])
        .args(["--max-seconds", &seconds.to_string(), "--buffer-seconds", "60"])
        .args(extra)
        .output()
        .unwrap()
}

#[cfg(feature = "mic")]
#[test]
fn virtual_mic_synthetic_call_raises_an_alert_and_its_summary_matches_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let wav = sample("synthetic_robocall.wav");
    let pcm = read_i16(&wav);
    let raw = dir.path().join("in.raw");
    write_raw(&raw, &pcm);
    let conf = virtual_mic(dir.path(), &raw);
    let record = dir.path().join("heard.wav");
    let marker = dir.path().join("alert.txt");
    let cmd = format!("echo \"$SYNTHSCAN_CHANNEL $SYNTHSCAN_SCORE\" >> '{}'", marker.display());
    let out = monitor_mic(
        &conf,
        1,
        pcm.len() as f64 / 16_000.0,
        &["--record", &path_str(&record), "--alert-cmd", &cmd],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "flagged -> exit 1; stderr: {stderr}");
    let events = jsonl(&out);
    let raised = alerts(&events);
    assert_eq!(raised.len(), 1, "exactly one alert: {raised:?}");
    assert_eq!(raised[0]["state"], "raised");
    // 4.0 s at the shipped wideband threshold (tests/it/live.rs)
    assert!(raised[0]["time_s"].as_f64().unwrap() < 4.5);
    let updates: Vec<&Value> = events.iter().filter(|e| e["event"] == "update").collect();
    // An update at least every 250 ms of audio.
    assert!(updates.len() as f64 >= (pcm.len() as f64 / 16_000.0) * 4.0 - 1.0);
    let summary = events.last().unwrap();
    assert_eq!(summary["alerts"], 1);
    assert_same_result(summary, &analyze(&wav));
    // What was heard was kept, sample for sample (f32 of the i16 input).
    let heard: Vec<f32> = hound::WavReader::open(&record)
        .unwrap()
        .samples::<f32>()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(heard.len(), pcm.len());
    for (h, p) in heard.iter().zip(&pcm) {
        assert!((h - f32::from(*p) / 32768.0).abs() < 1e-6);
    }
    let ran = std::fs::read_to_string(&marker).unwrap();
    assert!(ran.starts_with("0 0."), "alert command output: {ran}");
}

#[cfg(feature = "mic")]
#[test]
fn virtual_mic_genuine_recording_raises_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let wav = sample("genuine_jfk.wav");
    let pcm = read_i16(&wav);
    let raw = dir.path().join("in.raw");
    write_raw(&raw, &pcm);
    let conf = virtual_mic(dir.path(), &raw);
    let out = monitor_mic(&conf, 1, pcm.len() as f64 / 16_000.0, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let events = jsonl(&out);
    assert!(alerts(&events).is_empty());
    assert_same_result(events.last().unwrap(), &analyze(&wav));
}

#[cfg(feature = "mic")]
#[test]
fn virtual_stereo_mic_scores_caller_and_agent_separately() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = read_i16(&sample("synthetic_robocall.wav"));
    let genuine = read_i16(&sample("genuine_jfk.wav"));
    let n = synthetic.len().min(genuine.len());
    let stereo: Vec<i16> = (0..n).flat_map(|i| [synthetic[i], genuine[i]]).collect();
    let raw = dir.path().join("in.raw");
    write_raw(&raw, &stereo);
    let wav = dir.path().join("call.wav");
    write_wav(&wav, &stereo, 2);
    let conf = virtual_mic(dir.path(), &raw);
    let out = monitor_mic(&conf, 2, n as f64 / 16_000.0, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let events = jsonl(&out);
    let raised = alerts(&events);
    assert!(
        !raised.is_empty() && raised.iter().all(|a| a["channel"] == 0),
        "{raised:?}"
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["channels"][0]["verdict"], "synthetic");
    assert_eq!(summary["channels"][1]["verdict"], "genuine");
    assert_same_result(summary, &analyze(&wav));
}

#[cfg(feature = "mic")]
#[test]
fn an_unknown_device_is_one_clear_error() {
    let out = synthscan()
        .args(["monitor", "--device", "no-such-device-xyz", "--format", "jsonl"])
        .output()
        .unwrap();
    assert_one_clear_error(&out, "no input device matches 'no-such-device-xyz'", "unknown device");
    assert!(out.stdout.is_empty());
}

#[test]
fn raw_stdin_monitor_matches_analyze() {
    let wav = sample("synthetic_robocall.wav");
    let pcm = read_i16(&wav);
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut child = synthscan()
        .args([
            "monitor",
            "-",
            "--raw-format",
            "s16le",
            "--raw-rate",
            "16000",
            "--format",
            "jsonl",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // Arrives in uneven pieces, as from a pipe.
        for piece in bytes.chunks(1234) {
            stdin.write_all(piece).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let events = jsonl(&out);
    assert_eq!(alerts(&events).len(), 1);
    assert_same_result(events.last().unwrap(), &analyze(&wav));
}

#[test]
fn monitor_stdin_without_raw_options_is_one_clear_error() {
    let out = synthscan()
        .args(["monitor", "-", "--format", "jsonl"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--raw-format and --raw-rate"), "{stderr}");
}
