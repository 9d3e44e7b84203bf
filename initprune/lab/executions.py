"""A sweep's unit of work: an ``Execution`` is one grid cell of a profile, one notebook run with
its parameters and its points. Profiles (``profiles.py``) make them; sweeps (``sweep.py``) run
them, and read which of their points are FINISHED (``sweep.status``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from .. import pruners
from ..errors import InitpruneError
from ..spec import RUN, SETTINGS, resolve_device
from . import grid

# the parameters every method notebook has beside its method's options
COMMON = ("dataset", "arch", "sparsities", "seeds", "epochs", "data_root", "device", "log_to_mlflow",
          "parent_run_id", "profile", "points", "training")
# the quick offline setting of the notebooks' parameters cells (a profile sets its own): the run's
# defaults (spec.RUN) on fewer epochs; combined trains one past its 4 of warm-up and pruning, and
# explore compares five methods in one look. tests/test_notebooks.py checks every cell against it.
QUICK = {"dataset": RUN["dataset"], "arch": RUN["arch"], "device": RUN["device"], "seed": RUN["seed"],
         "seeds": [RUN["seed"]], "epochs": 5}
QUICK_OF = {"combined": {"epochs": 6}, "explore": {"epochs": 8, "sparsity": 0.95}}
# what else a notebook's parameters cell may name (baselines.ipynb and sanity.ipynb)
NOTEBOOK = (*COMMON, "options", "method", "ablations")


def check_options(methods: list[str]) -> None:
    """No method option may take a notebook parameter's name: a profile's key would set the
    parameter, never the option (the run's own names the core refuses: pruners.RESERVED)."""
    for method in methods:
        taken = sorted(set(NOTEBOOK) & set(pruners.option_names(method)))
        if taken:
            cls = pruners.PRUNERS[method]
            raise InitpruneError(f"method '{method}' ({cls.__module__}): option(s) {', '.join(taken)} have the name of "
                                 "one of the notebooks' parameters; rename them")


def methods_of(notebook: str, params: dict) -> list[str]:
    """An execution's methods: its notebook's, or those it names (baselines, sanity); an empty
    list is every registered baseline (baselines.ipynb's default)."""
    method = params.get("method", notebook)
    return (method or pruners.of_family("baseline")) if isinstance(method, list) else [method]


@dataclass
class Execution:
    """One grid cell of a profile, resolved once as it is made: its resources, identity, label,
    points and papermill parameters are fields, which the profile check, the sweep's status, its
    tasks and their workers read as they are."""

    notebook: str
    params: dict  # every parameter of the notebook: its defaults, overridden by the profile
    given: dict = field(default_factory=dict)  # what the profile set: the cell's identity
    asks: dict = field(default_factory=dict)  # the profile's resources: {cpus, gpus}
    optional: bool = False  # left out, in one line, where its dataset cannot be had on this machine
    cpus: float | None = None  # the command line's CPUs per execution (--cpus-per-task), over the profile's
    gpus: float | None = None  # the command line's GPUs per execution (--gpus-per-task), over the profile's
    tested: tuple | None = None  # its cell's tested sparsities (profiles.TESTED); None: none declared
    reference_epochs: int | None = None  # its cell's cost reference (profiles.REFERENCE); None: dense's epochs
    # resolved from the above as it is made
    resources: dict = field(init=False, compare=False)  # CPUs and GPUs of one execution
    cell: str = field(init=False, compare=False)  # the grid cell's identity
    label: str = field(init=False, compare=False)
    points: list = field(init=False, repr=False, compare=False)  # its RunSpecs, resolved once
    parameters: dict = field(init=False, repr=False, compare=False)  # what papermill passes

    def __post_init__(self):
        _as_declared(self.methods, self.given, self.params)
        # the command line, else the profile, else one CPU and, for a notebook told to train on cuda, one GPU
        self.resources = {"cpus": self.cpus if self.cpus is not None else self.asks.get("cpus", 1),
                          "gpus": self.gpus if self.gpus is not None else
                          self.asks.get("gpus", int(self.params.get("device") == "cuda"))}
        # not which sweep ran it: its notebook and what the profile set
        identity = json.dumps({"notebook": self.notebook, "given": self.given}, sort_keys=True, default=str)
        self.cell = hashlib.sha256(identity.encode()).hexdigest()[:12]
        options = " ".join(f"{k}={v}" for k, v in self.given.items() if k not in COMMON)
        self.label = f"{self.notebook} {self.params['dataset']}/{self.params['arch']} {options}".strip()
        check_options(self.methods)
        method = self.methods if isinstance(self.params.get("method"), list) else self.notebook
        self.points = grid.expand(method, self.params["dataset"], self.params["arch"], self.params["sparsities"],
                                  self.params["seeds"], self.params["epochs"], self.options,
                                  self.params.get("ablations", ("none",)), self.device, self.training)
        # the notebook's parameters the profile set, the options, the training settings, and the
        # resolved specs of its points, so that the kernel runs them as they are
        out = {k: v for k, v in self.given.items() if k in self.params}
        out = {**out, "options": self.options} if self.options else out
        out = {**out, "training": self.training} if self.training else out
        self.parameters = {**out, "points": [p.to_dict() for p in self.points]}

    @property
    def methods(self) -> list[str]:
        return methods_of(self.notebook, self.params)

    @property
    def options(self) -> dict:
        """The methods' options: what the profile set beside the notebook's parameters, over
        its ``options`` parameter. Each method takes those it declares."""
        given = {k: v for k, v in self.given.items() if k not in self.params and k not in SETTINGS}
        return {**(self.params.get("options") or {}), **given}

    @property
    def training(self) -> dict:
        """The training settings the profile set (``compute: [dense, sparse]``), over its
        ``training`` parameter; a list runs each value. The dataset's settings stand for the rest."""
        return {**(self.params.get("training") or {}), **{k: v for k, v in self.given.items() if k in SETTINGS}}

    @property
    def device(self) -> str:
        """The device its points are made for, resolved here in the driver against its workers:
        ``auto`` is cuda where the executor is told to give each execution GPUs (the command
        line's, else the profile's resources) or this machine has one, else cpu. The points
        travel resolved, so that a driver without a GPU and workers with one agree on them."""
        return resolve_device(self.params.get("device", "auto"), gpus=self.resources["gpus"] > 0)


def _as_declared(methods: list[str], given: dict, params: dict) -> None:
    """The methods' options and the training settings the profile set, each as its declared type:
    an integer given for a float option (``temperature: 200``, ``lr: 1``) is the float (200.0), as
    the run's spec holds it, so that both spellings are one grid cell (``Execution.cell``) as they
    are one point."""
    from ..options import declared
    from ..train import Settings

    floats = {o.name for m in methods for o in pruners.PRUNERS[m].declared() if o.kind is float}
    floats |= {o.name for o in declared(Settings) if o.kind is float}
    as_float = lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v  # noqa: E731
    held = lambda k, v: ([as_float(x) for x in v] if isinstance(v, list) else as_float(v)) if k in floats else v  # noqa: E731
    for key in set(given) & floats - set(params):
        given[key] = held(key, given[key])
    for key in ("options", "training"):  # the notebooks' `options` and `training` parameters: the same
        if isinstance(given.get(key), dict):
            given[key] = params[key] = {k: held(k, v) for k, v in given[key].items()}
