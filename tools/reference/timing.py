"""The timing rule of the side-by-side scripts: median milliseconds after untimed warm-up."""

import statistics
import time


def median_ms(fn, reps=10, warmup=2):
    """Median wall time of `reps` calls of `fn`, in ms, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)
