//! `equivariant guide`: e3nn's convolution guide, step by step, on its built-in example.
//!
//! Each step prints what the guide prints; then the equivariance check, the timing
//! breakdown of the guide's last cell, and the guide's pictures (into `guide-out/`, or
//! `--out`). A graph without edges is said to be one, with no statistic over nothing;
//! a graph too large for the memory (see [`crate::memory`]) is refused up front, or its
//! timing breakdown skipped, with the memory it would need.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use equivariant::burn::tensor::{Device, IndexingUpdateOp, Int, Tensor};
use equivariant::graph::Graph;
use equivariant::nn::{Convolution, ConvolutionConfig};
use equivariant::o3::rand_matrix;
use equivariant::o3::tensor_product::TensorProductPlan;
use equivariant::ops::composed::edge_vectors_from_index;
use equivariant::ops::{gather, index_tensor, scatter_sum};
use rand::SeedableRng;

use crate::example::{features, positions, second_moment, tensor};
use crate::memory::{Budget, Estimate, Widths, expected_edges_bound, largest_fitting, mib};
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
    #[arg(long, default_value = "guide-out")]
    pub out: PathBuf,
    /// Memory the guide may use, in MiB (default: MemAvailable of /proc/meminfo at the
    /// start; no limit where it cannot be read). Over it the timing breakdown is skipped,
    /// or the run refused up front.
    #[arg(long, hide = true)]
    pub memory_budget_mib: Option<u64>,
    /// Edges per chunk of the story's statistics.
    #[arg(long, hide = true, default_value_t = 1 << 15)]
    pub chunk_edges: usize,
}

/// Runs the guide; errors are reported by `main`.
pub fn guide(args: &GuideArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Read before the guide allocates anything large.
    let budget = Budget::new(args.memory_budget_mib);
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    if args.nodes < 2 {
        return Err(format!("--nodes must be at least 2, got {}", args.nodes).into());
    }
    if args.chunk_edges == 0 {
        return Err("--chunk-edges must be at least 1".into());
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
    let plan = conv.tp.plan();
    let widths = Widths::new(&config, conv.irreps_sh().dim(), plan.weight_numel());

    println!(
        "e3nn's convolution guide, in Rust: {n} nodes, max_radius {}, seed {}",
        args.radius, args.seed
    );
    println!("\n  f'_i = 1/sqrt(z) sum_(j in N(i)) f_j (x)(h(|x_ij|)) Y(x_ij / |x_ij|)\n");
    println!("irreps_input  = {}", config.irreps_in);
    println!("irreps_output = {}", config.irreps_out);

    // Memory, before the graph: refuse a size whose expected graph alone cannot fit.
    let expected_edges = expected_edges_bound(n, args.radius);
    let estimate = Estimate::new(&widths, n, expected_edges, args.chunk_edges);
    if let Some(budget) = budget
        && estimate.required() > budget.bytes
    {
        let edges = format!("about {expected_edges} edges expected");
        return Err(refusal(
            &widths,
            n,
            expected_edges,
            &edges,
            args.chunk_edges,
            &estimate,
            budget,
        )
        .into());
    }

    // Graph.
    let pos = tensor(positions(n, &mut rng), n, 3, &device);
    let graph = conv.graph(&pos)?;
    let num_edges = graph.num_edges();
    println!(
        "\nradius_graph(pos, {}): edge_src.shape = [{num_edges}]",
        args.radius
    );
    if num_edges == 0 {
        // Every statistic over edges would be a mean over nothing (NaN), num_neighbors
        // the guard value 1, and the equivariance check a comparison of zeros.
        println!(
            "no edges: no two of the {n} nodes are closer than max_radius {}, so every \
             neighborhood is empty and f_out is zero; the statistics over edges (num_neighbors, \
             sh, the embedding, the weights, the summand), the equivariance check and the \
             timing breakdown have nothing to measure (a larger --radius gives the graph edges)",
            args.radius
        );
        return write_pictures(&args.out, &config, plan);
    }

    // Memory, now that the edges are counted: refuse what cannot fit before building
    // anything per edge.
    let estimate = Estimate::new(&widths, n, num_edges, args.chunk_edges);
    if let Some(budget) = budget
        && estimate.required() > budget.bytes
    {
        let edges = format!("{num_edges} edges");
        return Err(refusal(
            &widths,
            n,
            num_edges,
            &edges,
            args.chunk_edges,
            &estimate,
            budget,
        )
        .into());
    }

    let z = conv.num_neighbors(num_edges, n);
    println!("num_neighbors = len(edge_src) / num_nodes = {z:.4}");
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
    if progress {
        eprintln!(
            "the story over {num_edges} edges, {} at a time...",
            args.chunk_edges
        );
    }
    story(&conv, &graph, &pos, &f_in, args.chunk_edges, &device)?;

    // Equivariance.
    let check = equivariance(&conv, &config, &f_in, &pos, &graph, &mut rng, &device)?;
    println!(
        "\nequivariance: conv(f_in D_in^T, pos R^T) vs conv(f_in, pos) D_out^T: max |diff| = {:.3e}, \
         allclose(rtol=1e-4, atol=1e-4) = {}",
        check.max_error,
        if check.passed { "PASS" } else { "FAIL" }
    );
    if let Some(rotated_edges) = check.rotated_edges {
        println!(
            "the radius graph of the rotated positions is not the same ({rotated_edges} edges \
             against {num_edges}): pairs at max_radius cross it under f32 rounding, and the \
             guide's radial basis (cutoff={}) does not vanish there; both sides of the check \
             used the graph of the unrotated positions (the same pairs in exact arithmetic)",
            config.cutoff
        );
    }

    // Timing breakdown: the unfused stages hold every per-edge tensor at once.
    match budget {
        Some(budget) if estimate.breakdown > budget.bytes => {
            let fitting =
                largest_fitting(&widths, n, num_edges, args.chunk_edges, budget.bytes, |e| {
                    e.breakdown
                });
            println!(
                "\ntiming breakdown skipped: its unfused stages hold every per-edge tensor at \
                 once (the weights alone are [{num_edges}, {}]), about {} MiB, more than the {} \
                 MiB of {}{}",
                plan.weight_numel(),
                mib(estimate.breakdown),
                mib(budget.bytes),
                budget.source,
                match fitting {
                    Some(nodes) => format!("; about {nodes} nodes fit at this radius"),
                    None => String::new(),
                }
            );
        }
        _ => {
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
        }
    }
    let fused_ms = median_ms(args.reps.max(1), 1, || {
        conv.forward_graph(f_in.clone(), pos.clone(), &graph)?;
        Ok(())
    })?;
    println!(
        "the same convolution fused (nn::Convolution's default path, graph given): {fused_ms:.3} ms"
    );

    write_pictures(&args.out, &config, plan)?;
    if !check.passed {
        return Err("the equivariance check failed".into());
    }
    Ok(())
}

/// The error of a run whose `estimate` for `nodes` nodes and `edges` edges (described by
/// `edges_text`) exceeds `budget`: what it would need, and the largest size that fits.
fn refusal(
    widths: &Widths,
    nodes: usize,
    edges: usize,
    edges_text: &str,
    chunk_edges: usize,
    estimate: &Estimate,
    budget: Budget,
) -> String {
    let fitting = largest_fitting(
        widths,
        nodes,
        edges,
        chunk_edges,
        budget.bytes,
        Estimate::required,
    );
    format!(
        "the guide on {nodes} nodes ({edges_text}) needs about {} MiB, more than the {} MiB \
         of {} (the fused convolution of the equivariance check holds the graph, its \
         harmonics and the MLP's hidden activations for every edge, about {} MiB; the story \
         holds {} edges' tensors at a time, about {} MiB); {}",
        mib(estimate.required()),
        mib(budget.bytes),
        budget.source,
        mib(estimate.fused),
        edges.min(chunk_edges),
        mib(estimate.story),
        match fitting {
            Some(nodes) => format!("about {nodes} nodes fit at this radius"),
            None => "not even 2 nodes fit".into(),
        }
    )
}

/// Writes the guide's pictures into `dir` and says where they went.
fn write_pictures(
    dir: &Path,
    config: &ConvolutionConfig,
    plan: &Arc<TensorProductPlan>,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let written = plots::write_guide_pictures(dir, config, plan)?;
    println!("\npictures, in {}:", dir.display());
    for path in written {
        println!("  {}", path.display());
    }
    Ok(())
}

/// The guide's story from the harmonics to `f_out`, printing what the guide prints.
/// Each statistic is a mean over edges, so it is accumulated over chunks of
/// `chunk_edges` edges and no per-edge tensor of the whole graph is ever built (the
/// weights alone would be `[E, weight_numel]`). With a single chunk (the guide's 100
/// nodes) every number is computed exactly as on the whole tensors.
fn story(
    conv: &Convolution,
    graph: &Graph,
    pos: &Tensor<2>,
    f_in: &Tensor<2>,
    chunk_edges: usize,
    device: &Device,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = conv.config();
    let plan = conv.tp.plan();
    let n = pos.dims()[0];
    let num_edges = graph.num_edges();
    let mut sh_moment = 0.0;
    let mut emb_moment = 0.0;
    let mut summand_moment = 0.0;
    let mut weight_stats = Moments::default();
    let mut f_out = Tensor::<2>::zeros([n, config.irreps_out.dim()], device);
    for start in (0..num_edges).step_by(chunk_edges) {
        let end = (start + chunk_edges).min(num_edges);
        // This chunk's share of each mean: exactly 1 for a single chunk.
        let share = (end - start) as f64 / num_edges as f64;
        let src = index_tensor(&graph.src[start..end], device);
        let dst = index_tensor(&graph.dst[start..end], device);
        let edge_vec = edge_vectors_from_index(pos.clone(), src.clone(), dst.clone());
        let sh = conv.edge_sh(edge_vec.clone())?;
        sh_moment += share * second_moment(&sh);
        let emb = conv.edge_embedding(edge_vec)?;
        emb_moment += share * second_moment(&emb);
        let weight = conv.fc.forward(emb)?;
        weight_stats.merge(Moments::of(&weight));
        let summand = conv
            .tp
            .forward(gather(f_in.clone(), src), sh, Some(weight))?;
        summand_moment += share * second_moment(&summand);
        // scatter_sum, chunk by chunk into the same output.
        f_out = f_out.select_assign(0, dst, summand, IndexingUpdateOp::Add);
    }

    // Harmonics.
    println!("\nirreps_sh = {}", conv.irreps_sh());
    println!("sh.pow(2).mean() = {sh_moment:.4}   (should be close to 1)");

    // Tensor product.
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
    println!(
        "\nedge_length_embedding = soft_one_hot_linspace(|edge_vec|, 0, {}, {}, '{}', cutoff={}) * sqrt({})",
        config.max_radius,
        config.num_basis,
        config.basis.name(),
        config.cutoff,
        config.num_basis
    );
    println!(
        "shape {:?}, second moment {emb_moment:.4}",
        [num_edges, config.num_basis]
    );
    let mut hs = vec![config.num_basis];
    hs.extend(&config.hidden);
    hs.push(plan.weight_numel());
    let (mean, std) = weight_stats.mean_std();
    println!("\nfc = FullyConnectedNet({hs:?}, {})", config.act.name());
    println!(
        "weight = fc(edge_length_embedding): shape {:?}",
        [num_edges, plan.weight_numel()]
    );
    println!("weight.mean() = {mean:.4}, weight.std() = {std:.4}   (should be close to 0 and 1)");

    // Summand and output.
    println!(
        "\nsummand = tp(f_in[edge_src], sh, weight): shape {:?}",
        [num_edges, config.irreps_out.dim()]
    );
    println!("summand.pow(2).mean() = {summand_moment:.4}   (should be close to 1)");
    let z = conv.num_neighbors(num_edges, n);
    let f_out = f_out.mul_scalar(1.0 / z.sqrt());
    println!("\nf_out = scatter(summand, edge_dst, dim_size={n}) / sqrt(num_neighbors)");
    println!(
        "f_out.pow(2).mean() = {:.4}   (should be close to 1)",
        second_moment(&f_out)
    );
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

/// Count, mean and sum of squared deviations of a set of numbers, mergeable (Chan et
/// al.'s parallel update), so that the mean and standard deviation of a tensor too large
/// to hold can be taken chunk by chunk.
#[derive(Default)]
struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    /// The moments of all entries of `x`, in f64.
    fn of(x: &Tensor<2>) -> Self {
        let data = x.to_data();
        let count = data.num_elements() as f64;
        let mean = data.iter::<f64>().sum::<f64>() / count.max(1.0);
        let m2 = data.iter::<f64>().map(|x| (x - mean) * (x - mean)).sum();
        Moments { count, mean, m2 }
    }

    /// Adds `other`'s numbers to these.
    fn merge(&mut self, other: Moments) {
        if self.count == 0.0 {
            // Exactly `other`: a single chunk gives the whole tensor's numbers.
            *self = other;
            return;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count / count;
        self.m2 += other.m2 + delta * delta * self.count * other.count / count;
        self.count = count;
    }

    /// Mean and (unbiased, as torch) standard deviation.
    fn mean_std(&self) -> (f64, f64) {
        let var = self.m2 / (self.count - 1.0).max(1.0);
        (self.mean, var.sqrt())
    }
}

/// The outcome of the guide's equivariance check.
struct Equivariance {
    max_error: f64,
    passed: bool,
    /// The edge count of the rotated positions' radius graph, when that graph is not the
    /// one of `pos` rotated (the more likely the more edges); both sides then ran on the
    /// graph of `pos`.
    rotated_edges: Option<usize>,
}

/// The guide's check: rotate the inputs before, or the output after. `graph` is the
/// radius graph of `pos` (`conv.forward` would build the same again); the rotated
/// positions get theirs, as `conv.forward` builds it, unless f32 rounding gives them
/// another edge set (then both sides run on `graph`).
fn equivariance(
    conv: &Convolution,
    config: &ConvolutionConfig,
    f_in: &Tensor<2>,
    pos: &Tensor<2>,
    graph: &Graph,
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
    let rotated_pos = pos.clone().matmul(r.transpose());
    let rotated_graph = conv.graph(&rotated_pos)?;
    // Distances are invariant, so in exact arithmetic the rotated positions have the same
    // radius graph. When f32 rounding moves a pair across max_radius, the rotated side
    // takes the graph of `pos` instead: the check is then of the convolution on the same
    // pairs, and the difference in the graphs is reported, not counted as an error.
    let rotated_edges = (!same_edges(&rotated_graph, graph)).then_some(rotated_graph.num_edges());
    let rotated_side_graph = if rotated_edges.is_some() {
        graph
    } else {
        &rotated_graph
    };
    let before = conv.forward_graph(
        f_in.clone().matmul(d_in.transpose()),
        rotated_pos,
        rotated_side_graph,
    )?;
    drop(rotated_graph);
    let after = conv
        .forward_graph(f_in.clone(), pos.clone(), graph)?
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
    Ok(Equivariance {
        max_error,
        passed,
        rotated_edges,
    })
}

/// Whether two radius graphs of the same nodes have the same edges. The radius graph
/// lists edges grouped by destination; within a group, the sources come in the order of
/// its cell traversal, which a rotation changes, so each group is compared as a set.
fn same_edges(a: &Graph, b: &Graph) -> bool {
    if a.dst != b.dst {
        return false;
    }
    let mut start = 0;
    while start < a.dst.len() {
        let run = a.dst[start..].iter().take_while(|&&d| d == a.dst[start]);
        let end = start + run.count();
        let (mut x, mut y) = (a.src[start..end].to_vec(), b.src[start..end].to_vec());
        x.sort_unstable();
        y.sort_unstable();
        if x != y {
            return false;
        }
        start = end;
    }
    true
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
        let edge_vec = edge_vectors_from_index(pos.clone(), src.clone(), dst.clone());
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
