"""Profiles: ``notebooks/profiles/NAME.yaml`` read, checked and expanded into executions (one per
grid cell; ``executions.py``), every run's settings checked before anything trains, and the
dry run's estimate of how long the points left would train.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml

from .. import pruners
from ..errors import InitpruneError
from ..spec import SETTINGS
from . import root, store
from .executions import Execution, methods_of
from .tasks import NOTEBOOKS, load_papermill

PROFILES = NOTEBOOKS / "profiles"
PROFILE_KEYS = ("description", "defaults", "resources", "executions")
RESOURCES = ("cpus", "gpus")  # what one execution asks of a cluster (Ray, Dask); the local pool ignores it
# the sparsities of its (dataset, arch) pair that carry the verdict's tests (docs/method.md, "The
# verdict"), declared per execution or in defaults before the profile runs; the rest are descriptive.
# Not part of the grid cell's identity: the sweep records it on the execution's run, the report reads it
TESTED = "tested_sparsities"
# the epochs of one dense training that a cell's training cost is relative to (docs/method.md,
# "Cost"), declared per execution or in defaults; outside the identity like TESTED. Undeclared:
# the epochs of the cell's dense points
REFERENCE = "reference_epochs"


def notebook_parameters(name: str) -> dict:
    """A notebook's parameters with their default values, read from its ``parameters`` cell."""
    papermill = load_papermill()
    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
        raise InitpruneError(f"no notebook '{name}' in {NOTEBOOKS}; choose one of: {known}")
    found = papermill.inspect_notebook(str(path))
    return {k: ast.literal_eval(v["default"]) for k, v in found.items()}


def profiles() -> list[str]:
    return sorted({p.stem for p in [*PROFILES.glob("*.yaml"), *PROFILES.glob("*.yml")]})


class _Loader(yaml.SafeLoader):
    """YAML as safe_load reads it, but a key given twice in one mapping is an error, not the last one."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: the constructor says so
                break
            if first != line:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice, on line {first} and line {line}; keep one",
                    key_node.start_mark)
        return super().construct_mapping(node, deep)


def _profile_path(name: str) -> Path | None:
    """A profile's file: a YAML file's path (.yaml or .yml), else a profile's name in PROFILES."""
    if name.endswith((".yaml", ".yml")):
        return next((p for p in (Path(name), PROFILES / name) if p.is_file()), None)
    return next((p for p in (PROFILES / f"{name}.yaml", PROFILES / f"{name}.yml") if p.is_file()), None)


def _check_device(where: str, device) -> None:
    """A device name a run takes (spec.check_device), checked without asking for the device."""
    from ..spec import check_device

    try:
        check_device(device)
    except InitpruneError as err:
        raise InitpruneError(f"{where}: {err}") from None


def _check_runs(where: str, execution: Execution) -> None:
    """What each run of the execution checks before it trains, once per distinct configuration:
    its pruner, its training settings, and that its model and candidates fit in this machine's
    memory (on the device it asks for, where this machine has it)."""
    import torch

    from .. import data, memory, models

    cuda = torch.cuda.is_available()
    dev = torch.device(execution.device)  # as its points are made: auto resolved against the workers
    built, seen = {}, set()
    for p in execution.points:
        key = (p.method, p.dataset, p.arch, p.ablation, repr(sorted(p.options.items())),
               repr(sorted(p.training.items())))  # cheap: a grid may have 100,000 points
        if key in seen:
            continue
        seen.add(key)
        try:
            pruner, settings = p.pruner(), p.settings()
            if dev.type == "cuda" and not (cuda and (dev.index or 0) < torch.cuda.device_count()):
                continue  # a GPU machine's run: its memory cannot be seen from here
            if (p.arch, p.dataset) not in built:
                entry = data.DATASETS[p.dataset]
                built[p.arch, p.dataset] = models.build(p.arch, entry.shape, entry.classes, 0)
            memory.check(built[p.arch, p.dataset], pruner, settings, [], dev)
        except InitpruneError as err:
            raise InitpruneError(f"{where}: {err}") from None


def _check_type(where: str, key: str, value, default) -> None:
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), list: (list,), dict: (dict,)}
    expected = kinds.get(type(default))
    if expected is None or value is None:
        return
    if isinstance(value, bool) and bool not in expected:
        expected = ()
    if not isinstance(value, expected):
        raise InitpruneError(f"{where}: '{key}' must be {type(default).__name__}, got {value!r}")


def runnable(name: str, cpus: float | None = None, gpus: float | None = None) -> tuple[list[Execution], list[str]]:
    """What a sweep runs of a profile on this machine: its executions (``load_profile``) less the
    optional ones whose dataset it cannot have, and a line for each of those (``available``). A
    sweep runs the notebooks of a clone: outside one, that is its one-line error."""
    root.root()
    return available(load_profile(name, cpus, gpus))


def load_profile(name: str, cpus: float | None = None, gpus: float | None = None) -> list[Execution]:
    """The profile's executions, checked. ``cpus``, ``gpus``: what the sweep's command line gives each
    execution (over the profile's resources); ``device: auto`` is resolved against the GPUs."""
    path = _profile_path(name)
    if path is None:
        if name.endswith((".yaml", ".yml")):
            raise InitpruneError(f"profile file {name} not found; give a YAML file's path, or a profile's name "
                                 f"({', '.join(profiles())})")
        raise InitpruneError(f"unknown profile '{name}'; choose one of: {', '.join(profiles())}")
    try:
        spec = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        raise InitpruneError(f"profile {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise InitpruneError(f"profile {path} must be a mapping with {', '.join(PROFILE_KEYS)}")
    unknown = set(spec) - set(PROFILE_KEYS)
    if unknown:
        raise InitpruneError(f"profile {path.name}: unknown key(s) {sorted(unknown)}; "
                             f"allowed: {', '.join(PROFILE_KEYS)}")
    executions = spec.get("executions") or []
    if not isinstance(executions, list):
        raise InitpruneError(f"profile {path.name}: 'executions' must be a list of executions "
                             f"('- notebook: NAME' each), got {executions!r}")
    if not executions:
        raise InitpruneError(f"profile {path.name} has no executions; add at least one")
    if not isinstance(spec.get("defaults") or {}, dict):
        raise InitpruneError(f"profile {path.name}: 'defaults' must be a mapping of parameters and options "
                             f"(dataset: digits, ...), got {spec['defaults']!r}")
    out = []
    for i, entry in enumerate(executions):
        where = f"profile {path.name}, execution {i + 1}"
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise InitpruneError(f"{where}: each execution needs 'notebook: NAME'")
        given = {**(spec.get("defaults") or {}),
                 **{k: v for k, v in entry.items() if k not in ("notebook", "resources", "optional")}}
        tested = given.pop(TESTED, None)
        reference = _reference(where, given.pop(REFERENCE, None))
        if not isinstance(entry.get("optional", False), bool):
            raise InitpruneError(f"{where}: 'optional' must be true or false, got {entry['optional']!r}")
        asks = {**_resources(path.name, spec.get("resources")), **_resources(where, entry.get("resources"))}
        if given.get("log_to_mlflow", True) is not True:  # its points would be trained again on every resume
            raise InitpruneError(f"{where}: a sweep records every point in MLflow, so log_to_mlflow cannot be "
                                 f"{given['log_to_mlflow']!r}; remove it (an untracked run: python -m initprune run "
                                 "--no-tracking)")
        if "device" in given:
            _check_device(where, given["device"])
        defaults = notebook_parameters(entry["notebook"])
        for key, value in given.items():
            if key in defaults:
                _check_type(where, key, value, defaults[key])
        tested = _tested(where, tested)  # where it was checked before: after the notebook's parameters
        params = {**defaults, **{k: v for k, v in given.items() if k in defaults}}
        try:
            methods = methods_of(entry["notebook"], params)
            takes = {o for m in methods for o in pruners.option_names(m)}
            for key in set(given) - set(defaults) - takes - set(SETTINGS):
                raise InitpruneError(
                    f"'{key}' is neither a parameter of {entry['notebook']}.ipynb ({', '.join(defaults)}), nor an "
                    f"option of {', '.join(methods)} ({', '.join(sorted(takes)) or 'none'}), nor a training "
                    f"setting ({', '.join(SETTINGS)})")
            # its points resolved: unknown names, bad options, empty grids fail before anything runs
            execution = Execution(entry["notebook"], params, given, asks, optional=entry.get("optional", False),
                                  cpus=cpus, gpus=gpus, tested=tested, reference_epochs=reference)
        except InitpruneError as err:
            raise InitpruneError(f"{where}: {err}") from None
        _check_runs(where, execution)  # what each run checks before it trains: in a dry run too
        out.append(execution)
    _check_tested(path.name, out)
    return out


def _reference(where: str, value) -> int | None:
    """An execution's ``reference_epochs``: None where it declares none, else a positive whole number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InitpruneError(f"{where}: '{REFERENCE}' must be a positive whole number of epochs (one dense training "
                             f"that the cell's training cost is relative to), got {value!r}")
    return value


def _tested(where: str, value) -> tuple[float, ...] | None:
    """An execution's ``tested_sparsities``: None where it declares none, else distinct numbers in
    (0, 1) (an empty list: its (dataset, arch) pair is descriptive only)."""
    if value is None:
        return None
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1
                                          for v in value):
        raise InitpruneError(f"{where}: '{TESTED}' must be a list of sparsities between 0 and 1 (the ones that carry "
                             f"the verdict's tests; [] for none), got {value!r}")
    if len(set(map(float, value))) < len(value):
        raise InitpruneError(f"{where}: '{TESTED}' names a sparsity twice ({value!r}); name each once")
    return tuple(sorted(map(float, value)))


def _check_tested(name: str, executions: list[Execution]) -> None:
    """Each declared tested sparsity is one that an execution of the profile runs on that (dataset, arch) pair."""
    run: dict = {}
    for ex in executions:
        run.setdefault((ex.params["dataset"], ex.params["arch"]), set()).update(map(float, ex.params["sparsities"]))
    for i, ex in enumerate(executions):
        pair = (ex.params["dataset"], ex.params["arch"])
        missing = [s for s in ex.tested or () if s not in run[pair]]
        if missing:
            raise InitpruneError(f"profile {name}, execution {i + 1}: tested sparsity {missing[0]:g} is run by no "
                                 f"execution of {pair[0]}/{pair[1]} in this profile; declare sparsities it runs "
                                 f"({', '.join(f'{s:g}' for s in sorted(run[pair]))})")


def available(executions: list[Execution]) -> tuple[list[Execution], list[str]]:
    """The executions this machine can run, and a line for each optional one left out because
    its dataset cannot be had here (not in the data root, no offline copy, no network), saying how
    to get it. Each dataset is tried once."""
    from .. import data

    problems: dict[tuple, str | None] = {}
    keep, lines = [], []
    for ex in executions:
        if ex.optional:
            key = (ex.params["dataset"], ex.params.get("data_root") or None)
            if key not in problems:
                try:
                    data.load(*key)
                    problems[key] = None
                except InitpruneError as err:
                    problems[key] = str(err).splitlines()[0]
            if problems[key]:
                lines.append(f"left out: {ex.label} ({problems[key]})")
                continue
        keep.append(ex)
    return keep, lines


def _resources(where: str, spec) -> dict:
    if spec is None:
        return {}
    if not isinstance(spec, dict) or set(spec) - set(RESOURCES):
        raise InitpruneError(f"{where}: resources must be a mapping of {', '.join(RESOURCES)}, got {spec!r}")
    for key, value in spec.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InitpruneError(f"{where}: resources.{key} must be a number of 0 or more, got {value!r}")
    return spec


def seconds_per_epoch() -> dict[str, tuple[float, str]]:
    """{"dataset/arch": (seconds, where from)}: the median of the last epoch's seconds of the
    store's finished points of each (dataset, arch) pair, else the measurement in benchmarks/latest.json (
    "seconds_per_epoch", one thread per point as a sweep trains them)."""
    import statistics

    seen: dict[str, list[float]] = {}
    for run in store.points().finished_runs():
        value = run.data.metrics.get("epoch_seconds")
        if value is not None and run.data.params.get("threads", "1") == "1":
            seen.setdefault(f"{run.data.tags.get('dataset')}/{run.data.tags.get('arch')}", []).append(value)
    out = {pair: (statistics.median(v), f"{len(v)} finished points") for pair, v in seen.items()}
    bench = root.root() / "benchmarks" / "latest.json"
    measured = json.loads(bench.read_text()).get("seconds_per_epoch", {}) if bench.exists() else {}
    for pair, seconds in measured.items():
        out.setdefault(pair, (float(seconds), "benchmarks/latest.json"))
    return out


def estimate(rows, jobs: int | list[int]) -> str:
    """How long the points left would train, from measured seconds per epoch of each (dataset, arch) pair and
    the epochs each point trains in all (K-starts' candidates counted), spread over ``jobs`` (or
    each of a list of ``--jobs``), never over more than the executions left."""
    left: dict[str, float] = {}
    counted = set()
    executions = 0
    for row in rows:
        fresh = 0
        for p in row.execution.points:
            key = (p.hash(), p.seed)
            if key in row.finished or key in counted:
                continue
            counted.add(key)
            fresh += 1
            pair = f"{p.dataset}/{p.arch}"
            left[pair] = left.get(pair, 0.0) + p.pruner().trained_epochs(p.epochs)
        executions += fresh > 0
    if not left:
        return "estimate: nothing left to train"
    rates = seconds_per_epoch()
    known = {pair: epochs * rates[pair][0] for pair, epochs in left.items() if pair in rates}
    parts = [f"{pair}: {epochs:,.0f} epochs" + (f" at {rates[pair][0]:.2f} s ({rates[pair][1]})" if pair in rates
                                                 else " at an unmeasured speed")
             for pair, epochs in sorted(left.items())]
    total = sum(known.values())
    head = ("estimate: " + ", ".join(f"{_about(total / min(j, executions))} with --jobs {j}"
                                     for j in ([jobs] if isinstance(jobs, int) else jobs)) if known
            else "estimate: unknown")
    if known and len(known) < len(left):
        head += " for the measured cells"
    return f"{head} ({'; '.join(parts)})"


def _about(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    return f"about {seconds / 60:.0f} min" if seconds < 5400 else f"about {seconds / 3600:.1f} h"
