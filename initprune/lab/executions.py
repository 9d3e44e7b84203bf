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


@dataclass
class Execution:
    notebook: str
    params: dict  # every parameter of the notebook: its defaults, overridden by the profile
    given: dict = field(default_factory=dict)  # what the profile set: the cell's identity
    asks: dict = field(default_factory=dict)  # the profile's resources: {cpus, gpus}
    optional: bool = False  # left out, in one line, where its dataset cannot be had on this machine
    gpus: float | None = None  # the command line's GPUs per execution (--gpus-per-task), over the profile's
    tested: tuple | None = None  # its cell's tested sparsities (profiles.TESTED); None: none declared
    reference_epochs: int | None = None  # its cell's cost reference (profiles.REFERENCE); None: dense's epochs
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
        given = {k: v for k, v in self.given.items() if k not in self.params and k not in SETTINGS}
        return {**(self.params.get("options") or {}), **given}

    @property
    def training(self) -> dict:
        """The training settings the profile set (``compute: [dense, sparse]``), over its
        ``training`` parameter; a list runs each value. The dataset's settings stand for the rest."""
        return {**(self.params.get("training") or {}), **{k: v for k, v in self.given.items() if k in SETTINGS}}

    def parameters(self) -> dict:
        """What papermill passes: the notebook's parameters the profile set, the options, the
        training settings, and the resolved specs of its points, so that the kernel runs them as
        they are."""
        out = {k: v for k, v in self.given.items() if k in self.params}
        out = {**out, "options": self.options} if self.options else out
        out = {**out, "training": self.training} if self.training else out
        return {**out, "points": [p.to_dict() for p in self.points()]}

    def resources(self, cpus: float | None = None, gpus: float | None = None) -> dict:
        """CPUs and GPUs of one execution: the command line, else the profile, else one CPU and,
        for a notebook told to train on cuda, one GPU."""
        return {"cpus": cpus if cpus is not None else self.asks.get("cpus", 1),
                "gpus": gpus if gpus is not None else self.asks.get("gpus", int(self.params.get("device") == "cuda"))}

    @property
    def device(self) -> str:
        """The device its points are made for, resolved here in the driver against its workers:
        ``auto`` is cuda where the executor is told to give each execution GPUs (the command
        line's, else the profile's resources) or this machine has one, else cpu. The points
        travel resolved, so that a driver without a GPU and workers with one agree on them."""
        return resolve_device(self.params.get("device", "auto"), gpus=self.resources(gpus=self.gpus)["gpus"] > 0)

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
            check_options(self.methods)
            method = self.methods if isinstance(self.params.get("method"), list) else self.notebook
            self._points = grid.expand(method, self.params["dataset"], self.params["arch"], self.params["sparsities"],
                                       self.params["seeds"], self.params["epochs"], self.options,
                                       self.params.get("ablations", ("none",)), self.device, self.training)
        return self._points
