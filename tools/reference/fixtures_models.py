"""Fixtures of e3nn 0.6.0's reference models (e3nn.nn.models: v2106 SimpleNetwork and
NetworkForAGraphWithAttributes, gate_points_2101 Network) for the Rust crate.

Run from the repository root with the pinned venv (tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_models.py

For each case it writes, under crates/equivariant/tests/fixtures/:

- models_<case>.safetensors: the model's whole state_dict() as e3nn gives it (derived
  buffers `output_mask`, `_w3j_*` and empty weights included, as a user's
  `save_file(model.state_dict())` has them), every parameter redrawn from N(0, 1) (seed 0)
  so that nothing is zero (v2106's alpha starts at zero);
- models.json: {case: {"model", "config", inputs, "out", "c" (the loss weights:
  loss = sum(out * c)), "grad_pos", "grad_<input>", "grads": {our key: flat gradient}}}.
  Our keys are e3nn's with FullyConnectedNet's `layer{i}.weight` as `weights.{i}` and the
  last (bare) convolution's keys under `first.`, as the Rust loader maps them.

float64 throughout. The graphs: e3nn's own naive radius graph (pos[src] - pos[dst], no
neighbour limit), or the given edge_index.
"""

import os
import re

import torch
from safetensors.torch import save_file

from e3nn.nn.models.gate_points_2101 import Network
from e3nn.nn.models.v2106.gate_points_networks import NetworkForAGraphWithAttributes, SimpleNetwork

from burn_fixtures import OUT, dump, flat, header

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)


def our_key(key):
    key = re.sub(r"(^|\.)layer(\d+)\.weight$", r"\1weights.\2", key)
    return re.sub(r"(^|\.)layers\.(\d+)\.(sc|lin1|fc|tp|lin2|alpha)\.", r"\1layers.\2.first.\3.", key)


def randomize(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))


def save_state(model, case):
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    path = os.path.join(OUT, f"models_{case}.safetensors")
    save_file(state, path)
    print(f"{os.path.normpath(path)}: {os.path.getsize(path) // 1024} KiB")


def gradients(model, out, inputs):
    """loss = sum(out * c): the gradients of the inputs and of every parameter."""
    torch.manual_seed(2)
    c = torch.randn_like(out)
    grads = torch.autograd.grad((out * c).sum(), list(inputs.values()) + list(model.parameters()))
    n = len(inputs)
    result = {"c": flat(c)}
    for name, g in zip(inputs, grads[:n]):
        result[f"grad_{name}"] = flat(g)
    result["grads"] = {our_key(k): flat(g) for (k, _), g in zip(model.named_parameters(), grads[n:])}
    return result


def simple_network():
    config = dict(
        irreps_in="3x0e + 2x1o",
        irreps_out="4x0e + 1x1o",
        max_radius=2.0,
        num_neighbors=3.0,
        num_nodes=5.0,
        mul=2,
        layers=2,
        lmax=2,
        pool_nodes=True,
    )
    torch.manual_seed(0)
    model = SimpleNetwork(**config)
    randomize(model)
    save_state(model, "simple_network")
    torch.manual_seed(1)
    batch = torch.tensor([0] * 5 + [1] * 4)
    pos = (1.2 * torch.randn(len(batch), 3)).requires_grad_(True)
    x = model.irreps_in.randn(len(batch), -1).requires_grad_(True)
    out = model({"pos": pos, "x": x, "batch": batch})
    return {
        "model": "v2106.SimpleNetwork",
        "config": config,
        "pos": flat(pos),
        "batch": batch.tolist(),
        "x": flat(x),
        "out": flat(out),
        "out_shape": list(out.shape),
        **gradients(model, out, {"pos": pos, "x": x}),
    }


def network_for_a_graph_with_attributes():
    config = dict(
        irreps_node_input="3x0e + 2x1o",
        irreps_node_attr="4x0e + 1x1o",
        irreps_edge_attr="1e",
        irreps_node_output="3x0o + 1e",
        max_radius=2.0,
        num_neighbors=3.0,
        num_nodes=5.0,
        mul=2,
        layers=1,
        lmax=1,
        pool_nodes=False,
    )
    torch.manual_seed(0)
    model = NetworkForAGraphWithAttributes(**config)
    randomize(model)
    save_state(model, "network_for_a_graph_with_attributes")
    torch.manual_seed(1)
    n = 4
    edge_index = torch.tensor([[0, 1, 2, 3, 1, 0], [1, 2, 0, 0, 3, 2]])
    pos = torch.randn(n, 3).requires_grad_(True)
    node_input = model.irreps_node_input.randn(n, -1).requires_grad_(True)
    node_attr = model.irreps_node_attr.randn(n, -1).requires_grad_(True)
    edge_attr = model.irreps_edge_attr.randn(edge_index.shape[1], -1).requires_grad_(True)
    out = model(
        {"pos": pos, "edge_index": edge_index, "node_input": node_input, "node_attr": node_attr, "edge_attr": edge_attr}
    )
    return {
        "model": "v2106.NetworkForAGraphWithAttributes",
        "config": config,
        "pos": flat(pos),
        "src": edge_index[0].tolist(),
        "dst": edge_index[1].tolist(),
        "node_input": flat(node_input),
        "node_attr": flat(node_attr),
        "edge_attr": flat(edge_attr),
        "out": flat(out),
        "out_shape": list(out.shape),
        **gradients(
            model, out, {"pos": pos, "node_input": node_input, "node_attr": node_attr, "edge_attr": edge_attr}
        ),
    }


def gate_points_2101():
    config = dict(
        irreps_in="2x0e + 1x1o",
        irreps_hidden="4x0e + 4x0o + 2x1e + 2x1o",
        irreps_out="1x0e + 1x1o",
        irreps_node_attr="2x0e",
        irreps_edge_attr="0e + 1o + 2e",
        layers=2,
        max_radius=2.0,
        number_of_basis=5,
        radial_layers=1,
        radial_neurons=8,
        num_neighbors=3.0,
        num_nodes=5.0,
        reduce_output=True,
    )
    torch.manual_seed(0)
    model = Network(**config)
    randomize(model)
    save_state(model, "gate_points_2101")
    torch.manual_seed(1)
    batch = torch.tensor([0] * 4 + [1] * 5)
    pos = (1.2 * torch.randn(len(batch), 3)).requires_grad_(True)
    x = model.irreps_in.randn(len(batch), -1).requires_grad_(True)
    z = model.irreps_node_attr.randn(len(batch), -1).requires_grad_(True)
    out = model({"pos": pos, "x": x, "z": z, "batch": batch})
    return {
        "model": "gate_points_2101.Network",
        "config": config,
        "pos": flat(pos),
        "batch": batch.tolist(),
        "x": flat(x),
        "z": flat(z),
        "out": flat(out),
        "out_shape": list(out.shape),
        **gradients(model, out, {"pos": pos, "x": x, "z": z}),
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    data = {
        **header("tools/reference/fixtures_models.py"),
        "simple_network": simple_network(),
        "network_for_a_graph_with_attributes": network_for_a_graph_with_attributes(),
        "gate_points_2101": gate_points_2101(),
    }
    dump("models", data)


if __name__ == "__main__":
    main()
