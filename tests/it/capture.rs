//! `synthscan analyze capture.pcap`: a call written as a packet capture from the project's own
//! samples (SIP INVITE and 200 OK with SDP, a PCMU leg and a PCMA leg over Ethernet/IPv4/UDP,
//! with reordering, a duplicate, a loss, the 16-bit sequence wrapping and a DTMF event), read
//! back as pcap and pcapng. Each leg must score as the same audio decoded to a WAV file.

use std::path::Path;

use serde_json::Value;
use synthscan::audio::resample::StreamResampler;
use synthscan::audio::{alaw_to_f32, f32_to_ulaw, ulaw_to_f32};

use crate::{analyze_json, root, synthscan, test_model};

/// A shipped sample at 8 kHz.
pub fn phone_samples(name: &str) -> Vec<f32> {
    let samples: Vec<f32> = hound::WavReader::open(root().join("samples").join(name))
        .unwrap()
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let mut r = StreamResampler::new(16_000, 8_000).unwrap();
    let mut out = Vec::new();
    r.push(&samples, &mut out).unwrap();
    r.finish(&mut out).unwrap();
    out
}

fn alaw_encode(x: f32) -> u8 {
    // the A-law byte that decodes nearest to x (256 candidates: exact, and enough for a test)
    (0..=255u8)
        .min_by(|a, b| (alaw_to_f32(*a) - x).abs().total_cmp(&(alaw_to_f32(*b) - x).abs()))
        .unwrap()
}

pub struct Udp {
    pub src: ([u8; 4], u16),
    pub dst: ([u8; 4], u16),
    pub payload: Vec<u8>,
}

/// Ethernet II + IPv4 + UDP around a payload (checksums left zero, as offloading NICs capture).
pub fn frame(u: &Udp) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = 20 + 8 + u.payload.len();
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(total as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&u.src.0);
    f.extend_from_slice(&u.dst.0);
    f.extend_from_slice(&u.src.1.to_be_bytes());
    f.extend_from_slice(&u.dst.1.to_be_bytes());
    f.extend_from_slice(&((8 + u.payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&u.payload);
    f
}

pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

pub fn write_pcap(path: &Path, frames: &[(f64, Vec<u8>)]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    for (t, f) in frames {
        b.extend_from_slice(&(*t as u32).to_le_bytes());
        b.extend_from_slice(&(((t.fract()) * 1e6) as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(&(f.len() as u32).to_le_bytes());
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap();
}

fn write_pcapng(path: &Path, frames: &[(f64, Vec<u8>)]) {
    let block = |kind: u32, body: &[u8]| {
        let len = 12 + body.len().next_multiple_of(4);
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + body.len().next_multiple_of(4), 0);
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b
    };
    let mut out = Vec::new();
    let mut shb = 0x1A2B3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    out.extend(block(0x0A0D0D0A, &shb));
    let mut idb = vec![1, 0, 0, 0];
    idb.extend_from_slice(&65535u32.to_le_bytes());
    out.extend(block(1, &idb));
    for (t, f) in frames {
        let micros = (t * 1e6) as u64;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(micros as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        out.extend(block(6, &epb));
    }
    std::fs::write(path, out).unwrap();
}

/// A mono 16-bit WAV of decoded telephone audio at `rate_hz`.
pub fn write_wav(path: &Path, samples: &[f32], rate_hz: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        // G.711 and G.722 decode to multiples of 1/32768: exact in 16 bits
        w.write_sample((s * 32768.0).round() as i16).unwrap();
    }
    w.finalize().unwrap();
}

const A: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
const B: ([u8; 4], u16) = ([10, 0, 0, 2], 50000);

/// Captured frames: (time in seconds, bytes on the wire).
type Frames = Vec<(f64, Vec<u8>)>;

/// The call's frames, and the audio each leg should decode to.
fn build_call(with_sip: bool) -> (Frames, Vec<f32>, Vec<f32>) {
    let caller: Vec<u8> = phone_samples("synthetic_robocall.wav")
        .iter()
        .map(|&x| f32_to_ulaw(x))
        .collect();
    let callee: Vec<u8> = phone_samples("genuine_phone_prompt.wav")
        .iter()
        .map(|&x| alaw_encode(x))
        .collect();
    let mut frames: Vec<(f64, Vec<u8>)> = Vec::new();
    if with_sip {
        let sdp = |ip: &str, port: u16, pt: u8, name: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\n\
                 a=rtpmap:{pt} {name}/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            )
        };
        let invite = format!(
            "INVITE sip:b@10.0.0.2 SIP/2.0\r\nCall-ID: test-call-1@synthscan\r\nCSeq: 1 INVITE\r\n\
             Content-Type: application/sdp\r\n\r\n{}",
            sdp("10.0.0.1", 40000, 0, "PCMU")
        );
        let ok = format!(
            "SIP/2.0 200 OK\r\nCall-ID: test-call-1@synthscan\r\nCSeq: 1 INVITE\r\n\
             Content-Type: application/sdp\r\n\r\n{}",
            sdp("10.0.0.2", 50000, 8, "PCMA")
        );
        for (t, src, dst, msg) in [(0.0, A.0, B.0, invite), (0.01, B.0, A.0, ok)] {
            frames.push((
                t,
                frame(&Udp {
                    src: (src, 5060),
                    dst: (dst, 5060),
                    payload: msg.into_bytes(),
                }),
            ));
        }
    }
    // caller -> callee, PCMU: starts just below the 16-bit wrap; packet 10/11 swapped, 20 sent
    // twice, 30 lost
    let mut leg_a = Vec::new();
    let mut expected_a = Vec::new();
    let mut a_packets: Vec<(u16, u32, Vec<u8>)> = Vec::new();
    for (k, chunk) in caller.chunks_exact(160).enumerate() {
        let seq = 65500u16.wrapping_add(k as u16);
        let ts = 1_000_000u32 + 160 * k as u32;
        if k == 30 {
            expected_a.extend(std::iter::repeat_n(0.0, 160));
        } else {
            expected_a.extend(chunk.iter().map(|&b| ulaw_to_f32(b)));
            a_packets.push((seq, ts, chunk.to_vec()));
        }
    }
    a_packets.swap(10, 11);
    let dup = a_packets[20].clone();
    a_packets.insert(21, dup);
    for (i, (seq, ts, payload)) in a_packets.iter().enumerate() {
        leg_a.push((0.1 + 0.02 * i as f64, rtp(0, *seq, *ts, 0x1111_1111, payload)));
    }
    // callee -> caller, PCMA, with one DTMF event in the place of packet 25
    let mut leg_b = Vec::new();
    let mut expected_b = Vec::new();
    for (k, chunk) in callee.chunks_exact(160).enumerate() {
        let seq = 7u16 + k as u16;
        let ts = 555u32 + 160 * k as u32;
        let packet = if k == 25 {
            expected_b.extend(std::iter::repeat_n(0.0, 160));
            rtp(101, seq, ts, 0x2222_2222, &[1, 0x8a, 0, 160])
        } else {
            expected_b.extend(chunk.iter().map(|&b| alaw_to_f32(b)));
            rtp(8, seq, ts, 0x2222_2222, chunk)
        };
        leg_b.push((0.11 + 0.02 * k as f64, packet));
    }
    for (t, p) in leg_a {
        frames.push((
            t,
            frame(&Udp {
                src: A,
                dst: B,
                payload: p,
            }),
        ));
    }
    for (t, p) in leg_b {
        frames.push((
            t,
            frame(&Udp {
                src: B,
                dst: A,
                payload: p,
            }),
        ));
    }
    // capture order is time order
    frames.sort_by(|x, y| x.0.total_cmp(&y.0));
    (frames, expected_a, expected_b)
}

#[test]
fn a_captured_call_scores_each_leg_like_its_audio_in_a_wav_file() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, expected_a, expected_b) = build_call(true);
    let pcap = dir.path().join("call.pcap");
    write_pcap(&pcap, &frames);
    let (wav_a, wav_b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    write_wav(&wav_a, &expected_a, 8000);
    write_wav(&wav_b, &expected_b, 8000);

    let call = analyze_json(&pcap);
    assert_eq!(call["call_id"], "test-call-1@synthscan", "{call}");
    assert!(call.get("channels").is_none());
    let legs = call["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2, "{call}");
    let (a, b) = (&legs[0], &legs[1]);
    assert_eq!(
        (
            a["source"].as_str(),
            a["destination"].as_str(),
            a["codec"].as_str(),
            a["ssrc"].as_str()
        ),
        (
            Some("10.0.0.1:40000"),
            Some("10.0.0.2:50000"),
            Some("PCMU"),
            Some("0x11111111")
        )
    );
    assert_eq!(
        (a["lost"].as_u64(), a["duplicates"].as_u64(), a["late"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(a["packets"].as_u64(), Some((expected_a.len() / 160) as u64));
    assert_eq!(
        (b["codec"].as_str(), b["telephone_events"].as_u64(), b["lost"].as_u64()),
        (Some("PCMA"), Some(1), Some(0))
    );

    // Each leg scores as its audio decoded to a WAV file (reports round to 4 decimals: the
    // same computation gives the same digits; the tolerance allows one unit of rounding).
    for (leg, wav) in [(a, &wav_a), (b, &wav_b)] {
        let file = analyze_json(wav);
        match (leg["score"].as_f64(), file["score"].as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-4, "{x} vs {y}"),
            (x, y) => assert_eq!(x, y, "{leg} vs {file}"),
        }
        assert_eq!(leg["verdict"], file["verdict"]);
        assert!((leg["speech_s"].as_f64().unwrap() - file["speech_s"].as_f64().unwrap()).abs() <= 0.01);
        assert_eq!(
            leg["segments"].as_array().unwrap().len(),
            file["segments"].as_array().unwrap().len()
        );
    }
    assert!(
        a["score"].is_number(),
        "the caller's leg has speech enough to score: {a}"
    );
    // The call's score is its most suspicious conclusive leg's.
    let most = [a, b]
        .into_iter()
        .filter(|l| l["verdict"] != "inconclusive")
        .filter_map(|l| l["score"].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(call["score"].as_f64(), Some(most));

    // pcapng of the same packets: the same answer
    let ng = dir.path().join("call.pcapng");
    write_pcapng(&ng, &frames);
    let mut from_ng = analyze_json(&ng);
    from_ng["file"] = call["file"].clone();
    assert_eq!(from_ng, call);
}

#[test]
fn without_signalling_the_two_directions_are_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, _, _) = build_call(false);
    let pcap = dir.path().join("rtp-only.pcap");
    write_pcap(&pcap, &frames);
    let call = analyze_json(&pcap);
    assert!(call.get("call_id").is_none(), "{call}");
    assert_eq!(call["legs"].as_array().unwrap().len(), 2);
    // with no SDP, payload type 8 is PCMA by its static assignment and 101 telephone events
    assert_eq!(call["legs"][1]["codec"], "PCMA");
    assert_eq!(call["legs"][1]["telephone_events"], 1);
}

#[test]
fn a_capture_without_calls_or_cut_short_is_a_clear_answer() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pcap");
    write_pcap(
        &empty,
        &[(
            0.0,
            frame(&Udp {
                src: A,
                dst: B,
                payload: b"hello".to_vec(),
            }),
        )],
    );
    let out = synthscan()
        .args(["analyze", "--model"])
        .arg(test_model())
        .arg(&empty)
        .output()
        .unwrap();
    crate::assert_one_clear_error(&out, "holds no RTP call audio", "no calls");
    // a capture cut mid-packet (tcpdump killed) gives the calls up to the cut
    let (frames, _, _) = build_call(true);
    let full = dir.path().join("full.pcap");
    write_pcap(&full, &frames);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 50]).unwrap();
    let call = analyze_json(&cut);
    assert_eq!(call["legs"].as_array().unwrap().len(), 2);
}

#[test]
fn a_wideband_g722_leg_scores_like_its_audio_at_16_khz() {
    let codes = std::fs::read(crate::fixture("g722/robocall.g722")).unwrap();
    let mut frames = Vec::new();
    for (k, chunk) in codes.chunks(160).enumerate() {
        // one RTP tick per code byte (RFC 3551's 8 kHz clock for G.722), two samples per byte
        let packet = rtp(9, k as u16, 160 * k as u32, 0x3333_3333, chunk);
        frames.push((
            0.02 * k as f64,
            frame(&Udp {
                src: A,
                dst: B,
                payload: packet,
            }),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("wideband.pcap");
    write_pcap(&pcap, &frames);
    let mut decoded = Vec::new();
    synthscan::audio::g722::G722Decoder::new().decode(&codes, &mut decoded);
    let wav = dir.path().join("wideband.wav");
    write_wav(&wav, &decoded, 16000);
    let call = analyze_json(&pcap);
    let file = analyze_json(&wav);
    let leg = &call["legs"][0];
    assert_eq!(leg["codec"], "G722");
    assert_eq!(call["sample_rate_hz"], 16000);
    let (x, y) = (leg["score"].as_f64().unwrap(), file["score"].as_f64().unwrap());
    assert!((x - y).abs() <= 1e-4, "{x} vs {y}");
    assert_eq!(call["threshold"], file["threshold"], "the wideband threshold");
}

#[test]
fn rtp_port_ranges_name_the_streams_when_signalling_is_missing() {
    // five packets: too few to be taken for a call leg on their own
    let frames: Vec<_> = (0..5u16)
        .map(|k| {
            let packet = rtp(0, k, 160 * u32::from(k), 0x4444_4444, &[0x55; 160]);
            (
                0.02 * f64::from(k),
                frame(&Udp {
                    src: B,
                    dst: A,
                    payload: packet,
                }),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("short.pcap");
    write_pcap(&pcap, &frames);
    let run = |extra: &[&str]| {
        synthscan()
            .args(["analyze", "-f", "jsonl", "--model"])
            .arg(test_model())
            .args(extra)
            .arg(&pcap)
            .output()
            .unwrap()
    };
    crate::assert_one_clear_error(&run(&[]), "holds no RTP call audio", "no range");
    crate::assert_one_clear_error(
        &run(&["--rtp-port", "10000-20000"]),
        "holds no RTP call audio",
        "other ports",
    );
    let named = run(&["--rtp-port", "40000-40009", "--rtp-port", "6000"]);
    let call: Value = serde_json::from_slice(&named.stdout).unwrap();
    assert_eq!(call["legs"][0]["packets"], 5, "{call}");
}

#[cfg(feature = "serve")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_posted_to_the_service_gets_the_same_calls_as_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, _, _) = build_call(true);
    let pcap = dir.path().join("call.pcap");
    write_pcap(&pcap, &frames);
    let cli = analyze_json(&pcap);
    let bytes = std::fs::read(&pcap).unwrap();
    let http = reqwest::Client::new();
    let server = crate::serve::Server::start(&["--model", &crate::path_str(&test_model())]);
    let r = http
        .post(format!("http://{}/v1/analyze?name=call.pcap", server.addr))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut calls: Vec<Value> = r.json().await.unwrap();
    assert_eq!(calls.len(), 1);
    calls[0]["file"] = cli["file"].clone();
    assert_eq!(calls[0], cli);
    // the legs' decoded audio counts against the upload's audio limit (1 s of 48 kHz stereo)
    let small = crate::serve::Server::start(&["--model", &crate::path_str(&test_model()), "--max-upload-seconds", "1"]);
    let r = http
        .post(format!("http://{}/v1/analyze", small.addr))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("more than 96000 samples"), "{v}");
}
