//! `equivariant bench s2`, `bench rtp` and `bench sh`: the sphere-grid transforms, the
//! construction of reduced tensor products and the spherical harmonics, read by
//! `tools/reference/compare_s2.py` and `compare_sh.py`.

use std::collections::BTreeMap;

use equivariant::o3::{
    FromS2GridPlan, Normalization, ReducedTensorProducts, SphericalHarmonicsPlan, ToS2GridPlan,
};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

use crate::bench::KernelRunArgs;
use crate::timing::median_ms;

/// Options of `equivariant bench s2`.
#[derive(clap::Args)]
pub struct S2Args {
    /// Degree of the signals.
    #[arg(long, default_value_t = 8)]
    lmax: u32,
    /// Signals per call.
    #[arg(long, default_value_t = 10_000)]
    signals: usize,
    /// Betas of the grid (default: e3nn's, 2 (lmax + 1)).
    #[arg(long)]
    res_beta: Option<usize>,
    /// Alphas of the grid (default: e3nn's, max(2 lmax + 1, res_beta - 1)).
    #[arg(long)]
    res_alpha: Option<usize>,
    #[command(flatten)]
    run: KernelRunArgs,
}

/// Options of `equivariant bench rtp`.
#[derive(clap::Args)]
pub struct RtpArgs {
    /// The index formula.
    #[arg(long, default_value = "ijkl=jikl=klij")]
    formula: String,
    /// The irreps of every index.
    #[arg(long, default_value = "1o")]
    irreps: String,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// One JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

/// Options of `equivariant bench sh`.
#[derive(clap::Args)]
pub struct ShArgs {
    /// The largest degree (every degree up to it is computed).
    #[arg(long, default_value_t = 3)]
    lmax: u32,
    /// Vectors per call.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[command(flatten)]
    run: KernelRunArgs,
}

/// The harmonics of degrees `0..=lmax` (normalized input, component normalization) of `n`
/// uniform vectors in `[-1, 1]^3`: the values, and the values with their gradient (the
/// Jacobian `[n, 3, dim]`, computed in the same pass).
pub fn bench_sh(args: &ShArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.run.f64 {
        run_sh::<f64>(args)
    } else {
        run_sh::<f32>(args)
    }
}

fn run_sh<T: equivariant::Real>(args: &ShArgs) -> Result<(), Box<dyn std::error::Error>> {
    let ls: Vec<u32> = (0..=args.lmax).collect();
    let sh = SphericalHarmonicsPlan::from_ls(&ls, true, Normalization::Component)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let vectors: Vec<T> = (0..3 * args.n)
        .map(|_| T::from_f64(rng.random_range(-1.0..1.0)))
        .collect();
    let dim = sh.dim();
    let (mut out, mut grad) = (
        vec![T::zero(); args.n * dim],
        vec![T::zero(); args.n * 3 * dim],
    );
    sh.compute_with_gradients(&vectors, &mut out, &mut grad)?;
    let fwd = median_ms(args.run.reps, args.run.warmup, || {
        sh.compute(&vectors, &mut out)
    })?;
    let fwd_bwd = median_ms(args.run.reps, args.run.warmup, || {
        sh.compute_with_gradients(&vectors, &mut out, &mut grad)
    })?;
    let dtype = if args.run.f64 { "f64" } else { "f32" };
    if args.run.json {
        println!(
            "{{\"lmax\": {}, \"n\": {}, \"dtype\": \"{dtype}\", \"ours_fwd_ms\": {fwd:.4}, \"ours_fwd_bwd_ms\": {fwd_bwd:.4}, \"threads\": {}}}",
            args.lmax,
            args.n,
            rayon::current_num_threads()
        );
    } else {
        println!(
            "harmonics lmax {} of {} vectors, {dtype}: value {fwd:.3} ms, value + gradient {fwd_bwd:.3} ms",
            args.lmax, args.n
        );
    }
    Ok(())
}

/// `ToS2Grid` and `FromS2Grid` (component normalization) on `signals` random signals:
/// each direction's forward, and forward + backward.
pub fn bench_s2(args: &S2Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.run.f64 {
        run_s2::<f64>(args)
    } else {
        run_s2::<f32>(args)
    }
}

fn run_s2<T: equivariant::Real>(args: &S2Args) -> Result<(), Box<dyn std::error::Error>> {
    let norm = Normalization::Component;
    let to = ToS2GridPlan::new(Some(args.lmax), args.res_beta, args.res_alpha, norm)?;
    let (rb, ra) = (to.res_beta(), to.res_alpha());
    let from = FromS2GridPlan::new(Some(rb), Some(ra), Some(args.lmax), norm, None)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut randn = |n: usize| -> Vec<T> {
        (0..n)
            .map(|_| T::from_f64(rng.sample(StandardNormal)))
            .collect()
    };
    let (z, dim, cells) = (args.signals, to.dim(), rb * ra);
    let (x, grid) = (randn(z * dim), randn(z * cells));
    let (mut out_grid, mut out_x) = (vec![T::zero(); z * cells], vec![T::zero(); z * dim]);
    let (reps, warmup) = (args.run.reps, args.run.warmup);
    // Every direction untimed before any is timed, so that no timing pays for first
    // touches of the buffers.
    for _ in 0..warmup.max(1) {
        to.forward(&x, &mut out_grid)?;
        to.backward(&grid, &mut out_x)?;
        from.forward(&grid, &mut out_x)?;
        from.backward(&x, &mut out_grid)?;
    }
    let to_fwd = median_ms(reps, warmup, || to.forward(&x, &mut out_grid))?;
    let to_fwd_bwd = median_ms(reps, warmup, || {
        to.forward(&x, &mut out_grid)?;
        to.backward(&grid, &mut out_x)
    })?;
    let from_fwd = median_ms(reps, warmup, || from.forward(&grid, &mut out_x))?;
    let from_fwd_bwd = median_ms(reps, warmup, || {
        from.forward(&grid, &mut out_x)?;
        from.backward(&x, &mut out_grid)
    })?;
    let dtype = if args.run.f64 { "f64" } else { "f32" };
    if args.run.json {
        println!(
            "{{\"lmax\": {}, \"signals\": {z}, \"res_beta\": {rb}, \"res_alpha\": {ra}, \"dtype\": \"{dtype}\", \"to_fwd_ms\": {to_fwd:.4}, \"to_fwd_bwd_ms\": {to_fwd_bwd:.4}, \"from_fwd_ms\": {from_fwd:.4}, \"from_fwd_bwd_ms\": {from_fwd_bwd:.4}, \"threads\": {}}}",
            args.lmax,
            rayon::current_num_threads()
        );
    } else {
        println!(
            "lmax {} {z} signals {rb}x{ra} {dtype}: ToS2Grid {to_fwd:.3} ms (fwd+bwd {to_fwd_bwd:.3}), FromS2Grid {from_fwd:.3} ms (fwd+bwd {from_fwd_bwd:.3})",
            args.lmax
        );
    }
    Ok(())
}

/// The construction of `ReducedTensorProducts(formula, every index: irreps)`.
pub fn bench_rtp(args: &RtpArgs) -> Result<(), Box<dyn std::error::Error>> {
    let irreps: equivariant::o3::Irreps = args.irreps.parse()?;
    let indices: BTreeMap<char, _> = args
        .formula
        .chars()
        .filter(|c| c.is_alphabetic())
        .map(|c| (c, irreps.clone()))
        .collect();
    let ms = median_ms(args.reps, 1, || {
        std::hint::black_box(ReducedTensorProducts::new(
            &args.formula,
            &indices,
            None,
            None,
            1e-9,
        )?);
        Ok(())
    })?;
    if args.json {
        println!(
            "{{\"formula\": {:?}, \"irreps\": {:?}, \"build_ms\": {ms:.3}}}",
            args.formula, args.irreps
        );
    } else {
        println!(
            "ReducedTensorProducts({:?}, {}): {ms:.2} ms",
            args.formula, args.irreps
        );
    }
    Ok(())
}
