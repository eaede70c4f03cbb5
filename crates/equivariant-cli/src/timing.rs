//! Timing helpers shared by the `equivariant` binary and its examples (which include this
//! file with `#[path]`): the median of repeated runs, and the allocator settings every timed
//! run uses.

use std::time::Instant;

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

/// Medians of `reps` timings of `f` and of `g`, run alternately (`f`, `g`, `f`, ...) after
/// `warmup` untimed calls of each, and the median of the per-repetition ratios `g / f`.
///
/// For a ratio of two workloads on a noisy machine: timed in separate blocks, the load of
/// the minutes each block ran in shifts one against the other (the same build gave 2.1 and
/// 3.6 for one ratio back to back); alternated, each pair shares its minute.
pub fn interleaved_medians_ms(
    reps: usize,
    warmup: usize,
    mut f: impl FnMut() -> Result<(), equivariant::Error>,
    mut g: impl FnMut() -> Result<(), equivariant::Error>,
) -> Result<(f64, f64, f64), equivariant::Error> {
    for _ in 0..warmup {
        f()?;
        g()?;
    }
    let time = |h: &mut dyn FnMut() -> Result<(), equivariant::Error>| {
        let start = Instant::now();
        h().map(|()| start.elapsed().as_secs_f64() * 1e3)
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

/// Keeps freed memory in the process: burn's eager ops allocate a fresh output per op, and
/// glibc serves large blocks straight from `mmap` and unmaps them on free, so each op of a
/// large convolution page-faults its output in again (measured here: relu over 19M floats
/// 89 ms with the defaults, 14 ms with this). `M_MMAP_MAX = 0` serves every block from the
/// heap and `M_TRIM_THRESHOLD = -1` never gives the heap back. The earlier settings
/// (`M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD` at `i32::MAX`) still left a tensor-product
/// module's forward + backward with ~30% of its time in page faults (mace-medium 261 ms,
/// 242 ms with these; nequip-benzene 3505 ms, 1782 ms).
///
/// The worker threads allocate from their own arenas, heaps of 64 MiB that glibc deletes
/// (unmaps) whenever the newest one empties, whatever the trim threshold; refilled, each
/// page faults in again. Whether that happens step after step depends on where the blocks
/// fall, so it came and went from process to process: the three-layer model's force
/// training step at 2 threads took 142-147 ms in some runs (26 thousand page faults) and
/// 151-161 ms in others (104-148 thousand). A top pad above the heap size keeps every heap
/// (glibc deletes one only while the arena's free top exceeds the pad): 146-152 ms and
/// 26 thousand faults in every run. The pad is address space; pages are touched only when
/// used.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, -1);
        libc::mallopt(libc::M_TOP_PAD, 128 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
