"""The anchor for `radius_graph` (BENCHMARKS.md): vesin, a C++ neighbour list from PyPI, on the
same graphs as ours. e3nn builds its graphs with torch_cluster, which has no wheel on PyPI.

    tools/reference/.venv/bin/python tools/reference/compare_graph.py [--nodes 100000,1000000]

For each N: positions `randn(N, 3) * (N / 100)^(1/3)` (f64: vesin's type), r = 1.8 (the
convolution guide's density, ~54 neighbours per atom), no periodic cell, the full list (both
directions, as ours). Prints one JSON object per line: {"nodes", "edges", "vesin_s"}, the
median of --reps builds after one warm-up. Our side: `GRAPH_BENCH_N=N GRAPH_BENCH_REPS=3
RAYON_NUM_THREADS=2 target/release/deps/graph-* --peak` (`cargo bench -p equivariant-core
--bench graph --no-run` builds it).
"""

import argparse
import json
import time

import numpy as np
import vesin


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", default="100000,1000000")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for n in [int(x) for x in args.nodes.split(",")]:
        rng = np.random.default_rng(args.seed)
        pos = rng.standard_normal((n, 3)) * (n / 100) ** (1 / 3)
        nl = vesin.NeighborList(cutoff=1.8, full_list=True)
        box = np.zeros((3, 3))
        times = []
        for rep in range(args.reps + 1):
            t0 = time.perf_counter()
            (i,) = nl.compute(points=pos, box=box, periodic=False, quantities="i")
            if rep > 0:
                times.append(time.perf_counter() - t0)
        print(json.dumps({"nodes": n, "edges": int(len(i)), "vesin_s": round(float(np.median(times)), 4)}), flush=True)


if __name__ == "__main__":
    main()
