//! Benchmarks of the o3 tables and kernels: `cargo bench -p equivariant-core --bench o3`.

use divan::Bencher;
use equivariant_core::o3::{Normalization, SphericalHarmonicsPlan, wigner_3j::Wigner3j, wigner_d};
use rand::{Rng, SeedableRng};

fn main() {
    divan::main();
}

/// Building a Wigner 3j table from scratch (the cache bypassed).
#[divan::bench(args = [(1, 1, 2), (2, 2, 4), (3, 3, 6), (6, 6, 12), (12, 12, 24)])]
fn wigner_3j_build(ls: (u32, u32, u32)) -> Wigner3j {
    Wigner3j::new(ls.0, ls.1, ls.2).expect("valid triple")
}

/// A Wigner D matrix for random angles.
#[divan::bench(args = [1, 2, 4, 8, 12])]
fn wigner_d_matrix(bencher: Bencher, l: u32) {
    let _ = wigner_d(l, 0.1, 0.2, 0.3); // fill the per-l table cache
    bencher.bench(|| wigner_d(l, divan::black_box(0.4), 1.1, -0.3));
}

fn random_vectors(n: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    (0..3 * n)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect()
}

/// Harmonics up to lmax on n random vectors, f32, normalized, component.
#[divan::bench(args = [(3, 100_000), (8, 100_000), (8, 1_000_000)])]
fn spherical_harmonics_value(bencher: Bencher, (lmax, n): (u32, usize)) {
    let ls: Vec<u32> = (0..=lmax).collect();
    let sh = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Component).expect("ls");
    let x = random_vectors(n);
    let mut out = vec![0.0f32; n * sh.dim()];
    bencher.bench_local(|| sh.compute(&x, &mut out).expect("shapes"));
}

/// Harmonics and their gradients, f32.
#[divan::bench(args = [(3, 100_000), (8, 100_000), (8, 1_000_000)])]
fn spherical_harmonics_value_and_gradient(bencher: Bencher, (lmax, n): (u32, usize)) {
    let ls: Vec<u32> = (0..=lmax).collect();
    let sh = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Component).expect("ls");
    let x = random_vectors(n);
    let mut out = vec![0.0f32; n * sh.dim()];
    let mut grad = vec![0.0f32; 3 * n * sh.dim()];
    bencher.bench_local(|| {
        sh.compute_with_gradients(&x, &mut out, &mut grad)
            .expect("shapes")
    });
}
