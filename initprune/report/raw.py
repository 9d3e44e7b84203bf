"""The raw data behind a report (docs/method.md, "The verdict", raw data): ``runs.csv``, one row per
run (its resolved configuration, task, seed, metrics, effective sparsity, cost, training seconds
and run id), and ``per_example.npz``, per run id its test split's per-example record in test-set
order (``runs.csv`` says how many): a classifier's correctness as packed bits (``np.packbits``), an
autoencoder's squared errors as the float64 values its result holds. Every number of claims.json
can be recomputed from these two files alone (``recompute``), without the MLflow store.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InitpruneError
from ..tasks import TASKS
from . import metric

RUNS = "runs.csv"
PER_EXAMPLE = "per_example.npz"
# the run's configuration and what the verdict needs of it, then its metrics; dicts and lists as JSON
CONFIG = ("run_id", "method", "dataset", "arch", "task", "sparsity", "seed", "ablation", "epochs", "options",
          "training", "threads", "device", "version", "config_hash", "profile", "tested_sparsities")
METRICS = ("sparsity_actual", "effective_sparsity", "dead_classes", "training_seconds", "seconds")
JSON = ("options", "training", "tested_sparsities")


def _metrics() -> tuple:
    """Each registered task's test and validation metric (test_accuracy, val_accuracy,
    test_reconstruction_error, ...), then the rest of METRICS."""
    names = [f"{split}_{TASKS[t].metric}" for t in TASKS.names() for split in ("test", "val")]
    return tuple(dict.fromkeys(names)) + METRICS


def _record_field(task) -> str:
    """The field of a row's per-example record: its task's (a row without one is a classification)."""
    return metric.record_field(metric.task_name(task))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _cost(value) -> dict:
    """A run's cost as flat columns: cost_training, cost_inference, and any absolute FLOPs it holds."""
    return {f"cost_{k}": v for k, v in value.items()} if isinstance(value, dict) else {}


def write(table, out: str | Path) -> list[Path]:
    """``runs.csv`` and ``per_example.npz`` of a runs table (``results.runs_table``) into ``out``."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, records, columns = [], {}, CONFIG + _metrics()
    for r in table.to_dict("records"):
        row = {k: r.get(k) for k in columns}
        for k in JSON:
            row[k] = "" if _missing(row[k]) else json.dumps(row[k], sort_keys=True, default=str)
        row.update(_cost(r.get("cost")))
        record = r.get(_record_field(r.get("task")))
        row["test_examples"] = len(record) if metric.logged(record) else 0
        if row["test_examples"]:
            if _missing(r.get("run_id")) or not str(r["run_id"]) or "/" in str(r["run_id"]) or r["run_id"] in records:
                raise InitpruneError(f"a run with per-example records needs a run id of its own, without '/', to "
                                     f"be stored in {PER_EXAMPLE}, got {r.get('run_id')!r}")
            records[str(r["run_id"])] = (np.packbits(np.frombuffer(record.encode(), dtype=np.uint8) == ord("1"))
                                         if isinstance(record, str) else np.asarray(record, dtype=np.float64))
        rows.append(row)
    frame = pd.DataFrame(rows)
    first = [c for c in columns if c in frame]
    frame = frame[first + sorted(c for c in frame if c not in first)]
    frame.to_csv(out / RUNS, index=False)
    np.savez_compressed(out / PER_EXAMPLE, **records)
    return [out / RUNS, out / PER_EXAMPLE]


def read(out: str | Path):
    """The runs table that ``write`` stored in ``out``: its configuration (dicts and lists back from
    JSON), metrics and per-example records in the column of each row's task (correctness as a string
    of '0' and '1' again, squared errors as a list of floats)."""
    import pandas as pd

    out = Path(out)
    for name in (RUNS, PER_EXAMPLE):
        if not (out / name).is_file():
            raise InitpruneError(f"no {name} in {out}: `figures --out {out}` writes it beside claims.json")
    frame = pd.read_csv(out / RUNS, keep_default_na=False, na_values=[""], dtype={"run_id": str})
    frame = frame.astype(object).where(frame.notna(), None)
    for k in JSON:
        if k in frame:
            frame[k] = [None if v is None else json.loads(v) for v in frame[k]]
    packed = np.load(out / PER_EXAMPLE)
    tasks = frame["task"] if "task" in frame else [None] * len(frame)
    fields = {_record_field(t) for t in tasks}
    records = {f: [None] * len(frame) for f in fields | {"test_correct"}}
    for i, (run_id, n, task) in enumerate(zip(frame["run_id"], frame["test_examples"], tasks)):
        if not n:
            continue
        if run_id not in packed:
            raise InitpruneError(f"run {run_id} has {n} per-example results in {RUNS} but none in {PER_EXAMPLE}")
        values = packed[run_id]
        if values.dtype == np.uint8:  # correctness, packed
            bits = np.unpackbits(values, count=int(n))
            records[_record_field(task)][i] = (bits + ord("0")).astype(np.uint8).tobytes().decode("ascii")
        else:
            records[_record_field(task)][i] = values.tolist()
    return frame.assign(**records)


def recompute(out: str | Path) -> list[dict]:
    """claims.json's rows from ``runs.csv`` and ``per_example.npz`` in ``out`` alone."""
    from . import claims

    return claims.verdicts(read(out))
