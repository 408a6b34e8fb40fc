//! Load benchmark for `synthscan siprec` (loopback only, bounded in calls and time), with SIPp
//! as the recording client.
//!
//! Starts the release recorder, then SIPp with the SIPREC scenario of the tests
//! (tests/fixtures/sipp/siprec_uac.xml): N concurrent two-party calls, each with its first
//! participant's 8 kHz PCMU stream played by SIPp from a pcap of S seconds, and its second
//! participant's stream sent by this program, 20 ms packets paced in real time to the port the
//! recorder answered. Latency is measured on the second streams: from sending the packet that
//! completes an update's audio to reading that update on the recorder's standard output; the
//! recorder's own histogram (RTP arrival to event, every leg) is reported beside it. A call
//! "dropped" anything if a leg misses its summary or its summary is short of audio; RTP
//! dropped, lost and late come from /metrics.
//!
//!     cargo build --release && cargo bench --bench siprec_load -- 200 60    # N calls, S seconds

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `seconds` of the benchmarks' call audio, looped.
fn call_audio(seconds: f64) -> Vec<u8> {
    let n = (seconds * 8000.0) as usize / 160 * 160;
    common::call_audio().into_iter().cycle().take(n).collect()
}

fn rtp(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A pcap (Ethernet, IPv4, UDP) of the RTP packets of `audio`, 20 ms apart, for SIPp to play.
fn write_pcap(path: &Path, audio: &[u8]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    for (k, chunk) in audio.chunks(160).enumerate() {
        let payload = rtp(k as u16, 160 * k as u32, 0x5151, chunk);
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0];
        f.extend_from_slice(&((28 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        f.extend_from_slice(&6000u16.to_be_bytes());
        f.extend_from_slice(&6002u16.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&payload);
        let t = 0.02 * k as f64;
        b.extend_from_slice(&(t as u32).to_le_bytes());
        b.extend_from_slice(&((t.fract() * 1e6) as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&f);
    }
    std::fs::write(path, b).unwrap();
}

fn metrics(http: &str) -> HashMap<String, f64> {
    let mut s = std::net::TcpStream::connect(http).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The upper bound of the histogram bucket holding quantile `q` of the server's latencies.
fn histogram_quantile(m: &HashMap<String, f64>, q: f64) -> String {
    let name = "synthscan_score_latency_seconds";
    let count = m.get(&format!("{name}_count")).copied().unwrap_or(0.0);
    let mut buckets: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&format!("{name}_bucket{{le=\""))?.strip_suffix("\"}")?;
            Some((le.parse().unwrap_or(f64::INFINITY), *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
        .iter()
        .find(|(_, c)| *c >= q * count)
        .map_or("-".into(), |(le, _)| format!("<= {:.0} ms", le * 1e3))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let calls: usize = args.first().map_or(200, |s| s.parse().unwrap());
    let seconds: f64 = args.get(1).map_or(60.0, |s| s.parse().unwrap());
    let bin = root().join("target/release/synthscan");
    let dir = tempfile::tempdir().unwrap();
    let audio = Arc::new(call_audio(seconds));
    let pcap = dir.path().join("leg1.pcap");
    write_pcap(&pcap, &audio);
    let scenario = std::fs::read_to_string(root().join("tests/fixtures/sipp/siprec_uac.xml"))
        .unwrap()
        .replace("@PCAP@", &pcap.display().to_string())
        .replace("@PAUSE_MS@", &((seconds * 1000.0) as u64 + 1500).to_string());
    let scenario_path = dir.path().join("siprec_uac.xml");
    std::fs::write(&scenario_path, scenario).unwrap();

    let mut recorder = Command::new(&bin)
        .args([
            "siprec",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--workers",
            "2",
        ])
        .args(["--rtp-ports", "42000-44999", "--max-calls", "2000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("build the release binary first: cargo build --release");
    let mut lines = BufReader::new(recorder.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let sip = common::word_after(&first, "sip:");
    let http = common::word_after(&first, "http://");
    std::thread::spawn(move || for _ in lines {});

    // second participants: a sender thread per call, started when the call is
    type Sent = Arc<Mutex<Vec<Instant>>>;
    let sent: Arc<Mutex<HashMap<String, Sent>>> = Arc::new(Mutex::new(HashMap::new()));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let summaries: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let stdout = recorder.stdout.take().unwrap();
    let reader = {
        let (sent, latencies, summaries, audio) = (
            Arc::clone(&sent),
            Arc::clone(&latencies),
            Arc::clone(&summaries),
            Arc::clone(&audio),
        );
        std::thread::spawn(move || {
            // updates sent when a call ends (its BYE comes 1.5 s after its audio) are not live
            let mut ended = std::collections::HashSet::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line).unwrap();
                let call = v["call_id"].as_str().unwrap_or_default().to_string();
                match v["event"].as_str() {
                    Some("call") if v["state"] == "started" => {
                        let port = v["legs"][1]["port"].as_u64().unwrap() as u16;
                        let times: Sent = Arc::default();
                        sent.lock().unwrap().insert(call.clone(), Arc::clone(&times));
                        let audio = Arc::clone(&audio);
                        std::thread::spawn(move || send_leg(port, &audio, &times));
                    }
                    Some("call") if v["state"] == "ended" => {
                        ended.insert(call);
                    }
                    Some("update") if v["leg"] == "Bob" && !ended.contains(&call) => {
                        let packet = ((v["time_s"].as_f64().unwrap() / 0.02).round() as usize).saturating_sub(1);
                        let times = sent.lock().unwrap().get(&call).cloned();
                        if let Some(at) = times.and_then(|t| t.lock().unwrap().get(packet).copied()) {
                            latencies.lock().unwrap().push(at.elapsed().as_secs_f64());
                        }
                    }
                    Some("summary") => summaries.lock().unwrap().push(v),
                    _ => {}
                }
            }
        })
    };

    let cpu0 = common::cpu_seconds(recorder.id());
    let wall0 = Instant::now();
    let rate = (calls as f64 / 5.0).ceil().max(1.0).to_string();
    let status = Command::new("sipp")
        .args([
            "-sf",
            &scenario_path.display().to_string(),
            "-m",
            &calls.to_string(),
            "-l",
            &calls.to_string(),
        ])
        .args([
            "-r",
            &rate,
            "-rp",
            "1000",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-mp",
            "26000",
            "-t",
            "u1",
        ])
        .args([
            "-nostdin",
            "-timeout",
            &format!("{}s", seconds as u64 + 120),
            "-timeout_error",
            "-trace_err",
        ])
        .arg("-error_file")
        .arg(dir.path().join("sipp_errors.log"))
        .arg(&sip)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp (scripts/setup.sh installs sip-tester)");
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = common::cpu_seconds(recorder.id()) - cpu0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while summaries.lock().unwrap().len() < 2 * calls && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = metrics(&http);
    let peak_mb = common::peak_rss_mb(recorder.id());
    let _ = recorder.kill();
    let _ = recorder.wait();
    let _ = reader.join();

    let summaries = summaries.lock().unwrap();
    let short = summaries
        .iter()
        .filter(|s| s["duration_s"].as_f64().unwrap_or(0.0) < seconds - 0.1)
        .count();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| common::quantile_ms(&lat, p);
    let get = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    println!(
        "calls {calls} ({} legs), {seconds:.0} s: sipp {}, summaries {} of {}, short {short}; RTP packets {}, \
         dropped {}, lost {}, late {}; second-leg update latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms \
         ({} updates); server histogram p50 {} p99 {}; server CPU {:.1} s = {:.0} % of one core over {:.0} s, peak RSS {peak_mb:.0} MB",
        2 * calls,
        if status.success() { "ok" } else { "FAILED" },
        summaries.len(),
        2 * calls,
        get("synthscan_rtp_packets_total"),
        get("synthscan_rtp_dropped_total"),
        get("synthscan_rtp_lost_total"),
        get("synthscan_rtp_late_total"),
        q(0.5),
        q(0.99),
        q(1.0),
        lat.len(),
        histogram_quantile(&m, 0.5),
        histogram_quantile(&m, 0.99),
        cpu,
        100.0 * cpu / wall,
        wall
    );
}

/// The second participant's stream: 20 ms packets paced in real time, each send time kept.
fn send_leg(port: u16, audio: &[u8], times: &Mutex<Vec<Instant>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for (k, chunk) in audio.chunks(160).enumerate() {
        let due = start + Duration::from_millis(20 * k as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let packet = rtp(k as u16, 160 * k as u32, 0x2222, chunk);
        // the time is kept first, so an update never finds its packet missing
        times.lock().unwrap().push(Instant::now());
        let _ = socket.send_to(&packet, ("127.0.0.1", port));
    }
}
