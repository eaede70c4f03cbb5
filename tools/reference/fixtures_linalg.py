"""Reference values of e3nn 0.6.0's `e3nn.math` linear algebra, permutations and index
symmetries for `tests/core/linalg.rs`.

Run from the repository root with a Python that has torch and e3nn==0.6.0:

    /work/venv-e3nn/bin/python tools/reference/fixtures_linalg.py

It writes crates/equivariant-core/tests/fixtures/linalg.json (float64 throughout):

- orthonormalize: matrices (seeded normals, some rank-deficient or with a zero row), eps,
  and e3nn's (final, matrix).
- complete_basis: matrices (ones(1, n) at e3nn's eps 0.1 / n, orthonormal rows), eps, and
  the completion.
- direct_sum: lists of matrices and their direct sum.
- perm: for n = 3 and 4 and every i < n!, from_int(i, n), its inverse, cycles, sign,
  natural and standard representations, and its composition with from_int(i + 1, n).
- reduce: formulas with dimensions: germinate_formulas' f0 and signed permutations, and
  reduce_permutation's Q (with its shape) and the signed entries of each basis tensor.
- reduced_tensor_products: o3.ReducedTensorProducts(formula, **irreps) (with filters in some
  cases): irreps_in, irreps_out, change_of_basis (with its shape), and forward on seeded
  normal inputs (e3nn's own tensor-product graph).
- cartesian_tensor: io.CartesianTensor(formula) for symmetric, antisymmetric and general
  rank-2, rank-3 and rank-4 formulas: its irreps, from_cartesian of seeded normal tensors
  (two at once), to_cartesian of that (the symmetric part), to_cartesian of seeded irreps
  and from_vectors of seeded vectors.
"""

import json
import math
import os

import torch

from e3nn import io, o3
from e3nn.math import complete_basis, direct_sum, orthonormalize, perm
from e3nn.math._reduce import germinate_formulas, reduce_permutation

torch.set_default_dtype(torch.float64)

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "..", "crates", "equivariant-core", "tests", "fixtures", "linalg.json",
)


def matrix(m):
    return {"rows": m.shape[0], "cols": m.shape[1], "data": [float(x) for x in m.reshape(-1)]}


def randn(rows, cols, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g)


def orthonormalize_cases():
    inputs = [randn(3, 4, 0), randn(4, 4, 1), randn(2, 5, 2)]
    a = randn(3, 3, 3)
    inputs.append(torch.stack([a[0], a[1], a[0] + 2 * a[1], a[2]]))  # rank 3 of 4 rows
    b = randn(3, 4, 4)
    inputs.append(torch.stack([b[0], torch.zeros(4), b[1], b[2]]))  # a zero row
    inputs.append(torch.tensor([[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 3.0, 0.0]]))
    cases = []
    for x in inputs:
        for eps in (1e-9, 1e-3):
            final, mat = orthonormalize(x, eps)
            cases.append({"original": matrix(x), "eps": eps, "final": matrix(final),
                          "matrix": matrix(mat)})
    return cases


def complete_basis_cases():
    cases = []
    for n in range(2, 6):
        x = torch.ones(1, n)
        cases.append({"vecs": matrix(x), "eps": 0.1 / n, "basis": matrix(complete_basis(x, 0.1 / n))})
    for seed, (rows, cols) in enumerate([(2, 5), (1, 3), (3, 4)]):
        x, _ = orthonormalize(randn(rows, cols, 10 + seed), 1e-9)
        cases.append({"vecs": matrix(x), "eps": 1e-9, "basis": matrix(complete_basis(x, 1e-9))})
    return cases


def direct_sum_cases():
    groups = [[randn(1, 2, 20), randn(2, 2, 21)], [randn(3, 1, 22), randn(1, 3, 23), randn(2, 2, 24)]]
    return [{"matrices": [matrix(m) for m in ms], "sum": matrix(direct_sum(*ms))} for ms in groups]


def perm_cases():
    cases = []
    for n in (3, 4):
        count = math.factorial(n)
        for i in range(count):
            p = perm.from_int(i, n)
            q = perm.from_int((i + 1) % count, n)
            cases.append({
                "n": n, "i": i, "p": list(p), "to_int": perm.to_int(p), "inverse": list(perm.inverse(p)),
                "cycles": sorted(list(c) for c in perm.to_cycles(p)), "sign": perm.sign(p),
                "q": list(q), "compose": list(perm.compose(p, q)),
                "natural": matrix(perm.natural_representation(p)),
                "standard": matrix(perm.standard_representation(p)),
            })
    return cases


REDUCE = [
    ("ij=ji", {"i": 3}),
    ("ij=-ji", {"i": 3}),
    ("ij", {"i": 2, "j": 3}),
    ("ijk=jik=ikj", {"i": 2}),
    ("ijk=-jik=-ikj", {"i": 3}),
    ("ijk=jik", {"i": 2, "k": 3}),
    ("ijkl=jikl=klij", {"i": 3}),
    ("ijkl=-jikl=-ijlk=klij", {"i": 2}),
]


def reduce_cases():
    cases = []
    for formula, dims in REDUCE:
        f0, formulas = germinate_formulas(formula)
        q, ret = reduce_permutation(f0, formulas, **dict(dims))
        cases.append({
            "formula": formula, "dims": dims, "f0": f0,
            "group": sorted([s, list(p)] for s, p in formulas),
            "shape": list(q.shape), "q": [float(x) for x in q.reshape(-1)],
            "entries": [[[s, list(x)] for s, x in xs] for xs in ret],
        })
    return cases


RTP = [
    ("ij=ji", {"i": "1o"}, None, None),
    ("ij=-ji", {"i": "1o"}, None, None),
    ("ij", {"i": "1o", "j": "1e"}, None, None),
    ("ij=ji", {"i": "0e+1o"}, None, None),
    ("ijk=jik=ikj", {"i": "1o"}, None, None),
    ("ijk=-jik=-ikj", {"i": "1o"}, None, None),
    ("ijk", {"i": "1o", "j": "1o", "k": "0e+1e"}, None, None),
    ("ijkl=jikl=klij", {"i": "1o"}, None, None),
    ("ijkl=jikl=ikjl=ijlk", {"i": "1e"}, None, None),
    ("ij=ji", {"i": "1o+2e"}, ["0e", "2e"], None),
    ("ijk=jik", {"i": "1o", "k": "1o"}, None, ["0e", "2e", "1o", "2o"]),
]


def rtp_cases():
    cases = []
    for k, (formula, irreps, filter_out, filter_mid) in enumerate(RTP):
        tp = o3.ReducedTensorProducts(formula, filter_ir_out=filter_out, filter_ir_mid=filter_mid,
                                      **dict(irreps))
        q = tp.change_of_basis
        g = torch.Generator().manual_seed(100 + k)
        xs = [torch.randn(irs.dim, generator=g) for irs in tp.irreps_in]
        cases.append({
            "formula": formula, "irreps": irreps, "filter_ir_out": filter_out, "filter_ir_mid": filter_mid,
            "irreps_in": [str(irs) for irs in tp.irreps_in], "irreps_out": str(tp.irreps_out),
            "shape": list(q.shape), "change_of_basis": [float(x) for x in q.reshape(-1)],
            "inputs": [[float(v) for v in x] for x in xs],
            "forward": [float(v) for v in tp(*xs)],
        })
    return cases


CARTESIAN = ["ij=ji", "ij=-ji", "ij", "ijk=jik=ikj", "ijk=-jik=-ikj", "ijk", "ijkl=jikl=klij",
             "ijkl=jikl=ijlk"]


def cartesian_cases():
    cases = []
    for k, formula in enumerate(CARTESIAN):
        x = io.CartesianTensor(formula)
        rank = len(x.indices)
        g = torch.Generator().manual_seed(200 + k)
        t = torch.randn(2, *([3] * rank), generator=g)
        irreps = x.from_cartesian(t)
        y = torch.randn(2, x.dim, generator=g)
        vectors = [torch.randn(3, generator=g) for _ in range(rank)]
        cases.append({
            "formula": formula, "irreps": str(o3.Irreps(x)),
            "tensors": [float(v) for v in t.reshape(-1)],
            "from_cartesian": [float(v) for v in irreps.reshape(-1)],
            "round_trip": [float(v) for v in x.to_cartesian(irreps).reshape(-1)],
            "irreps_data": [float(v) for v in y.reshape(-1)],
            "to_cartesian": [float(v) for v in x.to_cartesian(y).reshape(-1)],
            "vectors": [[float(v) for v in u] for u in vectors],
            "from_vectors": [float(v) for v in x.from_vectors(*vectors)],
        })
    return cases


def main():
    data = {
        "generator": "tools/reference/fixtures_linalg.py",
        "versions": {"torch": torch.__version__, "e3nn": __import__("e3nn").__version__},
        "orthonormalize": orthonormalize_cases(),
        "complete_basis": complete_basis_cases(),
        "direct_sum": direct_sum_cases(),
        "perm": perm_cases(),
        "reduce": reduce_cases(),
        "reduced_tensor_products": rtp_cases(),
        "cartesian_tensor": cartesian_cases(),
    }
    with open(OUT, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
