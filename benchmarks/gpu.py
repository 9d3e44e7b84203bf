"""On one GPU: how many seeds of the paper's cells train per hour, alone, stacked, or in parallel
processes. Prepared for a machine with a GPU (`python benchmarks/gpu.py`); `--device cpu --quick`
runs the same code small, to check it anywhere.

For each architecture (lenet300, lenet5, conv6, resnet20) on synthetic data of its dataset's real
shape, it times one epoch of plain SGD training:
- alone: one model, the harness's own Trainer (masks applied every step, as in a run);
- stacked by 8 and 32 seeds: one vmapped model over stacked parameters, each seed with its own
  batch (torch.func.functional_call + vmap), the way seeds would train together;
- 4 processes at once, each training alone.
Then it turns the best epochs-per-hour into points per hour of the `paper` profile (its points
times their epochs, K-starts' candidate epochs included). Writes benchmarks/gpu.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from initprune import masks, models, train  # noqa: E402

CELLS = {"lenet300": ((1, 28, 28), 60_000, 128), "lenet5": ((1, 28, 28), 60_000, 128),
         "conv6": ((3, 32, 32), 50_000, 128), "resnet20": ((3, 32, 32), 50_000, 128)}


def _data(shape, n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=g).to(device), torch.randint(0, 10, (n,), generator=g).to(device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alone(arch: str, n: int, device: torch.device) -> float:
    """Seconds of one epoch of one model through the harness's Trainer, at sparsity 0.9."""
    shape, _, batch = CELLS[arch]
    x, y = _data(shape, n, device)
    model = models.build(arch, shape, 10, seed=0).to(device)
    settings = train.Settings(lr=0.05, batch_size=batch)
    trainee = train.Trainee(model, settings, masks.dense(model))
    trainee.set_mask(masks.select(masks.random_scores(model, torch.Generator(device).manual_seed(0)), 0.9))
    from initprune.data import Batches

    trainer = train.Trainer(Batches(x, y, batch), None, None, settings, device, 2)
    trainer.run(trainee, 1)  # warm-up (kernels, allocator)
    _sync(device)
    began = time.perf_counter()
    trainer.run(trainee, 1)
    _sync(device)
    return time.perf_counter() - began


def stacked(arch: str, n: int, k: int, device: torch.device) -> float:
    """Seconds of one epoch of k seeds trained as one vmapped model, each on its own batches."""
    from torch.func import functional_call, vmap

    shape, _, batch = CELLS[arch]
    x, y = _data(shape, n, device)
    nets = [models.build(arch, shape, 10, seed=s).to(device) for s in range(k)]
    if any(True for _ in nets[0].buffers()):
        return float("nan")  # batch norm keeps per-model statistics: such models go one by one
    params = {name: torch.stack([dict(m.named_parameters())[name].detach() for m in nets]).requires_grad_(True)
              for name, _ in nets[0].named_parameters()}
    opt = torch.optim.SGD(list(params.values()), lr=0.05, momentum=0.9, foreach=True)
    loss = vmap(lambda p, xb, yb: F.cross_entropy(functional_call(nets[0], p, (xb,)), yb))
    steps = n // batch
    orders = torch.stack([torch.randperm(n, device=device) for _ in range(k)])  # (k, n): a data order per seed

    def epoch():
        for b in range(steps):
            idx = orders[:, b * batch:(b + 1) * batch]  # (k, batch)
            opt.zero_grad(set_to_none=False)
            loss(params, x[idx], y[idx]).sum().backward()
            opt.step()

    epoch()
    _sync(device)
    began = time.perf_counter()
    epoch()
    _sync(device)
    return time.perf_counter() - began


def _worker(args):
    arch, n, device = args
    return alone(arch, n, torch.device(device))


def parallel(arch: str, n: int, device: torch.device, procs: int = 4) -> float:
    """Wall seconds for ``procs`` processes to train one epoch each, started together."""
    with mp.get_context("spawn").Pool(procs) as pool:
        began = time.perf_counter()
        pool.map(_worker, [(arch, n, str(device))] * procs)
        return time.perf_counter() - began


def paper_epochs() -> tuple[int, dict[str, float]]:
    """The `paper` profile's points, and the epochs it trains per architecture (K-starts'
    candidates counted)."""
    from initprune.lab import profiles

    points, out = 0, {}
    for ex in profiles.load_profile("paper"):
        for p in ex.points:
            out[p.arch] = out.get(p.arch, 0) + p.pruner().trained_epochs(p.epochs)
            points += 1
    return points, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="2,048 examples an epoch, stacks of 2 and 4: a check")
    ap.add_argument("--archs", default=",".join(CELLS), help="the architectures to time, comma-separated")
    ap.add_argument("--paper", type=Path, help="read the paper profile's points and epochs from this JSON (written "
                    "by --write-paper where papermill is installed) instead of expanding the profile here")
    ap.add_argument("--write-paper", type=Path, help="write the paper profile's points and epochs to this JSON, "
                    "then stop")
    args = ap.parse_args(argv)
    if args.write_paper:
        points, epochs = paper_epochs()
        args.write_paper.write_text(json.dumps({"points": points, "epochs": epochs}, indent=1) + "\n")
        print(f"paper profile: {points} points, epochs per architecture {epochs}; written to {args.write_paper}")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: run this on a machine with a GPU (or --device cpu --quick to check it)")
        return 2
    torch.backends.cudnn.benchmark = True
    stacks = (2, 4) if args.quick else (8, 32)
    rows = {}
    for arch in args.archs.split(","):
        n = 2048 if args.quick else CELLS[arch][1]
        row = {"alone_s": alone(arch, n, device)}
        for k in stacks:
            row[f"stacked{k}_s_per_seed"] = stacked(arch, n, k, device) / k
        row["parallel4_s_per_seed"] = parallel(arch, n, device) / 4
        best = min(v for v in row.values() if v == v)
        row["best_epochs_per_hour"] = 3600 / best
        rows[arch] = row
        print(arch, {k: round(v, 4) for k, v in row.items()}, flush=True)
    if args.paper:
        paper = json.loads(args.paper.read_text())
        points, epochs = paper["points"], paper["epochs"]
    else:
        points, epochs = paper_epochs()
    hours = sum(e / rows[a]["best_epochs_per_hour"] for a, e in epochs.items() if a in rows)
    summary = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
               "torch": torch.__version__, "quick": args.quick, "cells": rows,
               "paper_epochs": epochs, "paper_points": points,
               "paper_hours_at_best": hours, "paper_points_per_hour": points / hours if hours else None}
    out = ROOT / "benchmarks" / ("gpu-quick.json" if args.quick else "gpu.json")
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"paper profile: {points} points, {hours:.2f} h at the best rate per cell; written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
