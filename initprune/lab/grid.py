"""A notebook's grid: the points of one execution, and running them, each under its own child run
of the execution's run; a point already FINISHED is read back instead of trained again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time

from .. import api, data, models, pruners, stacking
from ..errors import InitpruneError
from ..options import OptionError
from ..result import RunResult
from ..spec import RunSpec
from . import faults, store
from .points import Points

MAX_POINTS = 100_000  # points in one execution: a grid beyond this is a slip, not a plan


def expand(method: str | list, dataset: str, arch: str, sparsities, seeds, epochs: int,
           options: dict | None = None, ablations=("none",), device: str = "auto",
           training: dict | None = None) -> list[RunSpec]:
    """The points of one execution, each resolved once: every ablation x combination of
    list-valued options and training settings x sparsity x seed. Several methods take each the
    options it declares (None: its default); an option none of them declares is an error. The
    training settings (``train.Settings``: ``{"compute": ["dense", "sparse"]}``) override the
    dataset's, for every method alike."""
    _check_grid(sparsities, seeds, epochs)
    methods = method if isinstance(method, list) else [method]
    takes = {m: pruners.option_names(m) for m in methods}
    for key in options or {}:
        if not any(key in names for names in takes.values()):
            raise OptionError(key, f"is an option of none of {', '.join(methods)} (theirs: "
                              f"{', '.join(sorted({n for names in takes.values() for n in names})) or 'none'})")
    if isinstance(method, list):  # one execution may run several methods (baselines, sanity)
        points = [p for m in method for p in expand(m, dataset, arch, sparsities, seeds, epochs,
                                                    {k: v for k, v in (options or {}).items() if k in takes[m]},
                                                    ablations, device, training)]
        _check_size(len(points), method, dataset, arch)
        return points
    data.DATASETS[dataset], models.MODELS[arch]  # unknown names fail here, listing the known ones
    options = {k: v for k, v in (options or {}).items() if v is not None}
    training = {k: v for k, v in (training or {}).items() if v is not None}
    keys, settings = list(options), list(training)
    values = [v if isinstance(v, list) else [v] for v in [*options.values(), *training.values()]]
    if not sparsities or not seeds or any(not v for v in values):
        raise InitpruneError(f"the grid of '{method}' on {dataset}/{arch} is empty; give at least one "
                             "sparsity, one seed and one value per option and training setting")
    if isinstance(ablations, str):
        ablations = [ablations]
    _check_size(len(ablations) * math.prod(map(len, values)) * len(sparsities) * len(seeds), method, dataset, arch)
    points = []
    for ablation, combo, sparsity in itertools.product(ablations, itertools.product(*values), sparsities):
        # random pruning at sparsity 0 is the dense network: record it once, as dense
        dense = method == "random" and sparsity == 0
        # bad options and settings fail now, before anything trains
        first = RunSpec(method="dense" if dense else method, dataset=dataset, arch=arch, sparsity=float(sparsity),
                        epochs=int(epochs), seed=int(seeds[0]),
                        options={} if dense else dict(zip(keys, combo[:len(keys)])),
                        training=dict(zip(settings, combo[len(keys):])), ablation=ablation, device=device)
        points += [dataclasses.replace(first, seed=int(seed)) for seed in seeds]
    return points


def _check_size(size: int, method, dataset: str, arch: str) -> None:
    if size > MAX_POINTS:
        raise InitpruneError(f"the grid of {method} on {dataset}/{arch} has {size:,} points, more than one "
                             f"execution runs (at most {MAX_POINTS:,}); give fewer sparsities, seeds or option "
                             "values, or split it into several executions")


def _check_grid(sparsities, seeds, epochs) -> None:
    """Notebook parameters arrive as whatever papermill was given: check them before anything runs."""
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if not isinstance(sparsities, (list, tuple)) or not all(number(s) for s in sparsities):
        raise InitpruneError(f"sparsities must be a list of numbers in [0, 1), got {sparsities!r}")
    if not isinstance(seeds, (list, tuple)) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                       for s in seeds):
        raise InitpruneError(f"seeds must be a list of integers, got {seeds!r}")
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        raise InitpruneError(f"epochs must be an integer, got {epochs!r}")


def run_grid(method: str | list, dataset: str = "digits", arch: str = "mlp", sparsities=(0.9,), seeds=(0,),
            epochs: int = 20, options: dict | None = None, parent_run_id: str = "", profile: str = "",
            data_root: str | None = None, device: str = "auto", tracking: bool = True,
            progress: bool = True, ablations=("none",), points=None, training: dict | None = None) -> list[RunResult]:
    """Run every point of one execution, logging each as a child run; finished points are read
    back from the store instead of trained again. Returns the results, in grid order.
    ``points``: the execution's specs as the sweep resolved them (``RunSpec.to_dict``), which
    then replace the grid of the other arguments: a sweep's kernel never expands it again.
    ``training``: training settings over the dataset's, a list running each value."""
    points = ([RunSpec(**p) for p in points] if points else
              expand(method, dataset, arch, sparsities, seeds, epochs, options, ablations, device, training))
    for name in {p.device for p in points}:  # a device this worker lacks: refused before anything is opened
        api.resolve_device(name)
    if not tracking:
        return [r for group in stacking.plan(points) for r in _raised(api.run_group(group, data_root))]
    runs = store.points()
    own_parent = not parent_run_id
    if own_parent:
        parent_run_id = runs.start_parent(method, dataset, arch, profile or "notebook")
    out, status = [], "FAILED"
    try:
        from tqdm.auto import tqdm

        quiet = None if progress else True  # None: a bar only on a terminal
        bar = tqdm(total=len(points), desc=f"{method} {dataset}/{arch}", disable=quiet)
        for group in stacking.plan(points):  # seeds that train together (stacking.RULES), else one by one
            out += run_points(runs, parent_run_id, group, data_root)
            bar.update(len(group))
        bar.close()
        status = "FINISHED"
    finally:
        if own_parent:
            runs.end(parent_run_id, status)
    return out


def run_points(runs: Points, parent: str | None, configs: list[RunSpec], data_root,
               poll: float = 2.0) -> list[RunResult]:
    """Each point's result, in order (a point alone is a group of one): read back where it is
    FINISHED; awaited where another execution trains it (two executions of a sweep may share a
    point, two sweeps a store); the rest claimed here and trained together (``train``). The first
    error of a point is raised once the others this execution claimed are recorded."""
    done: dict[int, RunResult] = {}
    with runs.waiting(parent) as say:
        waited = None  # the run it waits for
        while len(done) < len(configs):
            claimed, held = {}, None
            for i, config in enumerate(configs):
                if i in done:
                    continue
                claim = runs.claim(config, parent)
                if claim.result is not None:
                    done[i] = claim.result
                elif claim.run_id is not None:
                    claimed[i] = claim.run_id
                else:
                    held = held or (config, claim.holder)
            if claimed:
                done.update(zip(claimed, train(runs, parent, [configs[i] for i in claimed],
                                               list(claimed.values()), data_root)))
            elif held:
                config, holder = held
                if holder.info.run_id != waited:
                    waited = holder.info.run_id
                    say(f"waiting for {config.method} s={config.sparsity} seed={config.seed}: run {waited} on "
                        f"{holder.data.tags.get('host')} is training it")
                time.sleep(poll)
    return [done[i] for i in range(len(configs))]


def train(runs: Points, parent: str | None, configs: list[RunSpec], run_ids: list[str], data_root) -> list[RunResult]:
    """Train the points this execution claimed (``Points.claim``: ``run_ids``, RUNNING) with one
    ``api.run_group`` and record each, FINISHED or FAILED alone: a seed that fails (a diverged
    loss) is FAILED and the others recorded, then its error raised. An error of the group, or
    Ctrl-C, marks every point not yet FINISHED as FAILED (KILLED) and is raised: a sweep killed
    in the middle loses nothing already FINISHED and trains the rest next time."""
    outcome: dict[int, RunResult | BaseException] = {}
    try:
        # a sweep on another host sees them held; a point opened after its sweep gave the execution
        # up is KILLED here, not left RUNNING: the sweep's clean-up had already passed
        with runs.beating(run_ids, parent):
            ready = []
            for i, config in enumerate(configs):
                try:
                    faults.inject_failure(config)
                    ready.append(i)
                except Exception as err:
                    outcome[i] = err
                    runs.fail(run_ids[i], err)
            faults.pause("training")
            for i, result in zip(ready, api.run_group([configs[i] for i in ready], data_root) if ready else []):
                try:
                    if isinstance(result, BaseException):  # this seed failed as it would alone
                        raise result
                    runs.record(run_ids[i], configs[i], result, parent)
                    outcome[i] = result
                except Exception as err:
                    outcome[i] = err
                    runs.fail(run_ids[i], err)
    except BaseException as err:  # the group itself, or Ctrl-C: what is not FINISHED is not counted
        for i, run_id in enumerate(run_ids):
            if i not in outcome:
                runs.fail(run_id, err)
        raise
    return _raised([outcome[i] for i in range(len(configs))])


def _raised(outcome: list) -> list[RunResult]:
    """The results of a group, or the first error among them raised."""
    for r in outcome:
        if isinstance(r, BaseException):
            raise r
    return outcome


def log_run(config: RunSpec, result: RunResult, uri: str | None = None) -> None:
    """A run made outside any sweep (``python -m initprune run``), logged once it has trained, like
    a sweep's point: a run of its own with the same params, metrics, tags and ``result.json``
    (``result["run_id"]`` set), FINISHED, so that a later sweep reuses it. A run that fails to
    train leaves nothing in the store; one that cannot be logged is an OutputError that carries
    the result, so that it is not lost."""
    points = run_id = None
    try:
        points = store.points(uri)
        began = int((time.time() - result.seconds) * 1000)
        run_id = points.open_point(config, None, start_time=began)
        points.record(run_id, config, result, None)
    except Exception as err:
        if run_id is not None:
            with contextlib.suppress(Exception):
                points.fail(run_id, err)
        problem = store.store_error(err, uri) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise api.OutputError(f"the run finished but could not be logged to MLflow: {problem}", result) from None
