"""One notebook execution on a worker: a ``Task`` carries everything it needs (the notebook
included), and ``run_task`` runs it through papermill under an MLflow run of its own. Every
executor runs ``run_task``; Dask and Ray pickle it by reference, as ``initprune.lab.tasks.run_task``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import faults, kernel, store

if TYPE_CHECKING:
    from .executions import Execution

NOTEBOOKS = store.ROOT / "notebooks"  # the notebooks a sweep sends (read in the driver, which has the clone)
KERNEL = {"progress_bar": False, "extra_arguments": kernel.ARGUMENTS}  # a kernel of its own, started as a kept one


def load_papermill():
    """papermill, imported without ``rfc3987_syntax``: where that package is installed (JupyterLab's
    jupyter-events asks for jsonschema's format extras), jsonschema imports it, and it compiles 39
    grammars at import, about 2 s of every process that imports papermill (nbformat validates
    notebooks with jsonschema): a sweep's driver and each of its workers. Notebook validation
    never checks the IRI formats it is for, so this process does without it."""
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # None: `import rfc3987_syntax` raises ImportError
    import papermill

    return papermill


@dataclass
class Task:
    """One notebook execution of one grid cell, as it travels to a worker: everything it needs,
    the notebook itself included, since a remote worker may have no ``notebooks/``."""

    execution: Execution
    profile: str
    sweep: str  # the id of the sweep that started it, a tag on its runs
    notebook: str  # the notebook's JSON text
    env: dict  # the MLflow store and INITPRUNE_* settings of the driver
    cpus: float = 1
    gpus: float = 0

    @property
    def key(self) -> str:  # unique in a sweep, the same on a retry
        return f"{self.execution.notebook}-{self.execution.cell}-{self.sweep[:8]}"


def run_task(task: Task, keep_kernel: bool = False) -> dict:
    """The unit every executor runs: one notebook execution, owned by its own MLflow run, which
    is FINISHED only if the notebook finished. Returns a small dict; the rest is in MLflow.

    ``keep_kernel``: run it in the kernel this process keeps between notebooks (initprune.lab.kernel),
    as a local sweep does; otherwise in a kernel of its own."""
    import initprune

    papermill = load_papermill()

    began = time.perf_counter()
    code = str(Path(initprune.__file__).resolve().parents[1])  # where this worker found the package
    env = {**task.env,
           # the plugins where the driver found them (a folder it ran in), then this worker's own path
           "PYTHONPATH": os.pathsep.join(filter(None, [code, task.env.get("INITPRUNE_PLUGIN_PATH"),
                                                       os.environ.get("PYTHONPATH")]))}
    ex, p = task.execution, task.execution.params
    with _environ(env):  # the notebook's kernel inherits it
        runs = store.points()
        declared = {} if ex.tested is None else {"tested_sparsities": json.dumps(list(ex.tested))}
        if ex.reference_epochs is not None:  # the report's cost reference (profiles.REFERENCE)
            declared["reference_epochs"] = str(ex.reference_epochs)
        run_id, attempt = runs.start_attempt(ex.notebook, p["dataset"], p["arch"], task.profile, ex.cell,
                                             task.sweep, **declared)
        with tempfile.TemporaryDirectory() as tmp:
            source, output = Path(tmp) / "source.ipynb", Path(tmp) / f"{ex.notebook}.ipynb"
            source.write_text(task.notebook)
            cwd = str(NOTEBOOKS if NOTEBOOKS.is_dir() else tmp)
            keep_kernel = keep_kernel and _kernel_name(task.notebook) == kernel.NAME
            try:
                papermill.execute_notebook(
                    str(source), str(output),
                    parameters={**ex.parameters, "parent_run_id": run_id, "profile": task.profile},
                    cwd=cwd, **(kernel.arguments(cwd, env) if keep_kernel else KERNEL),
                )
                error = None
            except KeyboardInterrupt:  # Ctrl-C: this execution and what it was training are KILLED
                _abandon_cells()
                _drop_kernel(keep_kernel, now=True)
                runs.reap(run_id)
                raise
            except Exception as err:  # the notebook failed: keep its output, mark the run FAILED
                _drop_kernel(keep_kernel)
                error = first_line(err)
            faults.pause("notebook")
            try:
                if output.exists():
                    runs.client.log_artifact(run_id, str(output))
            except OSError as err:  # a full disk, say: the execution does not count without its notebook
                error = error or f"its notebook could not be stored: {err}"
            runs.end(run_id, "FAILED" if error else "FINISHED")  # not if the driver gave this attempt up
    return {"label": ex.label, "error": error, "seconds": time.perf_counter() - began, "run_id": run_id,
            "attempt": attempt, "host": socket.gethostname()}


def _kernel_name(notebook: str) -> str | None:
    return json.loads(notebook).get("metadata", {}).get("kernelspec", {}).get("name")


def _abandon_cells(timeout: float = 5) -> None:
    """Cancel what nbclient left pending on this thread's event loop when Ctrl-C or SIGTERM cut its
    notebook short: run again later (the kernel's shutdown runs that loop), a cell would find its
    kernel gone and Python would print a DeadKernelError traceback after the one-line message."""
    import asyncio

    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending and not loop.is_running():
        with contextlib.suppress(Exception):  # whatever they end with is retrieved here, not printed
            loop.run_until_complete(asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout))


def _drop_kernel(kept: bool, now: bool = False) -> None:
    """A notebook that failed or was interrupted never leaves its kernel to the next one."""
    if kept:
        kernel.close(now)


@contextlib.contextmanager
def _environ(values: dict):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def first_line(err: Exception) -> str:
    """The error a notebook raised, without papermill's banner and traceback."""
    name = getattr(err, "ename", type(err).__name__)
    value = getattr(err, "evalue", str(err))
    return f"{name}: {str(value).strip().splitlines()[0] if str(value).strip() else ''}"
