"""MLflow tracking: one parent run per notebook execution, one child run per (sparsity, seed) point.

The store is ``sqlite:///<repo>/mlruns/mlflow.db`` with artifacts in ``<repo>/mlruns/artifacts``,
resolved from the repository root; ``MLFLOW_TRACKING_URI`` overrides it. A point is identified by
(config hash, seed): one with a FINISHED run is never trained again, a FAILED one is retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import itertools
import json
import logging
import math
import os
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

from . import api, data, models
from .errors import InitpruneError

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
ROOT = data.REPO_ROOT
# the run's own fields logged as MLflow params (options and training settings are added by prefix)
PARAMS = ("method", "dataset", "arch", "sparsity", "epochs", "seed", "ablation")
MAX_POINTS = 100_000  # points in one execution: a grid beyond this is a slip, not a plan


class Superseded(InitpruneError):
    """A point whose execution was given up while it ran: KILLED, never FINISHED."""


def experiment() -> str:
    """The experiment every run goes to; read at each call, so that a worker serving several
    sweeps follows the one whose task it runs."""
    return os.environ.get("INITPRUNE_EXPERIMENT") or "initprune"


def default_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside a sqlite store (``mlruns/artifacts``); a server keeps its own."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "artifacts").resolve().as_uri()
    return None


def client(uri: str | None = None):
    from mlflow import MlflowClient

    _quiet()
    return MlflowClient(uri or default_uri())


def _quiet() -> None:
    """MLflow configures its loggers when imported: quieten them after."""
    import mlflow  # noqa: F401

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # it logs each database error with a traceback, then raises it: the error raised is what we report
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def check_store(uri: str | None = None) -> str:
    """Fail at once, in one line, where the store cannot be used: a tracking server that does not
    answer within seconds, a sqlite folder that cannot be written, a damaged database. Every
    command that tracks passes here (through ``ensure_store``), and one that tracks later (``run``)
    may call it before it trains anything. Returns the URI."""
    uri = uri or default_uri()
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    elif uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            open(db.parent / ".initprune.lock", "a").close()  # the write probe
        except OSError as err:
            raise InitpruneError(f"cannot write the MLflow store in {db.parent} ({err.strerror}); "
                                 "free space or fix its permissions, or set MLFLOW_TRACKING_URI") from None
        if db.exists():
            _check_intact(db)
    return uri


def _check_server(uri: str, timeout: float = 5) -> None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as answer:
            answer.read()
    except OSError as err:
        raise InitpruneError(f"no MLflow tracking server answers at {uri} ({getattr(err, 'reason', err)}); "
                             "start one with `make server`") from None


def _check_intact(db: Path) -> None:
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
            problem = con.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.OperationalError:  # busy or unreadable, not damaged: MLflow says what it is
        return
    except sqlite3.DatabaseError as err:  # not a database, or malformed
        problem = str(err)
    if problem != "ok":
        raise _damaged(db, problem)


def _damaged(db, problem: str) -> InitpruneError:
    return InitpruneError(f"the MLflow store {db} is damaged ({problem.splitlines()[0]}); restore it from a "
                          f"backup, or move it aside (mv {db} {db}.damaged) and a new one is created")


def store_error(err, uri: str | None = None) -> InitpruneError | None:
    """A full disk or a damaged database, from wherever it surfaced, as one line that names the
    store and what to do; None for any other error."""
    uri = uri or default_uri()
    where = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else uri
    text = str(err)
    filename = getattr(err, "filename", None)  # a file the store writes, not any file at all
    ours = uri.startswith("sqlite:///") and filename and Path(filename).is_relative_to(Path(where).parent)
    if "database or disk is full" in text or (getattr(err, "errno", None) == errno.ENOSPC and ours):
        return InitpruneError(f"no space left on the disk of the MLflow store {where}: free space there, then "
                              "run the same command again (what finished is kept)")
    if "database disk image is malformed" in text or "file is not a database" in text:
        return _damaged(where, text.split(") ", 1)[-1])  # without SQLAlchemy's (sqlite3.Error) prefix
    return None


def ensure_store(uri: str | None = None) -> tuple[object, str]:
    """Check the store, then create the database and the experiment once, before any parallel
    writer starts. Returns (client, experiment id)."""
    uri = check_store(uri)
    if not uri.startswith("sqlite:///"):
        return _open(uri)
    db = Path(uri[len("sqlite:///"):])
    with open(db.parent / ".initprune.lock", "a") as lock:
        # a new database is built by migrations, which two processes must not run at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            _create(db, uri)
        try:
            return _open(uri)
        except Exception as err:
            problem = store_error(err, uri)
            if problem is None:
                raise
            raise problem from None


def _create(db: Path, uri: str) -> None:
    """Build a new database beside its name and rename it into place once complete, so that a disk
    that fills meanwhile leaves no half-built store behind for the next try to stumble on."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    _quiet()
    new = db.with_name(db.name + ".new")
    leftovers = [new.with_name(new.name + end) for end in ("", "-journal", "-wal", "-shm")]
    for path in leftovers:  # what a creation killed half-way left (we hold the lock)
        path.unlink(missing_ok=True)
    try:
        SqlAlchemyStore(f"sqlite:///{new}", _artifact_root(uri))
        os.replace(new, db)
    except Exception as err:
        for path in leftovers:
            path.unlink(missing_ok=True)
        raise store_error(err, uri) or InitpruneError(
            f"cannot create the MLflow store {db} ({str(err).splitlines()[0]}); set MLFLOW_TRACKING_URI "
            "to another store") from None
    finally:  # release the new file's connection: from now on the store is opened by its own name
        engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(f"sqlite:///{new}", None)
        if engine is not None:
            engine.dispose()


def _open(uri: str) -> tuple[object, str]:
    c = client(uri)
    name = experiment()
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            exp_id = c.create_experiment(name, artifact_location=_artifact_root(uri),
                                         tags={"mlflow.experimentKind": "custom_model_development"})
        except Exception:  # another process created it first
            exp_id = c.get_experiment_by_name(name).experiment_id
    else:
        exp_id = exp.experiment_id
    return c, exp_id


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def expand(method: str | list, dataset: str, arch: str, sparsities, seeds, epochs: int,
           options: dict | None = None, ablations=("none",)) -> list[api.RunConfig]:
    """The points of one execution: every ablation x combination of list-valued options x
    sparsity x seed. Options the method does not take, and None values, are left out."""
    _check_grid(sparsities, seeds, epochs)
    if isinstance(method, list):  # one execution may run several methods (baselines, sanity)
        points = [p for m in method for p in expand(m, dataset, arch, sparsities, seeds, epochs, options, ablations)]
        _check_size(len(points), method, dataset, arch)
        return points
    data.DATASETS[dataset], models.MODELS[arch]  # unknown names fail here, listing the known ones
    # a notebook passes all its option parameters: keep those this method takes, None = its default
    takes = api.option_names(method)
    options = {k: v for k, v in (options or {}).items() if k in takes and v is not None}
    keys = list(options)
    values = [v if isinstance(v, list) else [v] for v in options.values()]
    if not sparsities or not seeds or any(not v for v in values):
        raise InitpruneError(f"the grid of '{method}' on {dataset}/{arch} is empty; give at least one "
                             "sparsity, one seed and one value per option")
    if isinstance(ablations, str):
        ablations = [ablations]
    _check_size(len(ablations) * math.prod(map(len, values)) * len(sparsities) * len(seeds), method, dataset, arch)
    points = []
    for ablation, combo, sparsity in itertools.product(ablations, itertools.product(*values), sparsities):
        # random pruning at sparsity 0 is the dense network: record it once, as dense
        dense = method == "random" and sparsity == 0
        configs = [api.RunConfig(method="dense" if dense else method, dataset=dataset, arch=arch,
                                 sparsity=float(sparsity), epochs=int(epochs), seed=int(seed),
                                 options={} if dense else dict(zip(keys, combo)), ablation=ablation)
                   for seed in seeds]
        # bad options fail now, before anything trains; once per option set, not once per seed
        api.check_epochs(configs[0].pruner(), configs[0].epochs)
        points += configs
    return points


def _check_size(size: int, method, dataset: str, arch: str) -> None:
    if size > MAX_POINTS:
        raise InitpruneError(f"the grid of {method} on {dataset}/{arch} has {size:,} points, more than one "
                             f"execution runs (at most {MAX_POINTS:,}); give fewer sparsities, seeds or option "
                             "values, or split it into several executions")


def _check_grid(sparsities, seeds, epochs) -> None:
    """Notebook parameters arrive as whatever papermill was given: check them before anything runs."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if not isinstance(sparsities, (list, tuple)) or not all(number(s) for s in sparsities):
        raise InitpruneError(f"sparsities must be a list of numbers in [0, 1), got {sparsities!r}")
    if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                       for s in seeds):
        raise InitpruneError(f"seeds must be a list of integers, got {seeds!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        raise InitpruneError(f"epochs must be an integer, got {epochs!r}")


def finished(c, exp_id: str, config: api.RunConfig):
    """The FINISHED child run of this point, or None."""
    runs = c.search_runs(
        [exp_id],
        f"tags.config_hash = '{config.hash()}' and tags.seed = '{config.seed}' "
        "and tags.kind = 'point' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return runs[0] if runs else None


def start_parent(c, exp_id: str, notebook, dataset: str, arch: str, profile: str, **tags) -> str:
    notebook = notebook if isinstance(notebook, str) else ",".join(notebook)  # a list of methods
    tags = {"kind": "execution", "method": notebook, "dataset": dataset, "arch": arch,
            "git_commit": git_commit(), "profile": profile, **_owner(), **tags}
    return c.create_run(exp_id, tags=tags, run_name=f"{notebook} {dataset}/{arch}").info.run_id


def start_attempt(c, exp_id: str, notebook, dataset: str, arch: str, profile: str, cell: str,
                  sweep: str) -> tuple[str, int]:
    """Open the run of one attempt at a grid cell: (run id, attempt number).

    The task, not the notebook, owns this run. An earlier attempt of the same cell in the same
    sweep that is still RUNNING lost its worker (an executor retries only then): it is marked
    KILLED, with whatever it was training, before the retry starts.
    """
    earlier = c.search_runs([exp_id], f"tags.kind = 'execution' and tags.cell = '{cell}' "
                                      f"and tags.sweep = '{sweep}'", max_results=1000)
    for run in earlier:
        if run.info.status == "RUNNING":
            reap(c, exp_id, run.info.run_id)
    attempt = len(earlier) + 1
    run_id = start_parent(c, exp_id, notebook, dataset, arch, profile, cell=cell, sweep=sweep,
                          attempt=str(attempt))
    return run_id, attempt


def end_sweep(c, exp_id: str, sweep: str, cell: str | None = None) -> int:
    """Mark KILLED every run of this sweep (or of one of its cells) still RUNNING, executions and
    their points: at the end of a sweep, on Ctrl-C, or when an executor gave a task up. A worker
    that died took them with it. Returns how many."""
    query = f"tags.kind = 'execution' and tags.sweep = '{sweep}'" + (f" and tags.cell = '{cell}'" if cell else "")
    executions = c.search_runs([exp_id], query, max_results=5000)
    ids = {r.info.run_id for r in executions}
    points = c.search_runs([exp_id], "tags.kind = 'point' and attributes.status = 'RUNNING'",
                           max_results=5000) if ids else []
    stale = [r for r in executions if r.info.status == "RUNNING"]
    stale += [r for r in points if r.data.tags.get("mlflow.parentRunId") in ids]
    for run in stale:
        c.set_terminated(run.info.run_id, "KILLED")
    return len(stale)


def _owner() -> dict:
    """Who runs this: a RUNNING run whose process is gone was killed, not still running."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def reap(c, exp_id: str, parent_run_id: str | None = None) -> int:
    """Mark KILLED what is left RUNNING: the runs of ``parent_run_id`` (a sweep stopped by
    Ctrl-C), or else every run of this host whose process no longer exists (a sweep killed).
    Returns how many were marked."""
    if parent_run_id:
        query = f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'"
    else:
        query = f"tags.host = '{socket.gethostname()}' and attributes.status = 'RUNNING'"
    stale = [r for r in c.search_runs([exp_id], query, max_results=5000)
             if parent_run_id or not _alive(r.data.tags.get("pid", ""))]
    if parent_run_id:
        stale += [c.get_run(parent_run_id)]
    for run in stale:
        if run.info.status == "RUNNING":
            c.set_terminated(run.info.run_id, "KILLED")
    return len(stale)


def _pause(stage: str) -> None:
    """Fault injection for tests: INITPRUNE_TEST_PAUSE='stage:seconds[:marker]' holds a point at
    'training' (its run just opened), 'logging' (metrics half written) or 'notebook' (executed,
    not yet stored), so that a test can kill the sweep exactly there; with a marker file, only the
    first point to get there waits."""
    spec = os.environ.get("INITPRUNE_TEST_PAUSE", "")
    if spec.startswith(f"{stage}:"):
        _, seconds, *marker = spec.split(":", 2)
        if marker:
            try:
                with Path(marker[0]).open("x") as f:
                    f.write(str(os.getpid()))  # which process holds the point, for the test to find
            except FileExistsError:
                return
        time.sleep(float(seconds))


def _inject_failure(config: api.RunConfig) -> None:
    """Fault injection for tests: INITPRUNE_INJECT_FAILURE='method:seed' fails that point once
    per marker file, so that a retry can be shown to succeed."""
    spec = os.environ.get("INITPRUNE_INJECT_FAILURE")
    if spec and spec.split(":")[:2] == [config.method, str(config.seed)]:
        marker = spec.split(":", 2)[2] if spec.count(":") >= 2 else ""
        if not marker or not Path(marker).exists():
            if marker:
                Path(marker).touch()
            raise RuntimeError(f"injected failure at {config.method} seed {config.seed}")


def execute(method: str | list, dataset: str = "digits", arch: str = "mlp", sparsities=(0.9,), seeds=(0,),
            epochs: int = 20, options: dict | None = None, parent_run_id: str = "", profile: str = "",
            data_root: str | None = None, device: str = "auto", tracking: bool = True,
            progress: bool = True, ablations=("none",)) -> list[dict]:
    """Run every point of one execution, logging each as a child run; finished points are read
    back from the store instead of trained again. Returns the result dicts, in grid order."""
    points = expand(method, dataset, arch, sparsities, seeds, epochs, options, ablations)
    if not tracking:
        return [api.run(p, data_root=data_root, device=device) for p in points]
    c, exp_id = ensure_store()
    own_parent = not parent_run_id
    if own_parent:
        parent_run_id = start_parent(c, exp_id, method, dataset, arch, profile or "notebook")
    results, status = [], "FAILED"
    try:
        from tqdm.auto import tqdm

        quiet = None if progress else True  # None: a bar only on a terminal
        for config in tqdm(points, desc=f"{method} {dataset}/{arch}", disable=quiet):
            results.append(_train_or_reuse(c, exp_id, parent_run_id, config, data_root, device))
        status = "FINISHED"
    finally:
        if own_parent:
            c.set_terminated(parent_run_id, status)
    return results


def _train_or_reuse(c, exp_id, parent_run_id, config: api.RunConfig, data_root, device, poll: float = 2.0) -> dict:
    """A point's result: read back if it is FINISHED; awaited if another execution is training it
    (two executions of a sweep may share a point); else trained here, under a run that claims it."""
    waiting = False
    while True:
        done = finished(c, exp_id, config)
        if done is not None:
            return load_result(done)
        holder = _holder(c, exp_id, config)
        if holder is None:
            run_id = _open_point(c, exp_id, parent_run_id, config)
            if _holder(c, exp_id, config, run_id) is None:
                return _run_point(c, run_id, parent_run_id, config, data_root, device)
            c.delete_run(run_id)  # another execution claimed it at the same moment, and first
            continue
        if not waiting:
            print(f"waiting for {config.method} s={config.sparsity} seed={config.seed}: run "
                  f"{holder.info.run_id} on {holder.data.tags.get('host')} is training it", flush=True)
            waiting = True
        time.sleep(poll)


def _holder(c, exp_id, config: api.RunConfig, own: str | None = None):
    """The live run that holds this point, earliest first; None if there is none before ``own``.
    Live: RUNNING, under a RUNNING execution, and with its process alive where that can be seen."""
    query = (f"tags.config_hash = '{config.hash()}' and tags.seed = '{config.seed}' and tags.kind = 'point' "
             "and attributes.status = 'RUNNING'")
    runs = sorted(c.search_runs([exp_id], query, max_results=100), key=lambda r: (r.info.start_time, r.info.run_id))
    for run in runs:
        if run.info.run_id == own:
            return None
        tags = run.data.tags
        if tags.get("host") == socket.gethostname() and not _alive(tags.get("pid", "")):
            continue
        parent = tags.get("mlflow.parentRunId")
        if not parent or c.get_run(parent).info.status == "RUNNING":
            return run
    return None


def _open_point(c, exp_id, parent_run_id, config: api.RunConfig) -> str:
    tags = {"kind": "point", "mlflow.parentRunId": parent_run_id, "config_hash": config.hash(),
            "seed": str(config.seed), "method": config.method, "dataset": config.dataset,
            "arch": config.arch, "ablation": config.ablation, **_owner(),
            "variant": json.dumps(config.identity().get("options", {}), sort_keys=True)}
    return c.create_run(exp_id, tags=tags,
                        run_name=f"{config.method} s={config.sparsity} seed={config.seed}").info.run_id


def _run_point(c, run_id, parent_run_id, config: api.RunConfig, data_root, device) -> dict:
    from mlflow.entities import Metric, Param

    try:
        _inject_failure(config)
        _pause("training")
        result = api.run(config, data_root=data_root, device=device)
        result["run_id"] = run_id
        params = {p: getattr(config, p) for p in PARAMS}
        params.update({f"option.{k}": v for k, v in config.pruner().options().items()})
        params.update({f"training.{k}": v for k, v in dataclasses.asdict(config.settings()).items()})
        now = int(time.time() * 1000)
        # per-epoch metrics as steps: the last step is the final value the runs table shows
        metrics = [Metric(name, float(h[key]), now, h["epoch"]) for h in result["history"]
                   for key, name in (("train_loss", "train_loss"), ("val_accuracy", "val_accuracy"),
                                     ("test_accuracy", "test_accuracy"), ("sparsity", "sparsity"),
                                     ("seconds", "epoch_seconds"))
                   if h[key] is not None]
        metrics += [Metric(k, float(result[k]), now, 0) for k in ("sparsity_actual", "seconds")]
        metrics += [Metric(f"kept.{name}", v["kept"], now, 0) for name, v in result["layers"].items()]
        metrics += _extra_metrics(result["extra"], now)
        c.log_batch(run_id, metrics=metrics[:1000], params=[Param(k, str(v)) for k, v in params.items()])
        _pause("logging")
        for start in range(1000, len(metrics), 1000):
            c.log_batch(run_id, metrics=metrics[start:start + 1000])
        c.log_dict(run_id, result, "result.json")
        if c.get_run(parent_run_id).info.status != "RUNNING":
            # this attempt was given up (its worker was lost and a retry took over): not counted
            raise Superseded(f"execution {parent_run_id} ended while this point ran")
        c.set_terminated(run_id, "FINISHED")  # only now does the point count as done
        return result
    except BaseException as err:  # recorded, never FINISHED: the next sweep retries the point
        c.set_tag(run_id, "error", f"{type(err).__name__}: {err}"[:500])
        c.set_terminated(run_id, "KILLED" if isinstance(err, (KeyboardInterrupt, Superseded)) else "FAILED")
        raise


def _extra_metrics(extra: dict, now: int) -> list:
    """The method's report as metrics: K-starts fitness per candidate, dissipating sparsity per epoch."""
    from mlflow.entities import Metric

    out = []
    kstarts = extra.get("kstarts", extra)
    if "candidates" in kstarts:
        out.append(Metric("kstarts.winner", kstarts["winner"], now, 0))
        out.append(Metric("kstarts.extra_cost_epochs", kstarts["extra_cost_epochs"], now, 0))
        out += [Metric("kstarts.fitness", c["fitness"], now, c["index"]) for c in kstarts["candidates"]]
    dissipating = extra.get("dissipating", extra)
    if "sparsity_per_epoch" in dissipating:
        out += [Metric("dissipating.sparsity", s, now, e + 1)
                for e, s in enumerate(dissipating["sparsity_per_epoch"])]
    return out


def load_result(run) -> dict:
    """The result JSON of a finished point: read in place from a local store, else downloaded."""
    uri = run.info.artifact_uri
    if uri.startswith("file:"):
        result = json.loads((Path(urllib.parse.urlparse(uri).path) / "result.json").read_text())
    else:
        import mlflow.artifacts

        result = mlflow.artifacts.load_dict(f"{uri}/result.json")
    result["run_id"] = run.info.run_id
    return result


def to_table(results: list[dict]):
    """Result dicts as a pandas table, one row per run (the input of every figure)."""
    import pandas as pd

    columns = ["method", "dataset", "arch", "sparsity", "seed", "ablation", "test_accuracy", "val_accuracy",
               "sparsity_actual", "variant", "options", "history", "extra", "layers", "run_id"]
    rows = [{"ablation": "none", **r, "sparsity": r["sparsity_target"]} for r in results]
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
    """(config hash, seed) of every FINISHED point, in one search rather than one per point."""
    return {(r.data.tags.get("config_hash"), int(r.data.tags.get("seed", -1)))
            for r in _search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'")}


def finished_cells(c, exp_id: str) -> set[str]:
    """The grid cells with a FINISHED execution: its notebook ran to the end and was stored."""
    return {r.data.tags.get("cell")
            for r in _search_all(c, exp_id, "tags.kind = 'execution' and attributes.status = 'FINISHED'")}


def runs_table(uri: str | None = None):
    """Every FINISHED point of the store, one row per (config hash, seed): the oldest run of a
    point wins if two sweeps ever both finished it."""
    c, exp_id = ensure_store(uri)
    results, seen = [], set()
    for run in _search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'"):
        key = (run.data.tags.get("config_hash"), run.data.tags.get("seed"))
        if key not in seen:
            seen.add(key)
            results.append(load_result(run))
    return to_table(results)


def figures_dir() -> Path:
    return Path(os.environ.get("INITPRUNE_FIGURES") or ROOT / "figures")


def make_figures(out: str | Path | None = None, run_id: str = "", uri: str | None = None) -> list[Path]:
    """Assemble every figure from the store into ``out`` (default ``figures/``, or
    $INITPRUNE_FIGURES) and log them to a figures run."""
    from . import figures

    out = Path(out) if out else figures_dir()
    table = runs_table(uri)
    written = figures.assemble(table, out)
    c, exp_id = ensure_store(uri)
    own = not run_id
    if own:
        run_id = c.create_run(exp_id, tags={"kind": "figures", "git_commit": git_commit()},
                              run_name="figures").info.run_id
    for path in written:
        c.log_artifact(run_id, str(path), "figures")
    c.log_metric(run_id, "runs", len(table))
    if own:
        c.set_terminated(run_id, "FINISHED")
    return written
