"""Sweeps: a profile (``notebooks/profiles/NAME.yaml``) expands into notebook executions, each run
through papermill with ``notebooks/`` as working directory and logged to MLflow as a parent run.

An execution whose points all have a FINISHED run is skipped without starting a kernel, so an
interrupted sweep resumes where it stopped and a finished one does no training.
"""

from __future__ import annotations

import ast
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import yaml

from . import tracking
from .data import REPO_ROOT
from .errors import InitpruneError

NOTEBOOKS = REPO_ROOT / "notebooks"
PROFILES = NOTEBOOKS / "profiles"
# the parameters every method notebook has beside its method's options
COMMON = ("dataset", "arch", "sparsities", "seeds", "epochs", "data_root", "device", "log_to_mlflow",
          "parent_run_id", "profile")
PROFILE_KEYS = ("description", "defaults", "executions")
# the kernel's own start-up warnings (it listens on 127.0.0.1 over TCP) are noise on a sweep's stderr;
# a notebook's errors still come back through papermill
KERNEL = {"progress_bar": False, "extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}


@dataclass
class Execution:
    notebook: str
    params: dict  # every parameter of the notebook: its defaults, overridden by the profile
    given: dict = field(default_factory=dict)  # what the profile set (passed to papermill)

    @property
    def label(self) -> str:
        options = " ".join(f"{k}={v}" for k, v in self.given.items() if k not in COMMON)
        return f"{self.notebook} {self.params['dataset']}/{self.params['arch']} {options}".strip()

    def points(self):
        method = self.params.get("method", self.notebook)  # baselines and sanity name their method
        options = {k: v for k, v in self.params.items() if k not in (*COMMON, "method", "ablations")}
        return tracking.expand(method, self.params["dataset"], self.params["arch"], self.params["sparsities"],
                               self.params["seeds"], self.params["epochs"], options,
                               self.params.get("ablations", ("none",)))


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
    return sorted(p.stem for p in PROFILES.glob("*.yaml"))


def _check_type(where: str, key: str, value, default) -> None:
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), list: (list,), dict: (dict,)}
    expected = kinds.get(type(default))
    if expected is None or value is None:
        return
    if isinstance(value, bool) and bool not in expected:
        expected = ()
    # a method option may also be a list of values: one point per value
    if isinstance(value, list) and not isinstance(default, list):
        for v in value:
            _check_type(where, key, v, default)
        return
    if not isinstance(value, expected):
        raise InitpruneError(f"{where}: '{key}' must be {type(default).__name__}, got {value!r}")


def load_profile(name: str) -> list[Execution]:
    path = Path(name) if name.endswith(".yaml") else PROFILES / f"{name}.yaml"
    if not path.exists():
        raise InitpruneError(f"unknown profile '{name}'; choose one of: {', '.join(profiles())}")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InitpruneError(f"profile {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise InitpruneError(f"profile {path} must be a mapping with {', '.join(PROFILE_KEYS)}")
    unknown = set(spec) - set(PROFILE_KEYS)
    if unknown:
        raise InitpruneError(f"profile {path.name}: unknown key(s) {sorted(unknown)}; "
                             f"allowed: {', '.join(PROFILE_KEYS)}")
    executions = spec.get("executions") or []
    if not executions:
        raise InitpruneError(f"profile {path.name} has no executions; add at least one")
    out = []
    for i, entry in enumerate(executions):
        where = f"profile {path.name}, execution {i + 1}"
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise InitpruneError(f"{where}: each execution needs 'notebook: NAME'")
        given = {**(spec.get("defaults") or {}), **{k: v for k, v in entry.items() if k != "notebook"}}
        defaults = notebook_parameters(entry["notebook"])
        for key, value in given.items():
            if key not in defaults:
                raise InitpruneError(f"{where}: '{key}' is not a parameter of {entry['notebook']}.ipynb "
                                     f"(it takes: {', '.join(defaults)})")
            _check_type(where, key, value, defaults[key])
        execution = Execution(entry["notebook"], {**defaults, **given}, given)
        execution.points()  # unknown names, bad options, empty grids: fail before anything runs
        out.append(execution)
    return out


def status(executions: list[Execution], profile: str) -> list[tuple[Execution, int, int]]:
    """(execution, points, points already FINISHED) for each execution."""
    c, exp_id = tracking.ensure_store()
    rows = []
    for ex in executions:
        points = ex.points()
        rows.append((ex, len(points), sum(tracking.finished(c, exp_id, p) is not None for p in points)))
    return rows


def _execute(execution: Execution, profile: str, threads: int) -> dict:
    """One notebook execution, owned by its parent run: FINISHED only if the notebook finished."""
    import papermill

    os.environ["INITPRUNE_THREADS"] = str(threads)
    c, exp_id = tracking.ensure_store()
    p = execution.params
    parent = tracking.start_parent(c, exp_id, execution.notebook, p["dataset"], p["arch"], profile)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / f"{execution.notebook}.ipynb"
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS / f"{execution.notebook}.ipynb"), str(output),
                parameters={**execution.given, "parent_run_id": parent, "profile": profile},
                cwd=str(NOTEBOOKS), **KERNEL,
            )
            error = None
        except KeyboardInterrupt:  # Ctrl-C: this execution and what it was training are KILLED
            tracking.reap(c, exp_id, parent)
            raise
        except Exception as err:  # the notebook failed: keep its output, mark the run FAILED
            error = _first_line(err)
        if output.exists():
            c.log_artifact(parent, str(output))
        c.set_terminated(parent, "FAILED" if error else "FINISHED")
    return {"label": execution.label, "error": error, "seconds": time.perf_counter() - began}


def _first_line(err: Exception) -> str:
    """The error a notebook raised, without papermill's banner and traceback."""
    name = getattr(err, "ename", type(err).__name__)
    value = getattr(err, "evalue", str(err))
    return f"{name}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"


def sweep(profile: str, jobs: int = 1, dry_run: bool = False, echo=print) -> int:
    """Run a profile; returns the exit status (0: everything finished)."""
    from tqdm.auto import tqdm

    if jobs < 1:
        raise InitpruneError(f"--jobs must be at least 1, got {jobs}")
    executions = load_profile(profile)
    rows = status(executions, profile)  # creates the store before any parallel writer starts
    if dry_run:
        for ex, n, done in rows:
            echo(f"{n:4d} points, {done:4d} finished  {ex.label}")
        echo(f"{sum(r[1] for r in rows)} points in {len(rows)} executions, {sum(r[2] for r in rows)} finished")
        return 0
    c, exp_id = tracking.ensure_store()
    reaped = tracking.reap(c, exp_id)  # runs that a killed sweep left RUNNING on this host
    if reaped:
        echo(f"marked {reaped} run(s) KILLED that an interrupted sweep had left RUNNING")
    todo = [ex for ex, n, done in rows if done < n]
    echo(f"profile {profile}: {len(rows)} executions, {len(rows) - len(todo)} already finished, {len(todo)} to run")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = max(1, cores // jobs)
    results = []
    bar = tqdm(total=len(todo), desc=f"sweep {profile}", unit="notebook", disable=None)
    if jobs == 1:
        for ex in todo:
            results.append(_execute(ex, profile, threads))
            bar.update()
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_execute, ex, profile, threads) for ex in todo]
            for future in as_completed(futures):
                results.append(future.result())
                bar.update()
    bar.close()
    failed = [r for r in results if r["error"]]
    for r in failed:
        echo(f"FAILED {r['label']}: {r['error']}")
    echo(f"done: {len(results) - len(failed)} executions finished, {len(failed)} failed, "
         f"{len(rows) - len(todo)} skipped")
    return 1 if failed else 0


def figures(out: str | Path | None = None) -> int:
    """Execute figures.ipynb (the report) into a figures run: figures, tables and the notebook."""
    import papermill

    out = Path(out or tracking.figures_dir()).resolve()
    c, exp_id = tracking.ensure_store()
    run_id = c.create_run(exp_id, tags={"kind": "figures", "git_commit": tracking.git_commit()},
                          run_name="figures").info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "figures.ipynb"
        try:
            papermill.execute_notebook(str(NOTEBOOKS / "figures.ipynb"), str(output),
                                       parameters={"out": str(out), "figures_run_id": run_id},
                                       cwd=str(NOTEBOOKS), **KERNEL)
            error = None
        except Exception as err:
            error = _first_line(err)
        if output.exists():
            c.log_artifact(run_id, str(output))
        c.set_terminated(run_id, "FAILED" if error else "FINISHED")
    if error:
        print(f"figures FAILED: {error}")
        return 1
    print(f"figures written to {out} (claims: {out / 'claims.md'})")
    return 0
