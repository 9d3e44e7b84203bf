"""The point store: the MLflow runs of the lab, their tag schema and every query of them, in one
place. One parent run per notebook execution (an attempt at a grid cell, tag ``kind =
execution``), one child run per (sparsity, seed) point (``kind = point``); who holds a point,
what a dead process left RUNNING, what a point logs, and reading results back.

A point is identified by (config hash, seed): one with a FINISHED run is never trained again, a
FAILED one is retried. Every other lab module reads and writes runs through ``Points``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from .. import pruners, samples, spec
from ..errors import InitpruneError
from ..result import RunResult
from ..spec import RunSpec
from ..tasks import TASKS
from . import faults
from .root import git_commit

# the schema: a run's ``kind`` tag, and the tags a search names by a Python word
POINT, EXECUTION, LEGACY = "point", "execution", "legacy-point"
TAGS = {"parent": "mlflow.parentRunId"}  # every other word is the tag's own name
IDENTITY_TAG = "initprune.identity"  # the experiment's: the run identity scheme its points are kept under

# the spec's own fields logged as MLflow params (options and training settings are added by prefix)
PARAMS = tuple(f.name for f in dataclasses.fields(RunSpec) if f.name not in ("options", "training"))


def where(status: str | None = None, since: int | None = None, **tags) -> str:
    """An MLflow search filter: each tag equal to its value (``parent``: the parent run), the
    run's status, and a start time from ``since`` (milliseconds) on."""
    parts = [f"tags.{TAGS.get(k, k)} = '{v}'" for k, v in tags.items()]
    parts += [f"attributes.status = '{status}'"] if status else []
    parts += [f"attributes.start_time >= {since}"] if since is not None else []
    return " and ".join(parts)


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


class Unreadable(InitpruneError):
    """A FINISHED point whose result cannot be read back: it counts as not finished."""


@dataclasses.dataclass(frozen=True)
class Claim:
    """What ``Points.claim`` found for a point: exactly one of its FINISHED result, the live run
    of another execution that holds it, or the run this execution opened to train it."""

    result: RunResult | None = None
    holder: object | None = None  # an MLflow run
    run_id: str | None = None


class Points:
    """The lab's runs in one experiment of one store (``store.points`` opens it)."""

    def __init__(self, client, exp_id: str):
        self.client, self.exp_id = client, exp_id
        self.uri = getattr(client, "tracking_uri", None)  # where it is: a sweep hands it to its workers

    def search(self, query: str, most: int = 5000) -> list:
        return self.client.search_runs([self.exp_id], query, max_results=most)

    def every(self, query: str) -> Iterator:
        """Every run that matches, page after page, oldest first."""
        token = None
        while True:
            page = self.client.search_runs([self.exp_id], query, max_results=1000, page_token=token,
                                           order_by=["attributes.start_time ASC"])
            yield from page
            token = page.token
            if not token:
                return

    # ---- one point: claimed, trained under its run, recorded or failed ---------------------------

    def finished(self, config: RunSpec):
        """The FINISHED run of this point, or None."""
        runs = self.search(where("FINISHED", kind=POINT, config_hash=config.hash(), seed=config.seed), most=1)
        return runs[0] if runs else None

    def holder(self, config: RunSpec, own: str | None = None):
        """The live run that holds this point, earliest first; None if there is none before ``own``.
        Live: RUNNING, under a RUNNING execution, and with its process alive: on this host its pid,
        on another its heartbeat; one there that missed MISSED heartbeats is marked FAILED (abandoned)
        on the way, so that the point is claimed again. A run of its own (``python -m initprune run``,
        RUNNING only while it logs) never holds a point: one that another machine lost could not be
        told from one still logging."""
        query = where("RUNNING", config_hash=config.hash(), seed=config.seed, kind=POINT)
        for run in sorted(self.search(query, most=100), key=lambda r: (r.info.start_time, r.info.run_id)):
            if run.info.run_id == own:
                return None
            tags = run.data.tags
            if tags.get("host") == socket.gethostname() and not _alive(tags):
                continue
            if tags.get("host") != socket.gethostname() and _silent(run):
                self.abandon(run.info.run_id, tags.get("host"))
                continue
            parent = tags.get(TAGS["parent"])
            if parent and self.client.get_run(parent).info.status == "RUNNING":
                return run
        return None

    def claim(self, config: RunSpec, parent: str | None) -> Claim:
        """The point's FINISHED result (read back; one whose result cannot be read is marked
        FAILED and claimed again), else the live run of another execution that holds it, else a
        RUNNING run of this execution that claims it, under ``parent``."""
        while True:
            done = self.finished(config)
            if done is not None:
                try:
                    return Claim(result=self.load(done))
                except Unreadable as err:  # not finished after all: FAILED, so that it is trained again
                    print(f"{err}: training it again", flush=True)
                    self.client.set_tag(done.info.run_id, "error", str(err)[:500])
                    self.client.set_terminated(done.info.run_id, "FAILED")
                    continue
            holder = self.holder(config)
            if holder is not None:
                return Claim(holder=holder)
            run_id = self.open_point(config, parent)
            # the run another execution held may have FINISHED since the first look: with ours open,
            # one that finishes from now on was seen RUNNING above, so this look is final
            if self.holder(config, run_id) is None and self.finished(config) is None:
                return Claim(run_id=run_id)
            self.client.delete_run(run_id)  # another execution claimed it first, or finished it meanwhile

    def open_point(self, config: RunSpec, parent: str | None = None, start_time: int | None = None) -> str:
        """A RUNNING run that claims the point: a child of its execution's run, or (``python -m
        initprune run``, logged once trained) a run of its own."""
        tags = {"kind": POINT, **({TAGS["parent"]: parent} if parent else {}), "config_hash": config.hash(),
                "seed": str(config.seed), "method": config.method, "dataset": config.dataset,
                "arch": config.arch, "ablation": config.ablation, "identity": spec.SCHEME, **_owner(),
                "heartbeat": _beat(), "variant": json.dumps(config.variant(), sort_keys=True)}
        parts = [pruners.label(config.method, config.options), f"{config.dataset}/{config.arch}",
                 f"s={config.sparsity:g}", f"seed {config.seed}"]
        parts += [config.ablation] if config.ablation != "none" else []
        name = " · ".join(parts)  # "combined (cubic) · digits/mlp · s=0.98 · seed 0"
        return self.client.create_run(self.exp_id, start_time=start_time, tags=tags, run_name=name).info.run_id

    def log(self, run_id: str, config: RunSpec, result: RunResult) -> None:
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
        self.client.log_batch(run_id, metrics=metrics[:1000], params=[Param(k, str(v)) for k, v in params.items()])
        faults.pause("logging")
        for start in range(1000, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[start:start + 1000])
        self.client.log_dict(run_id, result.to_dict(), "result.json")
        kept = getattr(result, "reconstructions", None)  # a reconstruction run's test images (initprune/samples.py)
        if kept is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / samples.ARTIFACT
                path.write_bytes(samples.encode(kept))
                self.client.log_artifact(run_id, str(path))

    def record(self, run_id: str, config: RunSpec, result: RunResult, parent: str | None) -> None:
        """Log a trained point to its run, then mark it FINISHED (``finish``); ``result.run_id`` set."""
        result.run_id = run_id
        self.log(run_id, config, result)
        self.finish(run_id, parent)

    def check_execution(self, parent: str | None) -> None:
        """Superseded if the point's execution was given up (Ctrl-C, a lost worker and its retry):
        what it trains then is not counted."""
        if parent and self.client.get_run(parent).info.status != "RUNNING":
            raise Superseded(f"execution {parent} ended while this point ran")

    def finish(self, run_id: str, parent: str | None) -> None:
        """Mark a point FINISHED once everything is logged; Superseded if its execution ended meanwhile,
        or if a sweep on another host took the point over (its heartbeats did not reach the store)."""
        self.check_execution(parent)
        if self.client.get_run(run_id).info.status != "RUNNING":
            raise Superseded(f"point run {run_id} was taken over while it ran: its heartbeat stopped")
        self.client.set_terminated(run_id, "FINISHED")  # only now does the point count as done

    def fail(self, run_id: str, err: BaseException) -> None:
        """Record what stopped a point, never FINISHED: the next sweep retries the point."""
        self.client.set_tag(run_id, "error", f"{type(err).__name__}: {err}"[:500])
        self.client.set_terminated(run_id, "KILLED" if isinstance(err, (KeyboardInterrupt, Superseded)) else "FAILED")

    def abandon(self, run_id: str, host: str | None) -> None:
        """Mark FAILED a point whose holder on another host stopped beating: the point is trained again."""
        self.client.set_tag(run_id, "error", f"abandoned: no heartbeat from host {host} in {MISSED * HEARTBEAT:g} s; "
                                             f"taken over by {socket.gethostname()}")
        self.client.set_terminated(run_id, "FAILED")
        _heard.pop(run_id, None)

    @contextlib.contextmanager
    def beating(self, run_ids: list[str], parent: str | None):
        """While the points of ``run_ids`` train for the execution ``parent``: a thread refreshes their
        ``heartbeat`` tags every HEARTBEAT seconds, which tells a sweep on another host that this
        process still holds them. Superseded at once if the execution was given up meanwhile
        (``check_execution``): a Dask task cannot be stopped, and what it trains then is not counted."""
        self.check_execution(parent)
        stop, interval = threading.Event(), HEARTBEAT

        def beat():
            while not stop.wait(interval):
                for run_id in run_ids:
                    with contextlib.suppress(Exception):  # a busy or briefly unreachable store: the next beat will do
                        self.client.set_tag(run_id, "heartbeat", _beat())

        thread = threading.Thread(target=beat, name="initprune-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)

    @contextlib.contextmanager
    def waiting(self, parent: str | None):
        """``say(line)``: while an execution waits for a point another one trains, its run says for
        what (tag ``waiting``), which the sweep shows: what a kernel prints is seen by no one until
        its notebook is stored. The tag goes when the wait is over, however it ended."""
        said = []

        def say(line: str) -> None:
            print(line, flush=True)
            if parent:
                self.client.set_tag(parent, "waiting", line)
                said.append(line)

        try:
            yield say
        finally:
            if said:
                with contextlib.suppress(Exception):
                    self.client.delete_tag(parent, "waiting")

    # ---- reading results back -------------------------------------------------------------------

    @staticmethod
    def samples(run) -> dict | None:
        """A reconstruction run's kept test images (``samples.ARTIFACT``: targets and outputs), None
        where it kept none (a classifier, a run stored before they were kept) or they cannot be read."""
        uri = run.info.artifact_uri
        try:
            if uri.startswith("file:"):
                path = Path(urllib.parse.urlparse(uri).path) / samples.ARTIFACT
                return samples.decode(path.read_bytes()) if path.is_file() else None
            import mlflow.artifacts

            return samples.decode(Path(mlflow.artifacts.download_artifacts(f"{uri}/{samples.ARTIFACT}")).read_bytes())
        except Exception:  # missing or damaged: the picture leaves the run out, its numbers stay
            return None

    @staticmethod
    def load(run) -> RunResult:
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

    def finished_runs(self, since: int | None = None) -> Iterator:
        """Every FINISHED point's run, oldest first (started from ``since`` ms on, if given)."""
        return self.every(where("FINISHED", since, kind=POINT))

    def finished_keys(self) -> set[tuple[str, int]]:
        """(config hash, seed) of every FINISHED point, in one search rather than one per point; one
        whose result is missing counts as not finished (its execution trains it again)."""
        return {key(r) for r in self.finished_runs() if _has_result(r)}

    def done(self) -> tuple[set[tuple[str, int]], set[str]]:
        """What a sweep skips, in one call: ``finished_keys`` and ``finished_cells``."""
        return self.finished_keys(), self.finished_cells()

    def progress(self, sweep: str, since: int) -> tuple[dict[tuple[str, int], float], list]:
        """A sweep's progress, in one call: {(config hash, seed): seconds} of the points FINISHED
        from ``since`` (ms) on, and the sweep's executions that run now."""
        finished = {}
        for r in self.finished_runs(since):
            if r.info.end_time:
                finished.setdefault(key(r), (r.info.end_time - r.info.start_time) / 1000)
        return finished, self.running(sweep)

    def finished_cells(self) -> set[str]:
        """The grid cells with a FINISHED execution: its notebook ran to the end and was stored."""
        return {r.data.tags.get("cell") for r in self.every(where("FINISHED", kind=EXECUTION))}

    def without_result(self) -> list[str]:
        """The FINISHED points whose result is missing, one line each: what the figures leave out."""
        return [f"point run {r.info.run_id} ({_point(r)}) is FINISHED but has no result"
                for r in self.finished_runs() if not _has_result(r)]

    def executions(self) -> dict[str, dict]:
        """Every execution's run: {run id: its tags}."""
        return {r.info.run_id: r.data.tags for r in self.every(where(kind=EXECUTION))}

    def running(self, sweep: str) -> list:
        """The executions of a sweep that run now."""
        return self.search(where("RUNNING", kind=EXECUTION, sweep=sweep), most=1000)

    def migrate(self) -> int:
        """Once per store: retire the points stored under an older identity scheme, which hashed only
        the values that differed from the defaults of its day and recorded neither the device nor the
        torch threads a point ran with (the threads change its numbers). They cannot be re-keyed
        exactly, so they are kept, tagged ``kind = legacy-point`` (their old kind in ``legacy_kind``),
        and never served or shown: each such point is trained again once. Recorded on the experiment:
        ``initprune.retired``, counted from the store, then ``initprune.identity``, last, so that a
        migration cut short is done again, not taken as done. Returns how many it retired."""
        c, scheme = self.client, int(spec.SCHEME)
        older = [r.info.run_id for r in self.every(where(kind=POINT))
                 if (scheme_of(r.data.tags.get("identity")) or 0) < scheme]  # not one of a newer scheme
        for run_id in older:
            c.set_tag(run_id, "legacy_kind", POINT)
            c.set_tag(run_id, "kind", LEGACY)
        retired = sum(1 for _ in self.every(where(kind=LEGACY)))
        c.set_experiment_tag(self.exp_id, "initprune.retired", str(retired))
        c.set_experiment_tag(self.exp_id, IDENTITY_TAG, spec.SCHEME)
        if older:
            print(f"initprune: {len(older)} point(s) of this store were stored under an older run identity; they "
                  "are kept (tag kind = legacy-point) and will be trained again once", flush=True)
        return len(older)

    # ---- executions: the parent runs -----------------------------------------------------------

    def start_parent(self, notebook, dataset: str, arch: str, profile: str, **tags) -> str:
        notebook = notebook if isinstance(notebook, str) else ",".join(notebook)  # a list of methods
        tags = {"kind": EXECUTION, "method": notebook, "dataset": dataset, "arch": arch,
                "git_commit": git_commit(), "profile": profile, **_owner(), **tags}
        return self.client.create_run(self.exp_id, tags=tags, run_name=f"{notebook} {dataset}/{arch}").info.run_id

    def start_attempt(self, notebook, dataset: str, arch: str, profile: str, cell: str, sweep: str,
                      **tags) -> tuple[str, int]:
        """Open the run of one attempt at a grid cell: (run id, attempt number).

        The task, not the notebook, owns this run. An earlier attempt of the same cell in the same
        sweep that is still RUNNING lost its worker (an executor retries only then): it is marked
        KILLED, with whatever it was training, before the retry starts. ``tags``: more of the run's
        tags (its cell's tested sparsities, which the report reads back for the points it ran).
        """
        earlier = self.search(where(kind=EXECUTION, cell=cell, sweep=sweep), most=1000)
        for run in earlier:
            if run.info.status == "RUNNING":
                self.reap(run.info.run_id)
        attempt = len(earlier) + 1
        run_id = self.start_parent(notebook, dataset, arch, profile, cell=cell, sweep=sweep,
                                   attempt=str(attempt), **tags)
        return run_id, attempt

    def end(self, run_id: str, status: str) -> None:
        """End an execution's run (FINISHED or FAILED), unless it ended already (the driver gave it up)."""
        if self.client.get_run(run_id).info.status == "RUNNING":
            self.client.set_terminated(run_id, status)

    def end_sweep(self, sweep: str, cell: str | None = None) -> int:
        """Mark KILLED every run of this sweep (or of one of its cells) still RUNNING, executions and
        their points: at the end of a sweep, on Ctrl-C, or when an executor gave a task up. A worker
        that died took them with it. Returns how many."""
        executions = self.search(where(kind=EXECUTION, sweep=sweep, **({"cell": cell} if cell else {})))
        ids = {r.info.run_id for r in executions}
        points = self.search(where("RUNNING", kind=POINT)) if ids else []
        stale = [r for r in executions if r.info.status == "RUNNING"]
        stale += [r for r in points if r.data.tags.get(TAGS["parent"]) in ids]
        for run in stale:
            self.client.set_terminated(run.info.run_id, "KILLED")
        return len(stale)

    def reap(self, parent: str | None = None) -> int:
        """Mark KILLED what is left RUNNING: the runs of execution ``parent`` (a sweep stopped by
        Ctrl-C), or else every run of this host whose process no longer exists (a sweep killed).
        Returns how many were marked."""
        query = where("RUNNING", parent=parent) if parent else where("RUNNING", host=socket.gethostname())
        stale = [r for r in self.search(query) if parent or not _alive(r.data.tags)]
        if parent:
            stale += [self.client.get_run(parent)]
        for run in stale:
            if run.info.status == "RUNNING":
                self.client.set_terminated(run.info.run_id, "KILLED")
        return len(stale)


def scheme_of(tag: str | None) -> int | None:
    """An identity scheme tag as a number (schemes compare as numbers, "10" after "2"): 0 where
    there is none (the first scheme wrote none), None where it is not a number."""
    if tag is None:
        return 0
    return int(tag) if tag.isdigit() else None


def key(run) -> tuple[str, int]:
    """A point run's identity: (config hash, seed)."""
    return run.data.tags.get("config_hash"), int(run.data.tags.get("seed", -1))


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


def _beat() -> str:
    return str(time.time_ns() // 1_000_000)  # milliseconds: every beat a new value, however short the interval
