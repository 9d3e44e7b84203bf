"""Sparse compute against masked dense (initprune/sparse.py, ``compute: sparse``): epoch times.

    python benchmarks/sparse.py [--quick] [--rounds N]

One thread, batch 128, synthetic tensors of the real shapes (no download): LeNet-300-100
(784-300-100-10) and a 784-256-64-256-784 autoencoder stand-in (trained here on a 784-way
cross-entropy, the trainer's loss; its layers' products are the autoencoder's), each layer at
sparsity s = 0.9, 0.95, 0.98, 0.99 under a random layerwise mask, final from the first step.
Each round times one epoch masked dense and one epoch sparse, back to back, the order
alternating; a round gives one ratio sparse / dense, and the table prints the median and the
min/max over rounds (the machine is shared: only ratios mean anything). Also per layer shape,
forward + input gradient + weight gradient of one batch, the ratio the rule of ``compute: auto``
(``sparse.RULES``) is read from. Writes its numbers under the key ``sparse_compute`` of
benchmarks/latest.json, every other key kept.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from initprune import masks, models, sparse
from initprune.data import Batches
from initprune.train import Settings, Trainee, Trainer

ROOT = Path(__file__).resolve().parent.parent
SPARSITIES = (0.9, 0.95, 0.98, 0.99)
LAYERS = ((300, 784), (100, 300), (10, 100), (256, 784), (64, 256), (256, 64), (784, 256))
BATCH = 128


def autoencoder() -> nn.Module:
    sizes = (784, 256, 64, 256, 784)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return models.initialize(nn.Sequential(*layers[:-1]), torch.Generator().manual_seed(0))


def build(name: str) -> tuple[nn.Module, int]:
    if name == "lenet300":
        return models.build("lenet300", (1, 28, 28), 10, 0), 10
    return autoencoder(), 784


def epoch_ratio(name: str, sparsity: float, rounds: int, n: int) -> dict:
    """Per round: one epoch of masked dense and one of sparse compute; the ratios sparse / dense."""
    model, classes = build(name)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, classes, (n,), generator=g)
    mask = masks.select(masks.random_scores(model, g), sparsity)
    pairs = {}
    for compute in ("dense", "sparse"):
        settings = Settings(lr=0.01, momentum=0.9, batch_size=BATCH, compute=compute)
        trainer = Trainer(Batches(x, y, BATCH, seed=0), None, None, settings, torch.device("cpu"), rounds + 1)
        trainee = Trainee(_copy(model), settings, mask, final=True)
        trainer.advance(trainee, 5)  # warm-up: the layers switched, the kernels called once
        pairs[compute] = (trainer, trainee)
    times = {"dense": [], "sparse": []}
    for r in range(rounds):
        for compute in (("dense", "sparse") if r % 2 == 0 else ("sparse", "dense")):
            trainer, trainee = pairs[compute]
            began = time.perf_counter()
            trainer.advance(trainee, trainer.steps_per_epoch)
            times[compute].append(time.perf_counter() - began)
    ratios = [s / d for s, d in zip(times["sparse"], times["dense"])]
    return {"ratio": statistics.median(ratios), "range": [min(ratios), max(ratios)],
            "dense_s": statistics.median(times["dense"]), "sparse_s": statistics.median(times["sparse"]),
            "flops_ratio": 1 - sparsity}


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def layer_ratio(shape: tuple[int, int], sparsity: float, rounds: int, reps: int) -> dict:
    """Forward + input gradient + weight gradient of one batch: sparse / masked dense."""
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(shape[1], shape[0])
    mask = torch.rand(shape, generator=g) >= sparsity
    with torch.no_grad():
        linear.weight.mul_(mask)
    layer = sparse.SparseLinear(linear, mask)
    x = torch.randn(BATCH, shape[1], generator=g, requires_grad=True)
    m = mask.to(linear.weight.dtype)

    def dense_step():
        linear(x).sum().backward()
        linear.weight.grad.mul_(m)
        linear.weight.grad = linear.bias.grad = x.grad = None

    def sparse_step():
        layer(x).sum().backward()
        layer.values.grad = layer.bias.grad = x.grad = None

    times = {dense_step: [], sparse_step: []}
    for f in times:
        f()
    for r in range(rounds):
        for f in ((dense_step, sparse_step) if r % 2 == 0 else (sparse_step, dense_step)):
            began = time.perf_counter()
            for _ in range(reps):
                f()
            times[f].append((time.perf_counter() - began) / reps)
    ratios = [s / d for s, d in zip(times[sparse_step], times[dense_step])]
    return {"ratio": statistics.median(ratios), "range": [min(ratios), max(ratios)],
            "dense_us": 1e6 * statistics.median(times[dense_step])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="12,800 examples an epoch and 3 rounds (else 60,000 and 5)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (each: one epoch of each)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rounds = args.rounds or (3 if args.quick else 5)
    n = 12_800 if args.quick else 60_000
    machine = f"{platform.processor() or platform.machine()}, 1 thread, torch {torch.__version__}"
    print(f"sparse compute against masked dense on {machine}; {n} examples an epoch, batch {BATCH}, "
          f"{rounds} interleaved rounds")
    print(f"{'model':10s} {'s':>5s} {'min':>6s} {'median':>7s} {'max':>6s} {'FLOPs':>6s} "
          f"{'dense s':>8s} {'sparse s':>8s}")
    epochs: dict[str, dict] = {}
    for name in ("lenet300", "autoencoder"):
        for s in SPARSITIES:
            r = epoch_ratio(name, s, rounds, n)
            epochs.setdefault(name, {})[str(s)] = r
            print(f"{name:10s} {s:5g} {r['range'][0]:6.3f} {r['ratio']:7.3f} {r['range'][1]:6.3f} "
                  f"{r['flops_ratio']:6.3f} {r['dense_s']:8.3f} {r['sparse_s']:8.3f}")
    print("one layer, forward + both gradients of one batch, sparse / dense (the rule of compute: auto)")
    layers: dict[str, dict] = {}
    for shape in LAYERS:
        row = {str(s): layer_ratio(shape, s, rounds, 20 if args.quick else 50) for s in SPARSITIES}
        layers[f"{shape[0]}x{shape[1]}"] = row
        print(f"{shape[0]:>4d}x{shape[1]:<4d} " + "  ".join(f"{s}: {v['ratio']:.2f} ({v['range'][0]:.2f}-"
                                                           f"{v['range'][1]:.2f})" for s, v in row.items()))
    target = epochs["lenet300"]["0.98"]["ratio"]
    print(f"target: a lenet300 epoch at s = 0.98 at most half the dense one: {target:.3f} "
          f"({'met' if target <= 0.5 else 'NOT met'}; the FLOPs say 0.02)")
    latest = ROOT / "benchmarks" / "latest.json"
    out = json.loads(latest.read_text()) if latest.exists() else {}  # keys measured elsewhere stay
    out["sparse_compute"] = {
        "machine": machine, "quick": args.quick, "rounds": rounds, "examples": n, "batch": BATCH,
        "rule_version": sparse.RULE_VERSION,
        "what": "epoch time sparse / masked dense (median over interleaved rounds, range: min and max)",
        "target_lenet300_098": {"bound": 0.5, "ratio": target, "met": target <= 0.5},
        "epochs": epochs, "layers": layers,
    }
    latest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {latest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
