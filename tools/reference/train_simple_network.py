"""Trains e3nn 0.6.0's v2106 SimpleNetwork on a toy invariant and exports it for the Rust
example `crates/equivariant/examples/simple_network.rs`.

Run from the repository root with the pinned venv (see tools/reference/README.md; needs the
`safetensors` package):

    tools/reference/.venv/bin/python tools/reference/train_simple_network.py

The task: clouds of 6 points drawn uniformly in a cube of side 1.6, each node with the input
feature 1 (1x0e); the target is the pair energy sum_{i<j} exp(-2 |r_i - r_j|^2), an invariant
of the cloud. The network (float32, e3nn's default dtype, as a user trains it):

    SimpleNetwork("1x0e", "1x0e", max_radius=1.5, num_neighbors=4.0, num_nodes=6.0,
                  mul=8, layers=2, lmax=2)

trained with Adam (lr 1e-2) for 300 steps on batches of 16 clouds (a batch vector, so the
model pools per graph), seed 0. Writes under crates/equivariant/examples/simple_network/:

- simple_network.safetensors: model.state_dict() as e3nn gives it (float32, derived buffers
  included), what a user saves with safetensors.torch.save_file;
- simple_network.json: {"generator", "e3nn", "torch", "config" (the constructor's
  arguments), "loss_first", "loss_last" (the training MSE at the first and last step), and
  for 8 held-out clouds: "pos" ([48, 3] flat), "x" ([48, 1] flat), "batch" (48 graph
  indices), "target" (8) and "e3nn_out" (8, the trained model's outputs)}.
"""

import json
import os

import torch
from safetensors.torch import save_file

import e3nn
from e3nn.nn.models.v2106.gate_points_networks import SimpleNetwork

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "equivariant", "examples",
                   "simple_network")

CONFIG = {"irreps_in": "1x0e", "irreps_out": "1x0e", "max_radius": 1.5, "num_neighbors": 4.0,
          "num_nodes": 6.0, "mul": 8, "layers": 2, "lmax": 2}
NODES = 6

torch.set_num_threads(2)


def clouds(n, generator):
    """n clouds as (pos [n * NODES, 3], x [n * NODES, 1], batch [n * NODES], target [n])."""
    pos = torch.rand(n, NODES, 3, generator=generator) * 1.6
    d2 = (pos[:, :, None, :] - pos[:, None, :, :]).pow(2).sum(-1)
    pair = torch.exp(-2 * d2).triu(diagonal=1).sum((1, 2))
    batch = torch.arange(n).repeat_interleave(NODES)
    return pos.reshape(-1, 3), torch.ones(n * NODES, 1), batch, pair


def main():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    net = SimpleNetwork(**CONFIG)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(300):
        pos, x, batch, target = clouds(16, generator)
        out = net({"pos": pos, "x": x, "batch": batch}).reshape(-1)
        loss = (out - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"training MSE: {losses[0]:.4f} at the first step, {losses[-1]:.5f} at the last")

    pos, x, batch, target = clouds(8, generator)
    with torch.no_grad():
        out = net({"pos": pos, "x": x, "batch": batch}).reshape(-1)
    os.makedirs(OUT, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    save_file(state, os.path.join(OUT, "simple_network.safetensors"))
    data = {
        "generator": "tools/reference/train_simple_network.py",
        "e3nn": e3nn.__version__,
        "torch": torch.__version__,
        "config": CONFIG,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "pos": pos.reshape(-1).tolist(),
        "x": x.reshape(-1).tolist(),
        "batch": batch.tolist(),
        "target": target.tolist(),
        "e3nn_out": out.tolist(),
    }
    with open(os.path.join(OUT, "simple_network.json"), "w") as f:
        json.dump(data, f, indent=1)
    for name in ("simple_network.safetensors", "simple_network.json"):
        path = os.path.join(OUT, name)
        print(f"{os.path.normpath(path)}: {os.path.getsize(path) // 1024} KiB")


if __name__ == "__main__":
    main()
