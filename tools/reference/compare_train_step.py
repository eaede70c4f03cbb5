"""Side-by-side timings of one force-training step: e3nn 0.6.0 eager (create_graph=True) vs ours.

    tools/reference/.venv/bin/python tools/reference/compare_train_step.py [--nodes 1000,10000]
        [--reps 5] [--warmup 1] [--threads 2] [--seed 0] [--bin target/release/equivariant]
        [--case guide]

The potential (--case guide) is the guide's convolution (guide_e3nn.GuideConv: 10x0e+10x1e ->
20x0e+10x1e, harmonics l <= 2, FullyConnectedNet([10, 16, 400], relu), smooth_finite without
cutoff, max_radius 1.8, f32, the guide's density) with the energy E = sum(f_out * c), c a fixed
random [N, 50]; --case model is three such convolutions, each of the first two followed by
e3nn's Gate("10x0e", [silu], "10x0e", [sigmoid], "10x1e") (20x0e+10x1e -> 10x0e+10x1e). One
step, timed as the median of --reps after --warmup:
  forces = -autograd.grad(E, pos, create_graph=True);
  L = (E - e_ref)^2 + mean((F - f_ref)^2);
  the gradient of L with respect to every weight of the radial MLPs (through the forces).
The graph is built once, untimed. e3nn runs in its own subprocess per N; e3nn_peak_mib is that
process's peak RSS (ru_maxrss, torch included).

Our side runs `<bin> bench train-step --case C --nodes N --reps R --warmup W --threads T --json`
with RAYON_NUM_THREADS=T: the same step (forces::training_gradients: the energy, forces and
dE/dtheta, then the tangent pass and its backward) and the energy-only forward + backward
(energy and its gradient with respect to the edge vectors and every parameter). Seeds are not
shared across languages.

Prints one JSON object per line:
  {"case", "nodes", "edges", "ours_step_ms", "e3nn_step_ms", "ours_energy_fwd_bwd_ms",
   "ours_step_over_energy" (the median of per-pair ratios, the two timed alternately),
   "ours_peak_mib", "e3nn_peak_mib", "sgemm_gflops", "ours_edges"?}
"""

import argparse
import json
import os
import subprocess
import sys

from compare_conv import ROOT, DEFAULT_BIN, HERE, last_json_line, rss_mib, run_ours


def e3nn_child(case, nodes, reps, warmup, threads, seed):
    """Times e3nn's step at one N in this (fresh) process and prints one JSON line."""
    import torch
    from e3nn import nn

    from guide_e3nn import GuideConv, guide_positions, radius_graph
    from timing import median_ms

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    convs = [GuideConv(cutoff=False) for _ in range(3 if case == "model" else 1)]
    gate = nn.Gate("10x0e", [torch.nn.functional.silu], "10x0e", [torch.sigmoid], "10x1e")
    pos = guide_positions(nodes)
    f_in = convs[0].irreps_input.randn(nodes, -1)
    c = torch.randn(nodes, convs[-1].irreps_output.dim)
    e_ref, f_ref = torch.randn(()), torch.randn(nodes, 3)
    edge_src, edge_dst = radius_graph(pos, convs[0].max_radius)
    num_neighbors = len(edge_src) / nodes
    pos = pos.clone().requires_grad_(True)
    params = [p for conv in convs for p in conv.fc.parameters()]

    def potential():
        h = f_in
        for i, conv in enumerate(convs):
            if i > 0:
                h = gate(h)
            h = conv.given_graph(h, pos, edge_src, edge_dst, num_neighbors)
        return h

    def step():
        energy = (potential() * c).sum()
        (grad_pos,) = torch.autograd.grad(energy, pos, create_graph=True)
        loss = (energy - e_ref) ** 2 + (-grad_pos - f_ref).pow(2).mean()
        torch.autograd.grad(loss, params)

    step_ms = median_ms(step, reps, warmup)
    print(json.dumps({"nodes": nodes, "edges": len(edge_src), "step_ms": step_ms, "peak_mib": rss_mib()}),
          flush=True)


def e3nn(nodes, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(nodes), "--case", args.case, "--reps", str(args.reps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    obj = last_json_line(proc.stdout)
    if proc.returncode != 0 or obj is None:
        raise SystemExit(f"e3nn at {nodes} nodes failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return obj


def ours(nodes, args):
    return run_ours(args.bin, ["train-step", "--case", args.case, "--nodes", str(nodes), "--reps", str(args.reps),
                               "--warmup", str(args.warmup), "--threads", str(args.threads), "--seed", str(args.seed)],
                    args.threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1000,10000", help="comma-separated node counts")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bin", default=DEFAULT_BIN, help="our CLI (default: target/release/equivariant)")
    parser.add_argument("--case", default="guide", choices=["guide", "model"],
                        help="the potential: the guide's convolution, or three of them with gates between")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        e3nn_child(args.case, args.child, args.reps, args.warmup, args.threads, args.seed)
        return

    import torch

    from timing import sgemm_gflops

    torch.set_num_threads(args.threads)
    peak = round(sgemm_gflops(), 2)
    for nodes in (int(n) for n in args.nodes.split(",")):
        mine = ours(nodes, args)
        theirs = e3nn(nodes, args)
        row = {
            "case": args.case,
            "nodes": nodes,
            "edges": theirs["edges"],
            "ours_step_ms": round(mine["step_ms"], 3),
            "e3nn_step_ms": round(theirs["step_ms"], 3),
            "ours_energy_fwd_bwd_ms": round(mine["energy_fwd_bwd_ms"], 3),
            "ours_step_over_energy": mine.get("step_over_energy"),
            "ours_peak_mib": mine.get("step_peak_mib"),
            "e3nn_peak_mib": round(theirs["peak_mib"], 1),
            "sgemm_gflops": peak,
        }
        if mine.get("edges") != theirs["edges"]:
            row["ours_edges"] = mine.get("edges")
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
