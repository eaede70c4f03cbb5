//! Running a whole computation on rayon's thread pool, so that its parallel kernels start
//! from a worker thread, with the pool's other workers kept awake meanwhile.
//!
//! A parallel loop called from a thread outside the pool hands its work to the pool and
//! sleeps until the pool is done: two thread wake-ups (futex calls) per loop. A model's
//! step on a small graph (an MD step on a few hundred atoms, a training batch) runs
//! hundreds of such loops, the kernels' and the tensor library's, and those wake-ups cost
//! as much as the arithmetic. Called on a worker, each loop starts on that thread at once
//! and the other workers steal what they can; the hand-over happens once, for the whole
//! computation.
//!
//! Between two loops the calling thread runs serial code (the tensor library's
//! bookkeeping, small ops), and an idle rayon worker goes to sleep after a few
//! microseconds of finding no work. The next loop then wakes it, and on a virtual machine a
//! wake-up costs tens of microseconds: a loop of 50 us of work split in two took 60-85 us
//! after a serial gap of 50-200 us, 26 us after a gap of 5 us (2 threads, an Intel Xeon KVM
//! guest, medians of 2000). So while `f` runs, every other worker of the pool runs a
//! keep-warm job instead of sleeping: it takes the pool's work as soon as there is some
//! ([`rayon::yield_now`]) and, when there is none, yields its core to any other runnable
//! thread and asks again (`sched_yield`), as an OpenMP runtime's threads spin
//! between parallel regions (torch's among them). With it, the same loop took 26 us after
//! any gap.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// Whether this thread runs inside [`on_pool`] already: the caller's `f`, or a
    /// keep-warm job (and whatever work it takes from the pool).
    static WARM: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on a worker thread of the current rayon pool (the global one, unless inside a
/// [`rayon::ThreadPool::install`]) and returns its result; on a worker already, runs `f`
/// in place. The calling thread waits meanwhile. The pool's other workers stay awake
/// until `f` returns (see the module docs), polling for work when they have none: call it
/// around a whole computation (an MD run, a training step, a force call), not around the
/// idle time between them. Nested calls run in place. The work done, its order and so its
/// results are the same either way.
///
/// ```
/// use equivariant_core::kernels::on_pool;
/// let on_worker = on_pool(|| rayon::current_thread_index().is_some());
/// assert!(on_worker);
/// assert_eq!(on_pool(|| 6 * 7), 42);
/// assert_eq!(on_pool(|| on_pool(|| 6 * 7)), 42);
/// ```
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    // `scope` runs its body on a worker of the current pool: in place on a worker, and
    // from any other thread by injecting it as one job and blocking until it completes.
    rayon::scope(|s| {
        if WARM.get() {
            return f();
        }
        let _warm = Warm::enter();
        // Declared after `_warm`, so dropped first: the keep-warm jobs end when `f` returns
        // or unwinds, and the scope, which waits for them, can end.
        let _stop = Stop(&done);
        for _ in 1..rayon::current_num_threads() {
            s.spawn(|_| keep_warm(&done));
        }
        f()
    })
}

/// Until `done`, runs the pool's pending work, or yields the core when there is none. Returns at once on a thread that is
/// warm already: one that runs `f` (it would spin until its own `f` returns, which waits on
/// it) or another keep-warm job.
fn keep_warm(done: &AtomicBool) {
    if WARM.get() {
        return;
    }
    let _warm = Warm::enter();
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            // Nothing to run: offer the core to any other runnable thread (another
            // process's, another MPI rank's on a shared machine) instead of holding it.
            std::thread::yield_now();
        }
    }
}

/// Marks the current thread warm until dropped.
struct Warm;

impl Warm {
    fn enter() -> Self {
        WARM.set(true);
        Warm
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        WARM.set(false);
    }
}

/// Ends the keep-warm jobs when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    #[test]
    fn runs_f_on_a_worker_with_the_other_workers_taking_its_work() {
        for threads in [1, 2, 3] {
            let seen = Mutex::new(HashSet::new());
            let sum = pool(threads).install(|| {
                on_pool(|| {
                    (0..64i64)
                        .into_par_iter()
                        .map(|i| {
                            let index = rayon::current_thread_index().expect("on a worker");
                            seen.lock().expect("not poisoned").insert(index);
                            let start = std::time::Instant::now();
                            while start.elapsed().as_micros() < 200 {
                                std::hint::spin_loop();
                            }
                            i
                        })
                        .sum::<i64>()
                })
            });
            assert_eq!(sum, 64 * 63 / 2);
            // Every worker took part: the keep-warm jobs run the loop's work.
            assert_eq!(seen.into_inner().expect("not poisoned").len(), threads);
        }
        // From a thread outside any pool: the global pool.
        assert!(on_pool(|| rayon::current_thread_index().is_some()));
    }

    #[test]
    fn nested_calls_run_in_place_and_the_thread_is_cold_after() {
        let p = pool(2);
        let (same, warm_inside) = p.install(|| {
            on_pool(|| {
                let outer = rayon::current_thread_index();
                let inner = on_pool(rayon::current_thread_index);
                (inner == outer, WARM.get())
            })
        });
        assert!(same && warm_inside);
        assert!(!p.install(|| WARM.get()));
    }

    #[test]
    fn a_panic_in_f_ends_the_keep_warm_jobs_and_reaches_the_caller() {
        let p = pool(2);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.install(|| on_pool(|| -> usize { panic!("f failed") }))
        }));
        assert!(caught.is_err());
        // The pool is not left with a spinning job: a later call completes and is warm again.
        assert_eq!(p.install(|| on_pool(|| 7)), 7);
    }
}
