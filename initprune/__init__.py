"""initprune: pruning neural networks at initialization, reproducibly.

K-starts, dissipating gradients and their combination (Haroon, arXiv 2209.02201), beside random
pruning and the established baselines, on one training harness.
"""

from typing import TYPE_CHECKING

from .errors import DivergedError, InitpruneError

# the rest is imported where it is first used (initprune.fit, initprune.PRUNERS): torch takes
# seconds, and `python -m initprune run` checks its names before it (__main__.py)
_FROM = {"fit": "api", "run": "api", "save": "api", "load": "api", "run_group": "api",
         "RunResult": "result", "RunSpec": "spec", "PRUNERS": "pruners", "MODELS": "models", "DATASETS": "data",
         "TASKS": "tasks"}
if TYPE_CHECKING:
    from .api import fit, load, run, run_group, save
    from .data import DATASETS
    from .models import MODELS
    from .pruners import PRUNERS
    from .result import RunResult
    from .spec import RunSpec
    from .tasks import TASKS

__all__ = ["fit", "run", "run_group", "save", "load", "RunResult", "RunSpec", "PRUNERS", "MODELS",
           "DATASETS", "TASKS", "InitpruneError", "DivergedError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    import importlib

    if name in _FROM:
        # not kept here: what a notebook's use of initprune changes nothing a kept kernel compares (lab/kernel.py)
        return getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
    try:  # a module of the package (initprune.api), imported where first used as the exports are
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":  # a module of ours that lacks one of its own imports
            raise
        raise AttributeError(f"module 'initprune' has no attribute '{name}'") from None

_APP = ("cli", "__main__")  # the command line: at the package's root beside the core


def _layers() -> dict[str, tuple[str, ...]]:
    """The package's layers, lowest first, read from its folders: a module imports from its own
    layer or those below only (tests/test_spec.py checks it). core: the modules at the root (what
    fit and run need, no MLflow, papermill, YAML, Ray or Dask); lab (``initprune/lab/``): the
    store, points, sweeps and where they run; report (``initprune/report/``): results read back
    into figures, claims and the report page; app: the command line (``_APP``, at the root). A
    module is named from the package: ``api``, ``lab.sweep``, ``report.claims``."""
    import os
    import pkgutil

    def modules(folder: str) -> tuple[str, ...]:
        paths = [os.path.join(p, folder) if folder else p for p in __path__]
        prefix = f"{folder}." if folder else ""
        return tuple(sorted(prefix + m.name for m in pkgutil.iter_modules(paths) if not m.ispkg))

    root = modules("")
    return {"core": tuple(m for m in root if m not in _APP), "lab": modules("lab"), "report": modules("report"),
            "app": tuple(m for m in _APP if m in root)}


LAYERS = _layers()
