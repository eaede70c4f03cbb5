"""LAMMPS runs the potential through the KIM API (``pair_style kim``), serially and on two
MPI ranks (two domains, ghost atoms crossing the boundary), and gets what ``equivariant
predict`` computes: energies, per-atom energies, forces, virial and per-atom virials (f64,
1e-10). A short NVE run follows ``equivariant md``'s trajectory from the same velocities.
Bad input stops LAMMPS with the model's message, never a crash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

from compare_runs import read_dump, read_results
from conftest import EXAMPLE, KIM_BUILD, MODEL, built, lammps, run, run_cli


# LAMMPS's metal units: pressure (bar) x volume (A^3) per eV.
NKTV2P = 1.6021765e6


def close(got, want, what: str, tol: float = 1e-10):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, what
    err = np.abs(got - want).max()
    scale = max(1.0, np.abs(want).max())
    assert err <= tol * scale, f"{what}: largest difference {err:.3e} (scale {scale:.3g})"


def lammps_data(atoms, path: Path, velocities: bool = False):
    """A LAMMPS data file, type 1 = Au and 2 = Cu (``kim interactions Au Cu``)."""
    # A cubic cell: LAMMPS's box is the cell itself, no rotation.
    assert np.allclose(atoms.cell.array, np.diag(np.diag(atoms.cell.array)))
    write(path, atoms, format="lammps-data", atom_style="atomic", specorder=["Au", "Cu"],
          masses=True, units="metal", velocities=velocities)


@pytest.mark.parametrize("ranks", [1, 2])
def test_lammps_gets_what_predict_computes(trained, checkpoint, kim_env, ranks, tmp_path):
    run_cli("predict", str(checkpoint), "bulk.extxyz", "--output", str(tmp_path / "ours.extxyz"),
            "--f64", cwd=trained)
    ours = read(tmp_path / "ours.extxyz", ":")
    for k, atoms in enumerate(read(trained / "bulk.extxyz", ":")):
        lammps_data(atoms, tmp_path / f"{k}.data")
        lammps(ranks, ["-in", EXAMPLE / "in.equivariant", "-var", "model", MODEL, "-var", "data",
                       f"{k}.data", "-var", "out", f"{k}.", "-var", "steps", "0", "-log",
                       f"{k}.log"], tmp_path, kim_env)
        dump = read_dump(tmp_path / f"{k}.forces.dump")
        results = read_results(tmp_path / f"{k}.results.txt")
        ids = sorted(dump)
        assert ids == list(range(1, len(atoms) + 1))
        want = ours[k]
        what = f"frame {k} ({len(atoms)} atoms), {ranks} rank(s)"
        close([results["energy_eV"]], [want.get_potential_energy()], f"{what}: energy")
        close([dump[i][7] for i in ids], want.get_potential_energies(), f"{what}: atom energies")
        close([dump[i][4:7] for i in ids], want.get_forces(), f"{what}: forces")
        # W = -stress V; LAMMPS prints W from its pressure in bar, so a units' round trip.
        w = -want.get_stress(voigt=False) * atoms.get_volume()
        got = [[results["Wxx"], results["Wxy"], results["Wxz"]],
               [results["Wxy"], results["Wyy"], results["Wyz"]],
               [results["Wxz"], results["Wyz"], results["Wzz"]]]
        close(got, w, f"{what}: virial")
        # Per-atom virials: LAMMPS's stress/atom is -W_i in bar A^3 (xx yy zz xy xz yz), ghosts'
        # shares added to their atoms; ours (predict's `virials`) row-major 3x3.
        ours_w = want.arrays["virials"].reshape(-1, 3, 3)
        voigt = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]
        lammps_w = np.array([[-dump[i][8 + k] / NKTV2P for k in range(6)] for i in ids])
        close(lammps_w, [[(w_i[a, b] + w_i[b, a]) / 2 for a, b in voigt] for w_i in ours_w],
              f"{what}: per-atom virials")
        log = (tmp_path / f"{k}.log").read_text()
        assert "pair build: full/bin/ghost" in log, "ghosts' neighbour lists requested"


@pytest.mark.parametrize("ranks", [1, 2])
def test_nve_follows_our_md(trained, checkpoint, kim_env, ranks, tmp_path):
    """Velocity Verlet in LAMMPS from ``equivariant md``'s starting velocities: the same
    potential and total energies along the run, and both conserve energy."""
    start = read(trained / "bulk.extxyz", 0)
    write(tmp_path / "start.extxyz", start, format="extxyz")
    steps, every = 40, 10
    run_cli("md", str(checkpoint), "start.extxyz", "--steps", str(steps), "--every", str(every),
            "--dt", "1", "--temperature", "600", "--seed", "3", "--f64", cwd=tmp_path)
    ours = np.loadtxt(tmp_path / "md" / "thermo.csv", delimiter=",", skiprows=1)
    first = read(tmp_path / "md" / "trajectory.extxyz", 0)
    assert np.abs(first.get_momenta()).max() > 0
    lammps_data(first, tmp_path / "start.data", velocities=True)
    (tmp_path / "in.nve").write_text(
        f"kim init {MODEL} metal\nboundary p p p\natom_style atomic\nread_data start.data\n"
        "kim interactions Au Cu\ntimestep 0.001\nfix nve all nve\n"
        "thermo_style custom step pe ke etotal\nthermo_modify format float %.17g\n"
        f"thermo {every}\nrun {steps}\n"
    )
    lammps(ranks, ["-in", "in.nve", "-log", "nve.log"], tmp_path, kim_env)
    rows = []
    lines = (tmp_path / "nve.log").read_text().splitlines()
    header = lines.index(next(l for l in lines if l.split()[:4] == ["Step", "PotEng", "KinEng", "TotEng"]))
    for line in lines[header + 1:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            break
        rows.append([float(x) for x in fields])
    rows = np.array(rows)
    assert list(rows[:, 0]) == list(ours[:, 0])
    n = len(start)
    # LAMMPS's metal units round ASE's constants at 1e-8: the same trajectory to about that.
    close(rows[:, 1] / n, ours[:, 2] / n, "potential energy per atom", tol=1e-7)
    close(rows[:, 3] / n, ours[:, 4] / n, "total energy per atom", tol=1e-7)
    for series in (rows[:, 3], ours[:, 4]):
        assert np.abs(series - series[0]).max() / n < 1e-4, "NVE conserves energy"


def test_bad_input_stops_lammps_with_a_message(trained, checkpoint, kim_env, tmp_path):
    """A species the model does not know and a checkpoint that does not load: LAMMPS stops
    with an error (exit status 1), and the driver's message names the problem."""
    atoms = read(trained / "bulk.extxyz", 0)
    lammps_data(atoms, tmp_path / "bulk.data")
    (tmp_path / "in.ag").write_text(
        f"kim init {MODEL} metal\nboundary p p p\natom_style atomic\nread_data bulk.data\n"
        "kim interactions Au Ag\nrun 0\n"
    )
    done = lammps(1, ["-in", "in.ag"], tmp_path, kim_env, check=False)
    assert done.returncode != 0
    assert "ERROR" in done.stdout + done.stderr and "Ag" in done.stdout + done.stderr

    # A portable model whose checkpoint is not one: `kim init` fails, kim.log says why.
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint")
    lib = built("EQUIVARIANT_CAPI_LIB", "libequivariant_capi.so")
    built_env = run(["bash", KIM_BUILD, garbage, "equivariant_garbage", tmp_path / "kim", lib],
                    tmp_path).stdout
    env = dict(kim_env)
    for line in built_env.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    (tmp_path / "in.garbage").write_text(
        "kim init equivariant_garbage metal\nboundary p p p\natom_style atomic\n"
        "read_data bulk.data\nkim interactions Au Cu\nrun 0\n"
    )
    done = lammps(1, ["-in", "in.garbage"], tmp_path, env, check=False)
    assert done.returncode != 0 and "ERROR" in done.stdout + done.stderr
    log = (tmp_path / "kim.log").read_text()
    assert "garbage" in log or "checkpoint" in log, log[-2000:]


def test_kim_without_lammps(trained, kim_env, tmp_path):
    """``kim/test/kim_check.c``, a KIM simulator of its own: energy against per-particle
    energies, the KIM virial's sign and order, unit conversion, no published parameters, an
    error path."""
    source = KIM_BUILD.parent / "test" / "kim_check.c"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libkim-api"],
                           capture_output=True, text=True, check=True).stdout.split()
    exe = tmp_path / "kim_check"
    run(["cc", "-O2", "-std=c99", "-D_DEFAULT_SOURCE", source, "-o", exe, *flags, "-lm"], tmp_path)
    write(tmp_path / "bulk.extxyz", read(trained / "bulk.extxyz", 0), format="extxyz")
    done = run([exe, MODEL, "bulk.extxyz"], tmp_path, kim_env)
    assert "FAIL" not in done.stdout, done.stdout
