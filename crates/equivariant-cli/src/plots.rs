//! The guide's pictures: the radial basis (`plt.plot` of the `smooth_finite` functions over
//! `[0, 2]`), drawn with plotters, and the tensor product's `visualize()`; each written as
//! SVG and rasterized to PNG with resvg, using an embedded font so the text renders on a
//! machine without fonts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use equivariant::math::SoftOneHotLinspace;
use equivariant::nn::ConvolutionConfig;
use equivariant::o3::tensor_product::TensorProductPlan;
use plotters::prelude::*;
use resvg::{tiny_skia, usvg};

/// DejaVu Sans (license in `assets/DejaVuSans-LICENSE`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Line colors, matplotlib's default cycle.
const CYCLE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

type BoxError = Box<dyn std::error::Error>;

/// Writes `radial_basis.{svg,png}` and `tensor_product.{svg,png}` into `dir`; returns the
/// paths written.
pub fn write_guide_pictures(
    dir: &Path,
    config: &ConvolutionConfig,
    tp: &Arc<TensorProductPlan>,
) -> Result<Vec<PathBuf>, BoxError> {
    // The guide plots the basis with cutoff=True over [0, 2].
    let basis =
        SoftOneHotLinspace::new(0.0, config.max_radius, config.num_basis, config.basis, true)?;
    // The basis plot is drawn large (plotters rounds to whole pixels) and rasterized 1:1.
    let pictures = [
        ("radial_basis", radial_basis_svg(&basis, 2.0)?, 1.0),
        ("tensor_product", tp.visualize(), 2.0),
    ];
    let mut written = Vec::new();
    for (name, svg, scale) in pictures {
        let svg_path = dir.join(format!("{name}.svg"));
        std::fs::write(&svg_path, &svg)?;
        let png_path = dir.join(format!("{name}.png"));
        svg_to_png(&svg, scale, &png_path)?;
        written.extend([svg_path, png_path]);
    }
    Ok(written)
}

/// The functions of `basis` over `[0, x_max]` (1000 points, as the guide) as an SVG line
/// plot.
pub fn radial_basis_svg(basis: &SoftOneHotLinspace, x_max: f64) -> Result<String, BoxError> {
    const POINTS: usize = 1000;
    let x: Vec<f64> = (0..POINTS)
        .map(|i| x_max * i as f64 / (POINTS - 1) as f64)
        .collect();
    let number = basis.number();
    let mut y = vec![0.0; POINTS * number];
    basis.compute(&x, &mut y)?;
    let (y_min, y_max) = y
        .iter()
        .fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let pad = 0.05 * (y_max - y_min).max(1e-12);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1280, 840)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "soft_one_hot_linspace(x, 0, {}, {number}, '{}', cutoff={})",
                    basis.end(),
                    basis.basis().name(),
                    basis.cutoff()
                ),
                ("sans-serif", 32),
            )
            .margin(24)
            .x_label_area_size(72)
            .y_label_area_size(96)
            .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
        chart
            .configure_mesh()
            .x_desc("x")
            .y_desc("basis value")
            .label_style(("sans-serif", 24))
            .draw()?;
        for k in 0..number {
            let color = CYCLE[k % CYCLE.len()];
            chart.draw_series(LineSeries::new(
                x.iter().enumerate().map(|(i, &xi)| (xi, y[i * number + k])),
                color.stroke_width(3),
            ))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Rasterizes `svg`, scaled by `scale`, to a PNG file, with the embedded font.
pub fn svg_to_png(svg: &str, scale: f32, path: &Path) -> Result<(), BoxError> {
    let mut options = usvg::Options::default();
    {
        let fontdb = options.fontdb_mut();
        fontdb.load_font_data(FONT.to_vec());
        fontdb.set_sans_serif_family("DejaVu Sans");
    }
    options.font_family = "DejaVu Sans".into();
    let tree = usvg::Tree::from_str(svg, &options)?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or("empty picture")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or("empty picture")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.save_png(path)?;
    Ok(())
}
