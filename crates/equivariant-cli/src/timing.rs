//! Timing helpers shared by the `equivariant` binary and its examples (which include this
//! file with `#[path]`): the median of repeated runs.
//!
//! Each timed call runs as one computation on rayon's pool ([`on_pool`]), as a force call
//! of `equivariant md` or of the calculators does: the pool's other workers are kept awake
//! through it, and woken again for the next call if they went to sleep in between.

use std::time::Instant;

use equivariant::util::on_pool;

/// Median of `reps` timings of `f`, in milliseconds, after `warmup` untimed calls.
pub fn median_ms(
    reps: usize,
    warmup: usize,
    mut f: impl FnMut() -> Result<(), equivariant::Error> + Send,
) -> Result<f64, equivariant::Error> {
    for _ in 0..warmup {
        on_pool(&mut f)?;
    }
    let mut times = Vec::with_capacity(reps.max(1));
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        on_pool(&mut f)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Medians of `reps` timings of `f` and of `g`, run alternately (`f`, `g`, `f`, ...) after
/// `warmup` untimed calls of each, and the median of the per-repetition ratios `g / f`.
///
/// For a ratio of two workloads on a noisy machine: timed in separate blocks, the load of
/// the minutes each block ran in shifts one against the other (the same build gave 2.1 and
/// 3.6 for one ratio back to back); alternated, each pair shares its minute.
pub fn interleaved_medians_ms(
    reps: usize,
    warmup: usize,
    mut f: impl FnMut() -> Result<(), equivariant::Error> + Send,
    mut g: impl FnMut() -> Result<(), equivariant::Error> + Send,
) -> Result<(f64, f64, f64), equivariant::Error> {
    for _ in 0..warmup {
        on_pool(&mut f)?;
        on_pool(&mut g)?;
    }
    let time = |h: &mut (dyn FnMut() -> Result<(), equivariant::Error> + Send)| {
        let start = Instant::now();
        on_pool(h).map(|()| start.elapsed().as_secs_f64() * 1e3)
    };
    let (mut fs, mut gs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        let (tf, tg) = (time(&mut f)?, time(&mut g)?);
        fs.push(tf);
        gs.push(tg);
        ratios.push(tg / tf);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(fs), median(gs), median(ratios)))
}
