"""Reference values of e3nn 0.6.0's signals on the sphere and on SO(3) for
`tests/core/s2_grid.rs` and the burn crate's `tests/equivariant/s2.rs`.

Run from the repository root with a Python that has torch and e3nn==0.6.0:

    /work/venv-e3nn/bin/python tools/reference/fixtures_s2.py

It writes crates/equivariant-core/tests/fixtures/s2.json (the core's functions) and
crates/equivariant/tests/fixtures/s2_modules.json (the burn modules and the batched Wigner D
op: s2_activation, so3_grid, so3_activation, wigner_d), float64 throughout, seeded normal
inputs, every array flat and row-major:

- legendre: o3.Legendre(ls)(z, y) at points off the unit circle too (it is a polynomial);
- sh_alpha: o3.spherical_harmonics_alpha(l, alpha);
- sh_alpha_beta: o3.spherical_harmonics_alpha_beta(ls, alpha, beta, normalization) in the
  three normalizations;
- s2_grid, quadrature_weights, spherical_harmonics_s2_grid (betas, alphas, shb, sha);
- complete_lmax_res: the resolution e3nn completes from (lmax, res_beta, res_alpha), or
  an error;
- rfft, irfft;
- spherical_tensor: io.SphericalTensor's irreps, norms, signal_xyz, sum_of_diracs,
  with_peaks_at, from_samples_on_s2, signal_on_grid and plot (surface points and values);
- to_s2 / from_s2: o3.ToS2Grid / o3.FromS2Grid for several resolutions (FFT and matrix
  paths) and the three normalizations: the completed (lmax, res_beta, res_alpha), the
  output for two signals and the gradient of sum(out * g) with respect to the input;
- s2_activation: nn.S2Activation for even and odd signals: irreps out, normalize2mom's
  constant, output and input gradient;
- so3_grid: o3.SO3Grid(lmax, resolution): to_grid and from_grid of seeded inputs, with
  gradients; so3_activation: nn.SO3Activation;
- wigner_d: o3.wigner_D(l, alpha, beta, gamma) on batches of angles, and the gradient of
  sum(D * g) with respect to each angle.
"""

import json
import os

import torch

from e3nn import io, nn, o3
from e3nn.o3._s2grid import _complete_lmax_res, _quadrature_weights

torch.set_default_dtype(torch.float64)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "crates", "equivariant-core", "tests", "fixtures", "s2.json")
OUT_MODULES = os.path.join(ROOT, "crates", "equivariant", "tests", "fixtures", "s2_modules.json")


def flat(t):
    return [float(x) for x in t.detach().reshape(-1)]


def randn(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


def legendre_cases():
    cases = []
    for seed, ls in enumerate([list(range(9)), [3, 1, 3], [12]]):
        z = randn(7, seed=seed)
        y = randn(7, seed=100 + seed)
        cases.append({"ls": ls, "z": flat(z), "y": flat(y), "out": flat(o3.Legendre(ls)(z, y))})
    return cases


def sh_alpha_cases():
    cases = []
    for seed, l in enumerate([0, 1, 4, 8]):
        alpha = randn(6, seed=seed) * 3
        cases.append({"l": l, "alpha": flat(alpha), "out": flat(o3.spherical_harmonics_alpha(l, alpha))})
    return cases


def sh_alpha_beta_cases():
    cases = []
    for seed, ls in enumerate([list(range(7)), [2, 5]]):
        alpha = randn(6, seed=seed) * 3
        beta = randn(6, seed=50 + seed) * 2
        for normalization in ["integral", "component", "norm"]:
            out = o3.spherical_harmonics_alpha_beta(ls, alpha, beta, normalization=normalization)
            cases.append(
                {
                    "ls": ls,
                    "normalization": normalization,
                    "alpha": flat(alpha),
                    "beta": flat(beta),
                    "out": flat(out),
                }
            )
    return cases


def grid_cases():
    grids = []
    for res_beta, res_alpha in [(2, 1), (6, 7), (10, 11), (18, 17)]:
        betas, alphas = o3.s2_grid(res_beta, res_alpha)
        grids.append({"res_beta": res_beta, "res_alpha": res_alpha, "betas": flat(betas), "alphas": flat(alphas)})
    weights = [{"b": b, "out": flat(_quadrature_weights(b))} for b in [1, 3, 5, 9]]
    harmonics = []
    for lmax, res_beta, res_alpha in [(2, 6, 7), (4, 10, 9), (0, 2, 1)]:
        betas, alphas, shb, sha = o3.spherical_harmonics_s2_grid(lmax, res_beta, res_alpha)
        harmonics.append(
            {
                "lmax": lmax,
                "res_beta": res_beta,
                "res_alpha": res_alpha,
                "shb": flat(shb),
                "sha": flat(sha),
            }
        )
    return grids, weights, harmonics


def complete_cases():
    cases = []
    for lmax, res_beta, res_alpha in [
        (None, 10, None),
        (3, None, None),
        (None, None, 11),
        (None, None, 12),
        (4, 10, 11),
        (3, 12, 15),
        (4, 10, 4),
        (None, 10, 30),
        (5, 7, None),
        (6, 10, None),
        (None, None, None),
        (None, 6, 2),
    ]:
        case = {"lmax": lmax, "res_beta": res_beta, "res_alpha": res_alpha}
        try:
            case["out"] = list(_complete_lmax_res(lmax, res_beta, res_alpha))
        except (AssertionError, ValueError):
            case["out"] = None
        cases.append(case)
    return cases


def fft_cases():
    rfft, irfft = [], []
    for seed, (res, l) in enumerate([(7, 3), (11, 3), (9, 4), (1, 0)]):
        x = randn(3, res, seed=seed)
        rfft.append({"res": res, "l": l, "x": flat(x), "out": flat(o3.rfft(x, l))})
    for seed, (l, res) in enumerate([(3, 7), (3, 11), (4, 9), (0, 1)]):
        x = randn(3, 2 * l + 1, seed=20 + seed)
        irfft.append({"res": res, "l": l, "x": flat(x), "out": flat(o3.irfft(x, res))})
    return rfft, irfft


def linear_map_case(module, x, seed, **args):
    x = x.clone().requires_grad_(True)
    out = module(x)
    g = randn(*out.shape, seed=seed)
    (grad,) = torch.autograd.grad((out * g).sum(), x)
    return {
        **args,
        "completed": [module.lmax, module.res_beta, module.res_alpha],
        "x": flat(x),
        "out": flat(out),
        "g": flat(g),
        "grad": flat(grad),
    }


def s2_cases():
    to_s2 = []
    for seed, (lmax, res) in enumerate([(3, None), (4, [10, 9]), (4, [10, 11]), (4, [10, 12]), (3, [8, 5]), (None, 8)]):
        for k, normalization in enumerate(["component", "norm", "integral"]):
            module = o3.ToS2Grid(lmax, res if res is None or isinstance(res, int) else tuple(res), normalization=normalization)
            x = randn(2, (module.lmax + 1) ** 2, seed=10 * seed + k)
            to_s2.append(linear_map_case(module, x, 1000 + 10 * seed + k, lmax=lmax, res=res, normalization=normalization))
    from_s2 = []
    for seed, (res, lmax, lmax_in) in enumerate(
        [([10, 11], 4, None), ([10, 11], 3, 4), ([8, 9], None, None), ([12, 13], 5, 2), ([10, 12], 4, None), (12, 2, None)]
    ):
        for k, normalization in enumerate(["component", "norm", "integral"]):
            module = o3.FromS2Grid(
                res if isinstance(res, int) else tuple(res), lmax, normalization=normalization, lmax_in=lmax_in
            )
            x = randn(2, module.res_beta, module.res_alpha, seed=200 + 10 * seed + k)
            from_s2.append(
                linear_map_case(
                    module, x, 2000 + 10 * seed + k, lmax=lmax, res=res, lmax_in=lmax_in, normalization=normalization
                )
            )
    return to_s2, from_s2


ACTIVATIONS = {"tanh": torch.tanh, "silu": torch.nn.functional.silu, "relu": torch.relu, "abs": torch.abs}


def s2_activation_cases():
    cases = []
    for seed, (irreps, act, res, normalization, lmax_out) in enumerate(
        [
            ("0e+1o+2e", "silu", 20, "component", None),
            ("0e+1e+2e+3e", "relu", [12, 11], "component", 2),
            ("0o+1e+2o", "tanh", 12, "norm", 3),
            ("0o+1o+2o", "abs", 10, "component", None),
        ]
    ):
        module = nn.S2Activation(irreps, ACTIVATIONS[act], res if isinstance(res, int) else tuple(res), normalization=normalization, lmax_out=lmax_out)
        x = randn(3, module.irreps_in.dim, seed=300 + seed).requires_grad_(True)
        out = module(x)
        g = randn(*out.shape, seed=400 + seed)
        (grad,) = torch.autograd.grad((out * g).sum(), x)
        cases.append(
            {
                "irreps": irreps,
                "act": act,
                "res": res,
                "normalization": normalization,
                "lmax_out": lmax_out,
                "irreps_out": str(module.irreps_out),
                "cst": module.act.cst,
                "x": flat(x),
                "out": flat(out),
                "g": flat(g),
                "grad": flat(grad),
            }
        )
    return cases


def so3_cases():
    grids = []
    for seed, (lmax, resolution) in enumerate([(1, 2), (2, 3)]):
        module = o3.SO3Grid(lmax, resolution)
        dim = sum((2 * l + 1) ** 2 for l in range(lmax + 1))
        x = randn(2, dim, seed=500 + seed).requires_grad_(True)
        grid = module.to_grid(x)
        g = randn(*grid.shape, seed=600 + seed)
        (grad_to,) = torch.autograd.grad((grid * g).sum(), x)
        y = randn(2, module.res_alpha, module.res_beta, module.res_gamma, seed=700 + seed).requires_grad_(True)
        back = module.from_grid(y)
        h = randn(*back.shape, seed=800 + seed)
        (grad_from,) = torch.autograd.grad((back * h).sum(), y)
        grids.append(
            {
                "lmax": lmax,
                "resolution": resolution,
                "res": [module.res_alpha, module.res_beta, module.res_gamma],
                "x": flat(x),
                "to_grid": flat(grid),
                "g": flat(g),
                "grad_to": flat(grad_to),
                "y": flat(y),
                "from_grid": flat(back),
                "h": flat(h),
                "grad_from": flat(grad_from),
            }
        )
    activations = []
    for seed, (lmax_in, lmax_out, act, resolution) in enumerate([(2, 1, "silu", 3), (1, 2, "tanh", 4)]):
        module = nn.SO3Activation(lmax_in, lmax_out, ACTIVATIONS[act], resolution)
        dim = sum((2 * l + 1) ** 2 for l in range(lmax_in + 1))
        x = randn(2, dim, seed=900 + seed).requires_grad_(True)
        out = module(x)
        g = randn(*out.shape, seed=950 + seed)
        (grad,) = torch.autograd.grad((out * g).sum(), x)
        activations.append(
            {
                "lmax_in": lmax_in,
                "lmax_out": lmax_out,
                "act": act,
                "resolution": resolution,
                "cst": module.act.cst,
                "x": flat(x),
                "out": flat(out),
                "g": flat(g),
                "grad": flat(grad),
            }
        )
    return grids, activations


def wigner_cases():
    cases = []
    for seed, l in enumerate([0, 1, 2, 4]):
        angles = [(randn(5, seed=1000 + 3 * seed + k) * 2).requires_grad_(True) for k in range(3)]
        d = o3.wigner_D(l, *angles)
        g = randn(*d.shape, seed=1100 + seed)
        grads = torch.autograd.grad((d * g).sum(), angles)
        cases.append(
            {
                "l": l,
                "alpha": flat(angles[0]),
                "beta": flat(angles[1]),
                "gamma": flat(angles[2]),
                "out": flat(d),
                "g": flat(g),
                "grad_alpha": flat(grads[0]),
                "grad_beta": flat(grads[1]),
                "grad_gamma": flat(grads[2]),
            }
        )
    return cases


def spherical_tensor_cases():
    cases = []
    for seed, (lmax, p_val, p_arg) in enumerate([(3, 1, -1), (4, 1, 1), (2, -1, -1)]):
        st = io.SphericalTensor(lmax, p_val, p_arg)
        signal = randn(2, st.dim, seed=1200 + seed)
        points = randn(5, 3, seed=1300 + seed)
        positions = randn(4, 3, seed=1400 + seed)
        values = randn(4, seed=1500 + seed)
        grid, on_grid = st.signal_on_grid(signal, res=10, normalization="integral")
        _, on_grid_component = st.signal_on_grid(signal, res=12, normalization="component")
        r, f = st.plot(signal[0], center=torch.tensor([0.5, -1.0, 2.0]), res=10, radius=True, relu=False)
        r_relu, f_relu = st.plot(signal[1], res=12, radius=False, relu=True, normalization="norm")
        case = {
            "lmax": lmax,
            "p_val": p_val,
            "p_arg": p_arg,
            "irreps": str(st),
            "signal": flat(signal),
            "norms": flat(st.norms(signal)),
            "points": flat(points),
            "positions": flat(positions),
            "values": flat(values),
            "from_samples_on_s2": flat(st.from_samples_on_s2(positions, values, res=20)),
            "grid": flat(grid),
            "on_grid": flat(on_grid),
            "on_grid_component": flat(on_grid_component),
            "plot_r": flat(r),
            "plot_f": flat(f),
            "plot_relu_r": flat(r_relu),
            "plot_relu_f": flat(f_relu),
        }
        if p_val == 1:
            # e3nn's harmonics of a vector refuse the parities of p_val = -1.
            case["signal_xyz"] = flat(st.signal_xyz(signal, points))
            case["sum_of_diracs"] = flat(st.sum_of_diracs(positions, values))
            case["with_peaks_at"] = flat(st.with_peaks_at(positions))
            case["with_peaks_at_values"] = flat(st.with_peaks_at(positions, values))
        cases.append(case)
    return cases


def main():
    grids, weights, harmonics = grid_cases()
    rfft, irfft = fft_cases()
    to_s2, from_s2 = s2_cases()
    so3_grid, so3_activation = so3_cases()
    fixtures = {
        "legendre": legendre_cases(),
        "sh_alpha": sh_alpha_cases(),
        "sh_alpha_beta": sh_alpha_beta_cases(),
        "s2_grid": grids,
        "quadrature_weights": weights,
        "spherical_harmonics_s2_grid": harmonics,
        "complete_lmax_res": complete_cases(),
        "rfft": rfft,
        "irfft": irfft,
        "to_s2": to_s2,
        "from_s2": from_s2,
        "spherical_tensor": spherical_tensor_cases(),
    }
    modules = {
        "s2_activation": s2_activation_cases(),
        "so3_grid": so3_grid,
        "so3_activation": so3_activation,
        "wigner_d": wigner_cases(),
    }
    for path, value in [(OUT, fixtures), (OUT_MODULES, modules)]:
        with open(path, "w") as f:
            json.dump(value, f)
            f.write("\n")
        print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
