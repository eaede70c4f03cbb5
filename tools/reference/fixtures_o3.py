"""e3nn 0.6.0 fixtures for irreps, Wigner 3j, Wigner D and spherical harmonics.

Run from the repository root with the pinned venv (see tools/reference/README.md):

    tools/reference/.venv/bin/python tools/reference/fixtures_o3.py

Writes crates/equivariant-core/tests/fixtures/{irreps,wigner_3j,wigner_d,spherical_harmonics}.json.
Everything is float64; seeds are fixed so a rerun gives the same files.
"""

import json
import math
import os

import torch
from e3nn import o3

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "equivariant-core", "tests", "fixtures")


def dump(name, data):
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path) // 1024} KiB")


def tolist(t):
    return t.detach().tolist()


def irreps_fixture():
    strings = [
        "",
        "0e",
        "1o",
        "10x0e + 10x1e",
        "20x0e+10x1e",
        "3 x 1o",
        " 2x0e+ 1o ",
        "1e + 1e + 0e + 1e",
        "1x0e+0x1o+0x1o+2e",
        "2y + 3x1y + 5x4y",
        "3x2o+1x1e+2x0e+4x1o+1x0o+2x1e",
        "128x0e+128x1o+128x2e",
        "01e",
        "1 e + 2 x 3 o",
    ]
    cases = []
    for s in strings:
        irreps = o3.Irreps(s)
        srt = irreps.sort()
        case = {
            "text": s,
            "str": str(irreps),
            "dim": irreps.dim,
            "num_irreps": irreps.num_irreps,
            "ls": list(irreps.ls),
            "lmax": irreps.lmax if len(irreps) > 0 else None,
            "slices": [[sl.start, sl.stop] for sl in irreps.slices()],
            "simplify": str(irreps.simplify()),
            "sort_irreps": str(srt.irreps),
            "sort_p": list(srt.p),
            "sort_inv": list(srt.inv),
            "regroup": str(irreps.regroup()),
            "remove_zero_multiplicities": str(irreps.remove_zero_multiplicities()),
            "filter_keep_0e_1o": str(irreps.filter(keep=["0e", "1o"])),
            "filter_drop_0e_1o": str(irreps.filter(drop=["0e", "1o"])),
            "filter_lmax_1": str(irreps.filter(lmax=1)),
            "count_0e": irreps.count("0e"),
            "count_1o": irreps.count("1o"),
            "times_2": str(irreps * 2),
            "plus_1x2e": str(irreps + o3.Irreps("1x2e")),
        }
        cases.append(case)
    invalid = []
    for s in ["-1x0e", "1x-1e", "1.5x0e", "x1e", "1e+", "+", "1q", "1x", "e", "1x1e+", "2xx1e", "3x", "1x 2x0e"]:
        try:
            o3.Irreps(s)
            raise AssertionError(f"{s!r} parsed")
        except ValueError:
            invalid.append(s)
    products = []
    for a in ["0e", "1o", "1e", "2e", "2o", "3o"]:
        for b in ["0e", "1o", "2e", "3e"]:
            products.append({"a": a, "b": b, "out": [str(ir) for ir in o3.Irrep(a) * o3.Irrep(b)]})
    sh = {f"{lmax},{p}": str(o3.Irreps.spherical_harmonics(lmax, p)) for lmax in range(5) for p in (-1, 1)}
    dump("irreps", {"cases": cases, "invalid": invalid, "products": products, "spherical_harmonics": sh})


def wigner_3j_fixture():
    tables = []
    for l1 in range(7):
        for l2 in range(7):
            for l3 in range(abs(l1 - l2), min(l1 + l2, 6) + 1):
                c = o3.wigner_3j(l1, l2, l3)
                nz = (c.abs() > 1e-14).nonzero().tolist()
                tables.append({"ls": [l1, l2, l3], "nonzeros": [[i, j, k, c[i, j, k].item()] for i, j, k in nz]})
    # A few larger triples to cover l up to 12 (first entries only: they are large).
    big = []
    for ls in [(6, 6, 12), (12, 12, 0), (7, 5, 9), (12, 3, 10)]:
        c = o3.wigner_3j(*ls)
        nz = (c.abs() > 1e-14).nonzero().tolist()[:400]
        big.append({"ls": list(ls), "nonzeros": [[i, j, k, c[i, j, k].item()] for i, j, k in nz]})
    dump("wigner_3j", {"tables": tables, "partial_tables": big})


def wigner_d_fixture():
    torch.manual_seed(0)
    angles = torch.cat([torch.zeros(1, 3), torch.stack(o3.rand_angles(4), dim=1), torch.tensor([[1.0, math.pi, -2.0]])])
    cases = []
    for a, b, c in angles.tolist():
        ds = {str(l): tolist(o3.wigner_D(l, torch.tensor(a), torch.tensor(b), torch.tensor(c))) for l in range(9)}
        cases.append({"angles": [a, b, c], "D": ds})
    irreps = o3.Irreps("2x0e+1x0o+1x1o+1x1e+1x2o+1x3e")
    mats = []
    for seed in range(3):
        torch.manual_seed(100 + seed)
        r = o3.rand_matrix()
        for det in (1, -1):
            m = r * det
            mats.append({"matrix": tolist(m), "D": tolist(irreps.D_from_matrix(m))})
    dump("wigner_d", {"cases": cases, "irreps": str(irreps), "from_matrix": mats})


def spherical_harmonics_fixture():
    torch.manual_seed(0)
    x = torch.randn(12, 3)
    x[3] *= 5.0
    x[4] *= 0.1
    special = torch.tensor([[0.0, 1.0, 0.0], [0.0, -2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1e-3, 2e-3, -1e-3]])
    x = torch.cat([x, special])
    out = {"vectors": tolist(x), "cases": []}
    for normalize in (True, False):
        for normalization in ("component", "norm", "integral"):
            lmax = 12 if normalization == "component" else 4
            ls = list(range(lmax + 1))
            y = o3.spherical_harmonics(ls, x, normalize=normalize, normalization=normalization)
            out["cases"].append({"ls": ls, "normalize": normalize, "normalization": normalization, "values": tolist(y)})
            # lmax 3 runs on explicit polynomials in ours, not on the recursion.
            y = o3.spherical_harmonics([0, 1, 2, 3], x, normalize=normalize, normalization=normalization)
            out["cases"].append({"ls": [0, 1, 2, 3], "normalize": normalize, "normalization": normalization, "values": tolist(y)})
    # Repeated and unordered degrees, and a pseudovector input.
    y = o3.spherical_harmonics([2, 0, 2, 1], x, normalize=True, normalization="component")
    out["cases"].append({"ls": [2, 0, 2, 1], "normalize": True, "normalization": "component", "values": tolist(y)})
    y = o3.spherical_harmonics(o3.Irreps("0e+1e+2e"), x, normalize=True, normalization="norm")
    out["pseudovector"] = {"irreps": "0e+1e+2e", "irreps_in": "1x1e", "values": tolist(y)}
    # Gradients by autograd: grad[i, a, k] = d y[i, k] / d x[i, a].
    grads = []
    for lmax, normalization in ((8, "component"), (3, "component"), (3, "integral")):
        for normalize in (True, False):
            xg = x[:6].clone().requires_grad_(True)
            ls = list(range(lmax + 1))
            y = o3.spherical_harmonics(ls, xg, normalize=normalize, normalization=normalization)
            g = torch.zeros(6, 3, y.shape[1])
            for k in range(y.shape[1]):
                (gk,) = torch.autograd.grad(y[:, k].sum(), xg, retain_graph=True)
                g[:, :, k] = gk
            grads.append({"ls": ls, "normalize": normalize, "normalization": normalization, "grad": tolist(g)})
    out["gradients"] = grads
    # e3nn at the zero vector: value and gradient (normalize=True).
    z = torch.zeros(1, 3, requires_grad=True)
    y = o3.spherical_harmonics([0, 1, 2], z, normalize=True, normalization="component")
    g = torch.zeros(1, 3, y.shape[1])
    for k in range(y.shape[1]):
        (gk,) = torch.autograd.grad(y[:, k].sum(), z, retain_graph=True)
        g[:, :, k] = gk
    out["zero_vector"] = {"ls": [0, 1, 2], "values": tolist(y), "grad": tolist(g)}
    dump("spherical_harmonics", out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    irreps_fixture()
    wigner_3j_fixture()
    wigner_d_fixture()
    spherical_harmonics_fixture()
