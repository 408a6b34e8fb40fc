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
use crate::detect::{AlertState, LiveEvent, LivePolicy, LiveStream, Step};
use crate::error::Result;
use crate::model::{LoadedModel, OnnxScorer, WindowScorer};
use crate::report::{ErrorEvent, FileReport, LiveSummary, ModelInfo, Origin, TrackEvent, event_text};
use crate::{Detector, Error};

/// Audio for one track of a connection.
pub struct AudioJob {
    pub conn: u64,
    pub track: String,
    /// The recorded call the track is a leg of (`siprec`); events then name `call_id` and
    /// `leg` instead of `track`.
    pub call: Option<Arc<str>>,
    pub rate_hz: u32,
    pub channels: usize,
    pub samples: Vec<f32>,
    pub received: Instant,
    pub reply: UnboundedSender<Reply>,
    /// Held until the audio is scored: bounds the audio a connection, and the server, has
    /// in flight.
    pub buffered: Option<Buffered>,
}

/// What a connection sends to its worker.
pub enum Job {
    Audio(AudioJob),
    /// Summarise and forget every track of the connection.
    Finish {
        conn: u64,
        /// Name used as `file` in the summaries (the platform's stream id, or the connection).
        label: String,
        reply: UnboundedSender<Reply>,
    },
    /// The connection went away: forget its tracks without summaries.
    Forget {
        conn: u64,
    },
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
    let mut round = Round::default();
    // A round: the first job, then every audio job already queued behind it (up to
    // MAX_ROUND_JOBS), scored together; a finish or forget ends the round and runs after it, so
    // a connection's audio is always scored before its summaries.
    let mut next = rx.recv().ok();
    while let Some(job) = next.take() {
        let job = match job {
            Job::Audio(audio) => {
                round.feed(&mut tracks, detector, policy, metrics, audio);
                if round.jobs < MAX_ROUND_JOBS
                    && let Ok(job) = rx.try_recv()
                {
                    next = Some(job);
                    continue;
                }
                round.score(&mut tracks, &mut scorer, metrics, &mut events);
                next = rx.recv().ok();
                continue;
            }
            other => {
                round.score(&mut tracks, &mut scorer, metrics, &mut events);
                other
            }
        };
        match job {
            Job::Audio(_) => {}
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
        next = rx.recv().ok();
    }
}

/// Audio jobs taken into one round at most: enough to fill model calls under load, few
/// enough that the first job of a round does not wait long for the last.
const MAX_ROUND_JOBS: usize = 256;
/// Windows per model call at most in a round (the runtime's buffers grow with the batch).
const MAX_WINDOWS_PER_CALL: usize = 32;

/// A track's part in a round.
struct Active {
    key: (u64, String),
    reply: UnboundedSender<Reply>,
    /// When its earliest audio of the round arrived: latency is counted from there.
    received: Instant,
    windows_before: usize,
}

/// The audio jobs of one round: fed to their tracks, then moved through together so that the
/// windows every track completes are scored in shared model calls.
#[derive(Default)]
struct Round {
    jobs: usize,
    active: Vec<Active>,
    /// Held until the round's audio is scored.
    buffered: Vec<Buffered>,
    batch: Vec<f32>,
    logits: Vec<f32>,
}

impl Round {
    fn feed(
        &mut self,
        tracks: &mut HashMap<(u64, String), Track>,
        detector: &Detector,
        policy: &LivePolicy,
        metrics: &Metrics,
        job: AudioJob,
    ) {
        self.jobs += 1;
        self.buffered.extend(job.buffered);
        let key = (job.conn, job.track);
        let name = key.1.clone();
        let Track { live, call } = match tracks.entry(key.clone()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => match LiveStream::new(detector, job.rate_hz, job.channels, policy.clone()) {
                Ok(live) => v.insert(Track { live, call: job.call }),
                Err(e) => {
                    Metrics::inc(&metrics.errors);
                    let _ = job.reply.send(error_event(origin(&name, job.call.as_ref()), &e));
                    return;
                }
            },
        };
        let from = origin(&name, call.as_ref());
        if live.rate_hz() != job.rate_hz || live.channels() != job.channels {
            Metrics::inc(&metrics.errors);
            let e = Error::Corrupt(format!(
                "track '{name}' changed format mid-stream ({} Hz {} ch -> {} Hz {} ch)",
                live.rate_hz(),
                live.channels(),
                job.rate_hz,
                job.channels
            ));
            let _ = job.reply.send(error_event(from, &e));
            return;
        }
        if let Err(e) = live.feed(&job.samples) {
            Metrics::inc(&metrics.errors);
            let _ = job.reply.send(error_event(from, &e));
            return;
        }
        if !self.active.iter().any(|a| a.key == key) {
            self.active.push(Active {
                key,
                reply: job.reply,
                received: job.received,
                windows_before: live.windows_scored(),
            });
        }
    }

    /// Moves every fed track through, scoring the windows they complete together.
    fn score(
        &mut self,
        tracks: &mut HashMap<(u64, String), Track>,
        scorer: &mut OnnxScorer,
        metrics: &Metrics,
        events: &mut Vec<LiveEvent>,
    ) {
        let mut updated = vec![false; self.active.len()];
        let mut moving: Vec<usize> = (0..self.active.len()).collect();
        while !moving.is_empty() {
            // advance each track until it needs scores or is done
            let mut needing = Vec::new();
            for &i in &moving {
                let a = &self.active[i];
                let Some(Track { live, call }) = tracks.get_mut(&a.key) else {
                    continue;
                };
                let from = origin(&a.key.1, call.as_ref());
                events.clear();
                let step = live.advance(events);
                updated[i] |= events.iter().any(|e| matches!(e, LiveEvent::Update(_)));
                count_scored(metrics, 0, events);
                for e in events.iter() {
                    let _ = a.reply.send(track_event(e, from));
                }
                match step {
                    Ok(Step::NeedScores) => needing.push(i),
                    Ok(Step::Idle) => {}
                    Err(e) => {
                        Metrics::inc(&metrics.errors);
                        let _ = a.reply.send(error_event(from, &e));
                    }
                }
            }
            // score the waiting windows of all of them, a model call per MAX_WINDOWS_PER_CALL
            let mut start = 0;
            while start < needing.len() {
                let mut end = start;
                let mut windows = 0;
                self.batch.clear();
                while end < needing.len() {
                    let Some(track) = tracks.get(&self.active[needing[end]].key) else {
                        end += 1;
                        continue;
                    };
                    let (features, n) = track.live.pending();
                    if windows > 0 && windows + n > MAX_WINDOWS_PER_CALL {
                        break;
                    }
                    self.batch.extend_from_slice(features);
                    windows += n;
                    end += 1;
                }
                self.logits.clear();
                let scored = scorer.score_batch(&self.batch, windows, &mut self.logits);
                let mut at = 0;
                for &i in &needing[start..end] {
                    let a = &self.active[i];
                    let Some(Track { live, call }) = tracks.get_mut(&a.key) else {
                        continue;
                    };
                    let n = live.pending().1;
                    let applied = match (&scored, self.logits.get(at..at + n)) {
                        (Ok(()), Some(logits)) => live.apply_scores(logits),
                        (Ok(()), None) => Err(Error::Runtime(format!(
                            "the model gave {} scores for {windows} windows",
                            self.logits.len()
                        ))),
                        (Err(e), _) => Err(Error::Runtime(e.to_string())),
                    };
                    at += n;
                    if let Err(e) = applied {
                        Metrics::inc(&metrics.errors);
                        let _ = a.reply.send(error_event(origin(&a.key.1, call.as_ref()), &e));
                        // the track's windows go unscored, so that it can go on
                        live.discard_pending();
                    }
                }
                start = end;
            }
            moving = needing;
        }
        for (a, updated) in self.active.iter().zip(updated) {
            if updated {
                metrics.observe_latency(a.received.elapsed().as_secs_f64());
            }
            if let Some(track) = tracks.get(&a.key) {
                let scored = track.live.windows_scored() - a.windows_before;
                metrics.windows_scored.fetch_add(scored as u64, Ordering::Relaxed);
            }
        }
        self.active.clear();
        self.buffered.clear();
        self.jobs = 0;
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
