//! One recorded stream: the RTP arriving on its port, decoded as it comes (packet::rtp's
//! LiveDecoder) and handed to the scoring worker that owns the call, as one live track named
//! after its participant.
//!
//! UDP cannot be slowed down, so when the scorers fall behind (the call's or the server's
//! audio buffer is full) packets are dropped and counted rather than queued without bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{Semaphore, watch};

use super::{Shared, srtp};
use crate::packet::rtp::{self, Codec, LiveDecoder};
use crate::service::engine::{AudioJob, Buffered, Job, Reply};
use crate::service::metrics::Metrics;

/// What the receiving task of one leg needs.
pub(super) struct Leg {
    pub socket: UdpSocket,
    pub call_id: Arc<str>,
    /// The engine's key for the call: all its legs live on one worker.
    pub conn: u64,
    pub name: String,
    /// Payload type -> codec, as last negotiated (a re-INVITE may change it).
    pub codecs: watch::Receiver<HashMap<u8, Codec>>,
    /// SRTP keys, as last negotiated; none for plain RTP.
    pub keys: watch::Receiver<Option<srtp::Keys>>,
    /// The rate of the codec answered first.
    pub rate_hz: u32,
    pub reply: UnboundedSender<Reply>,
    /// When audio last arrived on any leg of the call, in ms since the server started.
    pub last_audio: Arc<AtomicU64>,
    /// The call's share of the audio waiting for the scorer.
    pub call_buffer: Arc<Semaphore>,
    pub shared: Arc<Shared>,
    /// `--record`: where this leg's audio is written (`<leg>.wav`, `<leg>~2.wav` after a
    /// change of rate).
    pub record: Option<std::path::PathBuf>,
    /// Becomes true when the call ends: hand over what is held, and stop.
    pub stop: watch::Receiver<bool>,
}

/// A leg's audio as it is scored, in 16-bit WAV files; hound completes a file's header when
/// its writer is dropped, which is when the leg ends.
struct Recording {
    dir: std::path::PathBuf,
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
}

impl Recording {
    fn start(&mut self, track: &str, rate_hz: u32) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate_hz,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let path = self.dir.join(format!("{}.wav", file_name(track)));
        self.writer = match hound::WavWriter::create(&path, spec) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("synthscan: cannot record to {}: {e}", path.display());
                None
            }
        };
    }

    fn write(&mut self, samples: &[f32]) {
        if let Some(w) = &mut self.writer {
            for &x in samples {
                // G.711 and G.722 decode to multiples of 1/32768: exact in 16 bits
                if w.write_sample((x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
                    .is_err()
                {
                    self.writer = None;
                    return;
                }
            }
        }
    }
}

/// A name safe as a file name on every system: letters, digits, `.`, `-`, `_`, `@`, `+`, `~`.
pub(super) fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_@+~".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    match clean.trim_start_matches('.') {
        "" => "_".into(),
        rest => rest.to_string(),
    }
}

pub(super) async fn receive(leg: Leg) {
    let Leg {
        socket,
        call_id,
        conn,
        name,
        codecs,
        mut keys,
        rate_hz,
        reply,
        last_audio,
        call_buffer,
        shared,
        record,
        mut stop,
    } = leg;
    let mut recording = record.map(|dir| Recording { dir, writer: None });
    if let Some(r) = &mut recording {
        r.start(&name, rate_hz);
    }
    let metrics = &shared.metrics;
    let mut decoder = LiveDecoder::default();
    let mut srtp = keys.borrow_and_update().clone().map(srtp::Receiver::new);
    let mut datagram = vec![0u8; 2048];
    let mut samples = Vec::with_capacity(640);
    // the track's rate, and the name it is scored under (a codec change to another rate
    // starts a new track: `name~2`)
    let mut track = (rate_hz, name.clone());
    let mut tracks = 1u32;
    // the track exists from the start, so a participant who never speaks still gets a summary
    let opened = shared.engine.send(
        conn,
        Job::Audio(AudioJob {
            conn,
            track: name.clone(),
            call: Some(Arc::clone(&call_id)),
            rate_hz,
            channels: 1,
            samples: Vec::new(),
            received: Instant::now(),
            reply: reply.clone(),
            buffered: None,
        }),
    );
    if !opened {
        return;
    }
    // Audio goes to the worker in stretches of up to STRETCH (not a job per 20 ms packet: a
    // fraction of the wake-ups), and at once when a stretch reaches a live update's audio or no
    // packet follows within QUIET, so that coalescing delays no update.
    let update_every = |rate: u32| ((shared.update_interval_s * f64::from(rate)).round() as u64).max(1);
    let mut out = Outbox::default();
    let mut stopping = false;
    loop {
        let next = if stopping {
            // the call ended: what already arrived is still the call's audio
            match socket.try_recv_from(&mut datagram) {
                Ok(next) => Ok(next),
                Err(_) => {
                    out.flush(&shared, &call_buffer, &call_id, conn, &track, &reply);
                    return;
                }
            }
        } else {
            let quiet = tokio::time::sleep(QUIET);
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    stopping = true;
                    continue;
                }
                () = quiet, if !out.samples.is_empty() => {
                    if !out.flush(&shared, &call_buffer, &call_id, conn, &track, &reply) {
                        return;
                    }
                    continue;
                }
                next = socket.recv_from(&mut datagram) => next,
            }
        };
        let Ok((n, from)) = next else {
            return;
        };
        if !shared.allowed(from.ip()) {
            Metrics::inc(&metrics.sip_refused);
            continue;
        }
        if keys.has_changed().unwrap_or(false) {
            // a re-INVITE brought other keys (a stream's rollover state starts again with them)
            srtp = keys.borrow_and_update().clone().map(srtp::Receiver::new);
        }
        let plain;
        let bytes = match &mut srtp {
            None => &datagram[..n],
            Some(receiver) => match receiver.unprotect(&datagram[..n]) {
                Some(rtp) => {
                    plain = rtp;
                    &plain[..]
                }
                None => {
                    Metrics::inc(&metrics.srtp_rejected);
                    continue;
                }
            },
        };
        let Some(packet) = rtp::parse(bytes) else {
            continue;
        };
        let received = Instant::now();
        Metrics::inc(&metrics.rtp_packets);
        let codec = codecs
            .borrow()
            .get(&packet.payload_type)
            .cloned()
            .unwrap_or_else(|| Codec::from_static(packet.payload_type));
        let (lost, late, undecoded) = (decoder.counts.lost, decoder.counts.late, decoder.undecoded);
        samples.clear();
        let rate = decoder.push(&packet, &codec, &mut samples);
        metrics
            .rtp_lost
            .fetch_add(decoder.counts.lost - lost, Ordering::Relaxed);
        metrics
            .rtp_late
            .fetch_add(decoder.counts.late - late, Ordering::Relaxed);
        let skipped = decoder.undecoded - undecoded + u64::from(codec == Codec::TelephoneEvent);
        metrics.rtp_unknown.fetch_add(skipped, Ordering::Relaxed);
        let Some(rate) = rate else {
            continue;
        };
        last_audio.store(shared.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if track.0 != rate {
            if !out.flush(&shared, &call_buffer, &call_id, conn, &track, &reply) {
                return;
            }
            tracks += 1;
            track = (rate, format!("{name}~{tracks}"));
            out.sent = 0;
            if let Some(r) = &mut recording {
                r.start(&track.1, rate);
            }
        }
        if let Some(r) = &mut recording {
            r.write(&samples);
        }
        out.samples.extend_from_slice(&samples);
        out.packets += 1;
        out.received = Some(received);
        let every = update_every(rate);
        let held = out.samples.len() as u64;
        let reaches_update = (out.sent + held) / every > out.sent / every;
        if (reaches_update || held >= u64::from(rate) * STRETCH_MS / 1000)
            && !out.flush(&shared, &call_buffer, &call_id, conn, &track, &reply)
        {
            return;
        }
    }
}

/// How long a leg's audio may gather before it goes to the worker.
const STRETCH_MS: u64 = 100;
/// A pause in a leg's packets this long sends what has gathered.
const QUIET: std::time::Duration = std::time::Duration::from_millis(60);

/// A leg's decoded audio gathering for the worker.
#[derive(Default)]
struct Outbox {
    samples: Vec<f32>,
    /// Packets in `samples` (what is counted as dropped when the buffers are full).
    packets: u64,
    /// When the newest of them arrived: score latency counts from there.
    received: Option<Instant>,
    /// Samples of the current track handed over so far.
    sent: u64,
}

impl Outbox {
    /// Hands the gathered audio to the call's worker, within the call's and the server's audio
    /// budgets (beyond them it is dropped and counted). False when the worker is gone.
    fn flush(
        &mut self,
        shared: &Arc<Shared>,
        call_buffer: &Arc<Semaphore>,
        call_id: &Arc<str>,
        conn: u64,
        track: &(u32, String),
        reply: &UnboundedSender<Reply>,
    ) -> bool {
        if self.samples.is_empty() {
            return true;
        }
        let count = self.samples.len() as u32;
        let packets = std::mem::take(&mut self.packets);
        let (Ok(mine), Ok(server)) = (
            Arc::clone(call_buffer).try_acquire_many_owned(count),
            Arc::clone(&shared.buffer).try_acquire_many_owned(count),
        ) else {
            shared.metrics.rtp_dropped.fetch_add(packets, Ordering::Relaxed);
            self.samples.clear();
            return true;
        };
        let buffered = Buffered::new(mine, server, u64::from(count), Arc::clone(&shared.metrics));
        self.sent += u64::from(count);
        let job = Job::Audio(AudioJob {
            conn,
            track: track.1.clone(),
            call: Some(Arc::clone(call_id)),
            rate_hz: track.0,
            channels: 1,
            samples: std::mem::take(&mut self.samples),
            received: self.received.take().unwrap_or_else(Instant::now),
            reply: reply.clone(),
            buffered: Some(buffered),
        });
        shared.engine.send(conn, job)
    }
}
