"""e3nn's convolution guide (docs/guide/convolution.rst, e3nn 0.6.0) as a script, in plain torch.

    tools/reference/.venv/bin/python tools/reference/guide_e3nn.py [--nodes 100] [--seed 0] [--threads 2] [--reps 5]

The guide's story step by step, with the numbers it prints: the graph (edge count, average
degree z), the second moments of the input features, spherical harmonics and radial embedding,
the tensor product and its weight count, the mean and std of the MLP's output (the per-edge tp
weights), the second moments of the summands and of f_out, the equivariance check
(torch.allclose at rtol = atol = 1e-4 under a random rotation) and the time of each stage.

Differences from the guide, none of which changes a number:
- torch_cluster.radius_graph is replaced by `radius_graph` below (exact distances, no self
  loops, no neighbour limit like the guide's max_num_neighbors = N - 1, chunked so that
  10000 nodes fit in memory; edges sorted by (dst, src)), torch_scatter.scatter by index_add.
- Positions are randn(N, 3) * (N / 100)^(1/3): the guide's density (100 nodes of randn) at
  any N, so the average degree stays ~20.
- Timings are in ms: per stage, the median over --reps passes after one untimed warm-up pass.
f32 (torch's default dtype), like the guide.
"""

import argparse
import statistics
import time

import torch
from e3nn import nn, o3
from e3nn.math import soft_one_hot_linspace

IRREPS_INPUT = "10x0e + 10x1e"
IRREPS_OUTPUT = "20x0e + 10x1e"
LMAX = 2
MAX_RADIUS = 1.8
NUM_BASIS = 10
HIDDEN = [16]


def guide_positions(num_nodes):
    """randn(N, 3) scaled to the guide's density (100 nodes of randn(100, 3))."""
    return torch.randn(num_nodes, 3) * (num_nodes / 100) ** (1 / 3)


def radius_graph(pos, r, chunk=1024):
    """(edge_src, edge_dst): every ordered pair src != dst with |pos[dst] - pos[src]| < r,
    sorted by (dst, src). Distances are exact (no matmul trick); memory O(chunk * N)."""
    n = len(pos)
    srcs, dsts = [], []
    with torch.no_grad():
        for start in range(0, n, chunk):
            block = pos[start:start + chunk]
            dist = torch.cdist(block, pos, compute_mode="donot_use_mm_for_euclid_dist")  # [dst, src]
            mask = dist < r
            rows = torch.arange(len(block))
            mask[rows, rows + start] = False
            dst, src = mask.nonzero(as_tuple=True)
            dsts.append(dst + start)
            srcs.append(src)
    return torch.cat(srcs), torch.cat(dsts)


def scatter_sum(src, index, dim_size):
    """torch_scatter.scatter(src, index, dim=0, dim_size=dim_size) with reduce='sum'."""
    return src.new_zeros(dim_size, src.shape[1]).index_add(0, index, src)


class GuideConv:
    """The guide's modules: irreps, tp, fc; `__call__` is the guide's `conv(f_in, pos)`."""

    def __init__(self, cutoff=False):
        self.irreps_input = o3.Irreps(IRREPS_INPUT)
        self.irreps_output = o3.Irreps(IRREPS_OUTPUT)
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax=LMAX)
        self.cutoff = cutoff
        self.max_radius = MAX_RADIUS
        self.tp = o3.FullyConnectedTensorProduct(self.irreps_input, self.irreps_sh, self.irreps_output, shared_weights=False)
        self.fc = nn.FullyConnectedNet([NUM_BASIS] + HIDDEN + [self.tp.weight_numel], torch.relu)

    def sh(self, edge_vec):
        return o3.spherical_harmonics(self.irreps_sh, edge_vec, normalize=True, normalization="component")

    def emb(self, edge_vec):
        return soft_one_hot_linspace(
            edge_vec.norm(dim=1), 0.0, self.max_radius, NUM_BASIS, "smooth_finite", self.cutoff
        ).mul(NUM_BASIS**0.5)

    def given_graph(self, f_in, pos, edge_src, edge_dst, num_neighbors):
        """The convolution on a fixed graph: sh + emb + fc + tp + scatter."""
        edge_vec = pos[edge_dst] - pos[edge_src]
        summand = self.tp(f_in[edge_src], self.sh(edge_vec), self.fc(self.emb(edge_vec)))
        return scatter_sum(summand, edge_dst, len(pos)).div(num_neighbors**0.5)

    def __call__(self, f_in, pos, num_neighbors):
        edge_src, edge_dst = radius_graph(pos, self.max_radius)
        return self.given_graph(f_in, pos, edge_src, edge_dst, num_neighbors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per stage (median)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    num_nodes = args.nodes

    conv = GuideConv(cutoff=False)
    print(f"irreps_input  = {conv.irreps_input}  (dim {conv.irreps_input.dim})")
    print(f"irreps_output = {conv.irreps_output}  (dim {conv.irreps_output.dim})")

    pos = guide_positions(num_nodes)
    edge_src, edge_dst = radius_graph(pos, MAX_RADIUS)
    edge_vec = pos[edge_dst] - pos[edge_src]
    num_neighbors = len(edge_src) / num_nodes
    print(f"\n{num_nodes} nodes (positions randn * {(num_nodes / 100) ** (1 / 3):.3f}), max_radius {MAX_RADIUS}")
    print(f"edge_src.shape = {tuple(edge_src.shape)}, average degree z = {num_neighbors:.3f}")

    f_in = conv.irreps_input.randn(num_nodes, -1)
    print(f"f_in.pow(2).mean()     = {f_in.pow(2).mean().item():.4f}   (should be close to 1)")

    print(f"\nirreps_sh = {conv.irreps_sh}")
    sh = conv.sh(edge_vec)
    print(f"sh.pow(2).mean()       = {sh.pow(2).mean().item():.4f}   (should be close to 1)")

    print(f"\n{conv.tp} needs {conv.tp.weight_numel} weights")
    used = sorted({str(conv.irreps_sh[ins.i_in2].ir) for ins in conv.tp.instructions})
    print(f"harmonics used by its paths: {' '.join(used)} (the 1o harmonic is excluded by parity)")

    emb = conv.emb(edge_vec)
    print(f"\nembedding {tuple(emb.shape)} ('smooth_finite', cutoff={conv.cutoff}, times sqrt({NUM_BASIS}))")
    print(f"emb.pow(2).mean()      = {emb.pow(2).mean().item():.4f}   (the second moment)")

    weight = conv.fc(emb)
    print(f"\n{conv.fc}: weight {tuple(weight.shape)}, {len(edge_src)} edges x {conv.tp.weight_numel}")
    print(f"weight.mean() = {weight.mean().item():.4f}, weight.std() = {weight.std().item():.4f}   (should be close to 0 and 1)")

    summand = conv.tp(f_in[edge_src], sh, weight)
    print(f"\nsummand {tuple(summand.shape)}, summand.pow(2).mean() = {summand.pow(2).mean().item():.4f}   (should be close to 1)")
    f_out = scatter_sum(summand, edge_dst, num_nodes).div(num_neighbors**0.5)
    print(f"f_out {tuple(f_out.shape)}, f_out.pow(2).mean() = {f_out.pow(2).mean().item():.4f}   (should be close to 1)")

    with torch.no_grad():
        rot = o3.rand_matrix()
        d_in = conv.irreps_input.D_from_matrix(rot)
        d_out = conv.irreps_output.D_from_matrix(rot)
        f_before = conv(f_in @ d_in.T, pos @ rot.T, num_neighbors)
        f_after = conv(f_in, pos, num_neighbors) @ d_out.T
    ok = torch.allclose(f_before, f_after, rtol=1e-4, atol=1e-4)
    print(f"\nequivariance: allclose(rtol=1e-4, atol=1e-4) = {ok}, max |diff| = {(f_before - f_after).abs().max().item():.2e}")

    def stages():
        times = {}
        wall = time.perf_counter()

        def tick(name):
            nonlocal wall
            now = time.perf_counter()
            times[name] = (now - wall) * 1e3
            wall = now

        edge_src, edge_dst = radius_graph(pos, MAX_RADIUS)
        edge_vec = pos[edge_dst] - pos[edge_src]
        tick("radius_graph")
        sh = conv.sh(edge_vec)
        tick("spherical_harmonics")
        emb = conv.emb(edge_vec)
        tick("embedding")
        weight = conv.fc(emb)
        tick("fc")
        summand = conv.tp(f_in[edge_src], sh, weight)
        tick("tensor_product")
        scatter_sum(summand, edge_dst, num_nodes).div(num_neighbors**0.5)
        tick("scatter")
        return times

    with torch.no_grad():
        stages()  # warm-up
        runs = [stages() for _ in range(args.reps)]
    times = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    total = sum(times.values())
    print(f"\ntime per stage ({torch.get_num_threads()} threads, no_grad, median of {args.reps} passes after a warm-up):")
    for name, ms in times.items():
        print(f"  {name:<20} {ms:10.3f} ms  {100 * ms / total:5.1f}%")
    print(f"  {'total':<20} {total:10.3f} ms")


if __name__ == "__main__":
    main()
