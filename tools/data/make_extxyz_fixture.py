"""Writes the extended-XYZ fixture of crates/equivariant-data with ASE, and what ASE reads
back from it as JSON: the oracle of the Rust reader's tests.

    python3 -m venv venv-ase && venv-ase/bin/pip install ase
    venv-ase/bin/python tools/data/make_extxyz_fixture.py

Three frames, as ASE writes them (`ase.io.write(..., format="extxyz")`): a periodic Cu-Au
cell with EMT's energy, forces and stress and a per-frame tag; a non-periodic Cu cluster
with an extra per-atom column and no stress; a slab periodic in x and y only, with a
vacancy.
"""

import json
import pathlib

import numpy as np
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.cluster import Octahedron
from ase.io import read, write

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/equivariant-data/tests/fixtures"


def frames():
    rng = np.random.default_rng(0)
    a = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
    a.symbols[[1, 4]] = "Au"
    a.rattle(0.05, seed=1)
    a.calc = EMT()
    a.get_potential_energy()
    a.info["config_type"] = "bulk"
    a.info["temperature"] = 300.0

    c = Octahedron("Cu", 3)
    c.rattle(0.03, seed=2)
    c.calc = EMT()
    c.get_potential_energy()
    c.get_forces()
    c.set_array("charges", rng.normal(size=len(c)))

    s = fcc111("Au", size=(2, 2, 2), vacuum=4.0)
    del s[3]
    s.calc = EMT()
    s.get_potential_energy()
    s.get_forces()
    s.get_stress()
    return [a, c, s]


# ASE's names in the file for per-atom calculator results (`charges` is written `charge`).
FILE_NAMES = {"charges": "charge"}


def as_json(atoms):
    """What ASE read from the file, with names as the file has them: per-frame values other
    than energy and stress in `info`, per-atom columns other than species, positions and
    forces in `arrays`."""
    calc = atoms.calc
    results = calc.results if calc is not None else {}
    info = dict(atoms.info)
    if "free_energy" in results:
        info["free_energy"] = results["free_energy"]
    arrays = {k: np.asarray(v).tolist() for k, v in atoms.arrays.items()}
    arrays.pop("numbers")
    arrays.pop("positions")
    for k, v in results.items():
        if k != "forces" and np.ndim(v) >= 1 and len(v) == len(atoms):
            arrays[FILE_NAMES.get(k, k)] = np.asarray(v).tolist()
    return {
        "species": list(atoms.get_chemical_symbols()),
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist() if atoms.cell.rank == 3 else None,
        "pbc": [bool(p) for p in atoms.pbc],
        "energy": float(results["energy"]) if "energy" in results else None,
        "forces": results["forces"].tolist() if "forces" in results else None,
        "stress": (
            atoms.get_stress(voigt=False).tolist() if "stress" in results else None
        ),
        "info": {k: (v if isinstance(v, str) else float(v)) for k, v in info.items()},
        "arrays": arrays,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "ase.extxyz"
    write(path, frames(), format="extxyz")
    # The slab's `adsorbate_info` (a dict) is not written: ASE warns and skips it.
    back = read(path, index=":", format="extxyz")
    (OUT / "ase.json").write_text(json.dumps([as_json(a) for a in back], indent=1) + "\n")


if __name__ == "__main__":
    main()
