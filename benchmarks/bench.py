"""initprune's speed, each figure a ratio of A against its reference B, measured in one process.

    python benchmarks/bench.py [--quick] [--skip-demo | --demo-only]     (make bench)
    python benchmarks/bench.py --table      (the README's Markdown table, from latest.json)

Synthetic tensors of the real shapes (no download). The machine is shared and its load changes
from second to second, so no absolute time means anything: A and B are timed back to back,
interleaved over several rounds (the order alternating), and each round gives one ratio A/B;
the table prints the median and the min/max of those per-round ratios, and every target is such
a ratio. benchmarks/latest.json keeps every key. Timing lives here, never in a unit test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import prune as torch_prune

import initprune
from initprune import masks, models, pruners, seeds
from initprune import train as loop
from initprune.data import Batches
from initprune.train import Settings, Trainee, Trainer

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {  # key: (comparison, bound) on the median per-round ratio; None: reported only
    "mask_overhead_vs_dense": ("<=", 1.05),
    "torch_prune_overhead_vs_dense": None,
    "epoch_speedup_vs_per_sample_loader": (">=", 5.0),
    "epoch_vs_matmul_bound": ("<=", 1.3),
    "kstarts_halving_cost_vs_full": ("<=", 0.4),
    "kstarts_full_cost_vs_dense_epochs": ("<=", 8.0),
    # the rule of initprune/stacking.py: a cell stacks on a device only where its ratio is under 1
    "seeds_stacked_vs_sequential": ("<=", 1.0),
    "seeds_stacked_vs_sequential_lenet300": None,
    "demo_seconds": None,  # an absolute time on a shared machine: reported, not a target
}


def timed(fn, reps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


def paired(a, b, rounds: int, warmup: int = 1) -> list[float]:
    """Per-round ratios time(a) / time(b), a and b run back to back in each round, the order
    alternating (ABBA...), so that a change of the machine's load hits both sides alike."""
    for _ in range(warmup):
        a()
        b()
    out = []
    for r in range(rounds):
        first, second = (a, b) if r % 2 == 0 else (b, a)
        t1 = _seconds(first)
        t2 = _seconds(second)
        ta, tb = (t1, t2) if r % 2 == 0 else (t2, t1)
        out.append(ta / tb)
    return out


def _seconds(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def mnist_like(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def trainer_for(x, y, batch=128, epochs=1):
    return Trainer(Batches(x, y, batch, seed=0), None, None, Settings(batch_size=batch), "cpu", epochs)


# ---- mask enforcement ----------------------------------------------------------------------

def step_loop(arch: str, sparsity: float | None, steps: int, use_torch_prune=False):
    """A function that runs ``steps`` training steps of ``arch`` (dense, masked, or torch.prune)."""
    x, y = mnist_like(steps * 128)
    model = models.build(arch, (1, 28, 28), 10, 0)
    settings = Settings(batch_size=128)
    if use_torch_prune:
        mask = masks.select(masks.random_scores(model, seeds.generator(0, "masks")), sparsity)
        for name, module in model.named_modules():
            if isinstance(module, masks.PRUNABLE):
                torch_prune.custom_from_mask(module, "weight", mask[f"{name}.weight"])
        opt = settings.make(model.parameters())
        batches = [(x[i * 128:(i + 1) * 128], y[i * 128:(i + 1) * 128]) for i in range(steps)]

        def run():
            for xb, yb in batches:
                opt.zero_grad(set_to_none=False)
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
        return run
    mask = (masks.dense(model) if sparsity is None else
            masks.select(masks.random_scores(model, seeds.generator(0, "masks")), sparsity))
    trainee = Trainee(model, settings, mask)
    trainer = trainer_for(x, y)
    batches = [(x[i * 128:(i + 1) * 128], y[i * 128:(i + 1) * 128]) for i in range(steps)]

    def run():
        for xb, yb in batches:
            trainer._step(trainee, xb, yb, None)
    return run


def bench_masks(reps: int, steps: int) -> dict:
    out = {}
    for arch in ("lenet300", "lenet5"):
        dense = step_loop(arch, None, steps)
        out[arch] = {"ours": paired(step_loop(arch, 0.9, steps), dense, reps),
                     "torch_prune": paired(step_loop(arch, 0.9, steps, use_torch_prune=True), dense, reps),
                     "dense_step_ms": 1000 * statistics.median(timed(dense, 3)) / steps}
    worst = max(out, key=lambda a: statistics.median(out[a]["ours"]))
    worst_torch = max(out, key=lambda a: statistics.median(out[a]["torch_prune"]))
    return {"mask_overhead_vs_dense": (out[worst]["ours"], f"{worst}, 90% sparse, batch 128"),
            "torch_prune_overhead_vs_dense": (out[worst_torch]["torch_prune"], f"{worst_torch}, custom_from_mask"),
            "_detail": {a: {k: (statistics.median(v) if isinstance(v, list) else v) for k, v in d.items()}
                        for a, d in out.items()}}


# ---- data loading --------------------------------------------------------------------------

class PerSampleMNIST(torch.utils.data.Dataset):
    """The loop most pruning code runs: each sample through PIL, ToTensor and Normalize."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        from torchvision import transforms

        self.images, self.labels = images, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i], mode="L")), int(self.labels[i])


def bench_epoch(reps: int, n: int) -> dict:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    x = (torch.from_numpy(images).float().unsqueeze(1) / 255 - 0.1307) / 0.3081
    y = torch.from_numpy(labels).long()

    def ours_epoch():
        model = models.build("lenet300", (1, 28, 28), 10, 0)
        trainee = Trainee(model, Settings(batch_size=128), masks.dense(model))
        trainer = trainer_for(x, y)
        trainer.advance(trainee, len(trainer.train_batches))

    def loader_epoch():
        model = models.build("lenet300", (1, 28, 28), 10, 0)
        opt = Settings(batch_size=128).make(model.parameters())
        loader = torch.utils.data.DataLoader(PerSampleMNIST(images, labels), batch_size=128, shuffle=True)
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

    bound = matmul_bound(n, 128)
    speedup = [1 / r for r in paired(ours_epoch, loader_epoch, max(2, reps // 2))]
    to_bound = paired(ours_epoch, bound, reps)
    return {"epoch_speedup_vs_per_sample_loader": (speedup, f"lenet300, {n} images, batch 128"),
            "epoch_vs_matmul_bound": (to_bound, f"lenet300, {n} images: its steps' dense matmuls alone"),
            "_detail": {"ours_epoch_s": statistics.median(timed(ours_epoch, 2)),
                        "matmul_bound_s": statistics.median(timed(bound, 2))}}


def matmul_bound(n: int, batch: int, sizes=((784, 300), (300, 100), (100, 10))):
    """The dense matrix multiplies of one lenet300 epoch, same shapes, into preallocated outputs:
    per step the forward (x W^T per layer), the weights' gradients (g^T h per layer) and the
    inputs' gradients (g W per layer but the first). What an epoch cannot go below."""
    batches = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    g = torch.Generator().manual_seed(0)
    w = [torch.randn(o, i, generator=g) for i, o in sizes]
    gw = [torch.empty(o, i) for i, o in sizes]
    plans = {}
    for b in set(batches):
        h = [torch.randn(b, i, generator=g) for i, _ in sizes]  # each layer's input
        out = [torch.empty(b, o) for _, o in sizes]  # each layer's output, and its gradient
        gin = [torch.empty(b, i) for i, _ in sizes]
        plans[b] = (h, out, gin)

    def run():
        for b in batches:
            h, out, gin = plans[b]
            for layer in range(len(sizes)):
                torch.mm(h[layer], w[layer].t(), out=out[layer])
            for layer in range(len(sizes)):
                torch.mm(out[layer].t(), h[layer], out=gw[layer])
                if layer:
                    torch.mm(out[layer], w[layer], out=gin[layer])
    return run


# ---- K-starts ------------------------------------------------------------------------------

def kstarts_phase(selection: str, x, y, k=8) -> float:
    model = models.build("lenet300", (1, 28, 28), 10, 0)
    trainer = trainer_for(x, y, epochs=1)
    trainee = Trainee(model, Settings(batch_size=128), masks.dense(model))
    ctx = pruners.Context(trainer, trainee, seeds.generator(0, "masks"))
    began = time.perf_counter()
    pruners.KStarts(0.9, k=k, selection=selection).prune(ctx)
    return time.perf_counter() - began


def bench_kstarts(reps: int, n: int) -> dict:
    x, y = mnist_like(n)

    def full():
        kstarts_phase("full", x, y)

    def halving():
        kstarts_phase("halving", x, y)

    def dense_epoch():
        model = models.build("lenet300", (1, 28, 28), 10, 0)
        trainer = trainer_for(x, y)
        t = Trainee(model, Settings(batch_size=128), masks.dense(model))
        trainer.run(t, 1)  # with its evaluation, like each candidate's epoch
    return {"kstarts_halving_cost_vs_full": (paired(halving, full, reps, warmup=0), "k=8, one warm-up epoch, lenet300"),
            "kstarts_full_cost_vs_dense_epochs": (paired(full, dense_epoch, reps), "k=8, E_w=1: naive is 8")}


def bench_halving_agreement(seeds_: int = 10) -> dict:
    """Do halving and full pick the same candidate, and train as well? digits, s=0.95, 20 epochs."""
    rows = []
    for seed in range(seeds_):
        full = initprune.run(initprune.RunSpec(method="kstarts", sparsity=0.95, epochs=20, seed=seed))
        half = initprune.run(initprune.RunSpec(method="kstarts", sparsity=0.95, epochs=20, seed=seed,
                                                 options={"selection": "halving"}))
        rows.append((full.extra["winner"] == half.extra["winner"], full.test_accuracy,
                     half.test_accuracy))
    return {"agreement": sum(r[0] for r in rows) / len(rows),
            "full_accuracy": statistics.mean(r[1] for r in rows),
            "halving_accuracy": statistics.mean(r[2] for r in rows),
            "seeds": seeds_}


# ---- seeds that train together (initprune/stacking.py) --------------------------------------------

def seeds_epoch(arch: str, shape, n: int, batch: int, k: int, stacked: bool):
    """A function that trains k seeds of ``arch`` (90% random masks) for one epoch each, on
    their own data orders, one by one or as one stack, at 1 thread (the rule's count)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)
    settings = Settings(batch_size=batch)

    def run():
        pairs = []
        for seed in range(k):
            model = models.build(arch, shape, 10, seed)
            mask = masks.select(masks.random_scores(model, seeds.generator(seed, "masks")), 0.9)
            trainer = Trainer(Batches(x, y, batch, seed=seed), None, None, settings, "cpu", 1)
            pairs.append((trainer, Trainee(model, settings, mask)))
        saved = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if stacked:
                loop.train_stacked(pairs, pairs[0][0].steps_per_epoch)
            else:
                for trainer, trainee in pairs:
                    trainer.run(trainee, 1)
        finally:
            torch.set_num_threads(saved)
    return run


def bench_stack(reps: int, quick: bool = False) -> dict:
    """Sequential against stacked epochs of 8 seeds: digits / mlp (1,257 inputs, batch 32, the
    rule's cell) and lenet300 (synthetic MNIST, batch 128: the rule says no)."""
    out = {}
    for key, arch, shape, n, batch in (("seeds_stacked_vs_sequential", "mlp", (1, 8, 8), 1257, 32),
                                       ("seeds_stacked_vs_sequential_lenet300", "lenet300", (1, 28, 28),
                                        1280 if quick else 5120, 128)):
        a, b = (seeds_epoch(arch, shape, n, batch, 8, stacked) for stacked in (True, False))
        out[key] = (paired(a, b, reps), f"{arch}, 8 seeds, one epoch of {n} inputs each, batch {batch}, 1 thread")
    return out


# ---- make demo -----------------------------------------------------------------------------

def bench_demo(keep: str | None = None) -> dict:
    """`make demo` from a clean store (the environment already set up), in a scratch store, or
    in ``keep`` (a new folder) to look at its figures afterwards."""
    with (contextlib.nullcontext(keep) if keep else tempfile.TemporaryDirectory()) as tmp:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
               "INITPRUNE_FIGURES": f"{tmp}/figures"}
        began = time.perf_counter()
        subprocess.run(["make", "demo"], cwd=ROOT, env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - began
    return {"demo_seconds": ([seconds], "make demo, clean store, .venv present")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions and images (a smoke run)")
    p.add_argument("--skip-demo", action="store_true", help="do not time make demo")
    p.add_argument("--demo-only", action="store_true",
                   help="time make demo alone and update demo_seconds in latest.json, keeping the rest")
    p.add_argument("--keep", help="with --demo-only: a new folder to keep the demo's store and figures in")
    p.add_argument("--table", action="store_true", help="print the README's Markdown table from latest.json")
    p.add_argument("--stack-only", action="store_true",
                   help="time stacked against sequential seeds alone and update their keys in latest.json")
    args = p.parse_args(argv)
    if args.stack_only:
        latest = ROOT / "benchmarks" / "latest.json"
        out = json.loads(latest.read_text()) if latest.exists() else {}
        for key, (values, what) in bench_stack(3 if args.quick else 7, args.quick).items():
            print(f"{key:38s} {min(values):8.3f} {statistics.median(values):8.3f} {max(values):8.3f}  {what}")
            out.update({key: statistics.median(values), f"{key}_range": [min(values), max(values)]})
            out.setdefault("what", {})[key] = what
        latest.write_text(json.dumps(out, indent=1) + "\n")
        return 0
    if args.table:
        print(markdown_table(json.loads((ROOT / "benchmarks" / "latest.json").read_text())))
        return 0
    if args.demo_only:
        if args.keep and Path(args.keep).exists():
            p.error(f"--keep {args.keep} exists; give a new folder, so that the store starts clean")
        seconds = bench_demo(args.keep)["demo_seconds"][0][0]
        latest = ROOT / "benchmarks" / "latest.json"
        out = json.loads(latest.read_text()) if latest.exists() else {}
        out.update(demo_seconds=seconds, demo_seconds_range=[seconds, seconds])
        latest.write_text(json.dumps(out, indent=1) + "\n")
        print(f"make demo, clean store, .venv present: {seconds:.1f} s")
        return 0
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the bench measures the whole machine
    reps = 3 if args.quick else 7  # rounds of each pair
    results, details = {}, {}
    for part in (bench_masks(reps, 20 if args.quick else 60),
                 bench_epoch(max(2, reps // 2), 10_000 if args.quick else 60_000),
                 bench_kstarts(max(2, reps // 2), 5_000 if args.quick else 20_000),
                 bench_stack(reps, args.quick)):
        details.update(part.pop("_detail", {}))
        results.update(part)
    if not args.skip_demo:
        results.update(bench_demo())
    agreement = bench_halving_agreement(3 if args.quick else 10)

    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
               f"torch {torch.__version__}")
    print(f"initprune benchmarks on {machine}")
    print("each figure: the per-round ratios A/B of A and B timed interleaved (only ratios mean anything here)")
    print(f"{'key':38s} {'min':>8s} {'median':>8s} {'max':>8s}  target   met   what")
    latest = ROOT / "benchmarks" / "latest.json"
    out = json.loads(latest.read_text()) if latest.exists() else {}  # keys measured elsewhere stay
    out.update(machine=machine, quick=args.quick)
    for key, (values, what) in results.items():
        med = statistics.median(values)
        target = TARGETS[key]
        ok = target is not None and (med <= target[1] if target[0] == "<=" else med >= target[1])
        met = "" if target is None else ("yes" if ok else "NO")
        goal = "report" if target is None else f"{target[0]} {target[1]:g}"
        print(f"{key:38s} {min(values):8.3f} {med:8.3f} {max(values):8.3f}  {goal:8s} {met:4s}  {what}")
        out[key] = med
        out[f"{key}_range"] = [min(values), max(values)]
        out.setdefault("what", {})[key] = what
    print(f"halving vs full over {agreement['seeds']} seeds on digits (s=0.95): same winner "
          f"{agreement['agreement']:.0%}, test accuracy {agreement['full_accuracy']:.4f} (full) vs "
          f"{agreement['halving_accuracy']:.4f} (halving)")
    out["halving_agreement"] = agreement
    out["details"] = details
    latest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {latest}")
    return 0


def markdown_table(latest: dict) -> str:
    """The README's table of benchmarks/latest.json: median ratio, its spread over rounds, the target."""
    lines = ["| benchmark | median | min - max over rounds | target | met |", "| --- | --- | --- | --- | --- |"]
    for key, target in TARGETS.items():
        if key not in latest:
            continue
        med, (low, high) = latest[key], latest.get(f"{key}_range", [latest[key]] * 2)
        ok = target is not None and (med <= target[1] if target[0] == "<=" else med >= target[1])
        goal = "reported" if target is None else f"{target[0]} {target[1]:g}"
        met = "" if target is None else ("yes" if ok else "no")
        what = latest.get("what", {}).get(key, "")
        lines.append(f"| `{key}`{f' ({what})' if what else ''} | {med:.3g} | {low:.3g} - {high:.3g} | {goal} | {met} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
