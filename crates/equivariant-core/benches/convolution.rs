//! The fused convolution kernels alone (no burn): `cargo bench -p equivariant-core --bench
//! convolution`.
//!
//! The guide's tensor product (`10x0e+10x1e` x `0e+1o+2e` -> `20x0e+10x1e`, 400 weights per
//! edge from a 16-wide hidden layer) on the guide's graph (`pos = randn(N, 3) (N/100)^(1/3)`,
//! `r = 1.8`), f32, N = 1000 and 10000: forward and backward of the factorized path
//! (`EdgeWeights::Linear`).
//!
//! A small MD potential's convolution (`radial_forward`, `radial_backward`): a NequIP-style
//! product at 8 channels (`8x0e+8x1o` x `0e+1o`, its outputs filtered to `0e`, `1o` and
//! `1e`: five paths, 40 weights per edge) with its weights from a radial MLP (`8 -> 16`,
//! silu, `-> 40`) formed inside the kernel ([`TensorProductPlan::conv_forward_radial`], what
//! `equivariant md` runs), on random positions in a periodic cube at 18 neighbours within
//! `r = 4` on average (an fcc metal's first two shells), N = 108, 1000 and 10000. As in
//! `equivariant md`, the forward keeps the weights and slopes for the backward where
//! [`RadialWeights::worth_keeping`] says so (to about 2000 atoms here); past that the backward
//! forms them again.

use divan::Bencher;
use equivariant_core::graph::{Cell, EdgeIndex, radius_graph};
use equivariant_core::math::ActivationFunction;
use equivariant_core::o3::tensor_product::{
    ConvGradients, EdgeWeights, MlpLayer, RadialConvGradients, RadialSaved, RadialWeights,
    TensorProductPlan, benchmark_config, sorted_uvu_tensor_product,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn main() {
    divan::main();
}

const WIDTH: usize = 16;

struct Case {
    tp: TensorProductPlan,
    edges: EdgeIndex,
    x1: Vec<f32>,
    x2: Vec<f32>,
    hidden: Vec<f32>,
    linear: Vec<f32>,
}

fn case(n: usize) -> Case {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut randn =
        |len: usize| -> Vec<f64> { (0..len).map(|_| rng.sample(StandardNormal)).collect() };
    let side = (n as f64 / 100.0).cbrt();
    let pos: Vec<f64> = randn(3 * n).into_iter().map(|x| x * side).collect();
    let graph = radius_graph(&pos, 1.8, None, None).expect("finite positions");
    let edges = EdgeIndex::new(&graph.src, &graph.dst, n).expect("valid edges");
    let tp = benchmark_config("guide").expect("a standard configuration");
    let e = graph.num_edges();
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    Case {
        x1: f32s(randn(n * tp.irreps_in1().dim())),
        x2: f32s(randn(e * tp.irreps_in2().dim())),
        hidden: f32s(randn(e * WIDTH)),
        linear: f32s(randn(WIDTH * tp.weight_numel())),
        tp,
        edges,
    }
}

#[divan::bench(args = [1000, 10000], sample_count = 10)]
fn forward(bencher: Bencher, n: usize) {
    let c = case(n);
    let mut out = vec![0f32; n * c.tp.irreps_out().dim()];
    bencher.bench_local(|| {
        let weights = EdgeWeights::Linear {
            hidden: &c.hidden,
            linear: &c.linear,
        };
        c.tp.conv_forward(&c.edges, &c.x1, &c.x2, weights, 0.1, &mut out)
            .expect("shapes match");
    });
}

#[divan::bench(args = [1000, 10000], sample_count = 10)]
fn backward(bencher: Bencher, n: usize) {
    let c = case(n);
    let grad_out = vec![1f32; n * c.tp.irreps_out().dim()];
    let (mut g1, mut g2) = (vec![0f32; c.x1.len()], vec![0f32; c.x2.len()]);
    let (mut gh, mut gl) = (vec![0f32; c.hidden.len()], vec![0f32; c.linear.len()]);
    bencher.bench_local(|| {
        let weights = EdgeWeights::Linear {
            hidden: &c.hidden,
            linear: &c.linear,
        };
        let grads = ConvGradients {
            x1: Some(&mut g1),
            x2: Some(&mut g2),
            weight: Some(&mut gh),
            linear: Some(&mut gl),
        };
        c.tp.conv_backward(&c.edges, &c.x1, &c.x2, weights, 0.1, &grad_out, grads)
            .expect("shapes match");
    });
}

/// The guide's radial embedding with the MLP's first layer (`smooth_finite`, 10 functions,
/// 16 wide, relu) on the edges of the same graphs, forward.
#[divan::bench(args = [1000, 10000], sample_count = 10)]
fn radial_layer(bencher: Bencher, n: usize) {
    use equivariant_core::math::{Basis, RadialLayer, SoftOneHotLinspace};
    let c = case(n);
    let basis = SoftOneHotLinspace::new(0.0, 1.8, 10, Basis::SmoothFinite, false).expect("valid");
    let relu = ActivationFunction::Relu;
    let layer = RadialLayer::new(
        basis,
        10f64.sqrt(),
        10f64.sqrt().recip(),
        Some((relu, relu.normalize2mom_constant())),
    );
    let e = c.edges.num_edges();
    // Edge vectors of lengths spread over [0, 1.8].
    let vectors: Vec<f32> = c.x2[..e * 9]
        .chunks_exact(9)
        .flat_map(|r| [r[0] * 0.6, r[1] * 0.6, r[2] * 0.6])
        .collect();
    let weight: Vec<f32> = c.linear[..10 * WIDTH].to_vec();
    let mut out = vec![0f32; e * WIDTH];
    bencher.bench_local(|| {
        layer
            .forward(&vectors, &weight, &mut out)
            .expect("shapes match");
    });
}

/// An MD potential's convolution on `n` atoms over `E` edges (see the module docs).
struct RadialCase {
    tp: TensorProductPlan,
    edges: EdgeIndex,
    /// Node features, `[n, 32]`.
    x1: Vec<f32>,
    /// Edge harmonics, `[E, 4]`.
    x2: Vec<f32>,
    /// Edge embedding, `[E, NUM_BASIS]`.
    embedding: Vec<f32>,
    /// The MLP's hidden layer, `[NUM_BASIS, RADIAL_HIDDEN]`, and its last, `[RADIAL_HIDDEN,
    /// 40]`.
    hidden: Vec<f32>,
    last: Vec<f32>,
}

/// The MLP's input width (the Bessel functions).
const NUM_BASIS: usize = 8;
/// The MLP's hidden width.
const RADIAL_HIDDEN: usize = 16;
/// The convolution's normalization, `1 / sqrt(avg_num_neighbors)`.
const SCALE: f32 = 0.235_702_26;

fn radial_case(n: usize) -> RadialCase {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    // 18 neighbours within r = 4 on average: n / side^3 = 18 / (4 pi 4^3 / 3).
    let side = (n as f64 * 4.0 * std::f64::consts::PI * 64.0 / 3.0 / 18.0).cbrt();
    let pos: Vec<f64> = (0..3 * n).map(|_| rng.random::<f64>() * side).collect();
    let cell = Cell::orthorhombic([side; 3], [true; 3]).expect("a valid cell");
    let graph = radius_graph(&pos, 4.0, None, Some(&cell)).expect("finite positions");
    let edges = EdgeIndex::new(&graph.src, &graph.dst, n).expect("valid edges");
    let irreps = |s: &str| s.parse().expect("valid irreps");
    let tp = sorted_uvu_tensor_product(
        &irreps("8x0e+8x1o"),
        &irreps("0e+1o"),
        &irreps("8x0e+8x1o+8x1e"),
        false,
    )
    .expect("a valid product");
    let e = graph.num_edges();
    let mut randn = |len: usize, scale: f64| -> Vec<f32> {
        (0..len)
            .map(|_| (rng.sample::<f64, _>(StandardNormal) * scale) as f32)
            .collect()
    };
    RadialCase {
        x1: randn(n * tp.irreps_in1().dim(), 1.0),
        x2: randn(e * tp.irreps_in2().dim(), 1.0),
        embedding: randn(e * NUM_BASIS, 1.0),
        hidden: randn(NUM_BASIS * RADIAL_HIDDEN, (NUM_BASIS as f64).powf(-0.5)),
        last: randn(
            RADIAL_HIDDEN * tp.weight_numel(),
            (RADIAL_HIDDEN as f64).powf(-0.5),
        ),
        tp,
        edges,
    }
}

impl RadialCase {
    /// Whether the forward keeps the weights and slopes for the backward, as in `equivariant
    /// md`.
    fn keeps(&self) -> bool {
        let layers = self.layers();
        let weights = RadialWeights {
            embedding: &self.embedding,
            hidden: &layers,
            last: &self.last,
        };
        weights.worth_keeping(self.edges.num_edges())
    }

    fn layers(&self) -> [MlpLayer<'_, f32>; 1] {
        let silu = ActivationFunction::Silu;
        [MlpLayer {
            weight: &self.hidden,
            inputs: NUM_BASIS,
            outputs: RADIAL_HIDDEN,
            activation: Some((silu, silu.normalize2mom_constant() as f32)),
        }]
    }

    /// The forward into `out`, keeping the weights and slopes in `saved` where it
    /// [`keeps`](Self::keeps) them.
    fn forward(&self, out: &mut [f32], saved: &mut RadialSaved<f32>) {
        let layers = self.layers();
        let weights = RadialWeights {
            embedding: &self.embedding,
            hidden: &layers,
            last: &self.last,
        };
        (self.tp)
            .conv_forward_radial(
                &self.edges,
                &self.x1,
                &self.x2,
                weights,
                SCALE,
                out,
                self.keeps().then_some(saved),
            )
            .expect("shapes match");
    }
}

#[divan::bench(args = [108, 1000, 10000], sample_count = 20)]
fn radial_forward(bencher: Bencher, n: usize) {
    let c = radial_case(n);
    let mut out = vec![0f32; n * c.tp.irreps_out().dim()];
    let mut saved = RadialSaved::default();
    bencher.bench_local(|| c.forward(&mut out, &mut saved));
}

#[divan::bench(args = [108, 1000, 10000], sample_count = 20)]
fn radial_backward(bencher: Bencher, n: usize) {
    let c = radial_case(n);
    let mut out = vec![0f32; n * c.tp.irreps_out().dim()];
    let mut saved = RadialSaved::default();
    c.forward(&mut out, &mut saved);
    let grad_out = vec![1f32; out.len()];
    let (mut g1, mut g2) = (vec![0f32; c.x1.len()], vec![0f32; c.x2.len()]);
    let mut gb = vec![0f32; c.embedding.len()];
    let layers = c.layers();
    bencher.bench_local(|| {
        let weights = RadialWeights {
            embedding: &c.embedding,
            hidden: &layers,
            last: &c.last,
        };
        let grads = RadialConvGradients {
            x1: Some(&mut g1),
            x2: Some(&mut g2),
            embedding: Some(&mut gb),
        };
        (c.tp)
            .conv_backward_radial(
                &c.edges,
                &c.x1,
                &c.x2,
                weights,
                SCALE,
                &grad_out,
                grads,
                c.keeps().then_some(&saved),
            )
            .expect("shapes match");
    });
}
