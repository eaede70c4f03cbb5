//! Tensor products: e3nn 0.6.0 fixtures (`tests/fixtures/tensor_product.json`),
//! equivariance, gradients against finite differences, determinism and bad input.

use crate::support::{on_threads, randn};
use equivariant_core::Error;
use equivariant_core::o3::tensor_product::{
    ConnectionMode, Instruction, PathNormalization, TensorProductGradients, TensorProductOptions,
    TensorProductPlan, elementwise_tensor_product, full_tensor_product,
    fully_connected_tensor_product,
};
use equivariant_core::o3::{Irreps, rand_matrix};
use rand::{Rng, SeedableRng};

/// One tensor product per connection mode, on irreps with several multiplicities.
fn every_mode(shared_weights: bool) -> Vec<TensorProductPlan> {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let options = || TensorProductOptions {
        shared_weights,
        ..Default::default()
    };
    let ins = |a, b, c, mode: &str, w| {
        Instruction::new(a, b, c, mode.parse::<ConnectionMode>().unwrap(), w)
    };
    vec![
        fully_connected_tensor_product(
            &i("2x0e+3x1o+1x2e"),
            &i("0e+1o+2e"),
            &i("2x0e+2x1o+2x1e+1x2e+1x3o"),
            options(),
        )
        .unwrap(),
        // Wide enough for every output block width of the lane kernels' uvw forward, with
        // remainders, `v` loops and a run-time irrep size (4e).
        fully_connected_tensor_product(
            &i("5x0e+3x1o+2x2e+1x4e"),
            &i("2x0e+1x1o"),
            &i("37x0e+21x1o+11x2e+3x4e"),
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("3x1o+2x2e"),
            &i("2x1o+1x2e"),
            &i("3x0e+3x1e+3x2o+2x2e"),
            vec![
                ins(0, 0, 0, "uvu", true),
                ins(0, 0, 1, "uvu", false),
                ins(0, 1, 2, "uvu", true),
                ins(1, 1, 3, "uvu", true),
            ],
            options(),
        )
        .unwrap(),
        // uvu of run-time sizes, every path at most sixteen components wide (forward and
        // backward by rows): channels not a multiple of four, a path without weights, and
        // two `v` on one path.
        TensorProductPlan::new(
            &i("9x5e+6x4o"),
            &i("2x3e+1x2e"),
            &i("9x5e+6x6o+6x1o+9x7e"),
            vec![
                ins(0, 0, 0, "uvu", true),
                ins(1, 1, 1, "uvu", false),
                ins(1, 0, 2, "uvu", true),
                ins(0, 1, 3, "uvu", true),
            ],
            options(),
        )
        .unwrap(),
        // Wide uvu paths beside a small one and one over sixteen components (9e): the rows
        // run in the lanes, the last ones by the row kernels.
        TensorProductPlan::new(
            &i("3x1o+5x5e"),
            &i("1x2e+1x4e"),
            &i("3x1o+5x5e+5x7e+5x9e"),
            vec![
                ins(0, 0, 0, "uvu", true),
                ins(1, 0, 1, "uvu", true),
                ins(1, 0, 2, "uvu", false),
                ins(1, 1, 3, "uvu", true),
            ],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("3x1o+2x2e"),
            &i("2x1o+1x2e"),
            &i("2x0e+2x1e+1x2e"),
            vec![
                ins(0, 0, 0, "uvv", true),
                ins(0, 0, 1, "uvv", false),
                ins(1, 1, 2, "uvv", true),
            ],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("3x1o+2x2e"),
            &i("3x1o+2x3o"),
            &i("4x0e+1x2e+2x1o"),
            vec![
                ins(0, 0, 0, "uuw", true),
                ins(0, 0, 1, "uuw", false),
                ins(1, 1, 2, "uuw", true),
            ],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("3x1o+2x2e"),
            &i("3x1o+2x2e"),
            &i("3x1e+2x4e+2x0e"),
            vec![
                ins(0, 0, 0, "uuu", true),
                ins(1, 1, 1, "uuu", false),
                ins(1, 1, 2, "uuu", true),
            ],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("3x1o+2x2e"),
            &i("2x1o"),
            &i("6x2e+4x1o"),
            vec![ins(0, 0, 0, "uvuv", true), ins(1, 0, 1, "uvuv", false)],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("4x1o"),
            &i("4x1o"),
            &i("6x1e+6x0e"),
            vec![ins(0, 0, 0, "uvu<v", true), ins(0, 0, 1, "uvu<v", false)],
            options(),
        )
        .unwrap(),
        TensorProductPlan::new(
            &i("4x1o"),
            &i("4x1o"),
            &i("3x1e+2x2e"),
            vec![ins(0, 0, 0, "u<vw", true), ins(0, 0, 1, "u<vw", true)],
            options(),
        )
        .unwrap(),
    ]
}

fn weights(tp: &TensorProductPlan, batch: usize, rng: &mut impl Rng) -> Vec<f64> {
    randn(
        rng,
        if tp.shared_weights() {
            tp.weight_numel()
        } else {
            batch * tp.weight_numel()
        },
    )
}

fn forward(tp: &TensorProductPlan, x1: &[f64], x2: &[f64], w: &[f64], batch: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * tp.irreps_out().dim()];
    tp.forward(x1, x2, w, &mut out).unwrap();
    out
}

pub(crate) fn apply(d: &[f64], x: &[f64], dim: usize) -> Vec<f64> {
    x.chunks(dim)
        .flat_map(|row| {
            (0..dim).map(move |i| (0..dim).map(|j| d[i * dim + j] * row[j]).sum::<f64>())
        })
        .collect()
}

#[test]
fn equivariant_under_rotations_and_parity() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    for shared in [true, false] {
        for tp in every_mode(shared) {
            // One group of eight lanes and three single rows.
            let batch = 11;
            let (d1, d2, d3) = (
                tp.irreps_in1().dim(),
                tp.irreps_in2().dim(),
                tp.irreps_out().dim(),
            );
            let (x1, x2, w) = (
                randn(&mut rng, batch * d1),
                randn(&mut rng, batch * d2),
                weights(&tp, batch, &mut rng),
            );
            for det in [1.0, -1.0] {
                let r = rand_matrix(&mut rng).map(|row| row.map(|x| det * x));
                let rotate = |irreps: &Irreps, x: &[f64]| {
                    apply(&irreps.d_from_matrix(&r).unwrap(), x, irreps.dim())
                };
                let before = forward(
                    &tp,
                    &rotate(tp.irreps_in1(), &x1),
                    &rotate(tp.irreps_in2(), &x2),
                    &w,
                    batch,
                );
                let after = rotate(tp.irreps_out(), &forward(&tp, &x1, &x2, &w, batch));
                equivariant_testing::assert_close(
                    &format!("{tp} det {det}"),
                    &before,
                    &after,
                    1e-10,
                );
                let _ = d3;
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for shared in [true, false] {
        for tp in every_mode(shared) {
            let batch = 2;
            let (d1, d2, d3) = (
                tp.irreps_in1().dim(),
                tp.irreps_in2().dim(),
                tp.irreps_out().dim(),
            );
            let (x1, x2, w) = (
                randn(&mut rng, batch * d1),
                randn(&mut rng, batch * d2),
                weights(&tp, batch, &mut rng),
            );
            let g = randn(&mut rng, batch * d3);
            let (mut g1, mut g2, mut gw) =
                (vec![0.0; x1.len()], vec![0.0; x2.len()], vec![0.0; w.len()]);
            tp.backward(
                &x1,
                &x2,
                &w,
                &g,
                TensorProductGradients {
                    x1: Some(&mut g1),
                    x2: Some(&mut g2),
                    weight: Some(&mut gw),
                },
            )
            .unwrap();
            let loss = |x1: &[f64], x2: &[f64], w: &[f64]| -> f64 {
                forward(&tp, x1, x2, w, batch)
                    .iter()
                    .zip(&g)
                    .map(|(a, b)| a * b)
                    .sum()
            };
            let h = 1e-6;
            let fd = |which: usize, n: usize| -> f64 {
                let (mut a, mut b, mut c) = (x1.clone(), x2.clone(), w.clone());
                let (mut a2, mut b2, mut c2) = (x1.clone(), x2.clone(), w.clone());
                match which {
                    0 => {
                        a[n] += h;
                        a2[n] -= h;
                    }
                    1 => {
                        b[n] += h;
                        b2[n] -= h;
                    }
                    _ => {
                        c[n] += h;
                        c2[n] -= h;
                    }
                }
                (loss(&a, &b, &c) - loss(&a2, &b2, &c2)) / (2.0 * h)
            };
            for (which, analytic) in [(0, &g1), (1, &g2), (2, &gw)] {
                let numeric: Vec<f64> = (0..analytic.len()).map(|n| fd(which, n)).collect();
                equivariant_testing::assert_close(
                    &format!("{tp} gradient {which}"),
                    analytic,
                    &numeric,
                    1e-6,
                );
            }
        }
    }
}

/// Rows run in groups of eight lanes (a batch of 19: two groups, three single rows) give
/// what each row gives alone (a batch of 1 runs the row kernel), every mode, both kinds of
/// weights, outputs and each gradient.
#[test]
fn lane_groups_agree_with_single_rows() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for shared in [true, false] {
        for tp in every_mode(shared) {
            let batch = 19;
            let (d1, d2, d3, numel) = (
                tp.irreps_in1().dim(),
                tp.irreps_in2().dim(),
                tp.irreps_out().dim(),
                tp.weight_numel(),
            );
            let (x1, x2, w) = (
                randn(&mut rng, batch * d1),
                randn(&mut rng, batch * d2),
                weights(&tp, batch, &mut rng),
            );
            let g = randn(&mut rng, batch * d3);
            let all = |x1: &[f64], x2: &[f64], w: &[f64], g: &[f64], n: usize| {
                let out = forward(&tp, x1, x2, w, n);
                let (mut g1, mut g2, mut gw) =
                    (vec![0.0; x1.len()], vec![0.0; x2.len()], vec![0.0; w.len()]);
                tp.backward(
                    x1,
                    x2,
                    w,
                    g,
                    TensorProductGradients {
                        x1: Some(&mut g1),
                        x2: Some(&mut g2),
                        weight: Some(&mut gw),
                    },
                )
                .unwrap();
                [out, g1, g2, gw]
            };
            let grouped = all(&x1, &x2, &w, &g, batch);
            let mut single: [Vec<f64>; 4] = Default::default();
            if shared {
                single[3] = vec![0.0; numel];
            }
            for z in 0..batch {
                let wz = if shared {
                    &w[..]
                } else {
                    &w[z * numel..(z + 1) * numel]
                };
                let [out, g1, g2, gw] = all(
                    &x1[z * d1..(z + 1) * d1],
                    &x2[z * d2..(z + 1) * d2],
                    wz,
                    &g[z * d3..(z + 1) * d3],
                    1,
                );
                single[0].extend(out);
                single[1].extend(g1);
                single[2].extend(g2);
                if shared {
                    single[3].iter_mut().zip(gw).for_each(|(a, b)| *a += b);
                } else {
                    single[3].extend(gw);
                }
            }
            for (what, (a, b)) in ["out", "grad x1", "grad x2", "grad weight"]
                .iter()
                .zip(grouped.iter().zip(&single))
            {
                equivariant_testing::assert_close(
                    &format!("{tp} {what} (shared {shared})"),
                    a,
                    b,
                    1e-12,
                );
            }
        }
    }
}

#[test]
fn deterministic_across_thread_counts() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let tp = &every_mode(true)[0];
    let batch = 333;
    let (x1, x2, w) = (
        randn(&mut rng, batch * tp.irreps_in1().dim()),
        randn(&mut rng, batch * tp.irreps_in2().dim()),
        weights(tp, batch, &mut rng),
    );
    let g = randn(&mut rng, batch * tp.irreps_out().dim());
    let run = |threads: usize| {
        on_threads(threads, || {
            let out = forward(tp, &x1, &x2, &w, batch);
            let mut gw = vec![0.0; w.len()];
            tp.backward(
                &x1,
                &x2,
                &w,
                &g,
                TensorProductGradients {
                    x1: None,
                    x2: None,
                    weight: Some(&mut gw),
                },
            )
            .unwrap();
            (out, gw)
        })
    };
    let (a, b) = (run(1), run(2));
    assert!(
        a.0.iter()
            .zip(&b.0)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
    assert!(
        a.1.iter()
            .zip(&b.1)
            .all(|(x, y)| x.to_bits() == y.to_bits())
    );
}

#[test]
fn bad_input_is_a_typed_error() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let ins = |a, b, c, m: ConnectionMode, w| vec![Instruction::new(a, b, c, m, w)];
    let new = |a: &str, b: &str, c: &str, instructions| {
        TensorProductPlan::new(&i(a), &i(b), &i(c), instructions, Default::default())
    };
    // Index past the end, parity, triangle rule, multiplicities, missing weights.
    assert!(matches!(
        new("1o", "1o", "0e", ins(1, 0, 0, ConnectionMode::Uuu, false)),
        Err(Error::InvalidInstruction { index: 0, .. })
    ));
    assert!(matches!(
        new("1o", "1o", "0o", ins(0, 0, 0, ConnectionMode::Uuu, false)),
        Err(Error::InvalidInstruction { .. })
    ));
    assert!(matches!(
        new("1o", "1o", "3e", ins(0, 0, 0, ConnectionMode::Uuu, false)),
        Err(Error::InvalidInstruction { .. })
    ));
    assert!(matches!(
        new(
            "2x1o",
            "1o",
            "3x0e",
            ins(0, 0, 0, ConnectionMode::Uvu, true)
        ),
        Err(Error::InvalidInstruction { .. })
    ));
    assert!(matches!(
        new("1o", "1o", "0e", ins(0, 0, 0, ConnectionMode::Uvw, false)),
        Err(Error::InvalidInstruction { .. })
    ));
    let tp = new("1o", "1o", "0e", ins(0, 0, 0, ConnectionMode::Uvw, true)).unwrap();
    let mut out = vec![0.0; 2];
    assert!(matches!(
        tp.forward(&[0.0; 6], &[0.0; 3], &[1.0], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        tp.forward(&[0.0; 6], &[0.0; 6], &[1.0, 2.0], &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(elementwise_tensor_product(&i("2x0e"), &i("3x0e"), None, Default::default()).is_err());
    // Empty batch is fine.
    tp.forward::<f64>(&[], &[], &[1.0], &mut []).unwrap();
    let _ = full_tensor_product(&i("0e"), &i("0e"), None, Default::default()).unwrap();
}

mod fixtures {
    use equivariant_core::o3::tensor_product::{
        ConnectionMode, Instruction, TensorProductGradients, TensorProductOptions,
        TensorProductPlan, elementwise_tensor_product, full_tensor_product,
        fully_connected_tensor_product, tensor_square,
    };
    use equivariant_core::o3::{Irreps, LinearPlan};
    use equivariant_testing::{assert_close, f64s, load_fixture};
    use serde_json::Value;

    fn irreps(v: &Value) -> Irreps {
        v.as_str()
            .expect("irreps string")
            .parse()
            .expect("valid irreps")
    }

    fn opt_irreps(v: &Value) -> Option<Irreps> {
        match v {
            Value::Null => None,
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join("+")
                    .parse()
                    .unwrap(),
            ),
            other => Some(irreps(other)),
        }
    }

    fn vars(v: &Value) -> Option<Vec<f64>> {
        (!v.is_null()).then(|| f64s(v))
    }

    fn options(args: &Value, shared: bool) -> TensorProductOptions {
        let s = |k: &str, d: &str| args.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        TensorProductOptions {
            in1_var: args.get("in1_var").and_then(vars),
            in2_var: args.get("in2_var").and_then(vars),
            out_var: args.get("out_var").and_then(vars),
            irrep_normalization: s("irrep_normalization", "component").parse().unwrap(),
            path_normalization: s("path_normalization", "element").parse().unwrap(),
            shared_weights: shared,
        }
    }

    fn build(case: &Value) -> TensorProductPlan {
        let args = &case["args"];
        let shared = case["shared_weights"].as_bool().unwrap();
        let options = options(args, shared);
        match case["kind"].as_str().unwrap() {
            "TensorProduct" => {
                let instructions = args["instructions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        let n = |k: usize| i[k].as_u64().unwrap() as usize;
                        Instruction::new(
                            n(0),
                            n(1),
                            n(2),
                            i[3].as_str().unwrap().parse::<ConnectionMode>().unwrap(),
                            i[4].as_bool().unwrap(),
                        )
                        .with_path_weight(i[5].as_f64().unwrap())
                    })
                    .collect();
                TensorProductPlan::new(
                    &irreps(&args["irreps_in1"]),
                    &irreps(&args["irreps_in2"]),
                    &irreps(&args["irreps_out"]),
                    instructions,
                    options,
                )
            }
            "FullyConnectedTensorProduct" => fully_connected_tensor_product(
                &irreps(&args["irreps_in1"]),
                &irreps(&args["irreps_in2"]),
                &irreps(&args["irreps_out"]),
                options,
            ),
            "FullTensorProduct" => full_tensor_product(
                &irreps(&args["irreps_in1"]),
                &irreps(&args["irreps_in2"]),
                opt_irreps(&args["filter_ir_out"]).as_ref(),
                options,
            ),
            "ElementwiseTensorProduct" => elementwise_tensor_product(
                &irreps(&args["irreps_in1"]),
                &irreps(&args["irreps_in2"]),
                opt_irreps(&args["filter_ir_out"]).as_ref(),
                options,
            ),
            "TensorSquare" => tensor_square(
                &irreps(&args["irreps_in"]),
                opt_irreps(&args["irreps_out"]).as_ref(),
                opt_irreps(&args["filter_ir_out"]).as_ref(),
                options,
            ),
            other => panic!("unknown kind {other}"),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", case["name"]))
    }

    fn check_tensor_product(case: &Value) {
        let name = case["name"].as_str().unwrap();
        let tp = build(case);
        assert_eq!(
            tp.irreps_out().to_string(),
            case["irreps_out"].as_str().unwrap(),
            "{name}: irreps_out"
        );
        assert_eq!(
            tp.irreps_in1().to_string(),
            case["irreps_in1"].as_str().unwrap(),
            "{name}: irreps_in1"
        );
        assert_eq!(
            tp.weight_numel() as u64,
            case["weight_numel"].as_u64().unwrap(),
            "{name}: weight_numel"
        );
        let expected = case["instructions"].as_array().unwrap();
        assert_eq!(
            tp.instructions().len(),
            expected.len(),
            "{name}: instruction count"
        );
        for ((ins, shape), e) in tp.instructions().iter().zip(tp.path_shapes()).zip(expected) {
            let n = |k: usize| e[k].as_u64().unwrap() as usize;
            assert_eq!(
                (ins.i_in1, ins.i_in2, ins.i_out),
                (n(0), n(1), n(2)),
                "{name}"
            );
            assert_eq!(ins.connection_mode.name(), e[3].as_str().unwrap(), "{name}");
            assert_eq!(ins.has_weight, e[4].as_bool().unwrap(), "{name}");
            assert!(
                (ins.path_weight - e[5].as_f64().unwrap()).abs() < 1e-12,
                "{name}: path weight {} vs {}",
                ins.path_weight,
                e[5]
            );
            let shape_e: Vec<usize> = e[6]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(shape, &shape_e, "{name}: path shape");
        }
        // The fixture's rows, then the same rows repeated four times: 12 rows run as one
        // group of eight lanes and four single rows.
        for reps in [1, 4] {
            check_rows(name, &tp, case, reps);
        }
    }

    /// The fixture's numbers with its rows repeated `reps` times (a shared weight's
    /// gradient, a sum over rows, scales by `reps`).
    fn check_rows(name: &str, tp: &TensorProductPlan, case: &Value, reps: usize) {
        let tiled = |v: Vec<f64>| v.repeat(reps);
        let shared = case["shared_weights"].as_bool().unwrap();
        let square = case["x2"].is_null();
        let x1 = tiled(f64s(&case["x1"]));
        let x2 = if square {
            x1.clone()
        } else {
            tiled(f64s(&case["x2"]))
        };
        let w = f64s(&case["weight"]);
        let w = if shared { w } else { tiled(w) };
        let batch = reps * case["batch"].as_u64().unwrap() as usize;
        let mut out = vec![0.0; batch * tp.irreps_out().dim()];
        tp.forward(&x1, &x2, &w, &mut out).unwrap();
        assert_close(
            &format!("{name} x{reps}: out"),
            &out,
            &tiled(f64s(&case["out"])),
            1e-10,
        );

        let g = tiled(f64s(&case["grad_out"]));
        let (mut g1, mut g2, mut gw) =
            (vec![0.0; x1.len()], vec![0.0; x2.len()], vec![0.0; w.len()]);
        tp.backward(
            &x1,
            &x2,
            &w,
            &g,
            TensorProductGradients {
                x1: Some(&mut g1),
                x2: Some(&mut g2),
                weight: Some(&mut gw),
            },
        )
        .unwrap();
        if square {
            g1.iter_mut().zip(&g2).for_each(|(a, b)| *a += b);
        } else {
            assert_close(
                &format!("{name} x{reps}: grad x2"),
                &g2,
                &tiled(f64s(&case["grad_x2"])),
                1e-10,
            );
        }
        assert_close(
            &format!("{name} x{reps}: grad x1"),
            &g1,
            &tiled(f64s(&case["grad_x1"])),
            1e-10,
        );
        assert_close(
            &format!("{name} x{reps}: grad weight"),
            &gw,
            &if shared {
                f64s(&case["grad_weight"])
                    .iter()
                    .map(|x| x * reps as f64)
                    .collect()
            } else {
                tiled(f64s(&case["grad_weight"]))
            },
            1e-10,
        );

        // f32 data at 1e-5 relative to the output's scale.
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut out32 = vec![0.0f32; out.len()];
        tp.forward(&f(&x1), &f(&x2), &f(&w), &mut out32).unwrap();
        let scale = out.iter().fold(1.0f64, |m, x| m.max(x.abs()));
        let out32: Vec<f64> = out32.into_iter().map(f64::from).collect();
        assert_close(
            &format!("{name} x{reps}: out f32"),
            &out32,
            &out,
            1e-5 * scale,
        );
        let (mut a, mut b, mut c) = (
            vec![0.0f32; x1.len()],
            vec![0.0f32; x2.len()],
            vec![0.0f32; w.len()],
        );
        tp.backward(
            &f(&x1),
            &f(&x2),
            &f(&w),
            &f(&g),
            TensorProductGradients {
                x1: Some(&mut a),
                x2: Some(&mut b),
                weight: Some(&mut c),
            },
        )
        .unwrap();
        if square {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
        }
        for (what, got, want) in [("x1", a, &g1), ("x2", b, &g2), ("weight", c, &gw)] {
            let scale = want.iter().fold(1.0f64, |m, x| m.max(x.abs()));
            let got: Vec<f64> = got.into_iter().map(f64::from).collect();
            assert_close(
                &format!("{name} x{reps}: grad {what} f32"),
                &got,
                want,
                1e-5 * scale,
            );
        }
    }

    fn check_linear(case: &Value) {
        let name = case["name"].as_str().unwrap();
        let args = &case["args"];
        let linear = LinearPlan::new(
            &irreps(&args["irreps_in"]),
            &irreps(&args["irreps_out"]),
            args["biases"].as_bool().unwrap(),
            args["path_normalization"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
            args["shared_weights"].as_bool().unwrap(),
        )
        .unwrap();
        assert_eq!(
            linear.weight_numel() as u64,
            case["weight_numel"].as_u64().unwrap(),
            "{name}"
        );
        for ((i_in, i_out, pw), e) in linear
            .instructions()
            .into_iter()
            .zip(case["instructions"].as_array().unwrap())
        {
            assert_eq!(
                (i_in as u64, i_out as u64),
                (e[0].as_u64().unwrap(), e[2].as_u64().unwrap()),
                "{name}"
            );
            assert!(
                (pw - e[5].as_f64().unwrap()).abs() < 1e-12,
                "{name}: {pw} vs {}",
                e[5]
            );
        }
        let (x, w) = (f64s(&case["x1"]), f64s(&case["weight"]));
        let bias = if case["bias"].is_null() {
            vec![]
        } else {
            f64s(&case["bias"])
        };
        let batch = case["batch"].as_u64().unwrap() as usize;
        let mut out = vec![0.0; batch * linear.irreps_out().dim()];
        linear.forward(&x, &w, &bias, &mut out).unwrap();
        assert_close(&format!("{name}: out"), &out, &f64s(&case["out"]), 1e-10);
        let g = f64s(&case["grad_out"]);
        let (mut gx, mut gw, mut gb) = (
            vec![0.0; x.len()],
            vec![0.0; w.len()],
            vec![0.0; bias.len()],
        );
        linear
            .backward(&x, &w, &g, Some(&mut gx), Some(&mut gw), Some(&mut gb))
            .unwrap();
        assert_close(
            &format!("{name}: grad x"),
            &gx,
            &f64s(&case["grad_x1"]),
            1e-10,
        );
        assert_close(
            &format!("{name}: grad weight"),
            &gw,
            &f64s(&case["grad_weight"]),
            1e-10,
        );
        if !case["grad_bias"].is_null() {
            assert_close(
                &format!("{name}: grad bias"),
                &gb,
                &f64s(&case["grad_bias"]),
                1e-10,
            );
        }
    }

    #[test]
    fn every_case_matches_e3nn() {
        let fixture = load_fixture!("tensor_product");
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 80);
        for case in cases {
            match case["kind"].as_str().unwrap() {
                "Linear" => check_linear(case),
                _ => check_tensor_product(case),
            }
        }
    }
}

/// The picture: one curve per path; the labels of `irreps_in1` spread evenly down the left
/// side, a single output irrep in the middle of the bottom.
#[test]
fn visualize_draws_every_path_and_spreads_the_labels() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let tp = fully_connected_tensor_product(
        &i("2x0e + 1x1o + 3x2e"),
        &i("1x1o"),
        &i("4x1o"),
        Default::default(),
    )
    .unwrap();
    let svg = tp.visualize();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<path ").count(), tp.instructions().len());
    let attribute = |line: &str, name: &str| -> f64 {
        let start = line.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        line[start..].split('"').next().unwrap().parse().unwrap()
    };
    let left: Vec<f64> = svg
        .lines()
        .filter(|l| l.contains(r#"text-anchor="end""#) && !l.contains(">in1<"))
        .map(|l| attribute(l, "y"))
        .collect();
    assert_eq!(left.len(), 3);
    assert!((left[1] - left[0] - (left[2] - left[1])).abs() < 1e-9 && left[1] > left[0]);
    let bottom: Vec<f64> = svg
        .lines()
        .filter(|l| l.contains(">4x1o<"))
        .map(|l| attribute(l, "x"))
        .collect();
    assert_eq!(bottom, [320.0], "a single output irrep sits in the middle");
}

/// A `uvu` product of degrees 0 and 1 in `x1` runs row by row, eight channels at a time in
/// the vector lanes. Its channels are independent, so a product of 19 channels (two blocks
/// of eight and three left over) equals, bit for bit, 19 products of one channel each (the
/// per-channel loop, which the e3nn fixtures check).
#[test]
fn uvu_channel_blocks_equal_single_channels() {
    let (mul, batch) = (19, 5);
    let plan = |m: usize| {
        let i = |s: String| s.parse::<Irreps>().unwrap();
        let ins = |a, b, c| Instruction::new(a, b, c, ConnectionMode::Uvu, true);
        TensorProductPlan::new(
            &i(format!("{m}x0e+{m}x1o")),
            &i("1x0e+1x1o+1x2e".into()),
            &i(format!("{m}x0e+{m}x1o+{m}x1o+{m}x2e+{m}x3o")),
            vec![
                ins(0, 0, 0),
                ins(1, 0, 1),
                ins(0, 1, 2),
                ins(1, 1, 3),
                ins(1, 2, 4),
            ],
            TensorProductOptions {
                shared_weights: false,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (wide, one) = (plan(mul), plan(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let x1 = randn(&mut rng, batch * 4 * mul);
    let x2 = randn(&mut rng, batch * 9);
    let w = weights(&wide, batch, &mut rng);
    let out = forward(&wide, &x1, &x2, &w, batch);
    // Per row, x1 is [mul] scalars then [mul][3] vectors; the weights one block of [mul] per
    // instruction; the output blocks [mul][d] for d = 1, 3, 3, 5, 7.
    let dims = [1, 3, 3, 5, 7];
    for u in 0..mul {
        let x1u: Vec<f64> = (0..batch)
            .flat_map(|z| {
                let row = &x1[z * 4 * mul..(z + 1) * 4 * mul];
                std::iter::once(row[u]).chain(row[mul + 3 * u..mul + 3 * u + 3].iter().copied())
            })
            .collect();
        let wu: Vec<f64> = (0..batch)
            .flat_map(|z| (0..5).map(move |p| (z, p)))
            .map(|(z, p)| w[z * 5 * mul + p * mul + u])
            .collect();
        let got = forward(&one, &x1u, &x2, &wu, batch);
        for z in 0..batch {
            let (mut at_wide, mut at_one) = (z * 19 * mul, z * 19);
            for d in dims {
                let wide_block = &out[at_wide + u * d..at_wide + (u + 1) * d];
                assert_eq!(
                    wide_block,
                    &got[at_one..at_one + d],
                    "row {z}, channel {u}, d {d}"
                );
                (at_wide, at_one) = (at_wide + mul * d, at_one + d);
            }
        }
    }
}

/// A `uvw` product with per-row weights of a few hundred per path streams them row by row,
/// its output channels in register blocks (12, 10, 8, 6, 4, 2 and 1 vectors of eight, then
/// 4, 2 and 1 channels; 10 and 12 channels in one pass). Each row must equal the same
/// product with those weights shared, on eight copies of the row, which runs eight rows in
/// the vector lanes: in f64 and in f32 (whose blocks are twice as wide).
#[test]
fn streamed_uvw_rows_agree_with_lanes() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let plan = |shared_weights| {
        fully_connected_tensor_product(
            &i("13x0e+5x1o+3x2e"),
            &i("0e+1o"),
            &i("101x0e+10x1o+12x2e+11x1e"),
            TensorProductOptions {
                shared_weights,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let (streamed, shared) = (plan(false), plan(true));
    let (d1, d2, d3, numel) = (
        streamed.irreps_in1().dim(),
        streamed.irreps_in2().dim(),
        streamed.irreps_out().dim(),
        streamed.weight_numel(),
    );
    let batch = 11;
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let (x1, x2, w) = (
        randn(&mut rng, batch * d1),
        randn(&mut rng, batch * d2),
        randn(&mut rng, batch * numel),
    );
    fn check<T: equivariant_core::Real>(
        [streamed, shared]: [&TensorProductPlan; 2],
        [x1, x2, w]: [&[f64]; 3],
        [d1, d2, d3, numel]: [usize; 4],
        tol: f64,
    ) {
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (x1, x2, w) = (cast(x1), cast(x2), cast(w));
        let batch = x1.len() / d1;
        let mut out = vec![T::zero(); batch * d3];
        streamed.forward(&x1, &x2, &w, &mut out).unwrap();
        for z in 0..batch {
            let copies = |v: &[T], d: usize| v[z * d..(z + 1) * d].repeat(8);
            let mut lanes = vec![T::zero(); 8 * d3];
            let wz = &w[z * numel..(z + 1) * numel];
            shared
                .forward(&copies(&x1, d1), &copies(&x2, d2), wz, &mut lanes)
                .unwrap();
            let f = |v: &[T]| {
                v.iter()
                    .map(|&x| <T as equivariant_core::Real>::to_f64(x))
                    .collect::<Vec<f64>>()
            };
            equivariant_testing::assert_close(
                &format!("row {z} ({})", std::any::type_name::<T>()),
                &f(&out[z * d3..(z + 1) * d3]),
                &f(&lanes[..d3]),
                tol,
            );
        }
    }
    let plans = [&streamed, &shared];
    let inputs = [&x1[..], &x2[..], &w[..]];
    check::<f64>(plans, inputs, [d1, d2, d3, numel], 1e-12);
    check::<f32>(plans, inputs, [d1, d2, d3, numel], 1e-4);
}

/// A `uvu` product of degrees 4 to 7 (run-time sizes) runs row by row, four channels (f32)
/// or two (f64) at a time with sixteen output components in two vectors. With no path
/// normalization it equals, per row, the `uvw` product whose weights are `W[u, w] =
/// delta(u, w) W[u]`, run with those weights shared on eight copies of the row, in the vector
/// lanes: an independent implementation. Nine and six channels leave remainders for both
/// block sizes; the outputs have 11, 13, 3 and 15 components.
#[test]
fn wide_uvu_rows_agree_with_diagonal_uvw_lanes() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let (in1, in2, out) = (i("9x5e+6x4o"), i("1x3e+1x2e"), i("9x5e+6x6o+6x1o+9x7e"));
    let paths = [(0, 0, 0), (1, 1, 1), (1, 0, 2), (0, 1, 3)];
    let plan = |mode: ConnectionMode, shared_weights| {
        let ins = paths
            .iter()
            .map(|&(a, b, c)| Instruction::new(a, b, c, mode, true))
            .collect();
        let options = TensorProductOptions {
            shared_weights,
            path_normalization: PathNormalization::None,
            ..Default::default()
        };
        TensorProductPlan::new(&in1, &in2, &out, ins, options).unwrap()
    };
    let (uvu, uvw) = (
        plan(ConnectionMode::Uvu, false),
        plan(ConnectionMode::Uvw, true),
    );
    let muls = paths.map(|(a, _, _)| in1[a].mul);
    let (d1, d2) = (in1.dim(), in2.dim());
    let batch = 5;
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let (x1, x2) = (randn(&mut rng, batch * d1), randn(&mut rng, batch * d2));
    let w = randn(&mut rng, batch * uvu.weight_numel());
    // Per row, the uvu weights are [m] per path; the diagonal uvw ones [m][m] per path.
    let diagonal = |wz: &[f64]| {
        let mut at = 0;
        let mut d = Vec::with_capacity(uvw.weight_numel());
        for m in muls {
            for u in 0..m {
                d.extend((0..m).map(|o| if o == u { wz[at + u] } else { 0.0 }));
            }
            at += m;
        }
        d
    };
    fn check<T: equivariant_core::Real>(
        [uvu, uvw]: [&TensorProductPlan; 2],
        [x1, x2, w]: [&[f64]; 3],
        diagonal: &dyn Fn(&[f64]) -> Vec<f64>,
        tol: f64,
    ) {
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let f = |v: &[T]| {
            v.iter()
                .map(|&x| <T as equivariant_core::Real>::to_f64(x))
                .collect::<Vec<f64>>()
        };
        let (d1, d2, d3) = (
            uvu.irreps_in1().dim(),
            uvu.irreps_in2().dim(),
            uvu.irreps_out().dim(),
        );
        let (numel, batch) = (uvu.weight_numel(), x1.len() / d1);
        let mut out = vec![T::zero(); batch * d3];
        uvu.forward(&cast(x1), &cast(x2), &cast(w), &mut out)
            .unwrap();
        for z in 0..batch {
            let copies = |v: &[f64], d: usize| cast(&v[z * d..(z + 1) * d].repeat(8));
            let mut lanes = vec![T::zero(); 8 * d3];
            let wz = cast(&diagonal(&w[z * numel..(z + 1) * numel]));
            uvw.forward(&copies(x1, d1), &copies(x2, d2), &wz, &mut lanes)
                .unwrap();
            equivariant_testing::assert_close(
                &format!("row {z} ({})", std::any::type_name::<T>()),
                &f(&out[z * d3..(z + 1) * d3]),
                &f(&lanes[..d3]),
                tol,
            );
        }
    }
    let (plans, inputs) = ([&uvu, &uvw], [&x1[..], &x2[..], &w[..]]);
    check::<f64>(plans, inputs, &diagonal, 1e-12);
    check::<f32>(plans, inputs, &diagonal, 1e-4);
}

/// The wide uvu rows read sixteen lanes from each channel of `x1` and of the output
/// gradient, past the channel's own values into the next channel's; those lanes are masked
/// out, so an infinite value in one channel leaves the other channels' gradients as they
/// were (no `inf * 0 = NaN` leaking across), in f32 and f64.
#[test]
fn wide_uvu_rows_keep_a_channel_infinity_to_itself() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let ins = vec![Instruction::new(0, 0, 0, ConnectionMode::Uvu, true)];
    let options = TensorProductOptions {
        shared_weights: false,
        ..Default::default()
    };
    let tp = TensorProductPlan::new(&i("9x5e"), &i("1x3e"), &i("9x5e"), ins, options).unwrap();
    let (d1, d2) = (tp.irreps_in1().dim(), tp.irreps_in2().dim());
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let (x1, x2) = (randn(&mut rng, d1), randn(&mut rng, d2));
    let (w, g) = (randn(&mut rng, tp.weight_numel()), randn(&mut rng, d1));
    fn grads<T: equivariant_core::Real>(
        tp: &TensorProductPlan,
        [x1, x2, w, g]: [&[f64]; 4],
    ) -> (Vec<f64>, Vec<f64>) {
        let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
        let (mut g1, mut gw) = (vec![T::zero(); x1.len()], vec![T::zero(); w.len()]);
        let gradients = TensorProductGradients {
            x1: Some(&mut g1),
            x2: None,
            weight: Some(&mut gw),
        };
        tp.backward(&cast(x1), &cast(x2), &cast(w), &cast(g), gradients)
            .unwrap();
        let f = |v: Vec<T>| v.into_iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
        (f(g1), f(gw))
    }
    fn check<T: equivariant_core::Real>(tp: &TensorProductPlan, a: [&[f64]; 4]) {
        let [x1, x2, w, g] = a;
        let (g1, gw) = grads::<T>(tp, a);
        // Channel 1 of x1 (its weight gradient's term) and channel 2 of the output
        // gradient infinite: every other channel's gradients stay what they were.
        let mut x1_inf = x1.to_vec();
        x1_inf[11..22].fill(f64::INFINITY);
        let mut g_inf = g.to_vec();
        g_inf[22..33].fill(f64::INFINITY);
        let (g1_inf, gw_inf) = grads::<T>(tp, [&x1_inf, x2, w, &g_inf]);
        for u in [0, 3, 8] {
            assert_eq!(gw_inf[u], gw[u], "weight gradient of channel {u}");
            assert_eq!(
                g1_inf[u * 11..(u + 1) * 11],
                g1[u * 11..(u + 1) * 11],
                "x1 channel {u}"
            );
            assert!(gw[u].is_finite());
        }
    }
    check::<f64>(&tp, [&x1, &x2, &w, &g]);
    check::<f32>(&tp, [&x1, &x2, &w, &g]);
}
