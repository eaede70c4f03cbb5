"""Oracle for the trainer's optimizer, weight average and learning-rate schedules:
torch.optim.AdamW after torch.nn.utils.clip_grad_norm_, torch_ema.ExponentialMovingAverage
(what NequIP's trainer uses), on two parameters over four steps of fixed gradients, float64;
torch's CosineAnnealingLR stepped per step and ReduceLROnPlateau fed a fixed sequence of
validation losses.

Run from the repository root (torch from /work/venv-e3nn; torch-ema from PyPI):

    /work/venv-nequip/bin/pip install torch-ema
    /work/venv-nequip/bin/python tools/reference/training/make_optimizer_fixture.py

Writes crates/equivariant-train/tests/fixtures/optimizer.json.
"""

import json
import math
from pathlib import Path

import torch
import torch_ema

OUT = Path("crates/equivariant-train/tests/fixtures/optimizer.json")


def run(lr, weight_decay, max_grad_norm, decay):
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([[0.1, 0.2], [-0.3, 0.4]], dtype=torch.float64))
    params = [a, b]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    ema = torch_ema.ExponentialMovingAverage(params, decay=decay, use_num_updates=True)
    # The loss sum(c_a * a) + sum(c_b * b): its gradients are the fixed c's.
    coefficients = []
    for step in range(4):
        c_a = [math.sin(1.3 * step + k) * (3.0 if step == 1 else 1.0) for k in range(3)]
        c_b = [math.cos(0.7 * step + k) for k in range(4)]
        coefficients.append({"a": c_a, "b": c_b})
        optim.zero_grad()
        loss = (torch.tensor(c_a, dtype=torch.float64) * a).sum() + (
            torch.tensor(c_b, dtype=torch.float64).reshape(2, 2) * b
        ).sum()
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optim.step()
        ema.update()
    with ema.average_parameters():
        average = {"a": a.detach().tolist(), "b": sum(b.detach().tolist(), [])}
    return {
        "lr": lr,
        "weight_decay": weight_decay,
        "max_grad_norm": max_grad_norm,
        "ema_decay": decay,
        "gradients": coefficients,
        "params": {"a": a.detach().tolist(), "b": sum(b.detach().tolist(), [])},
        "average": average,
    }


def schedules():
    p = torch.nn.Parameter(torch.zeros(1))
    optim = torch.optim.SGD([p], lr=0.05)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=9, eta_min=0.001)
    cosine_lr = []
    for _ in range(9):
        cosine_lr.append(optim.param_groups[0]["lr"])
        optim.step()
        cosine.step()
    optim = torch.optim.SGD([p], lr=0.01)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optim, mode="min", factor=0.5, patience=2)
    losses = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.71, 0.72, 0.73]
    plateau_lr = []
    for loss in losses:
        plateau.step(loss)
        plateau_lr.append(optim.param_groups[0]["lr"])
    return {
        "cosine": {"lr": 0.05, "lr_min": 0.001, "steps": 9, "lr_per_step": cosine_lr},
        "plateau": {"lr": 0.01, "factor": 0.5, "patience": 2, "losses": losses, "lr_after": plateau_lr},
    }


def main():
    cases = [
        run(0.1, 0.0, None, 0.99),
        run(0.05, 0.01, 1.0, 0.9),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "generator": "tools/reference/training/make_optimizer_fixture.py",
                "torch_version": torch.__version__,
                "torch_ema_version": "0.3",
                "initial": {"a": [0.5, -1.25, 2.0], "b": [0.1, 0.2, -0.3, 0.4]},
                "cases": cases,
                "schedules": schedules(),
            },
            indent=1,
        )
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
