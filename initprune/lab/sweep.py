"""Sweeps: a profile (``notebooks/profiles/NAME.yaml``) expands into notebook executions, one per
grid cell, each run through papermill and logged to MLflow under a run that its task owns. The
tasks run on an executor (``executors.py``: a local process pool, Ray or Dask).

An execution whose points all have a FINISHED run is skipped without starting a kernel, so an
interrupted sweep resumes where it stopped and a finished one does no training.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import pruners, registry
from ..errors import InitpruneError
from . import executors, grid, results, runs, store
from .tasks import NOTEBOOKS, Task

PROFILES = NOTEBOOKS / "profiles"
# the parameters every method notebook has beside its method's options
COMMON = ("dataset", "arch", "sparsities", "seeds", "epochs", "data_root", "device", "log_to_mlflow",
          "parent_run_id", "profile", "points")
PROFILE_KEYS = ("description", "defaults", "resources", "executions")
RESOURCES = ("cpus", "gpus")  # what one execution asks of a cluster (Ray, Dask); the local pool ignores it


@dataclass
class Execution:
    notebook: str
    params: dict  # every parameter of the notebook: its defaults, overridden by the profile
    given: dict = field(default_factory=dict)  # what the profile set: the cell's identity
    asks: dict = field(default_factory=dict)  # the profile's resources: {cpus, gpus}
    optional: bool = False  # left out, in one line, where its dataset cannot be had on this machine
    _points: list | None = field(default=None, repr=False, compare=False)

    @property
    def methods(self) -> list[str]:
        """Its methods: the notebook's, or those it names (baselines, sanity); an empty list is
        every registered baseline (baselines.ipynb's default)."""
        method = self.params.get("method", self.notebook)
        return (method or pruners.of_family("baseline")) if isinstance(method, list) else [method]

    @property
    def options(self) -> dict:
        """The methods' options: what the profile set beside the notebook's parameters, over
        its ``options`` parameter. Each method takes those it declares."""
        return {**(self.params.get("options") or {}), **{k: v for k, v in self.given.items() if k not in self.params}}

    def parameters(self) -> dict:
        """What papermill passes: the notebook's parameters the profile set, the options, and
        the resolved specs of its points, so that the kernel runs them as they are."""
        out = {k: v for k, v in self.given.items() if k in self.params}
        out = {**out, "options": self.options} if self.options else out
        return {**out, "points": [p.to_dict() for p in self.points()]}

    def resources(self, cpus: float | None = None, gpus: float | None = None) -> dict:
        """CPUs and GPUs of one execution: the command line, else the profile, else one CPU and,
        for a notebook told to train on cuda, one GPU."""
        return {"cpus": cpus if cpus is not None else self.asks.get("cpus", 1),
                "gpus": gpus if gpus is not None else self.asks.get("gpus", int(self.params.get("device") == "cuda"))}

    @property
    def label(self) -> str:
        options = " ".join(f"{k}={v}" for k, v in self.given.items() if k not in COMMON)
        return f"{self.notebook} {self.params['dataset']}/{self.params['arch']} {options}".strip()

    @property
    def cell(self) -> str:
        """This grid cell's identity: its notebook and what the profile set, not which sweep ran it."""
        spec = json.dumps({"notebook": self.notebook, "given": self.given}, sort_keys=True, default=str)
        return hashlib.sha256(spec.encode()).hexdigest()[:12]

    def points(self) -> list:
        """The execution's points, resolved once (the profile check, the status and the task
        share them)."""
        if self._points is None:
            method = self.methods if isinstance(self.params.get("method"), list) else self.notebook
            self._points = grid.expand(method, self.params["dataset"], self.params["arch"], self.params["sparsities"],
                                       self.params["seeds"], self.params["epochs"], self.options,
                                       self.params.get("ablations", ("none",)), self.params.get("device", "auto"))
        return self._points


def notebook_parameters(name: str) -> dict:
    """A notebook's parameters with their default values, read from its ``parameters`` cell."""
    import papermill

    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
        raise InitpruneError(f"no notebook '{name}' in {NOTEBOOKS}; choose one of: {known}")
    found = papermill.inspect_notebook(str(path))
    return {k: ast.literal_eval(v["default"]) for k, v in found.items()}


def profiles() -> list[str]:
    return sorted({p.stem for p in [*PROFILES.glob("*.yaml"), *PROFILES.glob("*.yml")]})


class _Loader(yaml.SafeLoader):
    """YAML as safe_load reads it, but a key given twice in one mapping is an error, not the last one."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: the constructor says so
                break
            if first != line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice, on line {first} and line {line}; keep one",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def _profile_path(name: str) -> Path | None:
    """A profile's file: a YAML file's path (.yaml or .yml), else a profile's name in PROFILES."""
    if name.endswith((".yaml", ".yml")):
        return next((p for p in (Path(name), PROFILES / name) if p.is_file()), None)
    return next((p for p in (PROFILES / f"{name}.yaml", PROFILES / f"{name}.yml") if p.is_file()), None)


def _check_device(where: str, device) -> None:
    """A device name a run takes (api.resolve_device), checked without asking for the device."""
    import re

    if isinstance(device, str) and (device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device)):
        return
    raise InitpruneError(f"{where}: unknown device {device!r}; choose auto, cpu, cuda or cuda:N")


def _check_runs(where: str, execution: Execution, points: list) -> None:
    """What each run of the execution checks before it trains, once per distinct configuration:
    its pruner, its training settings, and that its model and candidates fit in this machine's
    memory (on the device it asks for, where this machine has it)."""
    import torch

    from .. import data, memory, models

    device = execution.params.get("device", "auto")
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if device == "auto" and cuda else "cpu" if device in ("auto", "cpu") else device)
    built, seen = {}, set()
    for p in points:
        key = (p.method, p.dataset, p.arch, p.ablation, repr(sorted(p.options.items())),
               repr(sorted(p.training.items())))  # cheap: a grid may have 100,000 points
        if key in seen:
            continue
        seen.add(key)
        try:
            pruner, settings = p.pruner(), p.settings()
            if dev.type == "cuda" and not (cuda and (dev.index or 0) < torch.cuda.device_count()):
                continue  # a GPU machine's run: its memory cannot be seen from here
            if (p.arch, p.dataset) not in built:
                entry = data.DATASETS[p.dataset]
                built[p.arch, p.dataset] = models.build(p.arch, entry.shape, entry.classes, 0)
            memory.check(built[p.arch, p.dataset], pruner, settings, [], dev)
        except InitpruneError as err:
            raise InitpruneError(f"{where}: {err}") from None


def _check_type(where: str, key: str, value, default) -> None:
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), list: (list,), dict: (dict,)}
    expected = kinds.get(type(default))
    if expected is None or value is None:
        return
    if isinstance(value, bool) and bool not in expected:
        expected = ()
    if not isinstance(value, expected):
        raise InitpruneError(f"{where}: '{key}' must be {type(default).__name__}, got {value!r}")


def load_profile(name: str) -> list[Execution]:
    path = _profile_path(name)
    if path is None:
        if name.endswith((".yaml", ".yml")):
            raise InitpruneError(f"profile file {name} not found; give a YAML file's path, or a profile's name "
                                 f"({', '.join(profiles())})")
        raise InitpruneError(f"unknown profile '{name}'; choose one of: {', '.join(profiles())}")
    try:
        spec = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        raise InitpruneError(f"profile {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise InitpruneError(f"profile {path} must be a mapping with {', '.join(PROFILE_KEYS)}")
    unknown = set(spec) - set(PROFILE_KEYS)
    if unknown:
        raise InitpruneError(f"profile {path.name}: unknown key(s) {sorted(unknown)}; "
                             f"allowed: {', '.join(PROFILE_KEYS)}")
    executions = spec.get("executions") or []
    if not isinstance(executions, list):
        raise InitpruneError(f"profile {path.name}: 'executions' must be a list of executions "
                             f"('- notebook: NAME' each), got {executions!r}")
    if not executions:
        raise InitpruneError(f"profile {path.name} has no executions; add at least one")
    if not isinstance(spec.get("defaults") or {}, dict):
        raise InitpruneError(f"profile {path.name}: 'defaults' must be a mapping of parameters and options "
                             f"(dataset: digits, ...), got {spec['defaults']!r}")
    out = []
    for i, entry in enumerate(executions):
        where = f"profile {path.name}, execution {i + 1}"
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise InitpruneError(f"{where}: each execution needs 'notebook: NAME'")
        given = {**(spec.get("defaults") or {}),
                 **{k: v for k, v in entry.items() if k not in ("notebook", "resources", "optional")}}
        if not isinstance(entry.get("optional", False), bool):
            raise InitpruneError(f"{where}: 'optional' must be true or false, got {entry['optional']!r}")
        asks = {**_resources(path.name, spec.get("resources")), **_resources(where, entry.get("resources"))}
        if given.get("log_to_mlflow", True) is not True:  # its points would be trained again on every resume
            raise InitpruneError(f"{where}: a sweep records every point in MLflow, so log_to_mlflow cannot be "
                                 f"{given['log_to_mlflow']!r}; remove it (an untracked run: python -m initprune run "
                                 "--no-tracking)")
        if "device" in given:
            _check_device(where, given["device"])
        defaults = notebook_parameters(entry["notebook"])
        for key, value in given.items():
            if key in defaults:
                _check_type(where, key, value, defaults[key])
        execution = Execution(entry["notebook"], {**defaults, **{k: v for k, v in given.items() if k in defaults}},
                              given, asks, optional=entry.get("optional", False))
        try:
            takes = {o for m in execution.methods for o in pruners.option_names(m)}
            for key in set(given) - set(defaults) - takes:
                raise InitpruneError(
                    f"'{key}' is neither a parameter of {entry['notebook']}.ipynb ({', '.join(defaults)}) nor an "
                    f"option of {', '.join(execution.methods)} ({', '.join(sorted(takes)) or 'none'})")
            points = execution.points()  # unknown names, bad options, empty grids: fail before anything runs
        except InitpruneError as err:
            raise InitpruneError(f"{where}: {err}") from None
        _check_runs(where, execution, points)  # what each run checks before it trains: in a dry run too
        out.append(execution)
    return out


def available(executions: list[Execution]) -> tuple[list[Execution], list[str]]:
    """The executions this machine can run, and a line for each optional one left out because
    its dataset cannot be had here (not in the data root, no offline copy, no network), saying how
    to get it. Each dataset is tried once."""
    from .. import data

    problems: dict[tuple, str | None] = {}
    keep, lines = [], []
    for ex in executions:
        if ex.optional:
            key = (ex.params["dataset"], ex.params.get("data_root") or None)
            if key not in problems:
                try:
                    data.load(*key)
                    problems[key] = None
                except InitpruneError as err:
                    problems[key] = str(err).splitlines()[0]
            if problems[key]:
                lines.append(f"left out: {ex.label} ({problems[key]})")
                continue
        keep.append(ex)
    return keep, lines


def _resources(where: str, spec) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict) or set(spec) - set(RESOURCES):
        raise InitpruneError(f"{where}: resources must be a mapping of {', '.join(RESOURCES)}, got {spec!r}")
    for key, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InitpruneError(f"{where}: resources.{key} must be a number of 0 or more, got {value!r}")
    return spec


def status(executions: list[Execution]) -> list[tuple[Execution, set, set, bool]]:
    """For each execution: its points and those already FINISHED, as (config hash, seed) keys (a
    point listed twice trains once, and counts once), and whether its notebook ran to the end and
    was stored. Only then is an execution done."""
    c, exp_id = store.ensure_store()
    finished, stored = results.finished_points(c, exp_id), results.finished_cells(c, exp_id)
    rows = []
    for ex in executions:
        points = {(p.hash(), p.seed) for p in ex.points()}
        rows.append((ex, points, points & finished, ex.cell in stored))
    return rows



def sweep(profile: str, jobs: int = 1, dry_run: bool = False, executor: str = "local",
          ray_address: str | None = None, dask_scheduler: str | None = None, shared_fs: bool = False,
          retries: int = 3, cpus: float | None = None, gpus: float | None = None, echo=print,
          progress_to=None, every: float = 60.0, poll: float = 3.0) -> int:
    """Run a profile on an executor (local, ray, dask); returns the exit status (0: everything finished).

    Progress goes to ``progress_to`` (stdout; stderr stays for errors): a bar over the sweep's points
    on a terminal, else a line every ``every`` seconds; the store is read for finished points every
    ``poll`` seconds."""
    ray_address = ray_address or (os.environ.get("RAY_ADDRESS") if executor == "ray" else None)
    _check_executor(executor, jobs, ray_address, dask_scheduler, retries, cpus, gpus)
    executions, missing = available(load_profile(profile))
    for line in missing:
        echo(line)
    uri = store.default_uri()
    if ray_address or dask_scheduler:
        _check_shared_store(uri, shared_fs)
    rows = status(executions)  # creates the store before any parallel writer starts
    if dry_run:
        for ex, points, done, _ in rows:
            echo(f"{len(points):4d} points, {len(done):4d} finished  {ex.label}")
        points, done = set().union(*(r[1] for r in rows)), set().union(*(r[2] for r in rows))
        echo(f"{len(points)} points in {len(rows)} executions, {len(done)} finished")
        echo(estimate(rows, jobs))
        return 0
    c, exp_id = store.ensure_store()
    if ray_address or dask_scheduler:
        _check_served_artifacts(c, exp_id, shared_fs)
    reaped = runs.reap(c, exp_id)  # runs that a killed sweep left RUNNING on this host
    if reaped:
        echo(f"marked {reaped} run(s) KILLED that an interrupted sweep had left RUNNING")
    # longest first (points left x epochs), so that no long execution starts last and runs alone
    todo = [ex for ex, points, done, stored in sorted(rows, key=lambda r: -len(r[1] - r[2]) * r[0].params["epochs"])
            if done != points or not stored]
    echo(f"profile {profile}: {len(rows)} executions, {len(rows) - len(todo)} already finished, {len(todo)} to run"
         + ("" if executor == "local" else f" on {executor} ({ray_address or dask_scheduler or 'a local cluster'})"))
    if not todo:
        echo(f"done: 0 executions finished, 0 failed, {len(rows)} skipped")
        return 0
    sweep_id = uuid.uuid4().hex
    env = {"MLFLOW_TRACKING_URI": uri, **{k: v for k, v in os.environ.items()
                                          if k.startswith(("INITPRUNE_", "MLFLOW_TRACKING_"))},
           "INITPRUNE_PLUGIN_PATH": os.pathsep.join(registry.plugin_paths())}
    tasks = []
    for ex in todo:  # a point's torch threads are part of its spec (1, or $INITPRUNE_THREADS), not of the job
        need = ex.resources(cpus, gpus)
        tasks.append(Task(ex, profile, sweep_id, (NOTEBOOKS / f"{ex.notebook}.ipynb").read_text(), env,
                          need["cpus"], need["gpus"]))
    began = time.perf_counter()
    stream = executors.EXECUTORS[executor](tasks, {"jobs": jobs, "address": ray_address, "scheduler": dask_scheduler,
                                                   "retries": retries})
    outcomes = []
    progress = Progress({ex.cell: points - done for ex, points, done, _ in rows if ex in todo}, uri, sweep_id,
                        progress_to, every, poll, f"sweep {profile}")
    try:
        for result in stream:
            if result.get("cell"):  # the executor gave this task up: what it left RUNNING is dead
                runs.end_sweep(c, exp_id, sweep_id, result["cell"])
            outcomes.append(result)
            progress.execution(result)
    finally:
        stream.close()  # cancels what has not finished (Ctrl-C, an error)
        progress.close()
        killed = runs.end_sweep(c, exp_id, sweep_id)  # nothing of this sweep stays RUNNING
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

    def __init__(self, left: dict[str, set], uri: str, sweep_id: str, stream=None, every: float = 60.0,
                 poll: float = 3.0, desc: str = "sweep"):
        self.cell_of = {point: cell for cell, points in left.items() for point in points}
        self.left_by_cell = {cell: len(points) for cell, points in left.items()}
        self.total, self.sweep_id = len(self.cell_of), sweep_id
        self.client, self.exp_id = store.ensure_store(uri)  # once: the thread reuses it
        self.stream = stream or sys.stdout
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every, self.poll = every, poll
        self.began = time.time()
        self.seconds: dict[tuple, float] = {}  # each finished point of this sweep: its measured seconds
        self.running = 1
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.bar = None
        if self.terminal:
            from tqdm import tqdm  # plain tqdm: a bar on the terminal, never a notebook widget

            self.bar = tqdm(total=self.total, desc=desc, unit="point", file=self.stream, dynamic_ncols=True,
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
        """Read the store once: this sweep's FINISHED points and how many executions run now."""
        c, exp_id = self.client, self.exp_id
        since = int(self.began * 1000) - 1000
        found = {}
        token = None
        while True:
            page = c.search_runs([exp_id], f"tags.kind = 'point' and attributes.status = 'FINISHED' "
                                           f"and attributes.start_time >= {since}", max_results=1000, page_token=token)
            for r in page:
                point = (r.data.tags.get("config_hash"), int(r.data.tags.get("seed", -1)))
                if point in self.cell_of and r.info.end_time:
                    found.setdefault(point, (r.info.end_time - r.info.start_time) / 1000)
            token = page.token
            if not token:
                break
        running = c.search_runs([exp_id], f"tags.kind = 'execution' and tags.sweep = '{self.sweep_id}' "
                                          "and attributes.status = 'RUNNING'", max_results=1000)
        with self.lock:
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


def seconds_per_epoch() -> dict[str, tuple[float, str]]:
    """{"dataset/arch": (seconds, where from)}: the median of the last epoch's seconds of the
    store's finished points of each cell, else the measurement in benchmarks/latest.json (
    "seconds_per_epoch", one thread per point as a sweep trains them)."""
    import statistics

    c, exp_id = store.ensure_store()
    seen: dict[str, list[float]] = {}
    for run in results._search_all(c, exp_id, "tags.kind = 'point' and attributes.status = 'FINISHED'"):
        value = run.data.metrics.get("epoch_seconds")
        if value is not None and run.data.params.get("threads", "1") == "1":
            seen.setdefault(f"{run.data.tags.get('dataset')}/{run.data.tags.get('arch')}", []).append(value)
    out = {cell: (statistics.median(v), f"{len(v)} finished points") for cell, v in seen.items()}
    bench = store.ROOT / "benchmarks" / "latest.json"
    measured = json.loads(bench.read_text()).get("seconds_per_epoch", {}) if bench.exists() else {}
    for cell, seconds in measured.items():
        out.setdefault(cell, (float(seconds), "benchmarks/latest.json"))
    return out


def estimate(rows, jobs: int) -> str:
    """How long the points left would train, from measured seconds per epoch of each cell and
    the epochs each point trains in all (K-starts' candidates counted), spread over ``jobs``."""
    left: dict[str, float] = {}
    counted = set()
    for ex, _, done, _ in rows:
        for p in ex.points():
            key = (p.hash(), p.seed)
            if key in done or key in counted:
                continue
            counted.add(key)
            cell = f"{p.dataset}/{p.arch}"
            left[cell] = left.get(cell, 0.0) + p.pruner().trained_epochs(p.epochs)
    if not left:
        return "estimate: nothing left to train"
    rates = seconds_per_epoch()
    known = {cell: epochs * rates[cell][0] for cell, epochs in left.items() if cell in rates}
    parts = [f"{cell}: {epochs:,.0f} epochs" + (f" at {rates[cell][0]:.2f} s ({rates[cell][1]})" if cell in rates
                                                 else " at an unmeasured speed")
             for cell, epochs in sorted(left.items())]
    total = sum(known.values()) / max(1, jobs)
    head = (f"estimate: about {total / 60:.0f} min with --jobs {jobs}" if known else "estimate: unknown")
    if known and len(known) < len(left):
        head += " for the measured cells"
    return f"{head} ({'; '.join(parts)})"


def _check_executor(executor, jobs, ray_address, dask_scheduler, retries, cpus, gpus) -> None:
    executors.EXECUTORS[executor]  # an unknown name lists the known ones
    if jobs < 1:
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


def _check_shared_store(uri: str, shared_fs: bool) -> None:
    """Workers on other machines must reach the store: a tracking server, or a path they share."""
    if uri.startswith(("http://", "https://")):
        store.check_store(uri)
    elif not shared_fs:
        raise InitpruneError(
            f"workers on other machines cannot write to {uri}: start `make server` on this machine and set "
            "MLFLOW_TRACKING_URI=http://THIS_HOST:5000, or pass --shared-fs if every worker sees this path")


def _check_served_artifacts(c, exp_id: str, shared_fs: bool) -> None:
    location = c.get_experiment(exp_id).artifact_location
    if location.startswith("file:") and not shared_fs:
        raise InitpruneError(
            f"experiment '{store.experiment()}' keeps its artifacts at {location}, which workers on other "
            "machines cannot write: set INITPRUNE_EXPERIMENT to a new name for a served one, or pass --shared-fs")
