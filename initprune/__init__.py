"""initprune: pruning neural networks at initialization, reproducibly.

K-starts, dissipating gradients and their combination (Haroon, arXiv 2209.02201), beside random
pruning and the established baselines, on one training harness.
"""

from .api import Result, RunConfig, fit, load, run, save
from .data import DATASETS
from .errors import DivergedError, InitpruneError
from .models import MODELS
from .pruners import PRUNERS
from .result import RunResult
from .spec import RunSpec

__all__ = ["fit", "run", "save", "load", "Result", "RunResult", "RunSpec", "RunConfig", "PRUNERS", "MODELS", "DATASETS",
           "InitpruneError", "DivergedError"]
__version__ = "0.1.0"

# the package's layers, lowest first: a module imports from its own layer or those below only
# (tests/test_spec.py checks it). core: what fit and run need, no MLflow, papermill, YAML, Ray or
# Dask; lab: the store, points, sweeps and where they run; report: results read back into
# figures, claims and the report page; app: the command line
LAYERS = {
    "core": ("errors", "options", "registry", "seeds", "masks", "paths", "memory", "train", "models", "data",
             "pruners", "spec", "result", "api"),
    "lab": ("faults", "auth", "store", "runs", "results", "grid", "tasks", "executors", "sweep"),
    "report": ("stats", "claims", "figures", "figures_kstarts", "figures_dissipating", "report_html", "assembly"),
    "app": ("cli", "__main__"),
}
