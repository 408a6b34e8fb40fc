//! Scoring off the async runtime: N worker threads, each with its own ONNX Runtime session,
//! own the live streams of the connections assigned to them. Connections talk to their worker
//! through a queue, and get events back through their own channel, so model work never blocks
//! the network tasks and one worker's streams never wait on another's.
//!
//! `batch` keeps a pool of its own on purpose: its files are independent, so any idle worker
//! takes the next one (a shared queue balances long and short files), whereas a live track's
//! state lives on one worker and every job of that track must reach it (a queue per worker).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::metrics::Metrics;
use crate::detect::{AlertState, LiveEvent, LivePolicy, LiveStream};
use crate::error::Result;
use crate::model::{LoadedModel, OnnxScorer};
use crate::report::{ErrorEvent, FileReport, LiveSummary, ModelInfo, Origin, TrackEvent, event_text};
use crate::{Detector, Error};

/// What a connection sends to its worker.
pub enum Job {
    Audio {
        conn: u64,
        track: String,
        /// The recorded call the track is a leg of (`siprec`); events then name `call_id` and
        /// `leg` instead of `track`.
        call: Option<Arc<str>>,
        rate_hz: u32,
        channels: usize,
        samples: Vec<f32>,
        received: Instant,
        reply: UnboundedSender<Reply>,
        /// Held until the audio is scored: bounds the audio a connection, and the server, has
        /// in flight.
        buffered: Option<Buffered>,
    },
    /// Summarise and forget every track of the connection.
    Finish {
        conn: u64,
        /// Name used as `file` in the summaries (the platform's stream id, or the connection).
        label: String,
        reply: UnboundedSender<Reply>,
    },
    /// The connection went away: forget its tracks without summaries.
    Forget { conn: u64 },
}

/// What a worker sends back: events as JSON texts ready to go on the wire (report/live.rs
/// schema), then `Done` after a finish.
pub enum Reply {
    Event(String),
    Done,
}

/// A share of the connection's and the server's audio buffer, returned when the audio it
/// stands for has been scored (or dropped).
pub struct Buffered {
    _connection: tokio::sync::OwnedSemaphorePermit,
    _server: tokio::sync::OwnedSemaphorePermit,
    samples: u64,
    metrics: Arc<Metrics>,
}

impl Buffered {
    pub fn new(
        connection: tokio::sync::OwnedSemaphorePermit,
        server: tokio::sync::OwnedSemaphorePermit,
        samples: u64,
        metrics: Arc<Metrics>,
    ) -> Self {
        metrics.buffered_samples.fetch_add(samples, Ordering::Relaxed);
        Self {
            _connection: connection,
            _server: server,
            samples,
            metrics,
        }
    }
}

impl Drop for Buffered {
    fn drop(&mut self) {
        self.metrics.buffered_samples.fetch_sub(self.samples, Ordering::Relaxed);
    }
}

/// The pool of scoring workers.
pub struct Engine {
    shards: Vec<mpsc::Sender<Job>>,
}

impl Engine {
    pub fn start(
        model: &Arc<LoadedModel>,
        detector: &Detector,
        policy: &LivePolicy,
        workers: usize,
        metrics: &Arc<Metrics>,
    ) -> Result<Self> {
        let mut shards = Vec::with_capacity(workers);
        for i in 0..workers.max(1) {
            let scorer = OnnxScorer::new(model, 1)?;
            let (tx, rx) = mpsc::channel::<Job>();
            let detector = detector.clone();
            let policy = policy.clone();
            let metrics = Arc::clone(metrics);
            let info = ModelInfo::from(&model.manifest);
            std::thread::Builder::new()
                .name(format!("synthscan-score-{i}"))
                .spawn(move || worker(rx, scorer, &detector, &policy, &metrics, &info))
                .map_err(|e| Error::Runtime(format!("cannot start a scoring thread: {e}")))?;
            shards.push(tx);
        }
        Ok(Self { shards })
    }

    /// Queues a job on the worker that owns connection `conn`.
    pub fn send(&self, conn: u64, job: Job) -> bool {
        let shard = &self.shards[(conn % self.shards.len() as u64) as usize];
        shard.send(job).is_ok()
    }
}

/// A live track on a worker, and the call it is a leg of, if any.
struct Track {
    live: LiveStream,
    call: Option<Arc<str>>,
}

fn origin<'a>(track: &'a str, call: Option<&'a Arc<str>>) -> Origin<'a> {
    match call {
        Some(call_id) => Origin::Leg { call_id, leg: track },
        None => Origin::Track { track },
    }
}

fn track_event(event: &LiveEvent, origin: Origin<'_>) -> Reply {
    Reply::Event(event_text(&TrackEvent { event, origin }))
}

fn error_event(origin: Origin<'_>, e: &Error) -> Reply {
    Reply::Event(event_text(&ErrorEvent::new(Some(origin), &e.to_string())))
}

fn worker(
    rx: mpsc::Receiver<Job>,
    mut scorer: OnnxScorer,
    detector: &Detector,
    policy: &LivePolicy,
    metrics: &Metrics,
    info: &ModelInfo,
) {
    let mut tracks: HashMap<(u64, String), Track> = HashMap::new();
    let mut events = Vec::new();
    for job in rx {
        match job {
            Job::Audio {
                conn,
                track,
                call,
                rate_hz,
                channels,
                samples,
                received,
                reply,
                buffered,
            } => {
                let _in_flight = buffered;
                let key = (conn, track);
                let name = key.1.clone();
                let Track { live, call } = match tracks.entry(key) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => match LiveStream::new(detector, rate_hz, channels, policy.clone()) {
                        Ok(live) => v.insert(Track { live, call }),
                        Err(e) => {
                            Metrics::inc(&metrics.errors);
                            let _ = reply.send(error_event(origin(&name, call.as_ref()), &e));
                            continue;
                        }
                    },
                };
                let from = origin(&name, call.as_ref());
                if live.rate_hz() != rate_hz || live.channels() != channels {
                    Metrics::inc(&metrics.errors);
                    let e = Error::Corrupt(format!(
                        "track '{name}' changed format mid-stream ({} Hz {} ch -> {rate_hz} Hz {channels} ch)",
                        live.rate_hz(),
                        live.channels()
                    ));
                    let _ = reply.send(error_event(from, &e));
                    continue;
                }
                events.clear();
                let before = live.windows_scored();
                if let Err(e) = live.push(&samples, &mut scorer, &mut events) {
                    Metrics::inc(&metrics.errors);
                    let _ = reply.send(error_event(from, &e));
                    continue;
                }
                if events.iter().any(|e| matches!(e, LiveEvent::Update(_))) {
                    metrics.observe_latency(received.elapsed().as_secs_f64());
                }
                count_scored(metrics, live.windows_scored() - before, &events);
                for e in &events {
                    let _ = reply.send(track_event(e, from));
                }
            }
            Job::Finish { conn, label, reply } => {
                let mut names: Vec<String> = tracks
                    .keys()
                    .filter(|(c, _)| *c == conn)
                    .map(|(_, t)| t.clone())
                    .collect();
                names.sort();
                for name in names {
                    let Some(Track { mut live, call }) = tracks.remove(&(conn, name.clone())) else {
                        continue;
                    };
                    let from = origin(&name, call.as_ref());
                    events.clear();
                    let before = live.windows_scored();
                    match live.finish(&mut scorer, &mut events) {
                        Ok(analysis) => {
                            // the last windows, scored at the end of the stream, count too
                            count_scored(metrics, live.windows_scored() - before, &events);
                            for e in &events {
                                let _ = reply.send(track_event(e, from));
                            }
                            Metrics::inc(&metrics.tracks_finished);
                            if analysis.is_flagged() {
                                Metrics::inc(&metrics.calls_flagged);
                            }
                            let file = format!("{label}/{name}");
                            let report = FileReport::new(
                                &file,
                                &format!("{} Hz stream", live.rate_hz()),
                                &analysis,
                                Vec::new(),
                                info.clone(),
                            );
                            let summary = LiveSummary {
                                event: "summary",
                                report: &report,
                                origin: Some(from),
                                alerts: live.alerts_raised(),
                                overruns: None,
                            };
                            let _ = reply.send(Reply::Event(event_text(&summary)));
                        }
                        Err(e) => {
                            Metrics::inc(&metrics.errors);
                            let _ = reply.send(error_event(from, &e));
                        }
                    }
                }
                let _ = reply.send(Reply::Done);
            }
            Job::Forget { conn } => tracks.retain(|(c, _), _| *c != conn),
        }
        // what a connection held goes back when it ends, not only to this map's next user
        if tracks.capacity() > 64 && tracks.len() < tracks.capacity() / 4 {
            tracks.shrink_to_fit();
        }
    }
}

/// Adds what one push or finish of a track produced to the metrics: windows scored, alerts raised.
fn count_scored(metrics: &Metrics, windows: usize, events: &[LiveEvent]) {
    metrics.windows_scored.fetch_add(windows as u64, Ordering::Relaxed);
    for e in events {
        if let LiveEvent::Alert(a) = e
            && a.state == AlertState::Raised
        {
            Metrics::inc(&metrics.alerts);
        }
    }
}
