//! The composed fallback ops (`ops::composed`, burn tensor ops for backends without our
//! kernels) against the native Flex ops, which match e3nn 0.6.0 at 1e-10: values and
//! autodiff gradients in f64, every connection mode, harmonics normalizations and radial
//! bases.

use std::sync::Arc;

use burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::math::{Basis, BesselEdgeEncoding, SoftOneHotLinspace};
use equivariant::o3::spherical_harmonics::SphericalHarmonicsPlan;
use equivariant::o3::tensor_product::{
    ConnectionMode, Instruction, IrrepNormalization, PathNormalization, TensorProductOptions,
    TensorProductPlan, fully_connected_tensor_product, tensor_square,
};
use equivariant::o3::{Irreps, Normalization};
use equivariant::ops::{
    bessel_edge_encoding, bessel_edge_encoding_tangent, composed, soft_one_hot_linspace,
    soft_one_hot_linspace_derivative, spherical_harmonics, spherical_harmonics_tangent,
    tensor_product,
};
use equivariant_testing::assert_close;

use super::support::{tracked as tensor, values, wavy};

fn irreps(s: &str) -> Irreps {
    s.parse().unwrap()
}

/// Plans in every connection mode, weighted and not, shared and per-row weights.
fn plans() -> Vec<TensorProductPlan> {
    let mut plans = Vec::new();
    for shared_weights in [true, false] {
        for (irrep_normalization, path_normalization) in [
            (IrrepNormalization::Component, PathNormalization::Element),
            (IrrepNormalization::Norm, PathNormalization::Path),
        ] {
            let options = TensorProductOptions {
                shared_weights,
                irrep_normalization,
                path_normalization,
                ..Default::default()
            };
            plans.push(
                fully_connected_tensor_product(
                    &irreps("2x0e+2x1o+1x2e"),
                    &irreps("0e+1o+2e"),
                    &irreps("3x0e+2x1o+1x1e+2x2e"),
                    options.clone(),
                )
                .unwrap(),
            );
            let ins = |i1, i2, o, mode: ConnectionMode, w| Instruction::new(i1, i2, o, mode, w);
            use ConnectionMode::*;
            plans.push(
                TensorProductPlan::new(
                    &irreps("3x1o+3x2e"),
                    &irreps("3x1o+2x0e"),
                    &irreps("3x0e+3x1e+2x1o+3x2o+6x1o+3x3o+3x1o"),
                    vec![
                        ins(0, 0, 0, Uvu, true),
                        ins(0, 0, 1, Uvu, false),
                        ins(0, 1, 2, Uvv, true),
                        ins(1, 0, 3, Uuu, true),
                        ins(1, 0, 6, Uuw, true),
                        ins(0, 1, 4, Uvuv, true),
                        ins(1, 0, 5, Uuu, false),
                        ins(1, 0, 3, Uuu, true).with_path_weight(0.5),
                    ],
                    options.clone(),
                )
                .unwrap(),
            );
            // u<v modes: the tensor square, with and without weights.
            plans.push(tensor_square(&irreps("3x1o+2x0e"), None, None, options.clone()).unwrap());
            plans.push(
                tensor_square(
                    &irreps("3x1o+2x0e"),
                    Some(&irreps("2x0e+2x1e+1x2e")),
                    None,
                    options,
                )
                .unwrap(),
            );
        }
    }
    plans
}

#[test]
fn composed_tensor_product_matches_native() {
    let device = Device::flex().autodiff();
    let batch = 4;
    for (k, plan) in plans().into_iter().enumerate() {
        let modes: Vec<&str> = plan
            .instructions()
            .iter()
            .map(|i| i.connection_mode.name())
            .collect();
        let plan = Arc::new(plan);
        let rows = if plan.shared_weights() { 1 } else { batch };
        let (d1, d2, d3) = (
            plan.irreps_in1().dim(),
            plan.irreps_in2().dim(),
            plan.irreps_out().dim(),
        );
        let x1 = wavy(batch * d1, 0.1);
        let x2 = wavy(batch * d2, 0.7);
        let w = wavy(rows * plan.weight_numel(), 1.3);
        let g = wavy(batch * d3, 2.1);
        let run = |f: &dyn Fn(Tensor<2>, Tensor<2>, Tensor<2>) -> Tensor<2>| {
            let (t1, t2) = (
                tensor(&x1, [batch, d1], &device),
                tensor(&x2, [batch, d2], &device),
            );
            let tw = tensor(&w, [rows, plan.weight_numel()], &device);
            let out = f(t1.clone(), t2.clone(), tw.clone());
            let grads = out
                .clone()
                .mul(tensor(&g, [batch, d3], &device))
                .sum()
                .backward();
            let grad = |t: Tensor<2>| t.grad(&grads).map(values).unwrap_or_default();
            [values(out), grad(t1), grad(t2), grad(tw)]
        };
        let native = run(&|a, b, w| tensor_product(&plan, a, b, w));
        let fallback = run(&|a, b, w| composed::tensor_product(&plan, a, b, w));
        for (what, (n, f)) in ["out", "grad x1", "grad x2", "grad w"]
            .iter()
            .zip(native.iter().zip(&fallback))
        {
            assert_close(&format!("plan {k} ({modes:?}) {what}"), f, n, 1e-10);
        }
    }
}

#[test]
fn composed_spherical_harmonics_match_native() {
    let device = Device::flex().autodiff();
    let n = 6;
    let v = wavy(n * 3, 0.4);
    let g_for = |dim: usize| wavy(n * dim, 1.9);
    for normalize in [true, false] {
        for normalization in [
            Normalization::Component,
            Normalization::Norm,
            Normalization::Integral,
        ] {
            for ls in [vec![0, 1, 2, 3, 4, 5, 6], vec![3, 1, 1]] {
                let sh = Arc::new(
                    SphericalHarmonicsPlan::from_ls(&ls, normalize, normalization).unwrap(),
                );
                let dim = sh.dim();
                let run = |f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
                    let t = tensor(&v, [n, 3], &device);
                    let out = f(t.clone());
                    let grads = out
                        .clone()
                        .mul(tensor(&g_for(dim), [n, dim], &device))
                        .sum()
                        .backward();
                    [values(out), values(t.grad(&grads).unwrap())]
                };
                let native = run(&|x| spherical_harmonics(&sh, x));
                let fallback = run(&|x| composed::spherical_harmonics(&sh, x));
                let what = format!("harmonics {ls:?} normalize {normalize} {normalization}");
                assert_close(&format!("{what} out"), &fallback[0], &native[0], 1e-10);
                assert_close(&format!("{what} grad"), &fallback[1], &native[1], 1e-9);
            }
        }
    }
}

/// A radial-basis op against its fallback for every basis, cutoff on and off: values to
/// `tol` and the gradient in `x` to `10 tol`.
fn compare_radial_op(
    what: &str,
    native: &dyn Fn(&Arc<SoftOneHotLinspace>, Tensor<1>) -> Tensor<2>,
    fallback: &dyn Fn(&Arc<SoftOneHotLinspace>, Tensor<1>) -> Tensor<2>,
    tol: f64,
) {
    let device = Device::flex().autodiff();
    // Values inside and outside [start, end], none on a center or a support edge (nor at
    // the bessel basis' start, where the native derivative switches to a series).
    let x: Vec<f64> = (0..23).map(|i| -0.37 + 0.113 * i as f64).collect();
    for basis in Basis::ALL {
        for cutoff in [false, true] {
            let b = Arc::new(SoftOneHotLinspace::new(0.1, 2.0, 7, basis, cutoff).unwrap());
            let g = wavy(x.len() * 7, 0.3);
            let run = |f: &dyn Fn(&Arc<SoftOneHotLinspace>, Tensor<1>) -> Tensor<2>| {
                let t = tensor(&x, [x.len()], &device);
                let out = f(&b, t.clone());
                let grads = out
                    .clone()
                    .mul(tensor(&g, [x.len(), 7], &device))
                    .sum()
                    .backward();
                [values(out), values(t.grad(&grads).unwrap())]
            };
            let (native, fallback) = (run(native), run(fallback));
            let what = format!("{what} {basis} cutoff {cutoff}");
            assert_close(&format!("{what} out"), &fallback[0], &native[0], tol);
            assert_close(
                &format!("{what} grad"),
                &fallback[1],
                &native[1],
                10.0 * tol,
            );
        }
    }
}

#[test]
fn composed_radial_bases_match_native() {
    compare_radial_op(
        "basis",
        &|b, t| soft_one_hot_linspace(b, t),
        &|b, t| composed::soft_one_hot_linspace(b, t),
        1e-10,
    );
}

/// NequIP's edge embedding and its tangent: values and gradients in the vectors and the
/// tangents, off the axes, inside and beyond the cutoff and at a zero-length edge.
#[test]
fn composed_bessel_edge_encoding_matches_native() {
    let device = Device::flex().autodiff();
    let n = 12;
    let mut v: Vec<f64> = wavy(3 * n, 0.4).iter().map(|x| 1.6 * x).collect();
    v[3 * (n - 1)..].fill(0.0);
    let t = wavy(3 * n, 2.3);
    for (r_max, k, p) in [(2.6, 8, 6), (1.9, 3, 2)] {
        let plan = Arc::new(BesselEdgeEncoding::new(r_max, k, p).unwrap());
        let g = tensor(&wavy(n * k, 0.9), [n, k], &device);
        let run = |f: &dyn Fn(Tensor<2>, Tensor<2>) -> [Tensor<2>; 2]| {
            let (tv, tt) = (tensor(&v, [n, 3], &device), tensor(&t, [n, 3], &device));
            let [out, tangent] = f(tv.clone(), tt.clone());
            let grads = out
                .clone()
                .add(tangent.clone())
                .mul(g.clone())
                .sum()
                .backward();
            [
                values(out),
                values(tangent),
                values(tv.grad(&grads).unwrap()),
                values(tt.grad(&grads).unwrap()),
            ]
        };
        let native = run(&|v, t| {
            [
                bessel_edge_encoding(&plan, v.clone()),
                bessel_edge_encoding_tangent(&plan, v, t),
            ]
        });
        let fallback = run(&|v, t| {
            [
                composed::bessel_edge_encoding(&plan, v.clone()),
                composed::bessel_edge_encoding_tangent(&plan, v, t),
            ]
        });
        for (i, what) in ["embedding", "tangent", "grad v", "grad t"]
            .iter()
            .enumerate()
        {
            let what = format!("bessel edge encoding r_max {r_max} p {p} {what}");
            assert_close(&what, &fallback[i], &native[i], 1e-10);
        }
        assert!(native[0].contains(&0.0) && native[0].iter().any(|&x| x != 0.0));
    }
}

#[test]
fn composed_harmonics_tangent_matches_native() {
    let device = Device::flex().autodiff();
    let n = 9;
    let (v, s) = (wavy(3 * n, 0.2), wavy(3 * n, 1.9));
    for normalize in [true, false] {
        for ls in [vec![0, 1, 2, 3, 4], vec![3, 1]] {
            let sh = Arc::new(
                SphericalHarmonicsPlan::from_ls(&ls, normalize, Normalization::Norm).unwrap(),
            );
            let dim = sh.dim();
            let run = |f: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2>| {
                let (tv, ts) = (tensor(&v, [n, 3], &device), tensor(&s, [n, 3], &device));
                let out = f(tv.clone(), ts.clone());
                let grads = out
                    .clone()
                    .mul(tensor(&wavy(n * dim, 0.7), [n, dim], &device))
                    .sum()
                    .backward();
                [
                    values(out),
                    values(tv.grad(&grads).unwrap()),
                    values(ts.grad(&grads).unwrap()),
                ]
            };
            let native = run(&|v, s| spherical_harmonics_tangent(&sh, v, s));
            let fallback = run(&|v, s| composed::spherical_harmonics_tangent(&sh, v, s));
            let what = format!("harmonics tangent {ls:?} normalize {normalize}");
            assert_close(&format!("{what} out"), &fallback[0], &native[0], 1e-10);
            assert_close(&format!("{what} grad v"), &fallback[1], &native[1], 1e-9);
            assert_close(&format!("{what} grad s"), &fallback[2], &native[2], 1e-9);
        }
    }
}

/// The radial bases' derivative: values and gradients (the second derivative); and at the
/// bessel basis' start, where the native kernel switches to a series (value 0, second
/// derivative `-w^3 / 3` times the factor).
#[test]
fn composed_radial_basis_derivative_matches_native() {
    compare_radial_op(
        "derivative",
        &|b, t| soft_one_hot_linspace_derivative(b, t),
        &|b, t| composed::soft_one_hot_linspace_derivative(b, t),
        1e-9,
    );
    let device = Device::flex().autodiff();
    let b = Arc::new(SoftOneHotLinspace::new(0.1, 2.0, 4, Basis::Bessel, false).unwrap());
    let run = |f: &dyn Fn(Tensor<1>) -> Tensor<2>| {
        let t = tensor(&[0.1], [1], &device);
        let out = f(t.clone());
        let grads = out.clone().sum().backward();
        [values(out), values(t.grad(&grads).unwrap())]
    };
    let native = run(&|t| soft_one_hot_linspace_derivative(&b, t));
    let fallback = run(&|t| composed::soft_one_hot_linspace_derivative(&b, t));
    assert_close("bessel f'(start)", &fallback[0], &native[0], 1e-12);
    assert_close("bessel f''(start)", &fallback[1], &native[1], 1e-9);
    assert!(
        native[1][0] < 0.0,
        "the curvature is there: {:?}",
        native[1]
    );
}

#[test]
fn composed_convolution_matches_native() {
    use equivariant::graph::EdgeIndex;
    use equivariant::ops::fused_convolution;
    let device = Device::flex().autodiff();
    let options = TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    };
    let plan = Arc::new(
        fully_connected_tensor_product(
            &irreps("3x0e+2x1o"),
            &irreps("0e+1o+2e"),
            &irreps("2x0e+2x1o+1x2e"),
            options,
        )
        .unwrap(),
    );
    // Node 4 receives and sends nothing; node 0 only sends.
    let (src, dst) = (vec![0, 1, 2, 0, 3, 1, 2], vec![1, 2, 1, 3, 2, 3, 3]);
    let edges = Arc::new(EdgeIndex::new(&src, &dst, 5).unwrap());
    let (n, e, h) = (5, src.len(), 4);
    let (d1, d2, d3) = (
        plan.irreps_in1().dim(),
        plan.irreps_in2().dim(),
        plan.irreps_out().dim(),
    );
    let data = [
        (wavy(n * d1, 0.2), [n, d1]),
        (wavy(e * d2, 0.5), [e, d2]),
        (wavy(e * h, 0.9), [e, h]),
        (wavy(h * plan.weight_numel(), 1.4), [h, plan.weight_numel()]),
    ];
    let g = wavy(n * d3, 2.2);
    let run = |f: &dyn Fn([Tensor<2>; 4]) -> Tensor<2>| {
        let inputs = data.clone().map(|(v, shape)| tensor(&v, shape, &device));
        let out = f(inputs.clone());
        let grads = out
            .clone()
            .mul(tensor(&g, [n, d3], &device))
            .sum()
            .backward();
        let mut all = vec![values(out)];
        all.extend(inputs.map(|t| values(t.grad(&grads).unwrap())));
        all
    };
    let native = run(&|[a, b, c, d]| fused_convolution(&plan, &edges, a, b, c, d, 0.3));
    let fallback = run(&|[a, b, c, d]| composed::fused_convolution(&plan, &edges, a, b, c, d, 0.3));
    for (k, (f, n)) in fallback.iter().zip(&native).enumerate() {
        assert_close(&format!("convolution output/gradient {k}"), f, n, 1e-10);
    }
}

/// The fused tangent convolution against its composed fallback (three convolutions), on a
/// product with uvw and uvu paths and a uvu path without weights: `out`, `d_out`, and the
/// gradients of a loss of both with respect to all seven inputs.
#[test]
fn composed_convolution_tangent_matches_native() {
    use equivariant::graph::EdgeIndex;
    use equivariant::o3::tensor_product::{Instruction, TensorProductPlan};
    use equivariant::ops::fused_convolution_tangent;
    let device = Device::flex().autodiff();
    let options = TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    };
    let mode = |m: &str| m.parse().unwrap();
    let plan = Arc::new(
        TensorProductPlan::new(
            &irreps("3x0e+2x1o"),
            &irreps("0e+1o"),
            &irreps("4x0e+2x1o+3x1o"),
            vec![
                Instruction::new(0, 0, 0, mode("uvw"), true),
                Instruction::new(1, 0, 1, mode("uvu"), false),
                Instruction::new(0, 1, 2, mode("uvu"), true),
                Instruction::new(1, 1, 0, mode("uvw"), true),
            ],
            options,
        )
        .unwrap(),
    );
    let (src, dst) = (vec![0, 1, 2, 0, 3, 1, 2], vec![1, 2, 1, 3, 2, 3, 3]);
    let edges = Arc::new(EdgeIndex::new(&src, &dst, 5).unwrap());
    let (n, e, h) = (5, src.len(), 4);
    let (d1, d2, d3) = (
        plan.irreps_in1().dim(),
        plan.irreps_in2().dim(),
        plan.irreps_out().dim(),
    );
    // [x1, dx1, x2, dx2, hidden, dhidden, linear].
    let data = [
        (wavy(n * d1, 0.2), [n, d1]),
        (wavy(n * d1, 0.3), [n, d1]),
        (wavy(e * d2, 0.5), [e, d2]),
        (wavy(e * d2, 0.6), [e, d2]),
        (wavy(e * h, 0.9), [e, h]),
        (wavy(e * h, 1.1), [e, h]),
        (wavy(h * plan.weight_numel(), 1.4), [h, plan.weight_numel()]),
    ];
    let (g, dg) = (wavy(n * d3, 2.2), wavy(n * d3, 2.7));
    let run = |f: &dyn Fn([Tensor<2>; 7]) -> (Tensor<2>, Tensor<2>)| {
        let inputs = data.clone().map(|(v, shape)| tensor(&v, shape, &device));
        let (out, d_out) = f(inputs.clone());
        let loss = out
            .clone()
            .mul(tensor(&g, [n, d3], &device))
            .sum()
            .add(d_out.clone().mul(tensor(&dg, [n, d3], &device)).sum());
        let grads = loss.backward();
        let mut all = vec![values(out), values(d_out)];
        all.extend(inputs.map(|t| values(t.grad(&grads).unwrap())));
        all
    };
    let (plan, edges) = (&plan, &edges);
    let call = |composed: bool| {
        move |[x1, dx1, x2, dx2, hd, dhd, l]: [Tensor<2>; 7]| {
            let (a, b, c) = ((x1, Some(dx1)), (x2, Some(dx2)), (hd, Some(dhd)));
            if composed {
                composed::fused_convolution_tangent(plan, edges, a, b, c, l, 0.3)
            } else {
                fused_convolution_tangent(plan, edges, a, b, c, l, 0.3)
            }
        }
    };
    let native = run(&call(false));
    let fallback = run(&call(true));
    let names = [
        "out", "d_out", "x1", "dx1", "x2", "dx2", "hidden", "dhidden", "linear",
    ];
    for ((f, n), name) in fallback.iter().zip(&native).zip(names) {
        assert_close(&format!("tangent convolution {name}"), f, n, 1e-10);
    }
}

#[test]
fn composed_radial_layer_matches_native() {
    use equivariant::math::{ActivationFunction, RadialLayer};
    use equivariant::ops::radial_layer;
    let device = Device::flex().autodiff();
    let (e, nb, width) = (37, 10, 6);
    // Lengths across the whole basis, none zero.
    let v: Vec<f64> = (0..e)
        .flat_map(|i| {
            let (t, r) = (i as f64 * 0.7, 0.05 + 0.05 * i as f64);
            [r * t.cos() * 0.6, r * t.sin() * 0.6, r * 0.8]
        })
        .collect();
    let w = wavy(nb * width, 0.4);
    let g = wavy(e * width, 1.1);
    for (basis, act) in [
        (Basis::SmoothFinite, Some(ActivationFunction::Relu)),
        (Basis::Gaussian, Some(ActivationFunction::Silu)),
        (Basis::Bessel, None),
    ] {
        let b = SoftOneHotLinspace::new(0.0, 1.8, nb, basis, true).unwrap();
        let act = act.map(|a| (a, a.normalize2mom_constant()));
        let layer = Arc::new(RadialLayer::new(b, (nb as f64).sqrt(), 0.3, act));
        let run = |f: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2>| {
            let (tv, tw) = (
                tensor(&v, [e, 3], &device),
                tensor(&w, [nb, width], &device),
            );
            let out = f(tv.clone(), tw.clone());
            let grads = out
                .clone()
                .mul(tensor(&g, [e, width], &device))
                .sum()
                .backward();
            [
                values(out),
                values(tv.grad(&grads).unwrap()),
                values(tw.grad(&grads).unwrap()),
            ]
        };
        let native = run(&|v, w| radial_layer(&layer, v, w));
        let fallback = run(&|v, w| composed::radial_layer(&layer, v, w));
        for (k, (f, n)) in fallback.iter().zip(&native).enumerate() {
            assert_close(
                &format!("{basis} radial layer output/gradient {k}"),
                f,
                n,
                1e-10,
            );
        }
    }
}

#[test]
fn composed_edge_vectors_match_native() {
    use equivariant::graph::EdgeIndex;
    use equivariant::ops::edge_vectors;
    let device = Device::flex().autodiff();
    // Node 4 has no edges; node 0 only sends.
    let (src, dst) = (vec![0, 1, 2, 0, 3, 1, 2], vec![1, 2, 1, 3, 2, 3, 3]);
    let edges = Arc::new(EdgeIndex::new(&src, &dst, 5).unwrap());
    let (pos, g) = (wavy(15, 0.2), wavy(src.len() * 3, 0.7));
    let run = |f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
        let p = tensor(&pos, [5, 3], &device);
        let out = f(p.clone());
        let grads = out
            .clone()
            .mul(tensor(&g, [src.len(), 3], &device))
            .sum()
            .backward();
        [values(out), values(p.grad(&grads).unwrap())]
    };
    let native = run(&|p| edge_vectors(&edges, p));
    let fallback = run(&|p| composed::edge_vectors(&edges, p));
    for (k, (f, n)) in fallback.iter().zip(&native).enumerate() {
        assert_close(&format!("edge vectors output/gradient {k}"), f, n, 1e-12);
    }
    // The adjoint on its own is the gradient above.
    let grad = tensor(&g, [src.len(), 3], &device).without_autodiff();
    let adjoint = values(equivariant::ops::edge_vectors::edge_vectors_backward(
        &edges,
        grad.clone(),
    ));
    assert_close("edge vectors adjoint", &adjoint, &native[1], 1e-12);
    let composed_adjoint = values(composed::edge_vectors_backward(&edges, grad));
    assert_close("composed adjoint", &composed_adjoint, &native[1], 1e-12);
}

/// `ops::soft_unit_step` (composed only) against the core's `soft_unit_step` and its
/// derivative (which match e3nn), on a `[2, 3, 4]` tensor: values and gradient, finite at
/// tiny positive inputs where `exp(-1/x) / x^2` is `0 * inf`.
#[test]
fn soft_unit_step_op_matches_core() {
    use equivariant::math::{soft_unit_step as step, soft_unit_step_derivative};
    use equivariant::ops::soft_unit_step;
    let device = Device::flex().autodiff();
    let mut x: Vec<f64> = (0..20).map(|i| -1.3 + 0.31 * i as f64).collect();
    x.extend([0.0, -0.0, 1e-200, 1e-310]);
    // In f32, x^-2 overflows below ~1e-19: the gradient stays finite there too.
    let small = Tensor::<1>::from_data(TensorData::new(vec![1e-20f32, 1e-4, 0.3], [3]), &device)
        .require_grad();
    let grads = soft_unit_step(small.clone()).sum().backward();
    let g: Vec<f32> = small
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_into_vec()
        .unwrap();
    assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    let t = Tensor::<3>::from_data(TensorData::new(x.clone(), [2, 3, 4]), (&device, DType::F64))
        .require_grad();
    let u = soft_unit_step(t.clone());
    let expected: Vec<f64> = x.iter().map(|&v| step(v)).collect();
    assert_close("soft_unit_step", &values(u.clone()), &expected, 1e-15);
    let grads = u.sum().backward();
    let slope: Vec<f64> = x.iter().map(|&v| soft_unit_step_derivative(v)).collect();
    assert_close(
        "soft_unit_step'",
        &values(t.grad(&grads).unwrap()),
        &slope,
        1e-14,
    );
}

/// The native normalized activation (the vectorized core kernel) against burn's
/// activations: values and gradients, every built-in, f64 at 1e-12 and f32 at 2e-6
/// relative (f32 silu and sigmoid take a polynomial `exp`), including large arguments; and
/// the native gradient against a central difference of the native values in f64.
#[test]
fn composed_normalized_activation_matches_native() {
    use equivariant::math::ActivationFunction;
    use equivariant::ops::normalized_activation;
    let device = Device::flex().autodiff();
    let n = 64;
    // Arguments across [-12, 12], the ends of the exponential (-100, 95) and 0.
    let mut x: Vec<f64> = wavy(n, 0.3).iter().map(|v| v * 10.0).collect();
    x.extend([-100.0, 95.0, 0.0]);
    let g = wavy(x.len(), 1.7);
    let len = x.len();
    for f in ActivationFunction::ALL {
        let c = f.normalize2mom_constant();
        for dtype in [DType::F64, DType::F32] {
            let run = |op: &dyn Fn(Tensor<1>) -> Tensor<1>| {
                let cast = |v: &[f64]| {
                    Tensor::<1>::from_data(TensorData::new(v.to_vec(), [len]), (&device, dtype))
                };
                let tx = cast(&x).require_grad();
                let out = op(tx.clone());
                let grads = out.clone().mul(cast(&g)).sum().backward();
                let f64s = |t: Tensor<1>| -> Vec<f64> {
                    t.cast(DType::F64).into_data().iter::<f64>().collect()
                };
                [f64s(out), f64s(tx.grad(&grads).unwrap())]
            };
            let native = run(&|x| normalized_activation(f, c, x));
            let fallback = run(&|x| composed::normalized_activation(f, c, x));
            for (k, (nv, fv)) in native.iter().zip(&fallback).enumerate() {
                let what = format!("{f} {dtype:?} output/gradient {k}");
                if dtype == DType::F64 {
                    assert_close(&what, nv, fv, 1e-12);
                } else {
                    for (i, (a, b)) in nv.iter().zip(fv).enumerate() {
                        let tol = 2e-6 * b.abs().max(1.0);
                        assert!((a - b).abs() <= tol, "{what} at {i}: {a} against {b}");
                    }
                }
            }
            if dtype == DType::F64 {
                let h = 1e-6;
                let at = |d: f64| {
                    let shifted: Vec<f64> = x.iter().map(|v| v + d).collect();
                    let t =
                        Tensor::<1>::from_data(TensorData::new(shifted, [len]), (&device, dtype));
                    values(normalized_activation(f, c, t))
                };
                let (up, down) = (at(h), at(-h));
                for i in 0..len {
                    // Skip the kinks of relu and abs (their derivative is 0 there).
                    if x[i] == 0.0 {
                        continue;
                    }
                    let fd = (up[i] - down[i]) / (2.0 * h) * g[i];
                    let tol = 1e-7 * fd.abs().max(1.0);
                    assert!((native[1][i] - fd).abs() <= tol, "{f}: d/dx at {}", x[i]);
                }
            }
        }
    }
}

/// The native dense product (`x w` on the core's kernels, its backward `g w^T` and `x^T g`)
/// against burn's `matmul`: the output and the gradients of `sum(y g)` for `x` and `w`, f64
/// at 1e-12 and f32 at 1e-5 relative, for `[2500, 8] x [8, 16]` (three blocks of rows) and
/// `[3, 4] x [4, 2]`, and for `x` alone tracked; the native gradients against central
/// differences in f64.
#[test]
fn composed_dense_matches_native() {
    use super::support::check_gradient;
    use equivariant::ops::dense;
    let device = Device::flex().autodiff();
    for (m, k, n) in [(2500, 8, 16), (3, 4, 2)] {
        let (x, w, g) = (wavy(m * k, 0.2), wavy(k * n, 1.1), wavy(m * n, 2.3));
        for dtype in [DType::F64, DType::F32] {
            for w_tracked in [true, false] {
                let run = |op: &dyn Fn(Tensor<2>, Tensor<2>) -> Tensor<2>| {
                    let cast = |v: &[f64], shape: [usize; 2]| {
                        Tensor::<2>::from_data(TensorData::new(v.to_vec(), shape), (&device, dtype))
                    };
                    let tx = cast(&x, [m, k]).require_grad();
                    let tw = cast(&w, [k, n]);
                    let tw = if w_tracked { tw.require_grad() } else { tw };
                    let y = op(tx.clone(), tw.clone());
                    let grads = y.clone().mul(cast(&g, [m, n])).sum().backward();
                    let f64s = |t: Tensor<2>| -> Vec<f64> {
                        t.cast(DType::F64).into_data().iter::<f64>().collect()
                    };
                    let gw = tw.grad(&grads).map(f64s);
                    (f64s(y), f64s(tx.grad(&grads).unwrap()), gw)
                };
                let native = run(&|x, w| dense(x, w));
                let fallback = run(&|x, w| composed::dense(x, w));
                assert_eq!(native.2.is_some(), w_tracked);
                assert_eq!(fallback.2.is_some(), w_tracked);
                let pairs = [
                    ("y", native.0, fallback.0),
                    ("dx", native.1, fallback.1),
                    (
                        "dw",
                        native.2.unwrap_or_default(),
                        fallback.2.unwrap_or_default(),
                    ),
                ];
                for (what, a, b) in pairs {
                    let what = format!("{m}x{k}x{n} {dtype:?} {what}");
                    if dtype == DType::F64 {
                        assert_close(&what, &a, &b, 1e-12);
                    } else {
                        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                            let tol = 1e-5 * b.abs().max(1.0);
                            assert!((a - b).abs() <= tol, "{what} at {i}: {a} against {b}");
                        }
                    }
                }
            }
        }
    }
    let w = wavy(4 * 3, 0.9);
    check_gradient(
        "dense: dx",
        |x| dense(x, super::support::tensor(&w, [4, 3], &device)),
        &wavy(20, 0.4),
        [5, 4],
        1e-8,
    );
    let x = wavy(20, 0.4);
    check_gradient(
        "dense: dw",
        |w| dense(super::support::tensor(&x, [5, 4], &device), w),
        &w,
        [4, 3],
        1e-8,
    );
}

/// The native tangent of a normalized activation (`c f(x)` and `c f'(x) dx` in one kernel,
/// its backward through `f''`) against the composed one (burn's activations and
/// derivatives): both outputs and the gradients of `sum(y g) + sum(dy dg)` for `x` and `dx`,
/// every built-in, f64 at 1e-12 and f32 at 4e-6 relative; `[300, 67]` (past one parallel
/// chunk of the kernel) and `[3, 5]`.
#[test]
fn composed_normalized_activation_tangent_matches_native() {
    use equivariant::math::ActivationFunction;
    use equivariant::ops::normalized_activation_tangent;
    let device = Device::flex().autodiff();
    for [rows, cols] in [[300, 67], [3, 5]] {
        let len = rows * cols;
        let x: Vec<f64> = wavy(len, 0.3).iter().map(|v| v * 8.0).collect();
        let (dx, g, dg) = (wavy(len, 1.1), wavy(len, 1.7), wavy(len, 2.9));
        for f in ActivationFunction::ALL {
            let c = f.normalize2mom_constant();
            for dtype in [DType::F64, DType::F32] {
                type Tangent = dyn Fn(Tensor<2>, Tensor<2>) -> (Tensor<2>, Tensor<2>);
                let run = |op: &Tangent| {
                    let cast = |v: &[f64]| {
                        Tensor::<2>::from_data(
                            TensorData::new(v.to_vec(), [rows, cols]),
                            (&device, dtype),
                        )
                    };
                    let (tx, tdx) = (cast(&x).require_grad(), cast(&dx).require_grad());
                    let (y, dy) = op(tx.clone(), tdx.clone());
                    let loss = y
                        .clone()
                        .mul(cast(&g))
                        .sum()
                        .add(dy.clone().mul(cast(&dg)).sum());
                    let grads = loss.backward();
                    let f64s = |t: Tensor<2>| -> Vec<f64> {
                        t.cast(DType::F64).into_data().iter::<f64>().collect()
                    };
                    [
                        f64s(y),
                        f64s(dy),
                        f64s(tx.grad(&grads).unwrap()),
                        f64s(tdx.grad(&grads).unwrap()),
                    ]
                };
                let native = run(&move |x, dx| normalized_activation_tangent(f, c, x, dx));
                let fallback =
                    run(&move |x, dx| composed::normalized_activation_tangent(f, c, x, dx));
                for (k, (nv, fv)) in native.iter().zip(&fallback).enumerate() {
                    let what = format!("{f} {dtype:?} [{rows}, {cols}] output/gradient {k}");
                    let rel = if dtype == DType::F64 { 1e-12 } else { 4e-6 };
                    for (i, (a, b)) in nv.iter().zip(fv).enumerate() {
                        let tol = rel * b.abs().max(1.0);
                        assert!((a - b).abs() <= tol, "{what} at {i}: {a} against {b}");
                    }
                }
            }
        }
    }
}
