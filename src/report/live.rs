//! Live reporting: the terminal view of `monitor` and the JSON Lines event stream shared by
//! `monitor --format jsonl` and the network service (one schema for both).

use std::collections::VecDeque;
use std::io::Write;

use serde::Serialize;

use super::{FileReport, werr};
use crate::detect::{Alert, AlertState, LiveEvent, Update, Verdict};
use crate::error::Result;

/// Writes one event as a JSON line (`{"event": "update"|"alert", ...}`).
pub fn write_event(out: &mut dyn Write, event: &LiveEvent) -> Result<()> {
    write_line(out, event)
}

/// Where a network event comes from: a named track of a WebSocket stream (`"track"`), or a leg
/// of a recorded call (`"call_id"` and `"leg"`, from `synthscan siprec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Origin<'a> {
    Track { track: &'a str },
    Leg { call_id: &'a str, leg: &'a str },
}

/// A live event of a network stream: the event's fields plus its origin's.
#[derive(Debug, Clone, Serialize)]
pub struct TrackEvent<'a> {
    #[serde(flatten)]
    pub event: &'a LiveEvent,
    #[serde(flatten)]
    pub origin: Origin<'a>,
}

/// `{"event": "error", ...}`: something a stream sent could not be used; the stream goes on
/// unless a summary follows.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEvent<'a> {
    /// Always `"error"`.
    pub event: &'static str,
    /// The track or leg the error belongs to, when it belongs to one.
    #[serde(flatten)]
    pub origin: Option<Origin<'a>>,
    pub error: &'a str,
}

impl<'a> ErrorEvent<'a> {
    pub fn new(origin: Option<Origin<'a>>, error: &'a str) -> Self {
        Self {
            event: "error",
            origin,
            error,
        }
    }
}

/// The final line of a live stream: the file-analysis object plus live counters.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSummary<'a> {
    /// Always `"summary"`.
    pub event: &'static str,
    #[serde(flatten)]
    pub report: &'a FileReport,
    /// The track or leg of a network stream this summary closes.
    #[serde(flatten)]
    pub origin: Option<Origin<'a>>,
    /// Alerts raised during the stream.
    pub alerts: usize,
    /// Input samples lost because the analysis fell behind the device (`monitor` only: a
    /// network stream is never read faster than it is scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overruns: Option<u64>,
}

/// Writes the summary line.
pub fn write_summary(out: &mut dyn Write, summary: &LiveSummary<'_>) -> Result<()> {
    write_line(out, summary)?;
    out.flush().map_err(werr)
}

/// One event as a JSON text (a WebSocket message), in the same schema as the JSON Lines.
pub fn event_text(event: &impl Serialize) -> String {
    // the event types serialise infallibly (no maps with non-string keys, no failing Serialize)
    serde_json::to_string(event)
        .unwrap_or_else(|e| serde_json::json!({"event": "error", "error": e.to_string()}).to_string())
}

fn write_line(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(werr)?;
    writeln!(out).map_err(werr)
}

const HISTORY: usize = 40;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A few redrawn terminal lines: per channel the verdict so far, the smoothed score, a
/// history bar of recent window scores, speech heard and overruns. Alerts are printed above
/// the view and stay in the scrollback.
pub struct LiveView<'a> {
    out: Box<dyn Write + 'a>,
    color: bool,
    threshold: f64,
    history: Vec<VecDeque<Option<f64>>>,
    drawn_lines: usize,
}

impl<'a> LiveView<'a> {
    pub fn new(out: Box<dyn Write + 'a>, color: bool, threshold: f64, channels: usize) -> Self {
        Self {
            out,
            color,
            threshold,
            history: vec![VecDeque::with_capacity(HISTORY); channels],
            drawn_lines: 0,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn erase(&mut self) -> Result<()> {
        for _ in 0..self.drawn_lines {
            write!(self.out, "\x1b[1A\x1b[2K").map_err(werr)?;
        }
        write!(self.out, "\r").map_err(werr)?;
        self.drawn_lines = 0;
        Ok(())
    }

    /// Prints an alert line above the view.
    pub fn alert(&mut self, a: &Alert) -> Result<()> {
        self.erase()?;
        let text = match a.state {
            AlertState::Raised => self.paint(
                "1;31",
                &format!(
                    "[{:>7.2}s] ALERT channel {}: synthetic speech (score {:.2} >= {:.2})",
                    a.time_s, a.channel, a.score, a.level
                ),
            ),
            AlertState::Cleared => self.paint(
                "32",
                &format!(
                    "[{:>7.2}s] cleared channel {}: score {:.2} < {:.2}",
                    a.time_s, a.channel, a.score, a.level
                ),
            ),
        };
        writeln!(self.out, "{text}").map_err(werr)
    }

    /// Redraws the view with the latest update of each channel.
    pub fn draw(&mut self, updates: &[&Update], overruns: u64) -> Result<()> {
        for u in updates {
            if let Some(h) = self.history.get_mut(u.channel) {
                if h.len() == HISTORY {
                    h.pop_front();
                }
                h.push_back(u.score);
            }
        }
        self.erase()?;
        let mut lines = Vec::with_capacity(updates.len());
        for u in updates {
            let (label, code) = match (u.alert, u.verdict) {
                (true, _) => ("ALERT", "1;31"),
                (false, Verdict::Synthetic) => ("synthetic", "1;31"),
                (false, Verdict::Genuine) => ("genuine", "32"),
                (false, Verdict::Inconclusive) => ("listening", "33"),
            };
            let bar: String = self
                .history
                .get(u.channel)
                .map(|h| {
                    h.iter()
                        .map(|s| match s {
                            Some(p) => BARS[((p * 8.0) as usize).min(7)],
                            None => ' ',
                        })
                        .collect()
                })
                .unwrap_or_default();
            let score = u.score.map_or(" -- ".to_string(), |s| format!("{s:.2}"));
            let call = u.call_score.map_or(" -- ".to_string(), |s| format!("{s:.2}"));
            let painted_bar = self.paint(
                if u.score.is_some_and(|s| s >= self.threshold) {
                    "31"
                } else {
                    "2"
                },
                &bar,
            );
            lines.push(format!(
                "ch{} {:<9} now {score} call {call} |{painted_bar:<width$}| speech {:>6.1}s  t {:>7.1}s  overruns {overruns}",
                u.channel,
                self.paint(code, label),
                u.speech_s,
                u.time_s,
                width = HISTORY
            ));
        }
        for l in &lines {
            writeln!(self.out, "{l}").map_err(werr)?;
        }
        self.drawn_lines = lines.len();
        self.out.flush().map_err(werr)
    }

    /// Removes the view (before the final summary).
    pub fn clear(&mut self) -> Result<()> {
        self.erase()?;
        self.out.flush().map_err(werr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Update;

    #[test]
    fn a_track_event_is_the_monitor_event_plus_its_track() {
        let event = LiveEvent::Update(Update {
            time_s: 2.5,
            channel: 0,
            score: Some(0.25),
            window_score: None,
            call_score: Some(0.5),
            verdict: Verdict::Genuine,
            alert: false,
            speech_s: 2.0,
            windows: 3,
        });
        let mut line = Vec::new();
        write_event(&mut line, &event).expect("write to memory");
        let monitor: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
        let mut service: serde_json::Value = serde_json::from_str(&event_text(&TrackEvent {
            event: &event,
            origin: Origin::Track { track: "inbound" },
        }))
        .expect("valid JSON");
        assert_eq!(service["event"], "update");
        assert_eq!(service["track"], "inbound");
        service.as_object_mut().expect("an object").remove("track");
        assert_eq!(service, monitor);
        let mut recorded: serde_json::Value = serde_json::from_str(&event_text(&TrackEvent {
            event: &event,
            origin: Origin::Leg {
                call_id: "c1",
                leg: "Alice",
            },
        }))
        .expect("valid JSON");
        assert_eq!(
            (&recorded["call_id"], &recorded["leg"]),
            (&"c1".into(), &"Alice".into())
        );
        let fields = recorded.as_object_mut().expect("an object");
        fields.remove("call_id");
        fields.remove("leg");
        assert_eq!(recorded, monitor);
    }

    #[test]
    fn an_error_event_names_its_track_only_when_it_has_one() {
        let with: serde_json::Value = serde_json::from_str(&event_text(&ErrorEvent::new(
            Some(Origin::Track { track: "a" }),
            "bad \"payload\"",
        )))
        .expect("valid JSON");
        assert_eq!(
            with,
            serde_json::json!({"event": "error", "track": "a", "error": "bad \"payload\""})
        );
        let without: serde_json::Value =
            serde_json::from_str(&event_text(&ErrorEvent::new(None, "idle"))).expect("valid JSON");
        assert_eq!(without, serde_json::json!({"event": "error", "error": "idle"}));
    }
}
