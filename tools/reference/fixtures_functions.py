"""e3nn 0.6.0 fixtures for activations given as any function (closures) and for inputs with
any leading axes.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_functions.py

Writes crates/equivariant/tests/fixtures/functions.json (float64, full repr):

- randn: torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=float64), the points
  of e3nn's normalize2mom Monte Carlo. "head" (the first 40 of n = 1_000_000), "at" ([index,
  value] pairs), "short" (all 21 values of n = 21: the last 16 are drawn again).
- functions: for each named function (FUNCTIONS below; the Rust test writes the same formula
  with burn ops), e3nn's normalize2mom(f).cst and _is_id, and the parity nn.Activation gives a
  1x0o input (1, -1 or 0, from irreps_out).
- activation, gate, norm_activation, fully_connected_net: the modules with those functions,
  on inputs x of shape [2, 3, dim] (leading axes, as e3nn allows); out, a cotangent g, and the
  gradients of sum(out * g) with respect to x and every parameter (flat).
- linear, tensor_product: o3.Linear with internal random weights, and
  o3.FullyConnectedTensorProduct with external 1-D shared weights (weight_numel,), on [2, 3,
  dim] inputs; gradients of x (x1, x2) and the weights.
- spherical_harmonics: o3.spherical_harmonics(2, x, normalize=True) (l = 2 only) on [2, 3, 3] vectors.

Every array is flattened row-major; "shape" gives the input's shape. 2 threads, as
fixtures_modules.py.
"""

import torch

from e3nn import nn, o3
from e3nn.math import normalize2mom

from burn_fixtures import dump, flat, header

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

FUNCTIONS = {
    "sin": torch.sin,
    "square": lambda x: x * x,
    "softsign": lambda x: x / (1 + x.abs()),
    "softplus": lambda x: torch.log(1 + torch.exp(x)),
    "silu_closure": lambda x: x * torch.sigmoid(x),
    "cube": lambda x: x * x * x,
    "near_identity": lambda x: x * 1.0011306,
}

SHAPE = [2, 3]


def grad(t):
    return flat(t.grad if t.grad is not None else torch.zeros_like(t))


def randn_fixture():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1_000_000, generator=gen, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    short = torch.randn(21, generator=gen, dtype=torch.float64)
    return {
        "head": z[:40].tolist(),
        "at": [[i, z[i].item()] for i in (40, 1000, 123_457, 500_000, 999_999)],
        "short": short.tolist(),
    }


def functions_fixture():
    out = {}
    for name, f in FUNCTIONS.items():
        n = normalize2mom(f)
        try:
            p = nn.Activation("1x0o", [f]).irreps_out[0].ir.p
        except ValueError:  # neither even nor odd: e3nn refuses an odd input
            p = 0
        out[name] = {"cst": float(n.cst), "is_id": bool(n._is_id), "parity": int(p)}
    return out


def leading(irreps, seed):
    torch.manual_seed(seed)
    return o3.Irreps(irreps).randn(*SHAPE, -1, requires_grad=True)


def module_case(module, x, params):
    out = module(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    return {
        "shape": list(x.shape),
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
        **{f"{k}": flat(p) for k, p in params.items()},
        **{f"grad_{k}": grad(p) for k, p in params.items()},
    }


def activation_case():
    irreps = "2x0e+1x0o+1x1o+1x0o"
    act = nn.Activation(irreps, [FUNCTIONS["softplus"], FUNCTIONS["sin"], None, FUNCTIONS["square"]])
    case = module_case(act, leading(irreps, 100), {})
    return {"irreps_in": irreps, "acts": ["softplus", "sin", None, "square"],
            "irreps_out": str(act.irreps_out), **case}


def gate_case():
    gate = nn.Gate("2x0e", [FUNCTIONS["softplus"]], "1x0o+1x0e", [FUNCTIONS["softsign"], FUNCTIONS["sin"]],
                   "1x1o+1x2e")
    case = module_case(gate, leading(str(gate.irreps_in), 101), {})
    return {"irreps_scalars": "2x0e", "act_scalars": ["softplus"], "irreps_gates": "1x0o+1x0e",
            "act_gates": ["softsign", "sin"], "irreps_gated": "1x1o+1x2e",
            "irreps_in": str(gate.irreps_in), "irreps_out": str(gate.irreps_out), **case}


def norm_activation_case():
    irreps = "2x1o+1x2e"
    act = nn.NormActivation(o3.Irreps(irreps), FUNCTIONS["softsign"], normalize=True, bias=True)
    with torch.no_grad():
        torch.manual_seed(102)
        act.biases.copy_(torch.randn_like(act.biases))
    case = module_case(act, leading(irreps, 103), {"biases": act.biases})
    return {"irreps_in": irreps, "nonlinearity": "softsign", **case}


def fully_connected_net_case():
    torch.manual_seed(104)
    fc = nn.FullyConnectedNet([3, 5, 4], FUNCTIONS["softplus"])
    x = torch.randn(*SHAPE, 3, requires_grad=True)
    params = {f"weight{i}": getattr(fc, f"layer{i}").weight for i in range(2)}
    return {"hs": [3, 5, 4], "act": "softplus", **module_case(fc, x, params)}


def linear_case():
    torch.manual_seed(105)
    lin = o3.Linear("2x0e+1x1o", "3x0e+2x1o", biases=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn_like(lin.weight))
        lin.bias.copy_(torch.randn_like(lin.bias))
    case = module_case(lin, leading("2x0e+1x1o", 106), {"weight": lin.weight, "bias": lin.bias})
    return {"irreps_in": "2x0e+1x1o", "irreps_out": "3x0e+2x1o", **case}


def tensor_product_case():
    torch.manual_seed(107)
    tp = o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x0e+1x1o", "2x0e+1x1o+1x1e", internal_weights=False,
                                        shared_weights=True)
    w = torch.randn(tp.weight_numel, requires_grad=True)
    x1 = leading("2x0e+1x1o", 108)
    x2 = leading("1x0e+1x1o", 109)
    out = tp(x1, x2, w)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    return {"irreps_in1": "2x0e+1x1o", "irreps_in2": "1x0e+1x1o", "irreps_out": "2x0e+1x1o+1x1e",
            "shape": list(x1.shape), "x1": flat(x1), "x2": flat(x2), "weight": flat(w), "out": flat(out),
            "g": flat(g), "grad_x1": grad(x1), "grad_x2": grad(x2), "grad_weight": grad(w)}


def spherical_harmonics_case():
    torch.manual_seed(110)
    x = torch.randn(*SHAPE, 3, requires_grad=True)
    out = o3.spherical_harmonics(2, x, normalize=True)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    return {"l": 2, "normalize": True, "shape": list(x.shape), "x": flat(x), "out": flat(out),
            "g": flat(g), "grad_x": grad(x)}


def main():
    dump("functions", {
        **header("tools/reference/fixtures_functions.py"),
        "randn": randn_fixture(),
        "functions": functions_fixture(),
        "activation": activation_case(),
        "gate": gate_case(),
        "norm_activation": norm_activation_case(),
        "fully_connected_net": fully_connected_net_case(),
        "linear": linear_case(),
        "tensor_product": tensor_product_case(),
        "spherical_harmonics": spherical_harmonics_case(),
    })


if __name__ == "__main__":
    main()
