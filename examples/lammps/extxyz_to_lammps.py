#!/usr/bin/env python3
"""Converts one frame of an extxyz file into a LAMMPS data file (atom_style atomic, with
masses) whose atom types follow a given species order, e.g. type 1 = Au, type 2 = Cu to match
`kim interactions Au Cu`.

    python extxyz_to_lammps.py 108.extxyz 108.data --species Au Cu [--index 0]

Needs ASE.  LAMMPS wants a lower-triangular cell (a along x, b in the xy plane): if the cell
is not, ASE rotates the structure, and this script says so and prints the rotation R (LAMMPS
positions and forces = extxyz ones @ R.T), because forces compared against another code must
then be rotated back.
"""

import argparse
import sys

import numpy as np
from ase.io import read, write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extxyz")
    parser.add_argument("data")
    parser.add_argument("--species", nargs="+", default=["Au", "Cu"],
                        help="species of types 1, 2, ... (default: Au Cu)")
    parser.add_argument("--index", type=int, default=0, help="frame (default 0)")
    args = parser.parse_args()

    atoms = read(args.extxyz, index=args.index)
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(args.species))
    if unknown:
        print(f"{args.extxyz}: species {unknown} not in --species {args.species}",
              file=sys.stderr)
        return 1
    cell = np.array(atoms.cell)
    if not all(atoms.pbc):
        print(f"note: pbc = {atoms.pbc.tolist()}; the data file has a box all the same "
              "(set `boundary` in the input)", file=sys.stderr)
    if abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 0.0:
        from ase.calculators.lammps import Prism
        rotation = Prism(cell).rot_mat
        print("warning: the cell is not lower-triangular; LAMMPS sees the structure rotated "
              "by R (x_lammps = R @ x_extxyz):\n" + np.array2string(rotation.T, precision=17),
              file=sys.stderr)
    write(args.data, atoms, format="lammps-data", atom_style="atomic",
          specorder=args.species, masses=True, units="metal")
    print(f"wrote {args.data}: {len(atoms)} atoms, types "
          + ", ".join(f"{i + 1} = {s}" for i, s in enumerate(args.species)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
