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
    // `synthscan siprec` only
    pub calls_open: AtomicU64,
    pub calls_total: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub sip_messages: AtomicU64,
    pub sip_malformed: AtomicU64,
    pub sip_refused: AtomicU64,
    pub rtp_packets: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub rtp_late: AtomicU64,
    pub rtp_dropped: AtomicU64,
    /// SRTP packets that failed authentication.
    pub srtp_rejected: AtomicU64,
    pub rtp_unknown: AtomicU64,
    pub webhook_sent: AtomicU64,
    pub webhook_failed: AtomicU64,
    pub webhook_dropped: AtomicU64,
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

    /// The Prometheus exposition text of `serve`.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(2048);
        Self::counters(&mut s, &self.serve_counters());
        self.latency(&mut s);
        s
    }

    /// The Prometheus exposition text of `siprec`.
    pub fn render_siprec(&self) -> String {
        let mut s = String::with_capacity(2048);
        Self::counters(&mut s, &self.siprec_counters());
        self.latency(&mut s);
        s
    }

    fn counters(s: &mut String, list: &[(&str, &str, &str, &AtomicU64)]) {
        for (name, kind, help, value) in list {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
    }

    fn siprec_counters(&self) -> Vec<(&'static str, &'static str, &'static str, &AtomicU64)> {
        vec![
            (
                "synthscan_calls_open",
                "gauge",
                "Recorded calls open now.",
                &self.calls_open,
            ),
            (
                "synthscan_calls_total",
                "counter",
                "Recording sessions accepted.",
                &self.calls_total,
            ),
            (
                "synthscan_calls_rejected_total",
                "counter",
                "INVITEs refused: over --max-calls, draining, or nothing to record.",
                &self.calls_rejected,
            ),
            (
                "synthscan_sip_messages_total",
                "counter",
                "SIP messages received from allowed addresses.",
                &self.sip_messages,
            ),
            (
                "synthscan_sip_malformed_total",
                "counter",
                "SIP messages that could not be parsed or were too large.",
                &self.sip_malformed,
            ),
            (
                "synthscan_sip_refused_total",
                "counter",
                "SIP messages and RTP packets dropped because their address is not allowed.",
                &self.sip_refused,
            ),
            (
                "synthscan_rtp_packets_total",
                "counter",
                "RTP packets received on recorded legs.",
                &self.rtp_packets,
            ),
            (
                "synthscan_rtp_lost_total",
                "counter",
                "RTP packets missing from the sequence (their time is silence).",
                &self.rtp_lost,
            ),
            (
                "synthscan_rtp_late_total",
                "counter",
                "RTP packets that arrived after a later one and were dropped.",
                &self.rtp_late,
            ),
            (
                "synthscan_rtp_dropped_total",
                "counter",
                "RTP packets dropped because the scorers were behind (the audio buffer was full).",
                &self.rtp_dropped,
            ),
            (
                "synthscan_rtp_undecoded_total",
                "counter",
                "RTP packets of payload types not decoded (telephone events, other codecs).",
                &self.rtp_unknown,
            ),
            (
                "synthscan_srtp_rejected_total",
                "counter",
                "SRTP packets dropped because they failed authentication (wrong key, altered or not SRTP).",
                &self.srtp_rejected,
            ),
            (
                "synthscan_windows_scored_total",
                "counter",
                "Model windows scored on recorded legs.",
                &self.windows_scored,
            ),
            (
                "synthscan_alerts_total",
                "counter",
                "Alerts raised on recorded legs.",
                &self.alerts,
            ),
            (
                "synthscan_calls_flagged_total",
                "counter",
                "Legs whose final verdict was synthetic.",
                &self.calls_flagged,
            ),
            (
                "synthscan_tracks_finished_total",
                "counter",
                "Legs summarised.",
                &self.tracks_finished,
            ),
            (
                "synthscan_errors_total",
                "counter",
                "Legs whose audio could not be scored.",
                &self.errors,
            ),
            (
                "synthscan_webhook_sent_total",
                "counter",
                "Events delivered to the webhook.",
                &self.webhook_sent,
            ),
            (
                "synthscan_webhook_failed_total",
                "counter",
                "Events the webhook did not accept after every retry.",
                &self.webhook_failed,
            ),
            (
                "synthscan_webhook_dropped_total",
                "counter",
                "Events dropped because the webhook queue was full.",
                &self.webhook_dropped,
            ),
            (
                "synthscan_buffered_samples",
                "gauge",
                "Decoded leg samples received and not yet scored.",
                &self.buffered_samples,
            ),
        ]
    }

    fn serve_counters(&self) -> Vec<(&'static str, &'static str, &'static str, &AtomicU64)> {
        vec![
            (
                "synthscan_streams_open",
                "gauge",
                "WebSocket streams open now.",
                &self.streams_open,
            ),
            (
                "synthscan_streams_total",
                "counter",
                "WebSocket streams accepted.",
                &self.streams_total,
            ),
            (
                "synthscan_streams_rejected_total",
                "counter",
                "WebSocket streams refused because the server was full or draining.",
                &self.streams_rejected,
            ),
            (
                "synthscan_windows_scored_total",
                "counter",
                "Model windows scored on streams.",
                &self.windows_scored,
            ),
            (
                "synthscan_alerts_total",
                "counter",
                "Alerts raised on streams.",
                &self.alerts,
            ),
            (
                "synthscan_calls_flagged_total",
                "counter",
                "Stream tracks and files whose final verdict was synthetic.",
                &self.calls_flagged,
            ),
            (
                "synthscan_tracks_finished_total",
                "counter",
                "Stream tracks summarised.",
                &self.tracks_finished,
            ),
            (
                "synthscan_files_analyzed_total",
                "counter",
                "Files analysed by POST /v1/analyze.",
                &self.files_analyzed,
            ),
            (
                "synthscan_errors_total",
                "counter",
                "Malformed frames or messages, undecodable uploads and other per-request errors.",
                &self.errors,
            ),
            (
                "synthscan_unauthorized_total",
                "counter",
                "Requests refused for a missing or wrong token.",
                &self.unauthorized,
            ),
            (
                "synthscan_throttled_total",
                "counter",
                "Requests refused with 429 because their address sent too many wrong tokens.",
                &self.throttled,
            ),
            (
                "synthscan_connections_refused_total",
                "counter",
                "TCP connections closed at once because the server held its maximum.",
                &self.connections_refused,
            ),
            (
                "synthscan_uploads_refused_total",
                "counter",
                "Uploads refused for their size, audio length or analysis time.",
                &self.uploads_refused,
            ),
            (
                "synthscan_buffered_samples",
                "gauge",
                "Decoded stream samples received and not yet scored, over all connections.",
                &self.buffered_samples,
            ),
        ]
    }

    fn latency(&self, s: &mut String) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
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
    }
}
