"""Checks that ASE reads the extended XYZ our writer made from the fixture exactly as it
reads the fixture itself (species, positions, cell, pbc, calculator results, arrays, info).

    cargo test -p equivariant-data --test extxyz -- --ignored   # writes /tmp/written.extxyz
    venv-ase/bin/python tools/data/check_written.py [/tmp/written.extxyz]
"""

import pathlib
import sys
import warnings

import numpy as np
from ase.io import read

FIXTURE = (
    pathlib.Path(__file__).resolve().parents[2]
    / "crates/equivariant-data/tests/fixtures/ase.extxyz"
)


def main():
    written = sys.argv[1] if len(sys.argv) > 1 else "/tmp/written.extxyz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = read(written, index=":"), read(FIXTURE, index=":")
    assert len(ours) == len(theirs)
    for x, y in zip(theirs, ours):
        assert x.get_chemical_symbols() == y.get_chemical_symbols()
        assert np.array_equal(x.positions, y.positions)
        assert np.array_equal(x.cell.array, y.cell.array)
        assert (x.pbc == y.pbc).all()
        assert set(x.calc.results) == set(y.calc.results)
        for k, v in x.calc.results.items():
            assert np.array_equal(np.asarray(v), np.asarray(y.calc.results[k])), k
        assert set(x.arrays) == set(y.arrays)
        assert {k: str(v) for k, v in x.info.items()} == {k: str(v) for k, v in y.info.items()}
    print(f"ASE reads {written} as the fixture: {len(ours)} frames equal")


if __name__ == "__main__":
    main()
