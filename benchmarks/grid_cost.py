"""What a point of the offline grid costs: representative fashion_mnist / lenet300 points at the
grid's epochs, each trained with ``compute: dense`` and with ``compute: auto``.

    python benchmarks/grid_cost.py [--epochs 8] [--seeds 0 1] [--only NAME ...] [--out FILE]
    python benchmarks/grid_cost.py --predict offline [--out FILE]

One thread, one run at a time, untracked (``api.run``, as a sweep's notebook runs each point; the
dataset is loaded by each run, as there). Every run records its wall seconds and this process's
CPU seconds over it (``time.process_time``: user + system of every thread of the process): on a
machine shared with other work the wall clock counts the waits for a core and the CPU time does
not, so the profiles are sized from CPU seconds. Per seed the two computes alternate which goes
first. The points, at E = 8 (benchmarks/epochs.json) and k = 4 (the offline profiles'): the dense
network (random at 0.0), and random, dissipating (cubic), combined (cubic, k = 4) and K-starts
(k = 4) at 0.95, 0.98 and 0.99, every method layerwise. Each point's ``cpu_s_per_epoch`` divides
its median CPU seconds by the epochs it trains in all (``trained_epochs``: K-starts' candidates
counted), the unit of ``sweep --dry-run``'s estimate.

``--predict PROFILE`` sums, over the profile's fashion_mnist / lenet300 points, each point's CPU
seconds under auto and under dense, as the measured point of its kind at the nearest measured
sparsity gives them per trained epoch (kinds: dense; a mask final from the start, as random,
K-starts and the score-based baselines train; dissipating's schedule, as its controls train;
combined's, as K-starts followed by gradual random trains), and writes the predicted ratio of the
two grids' times under ``prediction`` (issue "Sparse compute" asks for the whole offline profile
run twice, dense then auto; this is that ratio for lenet300's points, predicted, not run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASET, ARCH = "fashion_mnist", "lenet300"
SPARSITIES = (0.95, 0.98, 0.99)
KINDS = {"random": {}, "dissipating": {"schedule": "cubic"}, "combined": {"schedule": "cubic", "k": 4},
         "kstarts": {"k": 4}}
# (name, method, sparsity, options): the measured points, the four the profiles are sized from first
FIRST = (("random", 0.98), ("dissipating", 0.98), ("combined", 0.98), ("kstarts", 0.95))
POINTS = (("dense", "random", 0.0, {}),
          *sorted(((f"{m}_{s:g}", m, s, o) for m, o in KINDS.items() for s in SPARSITIES),
                  key=lambda p: (p[1:3] not in FIRST, list(KINDS).index(p[1]), p[2])))
COMPUTES = ("dense", "auto")
# the controls profile's other cells: (dataset, arch, epochs), one dense network each under compute
# dense, for the dry run's seconds per epoch of the cell (benchmarks/latest.json)
CELLS = (("fashion_mnist", "autoencoder", 8), ("mnist5k", "lenet300", 10))
# how each method trains, for the prediction: the measured method whose schedule it shares
LIKE = {"random": "random", "kstarts": "kstarts", "dissipating": "dissipating", "combined": "combined",
        "gradual_random": "dissipating", "gradual_magnitude": "dissipating", "kstarts_gradual_random": "combined",
        "magnitude": "random", "snip": "random", "grasp": "random", "synflow": "random"}


def measure(method: str, sparsity: float, options: dict, compute: str, epochs: int, seed: int,
            dataset: str = DATASET, arch: str = ARCH) -> dict:
    """One untracked run, one thread: its wall and CPU seconds and the epochs it trained in all."""
    from initprune import api
    from initprune.spec import RunSpec

    spec = RunSpec(method=method, dataset=dataset, arch=arch, sparsity=sparsity, epochs=epochs, seed=seed,
                   options=options, training={"compute": compute}, device="cpu", threads=1)
    wall, cpu = time.perf_counter(), time.process_time()
    result = api.run(spec)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "trained_epochs": spec.pruner().trained_epochs(epochs),
            "training_seconds": round(result.training_seconds, 2) if result.training_seconds else None,
            result.metric: round(float(getattr(result, result.metric)), 4)}


def summary(runs: list[dict]) -> dict:
    """The median wall and CPU seconds of a point's runs, and per trained epoch."""
    wall, cpu = statistics.median(r["wall_s"] for r in runs), statistics.median(r["cpu_s"] for r in runs)
    epochs = runs[0]["trained_epochs"]
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "trained_epochs": epochs,
            "wall_s_per_epoch": round(wall / epochs, 3), "cpu_s_per_epoch": round(cpu / epochs, 3),
            "runs": runs}


def measure_all(args) -> dict:
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    points = stored.get("points", {})
    for name, method, sparsity, options in POINTS:
        if args.only and name not in args.only:
            continue
        runs: dict[str, list] = {c: [] for c in COMPUTES}
        for i, seed in enumerate(args.seeds):
            for compute in (COMPUTES if i % 2 == 0 else COMPUTES[::-1]):
                run = {"seed": seed, **measure(method, sparsity, options, compute, args.epochs, seed)}
                runs[compute].append(run)
                print(f"{name:18s} seed {seed} {compute:5s} wall {run['wall_s']:6.1f} s  cpu {run['cpu_s']:6.1f} s  "
                      f"({run['cpu_s'] / run['trained_epochs']:.2f} cpu s per trained epoch of "
                      f"{run['trained_epochs']:g})", flush=True)
        row = {"method": method, "sparsity": sparsity, "options": options, **{c: summary(runs[c]) for c in COMPUTES}}
        row["auto_over_dense_cpu"] = round(row["auto"]["cpu_s"] / row["dense"]["cpu_s"], 3)
        row["auto_over_dense_wall"] = round(row["auto"]["wall_s"] / row["dense"]["wall_s"], 3)
        points[name] = row
        import torch

        stored = {**stored,
                  "what": f"{DATASET}/{ARCH}, E = {args.epochs}, one thread, one run at a time, untracked (api.run, "
                          "data loading included); medians over seeds; cpu_s: time.process_time over the run, "
                          "what the profiles are sized from (the machine was shared: wall_s counts the waits)",
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
                  "load_after": [round(x, 2) for x in os.getloadavg()], "points": points}
        args.out.write_text(json.dumps(stored, indent=1) + "\n")  # each point kept as it is measured
    return stored


def measure_cells(args) -> dict:
    """The dense network of each of CELLS, compute dense, one run per seed: CPU seconds per epoch."""
    stored = json.loads(args.out.read_text()) if args.out.exists() else {}
    cells = stored.get("cells", {})
    for dataset, arch, epochs in CELLS:
        runs = [{"seed": seed, **measure("random", 0.0, {}, "dense", epochs, seed, dataset, arch)}
                for seed in args.seeds]
        cells[f"{dataset}/{arch}"] = {"epochs": epochs, "dense": summary(runs)}
        print(f"{dataset}/{arch}: {cells[f'{dataset}/{arch}']['dense']['cpu_s_per_epoch']:.3f} cpu s per epoch",
              flush=True)
        stored["cells"] = cells
        args.out.write_text(json.dumps(stored, indent=1) + "\n")
    return stored


def per_epoch(points: dict, method: str, sparsity: float, compute: str) -> float:
    """CPU seconds per trained epoch of a point, from the measured point of its kind at the
    nearest measured sparsity."""
    if sparsity == 0.0 or method == "dense":
        return points["dense"][compute]["cpu_s_per_epoch"]
    like = LIKE[method]
    near = min((p for p in points.values() if p["method"] == like and p["sparsity"] > 0),
               key=lambda p: abs(p["sparsity"] - sparsity))
    return near[compute]["cpu_s_per_epoch"]


def predict(profile: str, stored: dict) -> dict:
    """The profile's fashion_mnist / lenet300 points summed under each compute (CPU seconds)."""
    from initprune.lab.profiles import load_profile

    total = {c: 0.0 for c in COMPUTES}
    count, epochs = 0, 0.0
    for ex in load_profile(profile):
        for p in ex.points:
            if (p.dataset, p.arch) != (DATASET, ARCH):
                continue
            trained = p.pruner().trained_epochs(p.epochs)
            count, epochs = count + 1, epochs + trained
            for c in COMPUTES:
                total[c] += trained * per_epoch(stored["points"], p.method, p.sparsity, c)
    return {"profile": profile, "points": count, "trained_epochs": epochs,
            "cpu_s": {c: round(v) for c, v in total.items()},
            "dense_over_auto": round(total["dense"] / total["auto"], 3),
            "cpu_s_per_epoch": {c: round(v / epochs, 3) for c, v in total.items()},
            "how": "each point's trained epochs times the CPU seconds per trained epoch of the measured point of "
                   "its kind at the nearest measured sparsity (benchmarks/grid_cost.py, LIKE); fashion_mnist / "
                   "lenet300 points only (the grid's time; digits / mlp is a few percent of it)"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="the grid's E (default 8, benchmarks/epochs.json)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", help="measure only these points (" + ", ".join(p[0] for p in POINTS) + ")")
    parser.add_argument("--predict", metavar="PROFILE", help="only predict PROFILE's dense / auto ratio from --out")
    parser.add_argument("--cells", action="store_true", help="only the dense network of the other cells (CELLS)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "grid_cost.json")
    args = parser.parse_args(argv)
    if args.cells:
        measure_cells(args)
        return 0
    if args.predict:
        stored = json.loads(args.out.read_text())
        stored.setdefault("prediction", {})[args.predict] = found = predict(args.predict, stored)
        args.out.write_text(json.dumps(stored, indent=1) + "\n")
        print(json.dumps(found, indent=1))
        return 0
    measure_all(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
