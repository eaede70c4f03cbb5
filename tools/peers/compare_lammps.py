#!/usr/bin/env python3
"""LAMMPS with our KIM model (`pair_style kim`, the C ABI under it) beside `equivariant md`:
NVE velocity Verlet steps per second on the same structures (compare_md.py's fcc Cu-Au cells
of 1000 and 10000 atoms), f64, one JSON object per (tool, ranks, size, round):

    {"tool": "equivariant-cli" | "lammps-kim", "ranks", "threads", "atoms", "steps_per_s",
     "peak_mib", "dtype", ...}

- equivariant-cli: `equivariant md CHECKPOINT N.extxyz --f64`, timed as compare_md.py times
  it (the steps after --warmup), on --threads threads.
- lammps-kim: `lmp` (or `mpirun -np R lmp`) on the same structure: `kim init` of a portable
  model of the same checkpoint (kim/build.sh, into --work/kim), velocities at 300 K, a
  neighbour list with a 0.5 Å skin checked every step (as `equivariant md`'s), --warmup
  steps, then --steps steps timed by LAMMPS itself ("Loop time"). One rank runs on
  --threads threads; R ranks on one thread each (RAYON_NUM_THREADS). peak_mib is the largest
  resident set of one process (for R ranks: of one rank).

Both pay for the model's ghost shell differently: `equivariant md` computes the periodic
cell's own atoms (images enter as edge shifts), while through KIM every domain sees its
neighbours' and images' atoms as ghosts out to the model's influence distance
(num_layers x r_max) and the C ABI computes the atoms within num_layers - 1 hops of its own
ones. "ghost_fraction" reports LAMMPS's ghosts per owned atom.

    python tools/peers/compare_lammps.py --rounds 3
    python tools/peers/compare_lammps.py --sizes 1000 --steps 5 --warmup 1 --rounds 1

Needs ASE (a Python that has it), LAMMPS with the KIM package, kim-api, cmake, mpirun, and
`cargo build --release -p equivariant-cli -p equivariant-capi`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_md import SEED, TEMPERATURE, build_structures  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = "equivariant_bench_AuCu"


def kim_environment(args, work: Path) -> dict:
    """Builds the KIM driver and the portable model of --checkpoint; the environment that
    finds them."""
    out = subprocess.run(
        ["bash", str(ROOT / "crates/equivariant-capi/kim/build.sh"), args.checkpoint, MODEL,
         str(work / "kim"), args.capi],
        capture_output=True, text=True, check=True,
    ).stdout
    env = dict(os.environ)
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def lammps_data(structure: Path, data: Path) -> None:
    from ase.io import read, write

    if not data.exists():
        write(data, read(structure), format="lammps-data", atom_style="atomic",
              specorder=["Au", "Cu"], masses=True, units="metal")


def run_lammps(args, env: dict, data: Path, ranks: int, run_dir: Path) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "in.bench").write_text(
        f"kim init {MODEL} metal\nboundary p p p\natom_style atomic\nread_data {data}\n"
        "kim interactions Au Cu\n"
        f"velocity all create {TEMPERATURE} {SEED + 4928459} mom yes rot yes dist gaussian loop geom\n"
        "neighbor 0.5 bin\nneigh_modify every 1 delay 0 check yes\n"
        "timestep 0.001\nfix nve all nve\nthermo_style custom step pe ke etotal\n"
        f"thermo {max(1, args.warmup)}\nrun {args.warmup}\nrun {args.steps}\n"
    )
    threads = args.threads if ranks == 1 else 1
    env = dict(env, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS="1")
    lmp = ["lmp", "-in", "in.bench", "-log", "bench.log"]
    cmd = lmp if ranks == 1 else ["mpirun", "--oversubscribe", "-np", str(ranks), *lmp]
    # A fresh child per run, so that RUSAGE_CHILDREN is this run's peak alone.
    probe = (
        "import resource, subprocess, sys; "
        f"r = subprocess.run({cmd!r}, capture_output=True, text=True); "
        "sys.stdout.write(r.stdout[-3000:] + r.stderr[-3000:]); "
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'RC', r.returncode)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=run_dir, env=env,
                          capture_output=True, text=True)
    peak = re.search(r"PEAK_KIB (\d+) RC (-?\d+)", done.stdout)
    log = (run_dir / "bench.log").read_text() if (run_dir / "bench.log").exists() else ""
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps", log)
    if not peak or peak.group(2) != "0" or len(loops) < 2:
        raise RuntimeError(f"lammps failed: {done.stdout[-1500:]}{done.stderr[-500:]}")
    seconds, steps = float(loops[-1][0]), int(loops[-1][1])
    row = {"steps_per_s": steps / seconds, "peak_mib": int(peak.group(1)) / 1024,
           "threads": threads}
    if m := re.search(r"Ave neighs/atom = ([0-9.]+)", log):
        row["neighbors_per_atom"] = float(m.group(1))
    owned = re.findall(r"Nlocal:\s+([0-9.]+)", log)
    ghosts = re.findall(r"Nghost:\s+([0-9.]+)", log)
    if owned and ghosts:
        row["ghost_fraction"] = float(ghosts[-1]) / float(owned[-1])
    energies = [float(x) for x in re.findall(r"^\s+\d+\s+\S+\s+\S+\s+(\S+)\s*$", log, re.M)]
    if energies:
        n = int(data.stem)
        row["drift_ev_per_atom"] = (energies[-1] - energies[0]) / n
    return row


def run_cli(args, spec: dict) -> dict:
    """`equivariant md` timed by compare_md.py's child, in a fresh process (its peak
    memory that run's alone)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "compare_md.py"), "--child",
         json.dumps(dict(spec, tool="equivariant-cli"))],
        env=env, capture_output=True, text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"equivariant md failed: {done.stderr[-800:]}")
    return dict(json.loads(lines[-1]), threads=args.threads)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="/work/peers-data", type=Path)
    p.add_argument("--checkpoint", default=None,
                   help="default: WORK/md_models/equivariant_train/run/best.safetensors")
    p.add_argument("--bin", default=str(ROOT / "target/release/equivariant"))
    p.add_argument("--capi", default=str(ROOT / "target/release/libequivariant_capi.so"))
    p.add_argument("--sizes", default="1000,10000")
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    args.checkpoint = args.checkpoint or str(
        args.work / "md_models/equivariant_train/run/best.safetensors")
    sizes = [int(s) for s in args.sizes.split(",")]
    structures = build_structures(args.work, sizes)
    env = kim_environment(args, args.work)
    for round_ in range(args.rounds):
        for n in sizes:
            data = args.work / "md_structures" / f"{n}.data"
            lammps_data(structures[n], data)
            spec = {"bin": args.bin, "model": args.checkpoint, "structure": str(structures[n]),
                    "steps": args.steps, "warmup": args.warmup, "atoms": n, "f64": True,
                    "output": str(args.work / "lammps_runs" / f"cli_{n}")}
            rows = [("equivariant-cli", 1, lambda s=spec: run_cli(args, s))]
            for ranks in (int(r) for r in args.ranks.split(",")):
                run_dir = args.work / "lammps_runs" / f"kim_{n}_np{ranks}"
                rows.append(("lammps-kim", ranks,
                             lambda r=ranks, d=run_dir: run_lammps(args, env, data, r, d)))
            for tool, ranks, measure in rows:
                row = {"tool": tool, "ranks": ranks, "atoms": n, "round": round_, "dtype": "f64",
                       "steps": args.steps}
                try:
                    row.update(measure())
                except Exception as e:  # a failed run is a null row that says why
                    row.update(steps_per_s=None, note=str(e)[-400:])
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
