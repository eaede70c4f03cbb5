"""A small potential trained by the ``equivariant`` binary, shared by the tests.

The binary is ``$EQUIVARIANT_CLI`` or, by default, the release build at
``target/release/equivariant`` (``cargo build --release -p equivariant-cli``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ase.io import read, write

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "cuau_emt_slice.extxyz"


def cli() -> Path:
    path = Path(os.environ.get("EQUIVARIANT_CLI", ROOT / "target" / "release" / "equivariant")).resolve()
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: build the binary first (cargo build --release -p equivariant-cli) "
            "or set EQUIVARIANT_CLI"
        )
    return path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Runs the binary in ``cwd``; fails the test with its output if it fails."""
    done = subprocess.run([str(cli()), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"equivariant {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A folder with ``small.extxyz`` (12 periodic Cu-Au frames of at most 40 atoms) and
    ``run/best.safetensors``, a one-layer NequIP trained on them for two epochs in f32."""
    folder = tmp_path_factory.mktemp("trained")
    frames = [f for f in read(DATA, ":") if len(f) <= 40][:12]
    write(folder / "small.extxyz", frames, format="extxyz")
    (folder / "config.toml").write_text(
        '[data]\npath = "small.extxyz"\nvalidation = 0.25\ntest = 0.0\n'
        "[model]\nr_max = 3.5\nnum_layers = 1\nnum_features = 4\n"
        "invariant_layers = 1\ninvariant_neurons = 8\n"
        '[training]\nepochs = 2\nbatch_size = 3\nlearning_rate = 0.05\noutput = "run"\n'
    )
    run_cli("train", "config.toml", cwd=folder)
    return folder


@pytest.fixture(scope="session")
def checkpoint(trained) -> Path:
    return trained / "run" / "best.safetensors"
