//! `synthscan serve` with real clients (tokio-tungstenite, reqwest) on 127.0.0.1: live calls in
//! 20 ms frames, per-track verdicts equal to `analyze`, limits, auth and malformed input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use synthscan::audio::resample::StreamResampler;

use crate::{assert_one_clear_error, fixture, synthscan};

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let mut child = synthscan()
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = crate::word_after(&first, "http://");
        // Keep draining stderr so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sample_f32(name: &str) -> Vec<f32> {
    hound::WavReader::open(crate::root().join("samples").join(name))
        .unwrap()
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

/// A sample as a phone line carries it: 8 kHz mu-law bytes.
pub fn phone_bytes(name: &str) -> Vec<u8> {
    let mut r = StreamResampler::new(16_000, 8_000).unwrap();
    let mut out = Vec::new();
    r.push(&sample_f32(name), &mut out).unwrap();
    r.finish(&mut out).unwrap();
    out.iter().map(|&x| synthscan::audio::f32_to_ulaw(x)).collect()
}

/// `synthscan analyze` on the same bytes, as raw stdin (with extra options such as a threshold).
fn analyze_raw(bytes: &[u8], format: &str, rate: u32, extra: &[&str]) -> Value {
    let mut child = synthscan()
        .args([
            "analyze",
            "-f",
            "json",
            "--raw-format",
            format,
            "--raw-rate",
            &rate.to_string(),
        ])
        .args(extra)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

fn close(a: &Value, b: &Value) -> bool {
    (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-3
}

/// Reads events until the server closes the stream.
pub async fn read_all<S>(ws: &mut S) -> Vec<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut events = Vec::new();
    while let Some(msg) = ws.next().await {
        match msg.unwrap() {
            Message::Text(t) => events.push(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_track_media_stream_gets_per_track_verdicts_equal_to_analyze() {
    // A caller on one track and an IVR prompt on the other. Through G.711 the synthetic sample
    // scores ~0.78, under the shipped threshold for 8 kHz input (0.8314, set for <= 2 % false flags
    // on telephone-rate genuine audio): a real miss of the model, see the model card. This test is about the service
    // routing and scoring each track like `analyze`, so both use 0.5.
    let threshold = ["--threshold", "0.5"];
    let server = Server::start(&threshold);
    let inbound = phone_bytes("synthetic_robocall.wav");
    let outbound = phone_bytes("genuine_phone_prompt.wav");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/stream", server.addr))
        .await
        .unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await
    .unwrap();
    ws.send(send(
        json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZtest",
        "start": {"streamSid": "MZtest", "tracks": ["inbound", "outbound"],
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
    ))
    .await
    .unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let frames = inbound.len().max(outbound.len()).div_ceil(160);
    for i in 0..frames {
        for (track, audio) in [("inbound", &inbound), ("outbound", &outbound)] {
            let lo = i * 160;
            if lo < audio.len() {
                let hi = (lo + 160).min(audio.len());
                ws.send(send(json!({"event": "media", "streamSid": "MZtest",
                    "media": {"track": track, "chunk": i.to_string(), "timestamp": (i * 20).to_string(),
                              "payload": b64(&audio[lo..hi])}})))
                    .await
                    .unwrap();
            }
        }
        if i == 100 {
            // Malformed input mid-call: each gets an error event, the call goes on.
            ws.send(Message::Text("{not json".into())).await.unwrap();
            ws.send(send(
                json!({"event": "media", "media": {"track": "inbound", "payload": "@@@"}}),
            ))
            .await
            .unwrap();
            ws.send(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
        }
    }
    ws.send(send(json!({"event": "stop", "streamSid": "MZtest"})))
        .await
        .unwrap();
    let events = read_all(&mut ws).await;

    let errors: Vec<&Value> = events.iter().filter(|e| e["event"] == "error").collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    let summary = |track: &str| -> Value {
        events
            .iter()
            .find(|e| e["event"] == "summary" && e["track"] == track)
            .unwrap_or_else(|| panic!("no summary for {track}"))
            .clone()
    };
    let (sin, sout) = (summary("inbound"), summary("outbound"));
    assert_eq!(sin["file"], "MZtest/inbound");
    let (ein, eout) = (
        analyze_raw(&inbound, "ulaw", 8000, &threshold),
        analyze_raw(&outbound, "ulaw", 8000, &threshold),
    );
    for (live, file) in [(&sin, &ein), (&sout, &eout)] {
        assert_eq!(live["verdict"], file["verdict"], "{live} vs {file}");
        assert!(close(&live["score"], &file["score"]), "{live} vs {file}");
        assert!(close(&live["speech_s"], &file["speech_s"]));
    }
    assert!(sin["score"].as_f64().unwrap() > sout["score"].as_f64().unwrap() + 0.2);
    assert_eq!(sin["verdict"], "synthetic");
    assert_eq!(sout["verdict"], "genuine");
    // Updates every 250 ms of audio on each track; no alert ever on the genuine track.
    let updates = |track: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "update" && e["track"] == track)
            .count()
    };
    assert!(
        updates("inbound") >= 38 && updates("outbound") >= 30,
        "{} {}",
        updates("inbound"),
        updates("outbound")
    );
    assert!(!events.iter().any(|e| e["event"] == "alert" && e["track"] == "outbound"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_binary_frames_score_like_the_file_and_raise_an_alert() {
    let server = Server::start(&[]);
    let pcm: Vec<u8> = sample_f32("synthetic_robocall.wav")
        .iter()
        .flat_map(|&x| ((x * 32768.0) as i16).to_le_bytes())
        .collect();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?encoding=s16le&rate=16000", server.addr))
            .await
            .unwrap();
    for frame in pcm.chunks(640) {
        ws.send(Message::Binary(frame.to_vec().into())).await.unwrap();
    }
    ws.send(Message::Text(json!({"event": "stop"}).to_string().into()))
        .await
        .unwrap();
    let events = read_all(&mut ws).await;
    let summary = events.iter().find(|e| e["event"] == "summary").unwrap();
    let file = analyze_raw(&pcm, "s16le", 16_000, &[]);
    assert_eq!(summary["track"], "raw");
    assert_eq!(summary["verdict"], file["verdict"]);
    assert!(close(&summary["score"], &file["score"]));
    let alerts: Vec<&Value> = events.iter().filter(|e| e["event"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(summary["alerts"], 1);
    // The metrics count the same alert, wherever in the stream (or at its stop) it was raised.
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.lines().any(|l| l == "synthscan_alerts_total 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_limits_idle_timeout_and_metrics() {
    let server = Server::start(&[
        "--token",
        "s3cret",
        "--max-streams",
        "1",
        "--idle-seconds",
        "1",
        "--max-body-mb",
        "1",
    ]);
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    // Health checks need no token; everything else does.
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    let wav = std::fs::read(crate::root().join("samples").join("genuine_phone_prompt.wav")).unwrap();
    let r = http
        .post(format!("{base}/v1/analyze"))
        .body(wav.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/v1/analyze?name=prompt.wav"))
        .bearer_auth("wrong")
        .body(wav.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/v1/analyze?name=prompt.wav"))
        .bearer_auth("s3cret")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["file"], "prompt.wav");
    assert_eq!(v["verdict"], "genuine");
    // Garbage is a clear 422; an oversized body a 413.
    let r = http
        .post(format!("{base}/v1/analyze"))
        .bearer_auth("s3cret")
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("unrecognised"), "{v}");
    // A truncated file is refused with the query parameter that analyses it anyway.
    let r = http
        .post(format!("{base}/v1/analyze"))
        .bearer_auth("s3cret")
        .body(std::fs::read(fixture("truncated.wav")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("refusing a truncated file") && e.contains("allow_truncated=1"),
        "{v}"
    );
    let r = http
        .post(format!("{base}/v1/analyze"))
        .bearer_auth("s3cret")
        .body(vec![0u8; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // WebSocket: refused without the token, one stream at most, idle streams closed.
    let ws_url = format!("ws://{}/v1/stream", server.addr);
    match tokio_tungstenite::connect_async(ws_url.clone()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let (mut first, _) = tokio_tungstenite::connect_async(format!("{ws_url}?token=s3cret"))
        .await
        .unwrap();
    match tokio_tungstenite::connect_async(format!("{ws_url}?token=s3cret")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {other:?}"),
    }
    let started = std::time::Instant::now();
    let events = read_all(&mut first).await;
    assert!(started.elapsed().as_secs_f64() < 5.0);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "error" && e["error"].as_str().unwrap().contains("no audio")),
        "{events:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "synthscan_streams_rejected_total 1",
        "synthscan_streams_open 0",
        "synthscan_streams_total 1",
        "synthscan_files_analyzed_total 1",
        "synthscan_unauthorized_total 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing '{line}' in\n{metrics}");
    }
    assert!(metrics.contains("synthscan_score_latency_seconds_bucket{le=\"+Inf\"}"));
}

#[test]
fn listening_beyond_loopback_without_a_token_is_refused() {
    let out = synthscan()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("SYNTHSCAN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
    assert!(stderr.contains("--token or $SYNTHSCAN_TOKEN"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_negative_alert_hold_stops_the_server_with_one_clear_error() {
    let out = synthscan()
        .args(["serve", "--listen", "127.0.0.1:0", "--alert-hold-seconds=-1"])
        .output()
        .unwrap();
    assert_one_clear_error(&out, "alert hold must be at least 0 s", "negative alert hold");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_open_calls_with_their_summaries_then_exits() {
    let mut server = Server::start(&["--drain-seconds", "1"]);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?encoding=ulaw&rate=8000", server.addr))
            .await
            .unwrap();
    let audio = phone_bytes("synthetic_robocall.wav");
    for frame in audio[..8000 * 3].chunks(160) {
        ws.send(Message::Binary(frame.to_vec().into())).await.unwrap();
    }
    // A client that never finishes its request headers must not hold the exit up (issue 40).
    let mut stuck = std::net::TcpStream::connect(&server.addr).unwrap();
    std::io::Write::write_all(&mut stuck, b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let killed = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // During the drain the server still answers health checks, saying so (issue 40).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let health: Value = reqwest::get(format!("http://{}/healthz", server.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "draining", "{health}");
    // The open call is not cut: after the drain period it gets a notice and its summary.
    let started = std::time::Instant::now();
    let events = read_all(&mut ws).await;
    assert!(started.elapsed().as_secs_f64() < 8.0);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "error" && e["error"].as_str().unwrap().contains("shutting down"))
    );
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary for the open call");
    assert!(
        (summary["duration_s"].as_f64().unwrap() - 3.0).abs() < 0.01,
        "{summary}"
    );
    // Then the process exits cleanly.
    let code = tokio::task::spawn_blocking(move || server.child.wait().unwrap().code())
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    // 1 s of drain, the summaries, and at most 2 s for stragglers such as `stuck`
    assert!(killed.elapsed().as_secs_f64() < 6.0, "exit took {:?}", killed.elapsed());
    drop(stuck);
}

/// Issue 40: a blank token would admit a client that sends a blank header.
#[test]
fn an_empty_or_blank_token_is_refused_at_start_up() {
    for token in ["", " ", "\t"] {
        let out = synthscan()
            .args(["serve", "--listen", "127.0.0.1:0", "--token", token])
            .output()
            .unwrap();
        assert_one_clear_error(&out, "the token is empty or blank", &format!("token {token:?}"));
    }
}

/// Issue 40: the token of a POST is checked before its body is read, so an unauthenticated
/// client cannot make the server buffer an upload; `?token=` opens only the WebSocket.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_is_refused_before_its_body_is_read_and_query_tokens_open_only_the_websocket() {
    use std::io::{Read, Write};
    let server = Server::start(&["--token", "s3cret", "--max-body-mb", "100"]);
    // Headers promising 90 MB, and not one byte of body: the answer must come anyway.
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "POST /v1/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 94371840\r\n\r\n"
    )
    .unwrap();
    let mut reply = [0u8; 64];
    let n = tcp.read(&mut reply).unwrap();
    let head = String::from_utf8_lossy(&reply[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    // a query token is refused on POST and on /metrics; the header is accepted
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    let r = http.get(format!("{base}/metrics?token=s3cret")).send().await.unwrap();
    assert_eq!(status(r), 401);
    let r = http
        .get(format!("{base}/metrics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 200);
    let wav = std::fs::read(crate::root().join("samples").join("genuine_jfk.wav")).unwrap();
    let r = http
        .post(format!("{base}/v1/analyze?token=s3cret"))
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 401);
}

/// `POST /v1/spectrogram`: the model's frames of each channel, in time order, pooled into at
/// most the columns asked for, behind the same token as the other POSTs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spectrogram_shows_each_channels_frames_in_time_order() {
    let server = Server::start(&["--token", "secret-t"]);
    let base = format!("http://{}", server.addr);
    // channel 0: 2 s of silence, then speech; channel 1: the same speech, then 2 s of silence
    let speech: Vec<f32> = sample_f32("synthetic_robocall.wav")
        .into_iter()
        .take(4 * 16_000)
        .collect();
    let silence = vec![0f32; 2 * 16_000];
    let ch0: Vec<f32> = silence.iter().chain(&speech).copied().collect();
    let ch1: Vec<f32> = speech.iter().chain(&silence).copied().collect();
    let mut wav = Vec::new();
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut wav), spec).unwrap();
        for (a, b) in ch0.iter().zip(&ch1) {
            w.write_sample((a * 32767.0) as i16).unwrap();
            w.write_sample((b * 32767.0) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    let http = reqwest::Client::new();
    let post = |query: &str, body: Vec<u8>, token: bool| {
        let mut r = http.post(format!("{base}/v1/spectrogram{query}")).body(body);
        if token {
            r = r.bearer_auth("secret-t");
        }
        r.send()
    };
    assert_eq!(post("", wav.clone(), false).await.unwrap().status(), 401);
    let r = post("?columns=100", wav.clone(), true).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let n = ch0.len() as u64;
    // frames as the feature extractor defines them: 25 ms windows every 10 ms
    assert_eq!(
        v["frames"].as_u64(),
        Some(1 + (n - 400).div_ceil(160)),
        "{}",
        v["frames"]
    );
    assert_eq!((v["n_bins"].as_u64(), v["hop_s"].as_f64()), (Some(80), Some(0.01)));
    // 599 frames into at most 100 columns: the pooling doubles until 8 frames a column
    let per_column = v["seconds_per_column"].as_f64().unwrap();
    assert!((per_column - 0.08).abs() < 1e-9, "{per_column}");
    let columns = v["channels"][0]["columns"].as_u64().unwrap() as usize;
    assert_eq!(columns, 599usize.div_ceil(8));
    let image = |c: usize| {
        base64::engine::general_purpose::STANDARD
            .decode(v["channels"][c]["data"].as_str().unwrap())
            .unwrap()
    };
    let mean = |bytes: &[u8], col: usize| {
        bytes[col * 80..(col + 1) * 80]
            .iter()
            .map(|&b| f64::from(b))
            .sum::<f64>()
            / 80.0
    };
    let (a, b) = (image(0), image(1));
    assert_eq!((a.len(), b.len()), (columns * 80, columns * 80));
    // digital silence sits at the floor, speech well above it, on the right side of each channel
    let silent = (1.9 / per_column) as usize;
    for col in 0..silent {
        assert_eq!(mean(&a, col), 0.0, "channel 0, column {col}");
        assert_eq!(
            mean(&b, columns - 1 - col),
            0.0,
            "channel 1, column {}",
            columns - 1 - col
        );
    }
    let loud = |bytes: &[u8], cols: std::ops::Range<usize>| {
        cols.clone().map(|c| mean(bytes, c)).sum::<f64>() / cols.len() as f64
    };
    assert!(
        loud(&a, silent + 3..columns) > 60.0,
        "{}",
        loud(&a, silent + 3..columns)
    );
    assert!(loud(&b, 0..columns - silent - 3) > 60.0);

    // refusals are sentences
    for query in ["?columns=0", "?columns=99999"] {
        let r = post(query, wav.clone(), true).await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains("columns must be"), "{e}");
    }
    let mut capture = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    capture.extend([0u8; 16]);
    let r = post("", capture, true).await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("no call 0"), "{e}");
}

/// `POST /v1/audio`: a channel of a recording, or a leg of a captured call, as a 16-bit WAV of
/// exactly the samples the analysis decoded; and `/v1/spectrogram` of a leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_gives_a_channel_or_a_captured_leg_as_the_analysis_decoded_it() {
    use crate::capture::{Udp, frame, rtp, write_pcap};
    let server = Server::start(&[]);
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    // an 8 kHz mu-law WAV of two channels: the browser cannot decode G.711 WAV files itself
    let left = phone_bytes("synthetic_robocall.wav");
    let right = phone_bytes("genuine_jfk.wav");
    let n = left.len().min(right.len()) / 160 * 160;
    let mut data = Vec::with_capacity(2 * n);
    for k in 0..n {
        data.extend([left[k], right[k]]);
    }
    let mut wav = b"RIFF".to_vec();
    wav.extend((36 + 2 * n as u32 + 2).to_le_bytes());
    wav.extend(b"WAVEfmt ");
    wav.extend(18u32.to_le_bytes());
    wav.extend([7, 0, 2, 0]); // mu-law, two channels
    wav.extend(8000u32.to_le_bytes());
    wav.extend(16000u32.to_le_bytes());
    wav.extend([2, 0, 8, 0, 0, 0]);
    wav.extend(b"data");
    wav.extend((2 * n as u32).to_le_bytes());
    wav.extend(&data);
    let fetch = |query: String, body: Vec<u8>| http.post(format!("{base}/v1/audio{query}")).body(body).send();
    let read = |bytes: &[u8]| -> (u32, Vec<i16>) {
        let r = hound::WavReader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let rate = r.spec().sample_rate;
        (rate, r.into_samples::<i16>().map(|s| s.unwrap()).collect())
    };
    let want = |bytes: &[u8]| -> Vec<i16> {
        bytes
            .iter()
            .map(|&b| (synthscan::audio::ulaw_to_f32(b) * 32768.0).round() as i16)
            .collect()
    };
    let r = fetch("?channel=1".into(), wav.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let (rate, samples) = read(&r.bytes().await.unwrap());
    assert_eq!(rate, 8000);
    assert!(samples == want(&right[..n]), "channel 1 differs");
    let r = fetch("?channel=2".into(), wav.clone()).await.unwrap();
    assert_eq!(r.status(), 400);

    // a capture of one PCMU leg, with a lost packet: silence of its length
    let mut frames = Vec::new();
    for (k, chunk) in left[..n].chunks(160).enumerate() {
        if k == 10 {
            continue;
        }
        let payload = rtp(0, k as u16, 160 * k as u32, 0x77, chunk);
        let udp = Udp {
            src: ([10, 0, 0, 1], 40000),
            dst: ([10, 0, 0, 2], 50000),
            payload,
        };
        frames.push((0.02 * k as f64, frame(&udp)));
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("leg.pcap");
    write_pcap(&pcap, &frames);
    let capture = std::fs::read(&pcap).unwrap();
    let r = fetch("?call=0&leg=0".into(), capture.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let (rate, samples) = read(&r.bytes().await.unwrap());
    let mut expected = want(&left[..n]);
    expected[1600..1760].iter_mut().for_each(|s| *s = 0);
    assert_eq!(rate, 8000);
    assert!(samples == expected, "the leg differs from its packets");
    let r = fetch("?call=0&leg=1".into(), capture.clone()).await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"].as_str().unwrap().contains("no leg 1"), "{e}");
    let r = http
        .post(format!("{base}/v1/spectrogram?call=0&leg=0&columns=50"))
        .body(capture)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["channels"].as_array().unwrap().len(), 1);
    // the leg's frames pooled into at most 50 columns
    let columns = v["channels"][0]["columns"].as_u64().unwrap();
    let per_column = (v["seconds_per_column"].as_f64().unwrap() / v["hop_s"].as_f64().unwrap()).round() as u64;
    assert!(
        columns <= 50 && columns == v["frames"].as_u64().unwrap().div_ceil(per_column),
        "{v}"
    );
}
