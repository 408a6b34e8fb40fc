//! Counters for `GET /metrics`, in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the score-latency histogram buckets.
const LATENCY_BUCKETS_S: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub streams_open: AtomicU64,
    pub streams_total: AtomicU64,
    pub streams_rejected: AtomicU64,
    pub windows_scored: AtomicU64,
    pub alerts: AtomicU64,
    pub calls_flagged: AtomicU64,
    pub tracks_finished: AtomicU64,
    pub files_analyzed: AtomicU64,
    pub errors: AtomicU64,
    pub unauthorized: AtomicU64,
    pub throttled: AtomicU64,
    pub connections_refused: AtomicU64,
    pub uploads_refused: AtomicU64,
    pub buffered_samples: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the time from receiving audio to emitting the score it produced.
    pub fn observe_latency(&self, seconds: f64) {
        for (i, &le) in LATENCY_BUCKETS_S.iter().enumerate() {
            if seconds <= le {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6).round() as u64, Ordering::Relaxed);
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut s = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        metric(
            "synthscan_streams_open",
            "gauge",
            "WebSocket streams open now.",
            g(&self.streams_open),
        );
        metric(
            "synthscan_streams_total",
            "counter",
            "WebSocket streams accepted.",
            g(&self.streams_total),
        );
        metric(
            "synthscan_streams_rejected_total",
            "counter",
            "WebSocket streams refused because the server was full or draining.",
            g(&self.streams_rejected),
        );
        metric(
            "synthscan_windows_scored_total",
            "counter",
            "Model windows scored on streams.",
            g(&self.windows_scored),
        );
        metric(
            "synthscan_alerts_total",
            "counter",
            "Alerts raised on streams.",
            g(&self.alerts),
        );
        metric(
            "synthscan_calls_flagged_total",
            "counter",
            "Stream tracks and files whose final verdict was synthetic.",
            g(&self.calls_flagged),
        );
        metric(
            "synthscan_tracks_finished_total",
            "counter",
            "Stream tracks summarised.",
            g(&self.tracks_finished),
        );
        metric(
            "synthscan_files_analyzed_total",
            "counter",
            "Files analysed by POST /v1/analyze.",
            g(&self.files_analyzed),
        );
        metric(
            "synthscan_errors_total",
            "counter",
            "Malformed frames or messages, undecodable uploads and other per-request errors.",
            g(&self.errors),
        );
        metric(
            "synthscan_unauthorized_total",
            "counter",
            "Requests refused for a missing or wrong token.",
            g(&self.unauthorized),
        );
        metric(
            "synthscan_throttled_total",
            "counter",
            "Requests refused with 429 because their address sent too many wrong tokens.",
            g(&self.throttled),
        );
        metric(
            "synthscan_connections_refused_total",
            "counter",
            "TCP connections closed at once because the server held its maximum.",
            g(&self.connections_refused),
        );
        metric(
            "synthscan_uploads_refused_total",
            "counter",
            "Uploads refused for their size, audio length or analysis time.",
            g(&self.uploads_refused),
        );
        metric(
            "synthscan_buffered_samples",
            "gauge",
            "Decoded stream samples received and not yet scored, over all connections.",
            g(&self.buffered_samples),
        );
        let name = "synthscan_score_latency_seconds";
        let _ = writeln!(
            s,
            "# HELP {name} Time from receiving stream audio to sending the score it produced.\n# TYPE {name} histogram"
        );
        for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
            let _ = writeln!(s, "{name}_bucket{{le=\"{le}\"}} {}", g(&self.latency_buckets[i]));
        }
        let count = g(&self.latency_count);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{name}_sum {}", g(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(s, "{name}_count {count}");
        s
    }
}
