"""What the fixture scripts of the burn crate share (fixtures_nn.py, fixtures_modules.py,
export_state_dict.py): where the fixtures go, the header every file starts with, writing a
file, and flattening a tensor row-major."""

import json
import os

import torch

import e3nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "equivariant", "tests", "fixtures")


def header(generator):
    """The fields every fixture file starts with; `generator` is the script's path."""
    return {
        "generator": generator,
        "e3nn": e3nn.__version__,
        "torch": torch.__version__,
        "dtype": "float64",
    }


def dump(name, data):
    """Writes OUT/<name>.json (compact) and prints its size."""
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"{os.path.normpath(path)}: {os.path.getsize(path) // 1024} KiB")


def flat(t):
    """A tensor's values as a flat row-major list ([] for None)."""
    return [] if t is None else t.detach().reshape(-1).tolist()
