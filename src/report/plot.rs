//! `--plot FILE.png|svg`: the waveform envelope with the window scores drawn over it.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::detect::Analysis;
use crate::error::{Error, Result};

fn perr(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Output {
        what: path.display().to_string(),
        reason,
    }
}

/// Writes a plot of `analysis` to `path`; the format follows the extension (`.svg`, else PNG).
pub fn write_plot(path: &Path, title: &str, analysis: &Analysis) -> Result<()> {
    let rows = analysis.channels.len().max(1);
    let size = (1200u32, 240 * rows as u32 + 40);
    let is_svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if is_svg {
        let root = SVGBackend::new(path, size).into_drawing_area();
        draw(&root, title, analysis).map_err(perr(path))?;
        root.present().map_err(|e| perr(path)(e.to_string()))
    } else {
        let root = BitMapBackend::new(path, size).into_drawing_area();
        draw(&root, title, analysis).map_err(perr(path))?;
        root.present().map_err(|e| perr(path)(e.to_string()))
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    analysis: &Analysis,
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 18)).map_err(e)?;
    let areas = root.split_evenly((analysis.channels.len().max(1), 1));
    let duration = analysis.duration_s.max(0.01);
    for (area, ch) in areas.iter().zip(&analysis.channels) {
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .right_y_label_area_size(48)
            .caption(
                format!(
                    "channel {}: {} (score {})",
                    ch.channel,
                    ch.verdict.as_str(),
                    ch.score.map_or("-".into(), |s| format!("{s:.2}"))
                ),
                ("sans-serif", 14),
            )
            .build_cartesian_2d(0f64..duration, -1f64..1f64)
            .map_err(e)?
            .set_secondary_coord(0f64..duration, 0f64..1f64);
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("waveform")
            .disable_mesh()
            .draw()
            .map_err(e)?;
        chart
            .configure_secondary_axes()
            .y_desc("P(synthetic)")
            .draw()
            .map_err(e)?;
        let grey = RGBColor(150, 150, 150);
        chart
            .draw_series(
                ch.envelope
                    .points()
                    .into_iter()
                    .map(|(t, lo, hi)| PathElement::new(vec![(t, f64::from(lo)), (t, f64::from(hi))], grey)),
            )
            .map_err(e)?;
        chart
            .draw_secondary_series(ch.windows.iter().map(|w| {
                let colour = if w.probability >= analysis.threshold {
                    RED
                } else {
                    GREEN
                };
                Rectangle::new([(w.start_s, 0.0), (w.end_s, w.probability)], colour.mix(0.25).filled())
            }))
            .map_err(e)?;
        chart
            .draw_secondary_series(std::iter::once(PathElement::new(
                vec![(0.0, analysis.threshold), (duration, analysis.threshold)],
                BLACK.stroke_width(1),
            )))
            .map_err(e)?;
    }
    Ok(())
}
