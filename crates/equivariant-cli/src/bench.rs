//! `equivariant bench`: time our kernels on the standard configurations, on this machine.
//!
//! One JSON object per line with `--json`, read by `tools/reference/compare_tp.py`.

use std::time::Instant;

use equivariant::burn::module::{Module, Param};
use equivariant::burn::tensor::{DType, Device, Tensor, TensorData};
use equivariant::nn::{Convolution, ConvolutionConfig};
use equivariant::o3::tensor_product::{
    benchmark_config, TensorProduct, TensorProductGradients, BENCHMARK_CONFIGS,
};
use equivariant::Real;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::example::{features, positions, tensor};

/// The benchmarks.
#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// A tensor product with per-row weights: forward, and forward + backward of sum(out^2).
    Tp(TpArgs),
    /// The guide's convolution on a random graph at the guide's density, fused (the default
    /// path) and unfused: forward, and forward + backward of sum(out^2) to the features,
    /// positions and MLP weights.
    Conv(ConvArgs),
}

/// Options of `equivariant bench conv`.
#[derive(clap::Args)]
pub struct ConvArgs {
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
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object instead of a table row.
    #[arg(long)]
    json: bool,
    /// Skip the unfused path (its per-edge buffers need ~0.27 GB per 1000 nodes).
    #[arg(long)]
    fused_only: bool,
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
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Run in f64 instead of f32.
    #[arg(long)]
    f64: bool,
    /// Worker threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    threads: Option<usize>,
    /// One JSON object per configuration instead of a table row.
    #[arg(long)]
    json: bool,
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
            set_threads(args.threads)?;
            bench_conv(args)
        }
        BenchCommand::Tp(args) => {
            set_threads(args.threads)?;
            let names: Vec<&str> = if args.config == "all" {
                BENCHMARK_CONFIGS.to_vec()
            } else {
                vec![args.config.as_str()]
            };
            if !args.json {
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
                if args.f64 {
                    bench_tp::<f64>(name, &tp, args)?;
                } else {
                    bench_tp::<f32>(name, &tp, args)?;
                }
            }
            Ok(())
        }
    }
}

/// Median of `reps` timings of `f`, in milliseconds, after `warmup` untimed calls.
pub fn median_ms(
    reps: usize,
    warmup: usize,
    mut f: impl FnMut() -> Result<(), equivariant::Error>,
) -> Result<f64, equivariant::Error> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn bench_tp<T: Real>(
    name: &str,
    tp: &TensorProduct,
    args: &TpArgs,
) -> Result<(), Box<dyn std::error::Error>> {
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
    let fwd_ms = median_ms(args.reps, args.warmup, || {
        tp.forward(&x1, &x2, &w, &mut out)
    })?;

    let (mut g1, mut g2, mut gw) = (
        vec![T::zero(); x1.len()],
        vec![T::zero(); x2.len()],
        vec![T::zero(); w.len()],
    );
    let mut grad_out = vec![T::zero(); out.len()];
    let fwd_bwd_ms = median_ms(args.reps, args.warmup, || {
        tp.forward(&x1, &x2, &w, &mut out)?;
        // d sum(out^2) / d out = 2 out
        grad_out.iter_mut().zip(&out).for_each(|(g, &y)| *g = y + y);
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
    if args.json {
        println!(
            "{{\"config\": \"{name}\", \"batch\": {batch}, \"dtype\": \"{}\", \"ours_fwd_ms\": {fwd_ms:.4}, \"ours_fwd_bwd_ms\": {fwd_bwd_ms:.4}, \"module_fwd_ms\": {module_fwd_ms:.4}, \"module_fwd_bwd_ms\": {module_fwd_bwd_ms:.4}, \"fwd_flops\": {flops}, \"threads\": {}}}",
            if args.f64 { "f64" } else { "f32" },
            rayon::current_num_threads()
        );
    } else {
        println!("{name:<16} {batch:>8} {fwd_ms:>12.3} {fwd_bwd_ms:>16.3} {gflops:>12.2} {module_fwd_ms:>12.3} {module_fwd_bwd_ms:>16.3}");
    }
    Ok(())
}

/// The same product through the burn module on Flex (`o3::TensorProduct` with external
/// weights, `ops::tensor_product`): forward, and forward + backward of `sum(out^2)` by
/// burn's autodiff to `x1`, `x2` and the weights. Returns the two medians in ms.
fn bench_tp_module<T: Real>(
    tp: &TensorProduct,
    [x1, x2, w]: [&[T]; 3],
    args: &TpArgs,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let batch = args.batch;
    let rows = if tp.shared_weights() { 1 } else { batch };
    let module = equivariant::o3::TensorProduct::with_external_weights(tp.clone());
    let dtype = if args.f64 { DType::F64 } else { DType::F32 };
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
    let fwd_ms = median_ms(args.reps, args.warmup, || {
        let out = module.forward(a.clone(), b.clone(), weight(c.clone()));
        std::hint::black_box(out);
        Ok(())
    })?;
    let device = Device::flex().autodiff();
    let [a, b, c] = inputs(&device).map(|t| t.require_grad());
    let fwd_bwd_ms = median_ms(args.reps, args.warmup, || {
        let out = module.forward(a.clone(), b.clone(), weight(c.clone()));
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

fn bench_conv(args: &ConvArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.nodes < 2 {
        return Err(format!("--nodes must be at least 2, got {}", args.nodes).into());
    }
    let n = args.nodes;
    let device = Device::flex();
    device.seed(args.seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let config = ConvolutionConfig::guide();
    let conv = config.init(&device)?;
    let pos_data = positions(n, &mut rng);
    let f_data = features(&config.irreps_in, n, &mut rng);
    let pos = tensor(pos_data.clone(), n, 3, &device);
    let f_in = tensor(f_data.clone(), n, config.irreps_in.dim(), &device);
    let graph = conv.graph(&pos)?;

    // The same model and inputs, tracked.
    let autodiff = device.clone().autodiff();
    let conv_ad = conv.clone().fork(&autodiff);
    let pos_ad = tensor(pos_data, n, 3, &autodiff);
    let f_ad = tensor(f_data, n, config.irreps_in.dim(), &autodiff);

    // The default (fused) path first, so the peak memory read after it is its own.
    let mut timings = Vec::new();
    let variants: &[bool] = if args.fused_only {
        &[true]
    } else {
        &[true, false]
    };
    for &fused in variants {
        if !fused {
            reset_peak();
        }
        let forward = |f: Tensor<2>, p: Tensor<2>, conv: &Convolution| {
            if fused {
                conv.forward_graph(f, p, &graph)
            } else {
                conv.forward_graph_unfused(f, p, &graph)
            }
        };
        let fwd = median_ms(args.reps, args.warmup, || {
            forward(f_in.clone(), pos.clone(), &conv)?;
            Ok(())
        })?;
        let fwd_bwd = median_ms(args.reps, args.warmup, || {
            let (f, p) = (f_ad.clone().require_grad(), pos_ad.clone().require_grad());
            let _grads = forward(f, p, &conv_ad)?.powi_scalar(2).sum().backward();
            Ok(())
        })?;
        timings.push((Some(fwd), Some(fwd_bwd), peak_mib()));
    }
    timings.resize(2, (None, None, None));
    let [(fwd_ms, fwd_bwd_ms, peak), (unfused_fwd_ms, unfused_fwd_bwd_ms, unfused_peak)] =
        [timings[0], timings[1]];
    let (max_dev, max_abs) = f64_deviation(&conv, &f_in, &pos, &graph)?;
    let edges = graph.num_edges();
    let num = |p: Option<f64>, digits: usize| {
        p.map_or_else(|| "null".into(), |p| format!("{p:.digits$}"))
    };
    let mib = |p| num(p, 1);
    let ms = |p| num(p, 4);
    if args.json {
        println!(
            "{{\"nodes\": {n}, \"edges\": {edges}, \"fwd_ms\": {}, \"fwd_bwd_ms\": {}, \"unfused_fwd_ms\": {}, \"unfused_fwd_bwd_ms\": {}, \"peak_mib\": {}, \"unfused_peak_mib\": {}, \"max_dev_f64\": {max_dev:.3e}, \"max_abs_f64\": {max_abs:.3e}, \"threads\": {}}}",
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
        println!("fused f32 vs f64: max |diff| {max_dev:.3e} (max |out| {max_abs:.3e})");
    }
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
