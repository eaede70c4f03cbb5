//! The pictures of `train` and `evaluate`: learning curves (validation errors per epoch, log
//! scale) and a parity plot of predicted against reference force components, drawn as SVG
//! and rasterized to PNG (see [`plots`](crate::plots)).

use std::path::Path;

use equivariant_train::trainer::EpochMetrics;
use plotters::prelude::*;

use crate::plots::svg_to_png;

type BoxError = Box<dyn std::error::Error>;

/// A named line of `(x, y)` points in a colour.
type Series = (&'static str, Vec<(f64, f64)>, RGBColor);

/// Writes `path` (a PNG): validation force MAE (meV/Å) and energy MAE (meV/atom) per epoch.
pub fn learning_curves(path: &Path, epochs: &[EpochMetrics]) -> Result<(), BoxError> {
    let series: [Series; 2] = [
        (
            "validation force MAE (meV/Å)",
            epochs
                .iter()
                .map(|m| (m.epoch as f64, 1e3 * m.val_force_mae))
                .collect(),
            RGBColor(31, 119, 180),
        ),
        (
            "validation energy MAE (meV/atom)",
            epochs
                .iter()
                .map(|m| (m.epoch as f64, 1e3 * m.val_energy_mae_per_atom))
                .collect(),
            RGBColor(255, 127, 14),
        ),
    ];
    let values = series.iter().flat_map(|(_, s, _)| s.iter().map(|p| p.1));
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo / 1.5, hi * 1.5)
    } else {
        (0.1, 10.0)
    };
    let last = epochs.last().map_or(1.0, |m| m.epoch as f64).max(2.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1280, 840)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("learning curves", ("sans-serif", 32))
            .margin(24)
            .x_label_area_size(72)
            .y_label_area_size(110)
            // log10 of the errors on a linear axis, labelled with the errors: plotters' own log
            // axis labels only whole decades' multiples.
            .build_cartesian_2d(1.0..last, lo.log10()..hi.log10())?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("error")
            .y_labels(12)
            .y_label_formatter(&|v| format!("{:.1}", 10f64.powf(*v)))
            .label_style(("sans-serif", 24))
            .draw()?;
        for (name, points, color) in series {
            chart
                .draw_series(LineSeries::new(
                    points
                        .into_iter()
                        .filter(|p| p.1 > 0.0)
                        .map(|(x, y)| (x, y.log10())),
                    color.stroke_width(3),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 24))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    svg_to_png(&svg, 1.0, path)
}

/// Writes `path` (a PNG): predicted against reference force components, with the diagonal.
pub fn force_parity(path: &Path, pairs: &[(f64, f64)], mae: f64) -> Result<(), BoxError> {
    let extent = pairs
        .iter()
        .flat_map(|&(a, b)| [a.abs(), b.abs()])
        .filter(|v| v.is_finite())
        .fold(1e-3f64, f64::max)
        * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 960)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "forces: MAE {:.1} meV/Å over {} components",
                    1e3 * mae,
                    pairs.len()
                ),
                ("sans-serif", 28),
            )
            .margin(24)
            .x_label_area_size(72)
            .y_label_area_size(96)
            .build_cartesian_2d(-extent..extent, -extent..extent)?;
        chart
            .configure_mesh()
            .x_desc("reference (eV/Å)")
            .y_desc("predicted (eV/Å)")
            .label_style(("sans-serif", 22))
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(-extent, -extent), (extent, extent)],
            BLACK.stroke_width(1),
        ))?;
        let blue = RGBColor(31, 119, 180).mix(0.35).filled();
        chart.draw_series(pairs.iter().map(|&(x, y)| Circle::new((x, y), 2, blue)))?;
        root.present()?;
    }
    svg_to_png(&svg, 1.0, path)
}
