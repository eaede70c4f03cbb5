"""Reference values of e3nn 0.6.0's `e3nn.math` scalar functions for `tests/math.rs`.

Run from the repository root with a Python that has torch and e3nn==0.6.0 (and mpmath,
which torch depends on):

    /work/venv-e3nn/bin/python tools/reference/fixtures_math.py

It writes crates/equivariant-core/tests/fixtures/math.json (float64 throughout):

- soft_unit_step: x, value, derivative (autograd through e3nn's custom backward).
- bases: for each basis x cutoff x (start, end, number) configuration, torch's centers and
  step (linspace as e3nn computes them), a grid x, the values out[i][k] and the derivatives
  d out[i][k] / d x[i] (torch.autograd, one basis column at a time). The cosine basis has a
  jump in its derivative at |d| = 1 (d = (x - c) / step); where a grid point sits there
  (within 1e-9, e.g. a neighbouring center) its derivative is written as "nan" and the
  tests skip it: which side of the jump one lands on depends on the last ulp of the centers.
  bessel grids avoid x == start (e3nn gives 0/0 = NaN there).
- activations: x, and for relu, silu, tanh, sigmoid, gelu (exact erf), abs the values and
  autograd derivatives of torch's functions.
- normalize2mom: e3nn's constants `normalize2mom(f).cst` (Monte Carlo, seed 0), and
  normalize2mom_exact: E[f(z)^2]^(-1/2) for z ~ N(0, 1) by mpmath quadrature (30 digits).
"""

import json
import math
import os

import mpmath
import torch

import e3nn
from e3nn.math import normalize2mom, soft_one_hot_linspace, soft_unit_step

torch.set_default_dtype(torch.float64)

torch.set_num_threads(2)  # normalize2mom's mean: last bits depend on the thread count

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "..", "crates", "equivariant-core", "tests", "fixtures", "math.json",
)


def r(v):
    """A float for JSON: shortest repr, 'nan' for NaN."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    return v


def rows(t):
    return [[r(v) for v in row] for row in t.tolist()]


def derivative_columns(f, x):
    """d f(x)[i, k] / d x[i] for an elementwise-in-i function f: [n] -> [n, N]."""
    x = x.clone().requires_grad_(True)
    y = f(x)
    cols = []
    for k in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, k].sum(), x, retain_graph=True)
        cols.append(g)
    return y.detach(), torch.stack(cols, dim=1)


def linspace_as_e3nn(start, end, number, cutoff):
    if not cutoff:
        values = torch.linspace(start, end, number)
        step = values[1] - values[0] if number >= 2 else None
    else:
        values = torch.linspace(start, end, number + 2)
        step = values[1] - values[0]
        values = values[1:-1]
    return values, step


def basis_case(basis, cutoff, start, end, number, n_grid):
    centers, step = linspace_as_e3nn(start, end, number, cutoff)
    pts = set(torch.linspace(start - 0.2, end + 0.2, n_grid).tolist())
    pts |= set(centers.tolist())
    pts |= {start, end}
    if basis == "bessel":
        pts.discard(start)
    x = torch.tensor(sorted(pts))
    value, deriv = derivative_columns(
        lambda t: soft_one_hot_linspace(t, start, end, number, basis=basis, cutoff=cutoff), x
    )
    assert torch.isfinite(value).all() and torch.isfinite(deriv).all(), (basis, cutoff)
    if basis == "cosine":
        d = (x[:, None] - centers) / step
        kink = ((d.abs() - 1).abs() < 1e-9)
        deriv = torch.where(kink, torch.full_like(deriv, float("nan")), deriv)
    return {
        "basis": basis,
        "cutoff": cutoff,
        "start": start,
        "end": end,
        "number": number,
        "centers": [r(v) for v in centers.tolist()],
        "step": None if step is None else r(step),
        "x": [r(v) for v in x.tolist()],
        "value": rows(value),
        "derivative": rows(deriv),
    }


def main():
    fixture = {
        "generator": "tools/reference/fixtures_math.py",
        "e3nn": e3nn.__version__,
        "torch": torch.__version__,
        "dtype": "float64",
    }

    # soft_unit_step
    x = torch.tensor(
        [-10.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0,
         1.5, 2.0, 3.0, 5.0, 10.0, 100.0, 1e6]
    )
    xg = x.clone().requires_grad_(True)
    y = soft_unit_step(xg)
    (g,) = torch.autograd.grad(y.sum(), xg)
    fixture["soft_unit_step"] = {
        "x": [r(v) for v in x.tolist()],
        "value": [r(v) for v in y.detach().tolist()],
        "derivative": [r(v) for v in g.tolist()],
    }

    # radial bases
    cases = []
    for basis in ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"]:
        for cutoff in [True, False]:
            cases.append(basis_case(basis, cutoff, 0.0, 1.8, 5, 30))
            cases.append(basis_case(basis, cutoff, 0.5, 3.0, 10, 25))
        # the smallest e3nn accepts: one function with cutoff
        cases.append(basis_case(basis, True, -0.5, 1.5, 1, 12))
    fixture["bases"] = cases

    # activations
    acts = {
        "relu": torch.relu,
        "silu": torch.nn.functional.silu,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "gelu": torch.nn.functional.gelu,
        "abs": torch.abs,
    }
    xa = sorted(set(torch.linspace(-6.0, 6.0, 49).tolist()) | {-30.0, -9.0, -4.3, 0.0, 4.3, 9.0, 30.0, 1e-8, -1e-8})
    xa = torch.tensor(xa)
    act_out = {"x": [r(v) for v in xa.tolist()]}
    for name, f in acts.items():
        xg = xa.clone().requires_grad_(True)
        y = f(xg)
        (g,) = torch.autograd.grad(y.sum(), xg)
        act_out[name] = {
            "value": [r(v) for v in y.detach().tolist()],
            "derivative": [r(v) for v in g.tolist()],
        }
    fixture["activations"] = act_out

    # normalize2mom: e3nn's Monte-Carlo constants and exact ones
    fixture["normalize2mom"] = {name: normalize2mom(f).cst for name, f in acts.items()}
    mpmath.mp.dps = 30
    mp_acts = {
        "relu": lambda z: max(z, 0),
        "silu": lambda z: z / (1 + mpmath.exp(-z)),
        "tanh": mpmath.tanh,
        "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
        "gelu": lambda z: z * mpmath.ncdf(z),
        "abs": abs,
    }
    exact = {}
    for name, f in mp_acts.items():
        m2 = mpmath.quad(lambda z: f(z) ** 2 * mpmath.npdf(z), [-mpmath.inf, 0, mpmath.inf])
        exact[name] = float(1 / mpmath.sqrt(m2))
    fixture["normalize2mom_exact"] = exact

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(fixture, fh, separators=(",", ":"))
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
