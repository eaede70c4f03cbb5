"""NequIP whole-model oracle: nequip 0.6.2's own EnergyModel (+ PerSpeciesRescale, ForceOutput).

Run from the repository root:

    /work/venv-nequip/bin/python tools/reference/nequip/make_model_fixture.py

Writes crates/equivariant/tests/fixtures/nequip_model.json (float64, repr-exact floats).

The numbers come from nequip 0.6.2 itself, not a re-composition: the legacy pure-python
package unpacked at /work/venv-nequip/legacy-nequip-0.6.2 (see make_radial_fixture.py) is
put first on sys.path, so `import nequip` is 0.6.2 (asserted), running on the venv's torch
and e3nn 0.6.0 (0.6.2 asks for e3nn<0.6, but its model code runs unchanged on 0.6.0).
Its one missing dependency, torch_runstats, is replaced by an in-process stand-in of
`torch_runstats.scatter.scatter` for reduce="sum" (the only reduction the model's forward
pass uses: InteractionBlock's scatter to the centres), written as torch_runstats /
torch_scatter write scatter_sum (broadcast the index, scatter_add_). Nothing else of
torch_runstats is reachable from the model.

The model is built by 0.6.2's `model_from_config` with model_builders
[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput] (the default list without
RescaleEnergyEtc, whose global scale would need a dataset; with it the Rust model has no
counterpart), model_dtype = default_dtype = float64, parameters drawn by e3nn's own
initialisers under torch.manual_seed. The model is in train() mode, so ForceOutput's
autograd.grad runs with create_graph=True and the force loss L = sum(F * c) can be
differentiated with respect to every trainable parameter.

Parameter names are mapped from 0.6.2's state dict to the Rust burn module paths:
  func.chemical_embedding.linear.weight      -> chemical_embedding.weight
  func.layer{i}_convnet.conv.linear_1.weight -> layers.{i}.conv.linear_1.weight
  func.layer{i}_convnet.conv.fc.layer{k}.weight -> layers.{i}.conv.fc.weights.{k}  ([in, out])
  func.layer{i}_convnet.conv.linear_2.weight -> layers.{i}.conv.linear_2.weight
  func.layer{i}_convnet.conv.sc.weight       -> layers.{i}.conv.sc.weight
  func.conv_to_output_hidden.linear.weight   -> conv_to_output_hidden.weight
  func.output_hidden_to_scalar.linear.weight -> output_hidden_to_scalar.weight
  func.per_species_rescale.scales / .shifts  -> per_type_scales / per_type_shifts (buffers)
e3nn's derived buffers (output_mask, the empty weight of the external-weight tp, the fixed
Bessel weights n pi) are left out ("buffers_skipped" lists them).

Graph: all ordered pairs (i, j), i != j, |pos[j] - pos[i]| < r_max, no cell. 0.6.2's
edge_index[0] is the centre and edge_index[1] the neighbour: edge_vec = pos[edge_index[1]] -
pos[edge_index[0]] (data/AtomicDataDict.py:72), messages from x[edge_index[1]] are summed
onto edge_index[0] (nn/_interaction_block.py:162-178). "edge_index" in the JSON is that
[2, E] array (rows: centre, neighbour), sorted by centre then neighbour.
"""

import json
import pathlib
import sys
import types
import warnings

LEGACY_ROOT = pathlib.Path("/work/venv-nequip/legacy-nequip-0.6.2")
ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "crates/equivariant/tests/fixtures/nequip_model.json"

import torch  # noqa: E402


def _install_torch_runstats_stand_in():
    """`torch_runstats.scatter.scatter` (sum only) and inert names for the training code."""

    def _broadcast(src, other, dim):
        if dim < 0:
            dim = other.dim() + dim
        if src.dim() == 1:
            for _ in range(0, dim):
                src = src.unsqueeze(0)
        for _ in range(src.dim(), other.dim()):
            src = src.unsqueeze(-1)
        return src.expand_as(other)

    def scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
        if reduce != "sum":
            raise NotImplementedError(f"stand-in scatter only sums, asked for {reduce}")
        index = _broadcast(index, src, dim)
        if out is None:
            size = list(src.size())
            if dim_size is not None:
                size[dim] = dim_size
            elif index.numel() == 0:
                size[dim] = 0
            else:
                size[dim] = int(index.max()) + 1
            out = torch.zeros(size, dtype=src.dtype, device=src.device)
        return out.scatter_add_(dim, index, src)

    def unavailable(*args, **kwargs):
        raise NotImplementedError("torch_runstats stand-in: not available")

    package = types.ModuleType("torch_runstats")
    scatter_module = types.ModuleType("torch_runstats.scatter")
    scatter_module.scatter = scatter
    scatter_module.scatter_mean = unavailable
    scatter_module.scatter_std = unavailable
    package.scatter = scatter_module
    package.RunningStats = unavailable
    package.Reduction = types.SimpleNamespace(MEAN="mean", RMS="rms")
    sys.modules["torch_runstats"] = package
    sys.modules["torch_runstats.scatter"] = scatter_module


_install_torch_runstats_stand_in()
sys.path.insert(0, str(LEGACY_ROOT))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import e3nn  # noqa: E402
    import nequip  # noqa: E402
    from nequip.data import AtomicDataDict  # noqa: E402
    from nequip.model import model_from_config  # noqa: E402

assert nequip.__version__ == "0.6.2", nequip.__version__
assert pathlib.Path(nequip.__file__).resolve().is_relative_to(LEGACY_ROOT)

torch.set_default_dtype(torch.float64)

COMMON = dict(
    num_types=2,
    r_max=3.5,
    num_layers=2,
    num_features=4,
    num_basis=8,
    PolynomialCutoff_p=6,
    invariant_layers=1,
    invariant_neurons=8,
    avg_num_neighbors=5.0,
    use_sc=True,
    resnet=False,
    nonlinearity_type="gate",
    BesselBasis_trainable=False,
    per_species_rescale_scales=[1.3, 0.7],
    per_species_rescale_shifts=[-0.4, 0.25],
)
CASES = [
    dict(COMMON, l_max=1, parity=True, seed=11),
    dict(COMMON, l_max=2, parity=True, seed=22),
    dict(COMMON, l_max=1, parity=False, seed=33),
    # a third layer reaches 0o scalars (1e x 1o), so the gate's tanh (odd scalars) is used
    dict(COMMON, l_max=1, parity=True, seed=44, num_layers=3),
    # SO(3) only (every irrep even): the one setting whose energy sees the edge direction.
    dict(COMMON, l_max=2, parity=False, seed=55, num_layers=3),
    # NequIP 0.7 and later: the last layer keeps only num_features x 0e (what the readout
    # reads), set here through 0.6.2's per-layer key layer{L-1}_convnet_feature_irreps_hidden
    dict(COMMON, l_max=1, parity=True, seed=66, scalar_last_layer=True),
    dict(COMMON, l_max=2, parity=False, seed=77, num_layers=3, scalar_last_layer=True),
]

NUM_ATOMS = 8


def structure(seed, r_max):
    """Seeded positions of 8 atoms of two species: every atom has a neighbour, not every pair
    is an edge, no pair closer than 0.9 A and no pair length within 0.05 A of r_max."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        pos = torch.rand(NUM_ATOMS, 3, generator=gen, dtype=torch.float64) * 5.0
        d = torch.cdist(pos, pos)
        off = d[~torch.eye(NUM_ATOMS, dtype=torch.bool)]
        within = (d < r_max) & ~torch.eye(NUM_ATOMS, dtype=torch.bool)
        if (
            off.min() > 0.9
            and (off - r_max).abs().min() > 0.05
            and within.any(dim=1).all()
            and not within.sum() == NUM_ATOMS * (NUM_ATOMS - 1)
        ):
            break
    species = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    return pos, species


def radius_graph(pos, r_max):
    n = len(pos)
    pairs = [
        (i, j)
        for i in range(n)
        for j in range(n)
        if i != j and float(torch.linalg.norm(pos[j] - pos[i])) < r_max
    ]
    return torch.tensor(pairs, dtype=torch.long).T.contiguous()


def rust_path(name):
    """0.6.2 state-dict key (inside GraphModel.model = GradientOutput) -> Rust module path."""
    assert name.startswith("model.func."), name
    name = name[len("model.func.") :]
    if name.startswith("layer") and "_convnet." in name:
        head, rest = name.split("_convnet.", 1)
        i = int(head[len("layer") :])
        if rest.startswith("conv.fc.layer"):
            k = int(rest[len("conv.fc.layer") :].split(".")[0])
            assert rest == f"conv.fc.layer{k}.weight", rest
            return f"layers.{i}.conv.fc.weights.{k}"
        return f"layers.{i}.{rest}"
    table = {
        "chemical_embedding.linear.weight": "chemical_embedding.weight",
        "conv_to_output_hidden.linear.weight": "conv_to_output_hidden.weight",
        "output_hidden_to_scalar.linear.weight": "output_hidden_to_scalar.weight",
        "per_species_rescale.scales": "per_type_scales",
        "per_species_rescale.shifts": "per_type_shifts",
    }
    return table[name]


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run_case(hyper):
    torch.manual_seed(hyper["seed"])
    config = dict(
        hyper,
        model_builders=["SimpleIrrepsConfig", "EnergyModel", "PerSpeciesRescale", "ForceOutput"],
        type_names=["A", "B"],
        model_dtype="float64",
        default_dtype="float64",
    )
    config.pop("seed")
    if config.pop("scalar_last_layer", False):
        last = hyper["num_layers"] - 1
        config[f"layer{last}_convnet_feature_irreps_hidden"] = f"{hyper['num_features']}x0e"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_from_config(config, initialize=True)
    model.train()

    pos, species = structure(hyper["seed"], hyper["r_max"])
    edge_index = radius_graph(pos, hyper["r_max"])
    data = {
        AtomicDataDict.POSITIONS_KEY: pos.clone(),
        AtomicDataDict.EDGE_INDEX_KEY: edge_index,
        AtomicDataDict.ATOM_TYPE_KEY: species.view(-1, 1),
    }
    out = model(data)
    atomic = out[AtomicDataDict.PER_ATOM_ENERGY_KEY]
    energy = out[AtomicDataDict.TOTAL_ENERGY_KEY]
    forces = out[AtomicDataDict.FORCE_KEY]
    assert atomic.dtype == torch.float64 and forces.dtype == torch.float64
    assert torch.allclose(atomic.sum(), energy.sum(), rtol=0, atol=1e-12)

    c = torch.randn(NUM_ATOMS, 3, generator=torch.Generator().manual_seed(hyper["seed"] + 1))
    loss = (forces * c).sum()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in trainable], allow_unused=True)

    # forces cross-check: central differences of the total energy (the model's own forward)
    def total_energy(p):
        d = dict(data, **{AtomicDataDict.POSITIONS_KEY: p})
        return float(model(d)[AtomicDataDict.TOTAL_ENERGY_KEY].detach().sum())

    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (6, 2)]:
        plus, minus = pos.clone(), pos.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        fd = -(total_energy(plus) - total_energy(minus)) / (2 * h)
        assert abs(fd - float(forces[atom, axis].detach())) < 1e-7 * (1 + abs(fd)), (fd, forces[atom, axis])

    # the trainable parameters and the per-species buffers; e3nn's derived buffers skipped
    kept = {n for n, _ in model.named_parameters()} | {
        "model.func.per_species_rescale.scales",
        "model.func.per_species_rescale.shifts",
    }
    params, skipped = {}, []
    for name, t in model.state_dict().items():
        if name not in kept:
            skipped.append(name)
            continue
        params[rust_path(name)] = {"shape": list(t.shape), "values": flat(t)}
    grad_params = {}
    for (name, p), g in zip(trainable, grads):
        grad_params[rust_path(name)] = flat(g if g is not None else torch.zeros_like(p))
    assert set(grad_params) <= set(params)

    modules = model.model.func
    irreps = {
        "feature_irreps_hidden": str(modules.layer0_convnet.feature_irreps_hidden),
        "irreps_edge_sh": str(modules.spharm_edges.irreps_edge_sh),
        "layers": [
            {
                "irreps_in": str(layer.conv.irreps_in[AtomicDataDict.NODE_FEATURES_KEY]),
                "conv_irreps_out": str(layer.conv.irreps_out[AtomicDataDict.NODE_FEATURES_KEY]),
                "tp_irreps_out": str(layer.conv.tp.irreps_out),
                "linear_2_irreps_in": str(layer.conv.linear_2.irreps_in),
                "gate_irreps_out": str(layer.equivariant_nonlin.irreps_out),
                "tp_weight_numel": layer.conv.tp.weight_numel,
                "resnet": bool(layer.resnet),
            }
            for layer in (getattr(modules, f"layer{i}_convnet") for i in range(hyper["num_layers"]))
        ],
    }

    return {
        "hyper": {
            k: hyper[k]
            for k in [
                "num_types", "r_max", "num_layers", "l_max", "parity", "num_features",
                "num_basis", "PolynomialCutoff_p", "invariant_layers", "invariant_neurons",
                "avg_num_neighbors", "use_sc", "resnet", "seed",
            ]
        }
        | {"scalar_last_layer": hyper.get("scalar_last_layer", False)}
        | {"scales": hyper["per_species_rescale_scales"], "shifts": hyper["per_species_rescale_shifts"]},
        "irreps": irreps,
        "species": species.tolist(),
        "positions": pos.tolist(),
        "edge_index": edge_index.tolist(),
        "params": params,
        "buffers_skipped": skipped,
        "atomic_energies": flat(atomic),
        "energy": float(energy.detach().sum()),
        "forces": forces.detach().tolist(),
        "c": c.tolist(),
        "loss": float(loss.detach()),
        "grad_params": grad_params,
    }


def main():
    cases = [run_case(h) for h in CASES]
    doc = {
        "generator": "tools/reference/nequip/make_model_fixture.py",
        "generator_note": (
            "nequip 0.6.2 itself (legacy source first on sys.path) built by model_from_config "
            "with [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput], run on "
            "e3nn 0.6.0 (0.6.2 officially wants e3nn<0.6); torch_runstats (absent) replaced by "
            "an equivalent pure-torch scatter-sum stand-in. float64. Forces = -dE/dpos from "
            "0.6.2's GradientOutput (train mode, create_graph=True); grad_params = d/dparam of "
            "loss = sum(forces * c) for the trainable parameters (per_type_scales/shifts are "
            "buffers in 0.6.2 and have no gradient here). edge_index rows: centre, neighbour; "
            "edge vector = pos[neighbour] - pos[centre]."
        ),
        "versions": {
            "nequip": nequip.__version__,
            "e3nn": e3nn.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
        },
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    for case in cases:
        h = case["hyper"]
        print(
            f"l_max={h['l_max']} parity={h['parity']}: E={case['energy']:.12g} "
            f"edges={len(case['edge_index'][0])} params={list(case['params'])}"
        )
        print("  irreps:", json.dumps(case["irreps"]))


if __name__ == "__main__":
    main()
