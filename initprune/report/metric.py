"""The report reads each run's metric through its task (initprune/tasks.py), never by the name
``accuracy``: a classifier's test accuracy (higher is better), an autoencoder's test
reconstruction error (lower is better).

``scored`` gives a runs table the column ``score``, the task's test metric of each row, and
``task``, the row's task (a result written before tasks were declared is a classification); every
figure, table and claim draws ``score`` and words it with ``axis``, ``words`` and ``better``.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InitpruneError
from ..tasks import TASKS

CLASSIFICATION = "classification"


def task_name(value) -> str:
    """A row's task: its ``task`` column, a classification where the table does not say."""
    return value if isinstance(value, str) and value else CLASSIFICATION


def task(name: str):
    """The task ``name`` (its class: the attributes the report reads); one line where it is not
    registered (a plugin that is not installed any more)."""
    if name not in TASKS:
        raise InitpruneError(f"a run of task '{name}', which is not registered here (tasks: "
                             f"{', '.join(TASKS.names())}); install the plugin that declares it")
    return TASKS[name]


def scored(table):
    """``table`` with the columns ``task`` and ``score`` (the row's test metric: the column its
    task names, NaN where the run has none). A table that already has ``score`` is returned as it is."""
    if "score" in table:
        return table
    names = [task_name(t) for t in table["task"]] if "task" in table else [CLASSIFICATION] * len(table)
    columns = {n: f"test_{task(n).metric}" for n in set(names)}
    values = {c: list(table[c]) if c in table else [None] * len(table) for c in set(columns.values())}
    scores = [_number(values[columns[n]][i]) for i, n in enumerate(names)]
    return table.assign(task=names, score=scores)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def of(table) -> str:
    """The one task of a table's runs (a panel's, a cell's); one line where it mixes two (a
    cell serves one: its architecture declares it)."""
    found = sorted(set(scored(table)["task"])) or [CLASSIFICATION]
    if len(found) > 1:
        raise InitpruneError(f"runs of the tasks {', '.join(found)} in one panel; a cell serves the one task its "
                             "architecture declares")
    return found[0]


def axis(name: str) -> str:
    """The axis label of the task's test metric, with its direction: "test accuracy (higher is
    better)", "test reconstruction error, MSE (lower is better)"."""
    return task(name).label


def words(name: str) -> str:
    """The test metric in words, without its direction: "test accuracy", "test reconstruction error"."""
    return f"test {task(name).metric.replace('_', ' ')}"


def higher(name: str) -> bool:
    """Whether a higher value of the task's metric is better."""
    return bool(task(name).higher_is_better)


def logged(record) -> bool:
    """Whether a run logged its per-example record: correctness as '0'/'1', squared errors as a list."""
    return (isinstance(record, str) and bool(record)) or (isinstance(record, (list, tuple, np.ndarray))
                                                          and len(record) > 0)


def record_field(name: str) -> str:
    """The result's field that holds the test split's per-example record."""
    return task(name).record_field
