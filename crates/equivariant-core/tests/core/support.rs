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
