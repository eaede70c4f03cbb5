"""e3nn 0.6.0 fixtures for the e3nn modules: o3.Linear, nn.Gate, nn.NormActivation, nn.BatchNorm,
nn.Extract and o3.SphericalHarmonics.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_modules.py

Writes crates/equivariant/tests/fixtures/modules.json (float64 throughout, full repr):

    {"generator", "e3nn", "torch", "dtype", "act_constants", "linear": [...], "gate": [...],
     "norm_activation": [...], "batch_norm": [...], "extract": [...], "spherical_harmonics": [...]}

Every array is flattened row-major into a JSON list of floats; "batch" is the number of rows
(the leading dimension). Irreps are written as e3nn's str(irreps) (e.g. "2x0e+1x1o"). Each case
with a gradient draws a random cotangent "g" (the output's shape) and records the autograd
gradients of sum(out * g) with respect to every input and parameter. "state_dict_keys" is the
module's state_dict() as a sorted list of [key, shape] pairs (parameters *and* buffers).
"act_constants" maps every activation name used below to e3nn's normalize2mom(act).cst (the
Monte Carlo factor, 1e6 normal samples from a generator seeded 0, 2 threads) that nn.Gate's
Activation multiplies the activation by (normalize2mom is the identity when |cst - 1| < 1e-4,
never the case for the activations here). Activation names: relu = torch.relu,
silu = torch.nn.functional.silu, tanh = torch.tanh, sigmoid = torch.sigmoid, abs = torch.abs.

- linear: o3.Linear(irreps_in, irreps_out, biases, path_normalization) with internal shared
  weights. "weight" is e3nn's flat parameter: one [mul_in, mul_out] block per instruction,
  instructions ordered i_in outer, i_out inner over every (i_in, i_out) with the same irrep,
  out_block += alpha^-1/2 * einsum("uw,zui->zwi", W, x_block), alpha = sum of mul_in over the
  instructions into that output ("element") or number of such instructions * this mul_in
  ("path"); outputs with no matching input are zero. "bias" is flat (one entry per 0e output channel of every biased output block, in
  order, added with weight 1); biases=True means a bias on every 0e output block; [] if none.
  Fields: irreps_in, irreps_out, biases, path_normalization, batch, weight, bias, x, out, g,
  grad_x, grad_weight, grad_bias, state_dict_keys.
- gate: nn.Gate(irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated). The input
  is laid out as irreps_in = sort(scalars + gates + gated) (stable sort by irrep, 0o < 0e < 1o <
  1e < ...), so scalars and gates of the same irrep interleave; the output is
  act_scalars(scalars) followed by act_gates(gates) * gated, in the given (unsorted) order, the
  parity of odd scalars/gates following the activation's parity. Fields: irreps_scalars,
  act_scalars (names), irreps_gates, act_gates, irreps_gated, irreps_in, irreps_out, batch, x,
  out, g, grad_x, state_dict_keys.
- norm_activation: nn.NormActivation(irreps_in, nonlinearity, normalize, epsilon, bias). The
  nonlinearity is the raw torch function (no normalize2mom). Fields: irreps_in, nonlinearity,
  normalize, epsilon (null if None: normalize=True then uses 1e-8), bias, biases (flat, one per
  irrep copy, [] if none), batch, x, out, g, grad_x, grad_biases, clamped (per row and irrep copy,
  flat: 1.0 where |x_block| < epsilon, so the norm was clamped), constructor_workaround.
  e3nn 0.6.0's constructor raises TypeError for normalize=False (it evaluates `not epsilon > 0`
  with epsilon None); those cases are built with normalize=True and then set to what the
  constructor intends (normalize False, epsilon None, Norm(squared=False)): out = f(|x| + b) * x.
  constructor_workaround is true for them.
- batch_norm: nn.BatchNorm(irreps, eps, momentum, affine, reduce, instance=False, normalization).
  Fields: irreps, eps, momentum, affine, reduce, normalization, weight, bias (random; [] without
  affine), running_mean_init, running_var_init, shape_train, x_train, out_train (train mode),
  running_mean, running_var (after that one training forward), g_train, grad_x_train,
  grad_weight, grad_bias (of the training pass), shape_eval, x_eval, out_eval (eval mode, after the training forward),
  g_eval, grad_x_eval, grad_weight_eval, grad_bias_eval (of the eval pass), state_dict_keys. Shapes are [7, dim] (eval [5, dim]) or [4, 3, dim]
  (eval [2, 3, dim]), i.e. [batch, dim] or [batch, samples, dim];
  reduce ("mean"/"max") acts over the samples axis only, so with [batch, dim] inputs "max" equals
  "mean".
- extract: nn.Extract(irreps_in, irreps_outs, instructions). Fields: irreps_in, irreps_outs,
  instructions (list of lists of input irrep indices), batch, x, outs (one flat list per output).
- spherical_harmonics: o3.SphericalHarmonics(irreps_out, normalize, normalization) as a module.
  Fields: irreps_out, normalize, normalization, batch, x ([batch, 3]), out, g, grad_x.

Every case draws from its own fixed seed so a rerun gives the same file. 2 threads, as in
fixtures_math.py (the last bits of normalize2mom's Monte Carlo mean depend on the thread count).
"""

import json
import os

import torch

import e3nn
from e3nn import nn, o3
from e3nn.math import normalize2mom

from burn_fixtures import OUT, dump, flat, header

torch.set_default_dtype(torch.float64)
torch.set_num_threads(2)

ACTS = {
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "abs": torch.abs,
}

BATCH = 5


def grad(t):
    """t's gradient, flat ([] for no tensor, zeros if autograd never reached it)."""
    if t is None or t.numel() == 0:
        return []
    return flat(t.grad if t.grad is not None else torch.zeros_like(t))


def state_dict_keys(module):
    return [[k, list(v.shape)] for k, v in sorted(module.state_dict().items())]


def act_constants(names):
    return {name: float(normalize2mom(ACTS[name]).cst) for name in sorted(names)}


# ---------------------------------------------------------------------------------------------
# 1. o3.Linear
# ---------------------------------------------------------------------------------------------


def linear_case(seed, irreps_in, irreps_out, biases, path_normalization, instructions=None):
    torch.manual_seed(seed)
    lin = o3.Linear(irreps_in, irreps_out, biases=biases, path_normalization=path_normalization,
                    instructions=instructions)
    with torch.no_grad():
        lin.weight.copy_(torch.randn_like(lin.weight))
        if lin.bias.numel() > 0:
            lin.bias.copy_(torch.randn_like(lin.bias))  # e3nn starts them at 0: make them matter
    has_bias = isinstance(lin.bias, torch.nn.Parameter)
    x = lin.irreps_in.randn(BATCH, -1, requires_grad=True)
    out = lin(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "irreps_in": str(lin.irreps_in),
        "irreps_out": str(lin.irreps_out),
        "biases": biases,
        "path_normalization": path_normalization,
        "batch": BATCH,
        "weight": flat(lin.weight),
        "bias": flat(lin.bias) if has_bias else [],
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
        "grad_weight": grad(lin.weight),
        "grad_bias": grad(lin.bias) if has_bias else [],
        "state_dict_keys": state_dict_keys(lin),
    }
    if instructions is not None:
        case["instructions"] = [list(i) for i in instructions]
    print(f"{lin} biases={biases} {path_normalization} | bias_numel={lin.bias_numel} "
          f"| output_mask={lin.output_mask.tolist()} | state_dict {case['state_dict_keys']}")
    return case


def linear_cases(seed0):
    return [
        linear_case(seed0, "4x0e+3x1o+2x2e", "3x0e+2x1o+1x2e", False, "element"),
        # two 0e output blocks fed by two 0e input blocks each: "path" differs from "element"
        linear_case(seed0 + 1, "2x0e+3x1o+1x0e", "4x0e+2x1o+2x0e", True, "path"),
        # 1e and 0o outputs have no matching input (and 0o, not a scalar, no bias): always zero.
        # (A 0e output fed by a bias only cannot be built: e3nn 0.6.0's codegen concatenates the
        # bias's [1, dim] with the [batch, dim] blocks and fails.)
        linear_case(seed0 + 2, "2x0e+3x1o+2x2e", "2x0e+2x1o+1x1e+1x0o", True, "element"),
    ]


def linear_instruction_cases(seed0):
    """o3.Linear with explicit instructions (a subset, out of order, one input feeding two
    outputs) and a bias flag per output block."""
    return [
        linear_case(seed0, "2x0e+3x1o+1x0e", "4x0e+2x1o+2x0e", [False, False, True], "element",
                    instructions=[(2, 0), (1, 1), (0, 2), (2, 2)]),
        linear_case(seed0 + 1, "3x1o+2x0e", "2x0e+1x1o", [True, False], "path",
                    instructions=[(1, 0), (0, 1)]),
    ]


# ---------------------------------------------------------------------------------------------
# 2. nn.Gate
# ---------------------------------------------------------------------------------------------


def gate_case(seed, irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated):
    torch.manual_seed(seed)
    gate = nn.Gate(irreps_scalars, [ACTS[a] for a in act_scalars], irreps_gates, [ACTS[a] for a in act_gates],
                   irreps_gated)
    x = gate.irreps_in.randn(BATCH, -1, requires_grad=True)
    out = gate(x)
    assert out.shape[-1] == gate.irreps_out.dim
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "irreps_scalars": str(o3.Irreps(irreps_scalars)),
        "act_scalars": list(act_scalars),
        "irreps_gates": str(o3.Irreps(irreps_gates)),
        "act_gates": list(act_gates),
        "irreps_gated": str(o3.Irreps(irreps_gated)),
        "irreps_in": str(gate.irreps_in),
        "irreps_out": str(gate.irreps_out),
        "batch": BATCH,
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
        "state_dict_keys": state_dict_keys(gate),
    }
    print(f"{gate} | Extract {gate.sc.cut.irreps_in} -> {gate.sc.cut.instructions} | state_dict {case['state_dict_keys']}")
    return case


def gate_cases(seed0):
    return [
        gate_case(seed0, "16x0e", ["relu"], "8x0e", ["sigmoid"], "4x1o+4x2e"),
        # odd scalars through tanh stay 0o; the 0o gates (tanh, odd) flip the parity of what they gate;
        # the sorted input interleaves scalars and gates: 4x0o(s) 2x0o(g) 2x0e(s) 2x0e(g) 2x1o 1x1e 1x2e
        gate_case(seed0 + 1, "4x0o+2x0e", ["tanh", "relu"], "2x0e+2x0o", ["sigmoid", "tanh"], "2x1o+1x2e+1x1e"),
        # no scalars at all; abs (even) turns the 0o gate into a 0e gate
        gate_case(seed0 + 2, "", [], "2x0e+1x0o", ["silu", "abs"], "1x2o+1x1e+1x1o"),
    ]


# ---------------------------------------------------------------------------------------------
# 3. nn.NormActivation
# ---------------------------------------------------------------------------------------------


def norm_activation(irreps_in, nonlinearity, normalize, epsilon, bias):
    """nn.NormActivation, working around e3nn 0.6.0's constructor for normalize=False."""
    if normalize:
        return nn.NormActivation(irreps_in, ACTS[nonlinearity], normalize=True, epsilon=epsilon, bias=bias), False
    assert epsilon is None
    m = nn.NormActivation(irreps_in, ACTS[nonlinearity], normalize=True, epsilon=None, bias=bias)
    m.normalize = False
    m.epsilon = None
    m._eps_squared = 0.0
    m.norm = o3.Norm(irreps_in, squared=False)
    return m, True


def norm_activation_case(seed, irreps_in, nonlinearity, normalize, epsilon, bias, small=()):
    """small: (row, irrep copy index, norm) to scale that block to."""
    torch.manual_seed(seed)
    irreps_in = o3.Irreps(irreps_in)  # bias=True needs an Irreps: e3nn reads irreps_in.num_irreps before converting
    m, workaround = norm_activation(irreps_in, nonlinearity, normalize, epsilon, bias)
    if bias:
        with torch.no_grad():
            m.biases.copy_(torch.randn_like(m.biases))
    x = irreps_in.randn(BATCH, -1)
    starts = [s for (mul, ir), sl in zip(irreps_in, irreps_in.slices()) for s in range(sl.start, sl.stop, ir.dim)]
    dims = [ir.dim for mul, ir in irreps_in for _ in range(mul)]
    for row, k, norm in small:
        block = x[row, starts[k]:starts[k] + dims[k]]
        x[row, starts[k]:starts[k] + dims[k]] = block / block.norm() * norm
    norms = torch.stack([x[:, s:s + d].norm(dim=1) for s, d in zip(starts, dims)], dim=1)
    assert norms.min() > 0
    eps = m.epsilon
    clamped = (norms < eps).double() if eps is not None else torch.zeros_like(norms)
    x.requires_grad_(True)
    out = m(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()

    # independent check of the formula: out = f(max(|x|, eps) + b) / (max(|x|, eps) if normalize) * x
    with torch.no_grad():
        n = norms.clamp(min=eps) if eps is not None else norms
        s = ACTS[nonlinearity](n + (m.biases if bias else 0.0))
        if normalize:
            s = s / n
        ref = torch.cat([x[:, st:st + d] * s[:, i:i + 1] for i, (st, d) in enumerate(zip(starts, dims))], dim=1)
        assert (ref - out).abs().max() < 1e-12, (ref - out).abs().max()

    case = {
        "irreps_in": str(irreps_in),
        "nonlinearity": nonlinearity,
        "normalize": normalize,
        "epsilon": epsilon,
        "bias": bias,
        "biases": flat(m.biases) if bias else [],
        "batch": BATCH,
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
        "grad_biases": grad(m.biases) if bias else [],
        "clamped": flat(clamped),
        "constructor_workaround": workaround,
    }
    print(f"NormActivation({irreps_in}, {nonlinearity}, normalize={normalize}, epsilon={epsilon} -> {m.epsilon}, "
          f"bias={bias}) | clamped blocks: {int(clamped.sum().item())} | min norm {norms.min().item():.3g}")
    return case


def norm_activation_cases(seed0):
    return [
        # epsilon None -> 1e-8: one 1o vector of norm 1e-9 is clamped to 1e-8
        norm_activation_case(seed0, "3x0e+2x1o+1x2e", "sigmoid", True, None, False, small=[(1, 3, 1e-9)]),
        # explicit 1e-8, biases; a vector of norm 1e-6 (above epsilon: not clamped)
        norm_activation_case(seed0 + 1, "2x0e+1x0o+2x1e+1x2o", "silu", True, 1e-8, True, small=[(2, 3, 1e-6)]),
        # a large epsilon: a 1o of norm 0.05 and a 0e of |x| = 0.02 are clamped, one 1o of norm 0.2 is not
        norm_activation_case(seed0 + 2, "2x0e+3x1o", "tanh", True, 0.1, True,
                             small=[(0, 3, 0.05), (3, 1, 0.02), (4, 2, 0.2)]),
        # normalize=False (see the constructor workaround above)
        norm_activation_case(seed0 + 3, "2x0e+2x1o+1x2e", "sigmoid", False, None, True),
        norm_activation_case(seed0 + 4, "1x0o+2x1o+1x3o", "silu", False, None, False),
    ]


# ---------------------------------------------------------------------------------------------
# 4. nn.BatchNorm
# ---------------------------------------------------------------------------------------------


def batch_norm_case(seed, irreps, affine, reduce, normalization, momentum, eps=1e-5, samples=None):
    torch.manual_seed(seed)
    irreps = o3.Irreps(irreps)
    bn = nn.BatchNorm(irreps, eps=eps, momentum=momentum, affine=affine, reduce=reduce, instance=False,
                      normalization=normalization)
    with torch.no_grad():
        if affine:
            bn.weight.copy_(torch.rand_like(bn.weight) + 0.5)
            bn.bias.copy_(torch.randn_like(bn.bias))
        bn.running_mean.copy_(torch.randn_like(bn.running_mean))
        bn.running_var.copy_(torch.rand_like(bn.running_var) + 0.5)
    mean_init, var_init = bn.running_mean.clone(), bn.running_var.clone()

    # [7, dim] or, to keep the file small, [4, samples, dim] (eval: [5, dim] or [2, samples, dim])
    shape_train = [4, samples, irreps.dim] if samples else [7, irreps.dim]
    shape_eval = [2, samples, irreps.dim] if samples else [BATCH, irreps.dim]
    # a shifted, scaled input so the scalar mean and the variance are far from 0 and 1
    x_train = (torch.randn(*shape_train) * 1.7 + 0.6).requires_grad_(True)
    bn.train()
    out_train = bn(x_train)
    g_train = torch.randn_like(out_train)
    (out_train * g_train).sum().backward()
    running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
    # The parameter gradients of the training pass alone (the eval pass accumulates its own).
    grad_weight_train = flat(bn.weight.grad) if affine else []
    grad_bias_train = flat(bn.bias.grad) if affine else []
    if affine:
        bn.weight.grad, bn.bias.grad = None, None

    bn.eval()
    x_eval = (torch.randn(*shape_eval) * 1.7 + 0.6).requires_grad_(True)
    out_eval = bn(x_eval)
    g_eval = torch.randn_like(out_eval)
    (out_eval * g_eval).sum().backward()
    assert torch.equal(running_mean, bn.running_mean)

    case = {
        "irreps": str(irreps),
        "eps": eps,
        "momentum": momentum,
        "affine": affine,
        "reduce": reduce,
        "normalization": normalization,
        "weight": flat(bn.weight) if affine else [],
        "bias": flat(bn.bias) if affine else [],
        "running_mean_init": flat(mean_init),
        "running_var_init": flat(var_init),
        "shape_train": shape_train,
        "x_train": flat(x_train),
        "out_train": flat(out_train),
        "running_mean": flat(running_mean),
        "running_var": flat(running_var),
        "g_train": flat(g_train),
        "grad_x_train": grad(x_train),
        "grad_weight": grad_weight_train,
        "grad_bias": grad_bias_train,
        "shape_eval": shape_eval,
        "x_eval": flat(x_eval),
        "out_eval": flat(out_eval),
        "g_eval": flat(g_eval),
        "grad_x_eval": grad(x_eval),
        "grad_weight_eval": flat(bn.weight.grad) if affine else [],
        "grad_bias_eval": flat(bn.bias.grad) if affine else [],
        "state_dict_keys": state_dict_keys(bn),
    }
    print(f"{bn} affine={affine} reduce={reduce} {normalization} x{shape_train} | state_dict {case['state_dict_keys']}")
    return case


def batch_norm_cases(seed0):
    irreps = "4x0e+2x0o+3x1o+2x2e"
    return [
        batch_norm_case(seed0, irreps, True, "mean", "component", 0.1),
        batch_norm_case(seed0 + 1, irreps, True, "mean", "norm", 0.3),
        batch_norm_case(seed0 + 2, irreps, False, "mean", "component", 0.1),
        batch_norm_case(seed0 + 3, irreps, True, "max", "component", 0.3),  # [batch, dim]: max == mean
        # [batch, samples, dim]: the samples axis is where reduce acts
        batch_norm_case(seed0 + 4, irreps, True, "max", "norm", 0.1, samples=3),
        batch_norm_case(seed0 + 5, irreps, True, "mean", "component", 0.3, samples=3),
    ]


# ---------------------------------------------------------------------------------------------
# 5. nn.Extract
# ---------------------------------------------------------------------------------------------


def extract_case(seed, irreps_in, irreps_outs, instructions):
    torch.manual_seed(seed)
    ex = nn.Extract(irreps_in, irreps_outs, [tuple(i) for i in instructions])
    x = ex.irreps_in.randn(BATCH, -1)
    outs = ex(x)
    case = {
        "irreps_in": str(ex.irreps_in),
        "irreps_outs": [str(i) for i in ex.irreps_outs],
        "instructions": [list(i) for i in instructions],
        "batch": BATCH,
        "x": flat(x),
        "outs": [flat(o) for o in outs],
    }
    print(f"Extract({ex.irreps_in} -> {case['irreps_outs']}, {case['instructions']})")
    return case


def extract_cases(seed0):
    return [
        extract_case(seed0, "1e+0e+2o+1x1o", ["1e+0e", "2o", "0e+1e"], [(0, 1), (2,), (1, 0)]),
        # the identity instruction (a plain copy), a reordering, a repeat and an empty output
        extract_case(seed0 + 1, "2x0e+1x1o+3x0e", ["2x0e+1x1o+3x0e", "3x0e+2x0e", "1o+1o", ""],
                     [(0, 1, 2), (2, 0), (1, 1), ()]),
    ]


# ---------------------------------------------------------------------------------------------
# 6. o3.SphericalHarmonics
# ---------------------------------------------------------------------------------------------


def spherical_harmonics_case(seed, irreps_out, normalize, normalization):
    torch.manual_seed(seed)
    sh = o3.SphericalHarmonics(irreps_out, normalize, normalization)
    x = (torch.randn(BATCH, 3) * 1.5).requires_grad_(True)
    out = sh(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "irreps_out": str(sh.irreps_out),
        "normalize": normalize,
        "normalization": normalization,
        "batch": BATCH,
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
    }
    print(f"SphericalHarmonics({sh.irreps_out}, normalize={normalize}, {normalization})")
    return case


def spherical_harmonics_cases(seed0):
    return [
        spherical_harmonics_case(seed0, "0e+1o+2e+3o", True, "component"),
        spherical_harmonics_case(seed0 + 1, "1o+3o", False, "norm"),
        spherical_harmonics_case(seed0 + 2, "0e+1o+2e", True, "integral"),
    ]


# ---------------------------------------------------------------------------------------------
# 7. o3.Norm and nn.ExtractIr
# ---------------------------------------------------------------------------------------------


def norm_case(seed, irreps_in, squared):
    torch.manual_seed(seed)
    norm = o3.Norm(irreps_in, squared=squared)
    x = norm.irreps_in.randn(BATCH, -1).requires_grad_(True)
    out = norm(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    case = {
        "irreps_in": irreps_in,
        "simplified": str(norm.irreps_in),
        "irreps_out": str(norm.irreps_out),
        "squared": squared,
        "batch": BATCH,
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad_x": grad(x),
    }
    print(f"Norm({irreps_in}, squared={squared})")
    return case


def norm_cases(seed0):
    return [
        norm_case(seed0, "2x1o+1x1o+1x0e+2x2e+3x0e", False),
        norm_case(seed0 + 1, "3x0o+1x3e+2x1e", True),
    ]


def extract_ir_case(seed, irreps_in, ir):
    torch.manual_seed(seed)
    ex = nn.ExtractIr(irreps_in, ir)
    x = ex.irreps_in.randn(BATCH, -1)
    case = {
        "irreps_in": str(ex.irreps_in),
        "ir": ir,
        "irreps_out": str(ex.irreps_out),
        "batch": BATCH,
        "x": flat(x),
        "out": flat(ex(x)),
    }
    print(f"ExtractIr({ex.irreps_in}, {ir})")
    return case


def extract_ir_cases(seed0):
    return [
        extract_ir_case(seed0, "2x0e+1x1o+3x0e+1x2e", "0e"),
        extract_ir_case(seed0 + 1, "1x1o+2x1e+4x1o", "1o"),
        extract_ir_case(seed0 + 2, "1x1o", "2e"),
    ]


# ---------------------------------------------------------------------------------------------
# 8. o3.TensorProduct.right and weight_views
# ---------------------------------------------------------------------------------------------


def tp_views_case(seed, shared):
    torch.manual_seed(seed)
    irreps_in1, irreps_in2, irreps_out = "2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o+2x1e"
    instructions = [
        (0, 0, 0, "uvw", True),
        (1, 1, 0, "uvu", False),
        (1, 0, 1, "uvw", True),
        (1, 1, 2, "uvu", True),
        (0, 1, 1, "uvu", True),
    ]
    tp = o3.TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions, shared_weights=shared,
                          internal_weights=False, compile_right=True)
    weight = torch.randn(1 if shared else BATCH, tp.weight_numel)
    x, y = tp.irreps_in1.randn(BATCH, -1), tp.irreps_in2.randn(BATCH, -1)
    w = weight[0] if shared else weight
    views = list(tp.weight_views(w, yield_instruction=True))
    case = {
        "irreps_in1": irreps_in1,
        "irreps_in2": irreps_in2,
        "irreps_out": irreps_out,
        "instructions": [list(i) for i in instructions],
        "shared": shared,
        "batch": BATCH,
        "weight": flat(weight),
        "x": flat(x),
        "y": flat(y),
        "out": flat(tp(x, y, w)),
        "right": flat(tp.right(y, w)),
        "views": [{"instruction": i, "path_shape": list(ins.path_shape), "weight": flat(v)} for i, ins, v in views],
    }
    print(f"TensorProduct.right / weight_views, shared={shared}")
    return case


def main():
    linear = linear_cases(9000)
    gate = gate_cases(9100)
    norm_act = norm_activation_cases(9200)
    bn = batch_norm_cases(9300)
    extract = extract_cases(9400)
    sh = spherical_harmonics_cases(9500)
    norm = norm_cases(9600)
    extract_ir = extract_ir_cases(9700)
    tp_views = [tp_views_case(9800, True), tp_views_case(9801, False)]
    linear_instructions = linear_instruction_cases(9900)
    acts = {a for c in gate for a in c["act_scalars"] + c["act_gates"]}
    dump("modules", {
        **header("tools/reference/fixtures_modules.py"),
        "act_constants": act_constants(acts),
        "linear": linear,
        "gate": gate,
        "norm_activation": norm_act,
        "batch_norm": bn,
        "extract": extract,
        "spherical_harmonics": sh,
        "norm": norm,
        "extract_ir": extract_ir,
        "tp_views": tp_views,
        "linear_instructions": linear_instructions,
    })


if __name__ == "__main__":
    main()
