"""Side-by-side timings of the guide's convolution: e3nn 0.6.0 eager vs ours, same machine, same run.

    tools/reference/.venv/bin/python tools/reference/compare_conv.py [--nodes 100,1000,10000] [--reps 10]
        [--threads 2] [--seed 0] [--bin target/release/equivariant] [--build] [--e3nn-only]
        [--fused-only] [--e3nn-mem-cap-gib G] [--config guide|mace-medium|nequip-aspirin|...]

The convolution is the guide's (guide_e3nn.py): 10x0e+10x1e (x) Y^{l<=2} -> 20x0e+10x1e,
FullyConnectedTensorProduct with per-edge weights from FullyConnectedNet([10, 16, 400], relu)
on the 'smooth_finite' embedding (cutoff=False, as in the guide's `conv`), max_radius 1.8,
f32, positions randn(N, 3) * (N / 100)^(1/3) (the guide's density; the average degree grows
from ~30 at 100 nodes to ~55 at 10000 as the boundary matters less). The graph is built once,
untimed. Timed, median of --reps after warm-up (timing.median_ms):
  forward          = edge vectors + sh + emb + fc + tp + scatter on the fixed graph (no_grad);
  forward+backward = forward, then the gradient of f_out.pow(2).sum() with respect to f_in,
                     pos and the fc weights (torch.autograd.grad, nothing accumulates).
Each N runs e3nn in its own subprocess; e3nn_peak_mib is that process's peak RSS (ru_maxrss,
includes torch itself) and e3nn_base_mib its peak RSS before the timed runs (torch + the
inputs and the graph).

Our side runs `<bin> bench conv --nodes N --reps R --threads T --json` with RAYON_NUM_THREADS=T
and reads the last JSON line it prints: {"nodes", "edges", "fwd_ms", "fwd_bwd_ms", "peak_mib"?,
"unfused_fwd_ms"?, "unfused_fwd_bwd_ms"?, "unfused_peak_mib"?, ...}: fwd_ms is the default (fused)
path of nn::Convolution, unfused_* the same module with separate ops (forward_graph_unfused).
The binary is built by `cargo build --release -p equivariant-cli` (or pass --build). Both sides
time the same graph: the positions are drawn here (torch, --seed) and handed to e3nn's process
and to ours (`bench conv --positions FILE`); the features and weights are each side's own draws
(ours_edges is reported if our graph's edge count differs, which it should not). Before, each
side drew its own positions, and at 100 nodes the graphs' edge counts differed by up to a
quarter (2958 against 3642 at seed 0).

Prints one JSON object per line:
  {"config", "nodes", "edges", "ours_fwd_ms", "e3nn_fwd_ms", "ours_fwd_bwd_ms", "e3nn_fwd_bwd_ms",
   "sgemm_gflops", "ours_peak_mib"?, "e3nn_peak_mib", "e3nn_base_mib", "ours_unfused_fwd_ms"?,
   "ours_unfused_fwd_bwd_ms"?, "ours_unfused_peak_mib"?, "ours_edges"?, "e3nn_error"?}
(e3nn_fwd_bwd_ms is null and e3nn_error says why when e3nn's forward+backward did not fit under
--e3nn-mem-cap-gib; e3nn_peak_mib is then its peak up to the failure).
(with --e3nn-only the ours_* keys are left out). sgemm_gflops: timing.sgemm_gflops() measured
once at the start at T threads.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_BIN = os.path.join(ROOT, "target", "release", "equivariant")


def rss_mib():
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The radius of the --config graphs (not the guide's): average degree ~30 at the guide's
# density, as `equivariant bench conv --config NAME` (PLAN_RADIUS).
PLAN_RADIUS = 1.5


def write_positions(nodes, seed, directory):
    """The guide's positions for `nodes` nodes (`guide_positions` right after
    `torch.manual_seed(seed)`), written as text (`x y z` per line) into `directory`; returns
    the path."""
    import numpy as np
    import torch

    from guide_e3nn import guide_positions

    torch.manual_seed(seed)
    path = os.path.join(directory, f"positions_{nodes}.txt")
    np.savetxt(path, guide_positions(nodes).numpy())
    return path


def e3nn_child(nodes, reps, warmup, threads, seed, mem_cap_gib=None, config="guide", positions=None):
    """Times e3nn at one N in this (fresh) process and prints one JSON line (a first one after
    the forward, so a forward + backward that runs out of memory under `mem_cap_gib` still
    reports the forward). A `config` other than the guide is compare_tp.py's tensor product
    with per-edge weights from the guide's radial MLP, on the radius-PLAN_RADIUS graph."""
    if mem_cap_gib is not None:
        cap = int(mem_cap_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    from guide_e3nn import GuideConv, guide_positions, radius_graph
    from timing import median_ms

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    conv = GuideConv(cutoff=False)
    if config != "guide":
        from e3nn import nn

        from compare_tp import build

        conv.tp = build(config)
        conv.irreps_input, conv.irreps_sh = conv.tp.irreps_in1, conv.tp.irreps_in2
        conv.fc = nn.FullyConnectedNet([10, 16, conv.tp.weight_numel], torch.relu)
        conv.max_radius = PLAN_RADIUS
    # Drawn even when the positions come from a file, so the features drawn next are the same.
    pos = guide_positions(nodes)
    if positions is not None:
        import numpy as np

        pos = torch.tensor(np.loadtxt(positions, ndmin=2), dtype=torch.float32).reshape(nodes, 3)
    f_in = conv.irreps_input.randn(nodes, -1)
    edge_src, edge_dst = radius_graph(pos, conv.max_radius)
    num_neighbors = len(edge_src) / nodes
    base = rss_mib()

    with torch.no_grad():
        fwd = median_ms(lambda: conv.given_graph(f_in, pos, edge_src, edge_dst, num_neighbors), reps, warmup)

    pos_g = pos.clone().requires_grad_(True)
    f_in_g = f_in.clone().requires_grad_(True)
    params = list(conv.fc.parameters())

    def fwd_bwd():
        f_out = conv.given_graph(f_in_g, pos_g, edge_src, edge_dst, num_neighbors)
        torch.autograd.grad(f_out.pow(2).sum(), [f_in_g, pos_g, *params])

    row = {"nodes": nodes, "edges": len(edge_src), "fwd_ms": fwd, "fwd_bwd_ms": None,
           "peak_mib": rss_mib(), "base_mib": base}
    print(json.dumps(row), flush=True)
    try:
        row["fwd_bwd_ms"] = median_ms(fwd_bwd, reps, warmup)
    except (RuntimeError, MemoryError) as err:
        row["error"] = f"forward+backward failed under the {mem_cap_gib} GiB cap: {str(err)[:200]}"
    row["peak_mib"] = rss_mib()
    print(json.dumps(row), flush=True)


def run_ours(binary, bench_args, threads):
    """Runs `binary bench <bench_args> --json` on `threads` rayon threads from the repository
    root and returns its last JSON line (exits with its output when it fails)."""
    if not os.path.isfile(binary):
        raise SystemExit(f"{binary} not found: build it with `cargo build --release -p equivariant-cli` "
                         f"(or pass --bin PATH)")
    cmd = [binary, "bench"] + bench_args + ["--json"]
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    obj = last_json_line(proc.stdout)
    if proc.returncode != 0 or obj is None:
        raise SystemExit(f"`{' '.join(cmd)}` failed (exit {proc.returncode}) or printed no JSON line:\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-4000:]}")
    return obj


def last_json_line(text):
    """The last line of `text` that parses as a JSON object, or None."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def e3nn(nodes, args, positions):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(nodes), "--reps", str(args.reps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--seed", str(args.seed),
           "--positions", positions]
    if args.e3nn_mem_cap_gib is not None:
        cmd += ["--e3nn-mem-cap-gib", str(args.e3nn_mem_cap_gib)]
    cmd += ["--config", args.config]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    obj = last_json_line(proc.stdout)
    if obj is not None and proc.returncode != 0 and args.e3nn_mem_cap_gib is not None:
        obj["error"] = (f"exit {proc.returncode} under the {args.e3nn_mem_cap_gib} GiB cap after the "
                        f"forward: {proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else ''}")
        return obj
    if proc.returncode != 0 or obj is None:
        raise SystemExit(f"e3nn at {nodes} nodes failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return obj


def pick(obj, *keys):
    """The first of `keys` present in `obj` (the CLI may say fwd_ms or ours_fwd_ms)."""
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def ours(nodes, args, positions):
    bench_args = ["conv", "--nodes", str(nodes), "--reps", str(args.reps), "--threads", str(args.threads),
                  "--positions", positions]
    if args.fused_only:
        bench_args.append("--fused-only")
    obj = run_ours(args.bin, bench_args + ["--config", args.config], args.threads)
    fwd, fwd_bwd = pick(obj, "fwd_ms", "ours_fwd_ms"), pick(obj, "fwd_bwd_ms", "ours_fwd_bwd_ms")
    if fwd is None or fwd_bwd is None:
        raise SystemExit(f"`bench {' '.join(bench_args)}` printed no fwd_ms / fwd_bwd_ms: {obj}")
    return {"fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd, "peak_mib": pick(obj, "peak_mib", "ours_peak_mib"),
            "edges": obj.get("edges"), "unfused_fwd_ms": obj.get("unfused_fwd_ms"),
            "unfused_fwd_bwd_ms": obj.get("unfused_fwd_bwd_ms"), "unfused_peak_mib": obj.get("unfused_peak_mib")}


def compare(nodes, args, peak, scratch):
    """Both sides at `nodes` nodes on one graph (positions written into `scratch`): prints
    the row."""
    positions = write_positions(nodes, args.seed, scratch)
    mine = None if args.e3nn_only else ours(nodes, args, positions)
    theirs = e3nn(nodes, args, positions)
    row = {"config": args.config, "nodes": nodes, "edges": theirs["edges"]}
    if mine:
        row["ours_fwd_ms"] = round(mine["fwd_ms"], 4)
    row["e3nn_fwd_ms"] = round(theirs["fwd_ms"], 4)
    if mine:
        row["ours_fwd_bwd_ms"] = round(mine["fwd_bwd_ms"], 4)
    row["e3nn_fwd_bwd_ms"] = None if theirs["fwd_bwd_ms"] is None else round(theirs["fwd_bwd_ms"], 4)
    if theirs.get("error"):
        row["e3nn_error"] = theirs["error"]
    row["sgemm_gflops"] = peak
    if mine and mine["peak_mib"] is not None:
        row["ours_peak_mib"] = round(mine["peak_mib"], 1)
    row["e3nn_peak_mib"] = round(theirs["peak_mib"], 1)
    row["e3nn_base_mib"] = round(theirs["base_mib"], 1)
    for key in ("unfused_fwd_ms", "unfused_fwd_bwd_ms", "unfused_peak_mib"):
        if mine and mine.get(key) is not None:
            row["ours_" + key] = round(mine[key], 4)
    if mine and mine["edges"] is not None and mine["edges"] != theirs["edges"]:
        row["ours_edges"] = mine["edges"]
    print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", default="100,1000,10000", help="comma-separated node counts")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before each median")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bin", default=DEFAULT_BIN, help="our CLI (default: target/release/equivariant)")
    parser.add_argument("--build", action="store_true", help="cargo build --release -p equivariant-cli first")
    parser.add_argument("--e3nn-only", action="store_true", help="time e3nn alone")
    parser.add_argument("--fused-only", action="store_true",
                        help="time our fused path only (the unfused one needs ~27 GiB at 100000 nodes)")
    parser.add_argument("--e3nn-mem-cap-gib", type=float, default=None,
                        help="cap e3nn's address space (RLIMIT_AS); a forward+backward that does not fit "
                             "is reported as e3nn_error instead of failing the run")
    parser.add_argument("--config", default="guide",
                        help="guide, or a compare_tp.py configuration (e.g. mace-medium, nequip-aspirin) "
                             "as a convolution on the radius-1.5 graph (average degree ~30)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--positions", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child is not None:
        e3nn_child(args.child, args.reps, args.warmup, args.threads, args.seed, args.e3nn_mem_cap_gib,
                   args.config, args.positions)
        return

    import torch

    from timing import sgemm_gflops

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f}: with another process on the cores, torch's {args.threads} threads "
              f"wait on each other at every op and e3nn's times grow up to 20x; time on an idle machine",
              file=sys.stderr, flush=True)
    if args.build and not args.e3nn_only:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "equivariant-cli"], cwd=ROOT, check=True)
    peak = round(sgemm_gflops(), 2)
    with tempfile.TemporaryDirectory(prefix="compare_conv_") as scratch:
        for nodes in (int(n) for n in args.nodes.split(",")):
            compare(nodes, args, peak, scratch)


if __name__ == "__main__":
    main()
