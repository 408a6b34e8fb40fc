//! Live reporting: the terminal view of `monitor` and the JSON Lines event stream shared by
//! `monitor --format jsonl` and the network service.

use std::collections::VecDeque;
use std::io::Write;

use serde::Serialize;

use super::{FileReport, werr};
use crate::detect::{Alert, AlertState, LiveEvent, Update, Verdict};
use crate::error::Result;

/// Writes one event as a JSON line (`{"event": "update"|"alert", ...}`).
pub fn write_event(out: &mut dyn Write, event: &LiveEvent) -> Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(werr)?;
    writeln!(out).map_err(werr)
}

/// The final line of a live stream: the file-analysis object plus live counters.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSummary<'a> {
    /// Always `"summary"`.
    pub event: &'static str,
    #[serde(flatten)]
    pub report: &'a FileReport,
    /// Alerts raised during the stream.
    pub alerts: usize,
    /// Input samples lost because the analysis fell behind the device.
    pub overruns: u64,
}

/// Writes the summary line.
pub fn write_summary(out: &mut dyn Write, summary: &LiveSummary<'_>) -> Result<()> {
    serde_json::to_writer(&mut *out, summary).map_err(werr)?;
    writeln!(out).map_err(werr)?;
    out.flush().map_err(werr)
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
