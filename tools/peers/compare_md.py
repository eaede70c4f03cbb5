#!/usr/bin/env python3
"""MD speed on the CPU: NVE velocity Verlet with the Cu-Au potentials of compare_training.py
(`equivariant` through its ASE calculator and its own `equivariant md`, NequIP 0.19 and
MACE through their ASE calculators) on the same fcc Cu-Au structures of 108, 1000 and 10000
atoms, and print one JSON object per tool and size:

    {"tool": ..., "atoms": ..., "steps_per_s": ..., "peak_mib": ...}

steps_per_s: timed MD steps (1 fs each, one energy + force evaluation per step) divided by
their wall time, after --warmup untimed steps; peak_mib: the peak resident set of the process
that ran them (ru_maxrss), which includes the Python interpreter, ASE and torch for the ASE
calculators but only the binary for `equivariant-cli`. Extra keys: "threads", "dtype",
"steps", "params", "e0_per_atom" (the starting structure's potential energy per atom, eV: the
three potentials were trained on the same frames, so a species mixed up shows here),
"drift_ev_per_atom" (total energy change over the timed steps), "note"; a tool or size that
could not run has "steps_per_s": null and says why in "note".

Run it with a Python that has ASE and numpy (e.g. /work/venv-nequip/bin/python); each
(tool, size) runs in its own fresh subprocess, so peak memory is that run's alone:

    python tools/peers/compare_md.py --threads 2 --rounds 3
    python tools/peers/compare_md.py --tools nequip,mace --sizes 108 --steps 3 --warmup 1

Structures (--work/md_structures/N.extxyz, written once, read by every tool): the cubic fcc
cell at the training frames' lattice constant (3.7275 Å) repeated 3x3x3 (108 atoms), 5x5x10
(1000) and 10x10x25 (10000), periodic, with a seeded random quarter of the sites Au and the
rest Cu. Velocities: Maxwell-Boltzmann at 300 K (the ASE tools: ASE's, numpy default_rng(0);
`equivariant md` draws its own with seed 0 -- same temperature, other numbers).

The tools:

- equivariant: `equivariant.EquivariantCalculator(checkpoint, dtype="float32")` in
  --equivariant-python, on the checkpoint of compare_training.py's run
  (--work/runs/equivariant/run/best.safetensors). When that Python cannot import
  `equivariant` the rows are null with a note.
- equivariant-cli: `target/release/equivariant md CHECKPOINT N.extxyz --steps W+S --every W`
  under a small Python wrapper that timestamps the binary's progress lines (written after
  steps W and W+S) and reports the binary's peak memory (RUSAGE_CHILDREN). The binary's own
  steps/s (printed as "cli_steps_per_s") covers all W+S steps after its first force
  evaluation. It also writes a trajectory frame and a thermo line every W steps, inside the
  timed window (milliseconds at 10000 atoms).
- nequip: NequIPCalculator.from_compiled_model on an AOTInductor model (`nequip-compile
  --mode aotinductor --device cpu --target ase`, into --work/md_models, about 2 minutes
  once; TorchScript compilation is refused with torch >= 2.10, and this torch is 2.15),
  species Cu -> Cu, Au -> Au by name. In a fresh process its first 1 to 4 calls take about
  0.5 s each (then ~5 ms at 108 atoms), hence --warmup 5. compare_training.py's NequIP run
  keeps no checkpoint, so the first run here trains one with exactly its config
  (compare_training.nequip_yaml, --nequip-epochs, default 10, checkpointing on; about 2
  minutes) into --work/md_models/nequip_train. --nequip-mode eager uses the uncompiled model
  from the checkpoint instead.
- mace: MACECalculator(model_paths=--work/runs/mace/mace_peer.model, device="cpu",
  default_dtype="float32"); species by atomic number from the model's z table.

All run in float32 (each tool's default deployment dtype for these models), on --threads
threads (OMP_NUM_THREADS, MKL_NUM_THREADS, RAYON_NUM_THREADS, and torch.set_num_threads in
the torch children). Differences that remain: the ASE calculators of MACE and NequIP
(matscipy) build a new neighbour list at every step, as does ours (as far as its API
shows); `equivariant md` builds its graph at r_max + 0.5 Å and rebuilds it only when an
atom has moved more than 0.25 Å ("rebuilds" counts them); the ASE tools pay Python and ASE
overhead per step (array copies, the calculator's change check), the CLI none. NequIP and
ours keep 8x0e+8x1o features and scalars out of the last layer (1816 and 1720 parameters),
MACE (correlation 2) has 4408.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# repeats of the 4-atom cubic fcc cell for each size
REPEATS = {108: (3, 3, 3), 1000: (5, 5, 10), 10000: (10, 10, 25)}
DEFAULT_STEPS = {108: 20, 1000: 10, 10000: 5}
LATTICE = 3.7275  # Å: the training frames' (data/cuau_emt_slice.extxyz: 108 atoms, 11.1825 Å)
AU_FRACTION = 0.25
SEED = 0
TEMPERATURE = 300.0  # K
DT_FS = 1.0
TOOLS = ("equivariant", "equivariant-cli", "nequip", "mace")


class Skip(Exception):
    """A tool that cannot run at all: every size gets a null row with this note."""


def peak_mib(who=resource.RUSAGE_SELF) -> float:
    """Peak resident set (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------
# Structures


def build_structures(work: Path, sizes: list[int]) -> dict[int, Path]:
    import numpy as np
    from ase.build import bulk
    from ase.io import write

    d = work / "md_structures"
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    for n in sizes:
        path = d / f"{n}.extxyz"
        if not path.exists():
            atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(REPEATS[n])
            assert len(atoms) == n
            au = np.random.default_rng(SEED).choice(n, int(AU_FRACTION * n), replace=False)
            symbols = np.array(atoms.get_chemical_symbols())
            symbols[au] = "Au"
            atoms.set_chemical_symbols(symbols.tolist())
            atoms.pbc = True
            tmp = path.with_suffix(".tmp")
            write(tmp, atoms, format="extxyz")
            tmp.rename(path)
        paths[n] = path
    return paths


# ---------------------------------------------------------------------------------------
# Children: `python compare_md.py --child SPEC` runs one (tool, size) and prints one JSON line


def make_calculator(spec: dict):
    """The ASE calculator of spec["tool"] and its parameter count (None when unknown)."""
    tool, threads = spec["tool"], spec["threads"]
    if tool == "equivariant":
        from equivariant import EquivariantCalculator

        calc = EquivariantCalculator(spec["model"], dtype="float32")
        return calc, None
    import torch

    torch.set_num_threads(threads)
    if tool == "mace":
        from mace.calculators import MACECalculator

        calc = MACECalculator(model_paths=spec["model"], device="cpu", default_dtype="float32")
        return calc, sum(p.numel() for p in calc.models[0].parameters())
    if tool == "nequip":
        from nequip.integrations.ase import NequIPCalculator

        # the model's type names are the chemical symbols (Cu, Au): identity map
        if spec["nequip_mode"] == "aotinductor":
            calc = NequIPCalculator.from_compiled_model(
                spec["model"], device="cpu", chemical_species_to_atom_type_map=True)
        else:
            calc = NequIPCalculator._from_saved_model(
                spec["model"], device="cpu", chemical_species_to_atom_type_map=True)
        return calc, None
    raise ValueError(tool)


def child_ase(spec: dict) -> dict:
    import numpy as np
    from ase import units
    from ase.io import read
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = read(spec["structure"])
    n = len(atoms)
    calc, params = make_calculator(spec)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=TEMPERATURE, rng=np.random.default_rng(SEED))
    e0 = atoms.get_potential_energy()
    dyn = VelocityVerlet(atoms, timestep=DT_FS * units.fs)
    dyn.run(spec["warmup"])
    etot0 = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    t0 = time.perf_counter()
    dyn.run(spec["steps"])  # one force evaluation per step (the start's is cached)
    wall = time.perf_counter() - t0
    etot1 = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    return {"steps_per_s": spec["steps"] / wall, "peak_mib": peak_mib(), "params": params,
            "e0_per_atom": float(e0) / n, "drift_ev_per_atom": float(etot1 - etot0) / n}


def child_cli(spec: dict) -> dict:
    warm = max(1, spec["warmup"])  # a progress line is written only after steps >= 1
    total = warm + spec["steps"]
    out = Path(spec["output"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [spec["bin"], "md", spec["model"], spec["structure"], "--steps", str(total),
           "--dt", str(DT_FS), "--every", str(warm), "--temperature", str(TEMPERATURE),
           "--seed", str(SEED), "--output", str(out / "md")]
    if spec.get("f64"):
        cmd.append("--f64")
    with open(out / "stdout.log", "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.PIPE)
        # progress lines ("\rstep K/N  T ... steps/s   ") come after steps warm, 2 warm, ...,
        # total; stderr is unbuffered, so the arrival time of a line is its step's end
        marks, buf, err = {}, "", []
        while chunk := os.read(p.stderr.fileno(), 65536):
            now = time.perf_counter()
            text = chunk.decode(errors="replace")
            err.append(text)
            buf += text
            end = 0
            for m in re.finditer(r"step (\d+)/\d+ .*?steps/s", buf):
                marks.setdefault(int(m.group(1)), now)
                end = m.end()
            buf = buf[end:]
        rc = p.wait()
    stdout = (out / "stdout.log").read_text()
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {rc}: {(stdout + ''.join(err))[-400:]}")
    if warm not in marks or total not in marks:
        raise RuntimeError(f"no progress lines for steps {warm} and {total} on stderr: {''.join(err)[-300:]!r}")
    row = {"steps_per_s": spec["steps"] / (marks[total] - marks[warm]),
           "peak_mib": peak_mib(resource.RUSAGE_CHILDREN)}
    if m := re.search(r"([0-9.]+) steps/s", stdout):
        row["cli_steps_per_s"] = float(m.group(1))
    if m := re.search(r"(\d+) neighbour-list rebuilds", stdout):
        row["rebuilds"] = int(m.group(1))
    lines = (out / "md" / "thermo.csv").read_text().split()
    rows = {int(r.split(",")[0]): r.split(",") for r in lines[1:]}
    n = spec["atoms"]
    row["e0_per_atom"] = float(rows[0][2]) / n
    row["drift_ev_per_atom"] = (float(rows[total][4]) - float(rows[warm][4])) / n
    return row


def child_main(spec: dict) -> None:
    row = child_cli(spec) if spec["tool"] == "equivariant-cli" else child_ase(spec)
    print(json.dumps(row), flush=True)


# ---------------------------------------------------------------------------------------
# Per-tool preparation: the Python to run the child with and the model path, or Skip


def find_checkpoint(path: str) -> Path:
    p = Path(path)
    if p.exists():
        return p
    alt = p.with_name("checkpoint.safetensors")
    if alt.exists():
        return alt
    raise Skip(f"no checkpoint at {p} or {alt}: run compare_training.py first")


def equivariant_params(ckpt: Path):
    log = ckpt.parent.parent / "stdout.log"  # compare_training.py's `equivariant train` log
    if log.exists() and (m := re.search(r"(\d+) parameters", log.read_text())):
        return int(m.group(1))
    return None


def prepare_equivariant(args, work: Path) -> dict:
    ckpt = find_checkpoint(args.checkpoint)
    r = subprocess.run([args.equivariant_python, "-c", "import equivariant, ase"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        raise Skip(f"{args.equivariant_python} cannot import equivariant: {last}")
    return {"python": args.equivariant_python, "model": str(ckpt),
            "params": equivariant_params(ckpt)}


def prepare_cli(args, work: Path) -> dict:
    ckpt = find_checkpoint(args.checkpoint)
    if not Path(args.bin).is_file():
        raise Skip(f"{args.bin} not found: cargo build --release -p equivariant-cli")
    return {"python": sys.executable, "model": str(ckpt), "bin": args.bin,
            "params": equivariant_params(ckpt)}


def prepare_mace(args, work: Path) -> dict:
    python = Path(args.venv_mace) / "bin" / "python"
    model = Path(args.mace_model or work / "runs" / "mace" / "mace_peer.model")
    if not python.exists():
        raise Skip(f"{python} not found (see tools/peers/README.md)")
    if not model.exists():
        raise Skip(f"{model} not found: run compare_training.py --tools mace first")
    return {"python": str(python), "model": str(model)}


def train_nequip(args, work: Path, python: Path) -> Path:
    """A checkpoint of compare_training.py's NequIP model and run, trained here (that run
    keeps none): its config with checkpointing on, in --work/md_models/nequip_train."""
    sys.path.insert(0, str(HERE))
    import compare_training as ct

    d = work / "md_models" / "nequip_train"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    if not (work / "train.extxyz").exists():
        ct.make_split(ROOT / "data" / "cuau_emt_slice.extxyz", work)
    (d / "peer_hooks.py").write_text(ct.NEQUIP_HOOKS)
    yaml = ct.nequip_yaml(argparse.Namespace(epochs=args.nequip_epochs), work, d)
    assert "enable_checkpointing: false" in yaml
    (d / "config.yaml").write_text(yaml.replace("enable_checkpointing: false", "enable_checkpointing: true"))
    r = ct.nequip_train(python, d, args.threads, timeout=args.timeout)
    ckpts = sorted(d.glob("lightning_logs/*/checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime)
    if r.returncode != 0 or not ckpts:
        raise Skip(f"training a NequIP checkpoint failed (rc {r.returncode}): see {d / 'stdout.log'}")
    return ckpts[-1]


def prepare_nequip(args, work: Path) -> dict:
    python = Path(args.venv_nequip) / "bin" / "python"
    if not python.exists():
        raise Skip(f"{python} not found (see tools/peers/README.md)")
    d = work / "md_models"
    if args.nequip_checkpoint:
        ckpt = Path(args.nequip_checkpoint)
        if not ckpt.exists():
            raise Skip(f"{ckpt} not found")
    else:
        ckpts = sorted(d.glob("nequip_train/lightning_logs/*/checkpoints/*.ckpt"),
                       key=lambda p: p.stat().st_mtime)
        ckpt = ckpts[-1] if ckpts else train_nequip(args, work, python)
    params = None
    metrics = ckpt.parents[3] / "peer_metrics.json" if len(ckpt.parents) > 3 else None
    if metrics and metrics.exists():
        params = json.loads(metrics.read_text()).get("params")
    if args.nequip_mode == "eager":
        return {"python": str(python), "model": str(ckpt), "params": params,
                "nequip_mode": "eager", "note": f"eager (uncompiled) model from {ckpt.name}"}
    compiled = d / "nequip.nequip.pt2"
    if not compiled.exists() or compiled.stat().st_mtime < ckpt.stat().st_mtime:
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        cmd = [str(Path(args.venv_nequip) / "bin" / "nequip-compile"), str(ckpt), str(compiled),
               "--mode", "aotinductor", "--device", "cpu", "--target", "ase"]
        t0 = time.perf_counter()
        with open(d / "nequip_compile.log", "w") as log:
            r = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout)
        if r.returncode != 0 or not compiled.exists():
            raise Skip(f"nequip-compile failed (rc {r.returncode}): see {d / 'nequip_compile.log'}")
        print(f"# nequip-compile: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {"python": str(python), "model": str(compiled), "params": params,
            "nequip_mode": "aotinductor"}


PREPARE = {"equivariant": prepare_equivariant, "equivariant-cli": prepare_cli,
           "nequip": prepare_nequip, "mace": prepare_mace}


# ---------------------------------------------------------------------------------------
# Parent


def run_child(args, work: Path, tool: str, n: int, structure: Path, prep: dict) -> dict:
    steps = args.steps or DEFAULT_STEPS[n]
    row = {"tool": tool, "atoms": n, "steps_per_s": None, "peak_mib": None,
           "threads": args.threads, "dtype": "float32", "steps": steps}
    if prep.get("params") is not None:
        row["params"] = prep["params"]
    spec = {"tool": tool, "atoms": n, "structure": str(structure), "steps": steps,
            "warmup": args.warmup, "threads": args.threads, "model": prep["model"],
            "bin": prep.get("bin"), "nequip_mode": prep.get("nequip_mode"),
            "output": str(work / "md_runs" / f"{tool}_{n}")}
    t = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, RAYON_NUM_THREADS=t)
    logs = work / "md_logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{tool}_{n}.log"
    with open(log_path, "w") as log:
        p = subprocess.Popen([prep["python"], str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                             env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                             start_new_session=True)
        try:
            stdout, _ = p.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the child and anything it started
            p.communicate()
            row["note"] = f"killed after --timeout {args.timeout} s"
            return row
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = " | ".join(log_path.read_text().strip().splitlines()[-3:])[-400:]
        row["note"] = f"exit {p.returncode}: {tail} (log {log_path})"
        if "bad header" in tail:
            row["note"] += ("; a checkpoint of an older format: rerun compare_training.py "
                            "--tools equivariant, or train one with its config and pass --checkpoint")
        return row
    child = json.loads(lines[-1])
    if child.get("params") is None:
        child.pop("params", None)
    row.update(child)
    if prep.get("note"):
        row["note"] = prep["note"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--tools", default=",".join(TOOLS), help="comma-separated, run one after another")
    p.add_argument("--sizes", default="108,1000,10000", help=f"comma-separated, of {sorted(REPEATS)}")
    p.add_argument("--steps", type=int, default=None,
                   help=f"timed steps at every size (default: {DEFAULT_STEPS})")
    p.add_argument("--warmup", type=int, default=5,
                   help="untimed steps before them (NequIP's AOTInductor model needs a few)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat every (size, tool) this often, tools alternating within a size")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child; killed after")
    p.add_argument("--work", default="/work/peers-data",
                   help="compare_training.py's folder: runs/ holds the models; md_* are written")
    p.add_argument("--checkpoint", default="/work/peers-data/runs/equivariant/run/best.safetensors")
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "equivariant"))
    p.add_argument("--equivariant-python", default=sys.executable)
    p.add_argument("--venv-nequip", default="/work/venv-nequip")
    p.add_argument("--venv-mace", default="/work/venv-mace")
    p.add_argument("--mace-model", default=None, help="default: WORK/runs/mace/mace_peer.model")
    p.add_argument("--nequip-checkpoint", default=None,
                   help="a NequIP .ckpt (default: WORK/md_models/nequip_train's, trained when missing)")
    p.add_argument("--nequip-epochs", type=int, default=10, help="when training that checkpoint")
    p.add_argument("--nequip-mode", choices=["aotinductor", "eager"], default="aotinductor")
    args = p.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return

    work = Path(args.work)
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        if n not in REPEATS:
            p.error(f"--sizes: {n} is not one of {sorted(REPEATS)}")
    tools = args.tools.split(",")
    for tool in tools:
        if tool not in PREPARE:
            p.error(f"--tools: {tool} is not one of {','.join(TOOLS)}")
    structures = build_structures(work, sizes)
    prepared = {}
    for tool in tools:
        try:
            prepared[tool] = PREPARE[tool](args, work)
        except (Skip, subprocess.TimeoutExpired, OSError) as e:
            for n in sizes:
                print(json.dumps({"tool": tool, "atoms": n, "steps_per_s": None, "peak_mib": None,
                                  "note": str(e)}), flush=True)
    # Rounds, and in each every size with the tools one after another: a machine whose speed
    # drifts over minutes then touches every tool alike, and ratios are taken within a round.
    for round_ in range(1, args.rounds + 1):
        for n in sizes:
            for tool, prep in prepared.items():
                row = run_child(args, work, tool, n, structures[n], prep)
                if args.rounds > 1:
                    row["round"] = round_
                print(json.dumps(row), flush=True)

if __name__ == "__main__":
    main()
