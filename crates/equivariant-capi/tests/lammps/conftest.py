"""A two-layer potential trained by the ``equivariant`` binary, installed as a KIM portable
model for LAMMPS, shared by the tests.

Needs LAMMPS with the KIM package (``lmp``), the KIM API's development files, cmake,
OpenMPI's ``mpirun`` (Debian: ``apt-get install lammps libkim-api-dev openmpi-bin cmake``),
ASE, and two builds of this repository:

- the binary, ``$EQUIVARIANT_CLI`` (default ``target/release/equivariant``);
- the C ABI, ``$EQUIVARIANT_CAPI_LIB`` (default ``target/release/libequivariant_capi.so``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ase.io import read, write

ROOT = Path(__file__).resolve().parents[4]
DATA = ROOT / "data" / "cuau_emt_slice.extxyz"
KIM_BUILD = ROOT / "crates" / "equivariant-capi" / "kim" / "build.sh"
EXAMPLE = ROOT / "examples" / "lammps"
MODEL = "equivariant_test_AuCu"
# Ghosts reach 2 x 3.5 Å: a domain of the 11.2 Å cube on 2 ranks (5.6 Å) takes its ghosts
# from beyond its neighbour.
TRAINING = (
    '[data]\npath = "train.extxyz"\nvalidation = 0.25\ntest = 0.0\n'
    "[model]\nr_max = 3.5\nnum_layers = 2\nnum_features = 4\n"
    "invariant_layers = 1\ninvariant_neurons = 8\n"
    '[training]\nepochs = 2\nbatch_size = 3\nlearning_rate = 0.02\noutput = "run"\n'
)

sys.path.insert(0, str(EXAMPLE))


def built(variable: str, default: str) -> Path:
    path = Path(os.environ.get(variable, ROOT / "target" / "release" / default)).resolve()
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: build it first (cargo build --release -p equivariant-cli "
            f"-p equivariant-capi) or set {variable}"
        )
    return path


def run(args: list, cwd: Path, env: dict | None = None, check: bool = True):
    """Runs a command in ``cwd``; fails the test with its output if it fails and ``check``."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env
    )
    if check:
        assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}\n{done.stderr}"
    return done


def run_cli(*args: str, cwd: Path):
    return run([built("EQUIVARIANT_CLI", "equivariant"), *args], cwd)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A folder with ``run/best.safetensors`` (trained on 12 periodic 36-atom frames for
    two epochs) and ``bulk.extxyz``, two 107- and 108-atom cubic frames (a vacancy and
    bulk)."""
    folder = tmp_path_factory.mktemp("trained")
    frames = read(DATA, ":")
    write(folder / "train.extxyz", [f for f in frames if len(f) == 36][:12], format="extxyz")
    bulk = [next(f for f in frames if len(f) == n) for n in (108, 107)]
    write(folder / "bulk.extxyz", bulk, format="extxyz")
    (folder / "config.toml").write_text(TRAINING)
    run_cli("train", "config.toml", cwd=folder)
    return folder


@pytest.fixture(scope="session")
def checkpoint(trained) -> Path:
    return trained / "run" / "best.safetensors"


@pytest.fixture(scope="session")
def kim_env(checkpoint, tmp_path_factory) -> dict:
    """The environment in which LAMMPS finds the KIM driver and the model ``MODEL``."""
    out = tmp_path_factory.mktemp("kim")
    lib = built("EQUIVARIANT_CAPI_LIB", "libequivariant_capi.so")
    done = run(["bash", KIM_BUILD, checkpoint, MODEL, out, lib], cwd=out)
    env = dict(os.environ)
    for line in done.stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    # Open MPI refuses root without these (CI containers run as root); two ranks on two
    # cores.
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    return env


def lammps(ranks: int, args: list, cwd: Path, env: dict, check: bool = True):
    """``lmp`` with ``args``, serially or on ``ranks`` MPI ranks."""
    command = ["lmp", *args] if ranks == 1 else ["mpirun", "--oversubscribe", "-np", str(ranks), "lmp", *args]
    return run(command, cwd, env, check)
