"""Side-by-side timings of e3nn's reference models: e3nn 0.6.0 eager vs ours.

    tools/reference/.venv/bin/python tools/reference/compare_models.py [--nodes 1000,10000]
        [--reps 5] [--warmup 1] [--threads 2] [--seed 0] [--bin target/release/equivariant]
        [--mul 50] [--layers 3] [--lmax 2] [--max-radius 2.5]

The model is v2106's SimpleNetwork("3x0e + 2x1o", "4x0e + 1x1o", max_radius, num_neighbors =
the graph's average degree, num_nodes = N, mul, layers, lmax) with e3nn's defaults (pooled
output), on one graph of N nodes at the guide's density (positions randn(N, 3) * (N/100)^(1/3)),
f32. Forward = the model on (pos, x); forward+backward = then the gradient of sum(out^2) with
respect to pos, x and every parameter. Medians of --reps after --warmup.

e3nn's SimpleNetwork builds its graph inside forward with an O(N^2) cdist; here that step is
replaced by a lookup of the same graph built once beforehand, so e3nn's times exclude the graph.
Ours include it (our forward builds its radius graph with a cell list every call). e3nn runs in
its own subprocess per N; e3nn_peak_mib is that process's peak RSS (ru_maxrss, torch
included); ours_peak_mib is our process's.

Our side runs `<bin> bench model --nodes N --reps R --warmup W --threads T --json ...` with
RAYON_NUM_THREADS=T. Seeds are not shared across languages.

Prints one JSON object per line:
  {"model", "nodes", "edges", "ours_fwd_ms", "e3nn_fwd_ms", "ours_fwd_bwd_ms", "e3nn_fwd_bwd_ms",
   "ours_peak_mib", "e3nn_peak_mib", "sgemm_gflops", "fwd_speedup"?, "fwd_bwd_speedup"?,
   "e3nn_error"? (what failed under the memory cap), "ours_edges"?, "fwd_speedup_per_edge"?,
   "fwd_bwd_speedup_per_edge"? (the ratios times ours_edges / edges, where the graphs differ)}
"""

import argparse
import json
import os
import resource
import subprocess
import sys

from compare_conv import DEFAULT_BIN, HERE, ROOT, last_json_line, rss_mib, run_ours


def e3nn_child(nodes, args):
    """Times e3nn's SimpleNetwork at one N in this (fresh) process and prints one JSON line after
    the forward, then one after the forward+backward (which may run out of memory under the
    --mem-cap-gib address-space cap: then the row says so)."""
    cap = int(args.mem_cap_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    from e3nn.nn.models.v2106 import gate_points_networks

    from guide_e3nn import guide_positions, radius_graph
    from timing import median_ms

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    pos = guide_positions(nodes)
    edge_src, edge_dst = radius_graph(pos, args.max_radius)
    edge_index = torch.stack([edge_src, edge_dst])
    # The graph, built once: SimpleNetwork.preprocess calls this module-level function.
    gate_points_networks.radius_graph = lambda pos, r_max, batch: edge_index
    net = gate_points_networks.SimpleNetwork(
        "3x0e + 2x1o",
        "4x0e + 1x1o",
        max_radius=args.max_radius,
        num_neighbors=max(len(edge_src) / nodes, 1.0),
        num_nodes=nodes,
        mul=args.mul,
        layers=args.layers,
        lmax=args.lmax,
    )
    x = net.irreps_in.randn(nodes, -1)

    def forward():
        with torch.no_grad():
            net({"pos": pos, "x": x})

    def forward_backward():
        p, xx = pos.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out = net({"pos": p, "x": xx})
        torch.autograd.grad(out.pow(2).sum(), [p, xx] + list(net.parameters()))

    row = {"nodes": nodes, "edges": len(edge_src), "fwd_ms": None, "fwd_bwd_ms": None}
    for key, fn in [("fwd_ms", forward), ("fwd_bwd_ms", forward_backward)]:
        try:
            row[key] = median_ms(fn, args.reps, args.warmup)
        except (RuntimeError, MemoryError) as err:
            row["error"] = f"{key[:-3]} failed under the {args.mem_cap_gib} GiB cap: {str(err)[:200]}"
            break
        finally:
            row["peak_mib"] = rss_mib()
            print(json.dumps(row), flush=True)


def e3nn(nodes, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(nodes)] + child_args(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    obj = last_json_line(proc.stdout)
    if obj is None:
        return {"error": f"exit {proc.returncode}: {proc.stderr[-300:]}"}
    return obj


def common_args(args):
    return ["--reps", str(args.reps), "--warmup", str(args.warmup), "--threads", str(args.threads), "--seed",
            str(args.seed), "--mul", str(args.mul), "--layers", str(args.layers), "--lmax", str(args.lmax),
            "--max-radius", str(args.max_radius)]


def child_args(args):
    return common_args(args) + ["--mem-cap-gib", str(args.mem_cap_gib)]


def ours(nodes, args):
    return run_ours(args.bin, ["model", "--nodes", str(nodes)] + common_args(args), args.threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="1000,10000", help="comma-separated node counts")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mul", type=int, default=50)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--lmax", type=int, default=2)
    parser.add_argument("--max-radius", type=float, default=2.5)
    parser.add_argument("--mem-cap-gib", type=float, default=18.0,
                        help="address-space cap of the e3nn process (the machine has 24 GiB)")
    parser.add_argument("--bin", default=DEFAULT_BIN, help="our CLI (default: target/release/equivariant)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        e3nn_child(args.child, args)
        return

    import torch

    from timing import sgemm_gflops

    torch.set_num_threads(args.threads)
    peak = round(sgemm_gflops(), 2)
    for nodes in (int(n) for n in args.nodes.split(",")):
        mine = ours(nodes, args)
        theirs = e3nn(nodes, args)
        row = {
            "model": "SimpleNetwork",
            "nodes": nodes,
            "edges": theirs.get("edges"),
            "ours_fwd_ms": round(mine["ours_fwd_ms"], 3),
            "e3nn_fwd_ms": theirs.get("fwd_ms") and round(theirs["fwd_ms"], 3),
            "ours_fwd_bwd_ms": round(mine["ours_fwd_bwd_ms"], 3),
            "e3nn_fwd_bwd_ms": theirs.get("fwd_bwd_ms") and round(theirs["fwd_bwd_ms"], 3),
            "ours_peak_mib": mine.get("ours_peak_mib"),
            "e3nn_peak_mib": theirs.get("peak_mib") and round(theirs["peak_mib"], 1),
            "sgemm_gflops": peak,
        }
        if "error" in theirs:
            row["e3nn_error"] = theirs["error"]
        if theirs.get("fwd_ms") and theirs.get("fwd_bwd_ms"):
            row["fwd_speedup"] = round(theirs["fwd_ms"] / mine["ours_fwd_ms"], 2)
            row["fwd_bwd_speedup"] = round(theirs["fwd_bwd_ms"] / mine["ours_fwd_bwd_ms"], 2)
        if mine.get("edges") != theirs.get("edges"):
            row["ours_edges"] = mine.get("edges")
            # The two graphs come from different random positions: per edge, the times
            # compare the same work.
            if "fwd_speedup" in row and mine.get("edges") and theirs.get("edges"):
                per_edge = mine["edges"] / theirs["edges"]
                row["fwd_speedup_per_edge"] = round(row["fwd_speedup"] * per_edge, 2)
                row["fwd_bwd_speedup_per_edge"] = round(row["fwd_bwd_speedup"] * per_edge, 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
