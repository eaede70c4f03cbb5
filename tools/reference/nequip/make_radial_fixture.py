"""NequIP radial edge embedding oracle: Bessel basis x polynomial cutoff, and d/dr, d2/dr2.

Run from the repository root:

    /work/venv-nequip/bin/python tools/reference/nequip/make_radial_fixture.py

Writes crates/equivariant/tests/fixtures/nequip_radial.json (float64, repr-exact floats).

The venv (outside git) holds nequip 0.19.1 from PyPI, the newest nequip whose requirements
accept e3nn 0.6 (0.17.0 and later: e3nn>=0.6,<0.7; 0.16.x and earlier: e3nn<0.6). It reuses
torch and e3nn 0.6.0 from /work/venv-e3nn through a .pth file:

    python3 -m venv /work/venv-nequip
    echo /work/venv-e3nn/lib/python3.11/site-packages \
        > /work/venv-nequip/lib/python3.11/site-packages/venv_e3nn.pth
    /work/venv-nequip/bin/pip install nequip==0.19.1
    # legacy classes (pure torch), unpacked beside, never imported as a package:
    /work/venv-nequip/bin/pip install --no-deps \
        --target /work/venv-nequip/legacy-nequip-0.6.2 nequip==0.6.2

Sources of the numbers (NequIP's own modules, nothing re-typed):

- "embedding", "cutoff" and all derivatives: the edge modules of a real NequIPGNNModel
  (nequip 0.19.1, model_dtype float64) run in order, as its SequentialGraphNetwork does:
  edge_norm (EdgeLengthNormalizer, x = r / r_max) -> bessel_encode (BesselEdgeLengthEncoding:
  sinc(x n) n * PolynomialCutoff(p)(x)) -> factor (ApplyFactor, 2 pi / r_max^2, "for backwards
  compatibility"). "embedding" is the edge_embedding field after "factor", i.e. what the
  convolutions' radial MLPs receive; "cutoff" is the edge_cutoff field.
- "bessel": nequip 0.6.2's BesselBasis(r_max, num_basis, trainable=False) (weights n pi,
  2 / r_max * sin(n pi r / r_max) / r), the basis of 0.6.2's RadialBasisEdgeEncoding, whose
  output is basis(r) * cutoff(r). The script asserts that this product equals "embedding"
  (and 0.6.2's PolynomialCutoff(r_max, p) equals "cutoff") to 1e-12 relative to the scale.

Derivatives are elementwise in r (each row depends only on its own r), by autograd
(create_graph=True for the second). Beyond r_max everything is 0 (the cutoff's `x < 1` mask).
"""

import importlib.util
import json
import math
import pathlib
import warnings

import e3nn
import torch

import nequip
from nequip.data import AtomicDataDict
from nequip.model import NequIPGNNModel
from nequip.utils.global_state import set_global_state

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "crates/equivariant/tests/fixtures/nequip_radial.json"
LEGACY = pathlib.Path("/work/venv-nequip/legacy-nequip-0.6.2/nequip/nn")

SETTINGS = [
    # r_max, num_basis, p, lengths (small, interior, just below r_max, r_max, beyond)
    (4.0, 8, 6, [0.05, 0.37, 0.9, 1.5, 2.2, 3.0, 3.7, 3.99, 3.9999, 4.0, 4.2, 4.4]),
    (5.0, 6, 2, [0.05, 0.42, 1.1, 1.9, 2.6, 3.5, 4.6, 4.99, 4.9999, 5.0, 5.25, 5.5]),
]


def load_legacy(name):
    """Import one file of nequip 0.6.2's nn package by path (it only needs torch and e3nn)."""
    spec = importlib.util.spec_from_file_location(f"legacy_{name}", LEGACY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script deprecation (0.6.2's _poly_cutoff)
        spec.loader.exec_module(module)
    return module


def edge_modules(r_max, num_basis, p):
    """The edge-length modules of a one-layer NequIPGNNModel, in model order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NequIPGNNModel(
            seed=0, model_dtype="float64", r_max=r_max, type_names=["H"], num_layers=1,
            num_bessels=num_basis, bessel_trainable=False, polynomial_cutoff_p=p,
            avg_num_neighbors=1.0, per_type_energy_scales=1.0, per_type_energy_shifts=0.0,
        )
    seq = model.model.func
    return [seq.edge_norm, seq.bessel_encode, seq.factor], seq.factor.factor


def d_dr(y, r, create_graph):
    """Elementwise derivative of y [E] or [E, K] (row e a function of r[e] only)."""
    cols = [y] if y.dim() == 1 else list(y.unbind(1))
    grad = lambda c: torch.autograd.grad(c.sum(), r, retain_graph=True, create_graph=create_graph)
    ds = [grad(c)[0] for c in cols]
    return ds[0] if y.dim() == 1 else torch.stack(ds, dim=1)


def one_setting(r_max, num_basis, p, lengths, legacy_basis, legacy_cutoff):
    r = torch.tensor(lengths, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros_like(r)
    data = {
        AtomicDataDict.EDGE_VECTORS_KEY: torch.stack([r, zero, zero], 1),
        AtomicDataDict.EDGE_LENGTH_KEY: r.view(-1, 1),
    }
    modules, factor = edge_modules(r_max, num_basis, p)
    for m in modules:
        data = m(data)
    emb = data[AtomicDataDict.EDGE_EMBEDDING_KEY]  # [E, K]
    cut = data[AtomicDataDict.EDGE_CUTOFF_KEY].view(-1)  # [E]

    bessel = legacy_basis.BesselBasis(r_max, num_basis, trainable=False)(r.detach())
    legacy_cut = legacy_cutoff.PolynomialCutoff(r_max, p)(r.detach())
    # 0.6.2 RadialBasisEdgeEncoding.forward: basis(edge_length) * cutoff(edge_length)
    legacy_emb = bessel * legacy_cut.unsqueeze(-1)
    scale = emb.detach().abs().max()
    assert (legacy_emb - emb.detach()).abs().max() <= 1e-12 * scale, "0.6.2 vs 0.19.1 embedding"
    assert (legacy_cut - cut.detach()).abs().max() <= 1e-12, "0.6.2 vs 0.19.1 cutoff"

    emb_d1 = d_dr(emb, r, True)
    emb_d2 = d_dr(emb_d1, r, False)
    cut_d1 = d_dr(cut, r, True)
    cut_d2 = d_dr(cut_d1, r, False)
    rows = lambda t: t.detach().tolist()
    return {
        "r_max": r_max, "num_basis": num_basis, "p": p, "embedding_factor": factor,
        "lengths": lengths,
        "bessel": rows(bessel), "cutoff": rows(cut), "embedding": rows(emb),
        "embedding_d1": rows(emb_d1), "embedding_d2": rows(emb_d2),
        "cutoff_d1": rows(cut_d1), "cutoff_d2": rows(cut_d2),
    }


def main():
    set_global_state()  # nequip's own init: default dtype float64, seeds
    torch.set_default_dtype(torch.float64)
    legacy_basis, legacy_cutoff = load_legacy("radial_basis"), load_legacy("cutoffs")
    settings = [one_setting(*s, legacy_basis, legacy_cutoff) for s in SETTINGS]
    head = {
        "generator": "tools/reference/nequip/make_radial_fixture.py",
        "nequip_version": nequip.__version__, "torch_version": torch.__version__,
        "e3nn_version": e3nn.__version__, "legacy_bessel_from": "nequip 0.6.2", "dtype": "float64",
    }
    dump = lambda o: json.dumps(o, separators=(",", ":"), allow_nan=False)
    body = ",\n".join(dump(s) for s in settings)
    OUT.write_text(dump(head)[:-1] + ',"settings":[\n' + body + "\n]}\n")
    json.loads(OUT.read_text())  # well-formed
    print(f"wrote {OUT} ({len(settings)} settings)")


if __name__ == "__main__":
    main()
