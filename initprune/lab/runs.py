"""The lifecycle of MLflow runs: one parent run per notebook execution (an attempt at a grid
cell), one child run per (sparsity, seed) point; who holds a point, what a dead process left
RUNNING, and what a point logs.

A point is identified by (config hash, seed): one with a FINISHED run is never trained again, a
FAILED one is retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

from .. import pruners, samples, spec
from ..data import REPO_ROOT
from ..errors import InitpruneError
from ..result import RunResult
from ..spec import RunSpec
from . import faults

# the spec's own fields logged as MLflow params (options and training settings are added by prefix)
PARAMS = tuple(f.name for f in dataclasses.fields(RunSpec) if f.name not in ("options", "training"))


def _interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InitpruneError(f"INITPRUNE_HEARTBEAT={text!r}: give the seconds between a running point's "
                             "heartbeats, a number above 0 (60 unless set)")
    return seconds


# seconds between the heartbeats of a point that trains (its run's ``heartbeat`` tag); a point held
# on another host whose heartbeat has not changed for MISSED of them, as this process sees it, is
# taken over: its sweep died there (a pid cannot be checked across hosts)
HEARTBEAT = _interval(os.environ.get("INITPRUNE_HEARTBEAT") or "60")
MISSED = 3
_heard: dict[str, tuple[str | None, float]] = {}  # run id: (its heartbeat, when this process saw it change)


class Superseded(InitpruneError):
    """A point whose execution was given up while it ran: KILLED, never FINISHED."""


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def finished(c, exp_id: str, config: RunSpec):
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
                  sweep: str, **tags) -> tuple[str, int]:
    """Open the run of one attempt at a grid cell: (run id, attempt number).

    The task, not the notebook, owns this run. An earlier attempt of the same cell in the same
    sweep that is still RUNNING lost its worker (an executor retries only then): it is marked
    KILLED, with whatever it was training, before the retry starts. ``tags``: more of the run's
    tags (its cell's tested sparsities, which the report reads back for the points it ran).
    """
    earlier = c.search_runs([exp_id], f"tags.kind = 'execution' and tags.cell = '{cell}' "
                                      f"and tags.sweep = '{sweep}'", max_results=1000)
    for run in earlier:
        if run.info.status == "RUNNING":
            reap(c, exp_id, run.info.run_id)
    attempt = len(earlier) + 1
    run_id = start_parent(c, exp_id, notebook, dataset, arch, profile, cell=cell, sweep=sweep,
                          attempt=str(attempt), **tags)
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
    """Who runs this: a RUNNING run whose process is gone was killed, not still running. The
    process's start time goes with its pid: a pid that a later process was given is not it."""
    started = _started(os.getpid())
    return {"host": socket.gethostname(), "pid": str(os.getpid()), **({"started": started} if started else {})}


def _started(pid) -> str | None:
    """When a process started, as this boot's id and its start time in clock ticks (field 22
    of /proc/PID/stat); None where that cannot be read (not Linux, no such process)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{boot}:{fields[19]}"  # fields[0] is field 3 (the state)
    except (OSError, ValueError, IndexError):
        return None


def _alive(tags: dict) -> bool:
    """Whether the process that a run's tags name (on this host) still runs: its pid exists and,
    where its start time was recorded, the process with that pid started then."""
    pid = tags.get("pid", "")
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        pass
    recorded = tags.get("started")
    if recorded:  # runs recorded before start times were kept: the pid alone
        now = _started(pid)
        return now is None or now == recorded  # unreadable here: cannot tell, so alive
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
             if parent_run_id or not _alive(r.data.tags)]
    if parent_run_id:
        stale += [c.get_run(parent_run_id)]
    for run in stale:
        if run.info.status == "RUNNING":
            c.set_terminated(run.info.run_id, "KILLED")
    return len(stale)


def holder(c, exp_id, config: RunSpec, own: str | None = None):
    """The live run that holds this point, earliest first; None if there is none before ``own``.
    Live: RUNNING, under a RUNNING execution, and with its process alive: on this host its pid,
    on another its heartbeat; one there that missed MISSED heartbeats is marked FAILED (abandoned)
    on the way, so that the point is claimed again. A run of its own (``python -m initprune run``,
    RUNNING only while it logs) never holds a point: one that another machine lost could not be
    told from one still logging."""
    query = (f"tags.config_hash = '{config.hash()}' and tags.seed = '{config.seed}' and tags.kind = 'point' "
             "and attributes.status = 'RUNNING'")
    runs = sorted(c.search_runs([exp_id], query, max_results=100), key=lambda r: (r.info.start_time, r.info.run_id))
    for run in runs:
        if run.info.run_id == own:
            return None
        tags = run.data.tags
        if tags.get("host") == socket.gethostname() and not _alive(tags):
            continue
        if tags.get("host") != socket.gethostname() and _silent(run):
            abandon(c, run.info.run_id, tags.get("host"))
            continue
        parent = tags.get("mlflow.parentRunId")
        if parent and c.get_run(parent).info.status == "RUNNING":
            return run
    return None


def _silent(run) -> bool:
    """Whether a run missed MISSED heartbeats while this process watched it: its ``heartbeat`` tag
    unchanged for that long by this machine's clock (the clocks of two hosts are never compared).
    A run seen for the first time, or with a new beat, is not."""
    beat, now = run.data.tags.get("heartbeat"), time.monotonic()
    seen = _heard.get(run.info.run_id)
    if seen is None or seen[0] != beat:
        _heard[run.info.run_id] = (beat, now)
        return False
    return now - seen[1] >= MISSED * HEARTBEAT


def abandon(c, run_id: str, host: str | None) -> None:
    """Mark FAILED a point whose holder on another host stopped beating: the point is trained again."""
    c.set_tag(run_id, "error", f"abandoned: no heartbeat from host {host} in {MISSED * HEARTBEAT:g} s; taken over "
                               f"by {socket.gethostname()}")
    c.set_terminated(run_id, "FAILED")
    _heard.pop(run_id, None)


def _beat() -> str:
    return str(time.time_ns() // 1_000_000)  # milliseconds: every beat a new value, however short the interval


@contextlib.contextmanager
def beating(c, run_ids: list[str]):
    """While the points of ``run_ids`` train: a thread refreshes their ``heartbeat`` tags every
    HEARTBEAT seconds, which tells a sweep on another host that this process still holds them."""
    stop, interval = threading.Event(), HEARTBEAT

    def beat():
        while not stop.wait(interval):
            for run_id in run_ids:
                with contextlib.suppress(Exception):  # a busy or briefly unreachable store: the next beat will do
                    c.set_tag(run_id, "heartbeat", _beat())

    thread = threading.Thread(target=beat, name="initprune-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def open_point(c, exp_id, parent_run_id: str | None, config: RunSpec, start_time: int | None = None) -> str:
    """A RUNNING run that claims the point: a child of its execution's run, or (``python -m
    initprune run``, logged once trained) a run of its own."""
    parent = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
    tags = {"kind": "point", **parent, "config_hash": config.hash(),
            "seed": str(config.seed), "method": config.method, "dataset": config.dataset,
            "arch": config.arch, "ablation": config.ablation, "identity": spec.SCHEME, **_owner(), "heartbeat": _beat(),
            "variant": json.dumps(config.variant(), sort_keys=True)}
    parts = [pruners.label(config.method, config.options), f"{config.dataset}/{config.arch}",
             f"s={config.sparsity:g}", f"seed {config.seed}"] + ([config.ablation] if config.ablation != "none" else [])
    name = " · ".join(parts)  # "combined (cubic) · digits/mlp · s=0.98 · seed 0"
    return c.create_run(exp_id, start_time=start_time, tags=tags, run_name=name).info.run_id


def log_point(c, run_id: str, config: RunSpec, result: RunResult) -> None:
    """A trained point's params, metrics and ``result.json``, logged to its run (still RUNNING)."""
    from mlflow.entities import Metric, Param

    pruner = config.pruner()
    params = {p: getattr(config, p) for p in PARAMS}
    params["version"] = type(pruner).version
    params.update({f"option.{k}": v for k, v in config.options.items()})
    params.update({f"training.{k}": v for k, v in config.training.items()})
    now = int(time.time() * 1000)
    # per-epoch metrics as steps: the last step is the final value the runs table shows; the
    # task's metric under its own name (val_accuracy, test_reconstruction_error)
    stem = result.metric.removeprefix("test_")
    metrics = [Metric(name, float(h[key]), now, h["epoch"]) for h in result.history
               for key, name in (("train_loss", "train_loss"), (f"val_{stem}", f"val_{stem}"),
                                 (f"test_{stem}", f"test_{stem}"), ("sparsity", "sparsity"),
                                 ("seconds", "epoch_seconds"))
               if h.get(key) is not None]
    metrics += [Metric(k, float(getattr(result, k)), now, 0)
                for k in ("sparsity_actual", "seconds", "effective_sparsity", "dead_classes", "dead_outputs")
                if getattr(result, k) is not None]
    metrics += [Metric(f"cost.{k}", float(v), now, 0) for k, v in (result.cost or {}).items()]
    metrics += [Metric(f"kept.{name}", v["kept"], now, 0) for name, v in result.layers.items()]
    # what the method reports beside (K-starts' fitness per candidate, dissipating's sparsity per epoch)
    metrics += [Metric(name, float(value), now, step) for name, value, step in pruner.metrics(result.extra)]
    c.log_batch(run_id, metrics=metrics[:1000], params=[Param(k, str(v)) for k, v in params.items()])
    faults.pause("logging")
    for start in range(1000, len(metrics), 1000):
        c.log_batch(run_id, metrics=metrics[start:start + 1000])
    c.log_dict(run_id, result.to_dict(), "result.json")
    kept = getattr(result, "reconstructions", None)  # a reconstruction run's test images (initprune/samples.py)
    if kept is not None:
        _log_bytes(c, run_id, samples.ARTIFACT, samples.encode(kept))


def _log_bytes(c, run_id: str, name: str, raw: bytes) -> None:
    """``raw`` as the run's artifact ``name``."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(raw)
        c.log_artifact(run_id, str(path))


def check_execution(c, parent_run_id: str | None) -> None:
    """Superseded if the point's execution was given up (Ctrl-C, a lost worker and its retry):
    what it trains then is not counted."""
    if parent_run_id and c.get_run(parent_run_id).info.status != "RUNNING":
        raise Superseded(f"execution {parent_run_id} ended while this point ran")


def finish_point(c, run_id: str, parent_run_id: str | None) -> None:
    """Mark a point FINISHED once everything is logged; Superseded if its execution ended meanwhile,
    or if a sweep on another host took the point over (its heartbeats did not reach the store)."""
    check_execution(c, parent_run_id)
    if c.get_run(run_id).info.status != "RUNNING":
        raise Superseded(f"point run {run_id} was taken over while it ran: its heartbeat stopped")
    c.set_terminated(run_id, "FINISHED")  # only now does the point count as done


def fail_point(c, run_id: str, err: BaseException) -> None:
    """Record what stopped a point, never FINISHED: the next sweep retries the point."""
    c.set_tag(run_id, "error", f"{type(err).__name__}: {err}"[:500])
    c.set_terminated(run_id, "KILLED" if isinstance(err, (KeyboardInterrupt, Superseded)) else "FAILED")
