"""Sweeps: a profile (``notebooks/profiles/NAME.yaml``, read by ``profiles.py``) expands into
notebook executions (``executions.py``), one per grid cell, each run through papermill and logged
to MLflow under a run that its task owns. The tasks run on an executor (``executors.py``: a local
process pool, Ray or Dask); this module drives them and shows the sweep's progress.

An execution whose points all have a FINISHED run is skipped without starting a kernel, so an
interrupted sweep resumes where it stopped and a finished one does no training.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import progress, registry
from ..errors import InitpruneError
from . import executors, store
from .executions import Execution
from .points import Points
from .profiles import estimate, runnable
from .tasks import NOTEBOOKS, Task


def sweep(profile: str, jobs: int | None = None, dry_run: bool = False, executor: str = "local",
          ray_address: str | None = None, dask_scheduler: str | None = None, shared_fs: bool = False,
          retries: int = 3, cpus: float | None = None, gpus: float | None = None, echo=print,
          progress_to=None, every: float = 60.0, poll: float = 3.0) -> int:
    """Run a profile on an executor (local, ray, dask); returns the exit status (0: everything finished).
    ``jobs``: executions at once (default 1; a dry run without it estimates for 1 and for every core).

    Progress goes to ``progress_to`` (stdout; stderr stays for errors): a bar over the sweep's points
    on a terminal, else a line every ``every`` seconds; the store is read for finished points every
    ``poll`` seconds."""
    with sigterm_as_ctrl_c():  # SIGTERM stops a sweep as Ctrl-C does, its workers included
        ray_address = ray_address or (os.environ.get("RAY_ADDRESS") if executor == "ray" else None)
        run = _checked_executor(executor, jobs, ray_address, dask_scheduler, retries, cpus, gpus)
        executions, missing = runnable(profile, cpus, gpus)  # device auto: resolved against the GPUs asked
        for line in missing:
            echo(line)
        if ray_address or dask_scheduler:
            _check_shared_store(store.default_uri(), shared_fs)
        runs = store.points()  # creates the store before any parallel writer starts
        uri = runs.uri
        rows = status(executions, runs)
        if dry_run:
            labels = told_apart([r.execution for r in rows])
            for r, label in zip(rows, labels):
                echo(f"{len(r.points):4d} points, {len(r.finished):4d} finished  {label}")
            points, done = set().union(*(r.points for r in rows)), set().union(*(r.finished for r in rows))
            echo(f"{len(points)} points in {len(rows)} executions, {len(done)} finished")
            # for the --jobs given, else for one and for as many as this machine has cores
            echo(estimate(rows, [jobs] if jobs else sorted({1, os.cpu_count() or 1})))
            return 0
        jobs = jobs or 1
        if ray_address or dask_scheduler:
            _check_served_artifacts(runs, shared_fs)
        reaped = runs.reap()  # runs that a killed sweep left RUNNING on this host
        if reaped:
            echo(f"marked {reaped} run(s) KILLED that an interrupted sweep had left RUNNING")
        # longest first (points left x epochs), so that no long execution starts last and runs alone
        todo = [r.execution for r in sorted(rows, key=lambda r: -len(r.left) * r.execution.params["epochs"])
                if not r.done]
        where = "" if executor == "local" else f" on {executor} ({ray_address or dask_scheduler or 'a local cluster'})"
        echo(f"profile {profile}: {len(rows)} executions, {len(rows) - len(todo)} already finished, {len(todo)} to run"
             + where)
        if not todo:
            echo(f"done: 0 executions finished, 0 failed, {len(rows)} skipped")
            return 0
        sweep_id = uuid.uuid4().hex
        env = {"MLFLOW_TRACKING_URI": uri, **{k: v for k, v in os.environ.items()
                                              if k.startswith(("INITPRUNE_", "MLFLOW_TRACKING_"))},
               "INITPRUNE_PLUGIN_PATH": os.pathsep.join(registry.plugin_paths())}
        tasks = []
        for ex in todo:  # a point's torch threads are part of its spec (1, or $INITPRUNE_THREADS), not of the job
            tasks.append(Task(ex, profile, sweep_id, (NOTEBOOKS / f"{ex.notebook}.ipynb").read_text(), env,
                              ex.resources["cpus"], ex.resources["gpus"]))
        began = time.perf_counter()
        stream = run(tasks, jobs=jobs, address=ray_address, scheduler=dask_scheduler, retries=retries)
        outcomes = []
        progress = Progress({r.execution.cell: r.left for r in rows if r.execution in todo}, store.points(uri),
                            sweep_id, progress_to, every, poll, f"sweep {Path(profile).stem}")
        try:
            for result in stream:
                if result.get("cell"):  # the executor gave this task up: what it left RUNNING is dead
                    runs.end_sweep(sweep_id, result["cell"])
                outcomes.append(result)
                progress.execution(result)
        finally:
            stream.close()  # cancels what has not finished (Ctrl-C, an error)
            progress.close()
            killed = runs.end_sweep(sweep_id)  # nothing of this sweep stays RUNNING
        failed = [r for r in outcomes if r["error"]]
        for r in failed:
            echo(f"FAILED {r['label']}: {r['error']}")
        if any("No space left on device" in r["error"] for r in failed):
            echo("a disk is full: free space on it, then run the same command again (what finished is kept)")
        retried = sum(1 for r in outcomes if (r.get("attempt") or 1) > 1)
        if retried or killed:
            echo(f"{retried} execution(s) retried after a lost worker; {killed} run(s) left RUNNING marked KILLED")
        echo(f"done: {len(outcomes) - len(failed)} executions finished, {len(failed)} failed, "
             f"{len(rows) - len(todo)} skipped, in {time.perf_counter() - began:.0f}s")
        return 1 if failed else 0


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """While a sweep runs, SIGTERM raises Terminated in it (once: the clean-up that follows is
    not cut short by a second one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise executors.Terminated()

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@dataclass
class Status:
    """Where an execution stands in the store: its points and those already FINISHED, as (config
    hash, seed) keys (a point listed twice trains once, and counts once), and whether its notebook
    ran to the end and was stored. Only then is it done."""

    execution: Execution
    points: set
    finished: set
    stored: bool

    @property
    def done(self) -> bool:
        return self.finished == self.points and self.stored

    @property
    def left(self) -> set:
        return self.points - self.finished


def status(executions: list[Execution], runs: Points | None = None) -> list[Status]:
    """Each execution's ``Status``, from one look at the store (``runs``: the default store)."""
    finished, stored = (runs or store.points()).done()
    rows = []
    for ex in executions:
        points = {(p.hash(), p.seed) for p in ex.points}
        rows.append(Status(ex, points, points & finished, ex.cell in stored))
    return rows


def told_apart(executions) -> list[str]:
    """Each execution's label, with the settings that tell it from another of the same label
    (two "random fashion_mnist/lenet300" of 30 and 12 points: their epochs, sparsities or seeds)."""
    labels = [ex.label for ex in executions]
    out = []
    for ex, label in zip(executions, labels):
        same = [other for other, other_label in zip(executions, labels) if other_label == label]
        differ = sorted({k for other in same for k in {*ex.params, *other.params}
                         if repr(other.params.get(k)) != repr(ex.params.get(k))})
        out.append(" ".join([label, *(f"{k}={ex.params.get(k)}" for k in differ)]))
    return out


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _about(seconds: float | None) -> str:
    if seconds is None:
        return "time left unknown yet"
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left" if seconds < 5400 else f"about {seconds / 3600:.1f} h left"


class Progress:
    """A sweep's progress over its points, whatever the executor: a thread reads the store every
    ``poll`` seconds for the FINISHED points of the sweep (every executor's workers write there).
    On a terminal, one bar (finished / total, elapsed, an estimate of what is left); elsewhere (CI,
    a log) one line every ``every`` seconds. What is left: each cell's points left times the mean
    seconds of its finished points (the mean over cells where none has finished), over the number
    of executions running at once."""

    def __init__(self, left: dict[str, set], runs: Points, sweep_id: str, stream=None, every: float = 60.0,
                 poll: float = 3.0, desc: str = "sweep"):
        self.cell_of = {point: cell for cell, points in left.items() for point in points}
        self.left_by_cell = {cell: len(points) for cell, points in left.items()}
        self.total, self.sweep_id = len(self.cell_of), sweep_id
        self.runs = runs  # a store handle of its own (the thread polls it)
        self.stream = stream or sys.stdout
        self.terminal = progress.on_terminal(self.stream)
        self.every, self.poll = every, poll
        self.began = time.time()
        self.seconds: dict[tuple, float] = {}  # each finished point of this sweep: its measured seconds
        self.running = 1
        self.waits: dict[str, str] = {}  # execution run id: what it waits for, shown once each
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.bar = None
        if self.terminal:  # plain tqdm, never a notebook widget; drawn on a terminal that says 0 columns too
            self.bar = progress.terminal_bar(self.stream, total=self.total, desc=desc, unit="point",
                                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} points, "
                                                        "{elapsed} elapsed{postfix}")
            self.bar.set_postfix_str(_about(None), refresh=True)
        self.thread = threading.Thread(target=self._watch, name="sweep-progress", daemon=True)
        self.thread.start()

    @property
    def finished(self) -> int:
        return len(self.seconds)

    def left(self) -> float | None:
        """Seconds left, estimated; None before any point finished."""
        if not self.seconds:
            return None
        by_cell: dict[str, list[float]] = {}
        for point, seconds in self.seconds.items():
            by_cell.setdefault(self.cell_of[point], []).append(seconds)
        means = {cell: sum(v) / len(v) for cell, v in by_cell.items()}
        overall = sum(means.values()) / len(means)
        work = sum((n - len(by_cell.get(cell, []))) * means.get(cell, overall) for cell, n in self.left_by_cell.items())
        return work / max(1, self.running)

    def line(self) -> str:
        left = f", {_about(self.left())}" if self.finished < self.total else ""
        return f"points {self.finished}/{self.total}, {_duration(time.time() - self.began)} elapsed{left}"

    def update(self) -> None:
        """Read the store once: this sweep's FINISHED points, how many executions run now, and a
        line for each that began to wait for a point another sweep trains (tag ``waiting``)."""
        finished, running = self.runs.progress(self.sweep_id, since=int(self.began * 1000) - 1000)
        found = {point: seconds for point, seconds in finished.items() if point in self.cell_of}
        waits = {r.info.run_id: r.data.tags["waiting"] for r in running if r.data.tags.get("waiting")}
        for run_id, line in waits.items():
            if self.waits.get(run_id) != line:
                self.write(line)
        with self.lock:
            self.waits = waits
            self.seconds, self.running = found, max(1, len(running))
            if self.bar is not None:
                self.bar.n = self.finished
                self.bar.set_postfix_str(_about(self.left()) if self.finished < self.total else "", refresh=True)

    def _watch(self) -> None:
        printed = time.time()
        while not self.stop.wait(self.poll):
            try:
                self.update()
            except Exception:  # a busy or briefly unreachable store: the next look will do
                continue
            if not self.terminal and time.time() - printed >= self.every:
                printed = time.time()
                self.write(self.line())

    def write(self, text: str) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)

    def execution(self, result: dict) -> None:
        """A line per execution as it ends: finished, or failed with its error."""
        if result.get("error"):
            self.write(f"FAILED {result['label']} after {_duration(result.get('seconds') or 0)}: {result['error']}")
        else:
            self.write(f"finished {result['label']} in {_duration(result.get('seconds') or 0)}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=max(5.0, 2 * self.poll))
        try:
            self.update()
        except Exception:
            pass
        if self.bar is not None:
            self.bar.close()
        else:
            self.write(self.line())


def _checked_executor(executor, jobs, ray_address, dask_scheduler, retries, cpus, gpus):
    """The executor of that name (an unknown one lists the known ones), once its settings are checked."""
    run = executors.EXECUTORS[executor]
    if jobs is not None and jobs < 1:
        raise InitpruneError(f"--jobs must be at least 1, got {jobs}")
    if retries < 0:
        raise InitpruneError(f"--retries must be 0 or more, got {retries}")
    for flag, value in (("--cpus-per-task", cpus), ("--gpus-per-task", gpus)):
        if value is not None and value < 0:
            raise InitpruneError(f"{flag} must be 0 or more, got {value}")
    if dask_scheduler and executor != "dask":
        raise InitpruneError("--dask-scheduler goes with --executor dask")
    if ray_address and executor != "ray":
        raise InitpruneError("--ray-address goes with --executor ray")
    if dask_scheduler and not dask_scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        raise InitpruneError(f"--dask-scheduler {dask_scheduler}: give the scheduler's address, tcp://HOST:8786")
    return run


def _check_shared_store(uri: str, shared_fs: bool) -> None:
    """Workers on other machines must reach the store: a tracking server, or a path they share."""
    if uri.startswith(("http://", "https://")):
        store.check_store(uri)
    elif not shared_fs:
        raise InitpruneError(
            f"workers on other machines cannot write to {uri}: start `make server` on this machine and set "
            "MLFLOW_TRACKING_URI=http://THIS_HOST:5000, or pass --shared-fs if every worker sees this path")


def _check_served_artifacts(runs: Points, shared_fs: bool) -> None:
    location = runs.client.get_experiment(runs.exp_id).artifact_location
    if location.startswith("file:") and not shared_fs:
        raise InitpruneError(
            f"experiment '{store.experiment()}' keeps its artifacts at {location}, which workers on other "
            "machines cannot write: set INITPRUNE_EXPERIMENT to a new name for a served one, or pass --shared-fs")
