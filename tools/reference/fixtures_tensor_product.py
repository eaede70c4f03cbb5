"""e3nn 0.6.0 fixtures for tensor products and o3.Linear.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_tensor_product.py

Writes crates/equivariant-core/tests/fixtures/tensor_product.json: one case per built module
(TensorProduct with every connection mode x irrep_normalization x path_normalization,
FullyConnectedTensorProduct, FullTensorProduct, ElementwiseTensorProduct, TensorSquare, Linear)
with its built irreps and instructions (the final per-path coefficients e3nn stores), random
inputs and weights, the output, a random cotangent g and the autograd gradients of sum(out * g)
with respect to every input, the weights and the biases.

Everything is float64; every case draws from its own fixed seed so a rerun gives the same file.
Weights are always passed explicitly (internal_weights=False), except for Linear with shared
weights, where module.weight / module.bias are re-drawn N(0, 1) and differentiated.
"""

import json
import os

import torch
from e3nn import o3

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "equivariant-core", "tests", "fixtures")

BATCH = 3


def dump(name, data):
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path) // 1024} KiB")


def flat(t):
    return t.detach().reshape(-1).tolist()


def tp_instructions(module):
    return [
        [ins.i_in1, ins.i_in2, ins.i_out, ins.connection_mode, bool(ins.has_weight), float(ins.path_weight), list(ins.path_shape)]
        for ins in module.instructions
    ]


def run_tp(name, kind, args, module, seed, x2_is_x1=False, batch=BATCH):
    """Evaluate a TensorProduct-derived module with explicit weights and record everything."""
    torch.manual_seed(seed)
    x1 = torch.randn(batch, module.irreps_in1.dim, requires_grad=True)
    x2 = None if x2_is_x1 else torch.randn(batch, module.irreps_in2.dim, requires_grad=True)
    n = module.weight_numel
    if module.shared_weights:
        weight = torch.randn(n, requires_grad=True)
    else:
        weight = torch.randn(batch, n, requires_grad=True)
    if x2_is_x1:
        out = module(x1, weight) if n > 0 else module(x1)
    else:
        out = module(x1, x2, weight) if n > 0 else module(x1, x2)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "name": name,
        "kind": kind,
        "args": args,
        "irreps_in1": str(module.irreps_in1),
        "irreps_in2": None if x2_is_x1 else str(module.irreps_in2),
        "irreps_out": str(module.irreps_out),
        "instructions": tp_instructions(module),
        "weight_numel": n,
        "shared_weights": bool(module.shared_weights),
        "batch": batch,
        "x1": flat(x1),
        "x2": None if x2_is_x1 else flat(x2),
        "weight": flat(weight),
        "bias": None,
        "out": flat(out),
        "grad_out": flat(g),
        "grad_x1": flat(x1.grad),
        "grad_x2": None if x2_is_x1 else flat(x2.grad),
        "grad_weight": flat(weight.grad) if n > 0 else [],
        "grad_bias": None,
    }
    summary(case, module)
    return case


def summary(case, module):
    out = torch.tensor(case["out"])
    print(
        f"{case['name']:<44} {case['kind']:<28} {case['irreps_in1']} x {case['irreps_in2']} -> {case['irreps_out']} "
        f"| {len(case['instructions'])} ins | {case['weight_numel']} w | shared={case['shared_weights']} "
        f"| max|out|={out.abs().max().item() if out.numel() else 0.0:.4f}"
    )


# ---------------------------------------------------------------------------------------------
# 1. Raw TensorProduct: every mode x irrep_normalization x path_normalization
# ---------------------------------------------------------------------------------------------

# (irreps_in1, irreps_in2, irreps_out, instructions). Each has several instructions into some
# outputs (so element and path normalization differ), l up to 4 and, except uvw, a path
# without weights. Triples (2,2,4), (3,2,4) and (4,4,2) appear.
MODE_SPECS = {
    "uvw": (
        "2x0e+3x1o+2x2e",
        "2x0e+1x1o+1x2e",
        "2x0e+2x1o+1x2e+1x4e",
        [
            (0, 0, 0, "uvw", True, 1.0),
            (1, 1, 0, "uvw", True, 1.0),
            (2, 2, 0, "uvw", True, 1.0),
            (0, 1, 1, "uvw", True, 1.0),
            (1, 0, 1, "uvw", True, 2.5),  # custom path weight
            (2, 1, 1, "uvw", True, 1.0),
            (1, 1, 2, "uvw", True, 1.0),
            (2, 2, 2, "uvw", True, 1.0),
            (2, 2, 3, "uvw", True, 1.0),  # (2, 2, 4)
        ],
    ),
    "uvu": (
        "2x0e+2x1o+2x3o+1x4e",
        "2x0e+1x2e+1x4e",
        "2x0e+2x1o+2x4o+1x2e",
        [
            (0, 0, 0, "uvu", True, 1.0),
            (1, 0, 1, "uvu", True, 1.0),
            (2, 1, 1, "uvu", True, 1.0),  # (3, 2, 1)
            (2, 1, 2, "uvu", True, 1.0),  # (3, 2, 4)
            (2, 2, 2, "uvu", False, 1.0),  # (3, 4, 4), no weight
            (3, 2, 3, "uvu", True, 1.0),  # (4, 4, 2)
            (3, 1, 3, "uvu", True, 0.5),  # (4, 2, 2), custom path weight
        ],
    ),
    "uvv": (
        "2x0e+1x1o+2x2e",
        "3x0e+2x1o+1x2e",
        "3x0e+2x1o+1x2e+1x4e",
        [
            (0, 0, 0, "uvv", True, 1.0),
            (0, 1, 1, "uvv", True, 1.0),
            (2, 1, 1, "uvv", True, 1.0),
            (2, 2, 2, "uvv", True, 1.0),
            (0, 2, 2, "uvv", False, 1.0),  # no weight
            (2, 2, 3, "uvv", True, 1.0),  # (2, 2, 4)
        ],
    ),
    "uuw": (
        "2x0e+2x1o+1x2e+1x4e",
        "2x0e+2x1o+1x2e+1x4e",
        "2x0e+1x1e+1x0e+2x2e",
        [
            (0, 0, 0, "uuw", True, 1.0),
            (1, 1, 0, "uuw", True, 1.0),
            (2, 2, 0, "uuw", True, 1.0),
            (1, 1, 1, "uuw", True, 1.0),
            (2, 2, 1, "uuw", True, 1.0),
            (1, 1, 2, "uuw", False, 1.0),  # no weight, output multiplicity 1
            (0, 0, 2, "uuw", False, 1.0),  # no weight, output multiplicity 1
            (1, 1, 3, "uuw", True, 1.0),
            (2, 2, 3, "uuw", True, 1.0),
            (3, 3, 3, "uuw", True, 1.0),  # (4, 4, 2)
        ],
    ),
    "uuu": (
        "2x0e+2x1o+1x2e",
        "2x0e+2x1o+1x2e",
        "2x0e+2x1e+2x1o+1x4e+1x2e",
        [
            (0, 0, 0, "uuu", True, 1.0),
            (1, 1, 0, "uuu", True, 1.0),
            (1, 1, 1, "uuu", False, 1.0),  # cross product, no weight
            (0, 1, 2, "uuu", True, 1.0),
            (1, 0, 2, "uuu", True, 1.0),
            (2, 2, 3, "uuu", True, 1.0),  # (2, 2, 4)
            (2, 2, 4, "uuu", True, 1.0),
        ],
    ),
    "uvuv": (
        "2x0e+2x1o+1x2e",
        "1x0e+2x1o+1x2e",
        "2x0e+4x1o+4x0e+2x1o+1x4e+1x2e",
        [
            (0, 0, 0, "uvuv", True, 1.0),
            (0, 1, 1, "uvuv", False, 1.0),  # no weight
            (1, 1, 2, "uvuv", True, 1.0),
            (1, 0, 3, "uvuv", True, 1.0),
            (1, 2, 3, "uvuv", True, 3.0),  # custom path weight
            (2, 2, 4, "uvuv", True, 1.0),  # (2, 2, 4)
            (2, 2, 5, "uvuv", True, 1.0),
        ],
    ),
}


def raw_tp_case(name, irreps_in1, irreps_in2, irreps_out, instructions, seed, irrep_normalization, path_normalization,
                shared_weights, in1_var=None, in2_var=None, out_var=None):
    args = {
        "irreps_in1": irreps_in1,
        "irreps_in2": irreps_in2,
        "irreps_out": irreps_out,
        "instructions": [list(ins) for ins in instructions],
        "in1_var": in1_var,
        "in2_var": in2_var,
        "out_var": out_var,
        "irrep_normalization": irrep_normalization,
        "path_normalization": path_normalization,
        "shared_weights": shared_weights,
    }
    module = o3.TensorProduct(
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions,
        in1_var=in1_var,
        in2_var=in2_var,
        out_var=out_var,
        irrep_normalization=irrep_normalization,
        path_normalization=path_normalization,
        internal_weights=False,
        shared_weights=shared_weights,
    )
    return run_tp(name, "TensorProduct", args, module, seed)


def raw_tensor_product_cases(seed0):
    cases = []
    k = 0
    for mode, (i1, i2, io, instr) in MODE_SPECS.items():
        for irrep_norm in ["component", "norm", "none"]:
            for path_norm in ["element", "path", "none"]:
                cases.append(
                    raw_tp_case(
                        f"tp_{mode}_{irrep_norm}_{path_norm}", i1, i2, io, instr, seed0 + k, irrep_norm, path_norm,
                        shared_weights=(k % 2 == 0),
                    )
                )
                k += 1

    # custom variances
    i1, i2, io, instr = MODE_SPECS["uvw"]
    cases.append(
        raw_tp_case(
            "tp_uvw_custom_vars_element", i1, i2, io, instr, seed0 + k, "component", "element", True,
            in1_var=[0.5, 2.0, 1.5], in2_var=[1.0, 0.25, 3.0], out_var=[2.0, 0.5, 1.0, 4.0],
        )
    )
    k += 1
    i1, i2, io, instr = MODE_SPECS["uvu"]
    cases.append(
        raw_tp_case(
            "tp_uvu_custom_vars_path", i1, i2, io, instr, seed0 + k, "norm", "path", False,
            in1_var=[0.5, 2.0, 1.5, 0.75], in2_var=[1.0, 0.25, 3.0], out_var=[2.0, 0.5, 1.0, 4.0],
        )
    )
    k += 1

    # splitting equal irreps changes normalization ("1x0e+2x0e" vs "3x0e")
    split = [(0, 0, 0, "uvw", True, 1.0), (1, 0, 0, "uvw", True, 1.0), (0, 1, 1, "uvw", True, 1.0), (1, 1, 1, "uvw", True, 1.0)]
    merged = [(0, 0, 0, "uvw", True, 1.0), (0, 1, 1, "uvw", True, 1.0)]
    for path_norm in ["element", "path"]:
        cases.append(
            raw_tp_case(f"tp_split_1x0e+2x0e_{path_norm}", "1x0e+2x0e", "2x0e+1x1o", "3x0e+2x1o", split, seed0 + k,
                        "component", path_norm, True)
        )
        cases.append(
            raw_tp_case(f"tp_merged_3x0e_{path_norm}", "3x0e", "2x0e+1x1o", "3x0e+2x1o", merged, seed0 + k,
                        "component", path_norm, True)
        )
        k += 1

    # zero multiplicities: the 0x paths produce nothing but still count in the fan-in
    cases.append(
        raw_tp_case(
            "tp_zero_multiplicity", "2x0e+0x1o", "1x0e+1x1o", "1x0e+0x1o+1x1o",
            [(0, 0, 0, "uvw", True, 1.0), (1, 1, 0, "uvw", True, 1.0), (1, 0, 1, "uvw", True, 1.0),
             (0, 1, 2, "uvw", True, 1.0), (1, 0, 2, "uvw", True, 1.0)],
            seed0 + k, "component", "element", False,
        )
    )
    k += 1
    return cases


# ---------------------------------------------------------------------------------------------
# 2-5. Subclasses
# ---------------------------------------------------------------------------------------------


def fctp_cases(seed0):
    specs = [
        ("fctp_guide_10x0e+10x1e", "10x0e+10x1e", "0e+1o+2e", "20x0e+10x1e", "component", "element", False, 2),
        ("fctp_shared_component", "2x0e+2x1o+1x2e", "1x0e+1x1o+1x2e", "3x0e+2x1o+2x1e+1x2e", "component", "element", True, BATCH),
        ("fctp_norm_per_row", "2x0e+2x1o+1x2e", "1x0e+1x1o+1x2e", "3x0e+2x1o+2x1e+1x2e", "norm", "element", False, BATCH),
        ("fctp_path_shared", "2x0e+2x1o+1x2e", "1x0e+1x1o+1x2e", "3x0e+2x1o+2x1e+1x2e", "component", "path", True, BATCH),
    ]
    cases = []
    for k, (name, i1, i2, io, irrep_norm, path_norm, shared, batch) in enumerate(specs):
        args = {
            "irreps_in1": i1,
            "irreps_in2": i2,
            "irreps_out": io,
            "irrep_normalization": irrep_norm,
            "path_normalization": path_norm,
            "shared_weights": shared,
        }
        module = o3.FullyConnectedTensorProduct(
            i1, i2, io, irrep_normalization=irrep_norm, path_normalization=path_norm,
            internal_weights=False, shared_weights=shared,
        )
        cases.append(run_tp(name, "FullyConnectedTensorProduct", args, module, seed0 + k, batch=batch))
    return cases


def full_cases(seed0):
    specs = [
        ("full_component", "2x0e+1x1o+1x2e", "1x1o+2x2e", None, "component"),
        ("full_filter_0e_1o_2e", "2x0e+1x1o+1x2e", "1x1o+2x2e", ["0e", "1o", "2e"], "component"),
        ("full_norm_unsimplified", "1x0e+1x0e+1x1o+1x2e", "1x1o+1x2e+1x2e", None, "norm"),
    ]
    cases = []
    for k, (name, i1, i2, filt, irrep_norm) in enumerate(specs):
        args = {"irreps_in1": i1, "irreps_in2": i2, "filter_ir_out": filt, "irrep_normalization": irrep_norm}
        module = o3.FullTensorProduct(i1, i2, filter_ir_out=filt, irrep_normalization=irrep_norm)
        cases.append(run_tp(name, "FullTensorProduct", args, module, seed0 + k))
    return cases


def elementwise_cases(seed0):
    specs = [
        ("elementwise_component", "3x0e+2x1o+1x2e", "2x0e+3x1o+1x2e", None, "component"),
        ("elementwise_filter_0e_1o_2e", "3x0e+2x1o+1x2e", "2x0e+3x1o+1x2e", ["0e", "1o", "2e"], "component"),
        ("elementwise_norm", "3x0e+2x1o+1x2e", "2x0e+3x1o+1x2e", None, "norm"),
    ]
    cases = []
    for k, (name, i1, i2, filt, irrep_norm) in enumerate(specs):
        args = {"irreps_in1": i1, "irreps_in2": i2, "filter_ir_out": filt, "irrep_normalization": irrep_norm}
        module = o3.ElementwiseTensorProduct(i1, i2, filter_ir_out=filt, irrep_normalization=irrep_norm)
        cases.append(run_tp(name, "ElementwiseTensorProduct", args, module, seed0 + k))
    return cases


def tensor_square_cases(seed0):
    # (name, irreps_in, irreps_out, filter_ir_out, irrep_normalization, shared_weights)
    specs = [
        ("square_full_component", "3x0e+2x1o+1x2e", None, None, "component", True),
        ("square_full_norm", "3x0e+2x1o+1x2e", None, None, "norm", True),
        ("square_full_none", "3x0e+2x1o+1x2e", None, None, "none", True),
        ("square_filter_0e_1e_2e", "3x0e+2x1o+1x2e", None, ["0e", "1e", "2e"], "component", True),
        ("square_full_unsimplified", "2x0e+1x0e+2x1o", None, None, "component", True),
        ("square_weighted_component", "3x0e+2x1o+1x2e", "2x0e+1x1e+2x2e+1x1o", None, "component", True),
        ("square_weighted_norm_per_row", "3x0e+2x1o+1x2e", "2x0e+1x1e+2x2e", None, "norm", False),
    ]
    cases = []
    for k, (name, irreps_in, irreps_out, filt, irrep_norm, shared) in enumerate(specs):
        args = {
            "irreps_in": irreps_in,
            "irreps_out": irreps_out,
            "filter_ir_out": filt,
            "irrep_normalization": irrep_norm,
            "shared_weights": shared,
        }
        module = o3.TensorSquare(
            irreps_in, irreps_out=irreps_out, filter_ir_out=filt, irrep_normalization=irrep_norm,
            internal_weights=False, shared_weights=shared,
        )
        cases.append(run_tp(name, "TensorSquare", args, module, seed0 + k, x2_is_x1=True))
    return cases


# ---------------------------------------------------------------------------------------------
# 6. Linear
# ---------------------------------------------------------------------------------------------


def linear_case(name, irreps_in, irreps_out, biases, path_normalization, shared_weights, seed, batch=BATCH):
    torch.manual_seed(seed)
    args = {
        "irreps_in": irreps_in,
        "irreps_out": irreps_out,
        "biases": biases,
        "path_normalization": path_normalization,
        "shared_weights": shared_weights,
    }
    module = o3.Linear(irreps_in, irreps_out, biases=biases, path_normalization=path_normalization,
                       shared_weights=shared_weights)
    x = torch.randn(batch, module.irreps_in.dim, requires_grad=True)
    if shared_weights:
        with torch.no_grad():
            torch.nn.init.normal_(module.weight)
            if module.bias.numel() > 0:
                torch.nn.init.normal_(module.bias)
        weight = module.weight
        out = module(x)
    else:
        weight = torch.randn(batch, module.weight_numel, requires_grad=True)
        out = module(x, weight)
    has_bias = module.bias_numel > 0
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "name": name,
        "kind": "Linear",
        "args": args,
        "irreps_in1": str(module.irreps_in),
        "irreps_in2": None,
        "irreps_out": str(module.irreps_out),
        # bias instructions (i_in = -1) are left out: biases sit on every 0e output, in order
        "instructions": [
            [ins.i_in, None, ins.i_out, "uvw", True, float(ins.path_weight), list(ins.path_shape)]
            for ins in module.instructions
            if ins.i_in != -1
        ],
        "weight_numel": module.weight_numel,
        "shared_weights": bool(module.shared_weights),
        "batch": batch,
        "x1": flat(x),
        "x2": None,
        "weight": flat(weight),
        "bias": flat(module.bias) if has_bias else None,
        "out": flat(out),
        "grad_out": flat(g),
        "grad_x1": flat(x.grad),
        "grad_x2": None,
        "grad_weight": flat(weight.grad),
        "grad_bias": flat(module.bias.grad) if has_bias else None,
    }
    summary(case, module)
    return case


def linear_cases(seed0):
    a_in, a_out = "4x0e+3x1o+2x1e+2x2e", "3x0e+2x1o+1x2e+2x0e"
    b_in, b_out = "2x0e+3x1o+3x0e+1x1o", "3x0e+2x1o+1x0e"
    specs = [
        ("linear_element", a_in, a_out, False, "element", True),
        ("linear_element_biases", a_in, a_out, True, "element", True),
        ("linear_path_biases", a_in, a_out, True, "path", True),
        ("linear_path", a_in, a_out, False, "path", True),
        ("linear_per_row_weights", a_in, a_out, False, "element", False),
        ("linear_repeated_in_element_biases", b_in, b_out, True, "element", True),
        ("linear_repeated_in_path", b_in, b_out, False, "path", True),
    ]
    return [linear_case(name, i, o, b, p, s, seed0 + k) for k, (name, i, o, b, p, s) in enumerate(specs)]


def main():
    cases = []
    cases += raw_tensor_product_cases(1000)
    cases += fctp_cases(2000)
    cases += full_cases(3000)
    cases += elementwise_cases(4000)
    cases += tensor_square_cases(5000)
    cases += linear_cases(6000)
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    print(f"{len(cases)} cases")
    dump("tensor_product", {"cases": cases})


if __name__ == "__main__":
    main()
