//! The convolution with weights from a radial MLP (`conv_forward_radial` /
//! `conv_backward_radial`) against the MLP run on its own then the unfused convolution
//! (f64, 1e-10), finite differences of its gradients (the embedding's included),
//! equivariance, bit-identical results across thread counts and across the AVX2 and
//! AVX-512 instances, f32 against f64, and bad input.

use crate::convolution::{graphs, plans, unfused_backward, unfused_forward};
use crate::support::{matmul_reference, on_threads, randn, to_f32};
use crate::tensor_product::apply;
use equivariant_core::Error;
use equivariant_core::graph::EdgeIndex;
use equivariant_core::kernels::{InstructionSet, with_instruction_set};
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::tensor_product::{
    Instruction, MlpLayer, RadialConvGradients, RadialSaved, RadialWeights, TensorProductOptions,
    TensorProductPlan, sorted_uvu_tensor_product,
};
use equivariant_core::o3::{Irreps, rand_matrix};
use equivariant_testing::assert_close;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The products the radial convolution runs: those of the convolution tests it applies to
/// (uvu, degrees to 3, groups of channels of every size), NequIP's at 8 channels, and one
/// with a path without weights.
fn radial_plans() -> Vec<TensorProductPlan> {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let mut out: Vec<_> = plans()
        .into_iter()
        .filter(|tp| tp.conv_radial_applies())
        .collect();
    assert_eq!(out.len(), 3, "the uvu plans of the convolution tests");
    out.push(
        sorted_uvu_tensor_product(&i("8x0e+8x1o"), &i("0e+1o"), &i("8x0e+8x1o"), false).unwrap(),
    );
    let uvu = |a, b, c, w| Instruction::new(a, b, c, "uvu".parse().unwrap(), w);
    out.push(
        TensorProductPlan::new(
            &i("3x0e+2x1o"),
            &i("0e+1o"),
            &i("3x0e+2x1o+2x0e"),
            vec![uvu(0, 0, 0, true), uvu(1, 0, 1, false), uvu(1, 1, 2, true)],
            TensorProductOptions {
                shared_weights: false,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    out
}

/// A hidden layer: its weight `[k, n]`, `k`, `n` and activation.
type Hidden = (Vec<f64>, usize, usize, Option<(ActivationFunction, f64)>);

/// A radial MLP: its hidden layers' weights and settings, and its last layer.
struct Mlp {
    num_basis: usize,
    hidden: Vec<Hidden>,
    last: Vec<f64>,
}

impl Mlp {
    /// `num_basis -> widths... -> numel`, each hidden layer with a silu or none.
    fn new(rng: &mut impl Rng, num_basis: usize, widths: &[(usize, bool)], numel: usize) -> Self {
        let mut hidden = Vec::new();
        let mut k = num_basis;
        for &(n, activated) in widths {
            let act = activated.then_some((ActivationFunction::Silu, 1.68));
            let w = randn(rng, k * n)
                .iter()
                .map(|x| x / (k as f64).sqrt())
                .collect();
            hidden.push((w, k, n, act));
            k = n;
        }
        Mlp {
            num_basis,
            hidden,
            last: randn(rng, k * numel),
        }
    }

    fn layers<'a, T: equivariant_core::Real>(&'a self, cast: &'a [Vec<T>]) -> Vec<MlpLayer<'a, T>> {
        (self.hidden.iter().zip(cast))
            .map(|((_, k, n, act), w)| MlpLayer {
                weight: w,
                inputs: *k,
                outputs: *n,
                activation: act.map(|(f, c)| (f, T::from_f64(c))),
            })
            .collect()
    }

    /// Each edge's weights, the MLP run on its own (`[E, numel]`).
    fn weights(&self, embedding: &[f64]) -> Vec<f64> {
        let mut a = embedding.to_vec();
        let mut k = self.num_basis;
        for (w, _, n, act) in &self.hidden {
            let mut z = matmul_reference(&a, w, k, *n);
            if let Some((f, c)) = act {
                let mut y = vec![0.0; z.len()];
                f.forward_slice(*c, &z, &mut y).unwrap();
                z = y;
            }
            (a, k) = (z, *n);
        }
        matmul_reference(&a, &self.last, k, self.last.len() / k)
    }
}

/// A random case on one of the test graphs: the plan's inputs, an embedding of 5 basis
/// functions and an MLP of one of [`WIDTHS`] (6 basis functions with none hidden).
struct Case {
    edges: EdgeIndex,
    src: Vec<usize>,
    dst: Vec<usize>,
    x1: Vec<f64>,
    x2: Vec<f64>,
    embedding: Vec<f64>,
    mlp: Mlp,
}

impl Case {
    fn new(
        tp: &TensorProductPlan,
        graph: &(Vec<usize>, Vec<usize>, usize),
        widths: &[(usize, bool)],
        rng: &mut StdRng,
    ) -> Self {
        let (src, dst, n) = graph.clone();
        let e = src.len();
        let num_basis = widths.first().map_or(6, |_| 5);
        Case {
            edges: EdgeIndex::new(&src, &dst, n).unwrap(),
            x1: randn(rng, n * tp.irreps_in1().dim()),
            x2: randn(rng, e * tp.irreps_in2().dim()),
            embedding: randn(rng, e * num_basis),
            mlp: Mlp::new(rng, num_basis, widths, tp.weight_numel()),
            src,
            dst,
        }
    }

    fn forward<T: equivariant_core::Real>(
        &self,
        tp: &TensorProductPlan,
        cast: impl Fn(&[f64]) -> Vec<T>,
    ) -> Vec<T> {
        let ws: Vec<Vec<T>> = self.mlp.hidden.iter().map(|h| cast(&h.0)).collect();
        let layers = self.mlp.layers(&ws);
        let (emb, last) = (cast(&self.embedding), cast(&self.mlp.last));
        let weights = RadialWeights {
            embedding: &emb,
            hidden: &layers,
            last: &last,
        };
        let mut out = vec![T::zero(); self.edges.num_nodes() * tp.irreps_out().dim()];
        let (x1, x2, scale) = (cast(&self.x1), cast(&self.x2), T::from_f64(0.7));
        tp.conv_forward_radial(&self.edges, &x1, &x2, weights, scale, &mut out, None)
            .unwrap();
        out
    }

    /// Input `which` of `[x1, x2, embedding]`.
    fn input(&mut self, which: usize) -> &mut Vec<f64> {
        match which {
            0 => &mut self.x1,
            1 => &mut self.x2,
            _ => &mut self.embedding,
        }
    }

    /// The gradients `[x1, x2, embedding]` for `grad_out`, `x2`'s and the embedding's added
    /// to `start`.
    fn backward(
        &self,
        tp: &TensorProductPlan,
        grad_out: &[f64],
        start: [&[f64]; 2],
    ) -> [Vec<f64>; 3] {
        let [g1, g2, gb] =
            self.backward_as::<f64>(tp, grad_out, start, [true; 3], |v: &[f64]| v.to_vec());
        [g1.unwrap(), g2.unwrap(), gb.unwrap()]
    }

    /// The gradients in `T` that `want` asks for (`[x1, x2, embedding]`), `x2`'s and the
    /// embedding's added to `start`.
    fn backward_as<T: equivariant_core::Real>(
        &self,
        tp: &TensorProductPlan,
        grad_out: &[f64],
        start: [&[f64]; 2],
        want: [bool; 3],
        cast: impl Fn(&[f64]) -> Vec<T>,
    ) -> [Option<Vec<T>>; 3] {
        let ws: Vec<Vec<T>> = self.mlp.hidden.iter().map(|h| cast(&h.0)).collect();
        let layers = self.mlp.layers(&ws);
        let (emb, last) = (cast(&self.embedding), cast(&self.mlp.last));
        let weights = RadialWeights {
            embedding: &emb,
            hidden: &layers,
            last: &last,
        };
        let (x1, x2) = (cast(&self.x1), cast(&self.x2));
        let (scale, g) = (T::from_f64(0.7), cast(grad_out));
        // Once forming the MLP again, once reading what the forward kept: the same bits.
        let mut saved = RadialSaved::default();
        let mut out = vec![T::zero(); g.len()];
        let edges = &self.edges;
        tp.conv_forward_radial(edges, &x1, &x2, weights, scale, &mut out, Some(&mut saved))
            .unwrap();
        // Keeping what the backward reads changes nothing in the forward.
        let mut formed = out.clone();
        tp.conv_forward_radial(edges, &x1, &x2, weights, scale, &mut formed, None)
            .unwrap();
        assert!(formed == out && saved.is_empty() == (edges.num_edges() == 0));
        let runs = [None, Some(&saved)].map(|saved| {
            let mut g1 = want[0].then(|| vec![T::from_f64(f64::NAN); self.x1.len()]);
            let mut g2 = want[1].then(|| cast(start[0]));
            let mut gb = want[2].then(|| cast(start[1]));
            let grads = RadialConvGradients {
                x1: g1.as_deref_mut(),
                x2: g2.as_deref_mut(),
                embedding: gb.as_deref_mut(),
            };
            tp.conv_backward_radial(edges, &x1, &x2, weights, scale, &g, grads, saved)
                .unwrap();
            [g1, g2, gb]
        });
        let [formed, read] = runs;
        assert!(
            formed == read,
            "{tp}: the kept weights give other gradients"
        );
        formed
    }
}

/// The largest magnitude in `v`: a scale for the tolerances of values that grow with the
/// number of edges and paths summed.
fn largest(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// The hidden layers of the MLPs tested, `(width, with a silu)`: an activated layer then a
/// linear one; none; a linear one then two activated (the kept slopes skip one layer and
/// follow each other).
const WIDTHS: [&[(usize, bool)]; 3] = [
    &[(7, true), (6, false)],
    &[],
    &[(5, false), (7, true), (6, true)],
];

#[test]
fn radial_matches_the_mlp_then_the_unfused_convolution() {
    let mut rng = StdRng::seed_from_u64(0);
    for tp in radial_plans() {
        for graph in graphs(&mut rng) {
            for widths in WIDTHS {
                let c = Case::new(&tp, &graph, widths, &mut rng);
                let n = graph.2;
                let w = c.mlp.weights(&c.embedding);
                let expected = unfused_forward(&tp, &c.src, &c.dst, n, &c.x1, &c.x2, &w, 0.7);
                let got = c.forward::<f64>(&tp, |v| v.to_vec());
                assert_close(
                    &format!("{tp} {n} nodes {widths:?}"),
                    &got,
                    &expected,
                    1e-10,
                );
                // x1's and x2's gradients as the unfused backward gives them; x2's added.
                let g = randn(&mut rng, n * tp.irreps_out().dim());
                let [e1, e2, _] =
                    unfused_backward(&tp, &c.src, &c.dst, n, &c.x1, &c.x2, &w, 0.7, &g);
                let start = randn(&mut rng, c.x2.len());
                let [g1, g2, _] = c.backward(&tp, &g, [&start, &vec![0.0; c.embedding.len()]]);
                assert_close(&format!("{tp} grad x1"), &g1, &e1, 1e-10);
                let e2: Vec<f64> = e2.iter().zip(&start).map(|(a, b)| a + b).collect();
                assert_close(&format!("{tp} grad x2"), &g2, &e2, 1e-10);
            }
        }
    }
}

#[test]
fn radial_gradients_match_finite_differences() {
    let mut rng = StdRng::seed_from_u64(1);
    // A graph of one partial block, and the hub (45 consecutive edges into one node: two
    // whole blocks read and written as blocks, and a partial one).
    let hub = graphs(&mut rng).pop().unwrap();
    let small = (vec![0, 2, 1, 2, 0, 3], vec![1, 1, 0, 3, 3, 2], 4);
    for (tp, graph) in radial_plans()
        .into_iter()
        .flat_map(|tp| [(tp.clone(), small.clone()), (tp, hub.clone())])
    {
        for widths in WIDTHS {
            let mut c = Case::new(&tp, &graph, widths, &mut rng);
            let g = randn(&mut rng, graph.2 * tp.irreps_out().dim());
            let zeros = [vec![0.0; c.x2.len()], vec![0.0; c.embedding.len()]];
            let grads = c.backward(&tp, &g, [&zeros[0], &zeros[1]]);
            let loss = |c: &Case| -> f64 {
                let out = c.forward::<f64>(&tp, |v| v.to_vec());
                out.iter().zip(&g).map(|(a, b)| a * b).sum()
            };
            let eps = 1e-6;
            // On the hub, the embedding's gradient only (the one no other test compares);
            // its other gradients are compared with the unfused backward.
            let first = if graph == hub { 2 } else { 0 };
            for (which, grad) in grads.iter().enumerate().skip(first) {
                let len = [c.x1.len(), c.x2.len(), c.embedding.len()][which];
                let mut fd = vec![0.0; len];
                for (i, fd) in fd.iter_mut().enumerate() {
                    let v = c.input(which)[i];
                    c.input(which)[i] = v + eps;
                    let up = loss(&c);
                    c.input(which)[i] = v - eps;
                    let down = loss(&c);
                    c.input(which)[i] = v;
                    *fd = (up - down) / (2.0 * eps);
                }
                let tol = 1e-7 * largest(&fd).max(10.0);
                assert_close(&format!("{tp} {widths:?} input {which}"), grad, &fd, tol);
            }
        }
    }
}

#[test]
fn radial_is_equivariant() {
    let mut rng = StdRng::seed_from_u64(2);
    let graph = (vec![0, 2, 1, 2, 0, 3, 3], vec![1, 1, 0, 3, 3, 2, 1], 4);
    for tp in radial_plans() {
        let mut c = Case::new(&tp, &graph, WIDTHS[0], &mut rng);
        let out = c.forward::<f64>(&tp, |v| v.to_vec());
        for det in [1.0, -1.0] {
            let r = rand_matrix(&mut rng).map(|row| row.map(|x| det * x));
            let rotate = |irreps: &Irreps, x: &[f64]| {
                apply(&irreps.d_from_matrix(&r).unwrap(), x, irreps.dim())
            };
            let (x1, x2) = (c.x1.clone(), c.x2.clone());
            c.x1 = rotate(tp.irreps_in1(), &x1);
            c.x2 = rotate(tp.irreps_in2(), &x2);
            let rotated = c.forward::<f64>(&tp, |v| v.to_vec());
            (c.x1, c.x2) = (x1, x2);
            assert_close(
                &format!("{tp} det {det}"),
                &rotated,
                &rotate(tp.irreps_out(), &out),
                1e-10,
            );
        }
    }
}

#[test]
fn radial_is_bit_identical_across_threads_and_vector_widths() {
    let mut rng = StdRng::seed_from_u64(3);
    for tp in radial_plans() {
        let graph = graphs(&mut rng).swap_remove(3); // 60 nodes, 1100 edges: several chunks
        let c = Case::new(&tp, &graph, WIDTHS[0], &mut rng);
        let g = randn(&mut rng, graph.2 * tp.irreps_out().dim());
        let zeros = [vec![0.0; c.x2.len()], vec![0.0; c.embedding.len()]];
        let run = || {
            (
                c.forward::<f32>(&tp, to_f32),
                c.forward::<f64>(&tp, |v| v.to_vec()),
                c.backward(&tp, &g, [&zeros[0], &zeros[1]]),
            )
        };
        let one = on_threads(1, run);
        for threads in [2, 3] {
            let other = on_threads(threads, run);
            assert!(
                one.0 == other.0 && one.1 == other.1 && one.2 == other.2,
                "{tp} on {threads} threads"
            );
        }
        // The AVX2 instance does the AVX-512 one's arithmetic per lane.
        if InstructionSet::detected() == InstructionSet::Avx512 {
            let avx2 = with_instruction_set(InstructionSet::Avx2Fma, run);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one.0), bits(&avx2.0), "{tp} f32");
            assert!(one.1 == avx2.1 && one.2 == avx2.2, "{tp} f64");
        }
        // The portable instance (no fused multiply-adds) to rounding, and f32 to f64.
        let portable = with_instruction_set(InstructionSet::Portable, run);
        assert_close(&format!("{tp} portable"), &portable.1, &one.1, 1e-12);
        let f32_as_f64: Vec<f64> = one.0.iter().map(|&x| x as f64).collect();
        assert_close(&format!("{tp} f32"), &f32_as_f64, &one.1, 1e-4);
    }
}

#[test]
fn radial_rejects_bad_input() {
    let i = |s: &str| s.parse::<Irreps>().unwrap();
    let tp =
        sorted_uvu_tensor_product(&i("2x0e+2x1o"), &i("0e+1o"), &i("2x0e+2x1o"), false).unwrap();
    let numel = tp.weight_numel();
    let edges = EdgeIndex::new(&[0, 1], &[1, 0], 2).unwrap();
    let (x1, x2, emb) = (vec![0.0f64; 2 * 8], vec![0.0; 2 * 4], vec![0.0; 2 * 3]);
    let w = vec![0.0; 3 * 4];
    let layers = [MlpLayer {
        weight: &w,
        inputs: 3,
        outputs: 4,
        activation: None,
    }];
    let last = vec![0.0; 4 * numel];
    let d_out = 2 * tp.irreps_out().dim();
    let mut out = vec![0.0; d_out];
    let weights = RadialWeights {
        embedding: &emb,
        hidden: &layers,
        last: &last,
    };
    let mut saved = RadialSaved::default();
    assert!(
        tp.conv_forward_radial(&edges, &x1, &x2, weights, 1.0, &mut out, Some(&mut saved))
            .is_ok()
    );
    let wrong_inputs = [MlpLayer {
        inputs: 2,
        outputs: 6,
        ..layers[0]
    }];
    let short_weight = [MlpLayer {
        weight: &w[1..],
        ..layers[0]
    }];
    let cases: [(&str, RadialWeights<f64>, usize); 5] = [
        (
            "hidden inputs",
            RadialWeights {
                hidden: &wrong_inputs,
                ..weights
            },
            d_out,
        ),
        (
            "hidden weight",
            RadialWeights {
                hidden: &short_weight,
                ..weights
            },
            d_out,
        ),
        (
            "embedding",
            RadialWeights {
                embedding: &emb[1..],
                ..weights
            },
            d_out,
        ),
        (
            "last",
            RadialWeights {
                last: &last[1..],
                ..weights
            },
            d_out,
        ),
        ("out", weights, d_out - 1),
    ];
    for (what, weights, out_len) in cases {
        let mut out = vec![0.0; out_len];
        let err = tp
            .conv_forward_radial(&edges, &x1, &x2, weights, 1.0, &mut out, None)
            .unwrap_err();
        assert!(matches!(err, Error::ShapeMismatch { .. }), "{what}: {err}");
    }
    let mut g2 = vec![0.0; 7];
    let grads = RadialConvGradients {
        x1: None,
        x2: Some(&mut g2),
        embedding: None,
    };
    let err = tp
        .conv_backward_radial(&edges, &x1, &x2, weights, 1.0, &out, grads, None)
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    // What a forward kept, read by the backward of another graph or MLP.
    let other_edges = EdgeIndex::new(&[0, 1, 1], &[1, 0, 1], 2).unwrap();
    let (x2_other, emb_other) = (vec![0.0; 3 * 4], vec![0.0; 3 * 3]);
    let other_graph = RadialWeights {
        embedding: &emb_other,
        ..weights
    };
    let activated = [MlpLayer {
        activation: Some((ActivationFunction::Silu, 1.0)),
        ..layers[0]
    }];
    let other_mlp = RadialWeights {
        hidden: &activated,
        ..weights
    };
    for (edges, x2, weights) in [
        (&other_edges, &x2_other, other_graph),
        (&edges, &x2, other_mlp),
    ] {
        let mut g1 = vec![0.0; x1.len()];
        let grads = RadialConvGradients {
            x1: Some(&mut g1),
            x2: None,
            embedding: None,
        };
        let err = tp
            .conv_backward_radial(edges, &x1, x2, weights, 1.0, &out, grads, Some(&saved))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "saved", .. }),
            "{err}"
        );
    }
    // A uvw product is not run.
    let uvw = plans()
        .into_iter()
        .find(|tp| !tp.conv_radial_applies())
        .unwrap();
    let err = uvw
        .conv_forward_radial(&edges, &x1, &x2, weights, 1.0, &mut out, None)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn radial_gradients_in_f32_asked_alone_and_added_to() {
    let mut rng = StdRng::seed_from_u64(4);
    for tp in radial_plans() {
        let graph = graphs(&mut rng).swap_remove(1); // 40 nodes, 300 edges
        let c = Case::new(&tp, &graph, WIDTHS[0], &mut rng);
        let g = randn(&mut rng, graph.2 * tp.irreps_out().dim());
        let zeros = [vec![0.0; c.x2.len()], vec![0.0; c.embedding.len()]];
        let full = c.backward(&tp, &g, [&zeros[0], &zeros[1]]);
        // x2's and the embedding's gradients add to what the buffers held.
        let start = [
            randn(&mut rng, c.x2.len()),
            randn(&mut rng, c.embedding.len()),
        ];
        let added = c.backward(&tp, &g, [&start[0], &start[1]]);
        for k in 1..3 {
            let expected: Vec<f64> = full[k]
                .iter()
                .zip(&start[k - 1])
                .map(|(a, b)| a + b)
                .collect();
            assert_close(&format!("{tp} added {k}"), &added[k], &expected, 1e-12);
        }
        // Each gradient asked alone is the same.
        for k in 0..3 {
            let mut want = [false; 3];
            want[k] = true;
            let alone = c.backward_as::<f64>(&tp, &g, [&zeros[0], &zeros[1]], want, |v| v.to_vec());
            assert_eq!(alone[k].as_ref(), Some(&full[k]), "{tp} gradient {k} alone");
        }
        // f32 to f64, and the portable instance (no fused multiply-adds) to rounding.
        let f32s = c.backward_as::<f32>(&tp, &g, [&zeros[0], &zeros[1]], [true; 3], to_f32);
        let portable = with_instruction_set(InstructionSet::Portable, || {
            c.backward(&tp, &g, [&zeros[0], &zeros[1]])
        });
        for k in 0..3 {
            let as_f64: Vec<f64> = f32s[k]
                .as_ref()
                .unwrap()
                .iter()
                .map(|&x| x as f64)
                .collect();
            let tol = 1e-5 * largest(&full[k]).max(10.0);
            assert_close(&format!("{tp} f32 gradient {k}"), &as_f64, &full[k], tol);
            assert_close(
                &format!("{tp} portable gradient {k}"),
                &portable[k],
                &full[k],
                1e-12,
            );
        }
    }
}
