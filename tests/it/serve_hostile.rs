//! `synthscan serve` against hostile and careless clients on 127.0.0.1 (issue 40): each case is
//! bounded in connections and time. Memory, connections, uploads, tokens and the end of a
//! stream: the server stays up, answers every refusal with a JSON sentence and loses no summary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::serve::{Server, phone_bytes};
use crate::{fixture, root};

/// The server's resident memory, in MB (Linux).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

fn media(track: &str, payload: &[u8]) -> Message {
    let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
    Message::text(json!({"event": "media", "media": {"track": track, "payload": b64}}).to_string())
}

/// Reads every message until the server's close frame; panics on a reset or a lost close.
async fn read_to_close<S>(ws: &mut S) -> (Vec<Value>, Option<CloseFrame>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => events.push(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => return (events, frame),
            Ok(Some(Ok(_))) => {}
            other => panic!("the stream ended without a close frame: {other:?} after {events:?}"),
        }
    }
}

/// A raw HTTP request on a fresh socket; returns the response head (status line and headers)
/// and the body (read until the server closes or 5 s pass).
fn raw_http(addr: &str, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request).unwrap();
    read_response(s)
}

/// The response head and body of [`raw_http`], from a socket the request was written to.
fn read_response(mut s: TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// Whether a response head asks for the connection to be closed.
fn closes(head: &str) -> bool {
    head.lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_track_names_is_capped_and_costs_no_memory() {
    let server = Server::start(&[]);
    let before = rss_mb(server.child.id());
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/stream", server.addr))
        .await
        .unwrap();
    // 3,000 names of 32 characters, each with a little audio (the issue's attack: 20,000 names)
    let frame = phone_bytes("genuine_phone_prompt.wav")[..160].to_vec();
    for i in 0..3000 {
        ws.send(media(&format!("t{i:031}"), &frame)).await.unwrap();
    }
    ws.send(Message::text(r#"{"event":"stop"}"#)).await.unwrap();
    let (events, close) = read_to_close(&mut ws).await;
    let refusals: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "error" && e["error"].as_str().unwrap().contains("at most 16 tracks"))
        .collect();
    assert_eq!(refusals.len(), 1, "one error event for the flood, not one per name");
    let summaries = events.iter().filter(|e| e["event"] == "summary").count();
    assert_eq!(summaries, 16, "the tracks admitted are summarised");
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1000));
    let after = rss_mb(server.child.id());
    assert!(after - before < 40.0, "RSS grew from {before:.0} to {after:.0} MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_limits_get_json_refusals_without_being_read() {
    let server = Server::start(&["--max-body-mb", "1", "--max-upload-seconds", "1", "--body-seconds", "2"]);
    let addr = server.addr.clone();
    // A stated length over the limit: 413 at once, though the body is never sent.
    let started = Instant::now();
    let (status, body) = tokio::task::spawn_blocking(move || {
        raw_http(
            &addr,
            b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert!(status.contains("413"), "{status}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("over the limit of 1 MB"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A chunked body that grows past the limit: 413 as JSON too.
    let addr = server.addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let mut req = b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..40 {
            req.extend_from_slice(b"10000\r\n");
            req.extend_from_slice(&[7u8; 0x10000]);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        raw_http(&addr, &req)
    })
    .await
    .unwrap();
    assert!(status.contains("413"), "{status}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    // ... read to its end, so the connection may serve another request
    assert!(!closes(&status), "{status}");
    // A chunked body that goes on past what the server drains (the limit + 16 MB) is cut off
    // mid-body: the 413 closes the connection, so the rest is never read as a next request.
    let addr = server.addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut writer = s.try_clone().unwrap();
        // written beside the reader: the server answers before the body has ended
        std::thread::spawn(move || {
            let _ = writer.write_all(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
            let mut chunk = b"10000\r\n".to_vec();
            chunk.extend_from_slice(&[7u8; 0x10000]);
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..(64 * 16) {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        read_response(s)
    })
    .await
    .unwrap();
    assert!(status.contains("413"), "{status}");
    assert!(closes(&status), "{status}");
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("over the limit")
    );
    // A body that never arrives: 408 after --body-seconds.
    let addr = server.addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        raw_http(
            &addr,
            b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nRIFF",
        )
    })
    .await
    .unwrap();
    assert!(status.contains("408"), "{status}");
    assert!(closes(&status), "{status}");
    assert!(body.contains("did not arrive within 2 s"), "{body}");

    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    // Audio longer than --max-upload-seconds (in 48 kHz stereo samples): refused from the header.
    let long = std::fs::read(fixture("speech_48000.wav")).unwrap();
    let r = http.post(format!("{base}/v1/analyze")).body(long).send().await.unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("too long"), "{v}");
    // More channels than the limit: a clear 422, not a verdict on misread audio.
    let mut wav = Vec::new();
    {
        let spec = hound::WavSpec {
            channels: 65,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::new(std::io::Cursor::new(&mut wav), spec).unwrap();
        for i in 0..65 * 800 {
            w.write_sample((i % 100) as i16).unwrap();
        }
        w.finalize().unwrap();
    }
    let r = http.post(format!("{base}/v1/analyze")).body(wav).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("65 channels"), "{v}");
    // Unknown paths, wrong methods and bad query strings are JSON sentences as well.
    for (r, code) in [
        (http.get(format!("{base}/nope")).send().await.unwrap(), 404),
        (http.get(format!("{base}/v1/analyze")).send().await.unwrap(), 405),
        (http.get(format!("{base}/v1/stream")).send().await.unwrap(), 400),
    ] {
        assert_eq!(r.status(), code);
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().is_some_and(|e| e.len() > 10), "{v}");
    }
    match tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?encoding=ulaw&rate=fast", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 400);
            let v: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert!(v["error"].as_str().unwrap().contains("query string"), "{v}");
        }
        other => panic!("expected 400, got {other:?}"),
    }
    // and the server still analyses an ordinary file
    let ok = std::fs::read(fixture("speech_8000.wav")).unwrap();
    let r = http.post(format!("{base}/v1/analyze")).body(ok).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_over_its_time_is_a_422_and_frees_the_worker() {
    let server = Server::start(&["--analysis-seconds", "0.001"]);
    let http = reqwest::Client::new();
    let wav = std::fs::read(root().join("samples").join("genuine_jfk.wav")).unwrap();
    let r = http
        .post(format!("http://{}/v1/analyze", server.addr))
        .body(wav)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("took too long"), "{v}");
    let metrics = http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "synthscan_uploads_refused_total 1"),
        "{metrics}"
    );
}

#[test]
fn half_sent_and_idle_connections_are_closed_and_the_cap_holds() {
    let server = Server::start(&["--header-seconds", "1", "--max-connections", "6"]);
    let closed_within = |mut s: TcpStream, limit: Duration| {
        s.set_read_timeout(Some(limit)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(started.elapsed()),
                Err(_) => return None,
            }
        }
    };
    // a request head that never ends, and a socket that never says anything
    let mut half = TcpStream::connect(&server.addr).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
    let silent = TcpStream::connect(&server.addr).unwrap();
    // fill the rest of the cap, then one more: closed at once
    let fillers: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let extra = TcpStream::connect(&server.addr).unwrap();
    let t = closed_within(extra, Duration::from_millis(800)).expect("a connection over the cap is closed at once");
    assert!(t < Duration::from_millis(800));
    for s in [half, silent] {
        let t = closed_within(s, Duration::from_secs(4)).expect("closed by the header timeout");
        assert!(t < Duration::from_secs(3), "{t:?}");
    }
    drop(fillers);
    // the server answers again once they are gone
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = raw_http(
        &server.addr,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"ok\""), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_keeps_guessing_the_token_is_throttled() {
    let server = Server::start(&["--token", "s3cret"]);
    let http = reqwest::Client::new();
    let url = format!("http://{}/metrics", server.addr);
    let mut statuses = Vec::new();
    for i in 0..15 {
        let r = http.get(&url).bearer_auth(format!("guess{i}")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=10).contains(&retry));
            let v: Value = r.json().await.unwrap();
            assert!(v["error"].as_str().unwrap().contains("too many wrong tokens"));
        }
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429; 5]);
    // while throttled, the right token from that address waits too (guesses are not checked)
    let r = http.get(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status(), 429);
    // the WebSocket upgrade is throttled the same way
    match tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?token=s3cret", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("expected 429, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_gets_its_summary_despite_pings_and_frames_after_stop() {
    let server = Server::start(&[]);
    let audio = phone_bytes("synthetic_robocall.wav");
    let clients: Vec<_> = (0..16)
        .map(|k| {
            let addr = server.addr.clone();
            let audio = audio.clone();
            tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/stream"))
                    .await
                    .unwrap();
                for (i, frame) in audio[..8000 * 4].chunks(800).enumerate() {
                    ws.send(media("inbound", frame)).await.unwrap();
                    if i % 5 == 0 {
                        ws.send(Message::Ping(vec![k as u8].into())).await.unwrap();
                    }
                }
                ws.send(Message::text(r#"{"event":"stop"}"#)).await.unwrap();
                // what careless clients do: more audio and pings after `stop`
                ws.send(media("inbound", &audio[..800])).await.unwrap();
                ws.send(Message::Ping(vec![1].into())).await.unwrap();
                let (events, close) = read_to_close(&mut ws).await;
                let summary = events
                    .iter()
                    .find(|e| e["event"] == "summary")
                    .unwrap_or_else(|| panic!("client {k}: no summary in {events:?}"))
                    .clone();
                assert_eq!(close.map(|c| u16::from(c.code)), Some(1000), "client {k}");
                // the client answers the close; the server has gone by then or goes now
                let _ = ws.close(None).await;
                summary
            })
        })
        .collect();
    for c in clients {
        let summary = c.await.unwrap();
        // the 4 s sent before `stop`, not the frame after it
        assert!(
            (summary["duration_s"].as_f64().unwrap() - 4.0).abs() < 0.01,
            "{summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_size_message_gets_an_error_event_the_summary_and_a_close_code() {
    let server = Server::start(&[]);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/stream", server.addr))
        .await
        .unwrap();
    let audio = phone_bytes("genuine_phone_prompt.wav");
    for frame in audio[..8000 * 2].chunks(160) {
        ws.send(media("inbound", frame)).await.unwrap();
    }
    // 2 MB in one message, over the 1 MiB limit
    ws.send(Message::text("x".repeat(2 << 20))).await.unwrap();
    let (events, close) = read_to_close(&mut ws).await;
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "error" && e["error"].as_str().unwrap().contains("protocol")),
        "{events:?}"
    );
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("the audio before is summarised");
    assert!(
        (summary["duration_s"].as_f64().unwrap() - 2.0).abs() < 0.01,
        "{summary}"
    );
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1009));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_pings_alone_is_closed_as_idle() {
    let server = Server::start(&["--idle-seconds", "1"]);
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/stream", server.addr))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    let pinger = tokio::spawn(async move {
        for _ in 0..40 {
            if tx.send(Message::Ping(vec![0].into())).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let (events, _) = read_to_close(&mut rx).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(
        events
            .iter()
            .any(|e| e["error"].as_str().is_some_and(|m| m.contains("no audio for 1 s"))),
        "{events:?}"
    );
    pinger.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_whole_from_the_binary_under_a_strict_policy() {
    let server = Server::start(&["--token", "s3cret"]);
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    // the page and its assets need no token (they hold nothing); the API calls they make do
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let headers = r.headers().clone();
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = r.text().await.unwrap();
        // nothing from elsewhere: the only absolute URL is the SVG namespace name
        let external = body.matches("http://").count() + body.matches("https://").count();
        let namespace = body.matches("http://www.w3.org/2000/svg").count();
        assert_eq!(external, namespace, "{path} refers to another site");
        assert!(!body.contains("innerHTML"), "{path}: text is never parsed as HTML");
    }
    let page = http.get(format!("{base}/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<script src="/app.js" defer></script>"#));
    let r = http
        .post(format!("{base}/v1/analyze"))
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the API keeps its token rule");
}
