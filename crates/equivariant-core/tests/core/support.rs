//! Helpers the topic modules share: random data and runs on a pool of a given size.

use rand::Rng;
use rand_distr::StandardNormal;

/// `n` standard normal samples.
pub fn randn(rng: &mut impl Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// `v` rounded to f32.
pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// `f` run on a rayon pool of `threads` workers (for results that must not depend on the
/// thread count).
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
        .install(f)
}

// The reference products below are written with slices and zips: the tests build with
// light optimization, where indexed triple loops spent most of a test's time in range
// iteration and bounds checks.

/// `a b` for row-major `a: [m, k]` and `b: [k, n]`, each entry summed over `k` in order.
pub fn matmul_reference(a: &[f64], b: &[f64], k: usize, n: usize) -> Vec<f64> {
    assert!(k > 0 && n > 0 && a.len().is_multiple_of(k) && b.len() == k * n);
    let mut out = vec![0.0; a.len() / k * n];
    for (row, a_row) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
        for (&x, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (o, &y) in row.iter_mut().zip(b_row) {
                *o += x * y;
            }
        }
    }
    out
}

/// `a b^T` for row-major `a: [m, q]` and `b: [n, q]`, each entry summed over `q` in order.
pub fn matmul_nt_reference(a: &[f64], b: &[f64], q: usize) -> Vec<f64> {
    assert!(q > 0 && a.len().is_multiple_of(q) && b.len().is_multiple_of(q));
    a.chunks_exact(q)
        .flat_map(|a_row| {
            b.chunks_exact(q)
                .map(move |b_row| a_row.iter().zip(b_row).fold(0.0, |s, (&x, &y)| s + x * y))
        })
        .collect()
}

/// `a^T b` for row-major `a: [r, m]` and `b: [r, n]`, each entry summed over `r` in order.
pub fn matmul_tn_reference(a: &[f64], b: &[f64], m: usize, n: usize) -> Vec<f64> {
    assert!(m > 0 && n > 0 && a.len().is_multiple_of(m) && b.len() / n == a.len() / m);
    let mut out = vec![0.0; m * n];
    for (a_row, b_row) in a.chunks_exact(m).zip(b.chunks_exact(n)) {
        for (&x, out_row) in a_row.iter().zip(out.chunks_exact_mut(n)) {
            for (o, &y) in out_row.iter_mut().zip(b_row) {
                *o += x * y;
            }
        }
    }
    out
}
