"""e3nn 0.6.0 fixtures for e3nn.nn.FullyConnectedNet and the convolution of e3nn's guide.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_nn.py

Writes two files under crates/equivariant/tests/fixtures/ (float64 throughout, full repr):

- fully_connected_net.json: {"generator", "e3nn", "torch", "dtype", "cases": [...]}, one case
  per FullyConnectedNet(hs, act, variance_in, variance_out, out_act): e3nn's own weights
  (layer i's `weight` parameter, shape [h_in, h_out], applied as x @ W, flattened row-major),
  the normalize2mom constant e3nn multiplies the activation by, a batch of 6 inputs, the
  output, a random cotangent g and the autograd gradients of sum(out * g) with respect to the
  input and every layer's weight.
- convolution.json: {"generator", "e3nn", "torch", "dtype", "cases": [...]}, the guide's
  `conv` function
      f_out[i] = 1/sqrt(z) sum_{edges j->i} tp(f_in[j], Y(pos[i] - pos[j]), fc(emb(|pos[i] - pos[j]|)))
  exactly as the guide computes it (spherical harmonics normalize=True / 'component', the
  embedding soft_one_hot_linspace(...) * sqrt(num_basis), FullyConnectedNet fc,
  FullyConnectedTensorProduct(shared_weights=False) tp, sum over edges into their destination
  with index_add instead of torch_scatter), z = num_edges / num_nodes. The graph is every
  ordered pair src != dst with |pos[dst] - pos[src]| < max_radius, sorted by (dst, src); no
  pair sits within 1e-6 of max_radius. Each case records the intermediate sh, emb and
  tp weights, the output, a random cotangent g and the gradients of sum(f_out * g) with
  respect to f_in, pos and the fc weights (the graph and z are held fixed). The tp weights
  (fc's output) are kept for the first "tp_weight_edges" edges only, to keep the file small.

Every case draws from its own fixed seed so a rerun gives the same files. 2 threads, as in
fixtures_math.py (the last bits of normalize2mom's Monte Carlo mean depend on the thread count).
"""

import json
import os

import torch

import e3nn
from e3nn import nn, o3
from e3nn.math import normalize2mom, soft_one_hot_linspace

from burn_fixtures import OUT, dump, flat, header

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

ACTS = {"relu": torch.relu, "silu": torch.nn.functional.silu, "tanh": torch.tanh, None: None}

BATCH = 6

# convolution.json keeps the fc output (the per-edge tp weights) only for the first
# min(E, TP_WEIGHT_FLOATS // weight_numel) edges: all 176 x 400 of the guide case would be 1.4 MB.
TP_WEIGHT_FLOATS = 8192


def act_constant(act):
    """The factor e3nn's FullyConnectedNet multiplies the activation by (None without one)."""
    return None if act is None else float(normalize2mom(ACTS[act]).cst)


def fc_layers(fc):
    """FullyConnectedNet's layers in order (its children are layer0, layer1, ...)."""
    return [getattr(fc, f"layer{i}") for i in range(len(fc.hs) - 1)]


# ---------------------------------------------------------------------------------------------
# 1. FullyConnectedNet
# ---------------------------------------------------------------------------------------------


def fc_case(hs, act, seed, variance_in=1, variance_out=1, out_act=False):
    torch.manual_seed(seed)
    fc = nn.FullyConnectedNet(hs, ACTS[act], variance_in=variance_in, variance_out=variance_out, out_act=out_act)
    layers = fc_layers(fc)
    for layer, (h1, h2) in zip(layers, zip(hs, hs[1:])):
        assert tuple(layer.weight.shape) == (h1, h2)
    x = torch.randn(BATCH, hs[0], requires_grad=True)
    out = fc(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "hs": list(hs),
        "act": act,
        "act_constant": act_constant(act),
        "variance_in": variance_in,
        "variance_out": variance_out,
        "out_act": out_act,
        "batch": BATCH,
        "weights": [flat(layer.weight) for layer in layers],
        "x": flat(x),
        "out": flat(out),
        "grad_out": flat(g),
        "grad_x": flat(x.grad),
        "grad_weights": [flat(layer.weight.grad) for layer in layers],
    }
    print(
        f"FullyConnectedNet{hs} act={act} var_in={variance_in} var_out={variance_out} out_act={out_act} "
        f"| cst={case['act_constant']} | out.pow(2).mean()={out.pow(2).mean().item():.4f}"
    )
    return case


def fc_cases(seed0):
    specs = [
        ([5, 16, 7], "relu", {}),
        ([3, 8, 8, 4], "silu", {}),
        ([4, 6, 3], "tanh", {"out_act": True}),
        ([4, 5, 2], None, {}),
        ([10, 16, 400], "relu", {"variance_in": 2, "variance_out": 3}),
        ([3, 7, 5, 2], "tanh", {"variance_in": 0.5, "variance_out": 4, "out_act": True}),  # var_out on an activated layer
        ([4, 5, 6, 3], None, {"variance_in": 2, "variance_out": 3}),  # linear: variances still scale
        ([6, 4], "silu", {}),  # a single layer: never activated unless out_act
        ([6, 4], "silu", {"variance_in": 2, "variance_out": 0.5, "out_act": True}),
    ]
    return [fc_case(hs, act, seed0 + k, **kw) for k, (hs, act, kw) in enumerate(specs)]


# ---------------------------------------------------------------------------------------------
# 2. The guide's convolution
# ---------------------------------------------------------------------------------------------


def graph(pos, max_radius):
    """Every ordered pair src != dst with |pos[dst] - pos[src]| < max_radius, sorted by (dst, src)."""
    with torch.no_grad():
        dist = (pos[None, :, :] - pos[:, None, :]).norm(dim=-1)  # dist[src, dst] = |pos[dst] - pos[src]|
        margin = (dist - max_radius).abs().min().item()
        assert margin > 1e-6, f"a pair sits {margin} from max_radius: pick another seed"
        mask = (dist < max_radius) & ~torch.eye(len(pos), dtype=torch.bool)
        dst, src = mask.T.nonzero(as_tuple=True)  # row-major over (dst, src)
    return src, dst


def conv_fields(name, irreps_in, irreps_out, irreps_sh, lmax, num_basis, basis, cutoff, hidden, act, max_radius,
                pos, f_in, edge_src, edge_dst, fc, tp):
    """The fields that describe a convolution case: its settings, positions, features, graph and
    MLP weights (shared with fixtures_forces.py)."""
    num_nodes, num_edges = len(pos), len(edge_src)
    return {
        "name": name,
        "irreps_in": str(irreps_in),
        "irreps_out": str(irreps_out),
        "irreps_sh": str(irreps_sh),
        "lmax": lmax,
        "num_basis": num_basis,
        "basis": basis,
        "cutoff": cutoff,
        "hidden": list(hidden),
        "act": act,
        "act_constant": act_constant(act),
        "max_radius": max_radius,
        "num_nodes": num_nodes,
        "num_edges": num_edges,
        "num_neighbors": num_edges / num_nodes,
        "pos": flat(pos),
        "f_in": flat(f_in),
        "edge_src": edge_src.tolist(),
        "edge_dst": edge_dst.tolist(),
        "fc_hs": list(fc.hs),
        "fc_weights": [flat(layer.weight) for layer in fc_layers(fc)],
        "weight_numel": tp.weight_numel,
    }


def conv_model(seed, irreps_in, irreps_out, lmax, num_basis, hidden, act, max_radius, num_nodes, scale,
               far_node=False):
    """A convolution case's random inputs and modules, drawn in a fixed order from `seed`, and
    its graph (shared with fixtures_forces.py): irreps_in, irreps_out, irreps_sh, pos, f_in,
    tp, fc, edge_src, edge_dst."""
    torch.manual_seed(seed)
    irreps_in, irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
    irreps_sh = o3.Irreps.spherical_harmonics(lmax)
    pos = torch.randn(num_nodes, 3) * scale
    if far_node:
        pos[-1] = torch.tensor([10.0, -10.0, 10.0]) * max_radius  # no neighbours at all
    f_in = irreps_in.randn(num_nodes, -1)
    tp = o3.FullyConnectedTensorProduct(irreps_in, irreps_sh, irreps_out, shared_weights=False)
    fc = nn.FullyConnectedNet([num_basis] + hidden + [tp.weight_numel], ACTS[act])
    edge_src, edge_dst = graph(pos, max_radius)
    return irreps_in, irreps_out, irreps_sh, pos, f_in, tp, fc, edge_src, edge_dst


def conv_case(name, seed, irreps_in, irreps_out, lmax, num_basis, basis, cutoff, hidden, act, max_radius,
              num_nodes, scale, far_node=False):
    irreps_in, irreps_out, irreps_sh, pos, f_in, tp, fc, edge_src, edge_dst = conv_model(
        seed, irreps_in, irreps_out, lmax, num_basis, hidden, act, max_radius, num_nodes, scale, far_node)
    layers = fc_layers(fc)
    num_edges = len(edge_src)
    num_neighbors = num_edges / num_nodes

    pos.requires_grad_(True)
    f_in.requires_grad_(True)
    edge_vec = pos[edge_dst] - pos[edge_src]
    sh = o3.spherical_harmonics(irreps_sh, edge_vec, normalize=True, normalization="component")
    emb = soft_one_hot_linspace(edge_vec.norm(dim=1), 0.0, max_radius, num_basis, basis, cutoff).mul(num_basis**0.5)
    weight = fc(emb)
    summand = tp(f_in[edge_src], sh, weight)
    f_out = summand.new_zeros(num_nodes, irreps_out.dim).index_add(0, edge_dst, summand).div(num_neighbors**0.5)
    g = torch.randn_like(f_out)
    (f_out * g).sum().backward()

    tp_rows = min(num_edges, TP_WEIGHT_FLOATS // tp.weight_numel)
    indeg = torch.bincount(edge_dst, minlength=num_nodes)
    case = {
        **conv_fields(name, irreps_in, irreps_out, irreps_sh, lmax, num_basis, basis, cutoff, hidden, act,
                      max_radius, pos, f_in, edge_src, edge_dst, fc, tp),
        "sh": flat(sh),
        "emb": flat(emb),
        "tp_weight_edges": tp_rows,
        "tp_weight": flat(weight[:tp_rows]),
        "f_out": flat(f_out),
        "grad_out": flat(g),
        "grad_f_in": flat(f_in.grad),
        "grad_pos": flat(pos.grad),
        "grad_fc_weights": [flat(layer.weight.grad) for layer in layers],
    }
    print(
        f"{name}: {tp} ({tp.weight_numel} weights), fc {fc.hs}, {num_nodes} nodes, {num_edges} edges, "
        f"z = {num_neighbors:.3f}, nodes without incoming edge: {(indeg == 0).sum().item()}, "
        f"f_out.pow(2).mean() = {f_out.pow(2).mean().item():.4f}"
    )
    return case


def conv_cases(seed0):
    return [
        conv_case(
            "guide", seed0, "10x0e + 10x1e", "20x0e + 10x1e", lmax=2, num_basis=10, basis="smooth_finite",
            cutoff=False, hidden=[16], act="relu", max_radius=1.8, num_nodes=20, scale=0.8,
        ),
        conv_case(
            "gaussian_cutoff_lmax3", seed0 + 1, "4x0e + 2x1o + 1x2e", "3x0e + 2x1o + 2x2e", lmax=3, num_basis=8,
            basis="gaussian", cutoff=True, hidden=[12, 12], act="silu", max_radius=1.5, num_nodes=16, scale=0.8,
            far_node=True,
        ),
    ]


def main():
    fc = fc_cases(7000)
    dump("fully_connected_net", {**header("tools/reference/fixtures_nn.py"), "cases": fc})
    conv = conv_cases(8000)
    assert any(v == 0 for v in torch.bincount(torch.tensor(conv[1]["edge_dst"]), minlength=conv[1]["num_nodes"]).tolist())
    dump("convolution", {**header("tools/reference/fixtures_nn.py"), "cases": conv})


if __name__ == "__main__":
    main()
