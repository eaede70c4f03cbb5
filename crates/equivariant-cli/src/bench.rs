//! `equivariant bench`: time our kernels on the standard configurations, on this machine.
//!
//! One JSON object per line with `--json`, read by `tools/reference/compare_tp.py`.

use equivariant::Real;
use equivariant::burn::module::{Module, Param};
use equivariant::burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::forces::{EnergyForces, LossDerivatives, energy_forces, training_gradients};
use equivariant::graph::Graph;
use equivariant::graph::{Batch, EdgeIndex};
use equivariant::math::ActivationFunction;
use equivariant::nn::models::SimpleNetworkConfig;
use equivariant::nn::{Convolution, ConvolutionConfig, Gate};
use equivariant::o3::tensor_product::{
    BENCHMARK_CONFIGS, TensorProductGradients, TensorProductPlan, benchmark_config,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::bench_signals::{RtpArgs, S2Args, ShArgs, bench_rtp, bench_s2, bench_sh};

use crate::example::{features, positions, randn, tensor};
use crate::timing::{interleaved_medians_ms, median_ms};
use crate::worker::on_worker;

/// The benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// A tensor product with per-row weights: forward, and forward + backward of sum(out^2).
    Tp(TpArgs),
    /// The guide's convolution on a random graph at the guide's density, fused (the default
    /// path) and unfused: forward, and forward + backward of sum(out^2) to the features,
    /// positions and MLP weights.
    Conv(ConvArgs),
    /// One force-training step of a potential (`--case guide`: the guide's convolution;
    /// `model`: three of them with gates between): the energy `E = sum(f_out * c)` and its
    /// forces, then the gradient of the loss `(E - e_ref)^2 + mean((F - f_ref)^2)` with
    /// respect to every parameter (through the forces: a second derivative); against the
    /// energy-only forward + backward.
    TrainStep(TrainStepArgs),
    /// e3nn's `SimpleNetwork` (v2106; `--mul 50`, `--layers 3`, `--lmax 2`, radius 2.5, `3x0e +
    /// 2x1o -> 4x0e + 1x1o`) on one graph at the guide's density: forward, and forward +
    /// backward of sum(out^2) to the positions, the inputs and every parameter.
    Model(ModelArgs),
    /// This machine's memory read bandwidth: the floor under any kernel that must stream its
    /// inputs (a tensor product's per-row weights: `batch x weight_numel x 4` bytes in f32).
    Bandwidth(BandwidthArgs),
    /// e3nn's `ToS2Grid` and `FromS2Grid` (component normalization) on random signals:
    /// forward, and forward + backward.
    S2(S2Args),
    /// The construction of e3nn's `ReducedTensorProducts` for a formula.
    Rtp(RtpArgs),
    /// The spherical harmonics of every degree up to `--lmax` (normalized input, component
    /// normalization): the values, and the values with their gradient.
    Sh(ShArgs),
}

/// Options of `equivariant bench bandwidth`.
#[derive(clap::Args)]
pub struct BandwidthArgs {
    /// Buffer size in MiB (far above the last-level cache, so reads come from memory).
    #[arg(long, default_value_t = 512)]
    mib: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

/// Options shared by the benchmarks on random graphs at the guide's density
/// (`bench conv`, `bench train-step`).
#[derive(clap::Args)]
pub struct GraphArgs {
    /// Nodes (positions randn * (nodes/100)^(1/3), the guide's density).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Seed of the positions, features and weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The positions from a text file instead of drawn: `3 x nodes` numbers (`x y z` per
    /// line, as numpy's `savetxt` writes them). `compare_conv.py` passes e3nn's, so both
    /// sides time the same graph.
    #[arg(long)]
    positions: Option<std::path::PathBuf>,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

impl GraphArgs {
    /// The positions `[nodes, 3]`: drawn from `rng` (always, so what is drawn after them does
    /// not depend on `--positions`), or read from `--positions`.
    fn positions(&self, rng: &mut rand::rngs::StdRng) -> Result<Vec<f32>, String> {
        let drawn = positions(self.nodes, rng);
        let Some(path) = &self.positions else {
            return Ok(drawn);
        };
        let name = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("--positions {name}: {e}"))?;
        let values = text
            .split_whitespace()
            .map(|word| match word.parse::<f64>().map(|x| x as f32) {
                // Checked in f32: a number past f32's range would be infinite there.
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(format!(
                    "--positions {name}: {word:?} is not a finite number"
                )),
            })
            .collect::<Result<Vec<f32>, String>>()?;
        if values.len() != 3 * self.nodes {
            return Err(format!(
                "--positions {name}: {} numbers, but --nodes {} needs {}",
                values.len(),
                self.nodes,
                3 * self.nodes
            ));
        }
        Ok(values)
    }

    /// A graph needs at least two nodes.
    fn check_nodes(&self) -> Result<(), String> {
        if self.nodes < 2 {
            return Err(format!("--nodes must be at least 2, got {}", self.nodes));
        }
        Ok(())
    }
}

/// Options of `equivariant bench train-step`.
#[derive(clap::Args)]
pub struct TrainStepArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// The potential: `guide` (the guide's convolution) or `model` (three guide
    /// convolutions, each of the first two followed by a gate: silu on 10 scalars, 10
    /// sigmoid gates on 10 vectors).
    #[arg(long, value_enum, default_value_t = TrainCase::Guide)]
    case: TrainCase,
}

/// Options of `equivariant bench model`.
#[derive(clap::Args)]
pub struct ModelArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// Multiplicity of each hidden irrep.
    #[arg(long, default_value_t = 50)]
    mul: usize,
    /// Gated layers.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Degree of the harmonics and hidden irreps.
    #[arg(long, default_value_t = 2)]
    lmax: u32,
    /// The graph's cutoff.
    #[arg(long, default_value_t = 2.5)]
    max_radius: f64,
}

/// The potentials of `bench train-step`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TrainCase {
    /// The guide's convolution.
    Guide,
    /// Three guide convolutions with gates between.
    Model,
}

/// Options of `equivariant bench conv`.
#[derive(clap::Args)]
pub struct ConvArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// Skip the unfused path (its per-edge buffers need ~0.27 GB per 1000 nodes).
    #[arg(long)]
    fused_only: bool,
    /// The tensor product: `guide` (the guide's `nn::Convolution`), or a standard
    /// configuration of `bench tp` (e.g. `mace-medium`, `nequip-aspirin`) as a convolution
    /// with per-edge weights from the guide's radial MLP, harmonics `irreps_in2`, on the
    /// radius-1.5 graph of the guide's positions (average degree ~30).
    #[arg(long, default_value = "guide")]
    config: String,
}

/// The options of the benchmarks that time a kernel on random data (`tp`, `s2`, `sh`).
#[derive(clap::Args)]
pub struct KernelRunArgs {
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Run in f64 instead of f32.
    #[arg(long)]
    pub f64: bool,
    /// One JSON object per result instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `equivariant bench tp`.
#[derive(clap::Args)]
pub struct TpArgs {
    /// Configuration name (`all` for every one).
    #[arg(long, default_value = "guide")]
    config: String,
    /// Rows (edges).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    #[command(flatten)]
    run: KernelRunArgs,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    threads: Option<usize>,
}

fn set_threads(threads: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(threads) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()?;
    }
    Ok(())
}

pub fn run(command: &BenchCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        BenchCommand::Conv(args) => {
            set_threads(args.graph.threads)?;
            on_worker(|| bench_conv(args))
        }
        BenchCommand::TrainStep(args) => {
            set_threads(args.graph.threads)?;
            on_worker(|| bench_train_step(args))
        }
        BenchCommand::Bandwidth(args) => {
            set_threads(args.threads)?;
            bench_bandwidth(args)
        }
        BenchCommand::Model(args) => {
            set_threads(args.graph.threads)?;
            on_worker(|| bench_model(args))
        }
        BenchCommand::S2(args) => bench_s2(args),
        BenchCommand::Rtp(args) => bench_rtp(args),
        BenchCommand::Sh(args) => bench_sh(args),
        BenchCommand::Tp(args) => {
            set_threads(args.threads)?;
            let names: Vec<&str> = if args.config == "all" {
                BENCHMARK_CONFIGS.to_vec()
            } else {
                vec![args.config.as_str()]
            };
            if !args.run.json {
                println!(
                    "{:<16} {:>8} {:>12} {:>16} {:>12} {:>12} {:>16}",
                    "config",
                    "batch",
                    "fwd ms",
                    "fwd+bwd ms",
                    "fwd GFLOP/s",
                    "module fwd",
                    "module fwd+bwd"
                );
            }
            for name in names {
                let tp = benchmark_config(name)?;
                if args.run.f64 {
                    bench_tp::<f64>(name, &tp, args)?;
                } else {
                    bench_tp::<f32>(name, &tp, args)?;
                }
            }
            Ok(())
        }
    }
}

/// Sums a `mib`-MiB f32 buffer in parallel (64 KiB per task, sixteen partial sums per task so
/// the loop is bound by loads, not by an addition chain) and reports bytes per second.
fn bench_bandwidth(args: &BandwidthArgs) -> Result<(), Box<dyn std::error::Error>> {
    use rayon::prelude::*;
    // At least one MiB, and the report names the size measured.
    let mib = args.mib.max(1);
    let len = mib << 18;
    let data: Vec<f32> = (0..len).map(|i| (i % 7) as f32).collect();
    let mut total = 0.0f32;
    let ms = median_ms(args.reps, 1, || {
        total = data
            .par_chunks(1 << 14)
            .map(|chunk| {
                let mut acc = [0.0f32; 16];
                for block in chunk.chunks_exact(16) {
                    acc.iter_mut().zip(block).for_each(|(a, &x)| *a += x);
                }
                acc.iter().sum::<f32>()
            })
            .sum();
        Ok(())
    })?;
    std::hint::black_box(total);
    let gbps = (len * 4) as f64 / (ms * 1e-3) / 1e9;
    let threads = rayon::current_num_threads();
    if args.json {
        println!(
            "{{\"read_gbps\": {gbps:.2}, \"mib\": {mib}, \"median_ms\": {ms:.3}, \"threads\": {threads}}}"
        );
    } else {
        println!(
            "read {:.1} GB/s ({mib} MiB in {ms:.2} ms, median of {}, {threads} threads)",
            gbps, args.reps
        );
    }
    Ok(())
}

fn bench_tp<T: Real>(
    name: &str,
    tp: &TensorProductPlan,
    args: &TpArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    use rayon::prelude::*;
    let batch = args.batch;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut randn = |n: usize| -> Vec<T> {
        (0..n)
            .map(|_| T::from_f64(rng.sample(StandardNormal)))
            .collect()
    };
    let (d1, d2, d3) = (
        tp.irreps_in1().dim(),
        tp.irreps_in2().dim(),
        tp.irreps_out().dim(),
    );
    let w_len = if tp.shared_weights() {
        tp.weight_numel()
    } else {
        batch * tp.weight_numel()
    };
    let (x1, x2, w) = (randn(batch * d1), randn(batch * d2), randn(w_len));
    let mut out = vec![T::zero(); batch * d3];
    let fwd_ms = median_ms(args.run.reps, args.run.warmup, || {
        tp.forward(&x1, &x2, &w, &mut out)
    })?;

    let (mut g1, mut g2, mut gw) = (
        vec![T::zero(); x1.len()],
        vec![T::zero(); x2.len()],
        vec![T::zero(); w.len()],
    );
    let mut grad_out = vec![T::zero(); out.len()];
    let fwd_bwd_ms = median_ms(args.run.reps, args.run.warmup, || {
        tp.forward(&x1, &x2, &w, &mut out)?;
        // d sum(out^2) / d out = 2 out, on every thread as torch's `pow(2).sum().backward()`
        // runs it: a serial loop here was a fifth to a third of the timing at batch 10 000
        // (2 threads, alternated, forward+backward ms: roofline-l5 30.5-38.3 -> 23.0-23.8,
        // mace-large 187-208 -> 153-165).
        grad_out
            .par_iter_mut()
            .zip(out.par_iter())
            .for_each(|(g, &y)| *g = y + y);
        tp.backward(
            &x1,
            &x2,
            &w,
            &grad_out,
            TensorProductGradients {
                x1: Some(&mut g1),
                x2: Some(&mut g2),
                weight: Some(&mut gw),
            },
        )
    })?;
    let (module_fwd_ms, module_fwd_bwd_ms) = bench_tp_module(tp, [&x1, &x2, &w], args)?;
    let flops = 2.0 * tp.forward_macs_per_row() as f64 * batch as f64;
    let gflops = flops / (fwd_ms * 1e-3) / 1e9;
    if args.run.json {
        println!(
            "{{\"config\": \"{name}\", \"batch\": {batch}, \"dtype\": \"{}\", \"ours_fwd_ms\": {fwd_ms:.4}, \"ours_fwd_bwd_ms\": {fwd_bwd_ms:.4}, \"module_fwd_ms\": {module_fwd_ms:.4}, \"module_fwd_bwd_ms\": {module_fwd_bwd_ms:.4}, \"fwd_flops\": {flops}, \"threads\": {}}}",
            if args.run.f64 { "f64" } else { "f32" },
            rayon::current_num_threads()
        );
    } else {
        println!(
            "{name:<16} {batch:>8} {fwd_ms:>12.3} {fwd_bwd_ms:>16.3} {gflops:>12.2} {module_fwd_ms:>12.3} {module_fwd_bwd_ms:>16.3}"
        );
    }
    Ok(())
}

/// The same product through the burn module on Flex (`o3::TensorProduct` with external
/// weights, `ops::tensor_product`): forward, and forward + backward of `sum(out^2)` by
/// burn's autodiff to `x1`, `x2` and the weights. Returns the two medians in ms.
fn bench_tp_module<T: Real>(
    tp: &TensorProductPlan,
    [x1, x2, w]: [&[T]; 3],
    args: &TpArgs,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let batch = args.batch;
    let rows = if tp.shared_weights() { 1 } else { batch };
    let module = equivariant::o3::TensorProduct::with_external_weights(tp.clone());
    let dtype = if args.run.f64 { DType::F64 } else { DType::F32 };
    let to_f64 = |v: &[T]| {
        v.iter()
            .map(|&x| <T as Real>::to_f64(x))
            .collect::<Vec<f64>>()
    };
    let (x1, x2, w) = (to_f64(x1), to_f64(x2), to_f64(w));
    let inputs = |device: &Device| {
        [
            typed_tensor(&x1, [batch, tp.irreps_in1().dim()], device, dtype),
            typed_tensor(&x2, [batch, tp.irreps_in2().dim()], device, dtype),
            typed_tensor(&w, [rows, tp.weight_numel()], device, dtype),
        ]
    };
    let weight = |w: Tensor<2>| (tp.weight_numel() > 0).then_some(w);
    let device = Device::flex();
    let [a, b, c] = inputs(&device);
    let fwd_ms = median_ms(args.run.reps, args.run.warmup, || {
        let out = module.forward(a.clone(), b.clone(), weight(c.clone()))?;
        std::hint::black_box(out);
        Ok(())
    })?;
    let device = Device::flex().autodiff();
    let [a, b, c] = inputs(&device).map(|t| t.require_grad());
    let fwd_bwd_ms = median_ms(args.run.reps, args.run.warmup, || {
        let out = module.forward(a.clone(), b.clone(), weight(c.clone()))?;
        let grads = out.powi_scalar(2).sum().backward();
        std::hint::black_box([a.grad(&grads), b.grad(&grads), c.grad(&grads)]);
        Ok(())
    })?;
    Ok((fwd_ms, fwd_bwd_ms))
}

/// A `[rows, cols]` tensor of `data` on `device` in `dtype`.
fn typed_tensor(data: &[f64], shape: [usize; 2], device: &Device, dtype: DType) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data.to_vec(), shape), (device, dtype))
}

/// Resets the peak resident memory Linux reports (`VmHWM`), where it can.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory in MiB (`VmHWM`), where Linux reports it.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn bench_model(args: &ModelArgs) -> Result<(), Box<dyn std::error::Error>> {
    args.graph.check_nodes()?;
    let n = args.graph.nodes;
    let device = Device::flex();
    device.seed(args.graph.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.graph.seed);
    let pos_data = args.graph.positions(&mut rng)?;
    // num_neighbors: the graph's average degree, as the guide normalizes.
    let pos = tensor(pos_data.clone(), n, 3, &device);
    let graph = equivariant::graph::radius_graph(&pos_data, args.max_radius, None, None)?;
    let edges = graph.num_edges();
    let config = SimpleNetworkConfig {
        mul: args.mul,
        layers: args.layers,
        lmax: args.lmax,
        ..SimpleNetworkConfig::new(
            &"3x0e + 2x1o".parse()?,
            &"4x0e + 1x1o".parse()?,
            args.max_radius,
            (edges as f64 / n as f64).max(1.0),
            n as f64,
        )
    };
    let net = config.init(&device)?;
    let x_data = features(&config.irreps_in, n, &mut rng);
    let x = tensor(x_data.clone(), n, config.irreps_in.dim(), &device);
    reset_peak();
    let fwd_ms = median_ms(args.graph.reps, args.graph.warmup, || {
        std::hint::black_box(net.forward(pos.clone(), x.clone(), None)?);
        Ok(())
    })?;
    let autodiff = device.clone().autodiff();
    let net_ad = net.clone().fork(&autodiff);
    let pos_ad = tensor(pos_data, n, 3, &autodiff);
    let x_ad = tensor(x_data, n, config.irreps_in.dim(), &autodiff);
    let fwd_bwd_ms = median_ms(args.graph.reps, args.graph.warmup, || {
        let (p, x) = (pos_ad.clone().require_grad(), x_ad.clone().require_grad());
        let grads = net_ad
            .forward(p.clone(), x.clone(), None)?
            .powi_scalar(2)
            .sum()
            .backward();
        std::hint::black_box((p.grad(&grads), x.grad(&grads)));
        Ok(())
    })?;
    let peak = peak_mib().unwrap_or(f64::NAN);
    if args.graph.json {
        println!(
            "{{\"model\": \"SimpleNetwork\", \"nodes\": {n}, \"edges\": {edges}, \"mul\": {}, \"layers\": {}, \"lmax\": {}, \"ours_fwd_ms\": {fwd_ms:.3}, \"ours_fwd_bwd_ms\": {fwd_bwd_ms:.3}, \"ours_peak_mib\": {peak:.0}, \"threads\": {}}}",
            args.mul,
            args.layers,
            args.lmax,
            rayon::current_num_threads()
        );
    } else {
        println!(
            "SimpleNetwork (mul {}, layers {}, lmax {}), {n} nodes, {edges} edges: forward {fwd_ms:.2} ms, forward+backward {fwd_bwd_ms:.2} ms, peak {peak:.0} MiB",
            args.mul, args.layers, args.lmax
        );
    }
    Ok(())
}

fn bench_conv(args: &ConvArgs) -> Result<(), Box<dyn std::error::Error>> {
    args.graph.check_nodes()?;
    if args.config != "guide" {
        return bench_conv_plan(args);
    }
    let n = args.graph.nodes;
    let device = Device::flex();
    device.seed(args.graph.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.graph.seed);
    let config = ConvolutionConfig::guide();
    let conv = config.init(&device)?;
    let pos_data = args.graph.positions(&mut rng)?;
    let f_data = features(&config.irreps_in, n, &mut rng);
    let pos = tensor(pos_data.clone(), n, 3, &device);
    let f_in = tensor(f_data.clone(), n, config.irreps_in.dim(), &device);
    let graph = conv.graph(&pos)?;

    // The same model and inputs, tracked.
    let autodiff = device.clone().autodiff();
    let conv_ad = conv.clone().fork(&autodiff);
    let pos_ad = tensor(pos_data, n, 3, &autodiff);
    let f_ad = tensor(f_data, n, config.irreps_in.dim(), &autodiff);

    let forward = |f: Tensor<2>, p: Tensor<2>, conv: &Convolution, fused: bool| {
        if fused {
            conv.forward_graph(f, p, &graph)
        } else {
            conv.forward_graph_unfused(f, p, &graph)
        }
    };
    let timings = time_variants(
        args,
        |fused| forward(f_in.clone(), pos.clone(), &conv, fused).map(drop),
        |fused| {
            let (f, p) = (f_ad.clone().require_grad(), pos_ad.clone().require_grad());
            let _grads = forward(f, p, &conv_ad, fused)?
                .powi_scalar(2)
                .sum()
                .backward();
            Ok(())
        },
    )?;
    let (max_dev, max_abs) = f64_deviation(&conv, &f_in, &pos, &graph)?;
    print_conv(args, graph.num_edges(), timings, Some((max_dev, max_abs)));
    Ok(())
}

/// The potential of `bench train-step`: convolutions with the guide's settings, a gate
/// after each but the last, `E = sum(f_out * c)`.
struct GatedConvolutions {
    convs: Vec<Convolution>,
    gate: Gate,
    f_in: Tensor<2>,
    c: Tensor<2>,
    graph: Graph,
}

impl GatedConvolutions {
    fn energy(&self, r: Tensor<2>) -> equivariant::Result<Tensor<1>> {
        let mut h = self.f_in.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            if i > 0 {
                h = self.gate.forward(h)?;
            }
            h = conv.forward_edges(h, r.clone(), &self.graph)?;
        }
        Ok(h.mul(self.c.clone()).sum())
    }

    /// The energy and its tangent along the edge-vector direction `s`.
    fn energy_tangent(
        &self,
        r: Tensor<2>,
        s: Tensor<2>,
    ) -> equivariant::Result<(Tensor<1>, Tensor<1>)> {
        let (mut h, mut dh) = (self.f_in.clone(), None);
        for conv in &self.convs {
            if let Some(d) = dh.take() {
                let (x, dx) = self.gate.forward_tangent(h, d)?;
                (h, dh) = (x, Some(dx));
            }
            let (x, dx) = conv.forward_edges_tangent(h, r.clone(), s.clone(), dh, &self.graph)?;
            (h, dh) = (x, Some(dx));
        }
        let dh = dh.expect("at least one convolution");
        Ok((h.mul(self.c.clone()).sum(), dh.mul(self.c.clone()).sum()))
    }
}

/// `bench train-step`: a potential of guide convolutions (f32, fused path, parameters
/// tracked). The energy-only step is the energy and its backward to the edge vectors and
/// every parameter ([`energy_forces`]); the training step ([`training_gradients`]) adds the
/// loss's derivatives and the tangent pass and its backward.
fn bench_train_step(args: &TrainStepArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (case, args) = (args.case, &args.graph);
    args.check_nodes()?;
    let n = args.nodes;
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let config = ConvolutionConfig::guide();
    let layers = match case {
        TrainCase::Guide => 1,
        TrainCase::Model => 3,
    };
    let convs = (0..layers)
        .map(|_| config.init(&device))
        .collect::<Result<Vec<_>, _>>()?;
    let silu = Some(ActivationFunction::Silu);
    let gate = Gate::new(
        &"10x0e".parse()?,
        &[silu],
        &"10x0e".parse()?,
        &[Some(ActivationFunction::Sigmoid)],
        &"10x1e".parse()?,
    )?;
    let pos = args.positions(&mut rng)?;
    let f_in = tensor(features(&config.irreps_in, n, &mut rng), n, 40, &device);
    let d_out = config.irreps_out.dim();
    let c = tensor(randn(n * d_out, &mut rng), n, d_out, &device);
    let f_ref = tensor(randn(n * 3, &mut rng), n, 3, &device);
    let graph = convs[0].graph(&tensor(pos.clone(), n, 3, &device))?;
    let edges = EdgeIndex::new(&graph.src, &graph.dst, n)?;
    let batch = Batch::single(n);
    let r = tensor(graph.edge_vec(&pos, None)?, graph.num_edges(), 3, &device);
    let model = GatedConvolutions {
        convs,
        gate,
        f_in,
        c,
        graph,
    };
    let energy = |r: Tensor<2>| model.energy(r);

    let energy_only = || {
        std::hint::black_box(energy_forces(&edges, &batch, r.clone(), energy)?);
        Ok(())
    };
    let train_step = || {
        let loss = |result: &EnergyForces| {
            let e = result.energy.clone().into_scalar::<f32>() as f64;
            let residual = result.forces.clone().sub(f_ref.clone());
            Ok(LossDerivatives {
                energy: vec![2.0 * e],
                forces: residual.mul_scalar(2.0 / (3 * n) as f64),
                virial: None,
            })
        };
        let step = training_gradients(
            &edges,
            &batch,
            r.clone(),
            energy,
            loss,
            |r, s| model.energy_tangent(r, s),
            false,
        )?;
        let grads = step.gradients;
        let weight_grads: Vec<_> = model
            .convs
            .iter()
            .flat_map(|conv| conv.fc.weights.iter().map(|w| w.grad(&grads)))
            .collect();
        std::hint::black_box(weight_grads);
        Ok(())
    };
    // Peaks from one call of each alone; the times alternate the two (their ratio is the
    // median of per-pair ratios, robust to the machine's load drifting between blocks).
    reset_peak();
    energy_only()?;
    let energy_peak = peak_mib();
    reset_peak();
    train_step()?;
    let step_peak = peak_mib();
    let (energy_fwd_bwd, step, ratio) =
        interleaved_medians_ms(args.reps, args.warmup, energy_only, train_step)?;
    let mib = |p: Option<f64>| p.map_or_else(|| "null".into(), |p| format!("{p:.1}"));
    let name = match case {
        TrainCase::Guide => "guide",
        TrainCase::Model => "model",
    };
    let edges = model.graph.num_edges();
    if args.json {
        println!(
            "{{\"case\": \"{name}\", \"nodes\": {n}, \"edges\": {edges}, \"step_ms\": {step:.4}, \"energy_fwd_bwd_ms\": {energy_fwd_bwd:.4}, \"step_over_energy\": {ratio:.3}, \"step_peak_mib\": {}, \"energy_peak_mib\": {}, \"threads\": {}}}",
            mib(step_peak),
            mib(energy_peak),
            rayon::current_num_threads()
        );
    } else {
        println!(
            "{name}, {n} nodes, {edges} edges: training step {step:.3} ms (peak {} MiB), energy forward+backward {energy_fwd_bwd:.3} ms (peak {} MiB), ratio {ratio:.2} (median of alternated pairs)",
            mib(step_peak),
            mib(energy_peak),
        );
    }
    Ok(())
}

/// Timings `(fwd, fwd_bwd, peak)` of the fused and unfused paths.
type ConvTimings = Vec<(Option<f64>, Option<f64>, Option<f64>)>;

/// Median forward and forward + backward times of the fused path (`true`), then unless
/// `--fused-only` of the unfused one, each with the peak memory after it (the peak is reset
/// before the unfused path, so each is its own).
fn time_variants(
    args: &ConvArgs,
    mut forward: impl FnMut(bool) -> Result<(), equivariant::Error> + Send,
    mut forward_backward: impl FnMut(bool) -> Result<(), equivariant::Error> + Send,
) -> Result<ConvTimings, equivariant::Error> {
    let variants: &[bool] = if args.fused_only {
        &[true]
    } else {
        &[true, false]
    };
    let mut timings = Vec::new();
    for &fused in variants {
        if !fused {
            reset_peak();
        }
        let fwd = median_ms(args.graph.reps, args.graph.warmup, || forward(fused))?;
        let fwd_bwd = median_ms(args.graph.reps, args.graph.warmup, || {
            forward_backward(fused)
        })?;
        timings.push((Some(fwd), Some(fwd_bwd), peak_mib()));
    }
    Ok(timings)
}

/// Prints one `bench conv` result (JSON or a table row).
fn print_conv(args: &ConvArgs, edges: usize, mut timings: ConvTimings, dev: Option<(f64, f64)>) {
    let n = args.graph.nodes;
    timings.resize(2, (None, None, None));
    let [
        (fwd_ms, fwd_bwd_ms, peak),
        (unfused_fwd_ms, unfused_fwd_bwd_ms, unfused_peak),
    ] = [timings[0], timings[1]];
    let num = |p: Option<f64>, digits: usize| {
        p.map_or_else(|| "null".into(), |p| format!("{p:.digits$}"))
    };
    let mib = |p| num(p, 1);
    let ms = |p| num(p, 4);
    let (max_dev, max_abs) = match dev {
        Some((d, a)) => (format!("{d:.3e}"), format!("{a:.3e}")),
        None => ("null".into(), "null".into()),
    };
    if args.graph.json {
        println!(
            "{{\"config\": \"{}\", \"nodes\": {n}, \"edges\": {edges}, \"fwd_ms\": {}, \"fwd_bwd_ms\": {}, \"unfused_fwd_ms\": {}, \"unfused_fwd_bwd_ms\": {}, \"peak_mib\": {}, \"unfused_peak_mib\": {}, \"max_dev_f64\": {max_dev}, \"max_abs_f64\": {max_abs}, \"threads\": {}}}",
            args.config,
            ms(fwd_ms),
            ms(fwd_bwd_ms),
            ms(unfused_fwd_ms),
            ms(unfused_fwd_bwd_ms),
            mib(peak),
            mib(unfused_peak),
            rayon::current_num_threads()
        );
    } else {
        println!(
            "{:>8} {:>10} {:>10} {:>12} {:>12} {:>14} {:>10} {:>12}",
            "nodes",
            "edges",
            "fwd ms",
            "fwd+bwd ms",
            "unfused fwd",
            "unfused f+b",
            "peak MiB",
            "unfused MiB"
        );
        println!(
            "{n:>8} {edges:>10} {:>10} {:>12} {:>12} {:>14} {:>10} {:>12}",
            num(fwd_ms, 3),
            num(fwd_bwd_ms, 3),
            num(unfused_fwd_ms, 3),
            num(unfused_fwd_bwd_ms, 3),
            mib(peak),
            mib(unfused_peak)
        );
        if dev.is_some() {
            println!("fused f32 vs f64: max |diff| {max_dev} (max |out| {max_abs})");
        }
    }
}

/// The radius of the `bench conv --config NAME` graphs: average degree ~30 at the guide's
/// density (~55 at 1.8 and 10000 nodes, scaling as the cube).
const PLAN_RADIUS: f64 = 1.5;

/// `bench conv --config NAME`: a standard tensor product as a convolution, fused and
/// unfused, built from the ops (`nn::Convolution` is the guide's fully connected product).
fn bench_conv_plan(args: &ConvArgs) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;

    use equivariant::graph::{EdgeIndex, radius_graph};
    use equivariant::math::{ActivationFunction, Basis, SoftOneHotLinspace};
    use equivariant::nn::FullyConnectedNet;
    use equivariant::o3::Normalization;
    use equivariant::o3::spherical_harmonics::SphericalHarmonicsPlan;
    use equivariant::ops::{
        edge_vectors, fused_convolution, gather, index_tensor, radial_layer, scatter_sum,
        soft_one_hot_linspace, spherical_harmonics, tensor_product,
    };

    let n = args.graph.nodes;
    let plan = Arc::new(benchmark_config(&args.config)?);
    let device = Device::flex();
    device.seed(args.graph.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.graph.seed);
    let pos_data = args.graph.positions(&mut rng)?;
    let f_data = features(plan.irreps_in1(), n, &mut rng);
    let graph = radius_graph(&pos_data, PLAN_RADIUS, None, None)?;
    let edges = Arc::new(EdgeIndex::new(&graph.src, &graph.dst, n)?);
    let (src, dst) = (
        index_tensor(&graph.src, &device),
        index_tensor(&graph.dst, &device),
    );
    let sh = Arc::new(SphericalHarmonicsPlan::new(
        plan.irreps_in2(),
        true,
        Normalization::Component,
    )?);
    let num_basis = 10;
    let basis = SoftOneHotLinspace::new(0.0, PLAN_RADIUS, num_basis, Basis::SmoothFinite, false)?;
    let basis_scale = (num_basis as f64).sqrt();
    let fc = FullyConnectedNet::new(
        &[num_basis, 16, plan.weight_numel()],
        Some(ActivationFunction::Relu),
        &device,
    )?;
    let layer = Arc::new(
        fc.first_radial_layer(&basis, basis_scale)
            .expect("a hidden layer"),
    );
    let basis = Arc::new(basis);
    let z = (graph.num_edges().max(1) as f64 / n as f64).sqrt().recip();
    let e = graph.num_edges();
    let forward = |f: Tensor<2>, p: Tensor<2>, fc: &FullyConnectedNet, fused: bool| {
        let ev = edge_vectors(&edges, p);
        let y = spherical_harmonics(&sh, ev.clone());
        if fused {
            let hidden =
                fc.forward_hidden_after_first(radial_layer(&layer, ev, fc.weights[0].val()))?;
            let linear = fc.last_linear().expect("a linear last layer");
            return Ok(fused_convolution(&plan, &edges, f, y, hidden, linear, z));
        }
        let length = ev.powi_scalar(2).sum_dim(1).sqrt().reshape([e]);
        let weight = fc.forward(soft_one_hot_linspace(&basis, length).mul_scalar(basis_scale))?;
        let summand = tensor_product(&plan, gather(f, src.clone()), y, weight);
        Ok::<_, equivariant::Error>(scatter_sum(summand, dst.clone(), n).mul_scalar(z))
    };
    let autodiff = device.clone().autodiff();
    let fc_ad = fc.clone().fork(&autodiff);
    let d1 = plan.irreps_in1().dim();
    let (pos, f_in) = (
        tensor(pos_data.clone(), n, 3, &device),
        tensor(f_data.clone(), n, d1, &device),
    );
    let (pos_ad, f_ad) = (
        tensor(pos_data, n, 3, &autodiff),
        tensor(f_data, n, d1, &autodiff),
    );
    let timings = time_variants(
        args,
        |fused| {
            drop(forward(f_in.clone(), pos.clone(), &fc, fused)?);
            Ok(())
        },
        |fused| {
            let (f, p) = (f_ad.clone().require_grad(), pos_ad.clone().require_grad());
            let _grads = forward(f, p, &fc_ad, fused)?
                .powi_scalar(2)
                .sum()
                .backward();
            Ok(())
        },
    )?;
    print_conv(args, e, timings, None);
    Ok(())
}

/// The fused convolution in f32 against the same inputs and weights in f64: the largest
/// deviation and the largest output magnitude.
fn f64_deviation(
    conv: &Convolution,
    f_in: &Tensor<2>,
    pos: &Tensor<2>,
    graph: &equivariant::graph::Graph,
) -> Result<(f64, f64), equivariant::Error> {
    let mut conv64 = conv.clone();
    conv64.fc.weights = conv
        .fc
        .weights
        .iter()
        .map(|w| Param::from_tensor(w.val().cast(DType::F64)))
        .collect();
    let out32 = conv.forward_graph(f_in.clone(), pos.clone(), graph)?;
    let out64 = conv64.forward_graph(
        f_in.clone().cast(DType::F64),
        pos.clone().cast(DType::F64),
        graph,
    )?;
    let (a, b): (Vec<f64>, Vec<f64>) = (
        out32.to_data().iter::<f64>().collect(),
        out64.to_data().iter::<f64>().collect(),
    );
    let max_dev = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let max_abs = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    Ok((max_dev, max_abs))
}
