//! Signals on the sphere, drawn (e3nn's `SphericalTensor` plots with plotly):
//! `cargo run --release -p equivariant-cli --example signal_on_sphere -- [OUT_DIR]`.
//!
//! Two signals of degree 4: one with peaks towards `(4, 0, 4)` and `(0, 5, 0)`, as tall as
//! those vectors are long (`with_peaks_at`), and beside it the sum of a positive and a
//! negative Dirac delta (`sum_of_diracs`). Each is drawn as the surface `|f(x)| x` coloured
//! by `f(x)` (red positive, blue negative) into `OUT_DIR/signal_on_sphere.{svg,png}`
//! (default: the current directory); the values at the peaks and the norm of each degree
//! are printed.

use std::path::PathBuf;

use equivariant::io::{SphereSurface, SphericalTensor};
use equivariant::o3::{Normalization, Parity};
use plotters::prelude::*;

// The binary's pictures, for their rasterizer (`svg_to_png`, with the embedded font).
#[allow(dead_code)]
#[path = "../src/plots.rs"]
mod plots;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let signal = SphericalTensor::new(4, Parity::Even, Parity::Odd);
    let peaks = [4.0, 0.0, 4.0, 0.0, 5.0, 0.0];
    let x = signal.with_peaks_at(&peaks, None)?;
    let at_peaks = signal.signal_xyz(&x, &peaks)?;
    println!("{}: peaks at (4, 0, 4) and (0, 5, 0)", signal.irreps());
    println!(
        "  values there: {:.4} and {:.4} (the lengths: 5.6569 and 5)",
        at_peaks[0], at_peaks[1]
    );
    println!("  norm of each degree: {:.3?}", signal.norms(&x)?);
    let diracs = signal.sum_of_diracs(&[1.0, 0.0, 0.0, 0.0, 0.0, 1.0], &[6.0, -6.0])?;
    let surfaces = [
        signal.plot(&x, None, 60, true, false, Normalization::Integral)?,
        signal.plot(
            &diracs,
            Some([11.0, 0.0, 0.0]),
            60,
            true,
            false,
            Normalization::Integral,
        )?,
    ];
    let svg = sphere_surfaces_svg(
        &surfaces,
        "SphericalTensor(4, 1, -1): with_peaks_at | sum_of_diracs",
        (20.0, 30.0),
    )?;
    std::fs::create_dir_all(&dir)?;
    let svg_path = dir.join("signal_on_sphere.svg");
    std::fs::write(&svg_path, &svg)?;
    let png_path = dir.join("signal_on_sphere.png");
    plots::svg_to_png(&svg, 1.0, &png_path)?;
    println!("wrote {} and {}", svg_path.display(), png_path.display());
    Ok(())
}

/// Surfaces of signals on the sphere ([`SphericalTensor::plot`](SphericalTensor::plot))
/// as one SVG picture: an orthographic view from `elevation` above the equator and
/// `azimuth` around the polar (y) axis, y up, each face filled by its value on a diverging
/// scale (blue negative, white zero, red positive, symmetric about zero), faces drawn back
/// to front.
pub fn sphere_surfaces_svg(
    surfaces: &[SphereSurface],
    title: &str,
    (elevation, azimuth): (f64, f64),
) -> Result<String, BoxError> {
    const SIZE: (u32, u32) = (1200, 800);
    const TITLE: u32 = 70;
    let (se, ce) = elevation.to_radians().sin_cos();
    let (sa, ca) = azimuth.to_radians().sin_cos();
    // Turn about y by the azimuth, then tilt towards the viewer by the elevation: screen x,
    // screen y (up) and depth (towards the viewer).
    let view = |p: &[f64]| -> [f64; 3] {
        let (x, z) = (ca * p[0] - sa * p[2], sa * p[0] + ca * p[2]);
        [x, ce * p[1] - se * z, se * p[1] + ce * z]
    };
    let mut faces: Vec<(f64, f64, [[f64; 2]; 4])> = Vec::new();
    // The bounding box of the projected points: [x_min, x_max, y_min, y_max].
    let mut bounds = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut largest = 1e-300f64;
    for surface in surfaces {
        let cols = surface.cols;
        let point =
            |r: usize, c: usize| view(&surface.points[(r * cols + c) * 3..(r * cols + c) * 3 + 3]);
        for r in 0..surface.rows.saturating_sub(1) {
            for c in 0..cols.saturating_sub(1) {
                let corners = [
                    point(r, c),
                    point(r, c + 1),
                    point(r + 1, c + 1),
                    point(r + 1, c),
                ];
                let value = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)]
                    .iter()
                    .map(|&(r, c)| surface.values[r * cols + c])
                    .sum::<f64>()
                    / 4.0;
                let depth = corners.iter().map(|p| p[2]).sum::<f64>() / 4.0;
                for p in &corners {
                    bounds = [
                        bounds[0].min(p[0]),
                        bounds[1].max(p[0]),
                        bounds[2].min(p[1]),
                        bounds[3].max(p[1]),
                    ];
                }
                largest = largest.max(value.abs());
                faces.push((depth, value, corners.map(|p| [p[0], p[1]])));
            }
        }
    }
    faces.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (width, height) = (SIZE.0 as f64, (SIZE.1 - TITLE) as f64);
    let scale = 0.9 * (width / (bounds[1] - bounds[0])).min(height / (bounds[3] - bounds[2]));
    let scale = if scale.is_finite() { scale } else { 1.0 };
    let middle = [(bounds[0] + bounds[1]) / 2.0, (bounds[2] + bounds[3]) / 2.0];
    let to_pixel = |p: [f64; 2]| -> (i32, i32) {
        let x = width / 2.0 + (p[0] - middle[0]) * scale;
        let y = TITLE as f64 + height / 2.0 - (p[1] - middle[1]) * scale;
        (x.round() as i32, y.round() as i32)
    };
    let color = |v: f64| -> RGBColor {
        let t = (v / largest).clamp(-1.0, 1.0);
        let fade = |full: u8| (255.0 + (full as f64 - 255.0) * t.abs()).round() as u8;
        if t >= 0.0 {
            RGBColor(fade(178), fade(24), fade(43))
        } else {
            RGBColor(fade(33), fade(102), fade(172))
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            title.to_string(),
            (24, 24),
            ("sans-serif", 28).into_font(),
        ))?;
        for (_, value, corners) in &faces {
            let polygon: Vec<(i32, i32)> = corners.iter().map(|&p| to_pixel(p)).collect();
            let fill = color(*value);
            root.draw(&Polygon::new(polygon.clone(), fill.filled()))?;
            // A hairline of the same color hides the seams between faces.
            let mut outline = polygon;
            outline.push(outline[0]);
            root.draw(&PathElement::new(outline, fill.stroke_width(1)))?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_on_the_sphere_is_drawn_face_by_face_in_its_colors() {
        let s = SphericalTensor::new(1, Parity::Even, Parity::Odd);
        // f = z: red towards +z, blue towards -z.
        let surface = s
            .plot(
                &[0.0, 0.0, 0.0, 1.0],
                None,
                10,
                true,
                false,
                Normalization::Integral,
            )
            .unwrap();
        let svg = sphere_surfaces_svg(&[surface], "z", (20.0, 30.0)).unwrap();
        // 9 x 9 faces (10 betas, 9 alphas closed by a tenth column), each a polygon.
        assert_eq!(svg.matches("<polygon").count(), 81);
        // The largest |f| gets the full color of its sign; both signs appear.
        assert!(svg.contains("fill=\"#B2182B\"") || svg.contains("fill=\"#2166AC\""));
        let fills: Vec<[u8; 3]> = svg
            .split("<polygon opacity=\"1\" fill=\"#")
            .skip(1)
            .map(|rest| {
                let hex = |i: usize| u8::from_str_radix(&rest[i..i + 2], 16).unwrap();
                [hex(0), hex(2), hex(4)]
            })
            .collect();
        assert_eq!(fills.len(), 81);
        assert!(
            fills
                .iter()
                .any(|c| i32::from(c[0]) > i32::from(c[2]) + 100),
            "red faces (f > 0)"
        );
        assert!(
            fills
                .iter()
                .any(|c| i32::from(c[2]) > i32::from(c[0]) + 100),
            "blue faces (f < 0)"
        );
        let png =
            std::env::temp_dir().join(format!("equivariant-sphere-{}.png", std::process::id()));
        plots::svg_to_png(&svg, 0.5, &png).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        std::fs::remove_file(png).unwrap();
    }
}
