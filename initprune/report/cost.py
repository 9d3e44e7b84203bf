"""A run's training cost as the report shows it (docs/method.md, "Cost"): its absolute training
FLOPs divided by one dense training of its cell's reference epochs, so that dense is 1.0 and
random trained 1.5x the epochs costs 1.5x what random at the reference epochs costs; never
relative to the run's own epochs.

Each result's ``cost`` holds ``training_flops`` (every step and scoring pass of the run) and
``dense_epoch_flops`` (one dense epoch of its model). The reference epochs are the cell's
declaration (a profile's ``reference_epochs``, the runs table's column of that name), else the
epochs of the cell's dense points (the number most of them trained, the smallest on a tie). A run
stored without the absolute FLOPs, or in a cell with neither a declaration nor dense points, has
no training cost here ("cost n/a"), never one normalised by its own epochs.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from . import common

TRAINING, DENSE_EPOCH = "training_flops", "dense_epoch_flops"  # the result's absolute counts (cost dict)


def _number(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def reference_epochs(table) -> dict:
    """{(dataset, arch): the epochs of one dense training the cell's cost is relative to}: the epochs
    its executions declared (``reference_epochs``; the largest where two declared different ones,
    so no cost reads cheaper than declared), else those most of its dense points trained."""
    out: dict = {}
    declared = table["reference_epochs"] if "reference_epochs" in table else [None] * len(table)
    for d, a, value in zip(table["dataset"], table["arch"], declared):
        value = _number(value)
        if not math.isnan(value):
            out[(d, a)] = max(out.get((d, a), 0), int(value))
    epochs = table["epochs"] if "epochs" in table else [None] * len(table)
    counts: dict = {}
    for d, a, m, e in zip(table["dataset"], table["arch"], table["method"], epochs):
        if (d, a) not in out and common.dense(m) and not math.isnan(_number(e)):
            counts.setdefault((d, a), Counter())[int(e)] += 1
    for key, found in counts.items():
        most = max(found.values())
        out[key] = min(e for e, n in found.items() if n == most)
    return out


def training(table) -> np.ndarray:
    """Each run's training cost: ``training_flops`` / (reference epochs x ``dense_epoch_flops``);
    NaN where the run lacks the absolute FLOPs or its cell has no reference."""
    reference = reference_epochs(table)
    column = table["cost"] if "cost" in table else [None] * len(table)
    out = []
    for d, a, c in zip(table["dataset"], table["arch"], column):
        c = c if isinstance(c, dict) else {}
        flops, epoch = _number(c.get(TRAINING)), _number(c.get(DENSE_EPOCH))
        epochs = reference.get((d, a))
        out.append(flops / (epochs * epoch) if epochs and epoch > 0 else math.nan)
    return np.array(out, dtype=float)


def seconds(table) -> np.ndarray:
    """Each run's measured ``training_seconds``; NaN where it was not recorded."""
    column = table["training_seconds"] if "training_seconds" in table else [None] * len(table)
    return np.array([_number(v) for v in column], dtype=float)
