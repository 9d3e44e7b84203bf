"""A profile's wall time under ``compute: dense`` and under ``compute: auto``, run as a user runs it.

    python benchmarks/profile_compute.py [--profile offline] [--seeds 0] [--jobs 2] [--out FILE]

Issue "Sparse compute" asks for the whole offline profile run twice, dense then auto, and the ratio
of the two wall times. The whole profile is 966 points, about 1.5 h under auto on a 2-core machine,
so by default this runs a declared slice of it: every execution of the profile with its seeds cut
to ``--seeds`` (seed 0: 98 points, every method, schedule, regime, sparsity and cell of the
profile, once). The slice is written to a temporary profile twice, with ``compute`` set to dense
and to auto in its defaults (no execution of the offline profile sets its own), and each is run by
``python -m initprune sweep --jobs N`` into a fresh temporary store, dense first, as the issue
orders it: the wall seconds of each command (``wall_s``, start-up and a new store's creation
included), the seconds the sweep itself reports from its first execution to its summary
(``sweep_s``), the CPU seconds of its processes (the children's user + system time: what a machine
shared with other work does not inflate), and the ratios.
``--seeds all`` keeps the profile's seeds: the whole profile.

Written to ``benchmarks/profile_compute.json``. Needs Fashion-MNIST (``make data``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPUTES = ("dense", "auto")


def slice_of(profile: dict, seeds: list[int] | None, compute: str) -> dict:
    """The profile with every execution's seeds cut to ``seeds`` (None: kept) and ``compute`` in its
    defaults."""
    out = json.loads(json.dumps(profile))
    defaults = out.setdefault("defaults", {})
    if any("compute" in ex for ex in out["executions"]):
        raise SystemExit("an execution of this profile sets its own compute: the two runs would not differ there")
    defaults["compute"] = compute
    if seeds is not None:
        defaults["seeds"] = seeds
        for ex in out["executions"]:
            if "seeds" in ex:
                ex["seeds"] = seeds
    return out


def sweep(path: Path, store: Path, jobs: int) -> dict:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db", "PYTHONUNBUFFERED": "1"}
    env.pop("INITPRUNE_EXPERIMENT", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", str(path), "--jobs", str(jobs)],
                          cwd=ROOT, env=env, text=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"the sweep of {path.name} failed ({done.returncode}):\n{tail}")
    counts = re.findall(r"points (\d+)/(\d+)", done.stdout)
    own = re.findall(r"skipped, in (\d+)s", done.stdout)
    return {"wall_s": round(wall, 1), "sweep_s": int(own[-1]) if own else None,
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "points": int(counts[-1][1]) if counts else None, "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "last_line": done.stdout.strip().splitlines()[-1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="offline", help="a profile's name (notebooks/profiles/NAME.yaml)")
    ap.add_argument("--seeds", nargs="+", default=["0"], help="the seeds every execution keeps, or: all")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "profile_compute.json")
    args = ap.parse_args(argv)
    seeds = None if args.seeds == ["all"] else [int(s) for s in args.seeds]
    profile = yaml.safe_load((ROOT / "notebooks" / "profiles" / f"{args.profile}.yaml").read_text())
    runs = {}
    with tempfile.TemporaryDirectory(prefix="profile-compute-") as tmp:
        for compute in COMPUTES:
            path = Path(tmp) / f"{args.profile}-{compute}.yaml"
            path.write_text(yaml.safe_dump(slice_of(profile, seeds, compute), sort_keys=False))
            store = Path(tmp) / compute
            store.mkdir()
            print(f"{compute}: sweep --profile {path.name} --jobs {args.jobs} ...", flush=True)
            runs[compute] = sweep(path, store, args.jobs)
            print(f"  {runs[compute]}", flush=True)
    result = {
        "what": (f"notebooks/profiles/{args.profile}.yaml, seeds {'as declared' if seeds is None else seeds} in every "
                 f"execution, run by `initprune sweep --jobs {args.jobs}` into a fresh store under compute dense, "
                 "then auto; wall_s: the command's wall clock; sweep_s: the sweep's own; "
                 "cpu_s: its processes' user + system seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
        "runs": runs,
        "ratio_wall_dense_over_auto": round(runs["dense"]["wall_s"] / runs["auto"]["wall_s"], 3),
        "ratio_sweep_dense_over_auto": round(runs["dense"]["sweep_s"] / runs["auto"]["sweep_s"], 3),
        "ratio_cpu_dense_over_auto": round(runs["dense"]["cpu_s"] / runs["auto"]["cpu_s"], 3),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"dense / auto: wall {result['ratio_wall_dense_over_auto']}x, cpu {result['ratio_cpu_dense_over_auto']}x "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
