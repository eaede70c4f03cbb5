//! The fused convolution kernels (`TensorProductPlan::conv_forward` / `conv_backward`) against
//! the unfused pipeline (gather, row tensor product, scatter) at 1e-10 in f64, on random
//! graphs with nodes that receive nothing, isolated nodes and a single edge; the MLP-fused
//! weights against precomputed ones; finite differences; bit-identical results across
//! thread counts.

use crate::support::{
    matmul_nt_reference, matmul_reference, matmul_tn_reference, on_threads, randn, to_f32,
};
use equivariant_core::graph::{EdgeIndex, gather, scatter_sum};
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::{
    ConvGradients, EdgeWeights, Instruction, TensorProductGradients, TensorProductOptions,
    TensorProductPlan, fully_connected_tensor_product,
};
use equivariant_testing::assert_close;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn per_edge() -> TensorProductOptions {
    TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    }
}

fn irreps(s: &str) -> Irreps {
    s.parse().unwrap()
}

/// The guide's product, a uvu product (as in NequIP / MACE convolutions), the two kinds
/// mixed, a generic mode, and two uvu products wide enough for the channels in the lanes.
pub(crate) fn plans() -> Vec<TensorProductPlan> {
    let uvu = |a, b, c| Instruction::new(a, b, c, "uvu".parse().unwrap(), true);
    let uvw = |a, b, c, w| Instruction::new(a, b, c, "uvw".parse().unwrap(), w);
    vec![
        fully_connected_tensor_product(
            &irreps("10x0e+10x1e"),
            &irreps("0e+1o+2e"),
            &irreps("20x0e+10x1e"),
            per_edge(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &irreps("4x0e+3x1o+2x2e"),
            &irreps("0e+1o+2e"),
            &irreps("4x0e+3x1o+4x1o+2x0e+2x1o"),
            vec![
                uvu(0, 0, 0),
                uvu(1, 0, 1),
                uvu(0, 1, 2),
                uvu(2, 2, 3),
                uvu(2, 1, 4),
            ],
            per_edge(),
        )
        .unwrap(),
        // uvw and uvu paths in one product, one uvu path without weights.
        TensorProductPlan::new(
            &irreps("3x0e+2x1o"),
            &irreps("0e+1o"),
            &irreps("4x0e+2x1o+3x1o"),
            vec![
                uvw(0, 0, 0, true),
                Instruction::new(1, 0, 1, "uvu".parse().unwrap(), false),
                uvu(0, 1, 2),
                uvw(1, 1, 0, true),
            ],
            per_edge(),
        )
        .unwrap(),
        fully_connected_tensor_product(
            &irreps("2x1o+1x3o"),
            &irreps("1e+3e"),
            &irreps("2x0o+1x2o+1x4o"),
            per_edge(),
        )
        .unwrap(),
        // Weighted uvu paths only, each of one `x2` channel: the forward with the channels
        // in the lanes, in groups of 16 (all), 8 (24, 26) and one (17, 26, 19), of
        // dimensions it has as constants and (7 x 7, 7 x 3) not.
        TensorProductPlan::new(
            &irreps("17x0e+24x1o+26x2e+19x3o"),
            &irreps("0e+1o+2e"),
            &irreps("17x0e+24x1o+26x2e+19x3o+24x0e+24x2e+17x2e+19x1o+26x1o"),
            vec![
                uvu(0, 0, 0),
                uvu(1, 0, 1),
                uvu(2, 0, 2),
                uvu(3, 0, 3),
                uvu(1, 1, 4),
                uvu(1, 1, 5),
                uvu(0, 2, 6),
                uvu(3, 2, 7),
                uvu(2, 1, 8),
            ],
            per_edge(),
        )
        .unwrap(),
        // As the one above, with harmonics to degree 1: the backward by source too.
        TensorProductPlan::new(
            &irreps("24x0e+24x1o+24x2e+17x3o"),
            &irreps("0e+1o"),
            &irreps("24x0e+24x1o+24x2e+17x3o+17x2e+24x1e"),
            vec![
                uvu(0, 0, 0),
                uvu(1, 0, 1),
                uvu(2, 0, 2),
                uvu(3, 0, 3),
                uvu(1, 1, 0),
                uvu(0, 1, 1),
                uvu(1, 1, 2),
                uvu(2, 1, 1),
                uvu(3, 1, 4),
                uvu(1, 1, 5),
            ],
            per_edge(),
        )
        .unwrap(),
    ]
}

/// Random graphs on `n` nodes: about `density n` random edges (repeats allowed), plus the
/// special cases.
pub(crate) fn graphs(rng: &mut impl Rng) -> Vec<(Vec<usize>, Vec<usize>, usize)> {
    let mut out = Vec::new();
    // (60, 1100): nodes of many edges; (1100, 2500): more nodes than the backward's 64
    // partial `dL/dlinear` sums take one chunk each (a sum then spans several chunks).
    for (n, m) in [(17, 60), (40, 300), (9, 0), (60, 1100), (1100, 2500)] {
        // Node n - 1 stays isolated; node 0 receives nothing.
        let src: Vec<usize> = (0..m).map(|_| rng.random_range(0..n - 1)).collect();
        let dst: Vec<usize> = (0..m).map(|_| rng.random_range(1..n - 1)).collect();
        out.push((src, dst, n));
    }
    out.push((vec![2], vec![0], 3)); // a single edge
    // A hub: node 1 receives 45 edges, so the edge loops run whole groups of 32 edges and
    // a remainder (the graphs above give a node at most a few eight-edge vectors).
    let src: Vec<usize> = (0..45)
        .map(|i| [0, 2, 3, 4, 5][i % 5])
        .chain([1, 1])
        .collect();
    let dst: Vec<usize> = std::iter::repeat_n(1, 45).chain([0, 4]).collect();
    out.push((src, dst, 6));
    out
}

/// `scale scatter_dst(tp(gather_src(x1), x2, w))`, unfused.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unfused_forward(
    tp: &TensorProductPlan,
    src: &[usize],
    dst: &[usize],
    n: usize,
    x1: &[f64],
    x2: &[f64],
    w: &[f64],
    scale: f64,
) -> Vec<f64> {
    let d_out = tp.irreps_out().dim();
    let x1e = gather(x1, src, tp.irreps_in1().dim()).unwrap();
    let mut msg = vec![0.0; src.len() * d_out];
    tp.forward(&x1e, x2, w, &mut msg).unwrap();
    let mut out = scatter_sum(&msg, dst, n, d_out).unwrap();
    out.iter_mut().for_each(|y| *y *= scale);
    out
}

/// The unfused gradients `(x1, x2, w)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unfused_backward(
    tp: &TensorProductPlan,
    src: &[usize],
    dst: &[usize],
    n: usize,
    x1: &[f64],
    x2: &[f64],
    w: &[f64],
    scale: f64,
    g: &[f64],
) -> [Vec<f64>; 3] {
    let (d1, d_out) = (tp.irreps_in1().dim(), tp.irreps_out().dim());
    let x1e = gather(x1, src, d1).unwrap();
    let mut ge = gather(g, dst, d_out).unwrap();
    ge.iter_mut().for_each(|y| *y *= scale);
    let (mut g1e, mut g2, mut gw) = (
        vec![0.0; x1e.len()],
        vec![0.0; x2.len()],
        vec![0.0; w.len()],
    );
    tp.backward(
        &x1e,
        x2,
        w,
        &ge,
        TensorProductGradients {
            x1: Some(&mut g1e),
            x2: Some(&mut g2),
            weight: Some(&mut gw),
        },
    )
    .unwrap();
    [scatter_sum(&g1e, src, n, d1).unwrap(), g2, gw]
}

#[test]
fn fused_matches_unfused() {
    let mut rng = StdRng::seed_from_u64(0);
    let mut seen = [false; 2];
    for tp in plans() {
        // [factorized, expanded]: a linear convolution's backward of this plan ran each way
        // (the forward too, but for the channels in the lanes).
        let mut routes = [false; 2];
        let (d1, d2, d_out, numel) = (
            tp.irreps_in1().dim(),
            tp.irreps_in2().dim(),
            tp.irreps_out().dim(),
            tp.weight_numel(),
        );
        for (src, dst, n) in graphs(&mut rng) {
            let e = src.len();
            let edges = EdgeIndex::new(&src, &dst, n).unwrap();
            let (x1, x2, w, g) = (
                randn(&mut rng, n * d1),
                randn(&mut rng, e * d2),
                randn(&mut rng, e * numel),
                randn(&mut rng, n * d_out),
            );
            let scale = 0.37;
            let mut out = vec![f64::NAN; n * d_out];
            tp.conv_forward(&edges, &x1, &x2, EdgeWeights::PerEdge(&w), scale, &mut out)
                .unwrap();
            let what = format!("{tp} on {n} nodes, {e} edges");
            assert_close(
                &format!("{what}: forward"),
                &out,
                &unfused_forward(&tp, &src, &dst, n, &x1, &x2, &w, scale),
                1e-10,
            );

            let [e1, e2, ew] = unfused_backward(&tp, &src, &dst, n, &x1, &x2, &w, scale, &g);
            let (mut g1, mut g2, mut gw) = (
                vec![f64::NAN; n * d1],
                vec![f64::NAN; e * d2],
                vec![f64::NAN; e * numel],
            );
            tp.conv_backward(
                &edges,
                &x1,
                &x2,
                EdgeWeights::PerEdge(&w),
                scale,
                &g,
                ConvGradients {
                    x1: Some(&mut g1),
                    x2: Some(&mut g2),
                    weight: Some(&mut gw),
                    linear: None,
                },
            )
            .unwrap();
            assert_close(&format!("{what}: grad x1"), &g1, &e1, 1e-10);
            assert_close(&format!("{what}: grad x2"), &g2, &e2, 1e-10);
            assert_close(&format!("{what}: grad w"), &gw, &ew, 1e-10);

            // The MLP's last layer fused: w = hidden linear, at widths that take the
            // expanded kernel (small width x weight_numel) and the factorized one.
            for width in [1, 5, 40] {
                if !tp.conv_channels_backward() {
                    routes[usize::from(tp.conv_expands(width))] = true;
                }
                let what = format!("{what}, width {width}");
                let (hidden, linear) = (randn(&mut rng, e * width), randn(&mut rng, width * numel));
                let w_lin = matmul_reference(&hidden, &linear, width, numel);
                let lin = EdgeWeights::Linear {
                    hidden: &hidden,
                    linear: &linear,
                };
                out.fill(f64::NAN);
                tp.conv_forward(&edges, &x1, &x2, lin, scale, &mut out)
                    .unwrap();
                assert_close(
                    &format!("{what}: linear forward"),
                    &out,
                    &unfused_forward(&tp, &src, &dst, n, &x1, &x2, &w_lin, scale),
                    1e-10,
                );
                let [e1, e2, ew] =
                    unfused_backward(&tp, &src, &dst, n, &x1, &x2, &w_lin, scale, &g);
                let (mut gh, mut glin) = (vec![f64::NAN; e * width], vec![f64::NAN; width * numel]);
                tp.conv_backward(
                    &edges,
                    &x1,
                    &x2,
                    lin,
                    scale,
                    &g,
                    ConvGradients {
                        x1: Some(&mut g1),
                        x2: Some(&mut g2),
                        weight: Some(&mut gh),
                        linear: Some(&mut glin),
                    },
                )
                .unwrap();
                assert_close(&format!("{what}: linear grad x1"), &g1, &e1, 1e-10);
                assert_close(&format!("{what}: linear grad x2"), &g2, &e2, 1e-10);
                // dL/dhidden = gw linear^T, dL/dlinear = hidden^T gw.
                let eh = matmul_nt_reference(&ew, &linear, numel);
                let elin = matmul_tn_reference(&hidden, &ew, width, numel);
                assert_close(&format!("{what}: grad hidden"), &gh, &eh, 1e-10);
                assert_close(&format!("{what}: grad linear"), &glin, &elin, 1e-10);
                // Each gradient alone (the kernel skips the work of those not asked for).
                let full = [&g1, &g2, &gh, &glin];
                for wanted in 0..4 {
                    let mut bufs = full.map(|v| vec![f64::NAN; v.len()]);
                    let [b1, b2, bh, bl] = &mut bufs;
                    let grads = ConvGradients {
                        x1: (wanted == 0).then_some(&mut b1[..]),
                        x2: (wanted == 1).then_some(&mut b2[..]),
                        weight: (wanted == 2).then_some(&mut bh[..]),
                        linear: (wanted == 3).then_some(&mut bl[..]),
                    };
                    tp.conv_backward(&edges, &x1, &x2, lin, scale, &g, grads)
                        .unwrap();
                    assert_close(
                        &format!("{what}: gradient {wanted} alone"),
                        &bufs[wanted],
                        full[wanted],
                        1e-12,
                    );
                }
            }
        }
        assert!(
            routes[0] || tp.conv_channels_backward(),
            "{tp}: the factorized kernel ran"
        );
        seen = [seen[0] || routes[0], seen[1] || routes[1]];
    }
    assert_eq!(
        seen,
        [true, true],
        "both kernels of a linear convolution ran"
    );
}

/// Both kernels of a linear convolution (expanded at width 3, factorized at 40), and the
/// backward by source (the channels in the lanes).
#[test]
fn fused_gradients_match_finite_differences() {
    let plans = plans();
    let tp = &plans[1];
    assert!(tp.conv_expands(3) && !tp.conv_expands(40));
    for width in [3, 40] {
        linear_gradients_match_finite_differences(tp, width);
    }
    assert!(plans[5].conv_channels_backward());
    linear_gradients_match_finite_differences(&plans[5], 3);
}

fn linear_gradients_match_finite_differences(tp: &TensorProductPlan, width: usize) {
    let mut rng = StdRng::seed_from_u64(1);
    let (src, dst, n) = (vec![0, 1, 2, 2, 3], vec![1, 0, 1, 3, 1], 5);
    let edges = EdgeIndex::new(&src, &dst, n).unwrap();
    let (d1, d2, d_out, numel) = (
        tp.irreps_in1().dim(),
        tp.irreps_in2().dim(),
        tp.irreps_out().dim(),
        tp.weight_numel(),
    );
    let e = src.len();
    let (x1, x2, hidden, linear, g) = (
        randn(&mut rng, n * d1),
        randn(&mut rng, e * d2),
        randn(&mut rng, e * width),
        randn(&mut rng, width * numel),
        randn(&mut rng, n * d_out),
    );
    let loss = |x1: &[f64], x2: &[f64], hidden: &[f64], linear: &[f64]| {
        let mut out = vec![0.0; n * d_out];
        tp.conv_forward(
            &edges,
            x1,
            x2,
            EdgeWeights::Linear { hidden, linear },
            0.5,
            &mut out,
        )
        .unwrap();
        out.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
    };
    let (mut g1, mut g2, mut gh, mut glin) = (
        vec![0.0; x1.len()],
        vec![0.0; x2.len()],
        vec![0.0; hidden.len()],
        vec![0.0; linear.len()],
    );
    tp.conv_backward(
        &edges,
        &x1,
        &x2,
        EdgeWeights::Linear {
            hidden: &hidden,
            linear: &linear,
        },
        0.5,
        &g,
        ConvGradients {
            x1: Some(&mut g1),
            x2: Some(&mut g2),
            weight: Some(&mut gh),
            linear: Some(&mut glin),
        },
    )
    .unwrap();
    let fd = |x: &[f64], f: &dyn Fn(&[f64]) -> f64| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let (mut p, mut m) = (x.to_vec(), x.to_vec());
                p[i] += 1e-6;
                m[i] -= 1e-6;
                (f(&p) - f(&m)) / 2e-6
            })
            .collect()
    };
    assert_close(
        &format!("width {width}: {}", "x1"),
        &g1,
        &fd(&x1, &|v| loss(v, &x2, &hidden, &linear)),
        1e-6,
    );
    assert_close(
        &format!("width {width}: {}", "x2"),
        &g2,
        &fd(&x2, &|v| loss(&x1, v, &hidden, &linear)),
        1e-6,
    );
    assert_close(
        &format!("width {width}: {}", "hidden"),
        &gh,
        &fd(&hidden, &|v| loss(&x1, &x2, v, &linear)),
        1e-6,
    );
    assert_close(
        &format!("width {width}: {}", "linear"),
        &glin,
        &fd(&linear, &|v| loss(&x1, &x2, &hidden, v)),
        1e-6,
    );
}

/// The factorized kernel (the guide's product), the expanded one (a uvu product) and the
/// channels in the lanes (uvu products of 17 to 26 channels), forward, and backward by
/// source.
#[test]
fn fused_is_bit_identical_across_thread_counts() {
    let plans = plans();
    assert!(!plans[0].conv_expands(16) && plans[1].conv_expands(16));
    assert!(!plans[0].conv_channels() && plans[4].conv_channels());
    assert!(!plans[4].conv_channels_backward() && plans[5].conv_channels_backward());
    for tp in [&plans[0], &plans[1], &plans[4], &plans[5]] {
        linear_is_bit_identical_across_thread_counts(tp);
    }
}

fn linear_is_bit_identical_across_thread_counts(tp: &TensorProductPlan) {
    let mut rng = StdRng::seed_from_u64(2);
    let n = 300;
    let src: Vec<usize> = (0..5000).map(|_| rng.random_range(0..n)).collect();
    let dst: Vec<usize> = (0..5000).map(|_| rng.random_range(0..n)).collect();
    let edges = EdgeIndex::new(&src, &dst, n).unwrap();
    let (d1, d2, d_out, numel, width) = (
        tp.irreps_in1().dim(),
        tp.irreps_in2().dim(),
        tp.irreps_out().dim(),
        tp.weight_numel(),
        16,
    );
    let (x1, x2, hidden, linear, g) = (
        to_f32(&randn(&mut rng, n * d1)),
        to_f32(&randn(&mut rng, src.len() * d2)),
        to_f32(&randn(&mut rng, src.len() * width)),
        to_f32(&randn(&mut rng, width * numel)),
        to_f32(&randn(&mut rng, n * d_out)),
    );
    let run = |threads: usize| {
        on_threads(threads, || {
            let w = EdgeWeights::Linear {
                hidden: &hidden,
                linear: &linear,
            };
            let mut out = vec![0.0f32; n * d_out];
            tp.conv_forward(&edges, &x1, &x2, w, 0.2, &mut out).unwrap();
            let (mut g1, mut g2, mut gh, mut glin) = (
                vec![0.0f32; x1.len()],
                vec![0.0f32; x2.len()],
                vec![0.0f32; hidden.len()],
                vec![0.0f32; linear.len()],
            );
            tp.conv_backward(
                &edges,
                &x1,
                &x2,
                w,
                0.2,
                &g,
                ConvGradients {
                    x1: Some(&mut g1),
                    x2: Some(&mut g2),
                    weight: Some(&mut gh),
                    linear: Some(&mut glin),
                },
            )
            .unwrap();
            [out, g1, g2, gh, glin]
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn fused_rejects_bad_shapes() {
    let tp = &plans()[0];
    let edges = EdgeIndex::new(&[0], &[1], 2).unwrap();
    let (x1, x2, w) = (vec![0.0; 80], vec![0.0; 9], vec![0.0; 400]);
    let mut out = vec![0.0; 100];
    assert!(
        tp.conv_forward(
            &edges,
            &x1[..79],
            &x2,
            EdgeWeights::PerEdge(&w),
            1.0,
            &mut out
        )
        .is_err()
    );
    assert!(
        tp.conv_forward(
            &edges,
            &x1,
            &x2[..8],
            EdgeWeights::PerEdge(&w),
            1.0,
            &mut out
        )
        .is_err()
    );
    assert!(
        tp.conv_forward(
            &edges,
            &x1,
            &x2,
            EdgeWeights::PerEdge(&w[..399]),
            1.0,
            &mut out
        )
        .is_err()
    );
    assert!(
        tp.conv_forward(
            &edges,
            &x1,
            &x2,
            EdgeWeights::Linear {
                hidden: &[1.0; 3],
                linear: &w
            },
            1.0,
            &mut out
        )
        .is_err()
    );
    let shared = fully_connected_tensor_product(
        &irreps("0e"),
        &irreps("0e"),
        &irreps("0e"),
        Default::default(),
    )
    .unwrap();
    let mut one = [0.0; 2];
    assert!(
        shared
            .conv_forward(
                &edges,
                &[1.0, 2.0],
                &[1.0],
                EdgeWeights::PerEdge(&[1.0]),
                1.0,
                &mut one
            )
            .is_err()
    );
}

/// The fused forward and `dL/dlinear` with the MLP's hidden activations `hidden` in `T`.
fn linear_forward_and_grad<T: equivariant_core::Real>(
    tp: &TensorProductPlan,
    edges: &EdgeIndex,
    [x1, x2, hidden, linear, g]: [&[f64]; 5],
) -> [Vec<T>; 2] {
    let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
    let (x1, x2, hidden, linear, g) = (cast(x1), cast(x2), cast(hidden), cast(linear), cast(g));
    let w = EdgeWeights::Linear {
        hidden: &hidden,
        linear: &linear,
    };
    let mut out = vec![T::zero(); g.len()];
    tp.conv_forward(edges, &x1, &x2, w, T::one(), &mut out)
        .unwrap();
    let mut glin = vec![T::zero(); linear.len()];
    let grads = ConvGradients {
        x1: None,
        x2: None,
        weight: None,
        linear: Some(&mut glin),
    };
    tp.conv_backward(edges, &x1, &x2, w, T::one(), &g, grads)
        .unwrap();
    [out, glin]
}

/// An edge at the cutoff of a smooth radial basis has hidden activations of ~1e-36: in f32
/// the fused kernels take them as zero (their products would be subnormal, each a slow
/// microcode assist), which moves nothing above f32 rounding; f64 keeps them.
#[test]
fn fused_flushes_vanishing_hidden_activations() {
    let mut rng = StdRng::seed_from_u64(5);
    let (src, dst, n) = graphs(&mut rng).pop().unwrap();
    let edges = EdgeIndex::new(&src, &dst, n).unwrap();
    let width = 6;
    for tp in &plans()[..3] {
        let (d1, d2, d_out, numel) = (
            tp.irreps_in1().dim(),
            tp.irreps_in2().dim(),
            tp.irreps_out().dim(),
            tp.weight_numel(),
        );
        let e = src.len();
        let (x1, x2, mut hidden, linear, g) = (
            randn(&mut rng, n * d1),
            randn(&mut rng, e * d2),
            randn(&mut rng, e * width),
            randn(&mut rng, width * numel),
            randn(&mut rng, n * d_out),
        );
        // Edge 45, the only one into node 0, at the cutoff: tiny, and zero (node 0's
        // output is then ~1e-36 or 0, and `dL/dlinear` has its terms).
        let at = 45 * width..46 * width;
        hidden[at.clone()].iter_mut().for_each(|h| *h *= 1e-36);
        let mut zeroed = hidden.clone();
        zeroed[at].fill(0.0);
        let inputs = |h| [&x1[..], &x2, h, &linear, &g];
        let tiny32 = linear_forward_and_grad::<f32>(tp, &edges, inputs(&hidden));
        let zero32 = linear_forward_and_grad::<f32>(tp, &edges, inputs(&zeroed));
        assert!(
            tiny32 == zero32,
            "{tp}: f32 takes the tiny activations as zero"
        );
        let tiny64 = linear_forward_and_grad::<f64>(tp, &edges, inputs(&hidden));
        let zero64 = linear_forward_and_grad::<f64>(tp, &edges, inputs(&zeroed));
        assert!(tiny64[0] != zero64[0], "{tp}: f64 keeps them");
        for (a, b) in tiny32.iter().zip(&tiny64) {
            let b: Vec<f64> = b.to_vec();
            let a: Vec<f64> = a.iter().map(|&x| x as f64).collect();
            assert_close(&format!("{tp}: f32 against f64"), &a, &b, 1e-4);
        }
    }
}
