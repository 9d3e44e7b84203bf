"""Sparse compute against masked dense (initprune/sparse.py, ``compute: sparse``): epoch times.

    python benchmarks/sparse.py [--quick] [--rounds N]

One thread, batch 128, synthetic tensors of the real shapes (no download): LeNet-300-100
(784-300-100-10) and a 784-256-64-256-784 autoencoder stand-in (trained here on a 784-way
cross-entropy, the trainer's loss; its layers' products are the autoencoder's), each layer at
sparsity s = 0.9, 0.95, 0.98, 0.99 under a random layerwise mask, final from the first step.
Each round times one epoch masked dense, one ``compute: sparse`` (every pruned Linear sparse) and
one ``compute: auto`` (each layer as ``sparse.RULES`` says), back to back, the order rotating; a
round gives one ratio to the dense epoch each, and the table prints the median and the min/max
over rounds (the machine is shared: only ratios mean anything). Also per layer shape, forward +
input gradient + weight gradient of one batch, the ratio the rule of ``compute: auto`` is read
from; and LeNet-5's conv layers, whose only sparse route in torch's CPU kernels (unfold, then a
CSR product) loses to the dense convolution before the product starts. Writes its numbers under
the key ``sparse_compute`` of benchmarks/latest.json, every other key kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from initprune import masks, models, sparse
from initprune.data import Batches
from initprune.train import Settings, Trainee, Trainer

ROOT = Path(__file__).resolve().parent.parent
SPARSITIES = (0.9, 0.95, 0.98, 0.99)
LAYERS = ((300, 784), (100, 300), (10, 100), (256, 784), (64, 256), (256, 64), (784, 256))
BATCH = 128
COMPUTES = ("dense", "sparse", "auto")
CONVS = ((6, 1, 5, 28, 2), (16, 6, 5, 14, 0))  # LeNet-5's: out, in, kernel, input side, padding


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
    """Per round: one epoch each of masked dense, ``compute: sparse`` and ``compute: auto`` (the
    order rotating); the ratios sparse / dense and auto / dense of that round."""
    model, classes = build(name)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, classes, (n,), generator=g)
    mask = masks.select(masks.random_scores(model, g), sparsity)
    pairs = {}
    for compute in COMPUTES:
        settings = Settings(lr=0.01, momentum=0.9, batch_size=BATCH, compute=compute)
        trainer = Trainer(Batches(x, y, BATCH, seed=0), None, None, settings, torch.device("cpu"), rounds + 1)
        trainee = Trainee(_copy(model), settings, mask, final=True)
        trainer.advance(trainee, 5)  # warm-up: the layers switched, the kernels called once
        pairs[compute] = (trainer, trainee)
    times: dict[str, list[float]] = {c: [] for c in COMPUTES}
    for r in range(rounds):
        for compute in COMPUTES[r % 3:] + COMPUTES[:r % 3]:
            trainer, trainee = pairs[compute]
            began = time.perf_counter()
            trainer.advance(trainee, trainer.steps_per_epoch)
            times[compute].append(time.perf_counter() - began)
    out: dict = {"flops_ratio": 1 - sparsity, "dense_s": statistics.median(times["dense"])}
    for compute in COMPUTES[1:]:
        ratios = [s / d for s, d in zip(times[compute], times["dense"])]
        out[compute] = {"ratio": statistics.median(ratios), "range": [min(ratios), max(ratios)],
                        "seconds": statistics.median(times[compute])}
    out["auto"]["layers"] = pairs["auto"][1].compute_layers
    return out


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


def conv_ratio(conv: tuple[int, ...], sparsity: float, rounds: int, reps: int) -> dict:
    """A LeNet-5 conv layer's forward, dense (``F.conv2d``) against the only sparse route torch's
    CPU kernels offer: the input unfolded (im2col) and multiplied by the CSR weight. The unfold
    alone is timed too: where it costs more than the dense forward, nothing sparse can pay."""
    cout, cin, k, side, pad = conv
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(cout, cin * k * k, generator=g) >= sparsity
    weight = (torch.randn(cout, cin * k * k, generator=g) * mask).view(cout, cin, k, k)
    st = sparse.Structure.of(mask)
    w = st.matrix(weight.view(cout, -1)[mask].contiguous())
    x = torch.randn(BATCH, cin, side, side, generator=g)

    def dense():
        F.conv2d(x, weight, padding=pad)

    def unfold():
        return F.unfold(x, k, padding=pad)

    def csr():
        cols = unfold()
        torch.sparse.mm(w, cols.transpose(0, 1).reshape(cols.shape[1], -1))

    times: dict = {f: [] for f in (dense, unfold, csr)}
    for f in times:
        f()
    for r in range(rounds):
        for f in (tuple(times) if r % 2 == 0 else tuple(times)[::-1]):
            began = time.perf_counter()
            for _ in range(reps):
                f()
            times[f].append((time.perf_counter() - began) / reps)
    ratio = lambda f: [a / b for a, b in zip(times[f], times[dense])]  # noqa: E731
    return {"ratio": statistics.median(ratio(csr)), "range": [min(ratio(csr)), max(ratio(csr))],
            "unfold_ratio": statistics.median(ratio(unfold)), "dense_us": 1e6 * statistics.median(times[dense])}


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
          f"{rounds} interleaved rounds; epoch time / the dense epoch's, median (min - max)")
    print(f"{'model':11s} {'s':>5s} {'sparse':>20s} {'auto':>20s} {'FLOPs':>6s} {'dense s':>8s}")
    epochs: dict[str, dict] = {}
    for name in ("lenet300", "autoencoder"):
        for s in SPARSITIES:
            r = epoch_ratio(name, s, rounds, n)
            epochs.setdefault(name, {})[str(s)] = r
            cells = [f"{r[c]['ratio']:.3f} ({r[c]['range'][0]:.2f}-{r[c]['range'][1]:.2f})" for c in COMPUTES[1:]]
            print(f"{name:11s} {s:5g} {cells[0]:>20s} {cells[1]:>20s} {r['flops_ratio']:6.3f} {r['dense_s']:8.3f}")
    print("one layer, forward + both gradients of one batch, sparse / dense (the rule of compute: auto)")
    reps = 20 if args.quick else 50
    layers: dict[str, dict] = {}
    for shape in LAYERS:
        row = {str(s): layer_ratio(shape, s, rounds, reps) for s in SPARSITIES}
        layers[f"{shape[0]}x{shape[1]}"] = row
        print(f"{shape[0]:>4d}x{shape[1]:<4d} " + "  ".join(f"{s}: {v['ratio']:.2f} ({v['range'][0]:.2f}-"
                                                           f"{v['range'][1]:.2f})" for s, v in row.items()))
    print("LeNet-5's conv layers, forward: unfold + CSR / dense conv2d (unfold alone / dense)")
    convs: dict[str, dict] = {}
    for conv in CONVS:
        row = {str(s): conv_ratio(conv, s, rounds, max(1, reps // 5)) for s in (0.9, 0.99)}
        convs["{}x{}x{}x{} on {}x{}".format(*conv[:3], conv[2], conv[3], conv[3])] = row
        print(f"{conv[0]:>3d}x{conv[1]}x{conv[2]}x{conv[2]} " + "  ".join(
            f"{s}: {v['ratio']:.2f} ({v['unfold_ratio']:.2f})" for s, v in row.items()))
    target = epochs["lenet300"]["0.98"]["sparse"]["ratio"]
    print(f"target: a lenet300 epoch at s = 0.98 at most half the dense one: {target:.3f} "
          f"({'met' if target <= 0.5 else 'NOT met'}; the FLOPs say 0.02)")
    latest = ROOT / "benchmarks" / "latest.json"
    out = json.loads(latest.read_text()) if latest.exists() else {}  # keys measured elsewhere stay
    out["sparse_compute"] = {
        "machine": machine, "quick": args.quick, "rounds": rounds, "examples": n, "batch": BATCH,
        "rule_version": sparse.RULE_VERSION, "load": _load(),
        "what": "epoch time sparse / masked dense and auto / masked dense (median over interleaved rounds, "
                "range: min and max); layers: one layer's forward and both gradients; convs: forward only",
        "target_lenet300_098": {"bound": 0.5, "ratio": target, "met": target <= 0.5},
        "epochs": epochs, "layers": layers, "convs": convs,
    }
    latest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {latest}")
    return 0


def _load() -> list[float] | None:
    """The machine's load averages (1, 5, 15 minutes) as the bench ends: how shared it was."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
