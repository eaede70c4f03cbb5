"""Side-by-side tensor-product timings: e3nn 0.6.0 eager vs ours, same machine, same run.

    tools/reference/.venv/bin/python tools/reference/compare_tp.py [--configs guide,mace-medium] [--batch 10000]

Builds our CLI (`cargo build --release -p equivariant-cli`) unless --no-build, then for each
configuration of ../shared/benchmarks.md prints one JSON object per line:
  {"config", "batch", "ours_fwd_ms", "e3nn_fwd_ms", "ours_fwd_bwd_ms", "e3nn_fwd_bwd_ms",
   "sgemm_gflops", "fwd_flops", "read_gbps", "weight_mib", "fwd_floor_ms", "io_mib",
   "fwd_io_floor_ms"}
Both sides: 2 threads, f32, per-row weights, median of --reps timings after warm-up.
Forward = the product on fixed inputs; forward+backward = forward, then the gradient of
sum(out^2) with respect to x1, x2 and the weights. sgemm_gflops is a 2048^3 torch matmul
measured in the same run (the machine's peak for the sgemm fraction in BENCHMARKS.md).
read_gbps is this machine's memory read bandwidth (`equivariant bench bandwidth`, 2
threads), measured right before our timings of each configuration (on a shared host it moves
from minute to minute, 17-62 GB/s on the machines here); fwd_floor_ms = the per-row weights
(weight_mib, f32) / read_gbps: no forward that reads its weights from memory can be faster,
ours or e3nn's. io_mib = every
input (x1, x2, the weights) read once and the output written once, and fwd_io_floor_ms =
io_mib / read_gbps: the floor of any forward whose data does not stay in the caches (the
uvu products of degree 5 and 7, roofline-l5/l7, do 1.2 and 2.2 useful multiply-adds per
byte they must move; the Intel Xeon of BENCHMARKS.md does ~8 per byte it reads at its
sgemm peak).
"""

import argparse
import json
import os
import subprocess

import torch
from e3nn import o3

from timing import median_ms, sgemm_gflops

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIGS = [
    "mace-large", "mace-medium", "nequip-aspirin", "nequip-toluene", "nequip-benzene", "nequip-water",
    "diffdock-l1", "diffdock-l2", "e3tools-conv", "guide", "roofline-l5", "roofline-l7",
]


def uvu(in1, in2, filt):
    """One uvu instruction, with its own output block, per allowed path into the filter."""
    in1, in2, filt = o3.Irreps(in1), o3.Irreps(in2), o3.Irreps(filt)
    out, instr = [], []
    for i1, (mul, ir1) in enumerate(in1):
        for i2, (_, ir2) in enumerate(in2):
            for ir in ir1 * ir2:
                if ir in [x.ir for x in filt]:
                    instr.append((i1, i2, len(out), "uvu", True))
                    out.append((mul, ir))
    return o3.TensorProduct(in1, in2, o3.Irreps(out), instr, shared_weights=False, internal_weights=False)


def fc(in1, in2, out):
    return o3.FullyConnectedTensorProduct(in1, in2, out, shared_weights=False, internal_weights=False)


def build(name):
    dd = "10x1o+10x1e+48x0e+48x0o"
    return {
        "mace-large": lambda: uvu("128x0e+128x1o+128x2e", "1x0e+1x1o+1x2e+1x3o", "128x0e+128x1o+128x2e+128x3o"),
        "mace-medium": lambda: uvu("128x0e+128x1o", "1x0e+1x1o+1x2e+1x3o", "128x0e+128x1o+128x2e"),
        "nequip-aspirin": lambda: uvu("64x0o+64x0e+64x1o+64x1e", "0e+1o", "64x0o+64x0e+64x1o+64x1e"),
        "nequip-toluene": lambda: uvu(*["64x0o+64x0e+64x1o+64x1e+64x2o+64x2e", "0e+1o+2e"], "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e"),
        "nequip-benzene": lambda: uvu(
            "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e", "0e+1o+2e+3o", "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e+64x3o+64x3e"
        ),
        "nequip-water": lambda: uvu("32x0o+32x0e+32x1o+32x1e", "0e+1o", "32x0o+32x0e+32x1o+32x1e"),
        "diffdock-l1": lambda: fc(dd, "1x0e+1x1o", dd),
        "diffdock-l2": lambda: fc(dd, "1x0e+1x1o+1x2e", dd),
        "e3tools-conv": lambda: fc("64x0e+16x1o", "1x0e+1x1o", "80x0e+16x1o"),
        "guide": lambda: fc("10x0e+10x1e", "1x0e+1x1o+1x2e", "20x0e+10x1e"),
        "roofline-l5": lambda: uvu("128x5e", "1x3e", "128x5e"),
        "roofline-l7": lambda: uvu("128x7e", "1x7e", "128x7e"),
    }[name]()


def e3nn_times(name, batch, reps):
    torch.manual_seed(0)
    tp = build(name)
    x1 = tp.irreps_in1.randn(batch, -1)
    x2 = tp.irreps_in2.randn(batch, -1)
    w = torch.randn(batch, tp.weight_numel)
    with torch.no_grad():
        fwd = median_ms(lambda: tp(x1, x2, w), reps)
    x1g, x2g, wg = (t.clone().requires_grad_(True) for t in (x1, x2, w))

    def fwd_bwd():
        out = tp(x1g, x2g, wg)
        out.pow(2).sum().backward()

    dims = (tp.irreps_in1.dim, tp.irreps_in2.dim, tp.irreps_out.dim)
    return fwd, median_ms(fwd_bwd, reps), tp.weight_numel, dims


def ours(name, batch, reps):
    exe = os.path.join(ROOT, "target", "release", "equivariant")
    env = dict(os.environ, RAYON_NUM_THREADS="2")
    line = subprocess.run(
        [exe, "bench", "tp", "--config", name, "--batch", str(batch), "--reps", str(reps), "--json"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip().splitlines()[-1]
    return json.loads(line)


def read_gbps():
    exe = os.path.join(ROOT, "target", "release", "equivariant")
    env = dict(os.environ, RAYON_NUM_THREADS="2")
    line = subprocess.run(
        [exe, "bench", "bandwidth", "--json"], check=True, capture_output=True, text=True, env=env,
    ).stdout.strip().splitlines()[-1]
    return json.loads(line)["read_gbps"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "equivariant-cli"], cwd=ROOT, check=True)
    peak = sgemm_gflops()
    for name in args.configs.split(","):
        gbps = read_gbps()
        mine = ours(name, args.batch, args.reps)
        e_fwd, e_fwd_bwd, weight_numel, (d1, d2, d_out) = e3nn_times(name, args.batch, args.reps)
        weight_bytes = 4 * args.batch * weight_numel
        io_bytes = weight_bytes + 4 * args.batch * (d1 + d2 + d_out)
        print(json.dumps({
            "config": name,
            "batch": args.batch,
            "ours_fwd_ms": mine["ours_fwd_ms"],
            "e3nn_fwd_ms": round(e_fwd, 4),
            "ours_fwd_bwd_ms": mine["ours_fwd_bwd_ms"],
            "e3nn_fwd_bwd_ms": round(e_fwd_bwd, 4),
            "sgemm_gflops": round(peak, 2),
            "fwd_flops": mine["fwd_flops"],
            "read_gbps": gbps,
            "weight_mib": round(weight_bytes / 2**20, 1),
            "fwd_floor_ms": round(weight_bytes / (gbps * 1e9) * 1e3, 2),
            "io_mib": round(io_bytes / 2**20, 1),
            "fwd_io_floor_ms": round(io_bytes / (gbps * 1e9) * 1e3, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
