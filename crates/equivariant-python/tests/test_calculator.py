"""The ASE calculator: the numbers of the Rust API (through ``equivariant predict``), forces
and stress the derivatives of the energy, ASE's BFGS and MD on it, and bad input as Python
exceptions."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import fcc111
from ase.calculators.calculator import PropertyNotImplementedError, all_changes
from ase.io import read
from ase.md.langevin import Langevin
from ase.md import velocitydistribution
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from conftest import run_cli
from equivariant import EquivariantCalculator, EquivariantError, Potential

# Maxwell-Boltzmann momenta: `thermalize_momenta` where ASE has it (3.29 deprecates
# `MaxwellBoltzmannDistribution` for it), the older name before.
thermalize = getattr(
    velocitydistribution, "thermalize_momenta", velocitydistribution.MaxwellBoltzmannDistribution
)


def frames(trained):
    return read(trained / "small.extxyz", ":")


def test_identical_to_the_rust_api(trained, checkpoint):
    """``equivariant predict --f64`` (the Rust calculator) and the ASE calculator in float64
    give the same energies, forces and stress, to the last bit."""
    run_cli(
        "predict", str(checkpoint), "small.extxyz", "--output", "predicted.extxyz", "--f64",
        cwd=trained,
    )
    predicted = read(trained / "predicted.extxyz", ":")
    calc = EquivariantCalculator(checkpoint, dtype="float64")
    assert calc.potential.dtype == "float64"
    assert calc.potential.species == ["Au", "Cu"]
    inputs = frames(trained)
    assert len(predicted) == len(inputs) == 12
    # The 3x3 stress as written (ASE's reader symmetrizes it on its own way to Voigt form).
    written = [
        np.array(m.group(1).split(), dtype=float).reshape(3, 3)
        for m in re.finditer(r'stress="([^"]*)"', (trained / "predicted.extxyz").read_text())
    ]
    assert len(written) == 12
    for atoms, rust, stress in zip(inputs, predicted, written):
        atoms.calc = calc
        assert atoms.get_potential_energy() == rust.get_potential_energy()
        np.testing.assert_array_equal(atoms.get_forces(), rust.get_forces())
        energies = atoms.get_potential_energies()
        np.testing.assert_array_equal(energies, rust.get_potential_energies())
        assert abs(energies.sum() - atoms.get_potential_energy()) < 1e-10 * len(atoms)
        raw = calc.potential.compute(
            atoms.get_chemical_symbols(), atoms.positions.tolist(), atoms.cell.array.tolist(),
            [True] * 3,
        )
        np.testing.assert_array_equal(np.array(raw["stress"]), stress)
        np.testing.assert_allclose(atoms.get_stress(), rust.get_stress(), rtol=1e-12, atol=0)


def test_the_checkpoint_dtype_by_default(checkpoint, trained):
    atoms = frames(trained)[0]
    f32 = EquivariantCalculator(checkpoint)
    assert f32.potential.dtype == "float32"
    f64 = EquivariantCalculator(checkpoint, dtype="float64")
    e32 = f32.get_potential_energy(atoms)
    e64 = f64.get_potential_energy(atoms)
    assert e32 != e64 and abs(e32 - e64) < 1e-4 * abs(e64)


def test_forces_and_stress_are_derivatives_of_the_energy(checkpoint, trained):
    atoms = frames(trained)[1]
    atoms.calc = EquivariantCalculator(checkpoint, dtype="float64")
    forces = atoms.get_forces()
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (len(atoms) - 1, 2)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * h
            moved.calc = atoms.calc
            energies.append(moved.get_potential_energy())
        numeric = -(energies[0] - energies[1]) / (2 * h)
        assert abs(numeric - forces[atom, axis]) < 1e-6, (atom, axis, numeric)
    # (1/V) dE/dε by central differences, the cell and positions strained by 1 + ε.
    stress = atoms.get_stress(voigt=False)
    cell, volume = atoms.cell.array.copy(), atoms.get_volume()
    for i, j in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[i, j] += sign * h / 2
            strain[j, i] += sign * h / 2
            strained = atoms.copy()
            strained.set_cell(cell @ strain, scale_atoms=True)
            strained.calc = atoms.calc
            energies.append(strained.get_potential_energy())
        numeric = (energies[0] - energies[1]) / (2 * h) / volume
        assert abs(numeric - 0.5 * (stress[i, j] + stress[j, i])) < 1e-8, (i, j, numeric)


def test_atoms_outside_the_cell(checkpoint, trained):
    """Periodic: atoms moved by lattice vectors change nothing. Not periodic: a cell
    changes nothing and there is no stress."""
    calc = EquivariantCalculator(checkpoint, dtype="float64")
    atoms = frames(trained)[2]
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    outside = atoms.copy()
    outside.positions += np.outer(np.arange(len(atoms)) % 3 - 1, atoms.cell[0]) + 2 * atoms.cell[2]
    outside.calc = calc
    assert abs(outside.get_potential_energy() - energy) < 1e-10 * abs(energy)
    np.testing.assert_allclose(outside.get_forces(), forces, atol=1e-10)

    cluster = atoms.copy()
    cluster.pbc = False
    cluster.positions[0] = [-30.0, 40.0, 7.0]
    cluster.calc = calc
    bare = Atoms(cluster.get_chemical_symbols(), positions=cluster.positions)
    bare.calc = calc
    assert cluster.get_potential_energy() == bare.get_potential_energy()
    np.testing.assert_array_equal(cluster.get_forces()[0], 0.0)
    with pytest.raises(PropertyNotImplementedError):
        cluster.get_stress()


def test_a_slab_as_ase_builds_it(checkpoint):
    """fcc111 without vacuum: periodic in x and y, a zero cell vector along z. Energy and
    forces as for the same atoms in a cell with a z vector, no stress."""
    slab = fcc111("Cu", size=(2, 2, 3), a=3.7275)
    slab.symbols[0] = "Au"
    assert slab.pbc.tolist() == [True, True, False] and not slab.cell[2].any()
    calc = EquivariantCalculator(checkpoint, dtype="float64")
    slab.calc = calc
    boxed = slab.copy()
    boxed.cell[2] = [0.0, 0.0, 40.0]
    boxed.calc = calc
    assert slab.get_potential_energy() == pytest.approx(boxed.get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(slab.get_forces(), boxed.get_forces(), atol=1e-12)
    assert np.abs(slab.get_forces()[:, 2]).max() > 1e-3  # surfaces pull along z
    with pytest.raises(PropertyNotImplementedError):
        slab.get_stress()


def test_bfgs_relaxes_a_structure(checkpoint, trained):
    atoms = frames(trained)[3]
    atoms.calc = EquivariantCalculator(checkpoint, dtype="float64")
    atoms.rattle(0.05, seed=1)
    start = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.05, steps=500)
    assert np.abs(atoms.get_forces()).max() < 0.05
    assert atoms.get_potential_energy() < start


def test_ase_md_conserves_energy(checkpoint, trained):
    """ASE's velocity Verlet, 1 fs, 100 steps at 300 K in float64: the total energy per atom
    stays within 1 meV; ASE's Langevin runs on it too."""
    atoms = frames(trained)[4]
    atoms.calc = EquivariantCalculator(checkpoint, dtype="float64")
    thermalize(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    start = atoms.get_total_energy()
    totals = []
    md = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    md.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
    md.run(100)
    worst = max(abs(e - start) for e in totals) / len(atoms)
    assert worst < 1e-3, worst
    Langevin(
        atoms, timestep=1.0 * units.fs, temperature_K=300, friction=0.01 / units.fs, fixcm=False,
        rng=np.random.default_rng(0),
    ).run(10)
    assert np.isfinite(atoms.get_potential_energy())


def test_the_kept_neighbour_list_changes_no_bit(checkpoint, trained):
    """ASE's velocity Verlet, 30 steps at 1000 K, on a calculator that keeps its neighbour
    list (skin 0.5 Å, the default) and on one that builds a graph per call (skin 0): the same
    trajectory to the bit, forces and stress included."""
    runs, builds = [], []
    for skin in (0.5, 0.0):
        atoms = frames(trained)[6]
        atoms.calc = EquivariantCalculator(checkpoint, dtype="float64", skin=skin)
        assert atoms.calc.potential.skin == skin
        thermalize(atoms, temperature_K=1000, rng=np.random.default_rng(1))
        VelocityVerlet(atoms, timestep=2.0 * units.fs).run(30)
        runs.append((atoms.positions.copy(), atoms.get_forces(), atoms.get_stress()))
        builds.append(atoms.calc.potential.list_builds)
    for kept, built in zip(*runs):
        np.testing.assert_array_equal(kept, built)
    # Kept across steps, built again as atoms moved; a graph per step without a skin.
    assert 1 < builds[0] < 10 < builds[1], builds
    assert np.abs(runs[0][0] - frames(trained)[6].positions).max() > 0.3  # past skin / 2
    with pytest.raises(EquivariantError, match="skin"):
        Potential(str(checkpoint), None, -1.0)


def test_a_calculation_is_kept_until_what_the_model_reads_changes(checkpoint, trained):
    """The calculator's change check (its own, not ASE's): positions, numbers, cell and
    periodicity count; momenta, charges and magnetic moments do not; a kept result is not
    computed again."""

    class Counted:
        def __init__(self, potential):
            self.potential, self.calls = potential, 0

        def compute(self, *args):
            self.calls += 1
            return self.potential.compute(*args)

    atoms = frames(trained)[2]
    atoms.calc = EquivariantCalculator(checkpoint, dtype="float64")
    counted = atoms.calc.potential = Counted(atoms.calc.potential)
    forces = atoms.get_forces()
    atoms.get_potential_energy()
    atoms.get_stress()
    assert counted.calls == 1
    atoms.set_momenta(np.ones((len(atoms), 3)))
    atoms.set_initial_charges(np.ones(len(atoms)))
    atoms.set_initial_magnetic_moments(np.ones(len(atoms)))
    np.testing.assert_array_equal(atoms.get_forces(), forces)
    assert counted.calls == 1
    calc = atoms.calc
    changed = [
        ("positions", lambda a: a.positions.__setitem__((0, 1), a.positions[0, 1] + 1e-9)),
        ("numbers", lambda a: a.numbers.__setitem__(0, 29 if a.numbers[0] == 79 else 79)),
        ("cell", lambda a: a.set_cell(a.cell.array * 1.001, scale_atoms=False)),
        ("pbc", lambda a: a.set_pbc([True, True, False])),
    ]
    for name, change in changed:
        moved = atoms.copy()
        change(moved)
        assert calc.check_state(moved) == [name]
    nan = atoms.copy()
    nan.positions[1, 2] = np.nan
    assert calc.check_state(nan) == ["positions"]
    assert set(calc.check_state(atoms[:-1])) == set(all_changes)
    assert calc.check_state(atoms) == []
    calc.ignored_changes = {"cell"}
    assert calc.check_state(moved) == ["pbc"]
    stretched = atoms.copy()
    stretched.set_cell(atoms.cell.array * 1.001, scale_atoms=False)
    assert calc.check_state(stretched) == []


def test_bad_input_is_a_python_exception(checkpoint, trained, tmp_path):
    potential = Potential(str(checkpoint))
    atoms = frames(trained)[5]
    symbols, positions = atoms.get_chemical_symbols(), atoms.positions.tolist()
    cell, pbc = atoms.cell.array.tolist(), [True] * 3

    alien = atoms.copy()
    alien.symbols[0] = "Ag"
    alien.calc = EquivariantCalculator(checkpoint)
    with pytest.raises(EquivariantError, match="species Ag"):
        alien.get_potential_energy()
    assert issubclass(EquivariantError, ValueError)

    with pytest.raises(EquivariantError, match="chemical symbols"):
        potential.compute(symbols[:-1], positions, cell, pbc)
    with pytest.raises((ValueError, TypeError)):
        potential.compute(symbols, [p[:2] for p in positions], cell, pbc)
    nan = [list(p) for p in positions]
    nan[2][1] = float("nan")
    with pytest.raises(EquivariantError, match="(?i)finite|nan"):
        potential.compute(symbols, nan, cell, pbc)
    with pytest.raises(EquivariantError, match="same place"):
        potential.compute(symbols, [positions[0]] + positions[1:-1] + [positions[0]], cell, pbc)
    with pytest.raises(EquivariantError, match="cell"):
        potential.compute(symbols, positions, None, pbc)
    with pytest.raises(EquivariantError):
        potential.compute([], [], None, None)

    with pytest.raises(FileNotFoundError, match="missing"):
        Potential(str(tmp_path / "missing.safetensors"))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.raises(EquivariantError, match="truncated"):
        Potential(str(truncated))
    with pytest.raises(EquivariantError, match="dtype"):
        Potential(str(checkpoint), "float16")
