//! `kernels`: the instruction sets agree (portable, AVX2 with FMA and AVX-512 where the CPU
//! has them, chosen with `with_instruction_set`), and the blocked product equals the triple
//! loop.

use equivariant_core::Real;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::kernels::{
    InstructionSet, dense, dense_weight_gradient, matmul, matmul_tn, with_instruction_set,
};
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::Irreps;
use equivariant_core::o3::tensor_product::{
    ConnectionMode, ConvGradients, EdgeWeights, Instruction, TensorProductGradients,
    TensorProductOptions, TensorProductPlan, benchmark_config, sorted_uvu_tensor_product,
};

/// Deterministic values in `[-11/7, 11/7]`.
fn value<T: Real>(s: usize) -> T {
    T::from_f64((((s * 7919) % 23) as f64 - 11.0) / 7.0)
}

/// Every element of each `a[i]` within `tol (1 + |x|)` of `b[i]`.
#[track_caller]
fn assert_agree<T: Real>(what: &str, a: &[Vec<T>], b: &[Vec<T>], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (p, d) in a.iter().zip(b) {
        assert_eq!(p.len(), d.len(), "{what}: lengths");
        for (x, y) in p.iter().zip(d) {
            let (x, y) = (Real::to_f64(*x), Real::to_f64(*y));
            assert!((x - y).abs() <= tol * (1.0 + x.abs()), "{what}: {x} vs {y}");
        }
    }
}

#[test]
fn the_limit_is_scoped_and_restored() {
    let detected = InstructionSet::detected();
    assert_eq!(InstructionSet::current(), detected);
    let inner = with_instruction_set(InstructionSet::Portable, || {
        let nested = with_instruction_set(InstructionSet::Avx512, InstructionSet::current);
        (InstructionSet::current(), nested)
    });
    assert_eq!(inner, (InstructionSet::Portable, detected));
    assert_eq!(InstructionSet::current(), detected);
    let after_panic = std::panic::catch_unwind(|| {
        with_instruction_set(InstructionSet::Portable, || panic!("inside"))
    });
    assert!(after_panic.is_err());
    assert_eq!(
        InstructionSet::current(),
        detected,
        "restored after a panic"
    );
}

/// The activations with their derivatives give the same bits on every instruction set (each
/// instance runs the same arithmetic per element), f32 and f64, over a chunk long enough to
/// run in parallel and a short remainder.
#[test]
fn activations_with_derivatives_agree_bitwise_across_instruction_sets() {
    fn on<T: Real>() {
        let x: Vec<T> = (0..70_001)
            .map(|s| value::<T>(s) * T::from_f64(4.0))
            .collect();
        for f in ActivationFunction::ALL {
            let run = |isa| {
                with_instruction_set(isa, || {
                    let (mut y, mut d) = (vec![T::zero(); x.len()], vec![T::zero(); x.len()]);
                    f.forward_with_derivative_slice(T::from_f64(1.7), &x, &mut y, &mut d)
                        .unwrap();
                    (y, d)
                })
            };
            let portable = run(InstructionSet::Portable);
            for isa in [InstructionSet::Avx2Fma, InstructionSet::Avx512] {
                let (y, d) = run(isa);
                let same = |a: &[T], b: &[T]| {
                    a.iter()
                        .zip(b)
                        .all(|(&a, &b)| Real::to_f64(a).to_bits() == Real::to_f64(b).to_bits())
                };
                assert!(same(&y, &portable.0), "{f:?} {isa:?}: values");
                assert!(same(&d, &portable.1), "{f:?} {isa:?}: slopes");
            }
        }
    }
    on::<f32>();
    on::<f64>();
}

fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for l in 0..k {
                c[i * n + j] += a[i * k + l] * b[l * n + j];
            }
        }
    }
    c
}

/// Integers, so every instruction set must give the triple loop's sums exactly, for shapes
/// that leave every kind of partial block.
#[test]
fn matmul_matches_the_triple_loop_for_every_block_shape() {
    let int = |s: usize| ((s * 7919) % 23) as f64 - 11.0;
    for isa in [
        InstructionSet::Portable,
        InstructionSet::Avx2Fma,
        InstructionSet::Avx512,
    ] {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (4, 16, 3),
            (9, 17, 20),
            (70, 16, 56),
            (8, 24, 5),
        ] {
            let a: Vec<f64> = (0..m * k).map(int).collect();
            let b: Vec<f64> = (0..k * n).map(|s| int(s + 3)).collect();
            let expected = naive(m, n, k, &a, &b);
            with_instruction_set(isa, || {
                let mut c = vec![f64::NAN; m * n];
                matmul(&a, &b, &mut c, (m, n, k), false).unwrap();
                assert_eq!(c, expected, "{isa:?} {m}x{n}x{k}");
                let mut c = vec![1.0; m * n];
                matmul(&a, &b, &mut c, (m, n, k), true).unwrap();
                let plus_one: Vec<f64> = expected.iter().map(|x| x + 1.0).collect();
                assert_eq!(c, plus_one, "{isa:?} accumulating {m}x{n}x{k}");
                // f32 takes the intrinsic blocks where the CPU has AVX2.
                let (a32, b32): (Vec<f32>, Vec<f32>) = (
                    a.iter().map(|&x| x as f32).collect(),
                    b.iter().map(|&x| x as f32).collect(),
                );
                let mut c = vec![f32::NAN; m * n];
                matmul(&a32, &b32, &mut c, (m, n, k), false).unwrap();
                let expected: Vec<f32> = expected.iter().map(|&x| x as f32).collect();
                assert_eq!(c, expected, "{isa:?} f32 {m}x{n}x{k}");
            });
        }
    }
    let mut c = [0.0f64; 4];
    assert!(matmul(&[0.0; 3], &[0.0; 4], &mut c, (2, 2, 2), false).is_err());
    assert!(matmul(&[0.0; 4], &[0.0; 4], &mut c[..3], (2, 2, 2), false).is_err());
}

/// `matmul_tn` (the left factor transposed) and the dense layer's products over many rows
/// (`dense`, `dense_weight_gradient`, in parallel over blocks of 1024 rows) give the triple
/// loop's integer sums exactly, for row counts below, at and across the blocks, on one
/// thread and on three (the weight gradient adds its blocks' sums in a fixed order); wrong
/// lengths are errors.
#[test]
fn dense_products_match_the_triple_loop() {
    let int = |s: usize| ((s * 7919) % 23) as f64 - 11.0;
    for (m, n, k) in [(0, 3, 2), (5, 16, 8), (1024, 7, 3), (2500, 16, 8)] {
        let x: Vec<f64> = (0..m * k).map(int).collect();
        let w: Vec<f64> = (0..k * n).map(|s| int(s + 3)).collect();
        let g: Vec<f64> = (0..m * n).map(|s| int(s + 5)).collect();
        let want_y = naive(m, n, k, &x, &w);
        // x^T g, with x^T written out.
        let xt: Vec<f64> = (0..k * m).map(|s| x[(s % m) * k + s / m]).collect();
        let want_gw = naive(k, n, m, &xt, &g);
        for threads in [1, 3] {
            let (y, gw, tn) = crate::support::on_threads(threads, || {
                let (mut y, mut gw, mut tn) = (
                    vec![f64::NAN; m * n],
                    vec![f64::NAN; k * n],
                    vec![f64::NAN; k * n],
                );
                dense(&x, &w, &mut y, (m, n, k)).unwrap();
                dense_weight_gradient(&x, &g, &mut gw, (m, n, k)).unwrap();
                matmul_tn(&x, &g, &mut tn, (k, n, m), false).unwrap();
                (y, gw, tn)
            });
            assert_eq!(y, want_y, "dense {m}x{n}x{k}, {threads} threads");
            assert_eq!(
                gw, want_gw,
                "dense_weight_gradient {m}x{n}x{k}, {threads} threads"
            );
            assert_eq!(tn, want_gw, "matmul_tn {m}x{n}x{k}");
        }
    }
    let mut out = [0.0f64; 4];
    assert!(dense(&[0.0; 3], &[0.0; 4], &mut out, (2, 2, 2)).is_err());
    assert!(dense_weight_gradient(&[0.0; 4], &[0.0; 3], &mut out, (2, 2, 2)).is_err());
    assert!(matmul_tn(&[0.0; 3], &[0.0; 4], &mut out, (2, 2, 2), false).is_err());
}

/// The tensor product's forward and backward on every instruction set: `uvw`
/// configurations, and `uvu` ones whose rows run in lanes (mace-large), by rows
/// (nequip-water) and sixteen components wide (roofline-l5, and a plan of wide paths of
/// several shapes, every row by the row kernels); 19 rows (where the plan runs lanes, two
/// groups of eight and three single rows). The AVX-512 instances (and, for the wide paths
/// in `f32`, the AVX-512 kernels) do the AVX2 ones' arithmetic in the same order, so their
/// results are the same bits: the full result, and each gradient asked for alone.
#[test]
fn tensor_product_agrees_across_instruction_sets() {
    for config in [
        "guide",
        "diffdock-l1",
        "nequip-water",
        "mace-large",
        "roofline-l5",
    ] {
        let tp = benchmark_config(config).unwrap();
        tensor_product_on::<f64>(config, &tp, 1e-12);
        tensor_product_on::<f32>(config, &tp, 1e-5);
    }
    // Wide `uvu` paths (degree 4 to 7 in `x1` or the output): nine channels (a block of eight
    // and one more on AVX-512) and six (none), `x1` of 11 and 9 components, outputs of 11,
    // 13, 3 and 15, paths without weights (of nine channels and of six) and two `x2` blocks
    // on one path.
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let ins = |a, b, c, weighted| Instruction::new(a, b, c, ConnectionMode::Uvu, weighted);
    // Per-row and shared weights.
    for shared_weights in [false, true] {
        let wide = TensorProductPlan::new(
            &i("9x5e+6x4o"),
            &i("2x3e+1x2e"),
            &i("9x5e+6x6o+6x1o+9x7e"),
            vec![
                ins(0, 0, 0, true),
                ins(1, 1, 1, false),
                ins(1, 0, 2, true),
                ins(0, 1, 3, false),
            ],
            TensorProductOptions {
                shared_weights,
                ..Default::default()
            },
        )
        .unwrap();
        tensor_product_on::<f64>("wide uvu", &wide, 1e-12);
        tensor_product_on::<f32>("wide uvu", &wide, 1e-5);
    }
}

fn tensor_product_on<T: Real>(config: &str, tp: &TensorProductPlan, tol: f64) {
    let batch = 19;
    let (d1, d2, d3) = (
        tp.irreps_in1().dim(),
        tp.irreps_in2().dim(),
        tp.irreps_out().dim(),
    );
    let x1: Vec<T> = (0..batch * d1).map(value).collect();
    let x2: Vec<T> = (0..batch * d2).map(|s| value(s + 1)).collect();
    let weights = if tp.shared_weights() { 1 } else { batch };
    let w: Vec<T> = (0..weights * tp.weight_numel())
        .map(|s| value(s + 2))
        .collect();
    let g: Vec<T> = (0..batch * d3).map(|s| value(s + 3)).collect();
    let run = || {
        let mut results = vec![tp.forward_vec(&x1, &x2, &w).unwrap()];
        // The three gradients together, then each alone.
        let wanted = [
            [true; 3],
            [true, false, false],
            [false, true, false],
            [false, false, true],
        ];
        for want in wanted {
            let mut grads = [x1.len(), x2.len(), w.len()].map(|n| vec![T::zero(); n]);
            let [g1, g2, gw] = &mut grads;
            let buffers = TensorProductGradients {
                x1: want[0].then_some(&mut g1[..]),
                x2: want[1].then_some(&mut g2[..]),
                weight: want[2].then_some(&mut gw[..]),
            };
            tp.backward(&x1, &x2, &w, &g, buffers).unwrap();
            results.extend(grads);
        }
        results
    };
    let portable = with_instruction_set(InstructionSet::Portable, run);
    let avx2 = with_instruction_set(InstructionSet::Avx2Fma, run);
    assert_agree(config, &portable, &avx2, tol);
    let avx512 = with_instruction_set(InstructionSet::Avx512, run);
    // Bits, not `==` (which holds between -0 and +0, and fails on NaN).
    let bits = |r: &[Vec<T>]| -> Vec<Vec<u64>> {
        r.iter()
            .map(|v| v.iter().map(|&x| Real::to_f64(x).to_bits()).collect())
            .collect()
    };
    assert!(
        bits(&avx512) == bits(&avx2),
        "{config}: AVX-512 and AVX2 differ"
    );
}

/// The convolution with weights from a linear layer on both instruction sets, f64 and f32
/// (the AVX2 lane type is f32's): the factorized kernels (the guide; a uvu product of 8
/// channels, whose node sums run on the blocked products and `One`-pair kernels in
/// registers), and the channels in the lanes (nequip-water forward and backward,
/// nequip-toluene forward with the factorized backward; 24 and 17 channels, groups of 16, 8
/// and one). Node 3 receives 40 edges, so the edge loops run whole groups of 32 edges and
/// a remainder.
#[test]
fn linear_convolution_agrees_across_instruction_sets() {
    let uvu = |x1: &str, x2: &str, out: &str| {
        sorted_uvu_tensor_product(
            &x1.parse().unwrap(),
            &x2.parse().unwrap(),
            &out.parse().unwrap(),
            false,
        )
        .unwrap()
    };
    let eight = uvu("8x0e+8x0o+8x1o+8x1e+8x2e", "0e+1o+2e", "0e+0o+1o+1e+2e+2o");
    assert!(!eight.conv_expands(5) && !eight.conv_channels());
    let odd = uvu("24x0e+17x1o", "0e+1o", "0e+1o");
    assert!(odd.conv_channels_backward());
    let plans = ["guide", "nequip-water", "nequip-toluene"]
        .map(|c| (c.to_string(), benchmark_config(c).unwrap()))
        .into_iter()
        .chain([
            ("8 channels".into(), eight),
            ("24 and 17 channels".into(), odd),
        ]);
    for (name, tp) in plans {
        linear_convolution_on::<f64>(&name, &tp, 1e-12);
        linear_convolution_on::<f32>(&name, &tp, 1e-4);
    }
}

fn linear_convolution_on<T: Real>(config: &str, tp: &TensorProductPlan, tol: f64) {
    let (n, width) = (7, 5);
    let mut src = vec![0, 1, 2, 3, 4, 5, 6, 0, 0, 3, 5];
    let mut dst = vec![1, 2, 3, 4, 5, 6, 0, 2, 3, 3, 3];
    src.extend((0..36).map(|i| [0, 1, 2, 4, 5, 6][i % 6]));
    dst.extend(std::iter::repeat_n(3, 36));
    let edges = EdgeIndex::new(&src, &dst, n).unwrap();
    let e = src.len();
    let (d1, d2, numel) = (
        tp.irreps_in1().dim(),
        tp.irreps_in2().dim(),
        tp.weight_numel(),
    );
    let x1: Vec<T> = (0..n * d1).map(value).collect();
    let x2: Vec<T> = (0..e * d2).map(|s| value(s + 1)).collect();
    let hidden: Vec<T> = (0..e * width).map(|s| value(s + 2)).collect();
    let linear: Vec<T> = (0..width * numel).map(|s| value(s + 3)).collect();
    let weights = || EdgeWeights::Linear {
        hidden: &hidden,
        linear: &linear,
    };
    let d_out = tp.irreps_out().dim();
    let scale = T::from_f64(0.3);
    let run = || {
        let mut out = vec![T::nan(); n * d_out];
        tp.conv_forward(&edges, &x1, &x2, weights(), scale, &mut out)
            .unwrap();
        let (mut g1, mut g2) = (vec![T::nan(); n * d1], vec![T::nan(); e * d2]);
        let (mut gh, mut gl) = (vec![T::nan(); e * width], vec![T::nan(); width * numel]);
        let grads = ConvGradients {
            x1: Some(&mut g1),
            x2: Some(&mut g2),
            weight: Some(&mut gh),
            linear: Some(&mut gl),
        };
        tp.conv_backward(&edges, &x1, &x2, weights(), scale, &out, grads)
            .unwrap();
        vec![out, g1, g2, gh, gl]
    };
    let portable = with_instruction_set(InstructionSet::Portable, run);
    assert_agree(config, &portable, &run(), tol);
}

/// The o3 linear map's row kernel (`f32` on AVX2: the map and its input gradient block to
/// block) against the tensor-product route it replaces (the portable instruction set), on
/// every row count of a parallel task and past it: `8x0e+8x1o` (NequIP's), two input
/// blocks of one irrep summed into one output block, multiplicities that leave part of a
/// vector (5 and 3 channels of `1o`, 2 of `3o`), degrees 2 and 3 (periods of 5 and 7 lane
/// patterns), and degree 4 (dimension 9: left to the tensor product, so equal to it to the
/// bit). The weight gradient, asked with the input gradient, takes the tensor product
/// too. Also: without biases, one thread against the pool's (the same bits), and wrong
/// lengths as the tensor product's typed errors.
#[test]
fn linear_rows_agree_with_the_tensor_product() {
    use crate::support::on_threads;
    use equivariant_core::o3::LinearPlan;
    let cases = [
        ("8x0e+8x1o", "8x0e+8x1o"),
        ("8x0e+8x1o", "8x0e"),
        ("3x0e+8x1o+5x1o+2x3o", "4x0e+3x1o+6x3o"),
        ("5x1o+7x2e+3x3o+1x0e", "3x1o+4x2e+9x3o+2x0e"),
        ("16x1o+16x0e", "16x0e+16x1o+8x1o"),
        ("3x4e+2x0e", "2x4e+1x0e"),
    ];
    // Each case with biases, and the first two without.
    let plans = (cases.iter().map(|&c| (c, true))).chain(cases[..2].iter().map(|&c| (c, false)));
    for ((a, b), biases) in plans {
        let plan = LinearPlan::new(
            &a.parse().unwrap(),
            &b.parse().unwrap(),
            biases,
            Default::default(),
            true,
        )
        .unwrap();
        let (d_in, d_out) = (plan.irreps_in().dim(), plan.irreps_out().dim());
        let weight: Vec<f32> = (0..plan.weight_numel()).map(|s| value(s + 3)).collect();
        let bias: Vec<f32> = (0..plan.bias_numel()).map(|s| value(s + 5)).collect();
        for rows in [1, 7, 64, 130] {
            let x: Vec<f32> = (0..rows * d_in).map(|s| value(s + 1)).collect();
            let g: Vec<f32> = (0..rows * d_out).map(|s| value(s + 2)).collect();
            let run = |isa| {
                with_instruction_set(isa, || {
                    let mut out = vec![f32::NAN; rows * d_out];
                    plan.forward(&x, &weight, &bias, &mut out).unwrap();
                    let mut gx = vec![f32::NAN; rows * d_in];
                    plan.backward(&x, &weight, &g, Some(&mut gx), None, None)
                        .unwrap();
                    let (mut gx2, mut gw) = (vec![f32::NAN; rows * d_in], vec![0.0; weight.len()]);
                    plan.backward(&x, &weight, &g, Some(&mut gx2), Some(&mut gw), None)
                        .unwrap();
                    vec![out, gx, gx2, gw]
                })
            };
            let what = format!("{a} -> {b}, {rows} rows, biases {biases}");
            let (rows_kernel, tensor_product) = (
                run(InstructionSet::detected()),
                run(InstructionSet::Portable),
            );
            assert_agree(&what, &rows_kernel, &tensor_product, 1e-5);
            let on_one = on_threads(1, || run(InstructionSet::detected()));
            assert_eq!(on_one, rows_kernel, "{what}: one thread and the pool's");
            if a.contains("4e") {
                // Degree 4 by the tensor product on this instruction set too.
                let mut out = vec![f32::NAN; rows * d_out];
                let ones = vec![1.0f32; rows];
                plan.tensor_product()
                    .forward(&x, &ones, &weight, &mut out)
                    .unwrap();
                for row in out.chunks_exact_mut(d_out) {
                    for (&(start, len), b) in plan.bias_blocks().iter().zip(&bias) {
                        assert_eq!(len, 1);
                        row[start] += b;
                    }
                }
                assert_eq!(
                    rows_kernel[0], out,
                    "{what}: degree 4 by the tensor product"
                );
            }
        }
        // Wrong lengths are the tensor product's typed errors on the row kernel's route too.
        let x: Vec<f32> = (0..3 * d_in).map(|s| value(s + 1)).collect();
        let mut out = vec![0.0f32; 3 * d_out];
        let short = |r: Result<(), equivariant_core::Error>| {
            assert!(
                matches!(r, Err(equivariant_core::Error::ShapeMismatch { .. })),
                "{a} -> {b}: {r:?}"
            )
        };
        short(plan.forward(&x[1..], &weight, &bias, &mut out));
        short(plan.forward(&x, &weight[1..], &bias, &mut out));
        short(plan.forward(&x, &weight, &bias, &mut out[1..]));
        let mut gx = vec![0.0f32; 3 * d_in];
        short(plan.backward(&x, &weight, &out[1..], Some(&mut gx), None, None));
        short(plan.backward(&x, &weight, &out, Some(&mut gx[1..]), None, None));
        short(plan.backward(&x[1..], &weight, &out, Some(&mut gx), None, None));
    }
}
