//! `equivariant guide`: e3nn's convolution guide, step by step, on its built-in example.

use std::time::Instant;

use equivariant::graph::radius_graph;
use equivariant::math::{soft_one_hot_linspace, Basis};
use equivariant::o3::{
    irreps::RandnNormalization, Irreps, Normalization, Parity, SphericalHarmonics,
};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Options of `equivariant guide`.
#[derive(clap::Args)]
pub struct GuideArgs {
    /// Number of random nodes.
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Cutoff radius of the graph and the radial basis.
    #[arg(long, default_value_t = 1.8)]
    radius: f64,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn second_moment(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
}

pub fn guide(args: &GuideArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    if args.nodes < 2 {
        return Err(format!("--nodes must be at least 2, got {}", args.nodes).into());
    }
    if !(args.radius.is_finite() && args.radius > 0.0) {
        return Err(format!("--radius must be positive, got {}", args.radius).into());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let irreps_input: Irreps = "10x0e + 10x1e".parse()?;
    let irreps_output: Irreps = "20x0e + 10x1e".parse()?;
    println!(
        "irreps_input  = {irreps_input}  (dim {})",
        irreps_input.dim()
    );
    println!(
        "irreps_output = {irreps_output}  (dim {})",
        irreps_output.dim()
    );

    let n = args.nodes;
    let pos: Vec<f64> = (0..3 * n)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let wall = Instant::now();
    let graph = radius_graph(&pos, args.radius, Some(n - 1), None)?;
    let edge_vec = graph.edge_vec(&pos, None)?;
    let graph_time = wall.elapsed();
    let num_edges = edge_vec.len() / 3;
    println!(
        "\n{n} nodes, {num_edges} edges, average degree z = {:.3}",
        num_edges as f64 / n as f64
    );

    let f_in: Vec<f64> = irreps_input.randn(n, RandnNormalization::Component, &mut rng);
    println!(
        "f_in.pow(2).mean()  = {:.4}   (should be close to 1)",
        second_moment(&f_in)
    );

    let irreps_sh = Irreps::spherical_harmonics(2, Parity::Odd);
    println!("\nirreps_sh = {irreps_sh}");
    let wall = Instant::now();
    let sh = SphericalHarmonics::new(&irreps_sh, true, Normalization::Component)?;
    let mut y = vec![0.0; num_edges * sh.dim()];
    sh.compute(&edge_vec, &mut y)?;
    let sh_time = wall.elapsed();
    println!(
        "sh.pow(2).mean()    = {:.4}   (should be close to 1)",
        second_moment(&y)
    );

    let num_basis = 10;
    let wall = Instant::now();
    let lengths: Vec<f64> = edge_vec
        .chunks(3)
        .map(|v| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt())
        .collect();
    let mut emb = soft_one_hot_linspace(
        &lengths,
        0.0,
        args.radius,
        num_basis,
        Basis::SmoothFinite,
        true,
    )?;
    let scale = (num_basis as f64).sqrt();
    emb.iter_mut().for_each(|e| *e *= scale);
    let emb_time = wall.elapsed();
    println!("\nedge_length_embedding: [{num_edges}, {num_basis}]");
    println!(
        "embedding.pow(2).mean() = {:.4}   (the second moment)",
        second_moment(&emb)
    );

    let tp = equivariant::o3::tensor_product::fully_connected_tensor_product(
        &irreps_input,
        &irreps_sh,
        &irreps_output,
        equivariant::o3::tensor_product::TensorProductOptions {
            shared_weights: false,
            ..Default::default()
        },
    )?;
    println!("\n{tp} needs {} weights", tp.weight_numel());
    println!("\nnot yet ported: FullyConnectedNet, the convolution and its equivariance check (issues 4-5).");
    println!(
        "\ntiming (s): graph {:.6}  harmonics {:.6}  embedding {:.6}",
        graph_time.as_secs_f64(),
        sh_time.as_secs_f64(),
        emb_time.as_secs_f64()
    );
    Ok(())
}
