//! Benchmarks of the graph helpers: `cargo bench -p equivariant-core --bench graph`.
//!
//! `radius_graph` at the convolution guide's density: `pos = randn(N, 3) * (N / 100)^(1/3)`,
//! `r = 1.8` (about 54 neighbours per atom), for N = 1e4, 1e5, 1e6.
//!
//! `GRAPH_BENCH_N=1000000 target/release/deps/graph-* --peak` builds one graph of that size
//! outside divan (after `GRAPH_BENCH_REPS - 1` warm-up builds) and prints its edge count and
//! time; run it under `/usr/bin/time -v` for the peak memory.

use divan::Bencher;
use equivariant_core::graph::{Cell, radius_graph, scatter_sum};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

fn main() {
    if std::env::args().any(|a| a == "--peak") {
        let n = std::env::var("GRAPH_BENCH_N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        let pos = guide_positions(n);
        let reps: usize = std::env::var("GRAPH_BENCH_REPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        for _ in 1..reps {
            radius_graph(&pos, 1.8, None, None).expect("valid positions");
        }
        let (cpu0, start) = (cpu_seconds(), std::time::Instant::now());
        let g = radius_graph(&pos, 1.8, None, None).expect("valid positions");
        let (wall, cpu1) = (start.elapsed().as_secs_f64(), cpu_seconds());
        println!(
            "n = {n}: {} edges ({:.1} per atom) in {wall:.3} s (process CPU time: user {:.2} s, system {:.2} s)",
            g.num_edges(),
            g.num_edges() as f64 / n as f64,
            cpu1.0 - cpu0.0,
            cpu1.1 - cpu0.1,
        );
        return;
    }
    divan::main();
}

/// (user, system) CPU seconds of this process so far, from `/proc/self/stat` (Linux; zeros
/// elsewhere), assuming 100 clock ticks per second.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): state is field 3, utime 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) / 100.0, ticks(12) / 100.0)
}

/// `randn(N, 3) * (N / 100)^(1/3)`, f32, seeded.
fn guide_positions(n: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let scale = (n as f64 / 100.0).cbrt() as f32;
    (0..3 * n)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
        .collect()
}

/// The guide's graph build (open boundaries, unlimited neighbours).
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 10, sample_size = 1)]
fn radius_graph_guide(bencher: Bencher, n: usize) {
    let pos = guide_positions(n);
    bencher.bench_local(|| radius_graph(&pos, 1.8, None, None).expect("valid positions"));
}

/// The guide's positions plus one atom 1e6 away: the grid keeps occupied bins only (sorted
/// keys and binary search instead of a dense table).
#[divan::bench(args = [100_000], sample_count = 10, sample_size = 1)]
fn radius_graph_far_outlier(bencher: Bencher, n: usize) {
    let mut pos = guide_positions(n);
    pos.extend([1e6, -1e6, 1e6]);
    bencher.bench_local(|| radius_graph(&pos, 1.8, None, None).expect("valid positions"));
}

/// The guide's graph with `max_num_neighbors = 32` (torch_cluster's default).
#[divan::bench(args = [100_000], sample_count = 10, sample_size = 1)]
fn radius_graph_max_32(bencher: Bencher, n: usize) {
    let pos = guide_positions(n);
    bencher.bench_local(|| radius_graph(&pos, 1.8, Some(32), None).expect("valid positions"));
}

/// Periodic cubic box at the same mean density as the guide's core (~1.6 atoms per unit volume).
#[divan::bench(args = [10_000, 100_000], sample_count = 10, sample_size = 1)]
fn radius_graph_periodic(bencher: Bencher, n: usize) {
    let side = (n as f64 / 1.6).cbrt();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let pos: Vec<f32> = (0..3 * n)
        .map(|_| rng.random::<f32>() * side as f32)
        .collect();
    let cell = Cell::orthorhombic([side; 3], [true; 3]).expect("cell");
    bencher.bench_local(|| radius_graph(&pos, 1.8, None, Some(&cell)).expect("valid positions"));
}

/// Summing `[E, 16]` edge features into nodes, the guide's graph at N = 1e5.
#[divan::bench(sample_count = 10)]
fn scatter_sum_guide(bencher: Bencher) {
    let n = 100_000;
    let g = radius_graph(&guide_positions(n), 1.8, None, None).expect("valid positions");
    let src = vec![1.0f32; g.num_edges() * 16];
    bencher.bench_local(|| scatter_sum(&src, &g.dst, n, 16).expect("shapes"));
}
