"""How many epochs the verdict's grid trains: dense LeNet-300-100 on Fashion-MNIST at E and 2E.

    python benchmarks/epochs.py [--jobs 2] [--all] [--seeds 0 1 2] [--candidates 6 8 10 12 16] [--out FILE]

The grid's epochs E are the smallest of {6, 8, 10, 12, 16} at which training twice as long gains
the dense network less than half a point: mean dense(2E) - mean dense(E) < 0.5 points of test
accuracy over the seeds (docs/method.md, the grid). Each run trains its own cosine schedule over
its own epochs (the dataset's settings), so the accuracy at E is a run of E epochs, never epoch E
of a longer run. Each E is tried in increasing order and the script stops at the first that
passes (its 2E already trained is reused by a larger E); ``--all`` measures every E. One thread
per run, ``--jobs`` runs at once. Prints a line per E; ``--out`` writes the accuracies as JSON,
and the runs already in it (a run before) are read back, not trained again.

benchmarks/epochs.json holds the measurement of 2026-12-06 (seeds 0-2, every E): dense 88.72% at
6 epochs, 89.14% at 8, 89.23% at 10, 89.41% at 12, 89.50% at 16, 89.35% at 32; E = 8 (gap +0.35
points; +0.69 at 6). About 3 s per epoch, one thread, two runs at once on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CANDIDATES = (6, 8, 10, 12, 16)
GAP = 0.5  # points of test accuracy
DATASET, ARCH = "fashion_mnist", "lenet300"


def dense(epochs: int, seed: int) -> tuple[int, int, float, float]:
    """(epochs, seed, test accuracy, seconds) of one dense run, untracked."""
    from initprune import api
    from initprune.spec import RunSpec

    began = time.perf_counter()
    result = api.run(RunSpec(method="dense", dataset=DATASET, arch=ARCH, sparsity=0.0, epochs=epochs, seed=seed,
                             device="cpu", threads=1))
    return epochs, seed, float(result.test_accuracy), time.perf_counter() - began


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (default 2)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--candidates", type=int, nargs="+", default=list(CANDIDATES), help="the E to try, in order")
    parser.add_argument("--all", action="store_true", help="measure every E, not only up to the first that passes")
    parser.add_argument("--out", type=Path, help="write {epochs: {seed: accuracy}} and the answer here (JSON)")
    args = parser.parse_args(argv)

    accuracy: dict[int, dict[int, float]] = {}
    if args.out and args.out.exists():
        stored = json.loads(args.out.read_text())
        accuracy = {int(n): {int(s): a for s, a in v.items()} for n, v in stored["accuracy"].items()}
    seconds: list[float] = []
    chosen = None
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for e in args.candidates:
            wanted = [(n, s) for n in (e, 2 * e) for s in args.seeds if s not in accuracy.get(n, {})]
            for n, s, acc, took in pool.map(dense, [n for n, _ in wanted], [s for _, s in wanted]):
                accuracy.setdefault(n, {})[s] = acc
                seconds.append(took / n)
            short, long = (100 * statistics.mean(accuracy[n].values()) for n in (e, 2 * e))
            passes = long - short < GAP
            print(f"E = {e:2d}: dense {short:.2f}%, 2E = {2 * e:2d}: {long:.2f}%, gap {long - short:+.2f} points"
                  f"{' < ' if passes else ' >= '}{GAP}", flush=True)
            if passes and chosen is None:
                chosen = e
                if not args.all:
                    break
    if seconds:
        print(f"seconds per epoch (one thread, {args.jobs} at once): median {statistics.median(seconds):.2f}")
    print(f"E = {chosen}" if chosen is not None else
          f"no E of {args.candidates} is within {GAP} points of 2E: take the largest the grid can afford")
    if args.out:
        args.out.write_text(json.dumps({"dataset": DATASET, "arch": ARCH, "seeds": args.seeds, "gap": GAP,
                                        "chosen": chosen, "accuracy": {str(n): {str(s): a for s, a in v.items()}
                                                                      for n, v in sorted(accuracy.items())}},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
