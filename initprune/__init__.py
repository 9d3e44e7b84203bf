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
