"""The runs table every figure and claim starts from, read from the point store (``points``; the
figures are assembled from it by ``initprune.report.assembly``).
"""

from __future__ import annotations

import json

from ..errors import InitpruneError
from ..result import RunResult
from . import store
from .points import TAGS, Points, Unreadable


def to_table(results: list[RunResult]):
    """Results as a pandas table, one row per run (the input of every figure); a row's
    ``sparsity`` is its target."""
    import pandas as pd

    columns = ["method", "dataset", "arch", "sparsity", "seed", "ablation", "test_accuracy", "val_accuracy",
               "sparsity_actual", "variant", "options", "history", "extra", "layers", "run_id"]
    typed = [r if isinstance(r, RunResult) else RunResult.from_dict(r) for r in results]
    rows = [{**r.to_dict(), "sparsity": r.sparsity_target} for r in typed]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def finished_points(c, exp_id: str) -> set[tuple[str, int]]:
    """``Points.finished_keys``, as the report asks for it (with a client)."""
    return Points(c, exp_id).finished_keys()


def without_result(c, exp_id: str) -> list[str]:
    """``Points.without_result``, as the report asks for it (with a client)."""
    return Points(c, exp_id).without_result()


def runs_table(uri: str | None = None, echo=print):
    """Every FINISHED point of the store, one row per (config hash, seed): the oldest run of a
    point wins if two sweeps ever both finished it. A point whose result cannot be read is left
    out, named in one line (``echo``). The column ``version`` is the pruner version the point was
    computed with (its run's param; part of its identity, not of its result JSON); ``profile`` and
    ``tested_sparsities`` are those of the execution that ran it (its parent run's tags: the
    profile, and the sparsities of its cell that carry the verdict's tests, a list, or None where
    it declared none or the point was run by hand), ``reference_epochs`` the epochs of one dense
    training its cell's cost is relative to, where it declared them (else None); ``origin`` is where
    the point came from: the profile of the sweep whose execution ran it, or ``run`` (``python -m
    initprune run``, by hand, a run with no execution above it); ``reconstructions`` a
    reconstruction run's kept test images (``Points.samples``), else None."""
    import pandas as pd

    runs = store.points(uri)
    executions = runs.executions()
    results, versions, parents, origins, kept, seen = [], [], [], [], [], set()
    for run in runs.finished_runs():
        key = (run.data.tags.get("config_hash"), run.data.tags.get("seed"))
        if key not in seen:
            try:
                results.append(runs.load(run))
            except Unreadable as err:
                echo(f"left out: {err}; a sweep of its profile trains it again")
                continue
            stored = run.data.params.get("version", "")
            versions.append(int(stored) if stored.isdigit() else None)
            parent = run.data.tags.get(TAGS["parent"])
            parents.append(executions.get(parent, {}))
            origins.append((executions.get(parent, {}).get("profile") or "?") if parent else BY_HAND)
            kept.append(Points.samples(run) if results[-1].task != "classification" else None)
            seen.add(key)
    return to_table(results).assign(version=versions, profile=[t.get("profile") for t in parents],
                                    tested_sparsities=[tested(t.get("tested_sparsities")) for t in parents],
                                    reference_epochs=pd.array([int(t["reference_epochs"]) if t.get(
                                        "reference_epochs") else None for t in parents], dtype=object),
                                    origin=origins, reconstructions=pd.array(kept, dtype=object))


BY_HAND = "run"  # the origin of a point ``python -m initprune run`` trained, outside any sweep


def tested(tag) -> list[float] | None:
    """An execution's ``tested_sparsities`` tag (JSON) as a list of floats; None where absent."""
    if not tag:
        return None
    try:
        values = json.loads(tag)
        return [float(v) for v in values]
    except (ValueError, TypeError):
        raise InitpruneError(f"a tested_sparsities tag is a JSON list of sparsities, not {tag!r}") from None
