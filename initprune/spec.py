"""One run, resolved: ``RunSpec`` holds everything that decides what a run computes, with every
option and training setting at its resolved value, and its identity hashes all of it.

A spec is resolved once, where a point is made (a grid, ``python -m initprune run``), and frozen;
the store keys a point by ``(spec.hash(), spec.seed)``. Nothing is left out of the identity for
being equal to today's default, so changing a default changes the identity of every point that
used it and a store never serves old results as new ones. The one exception is an option added
after runs were stored: while it holds its declared ``neutral`` value (the one that reproduces
the code before it), it stays out, so adding it keeps the stored identities.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field

import torch

from . import data as datasets
from . import models, pruners, sparse
from .errors import InitpruneError
from .options import UNSET, OptionError, declared
from .train import Settings

ABLATIONS = ("none", "shuffle", "reinit", "invert", "rewind")
SETTINGS = tuple(o.name for o in declared(Settings))  # the training settings' names
# A run's defaults, declared once: RunSpec's fields, the command line's ``run`` (cli.py), a grid
# (lab/grid.py ``run_grid``) and the notebooks' parameters cells (tests/test_notebooks.py checks
# them against it) read them. ``fit`` (api.py) trains FIT_EPOCHS by default, as documented since it
# was first written; a run by name trains RUN["epochs"].
RUN = {"method": "random", "dataset": "digits", "arch": "mlp", "sparsity": 0.9, "epochs": 20, "seed": 0,
       "ablation": "none", "device": "auto"}
FIT_EPOCHS = 10
# how a spec's identity is formed: stored runs of another scheme are never served (store.migrate)
SCHEME = "2"


def default_threads() -> int:
    """Torch threads of a point: 1, or $INITPRUNE_THREADS. The count changes float results, so it
    is part of the spec (and of its identity), never taken from the machine."""
    text = os.environ.get("INITPRUNE_THREADS") or "1"
    if not text.isdigit() or int(text) < 1:
        raise InitpruneError(f"INITPRUNE_THREADS must be a positive integer, got {text!r}")
    return int(text)


def check_device(device) -> str:
    """A device name a run takes, checked without asking for the device: auto, cpu, cuda or
    cuda:N (the one place a name is parsed); else one line saying which are."""
    if isinstance(device, str) and (device in ("auto", "cpu", "cuda")
                                    or (device.startswith("cuda:") and device[5:].isdigit())):
        return device
    raise InitpruneError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")


def resolve_device(device: str, gpus: bool = False) -> str:
    """The device a point is made for: ``auto`` resolved where the point is made, cuda where its
    workers have GPUs (``gpus``: a sweep's executor declares them) or this machine has one, else
    cpu; any other name as given (``cuda:1``), checked. A sweep's driver resolves it, and its
    workers receive the resolved name: a driver without a GPU and workers with one agree."""
    if check_device(device) == "auto":
        return "cuda" if gpus or torch.cuda.is_available() else "cpu"
    return device


def device_kind(device: str) -> str:
    """The kind of the device named (``cuda:1`` is ``cuda``; ``auto`` as this machine resolves
    it): what changes a run's numbers."""
    return resolve_device(device).split(":")[0]


def make_pruner(method: str, sparsity: float, ablation: str = "none", **options) -> pruners.Pruner:
    """The pruner, checked against the ablation it runs under."""
    pruner = pruners.make(method, sparsity, **options)
    if ablation not in ABLATIONS:
        raise OptionError("ablation", f"must be one of: {', '.join(ABLATIONS)}; got {ablation!r}")
    if ablation != "none" and pruner.fixed_sparsity is not None:
        raise OptionError("ablation", f"{ablation} does not apply to method '{method}': it prunes nothing")
    if ablation == "invert" and not pruner.invertible:
        raise OptionError("ablation", f"invert does not apply to method '{method}': it has no scores to invert; "
                          "use shuffle or reinit")
    return pruner


def check_epochs(pruner: pruners.Pruner, epochs) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise OptionError("epochs", f"must be a positive integer, got {epochs!r}")
    if epochs < pruner.min_epochs:
        raise OptionError("epochs", f"must be {pruner.min_epochs} or more: method '{pruner.name}' trains "
                          f"{pruner.min_epochs} epochs while choosing its mask (got {epochs})")


class Frozen(dict):
    """A mapping that cannot change: a spec's options and training settings. Still a dict, so it
    serialises to JSON and pickles (Ray, Dask and papermill carry specs), which
    ``types.MappingProxyType`` does not."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("a RunSpec cannot change; make another: dataclasses.replace(spec, options={...})")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return Frozen, (dict(self),)


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run. Built from what was given (``options`` and ``training``
    may name only some values); ``__post_init__`` resolves them: ``options`` then holds every
    option of the method and ``training`` every training setting (the dataset's, overridden).
    Bad values fail here, before anything loads."""

    method: str = RUN["method"]
    dataset: str = RUN["dataset"]
    arch: str = RUN["arch"]
    sparsity: float = RUN["sparsity"]
    epochs: int = RUN["epochs"]
    seed: int = RUN["seed"]
    options: dict = field(default_factory=dict)  # the method's options, docs/method.md's words
    training: dict = field(default_factory=dict)  # the training settings (train.Settings)
    ablation: str = RUN["ablation"]  # shuffle, reinit, invert, rewind: the sanity checks
    # auto is resolved here, where the spec is made (resolve_device): a sweep's driver resolves
    # it against its workers before it makes its points, which travel resolved; the identity holds
    # the kind (cuda:1 is cuda), and no hash asks torch which devices this machine has
    device: str = RUN["device"]
    threads: int = 0  # torch threads; 0: default_threads()

    def __post_init__(self):
        datasets.DATASETS[self.dataset], models.MODELS[self.arch]  # unknown names list the known ones
        pruner = make_pruner(self.method, self.sparsity, self.ablation, **self.options)
        check_epochs(pruner, self.epochs)
        for key in self.training:
            if key not in SETTINGS:
                raise OptionError(key, f"is not a training setting (those are: {', '.join(SETTINGS)})")
        task = models.task_of(self.arch)
        dataset = datasets.DATASETS[self.dataset]
        if task not in dataset.tasks:
            raise InitpruneError(f"architecture '{self.arch}' is a {task} model but dataset '{self.dataset}' serves "
                                 f"{', '.join(dataset.tasks)} only; pick another architecture or dataset")
        settings = dataclasses.replace(dataset.training_for(task), **self.training)
        threads = self.threads or default_threads()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise OptionError("threads", f"must be a positive integer, got {threads!r}")
        resolved = {"sparsity": float(pruner.sparsity), "options": Frozen(pruner.options()),
                    "training": Frozen(dataclasses.asdict(settings)), "threads": threads,
                    "device": resolve_device(self.device)}  # a name that is no device fails here
        for name, value in resolved.items():
            object.__setattr__(self, name, value)

    def pruner(self) -> pruners.Pruner:
        return make_pruner(self.method, self.sparsity, self.ablation, **self.options)

    def settings(self) -> Settings:
        return Settings(**self.training)

    def identity(self) -> dict:
        """The whole resolved configuration beside the seed, with the pruner's version; an option
        or setting added later is left out only while it holds its neutral value."""
        cls = pruners.PRUNERS[self.method]
        return {
            "method": self.method, "dataset": self.dataset, "arch": self.arch, "sparsity": self.sparsity,
            "epochs": self.epochs, "ablation": self.ablation, "version": cls.version,
            "options": _past_neutral(cls.declared(), self.options),
            "training": _past_neutral(declared(Settings), self.training),
            "device": self.device.split(":")[0], "threads": self.threads,
            **sparse.identity(self.training.get("compute", "dense")),
        }

    def hash(self) -> str:
        """12 hex digits of the identity's SHA-256, computed once per spec."""
        if "_hash" not in self.__dict__:  # frozen: cached beside the fields, not as one
            text = json.dumps(self.identity(), sort_keys=True)
            self.__dict__["_hash"] = hashlib.sha256(text.encode()).hexdigest()[:12]
        return self.__dict__["_hash"]

    def variant(self) -> dict:
        """The options that differ from the method's defaults today: how a figure names the run
        (display only; the identity holds every option)."""
        defaults = {o.name: o.default for o in pruners.PRUNERS[self.method].declared()}
        return {k: v for k, v in self.options.items() if v != defaults.get(k)}

    def to_dict(self) -> dict:
        """The fields as plain values (its mappings as plain dicts), to rebuild it with ``RunSpec(**d)``."""
        return {f.name: dict(v) if isinstance(v := getattr(self, f.name), Frozen) else v
                for f in dataclasses.fields(self)}


def _past_neutral(options, values: dict) -> dict:
    neutral = {o.name: o.neutral for o in options}
    return {k: v for k, v in values.items() if neutral.get(k, UNSET) is UNSET or v != neutral[k]}
