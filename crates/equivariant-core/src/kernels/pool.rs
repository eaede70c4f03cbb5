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
//! guest, medians of 2000). So while a computation runs, [`on_pool`] keeps the other
//! workers of the pool awake with keep-warm jobs: each takes the pool's work as soon as
//! there is some ([`rayon::yield_now`]) and, when there is none, calls `sched_yield` and
//! asks again, as an OpenMP runtime's threads spin between parallel regions (torch's among
//! them). With them the same loop took 26 us after any gap (measured with a first version
//! of these jobs that spun on the core instead of yielding it). A
//! keep-warm job that finds no work for [`IDLE`] returns, and its worker sleeps as usual
//! (a nested [`on_pool`] call, such as the next force call of an MD run, starts them
//! again when none polls).

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a keep-warm job polls without finding work before it returns: long enough for
/// the serial gaps inside a model call (tens of microseconds), short enough that a long
/// serial phase (writing a trajectory) or a caller that blocks costs at most this much of
/// a core per worker.
pub(crate) const IDLE: Duration = Duration::from_millis(1);

thread_local! {
    /// The keep-warm state of the [`on_pool`] call whose `f` runs on this thread.
    static OWNER: RefCell<Option<Arc<KeepWarm>>> = const { RefCell::new(None) };
    /// Whether this thread runs a keep-warm job (and whatever work it takes meanwhile).
    static KEEPING_WARM: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on a worker thread of the current rayon pool (the global one, unless inside a
/// [`rayon::ThreadPool::install`]) and returns its result; on a worker already, runs `f`
/// in place. The calling thread waits meanwhile. Until `f` returns, the pool's other
/// workers poll for work instead of sleeping (see the module docs): call it around a whole
/// computation (an MD run, a training step, a force call), not around the idle time
/// between them. A nested call runs in place, and starts the keep-warm jobs again when
/// none polls (all returned after 1 ms without work, or none has started yet: a job
/// that finds its thread warm already returns at once). The work done, its order and so
/// its results are the same either way.
///
/// The keep-warm jobs run whatever work the pool has, another caller's included: a call
/// of `on_pool` from another thread outside the pool may run its `f` on a worker that a
/// keep-warm job of this call holds. That `f` never delays this call's return (the jobs are
/// detached), and it runs with no keep-warm jobs of its own.
///
/// ```
/// use equivariant_core::kernels::on_pool;
/// let on_worker = on_pool(|| rayon::current_thread_index().is_some());
/// assert!(on_worker);
/// assert_eq!(on_pool(|| 6 * 7), 42);
/// assert_eq!(on_pool(|| on_pool(|| 6 * 7)), 42);
/// ```
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    // `scope` runs its body on a worker of the current pool: in place on a worker, and
    // from any other thread by injecting it as one job and blocking until it completes.
    rayon::scope(|_| {
        if KEEPING_WARM.get() {
            return f();
        }
        if let Some(warm) = OWNER.with_borrow(Option::clone) {
            if warm.polling.load(Ordering::Acquire) == 0 {
                warm.start();
            }
            return f();
        }
        let warm = Arc::new(KeepWarm::default());
        // Ends the keep-warm jobs and clears `OWNER` when `f` returns or unwinds.
        let _owner = Owner::enter(&warm);
        warm.start();
        f()
    })
}

/// The keep-warm jobs of one [`on_pool`] call: one per worker of the pool
/// ([`rayon::spawn_broadcast`]), each in that worker's own queue, which it reads before it
/// steals any other work.
///
/// Why they cannot deadlock: a keep-warm job polls only on a thread that runs nothing else
/// of the computation. It returns at once on the thread of `f` and on a thread that runs
/// another keep-warm job. A worker takes its job at its first look for work after the jobs
/// are posted, before it can steal any of `f`'s work posted after them. What could still
/// put one under a frame that `f` waits on (a worker inside `f`'s work when a nested call
/// posts them again, or inside another caller's work) holds it until the pool's work runs
/// out and [`IDLE`] more: then the job finds none, and returns.
#[derive(Default)]
struct KeepWarm {
    /// Set when `f` has returned (or unwound).
    done: AtomicBool,
    /// Jobs that passed their checks and poll for work.
    polling: AtomicUsize,
    /// Jobs posted and not yet returned, for the tests to see them all end.
    #[cfg(test)]
    spawned: AtomicUsize,
    /// Jobs that have polled, ever: a count that only grows, for the tests to wait on.
    #[cfg(test)]
    started: AtomicUsize,
}

impl KeepWarm {
    /// Posts a keep-warm job to every worker of the pool (on the thread of `f` it returns at
    /// once), unless the pool has one thread.
    fn start(self: &Arc<Self>) {
        let threads = rayon::current_num_threads();
        if threads < 2 {
            return;
        }
        #[cfg(test)]
        self.spawned.fetch_add(threads, Ordering::AcqRel);
        let warm = Arc::clone(self);
        rayon::spawn_broadcast(move |_| warm.run());
    }

    /// One keep-warm job: until `done`, runs the pool's pending work, or yields its core
    /// when there is none; returns after [`IDLE`] without work, or at once on a thread that
    /// is busy with this computation already (see the type's docs).
    fn run(&self) {
        #[cfg(test)]
        let _spawned = Release(&self.spawned);
        if self.done.load(Ordering::Acquire)
            || KEEPING_WARM.get()
            || OWNER.with_borrow(Option::is_some)
        {
            return;
        }
        let _keeping = Keeping::enter();
        let _polling = Release(&self.polling);
        self.polling.fetch_add(1, Ordering::AcqRel);
        #[cfg(test)]
        self.started.fetch_add(1, Ordering::AcqRel);
        let mut last_work = Instant::now();
        while !self.done.load(Ordering::Acquire) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                last_work = Instant::now();
            } else if last_work.elapsed() >= IDLE {
                break;
            } else {
                // Nothing to run: let another runnable thread on this core (another
                // process's, another MPI rank's) have it first.
                std::thread::yield_now();
            }
        }
    }
}

/// Marks the current thread as running a keep-warm job until dropped.
struct Keeping;

impl Keeping {
    fn enter() -> Self {
        KEEPING_WARM.set(true);
        Keeping
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        KEEPING_WARM.set(false);
    }
}

/// Decrements a counter when dropped.
struct Release<'a>(&'a AtomicUsize);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The thread of an [`on_pool`] call's `f`: sets `OWNER` while it lives, then ends the
/// keep-warm jobs.
struct Owner<'a>(&'a Arc<KeepWarm>);

impl<'a> Owner<'a> {
    fn enter(warm: &'a Arc<KeepWarm>) -> Self {
        OWNER.set(Some(Arc::clone(warm)));
        Owner(warm)
    }
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
        OWNER.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    /// The keep-warm state of the `on_pool` call running on this thread.
    fn current() -> Arc<KeepWarm> {
        OWNER
            .with_borrow(Option::clone)
            .expect("inside on_pool's f")
    }

    /// Waits up to a second for `ready`.
    fn eventually(ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if ready() {
                return true;
            }
            std::thread::yield_now();
        }
        ready()
    }

    /// Runs small parallel loops for up to a second until `ready`: work for the polling
    /// workers, so that none returns for want of it while a test waits.
    fn busy_until(ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(1) {
            if ready() {
                return true;
            }
            (0..16).into_par_iter().for_each(|_| {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
            });
        }
        ready()
    }

    #[test]
    fn every_other_worker_polls_while_f_runs_and_stops_after() {
        for threads in [1, 2, 4] {
            let p = pool(threads);
            let (all_polling, warm) = p.install(|| {
                on_pool(|| {
                    let warm = current();
                    // Every other worker's job polls (the jobs do not take each other's
                    // place); with the machine shared, one may have returned for want of
                    // work before the last starts, so the count of starts is what tells.
                    let all = busy_until(|| warm.started.load(Ordering::Acquire) == threads - 1);
                    (all, warm)
                })
            });
            assert!(all_polling, "{threads} threads");
            assert!(warm.done.load(Ordering::Acquire));
            assert!(eventually(|| warm.spawned.load(Ordering::Acquire) == 0));
            assert!(
                p.broadcast(|_| !KEEPING_WARM.get() && OWNER.with_borrow(Option::is_none))
                    .iter()
                    .all(|&cold| cold)
            );
        }
    }

    #[test]
    fn the_polling_workers_run_the_computations_work() {
        let p = pool(2);
        let (sum, ran_elsewhere) = p.install(|| {
            on_pool(|| {
                let warm = current();
                assert!(busy_until(|| warm.started.load(Ordering::Acquire) == 1));
                let me = rayon::current_thread_index();
                // Two tasks: the calling thread runs one and the polling worker takes the
                // other, unless it never asks for work (then the caller runs both).
                let (a, b) = rayon::join(
                    || {
                        std::thread::sleep(Duration::from_millis(20));
                        1
                    },
                    || (2, rayon::current_thread_index() != me),
                );
                (a + b.0, b.1)
            })
        });
        assert_eq!(sum, 3);
        assert!(ran_elsewhere);
    }

    #[test]
    fn jobs_without_work_for_idle_return_and_a_nested_call_starts_them_again() {
        let p = pool(2);
        p.install(|| {
            on_pool(|| {
                let warm = current();
                assert!(busy_until(|| warm.started.load(Ordering::Acquire) == 1));
                std::thread::sleep(IDLE * 5);
                assert!(eventually(|| warm.polling.load(Ordering::Acquire) == 0));
                let inner = on_pool(|| (current(), (0..1000i64).into_par_iter().sum::<i64>()));
                assert!(Arc::ptr_eq(&inner.0, &warm) && inner.1 == 999 * 1000 / 2);
                assert!(busy_until(|| warm.started.load(Ordering::Acquire) == 2));
            })
        });
    }

    #[test]
    fn concurrent_callers_from_outside_the_pool_all_finish() {
        for threads in [2, 3] {
            let p = pool(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..4i64)
                    .map(|t| {
                        let p = &p;
                        s.spawn(move || {
                            p.install(|| {
                                on_pool(|| {
                                    (0..10_000i64).into_par_iter().map(|i| i * t).sum::<i64>()
                                })
                            })
                        })
                    })
                    .collect();
                for (t, h) in handles.into_iter().enumerate() {
                    assert_eq!(h.join().expect("no panic"), t as i64 * 9999 * 10_000 / 2);
                }
            });
        }
    }

    #[test]
    fn a_broadcast_inside_f_completes() {
        let p = pool(3);
        let sums = p.install(|| {
            on_pool(|| {
                rayon::broadcast(|_| {
                    let (a, b) = rayon::join(|| (0..100i64).sum::<i64>(), || 1i64);
                    a + b
                })
            })
        });
        assert_eq!(sums, vec![4951; 3]);
    }

    #[test]
    fn a_panic_in_f_reaches_the_caller_and_ends_the_jobs() {
        let p = pool(2);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.install(|| on_pool(|| -> usize { panic!("f failed") }))
        }));
        assert!(caught.is_err());
        assert!(
            p.broadcast(|_| OWNER.with_borrow(Option::is_none))
                .iter()
                .all(|&cold| cold)
        );
        let again = p.install(|| {
            on_pool(|| {
                let warm = current();
                busy_until(|| warm.started.load(Ordering::Acquire) == 1)
            })
        });
        assert!(again);
    }
}
