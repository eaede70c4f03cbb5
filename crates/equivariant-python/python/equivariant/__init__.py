"""equivariant: E(3)-equivariant interatomic potentials in Rust, from Python.

A checkpoint written by ``equivariant train`` runs as an ASE calculator::

    from ase.io import read
    from equivariant import EquivariantCalculator

    atoms = read("structure.extxyz")
    atoms.calc = EquivariantCalculator("run/best.safetensors")
    atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()

``Potential`` is the calculator's engine without ASE: ``Potential(checkpoint, dtype=None)
.compute(symbols, positions, cell=None, pbc=None)`` returns a dict of ``energy``, ``forces``,
``virial`` and ``stress``. Bad input raises ``EquivariantError`` (a ``ValueError``).
"""

from ._native import EquivariantError, Potential
from .calculator import EquivariantCalculator

__all__ = ["EquivariantCalculator", "EquivariantError", "Potential"]
