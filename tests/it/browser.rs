//! The page of `synthscan serve` in a real browser: Debian's chromium, headless, driven through
//! chromedriver's WebDriver protocol over 127.0.0.1 (both installed by scripts/setup.sh).
//!
//! - A shipped sample chosen in the page's file input: the verdict and score shown equal the
//!   API's, the timeline has one bar per segment, the waveform and the spectrogram are drawn,
//!   the keyboard zooms the time axis, a segment's button plays from that segment, the evidence
//!   report carries the file's SHA-256 and the figures, and at 200 % zoom (a 640-pixel-wide
//!   viewport) nothing needs scrolling sideways; a file that is not audio gets a sentence, and so
//!   do audio over the server's limit and a draining server.
//! - The live view with Chromium's fake microphone playing a shipped sample: the page streams it
//!   to /v1/stream and shows the server's updates and summary.
//!
//! With `SYNTHSCAN_SCREENSHOTS=DIR` the tests also save the screenshots the README shows
//! (scripts/screenshots.sh).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::serve::Server;
use crate::{fixture, root};

/// The W3C WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/setup.sh installs chromium-driver)");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = driver.http.get(format!("{}/status", driver.base)).send().await
                && r.status().is_success()
            {
                break driver;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    /// A headless Chromium session with `extra` command-line switches.
    async fn session(&self, profile: &Path, extra: &[String]) -> Session<'_> {
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend_from_slice(extra);
        let session = self
            .call(
                reqwest::Method::POST,
                "/session",
                json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                    "binary": "/usr/bin/chromium", "args": args}}}}),
            )
            .await;
        Session {
            driver: self,
            id: session["sessionId"].as_str().unwrap().to_string(),
        }
    }
}

impl Driver {
    /// A session of `width` x `height` pixels on the page of the server at `addr`.
    async fn page(&self, profile: &Path, extra: &[String], addr: &str, (width, height): (u32, u32)) -> Session<'_> {
        let s = self.session(profile, extra).await;
        s.window(width, height).await;
        s.post("/url", json!({"url": format!("http://{addr}/")})).await;
        s
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.driver
            .call(reqwest::Method::POST, &format!("/session/{}{path}", self.id), body)
            .await
    }

    async fn exec(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await
    }

    /// Runs `script` until it returns something other than null, for at most `limit`.
    async fn wait_for(&self, script: &str, limit: Duration, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.exec(script).await;
            if !v.is_null() {
                return v;
            }
            assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn choose_file(&self, file: &Path) {
        let input = self
            .post("/element", json!({"using": "css selector", "value": "#files"}))
            .await;
        let id = input[ELEMENT].as_str().unwrap().to_string();
        self.post(
            &format!("/element/{id}/value"),
            json!({"text": file.display().to_string()}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        let id = found[ELEMENT].as_str().unwrap().to_string();
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    /// Types `key` into whatever has the focus.
    async fn key(&self, key: &str) {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        )
        .await;
    }

    async fn window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a screenshot as `name` in `$SYNTHSCAN_SCREENSHOTS`, when that is set.
    async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SYNTHSCAN_SCREENSHOTS") else {
            return;
        };
        let shot = self
            .driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}/screenshot", self.id),
                json!({}),
            )
            .await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(Path::new(&dir).join(name), png).unwrap();
    }

    async fn end(self) {
        let _ = self
            .driver
            .call(reqwest::Method::DELETE, &format!("/session/{}", self.id), json!({}))
            .await;
    }
}

fn words(verdict: &str) -> &'static str {
    match verdict {
        "synthetic" => "Looks machine-made",
        "genuine" => "Looks like a real voice",
        _ => "Not enough speech to judge",
    }
}

/// The shown range, from the toolbar's "Showing m:ss.s to m:ss.s of ..." as (start, end) s.
fn shown(label: &str) -> (f64, f64) {
    let secs = |t: &str| {
        let (m, s) = t.split_once(':').unwrap();
        m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
    };
    let parts: Vec<&str> = label.split_whitespace().collect();
    (secs(parts[1]), secs(parts[3]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_the_api_says_and_saves_the_evidence() {
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = driver.page(profile.path(), &[], &server.addr, (1280, 1900)).await;
    let sample = root().join("samples").join("synthetic_robocall.wav");
    s.choose_file(&sample).await;

    // the result card, once the spectrogram is in it too
    let card = s
        .wait_for(
            "const c = document.querySelector('#results article');
             return c && c.querySelector('canvas.spectrogram') ? c.innerText : null;",
            Duration::from_secs(30),
            "the result and its spectrogram",
        )
        .await;
    let card = card.as_str().unwrap();

    // the API's answer for the same file
    let bytes = std::fs::read(&sample).unwrap();
    let api: Value = reqwest::Client::new()
        .post(format!("http://{}/v1/analyze?name=synthetic_robocall.wav", server.addr))
        .body(bytes.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(card.contains(words(api["verdict"].as_str().unwrap())), "{card}");
    let score = format!("Score {:.3}", api["score"].as_f64().unwrap());
    assert!(card.contains(&score), "{score} not in {card}");
    assert!(card.contains(&format!("flagged at {}", api["threshold"])), "{card}");
    let segments = api["segments"].as_array().unwrap();
    let bars = s
        .exec("return document.querySelectorAll('#results article svg.timeline rect.segment').length;")
        .await;
    assert_eq!(bars.as_u64(), Some(segments.len() as u64));

    // waveform and spectrogram drawn: many distinct colours in the spectrogram (not a blank or
    // flat canvas), and in the waveform dark pixels in the middle row (the trace)
    let drawn = s
        .exec(
            "const card = document.querySelector('#results article');
             const spec = card.querySelector('canvas.spectrogram');
             const d = spec.getContext('2d').getImageData(0, 0, spec.width, spec.height).data;
             const colours = new Set();
             for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
             const wave = card.querySelector('canvas.waveform');
             const row = wave.getContext('2d').getImageData(0, wave.height >> 1, wave.width, 1).data;
             let ink = 0;
             for (let i = 3; i < row.length; i += 4) if (row[i] > 0) ink++;
             return [colours.size, ink / wave.width, card.querySelector('audio').src];",
        )
        .await;
    assert!(drawn[0].as_u64().unwrap() > 50, "spectrogram colours: {drawn}");
    assert!(drawn[1].as_f64().unwrap() > 0.5, "waveform trace coverage: {drawn}");
    assert!(drawn[2].as_str().unwrap().starts_with("blob:"), "{drawn}");

    // the keyboard zooms the shared time axis: + halves the span, Home shows it all again
    let label = "return document.querySelector('#results article .toolbar output').textContent;";
    let whole = s.exec(label).await;
    let (a0, a1) = shown(whole.as_str().unwrap());
    s.exec("document.querySelector('#results article .figure').focus();")
        .await;
    s.key("+").await;
    let zoomed = s.exec(label).await;
    let (b0, b1) = shown(zoomed.as_str().unwrap());
    assert!(((b1 - b0) - (a1 - a0) / 2.0).abs() < 0.15, "{whole} -> {zoomed}");
    let first_bar_width =
        "return document.querySelector('#results article svg.timeline rect.segment').getAttribute('width');";
    let zoomed_width: f64 = s.exec(first_bar_width).await.as_str().unwrap().parse().unwrap();
    s.key("\u{E011}").await; // Home
    let back = s.exec(label).await;
    assert_eq!(back, whole);
    let whole_width: f64 = s.exec(first_bar_width).await.as_str().unwrap().parse().unwrap();
    assert!(
        (zoomed_width / whole_width - 2.0).abs() < 0.05,
        "{zoomed_width} vs {whole_width}"
    );
    s.screenshot("page-result.png").await;

    // the last segment's button plays from a time well into the recording
    let last_start = segments[segments.len() - 1]["start_s"].as_f64().unwrap();
    assert!(last_start > 1.0, "{last_start}");
    let position = s
        .exec(
            "const a = document.querySelector('#results article audio');
             const plays = document.querySelectorAll('#results article button.play');
             plays[plays.length - 1].click();
             a.pause();
             return a.currentTime;",
        )
        .await;
    let at = position.as_f64().unwrap();
    assert!(
        (at - last_start).abs() < 0.05,
        "playing from {at} s, the segment starts at {last_start} s"
    );

    // the evidence report: catch the blob the page hands to the download link
    let evidence = s
        .post(
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1];
                          const make = URL.createObjectURL;
                          URL.createObjectURL = (blob) => { blob.text().then(done); return make(blob); };
                          document.querySelector('#results article button.save').click();", "args": []}),
        )
        .await;
    let html = evidence.as_str().unwrap();
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert!(html.contains(&sha), "the evidence lacks the file's sha256");
    assert!(html.contains(api["model"]["sha256"].as_str().unwrap()));
    assert!(html.contains("Known limits"));
    assert!(html.contains("<img alt=\"spectrogram") && html.contains("<img alt=\"waveform"));
    assert_eq!(
        html.matches("class=\"segment").count(),
        segments.len(),
        "the evidence's timeline"
    );

    // 200 % zoom of a 1280-pixel window is a 640-pixel-wide page: nothing scrolls sideways
    s.window(640, 1000).await;
    let overflow = s
        .exec("return [document.documentElement.scrollWidth, document.documentElement.clientWidth];")
        .await;
    let (scroll, client) = (overflow[0].as_u64().unwrap(), overflow[1].as_u64().unwrap());
    assert!(client < 700 && scroll <= client, "{overflow}");

    // a file that is not audio gets a sentence, not a blank card
    s.choose_file(&fixture("not_audio.wav")).await;
    let error = s
        .wait_for(
            "const e = document.querySelector('#results article .error'); return e ? e.textContent : null;",
            Duration::from_secs(30),
            "the error card",
        )
        .await;
    assert!(
        error.as_str().unwrap().starts_with("The file could not be analysed"),
        "{error}"
    );
    s.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_streams_the_microphone_and_shows_the_servers_events() {
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    // Chromium's fake microphone plays the sample (in a loop); its permission prompt is
    // answered yes
    let sample = root().join("samples").join("synthetic_robocall.wav");
    let fake_microphone = [
        "--use-fake-ui-for-media-stream".into(),
        "--use-fake-device-for-media-stream".into(),
        format!("--use-file-for-fake-audio-capture={}", sample.display()),
    ];
    let s = driver
        .page(profile.path(), &fake_microphone, &server.addr, (1280, 1100))
        .await;
    // keep every event the server sends, to compare with what the page shows
    s.exec(
        "window.events = [];
         const Native = window.WebSocket;
         window.WebSocket = function (url) {
           const socket = new Native(url);
           socket.addEventListener('message', (m) => window.events.push(JSON.parse(m.data)));
           return socket;
         };
         window.WebSocket.OPEN = Native.OPEN;",
    )
    .await;
    s.click("#listen").await;
    let heard = s
        .wait_for(
            "const u = window.events.filter((e) => e.event === 'update' && e.speech_s > 6);
             return u.length ? u[u.length - 1] : null;",
            Duration::from_secs(40),
            "updates with speech",
        )
        .await;
    assert!(heard["score"].as_f64().is_some(), "{heard}");
    let figures = s
        .exec("return document.getElementById('live-figures').textContent;")
        .await;
    assert!(figures.as_str().unwrap().starts_with("Live score "), "{figures}");
    s.screenshot("page-live.png").await;
    s.click("#listen").await;
    let summary = s
        .wait_for(
            "return window.events.find((e) => e.event === 'summary') || null;",
            Duration::from_secs(20),
            "the summary",
        )
        .await;
    assert!(summary["speech_s"].as_f64().unwrap() > 3.0, "{summary}");
    let shown = s
        .wait_for(
            "const v = document.getElementById('live-verdict').textContent;
             return v.includes('whole time') ? [v, document.getElementById('live-figures').textContent] : null;",
            Duration::from_secs(10),
            "the summary on the page",
        )
        .await;
    assert!(
        shown[0]
            .as_str()
            .unwrap()
            .starts_with(words(summary["verdict"].as_str().unwrap())),
        "{shown} vs {summary}"
    );
    let score = format!("Score {:.3}", summary["score"].as_f64().unwrap());
    assert!(shown[1].as_str().unwrap().starts_with(&score), "{shown} vs {summary}");
    s.end().await;
}

/// Refusals reach the reader as sentences: audio over the server's limit, and a server that is
/// draining (it says so on a fresh page load too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_why_the_server_refused() {
    let server = Server::start(&["--max-upload-seconds", "1", "--drain-seconds", "30"]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = driver.page(profile.path(), &[], &server.addr, (1280, 1900)).await;
    let page = format!("http://{}/", server.addr);
    let error = "const e = document.querySelector('#results article .error'); return e ? e.textContent : null;";
    s.choose_file(&root().join("samples").join("genuine_jfk.wav")).await;
    let too_large = s.wait_for(error, Duration::from_secs(30), "the refusal").await;
    assert!(
        too_large
            .as_str()
            .unwrap()
            .starts_with("The recording is too large for this server."),
        "{too_large}"
    );

    // an open stream keeps the server draining (for up to 30 s) after SIGTERM
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/stream?encoding=ulaw&rate=8000", server.addr))
        .await
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.exec("document.getElementById('results').replaceChildren();").await;
    s.choose_file(&root().join("samples").join("genuine_jfk.wav")).await;
    let draining = s.wait_for(error, Duration::from_secs(30), "the refusal").await;
    assert!(
        draining
            .as_str()
            .unwrap()
            .starts_with("The server is busy or shutting down"),
        "{draining}"
    );
    s.post("/url", json!({"url": page})).await;
    let status = s
        .wait_for(
            "const t = document.getElementById('status').textContent; return t ? t : null;",
            Duration::from_secs(10),
            "the status line",
        )
        .await;
    assert!(status.as_str().unwrap().contains("shutting down"), "{status}");
    drop(ws);
    s.end().await;
}

/// What the browser cannot decode itself, the server decodes for it (POST /v1/audio): each leg
/// of a packet capture, and an ADPCM WAV file, get a player, a waveform and a spectrogram.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_legs_and_adpcm_files_are_played_and_drawn_from_the_servers_decoding() {
    use crate::capture::{Udp, frame, phone_samples, rtp, write_pcap};
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let s = driver.page(profile.path(), &[], &server.addr, (1280, 1900)).await;
    // a two-leg call in a pcap, written from the shipped samples
    let dir = tempfile::tempdir().unwrap();
    let mut frames = Vec::new();
    for (leg, sample) in ["synthetic_robocall.wav", "genuine_jfk.wav"].iter().enumerate() {
        let bytes: Vec<u8> = phone_samples(sample)
            .iter()
            .map(|&x| synthscan::audio::f32_to_ulaw(x))
            .collect();
        let (a, b) = (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 50000));
        let (src, dst) = if leg == 0 { (a, b) } else { (b, a) };
        for (k, chunk) in bytes.chunks(160).take(400).enumerate() {
            let payload = rtp(0, k as u16, 160 * k as u32, 1 + leg as u32, chunk);
            frames.push((0.02 * k as f64 + 0.001 * leg as f64, frame(&Udp { src, dst, payload })));
        }
    }
    frames.sort_by(|x, y| x.0.total_cmp(&y.0));
    let pcap = dir.path().join("call.pcap");
    write_pcap(&pcap, &frames);
    s.choose_file(&pcap).await;
    let drawn = "const c = document.querySelector('#results article');
         if (!c || !document.getElementById('status').textContent.startsWith('Done')) return null;
         return [c.querySelectorAll('audio').length, c.querySelectorAll('canvas.waveform').length,
                 c.querySelectorAll('canvas.spectrogram').length,
                 Array.from(c.querySelectorAll('audio')).every((a) => a.src.startsWith('blob:'))];";
    let legs = s.wait_for(drawn, Duration::from_secs(30), "the capture's card").await;
    assert_eq!(
        legs,
        json!([2, 2, 2, true]),
        "a player, waveform and spectrogram per leg"
    );
    // the second leg's button plays the second leg's audio
    let position = s
        .exec(
            "const c = document.querySelector('#results article');
             const players = c.querySelectorAll('audio');
             const plays = c.querySelectorAll('button.play');
             plays[plays.length - 1].click();
             players[1].pause();
             return [players[0].currentTime, players[1].currentTime, players[1].duration];",
        )
        .await;
    assert!((position[2].as_f64().unwrap() - 8.0).abs() < 0.05, "{position}");

    // an MS ADPCM WAV (as old call recorders write): the browser does not decode it, the server does
    s.exec("document.getElementById('results').replaceChildren(); document.getElementById('status').textContent = '';")
        .await;
    s.choose_file(&crate::fixture("fmt_adpcm_ms.wav")).await;
    let adpcm = s.wait_for(drawn, Duration::from_secs(30), "the ADPCM card").await;
    assert_eq!(adpcm, json!([1, 1, 1, true]), "{adpcm}");
    let text = s
        .exec("return document.querySelector('#results article').innerText;")
        .await;
    assert!(text.as_str().unwrap().contains("as the server decodes it"), "{text}");
    s.end().await;
}
