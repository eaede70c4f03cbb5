//! Running a whole computation on rayon's thread pool, so that its parallel kernels start
//! from a worker thread.
//!
//! A parallel loop called from a thread outside the pool hands its work to the pool and
//! sleeps until the pool is done: two thread wake-ups (futex calls) per loop. A model's
//! step on a small graph (an MD step on a few hundred atoms, a training batch) runs
//! hundreds of such loops, the kernels' and the tensor library's, and those wake-ups cost
//! as much as the arithmetic. Called on a worker, each loop starts on that thread at once
//! and the other workers steal what they can; the hand-over happens once, for the whole
//! computation.

/// Runs `f` on a worker thread of the current rayon pool (the global one, unless inside a
/// [`rayon::ThreadPool::install`]) and returns its result; on a worker already, runs `f`
/// in place. The calling thread waits meanwhile. The work done, its order and so its
/// results are the same either way.
///
/// ```
/// use equivariant_core::kernels::on_pool;
/// let on_worker = on_pool(|| rayon::current_thread_index().is_some());
/// assert!(on_worker);
/// assert_eq!(on_pool(|| 6 * 7), 42);
/// ```
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // `scope` runs its body on a worker of the current pool: in place on a worker, and
    // from any other thread by injecting it as one job and blocking until it completes.
    rayon::scope(|_| f())
}
