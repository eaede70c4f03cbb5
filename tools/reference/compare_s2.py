"""Side by side, in one run: e3nn 0.6.0's ToS2Grid / FromS2Grid and the construction of
ReducedTensorProducts, against `equivariant bench s2` / `bench rtp` (BENCHMARKS.md).

    /work/venv-e3nn/bin/python tools/reference/compare_s2.py [--no-build] [--reps 10]

Builds our CLI (`cargo build --release -p equivariant-cli`) unless --no-build. 2 threads,
f32 signals (e3nn's default dtype), component normalization, e3nn's default grid for the
degree (res_beta = 2 (lmax + 1), res_alpha = 2 lmax + 1). Prints one JSON object per line:
  {"op": "to_s2" | "from_s2", "lmax", "signals", "res", "ours_fwd_ms", "e3nn_fwd_ms",
   "ours_fwd_bwd_ms", "e3nn_fwd_bwd_ms", "fwd_ratio", "fwd_bwd_ratio", "ours_fwd_gflops",
   "sgemm_gflops", "fwd_peak_fraction"}
where ours_fwd_gflops counts the useful multiply-adds of the separable transform (2 flops
each: res_beta (lmax+1)^2 for the Legendre step, res_beta res_alpha (2 lmax + 1) for the
Fourier step, per signal) and sgemm_gflops is torch's 2048^3 float32 matmul in this run.
  {"op": "reduced_tensor_products", "formula", "irreps", "ours_ms", "e3nn_ms", "ratio"}
Forward + backward is the transform and the gradient of sum(out * g) to its input.
"""

import argparse
import json
import os
import subprocess

import torch
from e3nn import o3

from timing import median_ms, sgemm_gflops

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXE = os.path.join(ROOT, "target", "release", "equivariant")


def ours(*args):
    line = subprocess.run(
        [EXE, "bench", *args, "--json"], check=True, capture_output=True, text=True, env={**os.environ, "RAYON_NUM_THREADS": "2"}
    ).stdout.strip().splitlines()[-1]
    return json.loads(line)


def e3nn_grid(lmax, signals, reps):
    torch.manual_seed(0)
    to = o3.ToS2Grid(lmax, normalization="component")
    frm = o3.FromS2Grid((to.res_beta, to.res_alpha), lmax, normalization="component")
    x = torch.randn(signals, (lmax + 1) ** 2)
    grid = torch.randn(signals, to.res_beta, to.res_alpha)
    out = {}
    for name, module, inp, g in [("to_s2", to, x, grid), ("from_s2", frm, grid, x)]:
        with torch.no_grad():
            out[name + "_fwd"] = median_ms(lambda: module(inp), reps)
        xg = inp.clone().requires_grad_(True)

        def fwd_bwd():
            module(xg).backward(g)

        out[name + "_fwd_bwd"] = median_ms(fwd_bwd, reps)
    return (to.res_beta, to.res_alpha), out


def e3nn_rtp(formula, irreps, reps):
    indices = {c: irreps for c in formula if c.isalpha()}
    return median_ms(lambda: o3.ReducedTensorProducts(formula, **indices), reps, warmup=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--lmax", type=int, nargs="+", default=[8])
    parser.add_argument("--signals", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "equivariant-cli"], cwd=ROOT, check=True)
    peak = sgemm_gflops()
    for lmax in args.lmax:
        res, theirs = e3nn_grid(lmax, args.signals, args.reps)
        mine = ours("s2", "--lmax", str(lmax), "--signals", str(args.signals), "--reps", str(args.reps))
        assert [mine["res_beta"], mine["res_alpha"]] == list(res), (mine, res)
        for op in ["to_s2", "from_s2"]:
            row = {
                "op": op,
                "lmax": lmax,
                "signals": args.signals,
                "res": list(res),
                "ours_fwd_ms": mine[op.replace("_s2", "") + "_fwd_ms"],
                "e3nn_fwd_ms": round(theirs[op + "_fwd"], 4),
                "ours_fwd_bwd_ms": mine[op.replace("_s2", "") + "_fwd_bwd_ms"],
                "e3nn_fwd_bwd_ms": round(theirs[op + "_fwd_bwd"], 4),
            }
            row["fwd_ratio"] = round(row["e3nn_fwd_ms"] / row["ours_fwd_ms"], 2)
            row["fwd_bwd_ratio"] = round(row["e3nn_fwd_bwd_ms"] / row["ours_fwd_bwd_ms"], 2)
            (rb, ra), m = res, 2 * lmax + 1
            flops = 2 * args.signals * (rb * (lmax + 1) ** 2 + rb * ra * m)
            row["ours_fwd_gflops"] = round(flops / (row["ours_fwd_ms"] * 1e-3) / 1e9, 1)
            row["sgemm_gflops"] = round(peak, 1)
            row["fwd_peak_fraction"] = round(row["ours_fwd_gflops"] / peak, 3)
            print(json.dumps(row), flush=True)
    for formula, irreps in [("ijkl=jikl=klij", "1o"), ("ij=ji", "1o"), ("ijk=jik", "1o")]:
        mine = ours("rtp", "--formula", formula, "--irreps", irreps, "--reps", "5")
        theirs = e3nn_rtp(formula, irreps, 3)
        print(
            json.dumps(
                {
                    "op": "reduced_tensor_products",
                    "formula": formula,
                    "irreps": irreps,
                    "ours_ms": mine["build_ms"],
                    "e3nn_ms": round(theirs, 3),
                    "ratio": round(theirs / mine["build_ms"], 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
