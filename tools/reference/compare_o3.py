"""Side-by-side timings of e3nn 0.6.0 for the o3 tables and harmonics (BENCHMARKS.md).

    tools/reference/.venv/bin/python tools/reference/compare_o3.py

Prints one JSON object per line, e3nn's median milliseconds (2 threads, f32 data):
  {"op": "wigner_3j_build", "ls": [6, 6, 12], "e3nn_ms": ...}
  {"op": "spherical_harmonics", "lmax": 8, "n": 1000000, "e3nn_fwd_ms": ..., "e3nn_fwd_bwd_ms": ...}
Our side: `cargo bench -p equivariant-core --bench o3` (same machine, RAYON_NUM_THREADS=2).
"""

import json

import torch
from e3nn import o3
from e3nn.o3 import _wigner

from timing import median_ms

torch.set_num_threads(2)


def wigner_3j_build(ls):
    def run():
        _wigner._so3_clebsch_gordan.cache_clear()
        _wigner._su2_clebsch_gordan.cache_clear()
        o3.wigner_3j(*ls)

    return median_ms(run, reps=5, warmup=1)


def harmonics(lmax, n):
    torch.manual_seed(0)
    x = torch.rand(n, 3) * 2 - 1
    ls = list(range(lmax + 1))
    fwd = median_ms(lambda: o3.spherical_harmonics(ls, x, normalize=True, normalization="component"))
    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        y = o3.spherical_harmonics(ls, xg, normalize=True, normalization="component")
        y.backward(torch.ones_like(y))

    return fwd, median_ms(fwd_bwd)


if __name__ == "__main__":
    for ls in [(1, 1, 2), (3, 3, 6), (6, 6, 12)]:
        print(json.dumps({"op": "wigner_3j_build", "ls": list(ls), "e3nn_ms": wigner_3j_build(ls)}), flush=True)
    for lmax, n in [(3, 100_000), (8, 100_000), (8, 1_000_000)]:
        fwd, fwd_bwd = harmonics(lmax, n)
        print(json.dumps({"op": "spherical_harmonics", "lmax": lmax, "n": n, "e3nn_fwd_ms": fwd, "e3nn_fwd_bwd_ms": fwd_bwd}), flush=True)
