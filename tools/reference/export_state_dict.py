"""A small e3nn 0.6.0 model's state_dict as safetensors, with its outputs, for the Rust loader.

Run from the repository root with the pinned venv (see tools/reference/README.md; needs the
`safetensors` package):

    tools/reference/.venv/bin/python tools/reference/export_state_dict.py

Writes two files under crates/equivariant/tests/fixtures/ (float64 throughout):

- e3nn_model.safetensors: model.state_dict() saved with safetensors.torch.save_file (every
  tensor contiguous, float64), without the buffers e3nn derives from the irreps at construction
  (`*.output_mask`, and the empty `weight` buffer of weightless tensor products); those are
  listed under "dropped_keys" in the JSON.
- e3nn_model.json: {"generator", "e3nn", "torch", "dtype", "keys": {key: shape},
  "dropped_keys": {key: shape}, "irreps": {name: str(irreps)}, "tp_instructions": [[i_in1, i_in2,
  i_out, connection_mode, has_weight, path_weight], ...], "act_constants": {"silu", "sigmoid"}
  (normalize2mom), "bn_eps", "batch", "x", "y", "z", "lin1_out", "gate_out", "tp_out", "out",
  "fc_out", "description" (each key's meaning and layout)}; x [4, 10], y [4, 4],
  z [4, 3], out [4, 10], fc_out [4, 6], the intermediates lin1_out [4, 24], gate_out [4, 20],
  tp_out [4, 12], all flattened row-major.

The model (eval mode, so BatchNorm uses its running statistics):

    lin1 = o3.Linear("4x0e+2x1o", "8x0e+4x0e+4x1o", biases=True)
    gate = nn.Gate("8x0e", [silu], "4x0e", [sigmoid], "4x1o")
    tp   = o3.FullyConnectedTensorProduct(gate.irreps_out, "0e+1o", "6x0e+2x1o")
    bn   = nn.BatchNorm("6x0e+2x1o")
    fc   = nn.FullyConnectedNet([3, 8, 6], silu)
    forward(x, y, z) = (bn(tp(gate(lin1(x)), y)), fc(z))

Every parameter and running statistic is drawn at random from seed 0 (biases non-zero,
BatchNorm weights in [0.5, 1.5), running variances in [0.5, 1.5)); the inputs from seed 1.
"""

import json
import os

import torch
from safetensors.torch import load_file, save_file

import e3nn
from e3nn import nn, o3
from e3nn.math import normalize2mom

from burn_fixtures import OUT, dump, flat, header

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

BATCH = 4

silu = torch.nn.functional.silu


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin1 = o3.Linear("4x0e+2x1o", "8x0e+4x0e+4x1o", biases=True)
        self.gate = nn.Gate("8x0e", [silu], "4x0e", [torch.sigmoid], "4x1o")
        assert self.gate.irreps_in.dim == self.lin1.irreps_out.dim
        self.tp = o3.FullyConnectedTensorProduct(self.gate.irreps_out, "0e+1o", "6x0e+2x1o")
        self.bn = nn.BatchNorm("6x0e+2x1o")
        self.fc = nn.FullyConnectedNet([3, 8, 6], silu)

    def forward(self, x, y, z):
        return self.bn(self.tp(self.gate(self.lin1(x)), y)), self.fc(z)


DESCRIPTION = (
    "lin1.weight [56]: o3.Linear('4x0e+2x1o' -> '8x0e+4x0e+4x1o') weights, one [mul_in, mul_out] row-major block per "
    "instruction, instructions ordered input block outer, output block inner over equal irreps: (0e->8x0e) [4, 8], "
    "(0e->4x0e) [4, 4], (1o->4x1o) [2, 4]; each block's output is alpha^-1/2 * sum_u W[u, w] x[u, i] with alpha the "
    "summed mul_in of the instructions into that output block ('element' normalization: 4, 4, 2). "
    "lin1.bias [12]: the biases of the two 0e output blocks (8 then 4), added after the weighted sum. "
    "gate: no parameters; its input '8x0e+4x0e+4x1o' is sorted and simplified to '12x0e+4x1o' "
    "(scalars 0..8, gates 8..12, gated 12..24); output = c_silu * silu(scalars) ++ (c_sigmoid * sigmoid(gates[k])) * "
    "gated[k] for the four 1o vectors ('8x0e+4x1o', 20 values). "
    "tp.weight [96]: FullyConnectedTensorProduct('8x0e+4x1o' x '1x0e+1x1o' -> '6x0e+2x1o'), connection 'uvw', "
    "irrep_normalization 'component', path_normalization 'element'; instructions (i1 outer, i2, i_out inner, "
    "every allowed path): (8x0e,0e->6x0e) [8,1,6], (8x0e,1o->2x1o) [8,1,2], (4x1o,0e->2x1o) [4,1,2], "
    "(4x1o,1o->6x0e) [4,1,6], each flattened row-major [mul1, mul2, mul_out] and concatenated; see "
    "tensor_product.json for the path weights. "
    "bn.weight [8]: one scale per irrep copy (6 scalars then 2 vectors); bn.bias [6]: one per 0e channel; "
    "bn.running_mean [6]: one per 0e channel; bn.running_var [8]: one per irrep copy. In eval mode, out = "
    "(x - running_mean) * (running_var + eps)^-1/2 * weight + bias for the 0e channels and "
    "x * (running_var + eps)^-1/2 * weight for each 1o vector (eps 1e-5). "
    "fc.layer0.weight [3, 8], fc.layer1.weight [8, 6]: nn.FullyConnectedNet([3, 8, 6], silu), layer i's weight is "
    "[h_in, h_out], applied as h = c_silu * silu(x @ W0 / sqrt(3)), fc_out = h @ W1 / sqrt(8) (variance_in = "
    "variance_out = 1; the last layer has no activation). c_silu, c_sigmoid: 'act_constants' (normalize2mom)."
)


def main():
    torch.manual_seed(0)
    model = Model()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p))
        model.bn.weight.copy_(torch.rand_like(model.bn.weight) + 0.5)
        model.bn.running_mean.copy_(torch.randn_like(model.bn.running_mean))
        model.bn.running_var.copy_(torch.rand_like(model.bn.running_var) + 0.5)
    model.eval()

    torch.manual_seed(1)
    x = o3.Irreps("4x0e+2x1o").randn(BATCH, -1)
    y = o3.Irreps("0e+1o").randn(BATCH, -1)
    z = torch.randn(BATCH, 3)
    with torch.no_grad():
        lin1_out = model.lin1(x)
        gate_out = model.gate(lin1_out)
        tp_out = model.tp(gate_out, y)
        out, fc_out = model(x, y, z)
        assert torch.equal(out, model.bn(tp_out))

    state = model.state_dict()
    derived = lambda k, v: k.endswith(".output_mask") or v.numel() == 0
    dropped = {k: list(v.shape) for k, v in state.items() if derived(k, v)}
    keep = {k: v.detach().contiguous().clone() for k, v in state.items() if not derived(k, v)}
    assert all(v.dtype == torch.float64 for v in keep.values())

    os.makedirs(OUT, exist_ok=True)
    st_path = os.path.join(OUT, "e3nn_model.safetensors")
    save_file(keep, st_path, metadata={"generator": "tools/reference/export_state_dict.py", "e3nn": e3nn.__version__})

    # round trip: a fresh model loads the file (strict=False only for the dropped derived buffers)
    torch.manual_seed(123)
    fresh = Model()
    missing, unexpected = fresh.load_state_dict(load_file(st_path), strict=False)
    assert sorted(missing) == sorted(dropped) and not unexpected, (missing, unexpected)
    fresh.eval()
    with torch.no_grad():
        out2, fc_out2 = fresh(x, y, z)
    assert torch.equal(out, out2) and torch.equal(fc_out, fc_out2)

    data = {
        **header("tools/reference/export_state_dict.py"),
        "keys": {k: list(v.shape) for k, v in keep.items()},
        "dropped_keys": dropped,
        "irreps": {
            "lin1_in": str(model.lin1.irreps_in),
            "lin1_out": str(model.lin1.irreps_out),
            "gate_in": str(model.gate.irreps_in),
            "gate_out": str(model.gate.irreps_out),
            "tp_in2": str(model.tp.irreps_in2),
            "tp_out": str(model.tp.irreps_out),
            "bn": str(model.bn.irreps),
        },
        "tp_instructions": [[i.i_in1, i.i_in2, i.i_out, i.connection_mode, i.has_weight, i.path_weight]
                            for i in model.tp.instructions],
        "act_constants": {"silu": float(normalize2mom(silu).cst), "sigmoid": float(normalize2mom(torch.sigmoid).cst)},
        "bn_eps": model.bn.eps,
        "batch": BATCH,
        "x": flat(x),
        "y": flat(y),
        "z": flat(z),
        "lin1_out": flat(lin1_out),
        "gate_out": flat(gate_out),
        "tp_out": flat(tp_out),
        "out": flat(out),
        "fc_out": flat(fc_out),
        "description": DESCRIPTION,
    }
    json_path = os.path.join(OUT, "e3nn_model.json")
    with open(json_path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    for path in (st_path, json_path):
        print(f"{os.path.normpath(path)}: {os.path.getsize(path)} bytes")
    print("kept:", data["keys"])
    print("dropped:", dropped)
    print("tp instructions:", data["tp_instructions"])
    print(f"out.pow(2).mean() = {out.pow(2).mean().item():.4f}, fc_out.pow(2).mean() = {fc_out.pow(2).mean().item():.4f}")


if __name__ == "__main__":
    main()
