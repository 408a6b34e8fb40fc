//! `synthscan siprec` against real SIP clients on 127.0.0.1: SIPp (Debian's sip-tester,
//! installed by scripts/setup.sh) as the recording client with a SIPREC scenario
//! (tests/fixtures/sipp/siprec_uac.xml: multipart INVITE with metadata, RTP played from a pcap
//! the test writes from a shipped sample, BYE), and hand-made SIP over UDP for what SIPp's
//! scenario does not cover (keep-alives, refusals, idle calls, re-INVITEs).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use synthscan::audio::{f32_to_ulaw, ulaw_to_f32};

use crate::capture::{Udp, frame, phone_samples, rtp, write_pcap, write_wav};
use crate::{analyze_json, fixture, synthscan, test_model};

struct Recorder {
    child: Child,
    sip: SocketAddr,
    http: String,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Recorder {
    fn start(extra: &[&str]) -> Recorder {
        let mut child = synthscan()
            .args([
                "siprec",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--workers",
                "2",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let sip = first
            .split("sip:")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected start line: {first}"))
            .parse()
            .unwrap();
        let http = first
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no HTTP address in: {first}"))
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                sink.lock().unwrap().push(v);
            }
        });
        Recorder {
            child,
            sip,
            http,
            events,
        }
    }

    /// The first event `pred` accepts, waiting up to `limit`.
    fn wait_for(&self, limit: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            if let Some(v) = self.events.lock().unwrap().iter().find(|v| pred(v)) {
                return v.clone();
            }
            assert!(
                started.elapsed() < limit,
                "no {what} within {limit:?}: {:?}",
                self.events.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let text = reqwest::blocking_get(&format!("http://{}/metrics", self.http));
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    }
}

mod reqwest {
    /// A GET on a plain-HTTP loopback address, without an async runtime.
    pub fn blocking_get(url: &str) -> String {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host).unwrap();
        use std::io::{Read, Write};
        write!(s, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

/// 8 kHz mu-law bytes of a shipped sample, and what they decode to.
fn leg_audio(sample: &str, seconds: f64) -> (Vec<u8>, Vec<f32>) {
    let samples = phone_samples(sample);
    let n = ((seconds * 8000.0) as usize).min(samples.len()) / 160 * 160;
    let bytes: Vec<u8> = samples[..n].iter().map(|&x| f32_to_ulaw(x)).collect();
    let decoded = bytes.iter().map(|&b| ulaw_to_f32(b)).collect();
    (bytes, decoded)
}

/// `analyze` of the same audio in an 8 kHz WAV (with the test model, as the recorder here):
/// what a leg's summary must equal.
fn analyze_leg(dir: &Path, name: &str, decoded: &[f32]) -> Value {
    let wav = dir.join(format!("{name}.wav"));
    write_wav(&wav, decoded);
    analyze_json(&wav)
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// RTP packets of 20 ms PCMU for `bytes`.
fn packets(bytes: &[u8], ssrc: u32) -> Vec<Vec<u8>> {
    bytes
        .chunks(160)
        .enumerate()
        .map(|(k, chunk)| rtp(0, 1000 + k as u16, 160 * k as u32, ssrc, chunk))
        .collect()
}

/// Tolerance for a leg's scores against `analyze` of the same samples: the live path and file
/// analysis share one state machine, so they agree to the reports' rounding.
const SCORE_TOLERANCE: f64 = 1e-3;

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= SCORE_TOLERANCE,
        _ => a == b,
    }
}

fn run_sipp_call(transport: &str) {
    let model = test_model();
    let rec = Recorder::start(&["--rtp-ports", "41000-41999", "--model", model.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let (alice, alice_pcm) = leg_audio("synthetic_robocall.wav", 8.0);
    let (bob, bob_pcm) = leg_audio("genuine_jfk.wav", 8.0);
    // the pcap SIPp plays: Alice's stream, 20 ms apart
    let frames: Vec<(f64, Vec<u8>)> = packets(&alice, 0x1111)
        .into_iter()
        .enumerate()
        .map(|(k, payload)| {
            let udp = Udp {
                src: ([127, 0, 0, 1], 6000),
                dst: ([127, 0, 0, 1], 6002),
                payload,
            };
            (1.0 + 0.02 * k as f64, frame(&udp))
        })
        .collect();
    let pcap = dir.path().join("alice.pcap");
    write_pcap(&pcap, &frames);
    let scenario = std::fs::read_to_string(fixture("sipp/siprec_uac.xml"))
        .unwrap()
        .replace("@PCAP@", &pcap.display().to_string())
        .replace("@PAUSE_MS@", &((alice.len() / 8 + 1500).to_string()));
    let scenario_path = dir.path().join("siprec_uac.xml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let sipp_port = free_udp_port().to_string();
    let media_port = (free_udp_port() & !1).to_string();
    let mut sipp = Command::new("sipp")
        .args([
            "-sf",
            &scenario_path.display().to_string(),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
        ])
        .args(["-p", &sipp_port, "-mp", &media_port, "-t", transport, "-nostdin"])
        .args(["-timeout", "60s", "-timeout_error", "-trace_err", "-error_file"])
        .arg(dir.path().join("sipp_errors.log"))
        .arg(rec.sip.to_string())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (scripts/setup.sh installs sip-tester)");

    // the call opens with a leg per participant, named from the metadata
    let started = rec.wait_for(Duration::from_secs(20), "call start", |v| {
        v["event"] == "call" && v["state"] == "started"
    });
    let legs = started["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2, "{started}");
    assert_eq!(
        (legs[0]["leg"].as_str(), legs[1]["leg"].as_str()),
        (Some("Alice"), Some("Bob"))
    );
    assert_eq!(legs[0]["participant"], "sip:alice@example.com");
    assert_eq!(legs[0]["codec"], "PCMU");
    assert_eq!(started["transport"], if transport == "u1" { "UDP" } else { "TCP" });
    // Bob's stream from this test, to the port answered for him
    let bob_port = legs[1]["port"].as_u64().unwrap() as u16;
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets(&bob, 0x2222) {
        sender.send_to(&p, ("127.0.0.1", bob_port)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }

    let status = sipp.wait().unwrap();
    let errors = std::fs::read_to_string(dir.path().join("sipp_errors.log")).unwrap_or_default();
    assert!(status.success(), "sipp failed ({status}): {errors}");
    let ended = rec.wait_for(Duration::from_secs(10), "call end", |v| {
        v["event"] == "call" && v["state"] == "ended"
    });
    assert_eq!(ended["reason"], "bye");
    for (leg, pcm) in [("Alice", &alice_pcm), ("Bob", &bob_pcm)] {
        let summary = rec.wait_for(Duration::from_secs(20), "summary", |v| {
            v["event"] == "summary" && v["leg"] == leg
        });
        assert_eq!(summary["call_id"], started["call_id"]);
        let file = analyze_leg(dir.path(), leg, pcm);
        assert!(
            (summary["duration_s"].as_f64().unwrap() - file["duration_s"].as_f64().unwrap()).abs() < 0.021,
            "{leg}: {summary} vs {file}"
        );
        for key in ["score", "verdict", "speech_s", "threshold"] {
            assert!(close(&summary[key], &file[key]), "{leg} {key}: {summary} vs {file}");
        }
        let live = summary["segments"].as_array().unwrap();
        let want = file["segments"].as_array().unwrap();
        assert_eq!(live.len(), want.len(), "{leg}");
        for (a, b) in live.iter().zip(want) {
            assert!(close(&a["score"], &b["score"]), "{leg}: {a} vs {b}");
        }
    }
    // updates name their call and leg too
    let update = rec.wait_for(Duration::from_secs(1), "update", |v| {
        v["event"] == "update" && v["leg"] == "Alice"
    });
    assert_eq!(update["call_id"], started["call_id"]);
    assert_eq!(rec.metric("synthscan_calls_total"), 1.0);
    assert_eq!(rec.metric("synthscan_calls_open"), 0.0);
    let packets_sent = (alice.len() + bob.len()) as f64 / 160.0;
    assert_eq!(rec.metric("synthscan_rtp_packets_total"), packets_sent);
    assert_eq!(rec.metric("synthscan_rtp_lost_total"), 0.0);
}

#[test]
fn a_sipp_recording_client_over_udp_gets_a_summary_per_participant_equal_to_analyze() {
    run_sipp_call("u1");
}

#[test]
fn a_sipp_recording_client_over_tcp_gets_the_same() {
    run_sipp_call("t1");
}
