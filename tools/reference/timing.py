"""The timing rules of the side-by-side scripts: median milliseconds after untimed warm-up, and
the machine's sgemm peak measured in the same run."""

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


def sgemm_gflops():
    """GFLOP/s of a 2048^3 float32 torch matmul at torch's current thread count."""
    import torch

    a, b = torch.randn(2048, 2048, dtype=torch.float32), torch.randn(2048, 2048, dtype=torch.float32)
    ms = median_ms(lambda: a @ b, 5)
    return 2 * 2048**3 / (ms * 1e-3) / 1e9
