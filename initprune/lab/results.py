"""Reading results back from the store: a point's result, the finished points and cells a sweep
counts, and the runs table every figure and claim starts from (the lab layer; the figures are
assembled from it by ``initprune.report.assembly``).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from .. import samples
from ..errors import InitpruneError
from ..result import RunResult
from ..tasks import TASKS
from . import store


class Unreadable(InitpruneError):
    """A FINISHED point whose result cannot be read back: it counts as not finished."""


def load_result(run) -> RunResult:
    """The result JSON of a finished point: read in place from a local store, else downloaded.
    Unreadable (one line naming the run) where it is missing or damaged."""
    uri = run.info.artifact_uri
    try:
        if uri.startswith("file:"):
            result = json.loads((Path(urllib.parse.urlparse(uri).path) / "result.json").read_text())
        else:
            import mlflow.artifacts

            result = mlflow.artifacts.load_dict(f"{uri}/result.json")
        if not isinstance(result, dict) or "test_accuracy" not in result:
            raise ValueError("not a result")
    except Exception as err:  # missing, damaged, not a result: whatever the store raised
        problem = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise Unreadable(f"point run {run.info.run_id} ({_point(run)}) is FINISHED but its result.json cannot "
                         f"be read ({problem})") from None
    result["run_id"] = run.info.run_id
    return RunResult.from_dict(result)


def load_samples(run) -> dict | None:
    """A reconstruction run's kept test images (``samples.ARTIFACT``: targets and outputs), None
    where the run kept none (a classifier, a run stored before they were kept) or they cannot be read."""
    uri = run.info.artifact_uri
    try:
        if uri.startswith("file:"):
            path = Path(urllib.parse.urlparse(uri).path) / samples.ARTIFACT
            return samples.decode(path.read_bytes()) if path.is_file() else None
        import mlflow.artifacts

        return samples.decode(Path(mlflow.artifacts.download_artifacts(f"{uri}/{samples.ARTIFACT}")).read_bytes())
    except Exception:  # missing or damaged: the picture leaves the run out, its numbers stay
        return None


def _point(run) -> str:
    tags = run.data.tags
    return f"{tags.get('method')} {tags.get('dataset')}/{tags.get('arch')} seed {tags.get('seed')}"


def _has_result(run) -> bool:
    """Whether a FINISHED point's result is there, without reading it: its final metrics, and in
    a local store its ``result.json`` file (a remote one is read when the point is used)."""
    uri = run.info.artifact_uri
    if not any(f"test_{TASKS[t].metric}" in run.data.metrics for t in TASKS.names()):  # the task's final metric
        return False
    return not uri.startswith("file:") or (Path(urllib.parse.urlparse(uri).path) / "result.json").is_file()


def to_table(results: list[RunResult]):
    """Results as a pandas table, one row per run (the input of every figure); a row's
    ``sparsity`` is its target."""
    import pandas as pd

    columns = ["method", "dataset", "arch", "sparsity", "seed", "ablation", "test_accuracy", "val_accuracy",
               "sparsity_actual", "variant", "options", "history", "extra", "layers", "run_id"]
    typed = [r if isinstance(r, RunResult) else RunResult.from_dict(r) for r in results]
    rows = [{**r.to_dict(), "sparsity": r.sparsity_target} for r in typed]
    return pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))


def _search_all(c, exp_id: str, query: str):
    """Every run that matches, page after page, oldest first."""
    token = None
    while True:
        page = c.search_runs([exp_id], query, max_results=1000, page_token=token,
                             order_by=["attributes.start_time ASC"])
        yield from page
        token = page.token
        if not token:
            return


def finished_points(c, exp_id: str) -> set[tuple[str, int]]:
    """(config hash, seed) of every FINISHED point, in one search rather than one per point; one
    whose result is missing counts as not finished (its execution trains it again)."""
    return {(r.data.tags.get("config_hash"), int(r.data.tags.get("seed", -1)))
            for r in _search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'")
            if _has_result(r)}


def finished_cells(c, exp_id: str) -> set[str]:
    """The grid cells with a FINISHED execution: its notebook ran to the end and was stored."""
    return {r.data.tags.get("cell")
            for r in _search_all(c, exp_id, "tags.kind = 'execution' and attributes.status = 'FINISHED'")}


def without_result(c, exp_id: str) -> list[str]:
    """The FINISHED points whose result is missing, one line each: what the figures leave out."""
    return [f"point run {r.info.run_id} ({_point(r)}) is FINISHED but has no result"
            for r in _search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'")
            if not _has_result(r)]


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
    reconstruction run's kept test images (``load_samples``), else None."""
    import pandas as pd

    c, exp_id = store.ensure_store(uri)
    executions = {r.info.run_id: r.data.tags for r in _search_all(c, exp_id, "tags.kind = 'execution'")}
    results, versions, parents, origins, kept, seen = [], [], [], [], [], set()
    for run in _search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'"):
        key = (run.data.tags.get("config_hash"), run.data.tags.get("seed"))
        if key not in seen:
            try:
                results.append(load_result(run))
            except Unreadable as err:
                echo(f"left out: {err}; a sweep of its profile trains it again")
                continue
            stored = run.data.params.get("version", "")
            versions.append(int(stored) if stored.isdigit() else None)
            parent = run.data.tags.get("mlflow.parentRunId")
            parents.append(executions.get(parent, {}))
            origins.append((executions.get(parent, {}).get("profile") or "?") if parent else BY_HAND)
            kept.append(load_samples(run) if results[-1].task != "classification" else None)
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
