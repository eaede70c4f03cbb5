//! An SVG drawing of a tensor product's paths, like e3nn's `TensorProduct.visualize()`.

use std::fmt::Write;

use super::plan::TensorProductPlan;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 520.0;
const MARGIN: f64 = 70.0;

/// `n` points spread evenly between `a` and `b` (the middle for `n = 1`).
fn spread(n: usize, a: f64, b: f64) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![(a + b) / 2.0],
        _ => (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl TensorProductPlan {
    /// An SVG picture of the paths: `irreps_in1` down the left side, `irreps_in2` down the
    /// right side, `irreps_out` along the bottom; each instruction joins its two inputs at a
    /// node and runs to its output. Weighted paths are drawn in colour (uvw blue, uvu orange,
    /// other weighted modes green), paths without weights in black; the mode labels the node.
    ///
    /// ```
    /// use equivariant_core::o3::tensor_product::fully_connected_tensor_product;
    /// let tp = fully_connected_tensor_product(
    ///     &"10x0e + 10x1e".parse()?, &"0e + 1o + 2e".parse()?, &"20x0e + 10x1e".parse()?, Default::default())?;
    /// let svg = tp.visualize();
    /// assert!(svg.starts_with("<svg") && svg.contains("10x1e") && svg.contains("400 weights"));
    /// # Ok::<(), equivariant_core::Error>(())
    /// ```
    pub fn visualize(&self) -> String {
        let in1 = spread(self.irreps_in1.len(), MARGIN + 20.0, HEIGHT - 2.5 * MARGIN);
        let in2 = spread(self.irreps_in2.len(), MARGIN + 20.0, HEIGHT - 2.5 * MARGIN);
        let out = spread(
            self.irreps_out.len(),
            MARGIN + 130.0,
            WIDTH - MARGIN - 130.0,
        );
        let (left, right, bottom) = (MARGIN + 30.0, WIDTH - MARGIN - 30.0, HEIGHT - MARGIN + 10.0);
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let title = self.to_string();
        let (name, rest) = title.split_once('(').unwrap_or((&title, ""));
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text><text x="{x}" y="38" text-anchor="middle" font-size="11">{}</text>"#,
            escape(name),
            escape(rest.trim_end_matches(')')),
            x = WIDTH / 2.0
        );
        let n = self.instructions.len().max(1);
        for (index, ins) in self.instructions.iter().enumerate() {
            let (y1, y2, xo) = (in1[ins.i_in1], in2[ins.i_in2], out[ins.i_out]);
            // The node: inside the triangle, pulled toward its output, staggered per path.
            let nx = 0.4 * (left + right) / 2.0 + 0.6 * xo;
            let ny =
                0.55 * (y1 + y2) / 2.0 + 0.45 * bottom - 25.0 + 30.0 * (index as f64 / n as f64);
            let color = match (ins.has_weight, ins.connection_mode.name()) {
                (false, _) => "black",
                (true, "uvw") => "#1f77b4",
                (true, "uvu") => "#ff7f0e",
                _ => "#2ca02c",
            };
            let _ = writeln!(
                svg,
                r#"<path d="M {left} {y1} Q {nx} {y1} {nx} {ny} M {right} {y2} Q {nx} {y2} {nx} {ny} L {xo} {bottom}" fill="none" stroke="{color}" stroke-width="1.6" stroke-opacity="0.75"/>"#
            );
            let _ = writeln!(
                svg,
                r#"<circle cx="{nx}" cy="{ny}" r="3.5" fill="{color}"/>"#
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" font-size="10" fill="{color}">{}</text>"#,
                nx + 5.0,
                ny - 4.0,
                ins.connection_mode
            );
        }
        let label = |svg: &mut String, x: f64, y: f64, anchor: &str, text: String| {
            let _ = writeln!(
                svg,
                r#"<text x="{x}" y="{y}" text-anchor="{anchor}" dominant-baseline="middle">{}</text>"#,
                escape(&text)
            );
        };
        for (m, &y) in self.irreps_in1.iter().zip(&in1) {
            label(&mut svg, left - 6.0, y, "end", m.to_string());
        }
        for (m, &y) in self.irreps_in2.iter().zip(&in2) {
            label(&mut svg, right + 6.0, y, "start", m.to_string());
        }
        for (m, &x) in self.irreps_out.iter().zip(&out) {
            label(&mut svg, x, bottom + 16.0, "middle", m.to_string());
        }
        label(&mut svg, left - 6.0, MARGIN - 10.0, "end", "in1".into());
        label(&mut svg, right + 6.0, MARGIN - 10.0, "start", "in2".into());
        label(&mut svg, WIDTH / 2.0, HEIGHT - 18.0, "middle", "out".into());
        svg.push_str("</svg>\n");
        svg
    }
}
