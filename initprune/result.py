"""The result of one run: one typed schema that ``fit`` and ``run`` return and the result JSON
(``--out``), MLflow's ``result.json``, the runs table, the figures and the notebooks all read.

``to_dict`` is the result JSON (README, "Command line"); ``from_dict`` reads one back, an older one
included (a field it lacks takes its default: None where nothing was measured).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class RunResult:
    method: str
    dataset: str | None  # None: ``fit``'s, of a model and data it was handed
    arch: str | None
    seed: int
    sparsity_target: float
    sparsity_actual: float
    test_accuracy: float | None  # a classifier's (None for another task: ``metric`` names the task's)
    val_accuracy: float | None
    epochs: int
    history: list[dict] = field(default_factory=list)  # one entry per epoch
    layers: dict[str, dict[str, int]] = field(default_factory=dict)  # {name: {numel, kept}}
    extra: dict = field(default_factory=dict)  # the method's own report (its pruner's fields)
    ablation: str = "none"
    options: dict = field(default_factory=dict)  # every option of the method, resolved
    training: dict = field(default_factory=dict)  # every training setting, resolved
    variant: str = "{}"  # JSON of the options that differ from today's defaults: a figure's label
    config_hash: str | None = None  # the spec's identity (RunSpec.hash)
    device: str | None = None
    threads: int | None = None
    effective_sparsity: float | None = None  # removed, or cut off from the input or the output
    dead_classes: int | None = None  # classes no path from the input reaches (None: not a classifier)
    cost: dict | None = None  # {"training": ..., "inference": ...}: FLOPs relative to dense
    test_correct: str | None = None  # '0'/'1' per test example, in test-set order
    run_id: str | None = None
    seconds: float = 0.0
    compute_layers: dict | None = None  # per prunable weight, "sparse" or "dense" (Settings.compute)
    training_seconds: float | None = None  # measured time of the training steps and scoring passes
    task: str = "classification"  # initprune/tasks.py; a result written before tasks were declared is one
    metric: str = "test_accuracy"  # the field holding the task's test metric
    higher_is_better: bool = True  # of ``metric``
    test_reconstruction_error: float | None = None  # a reconstruction's test MSE against the input in [0, 1]
    val_reconstruction_error: float | None = None
    dead_outputs: int | None = None  # outputs (logits, reconstructed entries) no path from the input reaches
    test_squared_error: list[float] | None = None  # a reconstruction's per test example, in test-set order
    # ``fit``'s final mask, {parameter name: bool tensor} (True = kept): what a caller prunes with,
    # not part of the record (the result JSON, the store); ``run`` writes it with the model
    mask: dict | None = field(default=None, repr=False, compare=False, metadata={"record": False})

    @property
    def score(self) -> float | None:
        """The task's test metric (``metric``): test accuracy, test reconstruction error."""
        return getattr(self, self.metric)

    def to_dict(self) -> dict:
        """The result JSON: every field of the record (the mask is not one)."""
        return {f.name: getattr(self, f.name) for f in _record()}

    @classmethod
    def from_dict(cls, values: dict) -> RunResult:
        """A result JSON as written by any version (or a row made by hand): keys this schema does
        not know are dropped, a field it lacks is None or its default, and ``sparsity`` (the runs
        table's name) is read as ``sparsity_target``."""
        fields = _record()
        given = {f.name: values[f.name] for f in fields if f.name in values}
        if "sparsity_target" not in given and "sparsity" in values:
            given["sparsity_target"] = values["sparsity"]
        missing = {f.name: None for f in fields if f.name not in given and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING}
        return cls(**given, **missing)

    def __contains__(self, key: str) -> bool:
        return key in {f.name for f in _record()}


def _record() -> list[dataclasses.Field]:
    """The fields of the record: all but what a run hands its caller only (``mask``)."""
    return [f for f in dataclasses.fields(RunResult) if f.metadata.get("record", True)]

