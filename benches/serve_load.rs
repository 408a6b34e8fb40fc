//! Load benchmark for `synthscan serve` (loopback only, bounded in streams and time).
//!
//! Starts the release server, opens N WebSocket streams that each send 8 kHz mu-law audio as
//! telephony media JSON in 20 ms frames paced in real time for S seconds, and measures the
//! score latency seen by the client: from sending the frame that completes an update's audio to
//! receiving that update. A stream "dropped" anything if it misses an update or its summary.
//!
//!     cargo bench --bench serve_load -- 200 60        # N streams, S seconds
//!     cargo bench --bench serve_load -- 50,100,200 30 # a sweep

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct StreamResult {
    latencies_s: Vec<f64>,
    updates: usize,
    summary: bool,
}

async fn one_stream(
    addr: String,
    audio: Arc<Vec<u8>>,
    offset: usize,
    seconds: f64,
    start_at: tokio::time::Instant,
) -> StreamResult {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/stream"))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let frames = (seconds * 50.0) as usize;
    let sent_at: Arc<std::sync::Mutex<Vec<Option<Instant>>>> = Arc::new(std::sync::Mutex::new(vec![None; frames]));
    let reader = {
        let sent_at = Arc::clone(&sent_at);
        tokio::spawn(async move {
            let mut res = StreamResult {
                latencies_s: Vec::new(),
                updates: 0,
                summary: false,
            };
            while let Some(Ok(msg)) = rx.next().await {
                let Message::Text(t) = msg else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["event"].as_str() {
                    Some("update") => {
                        let time_s = v["time_s"].as_f64().unwrap();
                        let frame = (time_s * 50.0).round() as usize;
                        if (time_s * 4.0).fract() == 0.0 && frame >= 1 && frame <= frames {
                            res.updates += 1;
                            if let Some(Some(t0)) = sent_at.lock().unwrap().get(frame - 1) {
                                res.latencies_s.push(t0.elapsed().as_secs_f64());
                            }
                        }
                    }
                    Some("summary") => res.summary = true,
                    _ => {}
                }
            }
            res
        })
    };
    tx.send(Message::Text(
        json!({"event": "start", "streamSid": format!("load{offset}"),
               "start": {"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        .to_string()
        .into(),
    ))
    .await
    .unwrap();
    let mut tick = tokio::time::interval_at(start_at, Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let b64 = base64::engine::general_purpose::STANDARD;
    for i in 0..frames {
        tick.tick().await;
        let lo = (offset + i * 160) % (audio.len() - 160);
        let payload = b64.encode(&audio[lo..lo + 160]);
        let msg = json!({"event": "media", "media": {"track": "inbound", "payload": payload}}).to_string();
        sent_at.lock().unwrap()[i] = Some(Instant::now());
        if tx.send(Message::Text(msg.into())).await.is_err() {
            break;
        }
    }
    let _ = tx
        .send(Message::Text(json!({"event": "stop"}).to_string().into()))
        .await;
    reader.await.unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let counts: Vec<usize> = args
        .first()
        .map_or("200".into(), |s| s.clone())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let seconds: f64 = args.get(1).map_or(60.0, |s| s.parse().unwrap());
    let bin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/synthscan");
    let audio = Arc::new(common::call_audio());
    for n in counts {
        let mut server = Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--max-streams", "5000"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("build the release binary first: cargo build --release");
        let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = common::word_after(&first, "http://");
        std::thread::spawn(move || for _ in lines {});
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cpu0 = common::cpu_seconds(server.id());
        let wall0 = Instant::now();
        let results: Vec<StreamResult> = rt.block_on(async {
            let start_at = tokio::time::Instant::now() + Duration::from_millis(500);
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    // Streams start spread over one 20 ms period, as calls would.
                    let at = start_at + Duration::from_micros((i as u64 * 20_000) / n as u64);
                    tokio::spawn(one_stream(addr.clone(), Arc::clone(&audio), i * 1777, seconds, at))
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let wall = wall0.elapsed().as_secs_f64();
        let cpu = common::cpu_seconds(server.id()) - cpu0;
        let peak_mb = common::peak_rss_mb(server.id());
        let _ = server.kill();
        let _ = server.wait();
        let mut lat: Vec<f64> = results.iter().flat_map(|r| r.latencies_s.iter().copied()).collect();
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| common::quantile_ms(&lat, p);
        let expected = (seconds * 4.0).floor() as usize;
        let short = results
            .iter()
            .filter(|r| r.updates + 1 < expected || !r.summary)
            .count();
        println!(
            "streams {n:4}  {seconds:.0} s: updates {} (expected ~{}), latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms, \
             streams missing updates or summary {short}, server CPU {:.1} s = {:.0} % of one core, peak RSS {peak_mb:.0} MB",
            lat.len(),
            expected * n,
            q(0.5),
            q(0.99),
            q(1.0),
            cpu,
            100.0 * cpu / wall
        );
    }
}
