#!/usr/bin/env python3
"""Train `equivariant`, NequIP (0.19, Hydra/Lightning) and MACE on the same Cu-Au split, on
the CPU, with models of about the size of examples/potential/config.toml, and print one JSON
object per tool:

    {"tool": ..., "epoch_s": ..., "val_force_mae": ..., "val_energy_mae_per_atom": ..., "params": ...}

epoch_s: the median wall time of a training epoch, validation excluded (each tool's timer is
described at its runner below); the MAEs (eV/Å, eV/atom) are those of the validation frames
after the last epoch, with the exponential moving average of the weights that each tool
validates with. Extra keys: "epochs", "val_frames", "note", and "val_force_mae_curve":
[[training seconds so far, validation force MAE], ...] after each epoch (the sum of the
epochs' timed training, validation excluded): the MAE against wall-clock time.

Run it with a Python that has numpy (e.g. /work/venv-nequip/bin/python); each tool runs in
its own venv (see tools/peers/README.md):

    python tools/peers/compare_training.py --epochs 10 --threads 2

The split (numpy default_rng(0) permutation of the 150 frames: 120 train, 15 validation, 15
test) is written to --work (default /work/peers-data) as train/valid/test.extxyz, copied
frame by frame from the source file (MACE's copies, mace_*.extxyz, rename energy/forces/
stress to REF_*, its default keys).

`equivariant train` has no option for explicit training/validation files: it splits one
file with a seeded shuffle (crates/equivariant-data/src/split.rs) that depends only on the
frame count and the seed. The script therefore runs it once with a throw-away config whose
*test* fraction is 15/135 (the test part is the shuffle's first 15 positions, and the
trainer writes those frames to test.extxyz), reads which positions they are, and writes
the 135 train+validation frames so that the validation frames sit at exactly those
positions; the real run then has validation = 15/135, test = 0 and validates on exactly
valid.extxyz. The run checks this by evaluating the last checkpoint (`equivariant
evaluate`) on valid.extxyz and comparing with metrics.csv's last row.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The hyperparameters of examples/potential/config.toml, shared by every tool.
R_MAX = 4.0
NUM_LAYERS = 2
L_MAX = 1
NUM_FEATURES = 8
NUM_BASIS = 8
CUTOFF_P = 6
RADIAL_HIDDEN = 16  # one hidden layer
BATCH = 4
LR, LR_MIN = 0.01, 0.0005  # cosine, per step, from LR to LR_MIN over the run
EMA = 0.99
CLIP = 10.0
SEED = 0
N_TRAIN, N_VAL, N_TEST = 120, 15, 15


# ---------------------------------------------------------------------------------------
# Data


def read_frames(path: Path) -> list[list[str]]:
    """The frames of an extended XYZ file as lists of lines (count, comment, atoms)."""
    lines = path.read_text().splitlines()
    frames, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        n = int(lines[i].split()[0])
        frames.append(lines[i : i + 2 + n])
        i += 2 + n
    return frames


def write_frames(path: Path, frames: list[list[str]]) -> None:
    path.write_text("".join("\n".join(f) + "\n" for f in frames))


def to_mace_keys(frame: list[str]) -> list[str]:
    header = re.sub(r"(^|\s)(energy|stress)=", r"\1REF_\2=", frame[1])
    header = header.replace(":forces:R:3", ":REF_forces:R:3")
    return [frame[0], header] + frame[2:]


def make_split(source: Path, work: Path) -> dict[str, list[list[str]]]:
    import numpy as np

    frames = read_frames(source)
    assert len(frames) == N_TRAIN + N_VAL + N_TEST, f"{len(frames)} frames in {source}"
    perm = np.random.default_rng(SEED).permutation(len(frames))
    idx = {
        "train": sorted(perm[:N_TRAIN].tolist()),
        "valid": sorted(perm[N_TRAIN : N_TRAIN + N_VAL].tolist()),
        "test": sorted(perm[N_TRAIN + N_VAL :].tolist()),
    }
    work.mkdir(parents=True, exist_ok=True)
    parts = {}
    for name, ids in idx.items():
        parts[name] = [frames[i] for i in ids]
        write_frames(work / f"{name}.extxyz", parts[name])
        write_frames(work / f"mace_{name}.extxyz", [to_mace_keys(f) for f in parts[name]])
    (work / "split.json").write_text(json.dumps(idx))
    return parts


# ---------------------------------------------------------------------------------------
# equivariant


def equivariant_toml(train: str, valid: str, epochs: int, output: str) -> str:
    model = textwrap.dedent(f"""\
        r_max = {R_MAX}
        num_layers = {NUM_LAYERS}
        l_max = {L_MAX}
        num_features = {NUM_FEATURES}
        num_basis = {NUM_BASIS}
        PolynomialCutoff_p = {CUTOFF_P}
        invariant_layers = 1
        invariant_neurons = {RADIAL_HIDDEN}
        scalar_last_layer = true
        """)
    batch = BATCH
    return textwrap.dedent(f"""\
        [data]
        path = "{train}"
        validation_path = "{valid}"
        validation = 0.0
        test = 0.0
        seed = {SEED}

        [model]
        """) + model + textwrap.dedent(f"""
        [training]
        epochs = {epochs}
        batch_size = {batch}
        learning_rate = {LR}
        lr_schedule = "cosine"
        lr_min = {LR_MIN}
        ema_decay = {EMA}
        max_grad_norm = {CLIP}
        energy_weight = 1.0
        force_weight = 1.0
        dtype = "f32"
        seed = {SEED}
        output = "{output}"
        """)


def curve(epoch_times: list[float], maes: list[float]) -> list[list[float]]:
    """[[training seconds up to the end of epoch k, validation force MAE after it], ...]."""
    out, t = [], 0.0
    for dt, mae in zip(epoch_times, maes):
        t += dt
        out.append([round(t, 4), mae])
    return out


def run_equivariant(args, work: Path) -> dict:
    binary = Path(args.bin)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    d = work / "runs" / "equivariant"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    # The split's own files: every frame of train.extxyz trains, valid.extxyz validates.
    (d / "config.toml").write_text(
        equivariant_toml(str(work / "train.extxyz"), str(work / "valid.extxyz"), args.epochs, "run"))
    with open(d / "stdout.log", "w") as log:
        subprocess.run([str(binary), "train", str(d / "config.toml")], env=env, check=True,
                       stdout=log, stderr=subprocess.STDOUT)
    rows = list(csv.DictReader(open(d / "run" / "metrics.csv")))
    last = rows[-1]
    # epoch_s (metrics.csv): from the first batch to the last optimizer step (graphs are
    # built on a second thread meanwhile); validation is timed separately and excluded.
    m = re.search(r"(\d+) parameters", (d / "stdout.log").read_text())
    out = {
        "tool": "equivariant",
        "epoch_s": statistics.median(float(r["epoch_s"]) for r in rows),
        "val_force_mae": float(last["val_force_mae"]),
        "val_energy_mae_per_atom": float(last["val_energy_mae_per_atom"]),
        "params": int(m.group(1)) if m else None,
        "epochs": len(rows),
        "val_force_mae_curve": curve([float(r["epoch_s"]) for r in rows],
                                     [float(r["val_force_mae"]) for r in rows]),
    }
    # Check: the last checkpoint (the validated EMA weights) on valid.extxyz.
    ev = subprocess.run([str(binary), "evaluate", str(d / "run" / "checkpoint.safetensors"),
                         str(work / "valid.extxyz")], env=env, check=True,
                        capture_output=True, text=True).stdout
    fm = re.search(r"forces\s+MAE ([0-9.]+) meV", ev)
    em = re.search(r"energy per atom\s+MAE ([0-9.]+) meV", ev)
    same = bool(fm and em
                and abs(float(fm.group(1)) - 1e3 * out["val_force_mae"]) < 0.01 + 1e-4 * float(fm.group(1))
                and abs(float(em.group(1)) - 1e3 * out["val_energy_mae_per_atom"]) < 0.002 + 1e-4 * float(em.group(1)))
    out["val_frames"] = "valid.extxyz (checked by evaluate)" if same else "UNVERIFIED"
    if not same:
        out["note"] = f"evaluate on valid.extxyz disagrees with metrics.csv: {ev.strip()!r}"
    return out


# ---------------------------------------------------------------------------------------
# NequIP 0.19 (Hydra + Lightning)

NEQUIP_HOOKS = '''\
"""Lightning callback for compare_training.py: times training epochs, reads validation."""
import json, statistics, time
import lightning


class PeerTimer(lightning.Callback):
    def __init__(self, out_file):
        self.out_file, self.times, self.val, self.params = out_file, [], {}, None
        self.force_maes = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.t0 = self.t1 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.t1 = time.perf_counter()

    def on_validation_start(self, trainer, pl_module):
        if not trainer.sanity_checking and hasattr(self, "t0"):
            # from the epoch's start (the first batch's loading included) to the end of
            # the last optimizer step; validation starts after it
            self.times.append(self.t1 - self.t0)

    def on_train_epoch_end(self, trainer, pl_module):  # after the epoch's validation
        m = trainer.callback_metrics
        self.val = {k: float(v) for k, v in m.items() if k.startswith("val0_epoch/")}
        self.force_maes.append(self.val.get("val0_epoch/forces_mae"))
        self.params = sum(p.numel() for p in pl_module.model.parameters() if p.requires_grad)
        with open(self.out_file, "w") as f:
            json.dump({"epoch_times": self.times, "val": self.val, "params": self.params,
                       "force_maes": self.force_maes}, f)
'''


def nequip_yaml(args, work: Path, run_dir: Path) -> str:
    steps = math.ceil(N_TRAIN / BATCH) * args.epochs
    return textwrap.dedent(f"""\
        run: [train]
        seed: {SEED}
        cutoff_radius: {R_MAX}
        model_type_names: [Cu, Au]
        chemical_species: ${{model_type_names}}

        dataloader:
          _target_: torch.utils.data.DataLoader
          batch_size: {BATCH}

        data:
          _target_: nequip.data.datamodule.ASEDataModule
          seed: {SEED}
          train_file_path: {work / 'train.extxyz'}
          val_file_path: {work / 'valid.extxyz'}
          transforms:
            - _target_: nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper
              model_type_names: ${{model_type_names}}
              chemical_species_to_atom_type_map: ${{list_to_identity_dict:${{chemical_species}}}}
            - _target_: nequip.data.transforms.NeighborListTransform
              r_max: ${{cutoff_radius}}
          train_dataloader:
            _target_: torch.utils.data.DataLoader
            batch_size: {BATCH}
            shuffle: true
          val_dataloader: ${{dataloader}}
          stats_manager:
            _target_: nequip.data.CommonDataStatisticsManager
            type_names: ${{model_type_names}}

        trainer:
          _target_: lightning.Trainer
          accelerator: cpu
          max_epochs: {args.epochs}
          check_val_every_n_epoch: 1
          num_sanity_val_steps: 0
          enable_checkpointing: false
          enable_progress_bar: false
          gradient_clip_val: {CLIP}
          gradient_clip_algorithm: norm
          logger:
            _target_: lightning.pytorch.loggers.CSVLogger
            save_dir: {run_dir}
          callbacks:
            - _target_: peer_hooks.PeerTimer
              out_file: {run_dir / 'peer_metrics.json'}

        training_module:
          _target_: nequip.train.EMALightningModule
          ema_decay: {EMA}
          loss:
            _target_: nequip.train.EnergyForceLoss
            per_atom_energy: true
            coeffs:
              total_energy: 1.0
              forces: 1.0
          val_metrics:
            _target_: nequip.train.EnergyForceMetrics
            coeffs:
              per_atom_energy_mae: 1.0
              forces_mae: 1.0
          optimizer:
            _target_: torch.optim.Adam
            lr: {LR}
          lr_scheduler:
            scheduler:
              _target_: torch.optim.lr_scheduler.CosineAnnealingLR
              T_max: {steps}
              eta_min: {LR_MIN}
            interval: step
            frequency: 1
          model:
            _target_: nequip.model.NequIPGNNModel
            seed: {SEED}
            model_dtype: float32
            type_names: ${{model_type_names}}
            r_max: ${{cutoff_radius}}
            l_max: {L_MAX}
            parity: true
            num_layers: {NUM_LAYERS}
            num_features: {NUM_FEATURES}
            num_bessels: {NUM_BASIS}
            polynomial_cutoff_p: {CUTOFF_P}
            radial_mlp_depth: 1
            radial_mlp_width: {RADIAL_HIDDEN}
            avg_num_neighbors: ${{training_data_stats:num_neighbors_mean}}
            per_type_energy_shifts: ${{training_data_stats:per_atom_energy_mean}}
            per_type_energy_scales: ${{training_data_stats:forces_rms}}

        global_options:
          allow_tf32: false
        """)


def nequip_train(python: Path, d: Path, threads: int, timeout=None) -> subprocess.CompletedProcess:
    """`nequip-train` on d/config.yaml (with d/peer_hooks.py importable) on `threads`
    threads, its output in d/stdout.log."""
    runner = (f"import sys, torch; torch.set_num_threads({threads}); "
              f"sys.argv = ['nequip-train', '-cp', {str(d)!r}, '-cn', 'config', "
              f"'hydra.run.dir={d / 'hydra'}']; "
              "from nequip.scripts.train import main; main()")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(d))
    with open(d / "stdout.log", "w") as log:
        return subprocess.run([str(python), "-c", runner], cwd=d, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=timeout)


def run_nequip(args, work: Path) -> dict:
    d = work / "runs" / "nequip"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "peer_hooks.py").write_text(NEQUIP_HOOKS)
    (d / "config.yaml").write_text(nequip_yaml(args, work, d))
    r = nequip_train(Path(args.venv_nequip) / "bin" / "python", d, args.threads)
    r.check_returncode()
    r = json.loads((d / "peer_metrics.json").read_text())
    return {
        "tool": "nequip",
        "epoch_s": statistics.median(r["epoch_times"]),
        "val_force_mae": r["val"]["val0_epoch/forces_mae"],
        "val_energy_mae_per_atom": r["val"]["val0_epoch/per_atom_energy_mae"],
        "params": r["params"],
        "epochs": len(r["epoch_times"]),
        "val_frames": "valid.extxyz",
        "val_force_mae_curve": curve(r["epoch_times"], r["force_maes"]),
    }


# ---------------------------------------------------------------------------------------
# MACE

MACE_RUNNER = '''\
"""Runs mace_run_train for compare_training.py: Adam without AMSGrad, the cosine learning
rate per step, a timer around each training epoch, and the validation errors."""
import json, math, sys, time
import torch

threads, lr0, lr_min, total_steps, out_file = sys.argv[1:6]
torch.set_num_threads(int(threads))
lr0, lr_min, total_steps = float(lr0), float(lr_min), int(total_steps)
sys.argv = ["mace_run_train"] + sys.argv[6:]

from mace import tools
from mace.cli import run_train
mt = sys.modules["mace.tools.train"]
rec = {"epoch_times": [], "val": None, "params": None, "force_maes": []}
step = [0]

orig_take_step = mt.take_step
def take_step(*a, optimizer, **k):
    lr = lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * step[0] / total_steps))
    for g in optimizer.param_groups:
        g["lr"] = lr
    step[0] += 1
    return orig_take_step(*a, optimizer=optimizer, **k)
mt.take_step = take_step

orig_epoch = mt.train_one_epoch
def train_one_epoch(*a, **k):
    # the whole pass over the training loader (graphs precomputed at load time);
    # validation runs after this returns
    if rec["params"] is None:
        rec["params"] = sum(p.numel() for p in k["model"].parameters() if p.requires_grad)
    t0 = time.perf_counter()
    r = orig_epoch(*a, **k)
    rec["epoch_times"].append(time.perf_counter() - t0)
    return r
mt.train_one_epoch = train_one_epoch

orig_log = mt.valid_err_log
def valid_err_log(valid_loss, eval_metrics, logger, log_errors, epoch=None, *a, **k):
    if epoch is not None:  # validation after a training epoch (EMA weights)
        rec["val"] = {"epoch": epoch, "mae_e_per_atom": float(eval_metrics["mae_e_per_atom"]),
                      "mae_f": float(eval_metrics["mae_f"])}
        rec["force_maes"].append(rec["val"]["mae_f"])
        json.dump(rec, open(out_file, "w"))
    return orig_log(valid_loss, eval_metrics, logger, log_errors, epoch, *a, **k)
mt.valid_err_log = valid_err_log

args = tools.build_default_arg_parser().parse_args()
args.amsgrad = False  # mace_run_train has no switch to turn its default AMSGrad off
run_train.run(args)
json.dump(rec, open(out_file, "w"))
'''


def run_mace(args, work: Path) -> dict:
    d = work / "runs" / "mace"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "peer_runner.py").write_text(MACE_RUNNER)
    steps = math.ceil(N_TRAIN / BATCH) * args.epochs
    mace_args = [
        "--name", "mace_peer", "--seed", str(SEED), "--work_dir", str(d),
        "--train_file", str(work / "mace_train.extxyz"),
        "--valid_file", str(work / "mace_valid.extxyz"),
        "--E0s", "average", "--model", "MACE",
        "--num_channels", str(NUM_FEATURES), "--max_L", str(L_MAX),
        "--correlation", str(args.mace_correlation), "--num_interactions", str(NUM_LAYERS),
        "--r_max", str(R_MAX), "--num_radial_basis", str(NUM_BASIS),
        "--num_cutoff_basis", str(CUTOFF_P), "--radial_MLP", f"[{RADIAL_HIDDEN}]",
        "--MLP_irreps", f"{RADIAL_HIDDEN}x0e",
        "--batch_size", str(BATCH), "--valid_batch_size", str(BATCH),
        "--max_num_epochs", str(args.epochs), "--eval_interval", "1",
        "--loss", "weighted", "--energy_weight", "1.0", "--forces_weight", "1.0",
        "--error_table", "PerAtomMAE",
        "--optimizer", "adam", "--lr", str(LR), "--weight_decay", "0.0",
        # the learning rate is set per step by the runner (cosine); the plateau scheduler
        # is kept from ever acting
        "--scheduler", "ReduceLROnPlateau", "--scheduler_patience", "1000000",
        "--patience", "1000000",
        "--ema", "--ema_decay", str(EMA), "--clip_grad", str(CLIP),
        "--default_dtype", "float32", "--device", "cpu", "--num_workers", "0",
        "--save_cpu",
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    with open(d / "stdout.log", "w") as log:
        subprocess.run([str(Path(args.venv_mace) / "bin" / "python"), str(d / "peer_runner.py"),
                        str(args.threads), str(LR), str(LR_MIN), str(steps),
                        str(d / "peer_metrics.json")] + mace_args,
                       cwd=d, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    r = json.loads((d / "peer_metrics.json").read_text())
    return {
        "tool": "mace",
        "epoch_s": statistics.median(r["epoch_times"]),
        "val_force_mae": r["val"]["mae_f"],
        "val_energy_mae_per_atom": r["val"]["mae_e_per_atom"],
        "params": r["params"],
        "epochs": len(r["epoch_times"]),
        "val_frames": "valid.extxyz",
        "val_force_mae_curve": curve(r["epoch_times"], r["force_maes"]),
        "note": f"correlation {args.mace_correlation}",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tools", default="equivariant,nequip,mace",
                   help="comma-separated, run one after another")
    p.add_argument("--data", default=str(ROOT / "data" / "cuau_emt_slice.extxyz"))
    p.add_argument("--work", default="/work/peers-data",
                   help="split files and run folders (outside git)")
    p.add_argument("--bin", default=str(ROOT / "target" / "release" / "equivariant"))
    p.add_argument("--venv-nequip", default="/work/venv-nequip")
    p.add_argument("--venv-mace", default="/work/venv-mace")
    p.add_argument("--mace-correlation", type=int, default=2)
    args = p.parse_args()

    work = Path(args.work)
    make_split(Path(args.data), work)
    runners = {"equivariant": run_equivariant, "nequip": run_nequip, "mace": run_mace}
    failed = False
    for tool in args.tools.split(","):
        try:
            print(json.dumps(runners[tool](args, work)), flush=True)
        except Exception as e:  # report and go on with the next tool
            failed = True
            log = work / "runs" / tool / "stdout.log"
            print(json.dumps({"tool": tool, "error": f"{type(e).__name__}: {e}",
                              "log": str(log)}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
