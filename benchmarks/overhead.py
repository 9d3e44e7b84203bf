"""How much of a sweep's wall time is spent outside its points: kernels starting, imports, data
loading, notebooks stored, and cores left idle at the end.

    python benchmarks/overhead.py --store mlruns/mlflow.db            # every sweep in a store
    python benchmarks/overhead.py --run tests/profiles/three.yaml     # run a profile in a new store, then read it

Per sweep, from the MLflow store alone: its wall time (first execution's start to last one's end)
times its jobs is what it had; the time its point runs covered (a point's data, pruning, training,
evaluation and logging; seeds trained as one stack overlap and count once) is what it used for
points; the rest is overhead, split into what each execution spent around its points (kernel
start-up, imports, the notebook's plot and storage) and what no execution used (idle cores).
Only FINISHED runs count: a failed or killed attempt's time shows as idle. Issue 23 asks for at
most 5% outside the points' training.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(db: Path, jobs: int) -> list[dict]:
    """One dict per sweep in the store ``db``: its wall time, executions, points and overhead."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT s.value, k.value, r.run_uuid, r.start_time, r.end_time, p.value FROM runs r "
            "JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = 'kind' "
            "LEFT JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = 'sweep' "
            "LEFT JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = 'mlflow.parentRunId' "
            "WHERE r.status = 'FINISHED' AND r.lifecycle_stage = 'active' "
            "AND k.value IN ('execution', 'point')").fetchall()
    # a notebook run by hand opens an execution of no sweep: it is no sweep's time
    executions = {run: (sweep, start, end) for sweep, kind, run, start, end, _ in rows
                  if kind == "execution" and sweep}
    spans = {}  # each execution's point runs, as (start, end)
    for _, kind, _, start, end, parent in rows:
        if kind == "point" and parent in executions:
            spans.setdefault(parent, []).append((start, end))
    out = {}
    for parent, intervals in spans.items():
        s = out.setdefault(executions[parent][0], {"points": 0, "point_s": 0.0})
        s["points"] += len(intervals)
        s["point_s"] += _covered(intervals) / 1000  # seeds trained as one stack overlap: counted once
    for sweep, start, end in executions.values():
        s = out.setdefault(sweep, {"points": 0, "point_s": 0.0})
        s["executions"] = s.get("executions", 0) + 1
        s["execution_s"] = s.get("execution_s", 0.0) + (end - start) / 1000
        s["first"], s["last"] = min(s.get("first", start), start), max(s.get("last", end), end)
    report = []
    for sweep, s in out.items():
        wall = (s["last"] - s["first"]) / 1000
        had = max(wall * jobs, 1e-9)
        report.append({"sweep": sweep, "jobs": jobs, "wall_s": wall, "executions": s["executions"],
                       "points": s["points"], "point_s": s["point_s"],
                       "around_points_s": s["execution_s"] - s["point_s"], "idle_s": had - s["execution_s"],
                       "outside_points": 1 - s["point_s"] / had,
                       "per_execution_s": (s["execution_s"] - s["point_s"]) / s["executions"]})
    return report


def _covered(intervals: list[tuple[int, int]]) -> int:
    """The length of the union of the intervals."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start > reach:
            total, reach = total + end - start, end
        elif end > reach:
            total, reach = total + end - reach, end
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, help="an MLflow sqlite file (mlruns/mlflow.db)")
    where.add_argument("--run", help="a profile to sweep in a new temporary store first")
    p.add_argument("--jobs", type=int, default=2, help="the sweeps' --jobs, the same for every sweep of the store "
                   "(default 2)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.store
        if args.run:
            db = Path(tmp) / "mlflow.db"
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", args.run, "--jobs",
                            str(args.jobs)], check=True, cwd=ROOT,
                           env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"})
            print(f"the sweep command took {time.perf_counter() - began:.1f} s")
        for r in measure(db, args.jobs):
            print(f"sweep {r['sweep'][:8]}: {r['executions']} executions, {r['points']} points, wall "
                  f"{r['wall_s']:.1f} s x {r['jobs']} jobs; points {r['point_s']:.1f} s, around them "
                  f"{r['around_points_s']:.1f} s ({r['per_execution_s']:.1f} s per execution), idle "
                  f"{r['idle_s']:.1f} s: {r['outside_points']:.1%} outside the points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
