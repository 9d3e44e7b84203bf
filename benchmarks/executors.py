"""Wall time of the smoke sweep on each executor, on this machine (`make bench-executors`).

The local process pool (--jobs 2), then a two-node Ray cluster and a Dask scheduler with two
workers on 127.0.0.1 (started here, as the tests start them), logging to a real MLflow server.
Each sweep starts from an empty experiment; the time is the whole `python -m initprune sweep`
process, start-up and connection included, with the clusters already up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from clusters import RAY_ENV, Services, dask_cluster, mlflow_server, ray_cluster  # noqa: E402


def timed_sweep(uri: str, experiment: str, *flags: str) -> float:
    env = {**os.environ, **RAY_ENV, "MLFLOW_TRACKING_URI": uri, "INITPRUNE_EXPERIMENT": experiment,
           "INITPRUNE_OFFLINE": "1"}
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", "smoke", *flags], env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if out.returncode != 0:
        raise SystemExit(f"the smoke sweep failed on {flags or 'local'}:\n{out.stdout}{out.stderr}")
    return seconds


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows["local, --jobs 2, sqlite"] = timed_sweep(f"sqlite:///{tmp}/local.db", "bench", "--jobs", "2")
        services = Services(tmp)
        try:
            server = mlflow_server(services, tmp / "server")
            rows["local, --jobs 2, MLflow server"] = timed_sweep(server, "local", "--jobs", "2")
            ray = ray_cluster(services)
            rows["ray, 2 nodes x 1 CPU"] = timed_sweep(server, "ray", "--executor", "ray", "--ray-address", ray)
            services.stop()
            services = Services(tmp)
            server = mlflow_server(services, tmp / "server2")
            dask = dask_cluster(services)
            rows["dask, 2 workers x 1 thread"] = timed_sweep(server, "dask", "--executor", "dask",
                                                            "--dask-scheduler", dask)
        finally:
            services.stop()
    print(f"{'smoke sweep (6 executions, 14 points)':40s} wall time")
    for name, seconds in rows.items():
        print(f"{name:40s} {seconds:6.1f} s")
    (ROOT / "benchmarks" / "executors.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
