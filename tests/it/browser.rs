//! The page of `synthscan serve` in a real browser: Debian's chromium, headless, driven through
//! chromedriver's WebDriver protocol over 127.0.0.1 (both installed by scripts/setup.sh). A
//! shipped sample is chosen in the page's file input; the verdict and score the page shows must
//! equal the API's, its timeline must have one bar per segment, its waveform must be drawn and a
//! segment's button must play from that segment, and the evidence report it saves must carry the
//! file's SHA-256.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::root;
use crate::serve::Server;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_what_the_api_says_and_saves_the_evidence() {
    let server = Server::start(&[]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let session = driver
        .call(
            reqwest::Method::POST,
            "/session",
            json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--autoplay-policy=no-user-gesture-required",
                         format!("--user-data-dir={}", profile.path().display())]
            }}}}),
        )
        .await;
    let id = session["sessionId"].as_str().unwrap().to_string();
    let post = |path: String, body: Value| {
        let driver = &driver;
        async move { driver.call(reqwest::Method::POST, &path, body).await }
    };
    post(
        format!("/session/{id}/url"),
        json!({"url": format!("http://{}/", server.addr)}),
    )
    .await;
    let input = post(
        format!("/session/{id}/element"),
        json!({"using": "css selector", "value": "#files"}),
    )
    .await;
    let input_id = input[ELEMENT].as_str().unwrap().to_string();
    let sample = root().join("samples").join("synthetic_robocall.wav");
    post(
        format!("/session/{id}/element/{input_id}/value"),
        json!({"text": sample.display().to_string()}),
    )
    .await;

    // wait for the result card
    let started = Instant::now();
    let card = loop {
        let text = post(
            format!("/session/{id}/execute/sync"),
            json!({"script": "const c = document.querySelector('#results article'); return c ? c.innerText : null;", "args": []}),
        )
        .await;
        if let Some(t) = text.as_str() {
            break t.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no result on the page");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

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
    let words = match api["verdict"].as_str().unwrap() {
        "synthetic" => "Looks machine-made",
        "genuine" => "Looks like a real voice",
        _ => "Not enough speech to judge",
    };
    assert!(card.contains(words), "{card}");
    let score = format!("Score {:.3}", api["score"].as_f64().unwrap());
    assert!(card.contains(&score), "{score} not in {card}");
    assert!(card.contains(&format!("flagged at {}", api["threshold"])), "{card}");
    // one bar per segment (the first rect of the timeline is its frame)
    let bars = post(
        format!("/session/{id}/execute/sync"),
        json!({"script": "return document.querySelectorAll('#results article svg.timeline > rect').length - 1;", "args": []}),
    )
    .await;
    assert_eq!(bars.as_u64(), Some(api["segments"].as_array().unwrap().len() as u64));

    // the waveform is drawn, and a segment's button plays the recording from that segment
    let drawn = post(
        format!("/session/{id}/execute/sync"),
        json!({"script": "return [document.querySelectorAll('#results article svg.waveform rect').length,
                                  document.querySelector('#results article audio').src];", "args": []}),
    )
    .await;
    assert!(drawn[0].as_u64().unwrap() > 100, "{drawn}");
    assert!(drawn[1].as_str().unwrap().starts_with("blob:"), "{drawn}");
    // the last segment's: a time well into the recording, so the check cannot pass at 0
    let segments = api["segments"].as_array().unwrap();
    let last_start = segments[segments.len() - 1]["start_s"].as_f64().unwrap();
    assert!(last_start > 1.0, "{last_start}");
    let position = post(
        format!("/session/{id}/execute/sync"),
        json!({"script": "const a = document.querySelector('#results article audio');
                          const plays = document.querySelectorAll('#results article button.play');
                          plays[plays.length - 1].click();
                          a.pause();
                          return a.currentTime;", "args": []}),
    )
    .await;
    let at = position.as_f64().unwrap();
    assert!(
        (at - last_start).abs() < 0.05,
        "playing from {at} s, the segment starts at {last_start} s"
    );

    // the evidence report: catch the blob the page hands to the download link
    let evidence = post(
        format!("/session/{id}/execute/async"),
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
    let _ = driver
        .call(reqwest::Method::DELETE, &format!("/session/{id}"), json!({}))
        .await;
}
