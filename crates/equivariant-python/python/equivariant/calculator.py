"""An ASE calculator on a trained potential of ``equivariant``."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ._native import EquivariantError, Potential


class EquivariantCalculator(Calculator):
    """Energy, per-atom energies, forces and (for periodic cells) stress from a checkpoint of
    ``equivariant train``, so ASE's MD, optimizers and NEB run on it.

    Parameters
    ----------
    checkpoint:
        A ``.safetensors`` checkpoint written by ``equivariant train``.
    dtype:
        ``"float32"`` or ``"float64"``; by default the dtype the model was trained in.
    skin:
        The neighbour list's skin in Å: the list is kept between calls at the model's
        cutoff plus ``skin`` and built again only when an atom has moved more than
        ``skin / 2`` (or the atoms, species or cell changed), as MD engines keep theirs;
        ``0`` builds a graph at every call. The results are the same to the bit.

    Units are ASE's: eV, Å, eV/Å, eV/Å³. The stress is ASE's Voigt 6-vector
    (xx, yy, zz, yz, xz, xy) and is computed when all three axes are periodic (asking for
    it otherwise raises ASE's ``PropertyNotImplementedError``). Slabs and wires (vacuum
    axes not periodic, their cell vectors possibly zero) and clusters work as they are.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        dtype: Optional[str] = None,
        skin: float = 0.5,
        **kwargs,
    ):
        Calculator.__init__(self, **kwargs)
        self.potential = Potential(os.fspath(checkpoint), dtype, skin)

    def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation among what the model reads: positions,
        atomic numbers, cell and periodicity (positions and cell to within ``tol`` Å), less
        ``ignored_changes``.

        ASE's own check also compares the initial charges and magnetic moments, each
        property with ``numpy``'s ``allclose``: about 0.1 ms for each of an MD step's three
        calls. The model reads neither, so their changes need no new calculation.
        """
        old = self.atoms
        if old is None or len(old) != len(atoms):
            return list(all_changes)
        changes = []
        if not _within(old.positions, atoms.positions, tol):
            changes.append("positions")
        if not np.array_equal(old.numbers, atoms.numbers):
            changes.append("numbers")
        if not _within(old.cell.array, atoms.cell.array, tol):
            changes.append("cell")
        if not np.array_equal(old.pbc, atoms.pbc):
            changes.append("pbc")
        return [change for change in changes if change not in self.ignored_changes]

    def calculate(
        self,
        atoms=None,
        properties: Sequence[str] = ("energy",),
        system_changes: Sequence[str] = all_changes,
    ):
        Calculator.calculate(self, atoms, properties, system_changes)
        atoms = self.atoms
        positions = np.asarray(atoms.positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise EquivariantError(f"positions of shape {positions.shape}, not (n, 3)")
        pbc = [bool(p) for p in atoms.pbc]
        cell = np.asarray(atoms.cell.array, dtype=np.float64).tolist() if any(pbc) else None
        result = self.potential.compute(
            atoms.get_chemical_symbols(), positions.tolist(), cell, pbc
        )
        self.results = {
            "energy": result["energy"],
            "free_energy": result["energy"],
            "energies": np.array(result["energies"], dtype=np.float64),
            "forces": np.array(result["forces"], dtype=np.float64).reshape(-1, 3),
        }
        if result["stress"] is not None:
            self.results["stress"] = full_3x3_to_voigt_6_stress(np.array(result["stress"]))


def _within(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    """Whether ``a`` and ``b`` have one shape and differ by at most ``tol`` everywhere (a NaN
    differs from everything)."""
    return a.shape == b.shape and bool((np.abs(a - b) <= tol).all())
