"""The Cu-Au dataset of the project: frames of Langevin MD with ASE's EMT calculator (it ships
inside the `ase` package: no download), each with its energy, forces and stress, written as
extended XYZ. Seeded: the same command gives the same files.

    python3 -m venv venv-ase && venv-ase/bin/pip install ase
    venv-ase/bin/python tools/data/make_cuau_dataset.py            # full set, ~3000 frames
    venv-ase/bin/python tools/data/make_cuau_dataset.py --slice    # data/cuau_emt_slice.extxyz

Three systems, each at 300, 600, 900, 1200 and 1500 K:
- `bulk`: a 3x3x3 cubic fcc cell (108 atoms), a quarter of the sites Au at random, the
  lattice constant interpolated between Cu's and Au's (Vegard);
- `vacancy`: the same with one atom removed (107 atoms);
- `surface`: a (111) slab of 3x3 sites and 4 layers with 8 A of vacuum (periodic cell, so
  stress is defined), Au on a third of the sites.
Per system and temperature: 100 steps of equilibration, then a frame every 10 steps of
5 fs. Each frame's `config_type` and `temperature` are kept in its comment line.

The full set (`--frames-per-run 200`: 15 runs x 200 = 3000 frames) goes to
`data/cuau_emt_full.extxyz` (not committed); `--slice` writes 10 frames per run (150
frames, ~1.6 MB), the committed slice the tests and the examples read.
"""

import argparse
import pathlib

import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPERATURES = [300, 600, 900, 1200, 1500]
A_CU, A_AU = 3.61, 4.08


def alloy(rng, kind):
    if kind == "surface":
        atoms = fcc111("Cu", size=(3, 3, 4), a=A_CU + (A_AU - A_CU) / 3, vacuum=4.0)
        fraction = 1 / 3
    else:
        atoms = bulk("Cu", "fcc", a=A_CU + 0.25 * (A_AU - A_CU), cubic=True) * (3, 3, 3)
        fraction = 0.25
    au = rng.choice(len(atoms), size=round(fraction * len(atoms)), replace=False)
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[au] = "Au"
    atoms.set_chemical_symbols(list(symbols))
    if kind == "vacancy":
        del atoms[int(rng.integers(len(atoms)))]
    atoms.pbc = True
    return atoms


def run(seed, kind, temperature, frames, every=10, equilibration=100):
    rng = np.random.default_rng(seed)
    atoms = alloy(rng, kind)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(
        atoms,
        timestep=5 * units.fs,
        temperature_K=temperature,
        friction=0.02,
        rng=np.random.RandomState(seed),
    )
    dyn.run(equilibration)
    out = []
    for _ in range(frames):
        dyn.run(every)
        frame = atoms.copy()
        frame.calc = None
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=False)
        frame.info.update(config_type=kind, temperature=float(temperature))
        frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces, stress=stress)
        out.append(frame)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", action="store_true", help="the committed slice")
    parser.add_argument("--frames-per-run", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    per_run = args.frames_per_run or (10 if args.slice else 200)
    name = "cuau_emt_slice.extxyz" if args.slice else "cuau_emt_full.extxyz"
    frames = []
    for k, kind in enumerate(["bulk", "vacancy", "surface"]):
        for t, temperature in enumerate(TEMPERATURES):
            seed = args.seed * 1000 + 10 * k + t
            frames += run(seed, kind, temperature, per_run)
    path = ROOT / "data" / name
    path.parent.mkdir(exist_ok=True)
    write(path, frames, format="extxyz")
    print(f"{path}: {len(frames)} frames, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
