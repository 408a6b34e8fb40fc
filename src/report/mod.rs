//! Reporting: the last stage. Push-model sinks that turn analyses into text, JSON, JSON Lines
//! or CSV, streamed one input at a time in input order.
//!
//! The JSON object ([`FileReport`]) is the output contract shared by `analyze`, `batch`,
//! `monitor` summaries and the service; its fields are documented in the README.

mod live;
#[cfg(feature = "plot")]
mod plot;
mod text;

use std::io::Write;

use serde::Serialize;

pub use live::{ErrorEvent, LiveSummary, LiveView, Origin, TrackEvent, event_text, write_event, write_summary};
#[cfg(feature = "plot")]
pub use plot::write_plot;

use crate::detect::{Analysis, CallAnalysis, Segment, Verdict, round};
use crate::error::{Error, Result};
use crate::model::Manifest;
use crate::packet::rtp::StreamCounts;
use crate::packet::{CapturedCall, CapturedLeg};

/// Model identity carried by every report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

impl From<&Manifest> for ModelInfo {
    fn from(m: &Manifest) -> Self {
        Self {
            name: m.name.clone(),
            version: m.version.clone(),
            sha256: m.sha256.to_lowercase(),
        }
    }
}

/// One channel in a multi-channel report.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelReport {
    pub channel: usize,
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub speech_s: f64,
    pub segments: Vec<Segment>,
}

/// The result for one input file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub threshold: f64,
    pub duration_s: f64,
    pub speech_s: f64,
    pub sample_rate_hz: u32,
    pub codec: String,
    pub segments: Vec<Segment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<ChannelReport>>,
    /// Problems that did not stop the analysis (e.g. a truncated file).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub model: ModelInfo,
}

fn round_segments(segments: &[Segment]) -> Vec<Segment> {
    segments
        .iter()
        .map(|s| Segment {
            start_s: round(s.start_s, 3),
            end_s: round(s.end_s, 3),
            score: round(s.score, 4),
        })
        .collect()
}

impl FileReport {
    pub fn new(file: &str, codec: &str, analysis: &Analysis, warnings: Vec<String>, model: ModelInfo) -> Self {
        let channels = (analysis.channels.len() > 1).then(|| {
            analysis
                .channels
                .iter()
                .map(|c| ChannelReport {
                    channel: c.channel,
                    score: c.score.map(|s| round(s, 4)),
                    verdict: c.verdict,
                    speech_s: round(c.speech_s, 2),
                    segments: round_segments(&c.segments),
                })
                .collect()
        });
        Self {
            file: file.to_string(),
            score: analysis.score.map(|s| round(s, 4)),
            verdict: analysis.verdict,
            threshold: round(analysis.threshold, 4),
            duration_s: round(analysis.duration_s, 3),
            speech_s: round(analysis.speech_s(), 2),
            sample_rate_hz: analysis.sample_rate_hz,
            codec: codec.to_string(),
            segments: round_segments(analysis.segments()),
            channels,
            warnings,
            model,
        }
    }
}

/// One leg of a call found in a packet capture.
#[derive(Debug, Clone, Serialize)]
pub struct LegReport {
    pub leg: usize,
    /// The RTP synchronisation source, as `0x` and 8 hex digits.
    pub ssrc: String,
    pub source: String,
    pub destination: String,
    pub codec: String,
    #[serde(flatten)]
    pub counts: StreamCounts,
    pub score: Option<f64>,
    pub verdict: Verdict,
    pub speech_s: f64,
    pub segments: Vec<Segment>,
}

/// The result for one call of a packet capture: the `analyze` object with `call_id` and `legs`
/// in place of `channels`; the call's verdict is its most suspicious conclusive leg's.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    #[serde(flatten)]
    pub call: FileReport,
    /// The SIP Call-ID, when the capture held the signalling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub legs: Vec<LegReport>,
}

impl LegReport {
    /// A leg's report from the capture and its own analysis (`None`: nothing decodable in it).
    pub fn new(index: usize, leg: &CapturedLeg, analysis: Option<&Analysis>) -> Self {
        let channel = analysis.and_then(|a| a.channels.first());
        let s = &leg.stream;
        Self {
            leg: index,
            ssrc: format!("0x{:08x}", leg.ssrc),
            source: leg.source.to_string(),
            destination: leg.destination.to_string(),
            codec: s.codec.clone(),
            counts: s.counts,
            score: channel.and_then(|c| c.score).map(|s| round(s, 4)),
            verdict: channel.map_or(Verdict::Inconclusive, |c| c.verdict),
            speech_s: channel.map_or(0.0, |c| round(c.speech_s, 2)),
            segments: channel.map_or_else(Vec::new, |c| round_segments(&c.segments)),
        }
    }
}

impl CallReport {
    /// The reports of a capture's calls, named `name`, or `name#1`, `name#2`, ... when it holds
    /// several.
    pub fn for_capture(name: &str, calls: &[(CapturedCall, CallAnalysis)], model: &ModelInfo) -> Vec<Self> {
        calls
            .iter()
            .enumerate()
            .map(|(k, (call, analysis))| {
                let file = if calls.len() > 1 {
                    format!("{name}#{}", k + 1)
                } else {
                    name.to_string()
                };
                Self::new(&file, call, analysis, model.clone())
            })
            .collect()
    }

    pub fn new(file: &str, call: &CapturedCall, analysis: &CallAnalysis, model: ModelInfo) -> Self {
        let mut warnings = Vec::new();
        for (i, leg) in call.legs.iter().enumerate() {
            for (codec, packets) in &leg.stream.undecoded {
                warnings.push(format!("leg {i}: {packets} packets of {codec} are not decoded"));
            }
            if leg.stream.cut {
                warnings.push(format!("leg {i}: longer than 4 h; analysed up to there"));
            }
        }
        let mut report = FileReport::new(file, "rtp", &analysis.call, warnings, model);
        report.channels = None;
        report.codec = {
            let mut codecs: Vec<&str> = Vec::new();
            for leg in &call.legs {
                if !codecs.contains(&leg.stream.codec.as_str()) {
                    codecs.push(&leg.stream.codec);
                }
            }
            format!("rtp/{}", codecs.join(",").to_ascii_lowercase())
        };
        Self {
            call: report,
            call_id: call.call_id.clone(),
            legs: call
                .legs
                .iter()
                .zip(&analysis.legs)
                .enumerate()
                .map(|(i, (leg, a))| LegReport::new(i, leg, a.as_ref()))
                .collect(),
        }
    }
}

/// An input that could not be analysed.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub file: String,
    pub error: String,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Csv,
}

/// A push sink: `begin` once, then one `file`/`call`/`error` per input in order (a capture
/// gives one `call` per call), then `finish`.
pub trait Reporter {
    fn begin(&mut self) -> Result<()>;
    fn file(&mut self, report: &FileReport) -> Result<()>;
    fn call(&mut self, report: &CallReport) -> Result<()>;
    fn error(&mut self, report: &ErrorReport) -> Result<()>;
    fn finish(&mut self) -> Result<()>;
}

/// Builds the reporter for `format` writing to `out`.
pub fn reporter<'a>(format: Format, out: Box<dyn Write + 'a>, color: bool) -> Box<dyn Reporter + 'a> {
    match format {
        Format::Text => Box::new(text::TextReporter::new(out, color)),
        Format::Json => Box::new(JsonReporter { out, first: true }),
        Format::Jsonl => Box::new(JsonlReporter { out }),
        Format::Csv => Box::new(CsvReporter { out }),
    }
}

pub(crate) fn werr(e: impl std::fmt::Display) -> Error {
    Error::Output {
        what: "the report".into(),
        reason: e.to_string(),
    }
}

struct JsonlReporter<'a> {
    out: Box<dyn Write + 'a>,
}

impl Reporter for JsonlReporter<'_> {
    fn begin(&mut self) -> Result<()> {
        Ok(())
    }
    fn file(&mut self, report: &FileReport) -> Result<()> {
        serde_json::to_writer(&mut self.out, report).map_err(werr)?;
        writeln!(self.out).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
    fn call(&mut self, report: &CallReport) -> Result<()> {
        serde_json::to_writer(&mut self.out, report).map_err(werr)?;
        writeln!(self.out).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
    fn error(&mut self, report: &ErrorReport) -> Result<()> {
        serde_json::to_writer(&mut self.out, report).map_err(werr)?;
        writeln!(self.out).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(werr)
    }
}

/// A JSON array, written incrementally so nothing is held back.
struct JsonReporter<'a> {
    out: Box<dyn Write + 'a>,
    first: bool,
}

impl JsonReporter<'_> {
    fn item<T: Serialize>(&mut self, item: &T) -> Result<()> {
        let sep = if self.first { "\n  " } else { ",\n  " };
        self.first = false;
        write!(self.out, "{sep}").map_err(werr)?;
        let text = serde_json::to_string_pretty(item).map_err(werr)?;
        write!(self.out, "{}", text.replace('\n', "\n  ")).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
}

impl Reporter for JsonReporter<'_> {
    fn begin(&mut self) -> Result<()> {
        write!(self.out, "[").map_err(werr)
    }
    fn file(&mut self, report: &FileReport) -> Result<()> {
        self.item(report)
    }
    fn call(&mut self, report: &CallReport) -> Result<()> {
        self.item(report)
    }
    fn error(&mut self, report: &ErrorReport) -> Result<()> {
        self.item(report)
    }
    fn finish(&mut self) -> Result<()> {
        writeln!(self.out, "{}]", if self.first { "" } else { "\n" }).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
}

/// One row per channel (a mono file is one row), plus error rows.
struct CsvReporter<'a> {
    out: Box<dyn Write + 'a>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_default()
}

impl Reporter for CsvReporter<'_> {
    fn begin(&mut self) -> Result<()> {
        writeln!(
            self.out,
            "file,channel,score,verdict,duration_s,speech_s,segments,model_version,error"
        )
        .map_err(werr)
    }
    fn file(&mut self, r: &FileReport) -> Result<()> {
        let rows: Vec<(String, Option<f64>, Verdict, f64, usize)> = match &r.channels {
            Some(chs) => chs
                .iter()
                .map(|c| (c.channel.to_string(), c.score, c.verdict, c.speech_s, c.segments.len()))
                .collect(),
            None => vec![("0".into(), r.score, r.verdict, r.speech_s, r.segments.len())],
        };
        for (ch, score, verdict, speech, nseg) in rows {
            writeln!(
                self.out,
                "{},{},{},{},{:.3},{:.2},{},{},",
                csv_field(&r.file),
                ch,
                opt(score),
                verdict.as_str(),
                r.duration_s,
                speech,
                nseg,
                csv_field(&r.model.version)
            )
            .map_err(werr)?;
        }
        self.out.flush().map_err(werr)
    }
    /// One row per leg; `channel` is the leg's index.
    fn call(&mut self, r: &CallReport) -> Result<()> {
        for leg in &r.legs {
            writeln!(
                self.out,
                "{},{},{},{},{:.3},{:.2},{},{},",
                csv_field(&r.call.file),
                leg.leg,
                opt(leg.score),
                leg.verdict.as_str(),
                r.call.duration_s,
                leg.speech_s,
                leg.segments.len(),
                csv_field(&r.call.model.version)
            )
            .map_err(werr)?;
        }
        self.out.flush().map_err(werr)
    }
    fn error(&mut self, r: &ErrorReport) -> Result<()> {
        writeln!(self.out, "{},,,error,,,,,{}", csv_field(&r.file), csv_field(&r.error)).map_err(werr)?;
        self.out.flush().map_err(werr)
    }
    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(werr)
    }
}
