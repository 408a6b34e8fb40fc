//! The human-readable report: a verdict line per input and a timeline of its segments.

use std::io::Write;

use super::{CallReport, ErrorReport, FileReport, Reporter, werr};
use crate::detect::{Segment, Verdict};
use crate::error::Result;

pub(super) struct TextReporter<'a> {
    out: Box<dyn Write + 'a>,
    color: bool,
}

impl<'a> TextReporter<'a> {
    pub(super) fn new(out: Box<dyn Write + 'a>, color: bool) -> Self {
        Self { out, color }
    }

    fn paint(&self, verdict: Verdict, s: &str) -> String {
        if !self.color {
            return s.to_string();
        }
        let code = match verdict {
            Verdict::Synthetic => "1;31",
            Verdict::Genuine => "32",
            Verdict::Inconclusive => "33",
        };
        format!("\x1b[{code}m{s}\x1b[0m")
    }

    fn timeline(&mut self, indent: &str, segments: &[Segment], threshold: f64) -> Result<()> {
        for s in segments {
            let v = if s.score >= threshold {
                Verdict::Synthetic
            } else {
                Verdict::Genuine
            };
            let bar_len = (s.score * 20.0).round() as usize;
            let bar = format!("{}{}", "#".repeat(bar_len), ".".repeat(20 - bar_len.min(20)));
            let label = self.paint(v, v.as_str());
            writeln!(
                self.out,
                "{indent}{:>8} - {:<8} [{bar}] {:.3} {label}",
                fmt_time(s.start_s),
                fmt_time(s.end_s),
                s.score
            )
            .map_err(werr)?;
        }
        Ok(())
    }
}

fn fmt_time(s: f64) -> String {
    let total = s.max(0.0);
    let m = (total / 60.0).floor();
    format!("{}:{:04.1}", m as u64, total - m * 60.0)
}

fn score_text(score: Option<f64>) -> String {
    score.map_or("  -  ".to_string(), |s| format!("{s:.3}"))
}

impl Reporter for TextReporter<'_> {
    fn begin(&mut self) -> Result<()> {
        Ok(())
    }

    fn file(&mut self, r: &FileReport) -> Result<()> {
        let verdict = self.paint(r.verdict, &r.verdict.as_str().to_uppercase());
        writeln!(self.out, "{}", r.file).map_err(werr)?;
        writeln!(
            self.out,
            "  {verdict}  score {} (threshold {:.4})  {:.1} s audio, {:.1} s speech  [{} Hz {}]",
            score_text(r.score),
            r.threshold,
            r.duration_s,
            r.speech_s,
            r.sample_rate_hz,
            r.codec
        )
        .map_err(werr)?;
        for w in &r.warnings {
            writeln!(self.out, "  warning: {w}").map_err(werr)?;
        }
        if r.verdict == Verdict::Inconclusive {
            writeln!(self.out, "  too little speech to judge ({:.1} s found)", r.speech_s).map_err(werr)?;
        }
        match &r.channels {
            Some(chs) => {
                for c in chs {
                    let v = self.paint(c.verdict, c.verdict.as_str());
                    writeln!(
                        self.out,
                        "  channel {}: {v}  score {}  {:.1} s speech",
                        c.channel,
                        score_text(c.score),
                        c.speech_s
                    )
                    .map_err(werr)?;
                    self.timeline("    ", &c.segments, r.threshold)?;
                }
            }
            None => self.timeline("  ", &r.segments, r.threshold)?,
        }
        writeln!(self.out).map_err(werr)?;
        self.out.flush().map_err(werr)
    }

    fn call(&mut self, r: &CallReport) -> Result<()> {
        let c = &r.call;
        let verdict = self.paint(c.verdict, &c.verdict.as_str().to_uppercase());
        writeln!(self.out, "{}", c.file).map_err(werr)?;
        writeln!(
            self.out,
            "  {verdict}  score {} (threshold {:.4})  {:.1} s call, {} legs",
            score_text(c.score),
            c.threshold,
            c.duration_s,
            r.legs.len()
        )
        .map_err(werr)?;
        for w in &c.warnings {
            writeln!(self.out, "  warning: {w}").map_err(werr)?;
        }
        for leg in &r.legs {
            let v = self.paint(leg.verdict, leg.verdict.as_str());
            writeln!(
                self.out,
                "  leg {} {} -> {} [{} ssrc {}]: {v}  score {}  {:.1} s speech, {} packets, {} lost",
                leg.leg,
                leg.source,
                leg.destination,
                leg.codec,
                leg.ssrc,
                score_text(leg.score),
                leg.speech_s,
                leg.counts.packets,
                leg.counts.lost
            )
            .map_err(werr)?;
            self.timeline("    ", &leg.segments, c.threshold)?;
        }
        writeln!(self.out).map_err(werr)?;
        self.out.flush().map_err(werr)
    }

    fn error(&mut self, r: &ErrorReport) -> Result<()> {
        writeln!(self.out, "{}\n  ERROR  {}\n", r.file, r.error).map_err(werr)?;
        self.out.flush().map_err(werr)
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(werr)
    }
}
