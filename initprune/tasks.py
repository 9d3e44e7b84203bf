"""Tasks by name: what a model is trained to do, declared once, never assumed.

A task says what the model's output is compared with (the label, or the input itself), its loss,
its metric and which way the metric is better, the per-example record the verdict pairs methods
on, what effective sparsity counts paths to, and the label a figure puts on its axis. The
training loop, the pruners, the result and the store read all of it from here.

An architecture declares its task (``models.task_of``); a dataset declares the tasks it serves
(``data.Dataset.tasks``). A plugin registers a task as it registers a pruner: a subclass of
``Task`` under ``@TASKS.register(name)``, from a module named by the entry-point group
``initprune.tasks`` or by ``INITPRUNE_PLUGINS``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from .errors import InitpruneError
from .registry import Registry


class Task:
    """A task: a subclass with the class attributes below and the three methods ``loss``,
    ``per_example`` and ``score``. ``metric`` names the history's ``val_<metric>`` and
    ``test_<metric>`` and the result's fields of the same names."""

    metric: ClassVar[str]  # "accuracy": the result holds test_accuracy and val_accuracy
    higher_is_better: ClassVar[bool]
    label: ClassVar[str]  # a figure's axis label for the test metric
    record: ClassVar[str]  # what per_example gives, in words
    record_field: ClassVar[str]  # the result's field holding the test split's per-example record
    reaches: ClassVar[str]  # what effective sparsity counts paths from the input to
    on_input: ClassVar[bool]  # the target is made from the input (a reconstruction), not from the label
    logits: ClassVar[bool]  # the outputs are a classifier's logits (GraSP's temperature divides them)

    def __init__(self, name: str):
        self.name = name

    @property
    def test_metric(self) -> str:
        """The result's field that holds the metric on the test split: ``test_accuracy``."""
        return f"test_{self.metric}"

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """The training loss of a batch, a mean over its examples."""
        raise NotImplementedError

    def per_example(self, outputs: Tensor, targets: Tensor) -> Tensor:
        """One record per example of a batch (what the verdict pairs two methods on)."""
        raise NotImplementedError

    def score(self, records: Tensor) -> float:
        """The metric of a split from its examples' records."""
        raise NotImplementedError

    def encode(self, records: Tensor):
        """The test split's records as the result JSON carries them (``record_field``)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What the result says of its task: its name, metric and direction."""
        return {"task": self.name, "metric": self.test_metric, "higher_is_better": self.higher_is_better}


def _check(name: str, cls) -> None:
    """A task is a Task subclass that declares every attribute and whose metric the result can hold."""
    from .result import RunResult

    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise InitpruneError(f"task '{name}': register a subclass of initprune.tasks.Task")
    missing = [a for a in Task.__annotations__ if not hasattr(cls, a)]
    if missing:
        raise InitpruneError(f"task '{name}' ({cls.__module__}) does not declare {', '.join(missing)}; "
                             "set them as class attributes")
    fields = {f.name for f in dataclasses.fields(RunResult)}
    lacking = [f for f in (f"test_{cls.metric}", f"val_{cls.metric}", cls.record_field) if f not in fields]
    if lacking:
        raise InitpruneError(f"task '{name}' ({cls.__module__}): the result has no field {', '.join(lacking)}; "
                             "use a metric and record the result holds (accuracy, reconstruction_error; "
                             "test_correct, test_squared_error)")


TASKS: Registry = Registry("task", check=_check)


def get(name: str) -> Task:
    """The task ``name``, ready to use."""
    return TASKS[name](name)


@TASKS.register("classification")
class Classification(Task):
    """Cross entropy against the label; test accuracy, higher is better; per example, whether
    the model classifies it right."""

    metric = "accuracy"
    higher_is_better = True
    label = "test accuracy (higher is better)"
    record = "correctness"
    record_field = "test_correct"
    reaches = "the logits"
    on_input = False
    logits = True

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(outputs, targets)

    def per_example(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return outputs.argmax(1) == targets

    def score(self, records: Tensor) -> float:
        return int(records.sum()) / max(len(records), 1)

    def encode(self, records: Tensor) -> str:
        return "".join("01"[int(c)] for c in records.tolist())  # '0'/'1' per test example


@TASKS.register("reconstruction")
class Reconstruction(Task):
    """The mean squared error against the input in [0, 1] (the dataset's ``Data.target``); its
    metric, the test reconstruction error, is the test MSE, lower is better; per example, its
    squared error (the mean over its entries)."""

    metric = "reconstruction_error"
    higher_is_better = False
    label = "test reconstruction error, MSE (lower is better)"
    record = "squared error"
    record_field = "test_squared_error"
    reaches = "the reconstruction"
    on_input = True
    logits = False

    def loss(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(outputs, targets)

    def per_example(self, outputs: Tensor, targets: Tensor) -> Tensor:
        return (outputs - targets).square().flatten(1).mean(1)

    def score(self, records: Tensor) -> float:
        return float(records.double().mean()) if len(records) else float("nan")

    def encode(self, records: Tensor) -> list[float]:
        return [float(f"{v:.6g}") for v in records.tolist()]  # six digits: float16's are what the verdict keeps


def targets(task: Task, x: Tensor, y: Tensor, target=None) -> Tensor:
    """What ``task`` compares a batch's outputs with: its labels, or its inputs through ``target``
    (the dataset's map to [0, 1]; None: the inputs themselves)."""
    if not task.on_input:
        return y
    return x if target is None else target(x)

