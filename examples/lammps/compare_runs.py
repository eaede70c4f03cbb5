#!/usr/bin/env python3
"""Compares the outputs of two runs of in.equivariant (e.g. 1 and 2 MPI ranks):

    python3 compare_runs.py np1. np2.

reads <prefix>forces.dump and <prefix>results.txt of each and prints the largest differences
of forces, per-atom energies, energy and virial (absolute, and relative to the largest
magnitude of the quantity).  Plain Python, no dependencies.
"""

import sys


def read_dump(path):
    """{id: [type, x, y, z, fx, fy, fz, pe]} of the first frame."""
    with open(path) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ITEM: ATOMS")) + 1
    n = int(lines[lines.index("ITEM: NUMBER OF ATOMS") + 1])
    atoms = {}
    for line in lines[start:start + n]:
        fields = line.split()
        atoms[int(fields[0])] = [float(v) for v in fields[1:]]
    return atoms


def read_results(path):
    values = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields[0] == "virial_eV":
                for key, value in zip(fields[1::2], fields[2::2]):
                    values["W" + key] = float(value)
            else:
                values[fields[0]] = float(fields[1])
    return values


def report(name, a, b):
    diff = max(abs(x - y) for x, y in zip(a, b))
    scale = max(max(abs(x) for x in a), max(abs(y) for y in b), 1e-300)
    print(f"{name:16s} max|diff| = {diff:.3e}   relative to max|value| {scale:.6g}: {diff / scale:.3e}")
    return diff / scale


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    p, q = sys.argv[1:]
    da, db = read_dump(p + "forces.dump"), read_dump(q + "forces.dump")
    if sorted(da) != sorted(db):
        print("the dumps hold different atom ids", file=sys.stderr)
        return 1
    ids = sorted(da)
    worst = 0.0
    worst = max(worst, report("positions", [v for i in ids for v in da[i][1:4]],
                              [v for i in ids for v in db[i][1:4]]))
    worst = max(worst, report("forces", [v for i in ids for v in da[i][4:7]],
                              [v for i in ids for v in db[i][4:7]]))
    worst = max(worst, report("atom energies", [da[i][7] for i in ids], [db[i][7] for i in ids]))
    ra, rb = read_results(p + "results.txt"), read_results(q + "results.txt")
    for key in ["energy_eV", "final_energy_eV"]:
        if key in ra and key in rb:
            print(f"{key:16s} {ra[key]:.17g} vs {rb[key]:.17g}  relative diff "
                  f"{abs(ra[key] - rb[key]) / max(abs(ra[key]), 1e-300):.3e}")
    keys = ["Wxx", "Wyy", "Wzz", "Wxy", "Wxz", "Wyz"]
    worst = max(worst, report("virial (eV)", [ra[k] for k in keys], [rb[k] for k in keys]))
    print(f"sum of atom energies: {sum(da[i][7] for i in ids):.17g} / "
          f"{sum(db[i][7] for i in ids):.17g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
