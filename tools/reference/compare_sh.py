"""Side by side, in one run: spherical harmonics of ours (`equivariant bench sh`), sphericart
(PyPI `sphericart`, the CPU anchor of ../shared/benchmarks.md) and e3nn 0.6.0 (issue 22,
part 4).

    OMP_NUM_THREADS=2 /work/venv-e3nn/bin/python tools/reference/compare_sh.py [--no-build]

Needs torch, e3nn==0.6.0 and sphericart in the Python that runs it; builds our CLI
(`cargo build --release -p equivariant-cli`) unless --no-build. 2 threads each (rayon,
torch, OpenMP), uniform vectors in [-1, 1]^3, every degree up to lmax, medians. "fwd_bwd" is
each library's cheapest way to get the values and their gradient: ours and sphericart
compute both in one pass (`compute_with_gradients`, the Jacobian), e3nn `backward` of the
sum of the values (a vector-Jacobian product). Prints one JSON object per line:
  {"lmax", "n", "dtype", "ours_fwd_ms", "ours_fwd_bwd_ms", "sphericart_fwd_ms",
   "sphericart_fwd_bwd_ms", "e3nn_fwd_ms", "e3nn_fwd_bwd_ms"}
"""

import argparse
import json
import os
import subprocess

import numpy as np
import sphericart
import torch
from e3nn import o3

from timing import median_ms

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXE = os.path.join(ROOT, "target", "release", "equivariant")


def ours(lmax, n, dtype, reps):
    args = [EXE, "bench", "sh", "--lmax", str(lmax), "--n", str(n), "--reps", str(reps), "--json"]
    if dtype == "f64":
        args.append("--f64")
    out = subprocess.run(args, check=True, capture_output=True, text=True, env={**os.environ, "RAYON_NUM_THREADS": "2"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def theirs(lmax, n, dtype, reps):
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-1.0, 1.0, size=(n, 3)).astype(np.float32 if dtype == "f32" else np.float64)
    sc = sphericart.SphericalHarmonics(lmax)
    sc_fwd = median_ms(lambda: sc.compute(xyz), reps)
    sc_fwd_bwd = median_ms(lambda: sc.compute_with_gradients(xyz), reps)
    x = torch.from_numpy(xyz)
    ls = list(range(lmax + 1))
    with torch.no_grad():
        e3_fwd = median_ms(lambda: o3.spherical_harmonics(ls, x, normalize=True, normalization="component"), reps)
    xg = x.clone().requires_grad_(True)

    def fwd_bwd():
        y = o3.spherical_harmonics(ls, xg, normalize=True, normalization="component")
        y.backward(torch.ones_like(y))

    e3_fwd_bwd = median_ms(fwd_bwd, reps)
    return sc_fwd, sc_fwd_bwd, e3_fwd, e3_fwd_bwd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--lmax", type=int, nargs="+", default=[3, 8])
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "equivariant-cli"], cwd=ROOT, check=True)
    for dtype in ["f32", "f64"]:
        for lmax in args.lmax:
            sc_fwd, sc_fwd_bwd, e3_fwd, e3_fwd_bwd = theirs(lmax, args.n, dtype, args.reps)
            mine = ours(lmax, args.n, dtype, args.reps)
            row = {
                "lmax": lmax,
                "n": args.n,
                "dtype": dtype,
                "ours_fwd_ms": mine["ours_fwd_ms"],
                "ours_fwd_bwd_ms": mine["ours_fwd_bwd_ms"],
                "sphericart_fwd_ms": round(sc_fwd, 4),
                "sphericart_fwd_bwd_ms": round(sc_fwd_bwd, 4),
                "e3nn_fwd_ms": round(e3_fwd, 4),
                "e3nn_fwd_bwd_ms": round(e3_fwd_bwd, 4),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
