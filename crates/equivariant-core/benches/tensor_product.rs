//! Tensor-product kernels on the standard configurations (`../shared/benchmarks.md`),
//! batch 10000, f32, per-row weights: `cargo bench -p equivariant-core --bench tensor_product`.
//! The side-by-side run against e3nn is `tools/reference/compare_tp.py`.

use divan::Bencher;
use equivariant_core::o3::tensor_product::{TensorProductGradients, benchmark_config};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn main() {
    divan::main();
}

const BATCH: usize = 10_000;
const CONFIGS: &[&str] = &[
    "mace-medium",
    "nequip-aspirin",
    "diffdock-l2",
    "e3tools-conv",
    "guide",
];

fn inputs(
    name: &str,
) -> (
    equivariant_core::o3::tensor_product::TensorProductPlan,
    Vec<f32>,
    Vec<f32>,
    Vec<f32>,
) {
    let tp = benchmark_config(name).expect("known configuration");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut randn = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect()
    };
    let x1 = randn(BATCH * tp.irreps_in1().dim());
    let x2 = randn(BATCH * tp.irreps_in2().dim());
    let w = randn(BATCH * tp.weight_numel());
    (tp, x1, x2, w)
}

#[divan::bench(args = CONFIGS, sample_count = 10)]
fn forward(bencher: Bencher, name: &str) {
    let (tp, x1, x2, w) = inputs(name);
    let mut out = vec![0.0f32; BATCH * tp.irreps_out().dim()];
    bencher.bench_local(|| tp.forward(&x1, &x2, &w, &mut out).expect("shapes"));
}

#[divan::bench(args = CONFIGS, sample_count = 10)]
fn forward_backward(bencher: Bencher, name: &str) {
    let (tp, x1, x2, w) = inputs(name);
    let mut out = vec![0.0f32; BATCH * tp.irreps_out().dim()];
    let (mut g1, mut g2, mut gw) = (
        vec![0.0f32; x1.len()],
        vec![0.0f32; x2.len()],
        vec![0.0f32; w.len()],
    );
    let mut grad_out = vec![0.0f32; out.len()];
    bencher.bench_local(|| {
        tp.forward(&x1, &x2, &w, &mut out).expect("shapes");
        grad_out
            .iter_mut()
            .zip(&out)
            .for_each(|(g, &y)| *g = 2.0 * y);
        let grads = TensorProductGradients {
            x1: Some(&mut g1),
            x2: Some(&mut g2),
            weight: Some(&mut gw),
        };
        tp.backward(&x1, &x2, &w, &grad_out, grads).expect("shapes");
    });
}
