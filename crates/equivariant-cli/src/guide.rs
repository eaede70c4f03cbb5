//! `equivariant guide`: e3nn's convolution guide, step by step, on its built-in example.
//!
//! Each step prints what the guide prints; then the equivariance check, the timing
//! breakdown of the guide's last cell, and (with `--out`) the guide's pictures.

use std::path::PathBuf;

use equivariant::burn::tensor::{Device, Int, Tensor};
use equivariant::nn::{Convolution, ConvolutionConfig};
use equivariant::o3::rand_matrix;
use equivariant::ops::{gather, index_tensor, scatter_sum};
use rand::SeedableRng;

use crate::example::{features, positions, second_moment, tensor};
use crate::plots;
use crate::timing::median_ms;

/// Options of `equivariant guide`.
#[derive(clap::Args)]
pub struct GuideArgs {
    /// Number of random nodes (positions are scaled by (nodes/100)^(1/3) to keep the
    /// guide's density).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Cutoff radius of the graph and the radial basis.
    #[arg(long, default_value_t = 1.8)]
    pub radius: f64,
    /// Seed of every random draw (positions, features, MLP weights, rotation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed repetitions of each stage of the timing breakdown (the median is shown).
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Folder for the guide's pictures (radial basis and tensor product, SVG and PNG).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs the guide; errors are reported by `main`.
pub fn guide(args: &GuideArgs) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    if args.nodes < 2 {
        return Err(format!("--nodes must be at least 2, got {}", args.nodes).into());
    }
    let n = args.nodes;
    let progress = n >= 20_000;
    let device = Device::flex();
    device.seed(args.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let config = ConvolutionConfig {
        max_radius: args.radius,
        ..ConvolutionConfig::guide()
    };
    let conv = config.init(&device)?;

    println!(
        "e3nn's convolution guide, in Rust: {n} nodes, max_radius {}, seed {}",
        args.radius, args.seed
    );
    println!("\n  f'_i = 1/sqrt(z) sum_(j in N(i)) f_j (x)(h(|x_ij|)) Y(x_ij / |x_ij|)\n");
    println!("irreps_input  = {}", config.irreps_in);
    println!("irreps_output = {}", config.irreps_out);

    // Graph.
    let pos = tensor(positions(n, &mut rng), n, 3, &device);
    let graph = conv.graph(&pos)?;
    let num_edges = graph.num_edges();
    let z = conv.num_neighbors(num_edges, n);
    println!(
        "\nradius_graph(pos, {}): edge_src.shape = [{num_edges}]",
        args.radius
    );
    println!("num_neighbors = len(edge_src) / num_nodes = {z:.4}");
    let (src, dst) = edge_index(&graph, &device);
    let edge_vec = gather(pos.clone(), dst.clone()).sub(gather(pos.clone(), src.clone()));

    let f_in = tensor(
        features(&config.irreps_in, n, &mut rng),
        n,
        config.irreps_in.dim(),
        &device,
    );
    println!("\nf_in = irreps_input.randn({n}, -1)");
    println!(
        "f_in.pow(2).mean() = {:.4}   (should be close to 1)",
        second_moment(&f_in)
    );

    // Harmonics.
    println!("\nirreps_sh = {}", conv.irreps_sh());
    let sh = conv.edge_sh(edge_vec.clone())?;
    println!(
        "sh.pow(2).mean() = {:.4}   (should be close to 1)",
        second_moment(&sh)
    );

    // Tensor product.
    let plan = conv.tp.plan();
    println!("\n{plan} needs {} weights", plan.weight_numel());
    let used: Vec<usize> = plan.instructions().iter().map(|ins| ins.i_in2).collect();
    for (i, mul_ir) in conv.irreps_sh().iter().enumerate() {
        if !used.contains(&i) {
            println!(
                "the {} component of the harmonics cannot be used with these irreps: \
                 equivariance (here to inversion) forbids every path through it",
                mul_ir.ir
            );
        }
    }

    // Embedding and MLP.
    let emb = conv.edge_embedding(edge_vec.clone())?;
    println!(
        "\nedge_length_embedding = soft_one_hot_linspace(|edge_vec|, 0, {}, {}, '{}', cutoff={}) * sqrt({})",
        args.radius,
        config.num_basis,
        config.basis.name(),
        config.cutoff,
        config.num_basis
    );
    println!(
        "shape {:?}, second moment {:.4}",
        emb.dims(),
        second_moment(&emb)
    );
    let mut hs = vec![config.num_basis];
    hs.extend(&config.hidden);
    hs.push(plan.weight_numel());
    let weight = conv.fc.forward(emb.clone())?;
    let (mean, std) = mean_std(&weight);
    println!("\nfc = FullyConnectedNet({hs:?}, {})", config.act.name());
    println!(
        "weight = fc(edge_length_embedding): shape {:?}",
        weight.dims()
    );
    println!("weight.mean() = {mean:.4}, weight.std() = {std:.4}   (should be close to 0 and 1)");

    // Summand and output.
    let summand = conv
        .tp
        .forward(gather(f_in.clone(), src.clone()), sh, Some(weight))?;
    println!(
        "\nsummand = tp(f_in[edge_src], sh, weight): shape {:?}",
        summand.dims()
    );
    println!(
        "summand.pow(2).mean() = {:.4}   (should be close to 1)",
        second_moment(&summand)
    );
    let f_out = scatter_sum(summand, dst.clone(), n).mul_scalar(1.0 / z.sqrt());
    println!("\nf_out = scatter(summand, edge_dst, dim_size={n}) / sqrt(num_neighbors)");
    println!(
        "f_out.pow(2).mean() = {:.4}   (should be close to 1)",
        second_moment(&f_out)
    );

    // Equivariance.
    let check = equivariance(&conv, &config, &f_in, &pos, &mut rng, &device)?;
    println!(
        "\nequivariance: conv(f_in D_in^T, pos R^T) vs conv(f_in, pos) D_out^T: max |diff| = {:.3e}, \
         allclose(rtol=1e-4, atol=1e-4) = {}",
        check.max_error,
        if check.passed { "PASS" } else { "FAIL" }
    );

    // Timing breakdown.
    if progress {
        eprintln!("timing the stages ({} reps each)...", args.reps);
    }
    let stages = time_stages(&conv, &f_in, &pos, args.reps.max(1), progress)?;
    let total: f64 = stages.iter().map(|s| s.1).sum();
    println!(
        "\ntiming (median of {} runs, {} threads):",
        args.reps.max(1),
        rayon::current_num_threads()
    );
    println!("  {:<16} {:>10} {:>7}", "stage", "ms", "share");
    for (name, ms) in &stages {
        println!("  {name:<16} {ms:>10.3} {:>6.1}%", 100.0 * ms / total);
    }
    println!("  {:<16} {total:>10.3} {:>6.1}%", "total", 100.0);
    let graph = conv.graph(&pos)?;
    let fused_ms = median_ms(args.reps.max(1), 1, || {
        conv.forward_graph(f_in.clone(), pos.clone(), &graph)?;
        Ok(())
    })?;
    println!(
        "the same convolution fused (nn::Convolution's default path, graph given): {fused_ms:.3} ms"
    );

    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)?;
        let written = plots::write_guide_pictures(dir, &config, plan)?;
        println!("\npictures:");
        for path in written {
            println!("  {}", path.display());
        }
    }
    if !check.passed {
        return Err("the equivariance check failed".into());
    }
    Ok(())
}

/// The graph's edges as int tensors (the radius graph's indices are in range).
fn edge_index(
    graph: &equivariant::graph::Graph,
    device: &Device,
) -> (Tensor<1, Int>, Tensor<1, Int>) {
    (
        index_tensor(&graph.src, device),
        index_tensor(&graph.dst, device),
    )
}

/// Mean and (unbiased, as torch) standard deviation of all entries.
fn mean_std(x: &Tensor<2>) -> (f64, f64) {
    let v: Vec<f64> = x.to_data().iter::<f64>().collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The outcome of the guide's equivariance check.
struct Equivariance {
    max_error: f64,
    passed: bool,
}

/// The guide's check: rotate the inputs before, or the output after.
fn equivariance(
    conv: &Convolution,
    config: &ConvolutionConfig,
    f_in: &Tensor<2>,
    pos: &Tensor<2>,
    rng: &mut rand::rngs::StdRng,
    device: &Device,
) -> Result<Equivariance, Box<dyn std::error::Error>> {
    let rot = rand_matrix(rng);
    let matrix = |d: Vec<f64>, dim: usize| {
        tensor(d.into_iter().map(|x| x as f32).collect(), dim, dim, device)
    };
    let d_in = matrix(
        config.irreps_in.d_from_matrix(&rot)?,
        config.irreps_in.dim(),
    );
    let d_out = matrix(
        config.irreps_out.d_from_matrix(&rot)?,
        config.irreps_out.dim(),
    );
    let r = matrix(rot.iter().flatten().copied().collect(), 3);
    let before = conv.forward(
        f_in.clone().matmul(d_in.transpose()),
        pos.clone().matmul(r.transpose()),
    )?;
    let after = conv
        .forward(f_in.clone(), pos.clone())?
        .matmul(d_out.transpose());
    let (a, b): (Vec<f64>, Vec<f64>) = (
        before.to_data().iter::<f64>().collect(),
        after.to_data().iter::<f64>().collect(),
    );
    let max_error = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let passed = a
        .iter()
        .zip(&b)
        .all(|(a, b)| (a - b).abs() <= 1e-4 + 1e-4 * b.abs());
    Ok(Equivariance { max_error, passed })
}

/// The guide's last cell: each stage timed on its own (median of `reps`, after one
/// warm-up), in milliseconds. Flex is eager: each stage's work is done when it returns.
fn time_stages(
    conv: &Convolution,
    f_in: &Tensor<2>,
    pos: &Tensor<2>,
    reps: usize,
    progress: bool,
) -> Result<Vec<(&'static str, f64)>, equivariant::Error> {
    let device = pos.device();
    let n = pos.dims()[0];
    let note = |name: &str| {
        if progress {
            eprintln!("  {name}...");
        }
    };
    let edges = |graph: &equivariant::graph::Graph| {
        let (src, dst) = edge_index(graph, &device);
        let edge_vec = gather(pos.clone(), dst.clone()).sub(gather(pos.clone(), src.clone()));
        (src, dst, edge_vec)
    };
    note("radius_graph");
    let graph_ms = median_ms(reps, 1, || {
        edges(&conv.graph(pos)?);
        Ok(())
    })?;
    let graph = conv.graph(pos)?;
    let (src, dst, edge_vec) = edges(&graph);
    note("harmonics");
    let sh_ms = median_ms(reps, 1, || {
        conv.edge_sh(edge_vec.clone())?;
        Ok(())
    })?;
    let sh = conv.edge_sh(edge_vec.clone())?;
    note("embedding");
    let emb_ms = median_ms(reps, 1, || {
        conv.edge_embedding(edge_vec.clone())?;
        Ok(())
    })?;
    let emb = conv.edge_embedding(edge_vec)?;
    note("mlp");
    let mlp_ms = median_ms(reps, 1, || {
        conv.fc.forward(emb.clone())?;
        Ok(())
    })?;
    let weight = conv.fc.forward(emb)?;
    let summand = || {
        conv.tp.forward(
            gather(f_in.clone(), src.clone()),
            sh.clone(),
            Some(weight.clone()),
        )
    };
    note("tensor_product");
    let tp_ms = median_ms(reps, 1, || {
        summand()?;
        Ok(())
    })?;
    let summand = summand()?;
    let z = conv.num_neighbors(graph.num_edges(), n);
    note("scatter");
    let scatter_ms = median_ms(reps, 1, || {
        scatter_sum(summand.clone(), dst.clone(), n).mul_scalar(1.0 / z.sqrt());
        Ok(())
    })?;
    Ok(vec![
        ("radius_graph", graph_ms),
        ("harmonics", sh_ms),
        ("embedding", emb_ms),
        ("mlp", mlp_ms),
        ("tensor_product", tp_ms),
        ("scatter", scatter_ms),
    ])
}
