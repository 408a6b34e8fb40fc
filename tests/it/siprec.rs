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
use synthscan::audio::{alaw_to_f32, f32_to_ulaw, ulaw_to_f32};

use crate::capture::{Udp, frame, phone_samples, rtp, write_pcap, write_wav};
use crate::{analyze_json, fixture, synthscan, test_model};

struct Recorder {
    child: Child,
    sip: SocketAddr,
    /// SIP over TLS, when started with --tls-listen.
    tls: Option<SocketAddr>,
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
        let sip = crate::word_after(&first, "sip:").parse().unwrap();
        let http = crate::word_after(&first, "http://");
        let tls = first
            .split("TLS on ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .map(|a| a.parse().unwrap());
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
            tls,
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
    write_wav(&wav, decoded, 8000);
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
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    std::fs::create_dir(&recordings).unwrap();
    let rec = Recorder::start(&[
        "--rtp-ports",
        "41000-41999",
        "--model",
        model.to_str().unwrap(),
        "--record",
        recordings.to_str().unwrap(),
    ]);
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
    // --record wrote each participant's audio as it was scored: the very samples sent
    let call_dir = recordings.join(started["call_id"].as_str().unwrap());
    for (leg, pcm) in [("Alice", &alice_pcm), ("Bob", &bob_pcm)] {
        let path = call_dir.join(format!("{leg}.wav"));
        let started_at = Instant::now();
        let written: Vec<f32> = loop {
            if let Ok(r) = hound::WavReader::open(&path)
                && r.len() as usize == pcm.len()
            {
                break r
                    .into_samples::<i16>()
                    .map(|s| f32::from(s.unwrap()) / 32768.0)
                    .collect();
            }
            assert!(
                started_at.elapsed() < Duration::from_secs(5),
                "no complete {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(written == *pcm, "{leg}: the recording differs from the audio sent");
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

/// A SIP client made by hand over UDP, for the exchanges SIPp's scenario does not cover.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Client { socket, server }
    }

    fn port(&self) -> u16 {
        self.socket.local_addr().unwrap().port()
    }

    fn send(&self, method: &str, call_id: &str, cseq: u32, to_tag: Option<&str>, extra: &str, body: &str) {
        let via = Via {
            transport: "UDP",
            port: self.port(),
            server: self.server,
        };
        let msg = request(&via, method, call_id, cseq, to_tag, extra, body);
        self.socket.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// A call set up: the INVITE with `body`, its 200 (within 3 s) and the ACK; the 200 and
    /// the server's tag.
    fn open_call(&self, call_id: &str, headers: &str, body: &str) -> (String, String) {
        self.send("INVITE", call_id, 1, None, headers, body);
        let answer = self
            .expect("SIP/2.0 200", Duration::from_secs(3))
            .unwrap_or_else(|| panic!("{call_id} is not answered"));
        let tag = sip_tag(&answer);
        self.send("ACK", call_id, 1, Some(&tag), "", "");
        (answer, tag)
    }

    /// The next message that arrives within `limit` whose first line contains `start`.
    fn expect(&self, start: &str, limit: Duration) -> Option<String> {
        let started = Instant::now();
        let mut buf = vec![0u8; 65_536];
        while started.elapsed() < limit {
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                if text.lines().next().is_some_and(|l| l.contains(start)) {
                    return Some(text);
                }
            }
        }
        None
    }
}

/// Where a hand-made client's requests say they come from, and where they go.
struct Via {
    transport: &'static str,
    port: u16,
    server: SocketAddr,
}

/// A SIP request of the hand-made clients.
fn request(via: &Via, method: &str, call_id: &str, cseq: u32, to_tag: Option<&str>, extra: &str, body: &str) -> String {
    let Via {
        transport,
        port,
        server,
    } = via;
    let to_tag = to_tag.map_or(String::new(), |t| format!(";tag={t}"));
    let param = transport.to_ascii_lowercase();
    format!(
        "{method} sip:srs@{server};transport={param} SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}\r\n\
         From: <sip:src@127.0.0.1:{port}>;tag=src1\r\nTo: <sip:srs@{server}>{to_tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\nContact: <sip:src@127.0.0.1:{port};transport={param}>\r\nMax-Forwards: 70\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len(),
    )
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// A SIPREC offer: one PCMU stream per label, metadata naming a participant per label.
fn siprec_body(labels: &[(&str, &str, &str)]) -> (String, String) {
    let mut sdp = "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n".to_string();
    let mut xml = String::from("<recording xmlns=\"urn:ietf:params:xml:ns:recording:1\">");
    for (i, (label, name, codec)) in labels.iter().enumerate() {
        let pt = match *codec {
            "PCMA" => 8,
            "G722" => 9,
            _ => 0,
        };
        sdp.push_str(&format!(
            "m=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} {codec}/8000\r\na=label:{label}\r\na=sendonly\r\n",
            30000 + 2 * i
        ));
        xml.push_str(&format!(
            "<participant participant_id=\"p{label}\"><nameID aor=\"sip:{name}@example.com\"><name>{name}</name></nameID></participant>\
             <stream stream_id=\"s{label}\"><label>{label}</label></stream>\
             <participantstreamassoc participant_id=\"p{label}\"><send>s{label}</send></participantstreamassoc>"
        ));
    }
    xml.push_str("</recording>");
    let body = format!(
        "--b\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n\
         Content-Disposition: recording-session\r\n\r\n{xml}\r\n--b--\r\n"
    );
    (
        body,
        "Content-Type: multipart/mixed;boundary=b\r\nRequire: siprec\r\n".into(),
    )
}

#[test]
fn keep_alives_refusals_and_unknown_dialogs_get_clean_answers() {
    let model = test_model();
    let rec = Recorder::start(&["--max-calls", "1", "--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    c.send("OPTIONS", "ka", 1, None, "", "");
    let ok = c.expect("SIP/2.0 200", wait).expect("OPTIONS answered");
    assert!(header(&ok, "Allow").unwrap().contains("INVITE"), "{ok}");
    c.send("BYE", "nobody", 2, Some("x"), "", "");
    assert!(c.expect("SIP/2.0 481", wait).is_some(), "BYE outside a dialog");
    c.send("INFO", "info", 1, None, "", "");
    assert!(c.expect("SIP/2.0 405", wait).is_some(), "INFO");
    // junk and a request without its headers: one dropped, one answered 400; the server goes on
    c.socket.send_to(b"\x16\x03\x01 not sip at all", rec.sip).unwrap();
    c.socket
        .send_to(
            b"INVITE sip:x SIP/2.0\r\nCall-ID: bare\r\nContent-Length: 0\r\n\r\n",
            rec.sip,
        )
        .unwrap();
    c.send("INVITE", "no-sdp", 1, None, "", "");
    assert!(c.expect("SIP/2.0 488", wait).is_some(), "an INVITE without an offer");
    let video = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 30000 RTP/AVP 96\r\n";
    c.send("INVITE", "video", 1, None, "Content-Type: application/sdp\r\n", video);
    assert!(c.expect("SIP/2.0 488", wait).is_some(), "nothing to record");
    // one call is the limit here: a second INVITE gets 503
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    c.send("INVITE", "first", 1, None, &headers, &body);
    let answer = c.expect("SIP/2.0 200", wait).expect("the first call is answered");
    let tag = sip_tag(&answer);
    c.send("ACK", "first", 1, Some(&tag), "", "");
    c.send("INVITE", "second", 1, None, &headers, &body);
    let busy = c.expect("SIP/2.0 503", wait).expect("the second call is refused");
    assert!(header(&busy, "Retry-After").is_some(), "{busy}");
    // an offerless re-INVITE gets an offer of the streams as they are
    c.send("INVITE", "first", 2, Some(&tag), "", "");
    let offer = c.expect("SIP/2.0 200", wait).expect("offerless re-INVITE answered");
    assert_eq!(header(&offer, "Content-Type"), Some("application/sdp"), "{offer}");
    assert_eq!(answered_media(&offer).len(), 1, "{offer}");
    assert!(header(&offer, "Contact").unwrap().contains("+sip.srs"), "{offer}");
    c.send("ACK", "first", 2, Some(&tag), "", "");
    // a session refresh by UPDATE without an offer, and a CANCEL of the answered INVITE: 200,
    // the call goes on
    c.send(
        "UPDATE",
        "first",
        3,
        Some(&tag),
        "Session-Expires: 1800;refresher=uac\r\n",
        "",
    );
    let refreshed = c.expect("SIP/2.0 200", wait).expect("UPDATE answered");
    assert!(header(&refreshed, "CSeq").unwrap().contains("UPDATE"), "{refreshed}");
    c.send("CANCEL", "first", 1, None, "", "");
    let cancelled = c.expect("SIP/2.0 200", wait).expect("CANCEL answered");
    assert!(header(&cancelled, "CSeq").unwrap().contains("CANCEL"), "{cancelled}");
    assert_eq!(rec.metric("synthscan_calls_open"), 1.0);
    c.send("BYE", "first", 4, Some(&tag), "", "");
    assert!(c.expect("SIP/2.0 200", wait).is_some());
    // an extension this server lacks is refused by name
    c.send("INVITE", "ext", 1, None, "Require: siprec, foo\r\n", "");
    let bad = c.expect("SIP/2.0 420", wait).expect("420 for an unknown extension");
    assert_eq!(header(&bad, "Unsupported"), Some("foo"), "{bad}");
    assert_eq!(rec.metric("synthscan_calls_rejected_total"), 3.0);
    assert!(rec.metric("synthscan_sip_malformed_total") >= 2.0);
    assert_eq!(rec.metric("synthscan_calls_total"), 1.0);
}

fn sip_tag(response: &str) -> String {
    let to = header(response, "To").unwrap();
    to.split(";tag=").nth(1).unwrap().split(';').next().unwrap().to_string()
}

/// The answer's media lines: (port, rtpmap line) per `m=`.
fn answered_media(response: &str) -> Vec<(u16, String)> {
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let mut out: Vec<(u16, String)> = Vec::new();
    for line in body.lines() {
        if let Some(m) = line.strip_prefix("m=audio ") {
            out.push((m.split_whitespace().next().unwrap().parse().unwrap(), String::new()));
        } else if let (Some(map), Some(last)) = (line.strip_prefix("a=rtpmap:"), out.last_mut()) {
            last.1 = map.to_string();
        }
    }
    out
}

/// A re-INVITE adds a stream and changes a codec to another rate (a new track of the leg); the
/// call then goes quiet, is ended with a BYE after --idle-seconds, and every event also reaches
/// the webhook.
#[test]
fn reinvites_change_streams_and_an_idle_call_ends_with_a_bye_and_its_summaries() {
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/events", hook.local_addr().unwrap());
    let received = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in hook.incoming() {
            let Ok(mut stream) = stream else { return };
            use std::io::{Read, Write};
            let mut request = Vec::new();
            let mut buf = [0u8; 65_536];
            // read the head, then Content-Length bytes of body
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = header(head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    if body.len() >= length {
                        sink.lock().unwrap().push_str(body);
                        break;
                    }
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let model = test_model();
    let rec = Recorder::start(&[
        "--idle-seconds",
        "1.5",
        "--webhook",
        &hook_url,
        "--model",
        model.to_str().unwrap(),
    ]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU"), ("2", "Bob", "PCMU")]);
    c.send("INVITE", "quiet", 1, None, &headers, &body);
    assert!(c.expect("SIP/2.0 100", wait).is_some());
    let answer = c.expect("SIP/2.0 200", wait).unwrap();
    assert_eq!(header(&answer, "Content-Type"), Some("application/sdp"));
    let first = answered_media(&answer);
    assert_eq!(first.len(), 2, "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    let tag = sip_tag(&answer);
    // the 200 is sent again until the ACK comes (RFC 3261 timer G)
    assert!(c.expect("SIP/2.0 200", wait).is_some(), "no retransmission of the 200");
    c.send("ACK", "quiet", 1, Some(&tag), "", "");
    // a short stretch of audio on Alice's stream keeps the call alive a moment
    let (alice, _) = leg_audio("synthetic_robocall.wav", 2.0);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets(&alice, 0x1111) {
        sender.send_to(&p, ("127.0.0.1", first[0].0)).unwrap();
    }
    // re-INVITE: Alice now in wideband G.722, and a third participant
    let (body, headers) = siprec_body(&[("1", "Alice", "G722"), ("2", "Bob", "PCMU"), ("3", "Carol", "PCMU")]);
    c.send("INVITE", "quiet", 2, Some(&tag), &headers, &body);
    let again = c.expect("SIP/2.0 200", wait).expect("the re-INVITE is answered");
    let second = answered_media(&again);
    assert_eq!(second.len(), 3, "{again}");
    assert_eq!(
        (second[0].0, second[1].0),
        (first[0].0, first[1].0),
        "streams keep their ports"
    );
    assert!(second[0].1.contains("G722"), "{again}");
    c.send("ACK", "quiet", 2, Some(&tag), "", "");
    // a second of G.722: another rate, so another track of Alice's leg
    let codes = std::fs::read(fixture("g722/robocall.g722")).unwrap();
    for (k, chunk) in codes.chunks(160).take(50).enumerate() {
        let p = rtp(9, 2000 + k as u16, 900_000 + 160 * k as u32, 0x1111, chunk);
        sender.send_to(&p, ("127.0.0.1", first[0].0)).unwrap();
    }
    let updated = rec.wait_for(wait, "update", |v| v["event"] == "call" && v["state"] == "updated");
    let names: Vec<&str> = updated["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["leg"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Bob", "Carol"]);
    assert_eq!(updated["legs"][0]["codec"], "G722");

    // then nothing: the server ends the call with a BYE of its own
    let bye = c.expect("BYE ", Duration::from_secs(6)).expect("a BYE from the server");
    assert_eq!(header(&bye, "Call-ID"), Some("quiet"));
    assert!(header(&bye, "From").unwrap().contains(&tag), "{bye}");
    let ended = rec.wait_for(wait, "end", |v| v["event"] == "call" && v["state"] == "ended");
    assert!(ended["reason"].as_str().unwrap().contains("no RTP"), "{ended}");
    let alice_summary = rec.wait_for(wait, "Alice's summary", |v| {
        v["event"] == "summary" && v["leg"] == "Alice"
    });
    assert!(
        (alice_summary["duration_s"].as_f64().unwrap() - 2.0).abs() < 0.021,
        "{alice_summary}"
    );
    let wideband = rec.wait_for(wait, "Alice's wideband summary", |v| {
        v["event"] == "summary" && v["leg"] == "Alice~2"
    });
    assert_eq!(wideband["sample_rate_hz"], 16000, "{wideband}");
    assert!(
        (wideband["duration_s"].as_f64().unwrap() - 1.0).abs() < 0.021,
        "{wideband}"
    );
    for leg in ["Bob", "Carol"] {
        let s = rec.wait_for(wait, "summary", |v| v["event"] == "summary" && v["leg"] == leg);
        assert_eq!(s["verdict"], "inconclusive", "{s}");
    }
    // the webhook got the same events as standard output
    let started = Instant::now();
    loop {
        let body = received.lock().unwrap().clone();
        let lines: Vec<Value> = body.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let summaries = lines.iter().filter(|v| v["event"] == "summary").count();
        if summaries == 4 && lines.iter().any(|v| v["event"] == "call" && v["state"] == "ended") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the webhook got: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(rec.metric("synthscan_webhook_sent_total") >= 6.0);
    assert_eq!(rec.metric("synthscan_webhook_failed_total"), 0.0);
}

#[test]
fn only_allowed_addresses_are_heard_and_the_network_needs_an_allow_list() {
    let model = test_model();
    let rec = Recorder::start(&["--allow", "10.0.0.0/8", "--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    c.send("OPTIONS", "ka", 1, None, "", "");
    assert!(
        c.expect("SIP/2.0", Duration::from_secs(1)).is_none(),
        "127.0.0.1 is not allowed"
    );
    let out = synthscan()
        .args(["siprec", "--listen", "0.0.0.0:0", "--model", model.to_str().unwrap()])
        .output()
        .unwrap();
    crate::assert_one_clear_error(&out, "--allow", "off loopback without --allow");
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix(" kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap()
}

/// A flood of junk, keep-alives and INVITEs, and RTP from an address not allowed: dropped or
/// refused and counted, with the server answering throughout and its memory bounded.
#[test]
fn a_sip_flood_and_stray_rtp_are_refused_counted_and_survived() {
    let model = test_model();
    let rec = Recorder::start(&[
        "--allow",
        "127.0.0.1",
        "--max-calls",
        "50",
        "--idle-seconds",
        "60",
        "--model",
        model.to_str().unwrap(),
    ]);
    let pid = rec.child.id();
    let before = rss_kb(pid);
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    for k in 0..20_000u32 {
        let junk = format!("JUNK{k} \x00\x01 not sip\r\n\r\n");
        flood.send_to(junk.as_bytes(), rec.sip).unwrap();
    }
    // 300 INVITEs from one client, each awaiting its answer as a UDP client would (a burst
    // could overflow the socket buffer behind the junk): 50 calls open, the rest refused
    let c = Client::new(rec.sip);
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    let (mut opened, mut refused) = (0, 0);
    for k in 0..300 {
        let id = format!("flood-{k}");
        c.send("INVITE", &id, 1, None, &headers, &body);
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < Duration::from_secs(5), "no answer to {id}");
            let Some(reply) = c.expect("SIP/2.0", Duration::from_millis(500)) else {
                continue;
            };
            if header(&reply, "Call-ID") != Some(id.as_str()) || reply.starts_with("SIP/2.0 100") {
                continue;
            }
            if reply.starts_with("SIP/2.0 200") {
                c.send("ACK", &id, 1, Some(&sip_tag(&reply)), "", "");
                opened += 1;
            } else {
                assert!(reply.starts_with("SIP/2.0 503"), "{reply}");
                refused += 1;
            }
            break;
        }
    }
    assert_eq!((opened, refused), (50, 250));
    assert_eq!(rec.metric("synthscan_calls_total"), 50.0);
    assert_eq!(rec.metric("synthscan_calls_rejected_total"), 250.0);
    assert_eq!(rec.metric("synthscan_calls_open"), 50.0);
    assert!(rec.metric("synthscan_sip_malformed_total") > 1000.0);
    // RTP for an open call from an address that is not allowed (127.0.0.2 is loopback, but not
    // in --allow) is dropped and counted
    let call = rec.wait_for(Duration::from_secs(5), "a call", |v| {
        v["event"] == "call" && v["state"] == "started"
    });
    let port = call["legs"][0]["port"].as_u64().unwrap() as u16;
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    let (alice, _) = leg_audio("synthetic_robocall.wav", 1.0);
    for p in packets(&alice, 7) {
        stranger.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
    // the server still answers, and its memory did not follow the flood
    c.send("OPTIONS", "after", 1, None, "", "");
    assert!(c.expect("SIP/2.0 200", Duration::from_secs(3)).is_some());
    let started = Instant::now();
    while rec.metric("synthscan_sip_refused_total") < 50.0 {
        assert!(started.elapsed() < Duration::from_secs(5), "stray RTP not counted");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rec.metric("synthscan_rtp_packets_total"), 0.0);
    let grown = rss_kb(pid).saturating_sub(before);
    assert!(grown < 80_000, "RSS grew by {grown} kB");
}

/// A wideband G.722 stream and an A-law stream: each decoded as it arrives and scored like its
/// audio in a WAV file at its own rate (and threshold).
#[test]
fn g722_and_pcma_streams_score_like_their_audio() {
    let model = test_model();
    let rec = Recorder::start(&["--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    let (body, headers) = siprec_body(&[("1", "Wideband", "G722"), ("2", "Alaw", "PCMA")]);
    let (answer, tag) = c.open_call("codecs", &headers, &body);
    let media = answered_media(&answer);
    assert!(media[0].1.starts_with("9 G722/8000"), "{answer}");
    assert!(media[1].1.starts_with("8 PCMA/8000"), "{answer}");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // G.722: one RTP tick per code byte (RFC 3551's 8 kHz clock), 160 bytes = 20 ms
    let codes = std::fs::read(fixture("g722/robocall.g722")).unwrap();
    for (k, chunk) in codes.chunks(160).enumerate() {
        sender
            .send_to(&rtp(9, k as u16, 160 * k as u32, 0x9, chunk), ("127.0.0.1", media[0].0))
            .unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    let speech = phone_samples("genuine_jfk.wav");
    let alaw: Vec<u8> = speech[..speech.len().min(6 * 8000) / 160 * 160]
        .iter()
        .map(|&x| {
            (0..=255u8)
                .min_by(|a, b| (alaw_to_f32(*a) - x).abs().total_cmp(&(alaw_to_f32(*b) - x).abs()))
                .unwrap()
        })
        .collect();
    for (k, chunk) in alaw.chunks(160).enumerate() {
        sender
            .send_to(&rtp(8, k as u16, 160 * k as u32, 0x8, chunk), ("127.0.0.1", media[1].0))
            .unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    // the BYE right behind the last packets: the audio that arrived before it is all scored
    c.send("BYE", "codecs", 2, Some(&tag), "", "");
    assert!(c.expect("SIP/2.0 200", wait).is_some());

    let dir = tempfile::tempdir().unwrap();
    let mut wide = Vec::new();
    synthscan::audio::g722::G722Decoder::new().decode(&codes, &mut wide);
    let wide_wav = dir.path().join("wide.wav");
    write_wav(&wide_wav, &wide, 16000);
    let narrow: Vec<f32> = alaw.iter().map(|&b| alaw_to_f32(b)).collect();
    for (leg, file, rate) in [
        ("Wideband", analyze_json(&wide_wav), 16000),
        ("Alaw", analyze_leg(dir.path(), "alaw", &narrow), 8000),
    ] {
        let summary = rec.wait_for(Duration::from_secs(10), "summary", |v| {
            v["event"] == "summary" && v["leg"] == leg
        });
        assert_eq!(summary["sample_rate_hz"], rate, "{summary}");
        for key in ["score", "verdict", "speech_s", "threshold", "duration_s"] {
            assert!(close(&summary[key], &file[key]), "{leg} {key}: {summary} vs {file}");
        }
    }
}

/// A call put on hold (`a=inactive`) sends no RTP by design: it is not ended as idle while
/// held, and is once it is resumed and stays silent.
#[test]
fn a_call_on_hold_is_not_ended_for_its_silence() {
    let model = test_model();
    let rec = Recorder::start(&["--idle-seconds", "1", "--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    let (_, tag) = c.open_call("hold", &headers, &body);
    let held = body.replace("a=sendonly", "a=inactive");
    c.send("INVITE", "hold", 2, Some(&tag), &headers, &held);
    let reply = c.expect("SIP/2.0 200", wait).expect("hold answered");
    assert!(reply.contains("a=inactive"), "{reply}");
    c.send("ACK", "hold", 2, Some(&tag), "", "");
    let updated = rec.wait_for(wait, "hold", |v| v["event"] == "call" && v["state"] == "updated");
    assert_eq!(updated["legs"][0]["held"], true, "{updated}");
    // three times --idle-seconds on hold: no BYE
    assert!(
        c.expect("BYE ", Duration::from_millis(3000)).is_none(),
        "a held call was ended"
    );
    assert_eq!(rec.metric("synthscan_calls_open"), 1.0);
    // resumed and silent: ended
    c.send("INVITE", "hold", 3, Some(&tag), &headers, &body);
    assert!(c.expect("SIP/2.0 200", wait).is_some());
    c.send("ACK", "hold", 3, Some(&tag), "", "");
    let bye = c
        .expect("BYE ", Duration::from_secs(4))
        .expect("a BYE once resumed and silent");
    assert_eq!(header(&bye, "Call-ID"), Some("hold"));
}

/// When the RTP port range runs out: a stream of a call that has others is answered with port
/// 0 and named in `not_recorded`; a call with none gets 503 and no events.
#[test]
fn running_out_of_rtp_ports_refuses_cleanly() {
    let model = test_model();
    // one even port in the range (bound by another process, the server skips to the next)
    let free = (46_000u16..47_000)
        .step_by(2)
        .find(|&p| UdpSocket::bind(("0.0.0.0", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok())
        .unwrap();
    let range = format!("{free}-{}", free + 1);
    let rec = Recorder::start(&["--rtp-ports", &range, "--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU"), ("2", "Bob", "PCMU")]);
    c.send("INVITE", "full-1", 1, None, &headers, &body);
    let answer = c.expect("SIP/2.0 200", wait).expect("the first call is answered");
    let media = answered_media(&answer);
    assert_eq!((media[0].0, media[1].0), (free, 0), "{answer}");
    let started = rec.wait_for(wait, "start", |v| v["event"] == "call" && v["state"] == "started");
    assert_eq!(started["not_recorded"][0]["reason"], "no RTP port free", "{started}");
    c.send("ACK", "full-1", 1, Some(&sip_tag(&answer)), "", "");
    c.send("INVITE", "full-2", 1, None, &headers, &body);
    let refused = c.expect("SIP/2.0 503", wait).expect("503 with no port left");
    assert!(refused.contains("no RTP port free"), "{refused}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !rec.events.lock().unwrap().iter().any(|v| v["call_id"] == "full-2"),
        "events for a call that never was"
    );
    assert_eq!(rec.metric("synthscan_calls_total"), 1.0);
    assert_eq!(rec.metric("synthscan_calls_rejected_total"), 1.0);
}

/// On SIGTERM the server takes no new call (503) but lets the open one run to its BYE, gives
/// its summary, and then exits on its own with status 0.
#[test]
fn a_sigterm_refuses_new_calls_and_waits_for_the_open_one() {
    let model = test_model();
    let mut rec = Recorder::start(&["--drain-seconds", "30", "--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let wait = Duration::from_secs(3);
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    let (answer, tag) = c.open_call("open", &headers, &body);
    let port = answered_media(&answer)[0].0;
    let (alice, _) = leg_audio("synthetic_robocall.wav", 3.0);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = packets(&alice, 0x2222);
    let (before, after) = sent.split_at(sent.len() / 2);
    for p in before {
        sender.send_to(p, ("127.0.0.1", port)).unwrap();
    }
    let status = Command::new("kill")
        .args(["-TERM", &rec.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(300));
    // a new call is refused while draining
    c.send("INVITE", "late", 1, None, &headers, &body);
    assert!(c.expect("SIP/2.0 503", wait).is_some(), "no 503 while draining");
    // the open call still records: the rest of its audio, then its BYE
    for p in after {
        sender.send_to(p, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(rec.child.try_wait().unwrap().is_none(), "exited with a call open");
    c.send("BYE", "open", 2, Some(&tag), "", "");
    assert!(c.expect("SIP/2.0 200", wait).is_some(), "the BYE is answered");
    let summary = rec.wait_for(Duration::from_secs(10), "summary", |v| {
        v["event"] == "summary" && v["call_id"] == "open"
    });
    assert_eq!(summary["leg"], "Alice", "{summary}");
    // both halves of the audio, before and after the signal, were recorded
    let duration = summary["duration_s"].as_f64().unwrap();
    assert!((duration - 3.0).abs() < 0.05, "{summary}");
    // the last call gone, the server stops by itself, long before --drain-seconds
    let started = Instant::now();
    let exit = loop {
        if let Some(s) = rec.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running after its last call"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert!(
        !rec.events.lock().unwrap().iter().any(|v| v["call_id"] == "late"),
        "events for a refused call"
    );
}

/// A SIP client over TLS: OpenSSL's `s_client`, verifying the server's certificate against the
/// one the test made, carries the hand-made client's messages.
struct TlsClient {
    child: Child,
    received: Arc<Mutex<Vec<u8>>>,
    via: Via,
}

impl Drop for TlsClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsClient {
    fn connect(server: SocketAddr, ca: &Path) -> TlsClient {
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-ign_eof", "-verify_return_error", "-connect"])
            .arg(server.to_string())
            .arg("-CAfile")
            .arg(ca)
            .args(["-verify_ip", &server.ip().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&received);
        let mut stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 16_384];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let via = Via {
            transport: "TLS",
            port: 5999,
            server,
        };
        TlsClient { child, received, via }
    }

    fn send(&mut self, method: &str, call_id: &str, cseq: u32, to_tag: Option<&str>, extra: &str, body: &str) {
        use std::io::Write;
        let msg = request(&self.via, method, call_id, cseq, to_tag, extra, body);
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(msg.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next whole message (framed by Content-Length) whose first line contains `start`,
    /// waiting up to `limit`; the messages before it are dropped.
    fn expect(&self, start: &str, limit: Duration) -> Option<String> {
        let started = Instant::now();
        while started.elapsed() < limit {
            {
                let mut got = self.received.lock().unwrap();
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = header(&text[..end], "Content-Length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if text.len() >= end + 4 + length {
                        let message = text[..end + 4 + length].to_string();
                        got.drain(..end + 4 + length);
                        if message.lines().next().is_some_and(|l| l.contains(start)) {
                            return Some(message);
                        }
                        continue;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// A self-signed certificate for 127.0.0.1 and its key, made by OpenSSL in `dir`.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=synthscan test",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (cert, key)
}

/// SIP over TLS: a call set up, answered with a TLS Contact, recorded and ended through
/// OpenSSL's client, which checks the server's certificate; plain text on the TLS port gets no
/// SIP answer; unreadable certificate files are one clear error.
#[test]
fn sip_over_tls_records_a_call_through_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let model = test_model();
    let rec = Recorder::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    let tls = rec.tls.expect("the start line names the TLS address");
    let mut c = TlsClient::connect(tls, &cert);
    let wait = Duration::from_secs(5);
    // SRTP without keys to decrypt it: a call with no other stream is refused ...
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    c.send(
        "INVITE",
        "srtp",
        1,
        None,
        &headers,
        &body.replace("RTP/AVP", "RTP/SAVP"),
    );
    let refused = c
        .expect("SIP/2.0 488", wait)
        .expect("an SRTP offer without keys is refused");
    assert!(refused.contains("a=crypto"), "{refused}");
    // ... and in a call with a plain stream, such a stream is answered with port 0
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU"), ("2", "Bob", "PCMU")]);
    let at = body.rfind("RTP/AVP").unwrap();
    let body = format!("{}RTP/SAVP{}", &body[..at], &body[at + "RTP/AVP".len()..]);
    c.send("INVITE", "secure", 1, None, &headers, &body);
    let answer = c.expect("SIP/2.0 200", wait).expect("the INVITE is answered over TLS");
    let media = answered_media(&answer);
    assert!(media[0].0 != 0 && media[1].0 == 0, "{answer}");
    let contact = header(&answer, "Contact").unwrap();
    assert!(contact.contains(&format!(":{};transport=tls", tls.port())), "{contact}");
    let tag = sip_tag(&answer);
    c.send("ACK", "secure", 1, Some(&tag), "", "");
    let started = rec.wait_for(wait, "start", |v| v["event"] == "call" && v["state"] == "started");
    assert_eq!(started["transport"], "TLS", "{started}");
    assert_eq!(started["legs"].as_array().unwrap().len(), 1, "{started}");
    let why = started["not_recorded"][0]["reason"].as_str().unwrap();
    assert!(why.contains("RTP/SAVP media without an a=crypto key"), "{started}");
    let port = answered_media(&answer)[0].0;
    let (alice, _) = leg_audio("synthetic_robocall.wav", 3.0);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets(&alice, 0x3333) {
        sender.send_to(&p, ("127.0.0.1", port)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    c.send("BYE", "secure", 2, Some(&tag), "", "");
    assert!(c.expect("SIP/2.0 200", wait).is_some(), "the BYE is answered over TLS");
    let summary = rec.wait_for(Duration::from_secs(10), "summary", |v| {
        v["event"] == "summary" && v["call_id"] == "secure"
    });
    let duration = summary["duration_s"].as_f64().unwrap();
    assert!((duration - 3.0).abs() < 0.05, "{summary}");
    // SIP in plain text on the TLS port: no handshake, no answer
    let mut plain = std::net::TcpStream::connect(tls).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    use std::io::{Read, Write};
    let via = Via {
        transport: "TCP",
        port: 5998,
        server: tls,
    };
    plain
        .write_all(request(&via, "OPTIONS", "plain", 1, None, "", "").as_bytes())
        .unwrap();
    let mut buf = [0u8; 512];
    let answered = matches!(plain.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"SIP/2.0"));
    assert!(!answered, "plain SIP was answered on the TLS port");
    // a key file that is not there
    let out = synthscan()
        .args([
            "siprec",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
        ])
        .arg(&cert)
        .arg("--tls-key")
        .arg(dir.path().join("missing.pem"))
        .args(["--model", model.to_str().unwrap()])
        .output()
        .unwrap();
    crate::assert_one_clear_error(&out, "cannot read the TLS private key", "a missing key file");
}

/// SRTP with SDES keys: FFmpeg encrypts a participant's audio (AES_CM_128_HMAC_SHA1_80) with
/// the key of the offer; the recorder answers with a crypto line of its own, decrypts, and the
/// summary equals `analyze` of the same audio. Packets under another key are dropped and
/// counted, not scored.
#[test]
fn srtp_streams_are_decrypted_and_score_like_their_audio() {
    let dir = tempfile::tempdir().unwrap();
    let model = test_model();
    let rec = Recorder::start(&["--model", model.to_str().unwrap()]);
    let c = Client::new(rec.sip);
    let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let (body, headers) = siprec_body(&[("1", "Alice", "PCMU")]);
    let body = body.replace(
        "RTP/AVP 0\r\n",
        &format!("RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^31\r\n"),
    );
    let (answer, tag) = c.open_call("srtp", &headers, &body);
    assert!(answer.contains("RTP/SAVP 0"), "{answer}");
    let crypto = answer
        .lines()
        .find(|l| l.starts_with("a=crypto:"))
        .unwrap_or_else(|| panic!("no key in the answer: {answer}"));
    assert!(
        crypto.starts_with("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{crypto}"
    );
    assert!(!crypto.contains(key), "the answer must carry a key of its own");
    let port = answered_media(&answer)[0].0;
    let (_, decoded) = leg_audio("synthetic_robocall.wav", 4.0);
    let file = analyze_leg(dir.path(), "Alice", &decoded);
    let send = |port: u16, key: &str, seconds: &str| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(dir.path().join("Alice.wav"))
            .args([
                "-t",
                seconds,
                "-c:a",
                "pcm_mulaw",
                "-ar",
                "8000",
                "-ac",
                "1",
                "-f",
                "rtp",
            ])
            .args(["-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", key])
            .arg(format!("srtp://127.0.0.1:{port}?rtcpport={}", free_udp_port()))
            .stdout(Stdio::null())
            .status()
            .expect("ffmpeg");
        assert!(status.success());
    };
    // a second under a key the offer did not give (FFmpeg packs ~180 ms a packet): dropped and
    // counted
    send(port, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "1");
    std::thread::sleep(Duration::from_millis(300));
    let rejected = rec.metric("synthscan_srtp_rejected_total");
    let packets = rec.metric("synthscan_rtp_packets_total");
    assert!(
        rejected >= 5.0 && packets == 0.0,
        "a wrong key: {rejected} rejected, {packets} taken"
    );
    // then the whole under the offer's key
    send(port, key, "10");
    std::thread::sleep(Duration::from_millis(500));
    c.send("BYE", "srtp", 2, Some(&tag), "", "");
    assert!(c.expect("SIP/2.0 200", Duration::from_secs(3)).is_some());
    let summary = rec.wait_for(Duration::from_secs(10), "summary", |v| {
        v["event"] == "summary" && v["call_id"] == "srtp"
    });
    assert!(
        (summary["duration_s"].as_f64().unwrap() - file["duration_s"].as_f64().unwrap()).abs() < 0.021,
        "{summary} vs {file}"
    );
    for k in ["score", "verdict", "speech_s"] {
        assert!(close(&summary[k], &file[k]), "{k}: {summary} vs {file}");
    }
    // a re-INVITE with a new key: packets under the new key are taken, none refused
    let (answer, tag) = c.open_call("rekey", &headers, &body);
    let port = answered_media(&answer)[0].0;
    let new_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    c.send("INVITE", "rekey", 2, Some(&tag), &headers, &body.replace(key, new_key));
    assert!(c.expect("SIP/2.0 200", Duration::from_secs(3)).is_some());
    c.send("ACK", "rekey", 2, Some(&tag), "", "");
    std::thread::sleep(Duration::from_millis(200));
    let (rejected, taken) = (
        rec.metric("synthscan_srtp_rejected_total"),
        rec.metric("synthscan_rtp_packets_total"),
    );
    send(port, new_key, "1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rec.metric("synthscan_srtp_rejected_total"),
        rejected,
        "the new key was not taken"
    );
    assert!(rec.metric("synthscan_rtp_packets_total") >= taken + 5.0);
}
