//! The fused tangent convolution (`TensorProductPlan::conv_tangent_forward` /
//! `conv_tangent_backward`) against the three convolutions it fuses, at 1e-10 in f64 (the
//! tangent and every gradient, for each set of moving inputs), factorized and expanded (at
//! hidden widths that take each plan both ways); the tangent against central differences;
//! bit-identical results across thread counts; the inputs it refuses.

use crate::support::{on_threads, randn, to_f32};
use equivariant_core::graph::EdgeIndex;
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::{
    ConvGradients, ConvTangentGradients, ConvTangentInputs, EdgeWeights, Instruction,
    TensorProductOptions, TensorProductPlan, fully_connected_tensor_product,
};
use equivariant_testing::assert_close;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The guide's product (uvw), a uvu product (as in NequIP's and MACE's convolutions), uvw
/// and uvu paths in one product with a uvu path without weights, and a uvw product of
/// higher degrees.
fn plans() -> Vec<TensorProductPlan> {
    let options = TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    };
    let p = |s: &str| -> Irreps { s.parse().unwrap() };
    let fc = |a: &str, b: &str, c: &str| {
        fully_connected_tensor_product(&p(a), &p(b), &p(c), options.clone()).unwrap()
    };
    let uvu = |a, b, c, w| Instruction::new(a, b, c, "uvu".parse().unwrap(), w);
    let uvw = |a, b, c| Instruction::new(a, b, c, "uvw".parse().unwrap(), true);
    let custom = |a: &str, b: &str, c: &str, instructions| {
        TensorProductPlan::new(&p(a), &p(b), &p(c), instructions, options.clone()).unwrap()
    };
    vec![
        fc("10x0e+10x1e", "0e+1o+2e", "20x0e+10x1e"),
        custom(
            "4x0e+3x1o+2x2e",
            "0e+1o+2e",
            "4x0e+3x1o+4x1o+2x0e+2x1o",
            vec![
                uvu(0, 0, 0, true),
                uvu(1, 0, 1, true),
                uvu(0, 1, 2, true),
                uvu(2, 2, 3, true),
                uvu(2, 1, 4, true),
            ],
        ),
        custom(
            "3x0e+2x1o",
            "0e+1o",
            "4x0e+2x1o+3x1o",
            vec![
                uvw(0, 0, 0),
                uvu(1, 0, 1, false),
                uvu(0, 1, 2, true),
                uvw(1, 1, 0),
            ],
        ),
        fc("2x1o+1x3o", "1e+3e", "2x0o+1x2o+1x4o"),
    ]
}

/// Random graphs: one with a node receiving nothing and an isolated node, a hub of 45
/// edges into one node (whole groups of 32 edges and a remainder), a single edge, no edges.
fn graphs(rng: &mut impl Rng) -> Vec<EdgeIndex> {
    let (n, m) = (17, 80);
    let src: Vec<usize> = (0..m).map(|_| rng.random_range(0..n - 1)).collect();
    let dst: Vec<usize> = (0..m).map(|_| rng.random_range(1..n - 1)).collect();
    let hub_src: Vec<usize> = (0..45).map(|i| [0, 2, 3, 4, 5][i % 5]).collect();
    vec![
        EdgeIndex::new(&src, &dst, n).unwrap(),
        EdgeIndex::new(&hub_src, &[1; 45], 6).unwrap(),
        EdgeIndex::new(&[2], &[0], 3).unwrap(),
        EdgeIndex::new(&[], &[], 9).unwrap(),
    ]
}

/// A convolution's inputs and their tangents, random.
struct Case {
    x1: Vec<f64>,
    dx1: Vec<f64>,
    x2: Vec<f64>,
    dx2: Vec<f64>,
    hidden: Vec<f64>,
    dhidden: Vec<f64>,
    linear: Vec<f64>,
}

impl Case {
    fn new(rng: &mut impl Rng, tp: &TensorProductPlan, edges: &EdgeIndex, width: usize) -> Self {
        let (n, e) = (edges.num_nodes(), edges.num_edges());
        let (d1, d2) = (tp.irreps_in1().dim(), tp.irreps_in2().dim());
        Case {
            x1: randn(rng, n * d1),
            dx1: randn(rng, n * d1),
            x2: randn(rng, e * d2),
            dx2: randn(rng, e * d2),
            hidden: randn(rng, e * width),
            dhidden: randn(rng, e * width),
            linear: randn(rng, width * tp.weight_numel()),
        }
    }

    /// The inputs with the tangents `moving` marks (`[x1, x2, hidden]`).
    fn inputs(&self, moving: [bool; 3]) -> ConvTangentInputs<'_, f64> {
        ConvTangentInputs {
            x1: &self.x1,
            dx1: moving[0].then_some(&self.dx1[..]),
            x2: &self.x2,
            dx2: moving[1].then_some(&self.dx2[..]),
            hidden: &self.hidden,
            dhidden: moving[2].then_some(&self.dhidden[..]),
            linear: &self.linear,
        }
    }
}

const SCALE: f64 = 0.3;

/// `conv(x1, x2, hidden)` by the plain fused kernel.
fn conv(
    tp: &TensorProductPlan,
    edges: &EdgeIndex,
    x1: &[f64],
    x2: &[f64],
    h: &[f64],
    l: &[f64],
) -> Vec<f64> {
    let mut out = vec![0.0; edges.num_nodes() * tp.irreps_out().dim()];
    let w = EdgeWeights::Linear {
        hidden: h,
        linear: l,
    };
    tp.conv_forward(edges, x1, x2, w, SCALE, &mut out).unwrap();
    out
}

/// `[dx1, dx2, dh, dL]` of one convolution term for output gradient `g`.
fn conv_grads(
    tp: &TensorProductPlan,
    edges: &EdgeIndex,
    (x1, x2, h, l): (&[f64], &[f64], &[f64], &[f64]),
    g: &[f64],
) -> [Vec<f64>; 4] {
    let (mut g1, mut g2, mut gh, mut gl) = (
        vec![0.0; x1.len()],
        vec![0.0; x2.len()],
        vec![0.0; h.len()],
        vec![0.0; l.len()],
    );
    let grads = ConvGradients {
        x1: Some(&mut g1),
        x2: Some(&mut g2),
        weight: Some(&mut gh),
        linear: Some(&mut gl),
    };
    let w = EdgeWeights::Linear {
        hidden: h,
        linear: l,
    };
    tp.conv_backward(edges, x1, x2, w, SCALE, g, grads).unwrap();
    [g1, g2, gh, gl]
}

fn add(a: &mut [f64], b: &[f64]) {
    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
}

/// Hidden widths at which each plan's tangent runs expanded (the weighted plans at widths
/// 1 and 5: `width x weight_numel <= 512`) and factorized (all at 64).
const WIDTHS: [usize; 3] = [1, 5, 64];

/// Each path runs: for every plan, whether the widths take it expanded and factorized.
#[test]
fn the_widths_run_both_paths() {
    let expands: Vec<Vec<bool>> = plans()
        .iter()
        .map(|tp| WIDTHS.map(|w| tp.conv_expands(w)).to_vec())
        .collect();
    // The third plan has a path without weights: factorized at every width (its expanded
    // check returns true at width 1 and 5, but the tangent does not expand it).
    for (k, e) in expands.iter().enumerate() {
        assert!(e.contains(&true) && e.contains(&false), "plan {k}: {e:?}");
    }
}

#[test]
fn tangent_matches_three_convolutions() {
    let mut rng = StdRng::seed_from_u64(11);
    for (tp, width) in plans().iter().flat_map(|tp| WIDTHS.map(|w| (tp, w))) {
        for edges in graphs(&mut rng) {
            let c = Case::new(&mut rng, tp, &edges, width);
            let dim = edges.num_nodes() * tp.irreps_out().dim();
            let (g, dg) = (randn(&mut rng, dim), randn(&mut rng, dim));
            for mask in 0..8 {
                let moving = [mask & 1 != 0, mask & 2 != 0, mask & 4 != 0];
                let inputs = c.inputs(moving);
                let (mut out, mut d_out) = (vec![0.0; dim], vec![0.0; dim]);
                // The sums kept for the backward (which is run with and without them).
                let width = c.linear.len() / tp.weight_numel();
                let mut sums = vec![f64::NAN; tp.conv_tangent_sums_len(edges.num_nodes(), width)];
                let keep = Some(&mut sums[..]);
                tp.conv_tangent_forward(&edges, inputs, SCALE, &mut out, &mut d_out, keep)
                    .unwrap();
                let l = &c.linear[..];
                // The three terms: which input moves, and the arguments of its convolution.
                let terms = [
                    (moving[0], (&c.dx1[..], &c.x2[..], &c.hidden[..])),
                    (moving[1], (&c.x1[..], &c.dx2[..], &c.hidden[..])),
                    (moving[2], (&c.x1[..], &c.x2[..], &c.dhidden[..])),
                ];
                // A path without weights does not move with `hidden`: the `dh` term is
                // conv(x1, x2, dh) - conv(x1, x2, 0) (its backward likewise).
                let zero_h = vec![0.0; c.hidden.len()];
                let mut want_d_out = vec![0.0; dim];
                for &(on, (a, b, h)) in &terms {
                    if on {
                        add(&mut want_d_out, &conv(tp, &edges, a, b, h, l));
                    }
                }
                if moving[2] {
                    let still = conv(tp, &edges, &c.x1, &c.x2, &zero_h, l);
                    want_d_out.iter_mut().zip(&still).for_each(|(y, s)| *y -= s);
                }
                let what = format!(
                    "plan {} ({}), mask {mask:03b}",
                    tp.irreps_out(),
                    edges.num_edges()
                );
                assert_close(
                    &what,
                    &out,
                    &conv(tp, &edges, &c.x1, &c.x2, &c.hidden, l),
                    1e-10,
                );
                assert_close(&what, &d_out, &want_d_out, 1e-10);

                // The gradients: the value's convolution with `g`, each term's with `dg`.
                let mut want = [
                    vec![0.0; c.x1.len()],
                    vec![0.0; c.dx1.len()],
                    vec![0.0; c.x2.len()],
                    vec![0.0; c.dx2.len()],
                    vec![0.0; c.hidden.len()],
                    vec![0.0; c.dhidden.len()],
                    vec![0.0; l.len()],
                ];
                let [g1, g2, gh, gl] = conv_grads(tp, &edges, (&c.x1, &c.x2, &c.hidden, l), &g);
                for (i, v) in [(0, g1), (2, g2), (4, gh), (6, gl)] {
                    add(&mut want[i], &v);
                }
                // Term k's inputs go to: [x1 slot, x2 slot, hidden slot].
                let slots = [[1, 2, 4], [0, 3, 4], [0, 2, 5]];
                for (&(on, (a, b, h)), slot) in terms.iter().zip(slots) {
                    if !on {
                        continue;
                    }
                    let [ga, gb, ghh, gl] = conv_grads(tp, &edges, (a, b, h, l), &dg);
                    add(&mut want[slot[0]], &ga);
                    add(&mut want[slot[1]], &gb);
                    add(&mut want[slot[2]], &ghh);
                    add(&mut want[6], &gl);
                }
                if moving[2] {
                    let [ga, gb, _, gl] = conv_grads(tp, &edges, (&c.x1, &c.x2, &zero_h, l), &dg);
                    let neg = |v: Vec<f64>| v.into_iter().map(|x| -x).collect::<Vec<_>>();
                    add(&mut want[0], &neg(ga));
                    add(&mut want[2], &neg(gb));
                    add(&mut want[6], &neg(gl));
                }
                for kept in [Some(&sums[..]), None] {
                    let mut got = want.clone().map(|v| vec![f64::NAN; v.len()]);
                    let [g1, gd1, g2, gd2, gh, gdh, glin] = &mut got;
                    let grads = ConvTangentGradients {
                        x1: Some(g1),
                        dx1: moving[0].then_some(&mut gd1[..]),
                        x2: Some(g2),
                        dx2: moving[1].then_some(&mut gd2[..]),
                        hidden: Some(gh),
                        dhidden: moving[2].then_some(&mut gdh[..]),
                        linear: Some(glin),
                    };
                    tp.conv_tangent_backward(&edges, inputs, SCALE, &g, &dg, kept, grads)
                        .unwrap();
                    let names = ["x1", "dx1", "x2", "dx2", "hidden", "dhidden", "linear"];
                    let asked = [true, moving[0], true, moving[1], true, moving[2], true];
                    let pairs = names.iter().zip(asked).zip(got.iter().zip(&want));
                    for ((name, on), (got, want)) in pairs {
                        if on {
                            let what =
                                format!("{what} grad {name} (sums kept: {})", kept.is_some());
                            assert_close(&what, got, want, 1e-10);
                        }
                    }
                }
                // `dL/dlinear` alone from the kept sums (no edge gradient: the nodes' products
                // are not formed again for a uvw-only plan).
                let mut glin = vec![f64::NAN; l.len()];
                let grads = ConvTangentGradients {
                    linear: Some(&mut glin),
                    ..Default::default()
                };
                tp.conv_tangent_backward(&edges, inputs, SCALE, &g, &dg, Some(&sums), grads)
                    .unwrap();
                assert_close(&format!("{what} grad linear alone"), &glin, &want[6], 1e-10);

                // Only some gradients asked for: the same values.
                let mut only = vec![f64::NAN; c.hidden.len()];
                let grads = ConvTangentGradients {
                    hidden: Some(&mut only),
                    ..Default::default()
                };
                tp.conv_tangent_backward(&edges, inputs, SCALE, &g, &dg, None, grads)
                    .unwrap();
                assert_close(&format!("{what} grad hidden alone"), &only, &want[4], 1e-10);
            }
        }
    }
}

#[test]
fn tangent_matches_central_differences() {
    let mut rng = StdRng::seed_from_u64(12);
    for (tp, width) in plans().iter().flat_map(|tp| WIDTHS.map(|w| (tp, w))) {
        let edges = &graphs(&mut rng)[0];
        let c = Case::new(&mut rng, tp, edges, width);
        let dim = edges.num_nodes() * tp.irreps_out().dim();
        let (mut out, mut d_out) = (vec![0.0; dim], vec![0.0; dim]);
        let inputs = c.inputs([true; 3]);
        tp.conv_tangent_forward(edges, inputs, SCALE, &mut out, &mut d_out, None)
            .unwrap();
        // The cubic term `t(dx1, dx2, dW)` grows with the width (~30 at 64): at this step it
        // moves the difference by ~1e-7.
        let step = 1e-4;
        let moved = |s: f64| {
            let m =
                |x: &[f64], d: &[f64]| x.iter().zip(d).map(|(x, d)| x + s * d).collect::<Vec<_>>();
            conv(
                tp,
                edges,
                &m(&c.x1, &c.dx1),
                &m(&c.x2, &c.dx2),
                &m(&c.hidden, &c.dhidden),
                &c.linear,
            )
        };
        let (plus, minus) = (moved(step), moved(-step));
        let slope: Vec<f64> = plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * step))
            .collect();
        // Trilinear: the central difference is exact up to step^2 times the third-order term.
        assert_close("d_out against central differences", &d_out, &slope, 1e-5);
    }
}

#[test]
fn tangent_is_bit_identical_across_thread_counts() {
    let mut rng = StdRng::seed_from_u64(13);
    for tp in plans().iter().take(2) {
        let n = 300;
        let src: Vec<usize> = (0..5000).map(|_| rng.random_range(0..n)).collect();
        let dst: Vec<usize> = (0..5000).map(|_| rng.random_range(0..n)).collect();
        let edges = EdgeIndex::new(&src, &dst, n).unwrap();
        let c = Case::new(&mut rng, tp, &edges, 16);
        let (x1, dx1, x2, dx2) = (to_f32(&c.x1), to_f32(&c.dx1), to_f32(&c.x2), to_f32(&c.dx2));
        let (h, dh, l) = (to_f32(&c.hidden), to_f32(&c.dhidden), to_f32(&c.linear));
        let dim = n * tp.irreps_out().dim();
        let (g, dg) = (to_f32(&randn(&mut rng, dim)), to_f32(&randn(&mut rng, dim)));
        let run = |threads: usize| {
            on_threads(threads, || {
                let inputs = ConvTangentInputs {
                    x1: &x1,
                    dx1: Some(&dx1),
                    x2: &x2,
                    dx2: Some(&dx2),
                    hidden: &h,
                    dhidden: Some(&dh),
                    linear: &l,
                };
                let (mut out, mut d_out) = (vec![0.0f32; dim], vec![0.0f32; dim]);
                let mut sums = vec![0.0f32; tp.conv_tangent_sums_len(n, 16)];
                let keep = Some(&mut sums[..]);
                tp.conv_tangent_forward(&edges, inputs, 0.2, &mut out, &mut d_out, keep)
                    .unwrap();
                let mut grads = [&x1, &dx1, &x2, &dx2, &h, &dh, &l].map(|v| vec![0.0f32; v.len()]);
                let [g1, gd1, g2, gd2, gh, gdh, gl] = &mut grads;
                let slots = ConvTangentGradients {
                    x1: Some(g1),
                    dx1: Some(gd1),
                    x2: Some(g2),
                    dx2: Some(gd2),
                    hidden: Some(gh),
                    dhidden: Some(gdh),
                    linear: Some(gl),
                };
                tp.conv_tangent_backward(&edges, inputs, 0.2, &g, &dg, Some(&sums), slots)
                    .unwrap();
                (out, d_out, sums, grads)
            })
        };
        let one = run(1);
        assert!(one == run(2) && one == run(3));
    }
}

#[test]
fn tangent_refuses_bad_inputs() {
    let mut rng = StdRng::seed_from_u64(14);
    let tp = &plans()[0];
    let edges = &graphs(&mut rng)[2];
    let c = Case::new(&mut rng, tp, edges, 3);
    let dim = edges.num_nodes() * tp.irreps_out().dim();
    let (mut out, mut d_out) = (vec![0.0; dim], vec![0.0; dim]);
    // A tangent of the wrong length; a d_out of the wrong length.
    let mut bad = c.inputs([true, false, false]);
    bad.dx1 = Some(&c.dx1[1..]);
    assert!(
        tp.conv_tangent_forward(edges, bad, 1.0, &mut out, &mut d_out, None)
            .is_err()
    );
    let inputs = c.inputs([false, true, false]);
    assert!(
        tp.conv_tangent_forward(edges, inputs, 1.0, &mut out, &mut d_out[1..], None)
            .is_err()
    );
    // Sums of the wrong length, kept or read.
    let len = tp.conv_tangent_sums_len(edges.num_nodes(), c.linear.len() / tp.weight_numel());
    let mut sums = vec![0.0; len + 1];
    let keep = Some(&mut sums[..]);
    assert!(
        tp.conv_tangent_forward(edges, inputs, 1.0, &mut out, &mut d_out, keep)
            .is_err()
    );
    // The gradient of a constant input's tangent.
    let mut gd1 = vec![0.0; c.x1.len()];
    let grads = ConvTangentGradients {
        dx1: Some(&mut gd1),
        ..Default::default()
    };
    let g = vec![0.0; dim];
    assert!(
        tp.conv_tangent_backward(edges, inputs, 1.0, &g, &g, None, grads)
            .is_err()
    );
    let grads = ConvTangentGradients::default();
    assert!(
        tp.conv_tangent_backward(edges, inputs, 1.0, &g, &g, Some(&sums), grads)
            .is_err()
    );
}
