"""A notebook's grid: the points of one execution, and running them, each under its own child run
of the execution's run; a point already FINISHED is read back instead of trained again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import time

from .. import api, data, models, pruners
from ..errors import InitpruneError
from ..options import OptionError
from ..result import RunResult
from ..spec import RunSpec
from . import faults, group_points, results, runs, store

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
        return [_raised(r) for group in api.plan(points) for r in api.run_group(group, data_root)]
    c, exp_id = store.ensure_store()
    own_parent = not parent_run_id
    if own_parent:
        parent_run_id = runs.start_parent(c, exp_id, method, dataset, arch, profile or "notebook")
    out, status = [], "FAILED"
    try:
        from tqdm.auto import tqdm

        quiet = None if progress else True  # None: a bar only on a terminal
        bar = tqdm(total=len(points), desc=f"{method} {dataset}/{arch}", disable=quiet)
        one = lambda config: _train_or_reuse(c, exp_id, parent_run_id, config, data_root)  # noqa: E731
        for group in api.plan(points):  # seeds that train together (stacking.RULES), else one by one
            out += group_points.run_points(c, exp_id, parent_run_id, group, data_root, one)
            bar.update(len(group))
        bar.close()
        status = "FINISHED"
    finally:
        if own_parent:
            c.set_terminated(parent_run_id, status)
    return out


def _train_or_reuse(c, exp_id, parent_run_id, config: RunSpec, data_root, poll: float = 2.0) -> RunResult:
    """A point's result: read back if it is FINISHED; awaited if another execution is training it
    (two executions of a sweep may share a point, two sweeps a store); else trained here, under a
    run that claims it. While it waits, its execution's run says for what (tag ``waiting``), which
    the sweep shows: what a kernel prints is seen by no one until its notebook is stored."""
    waited = None  # the run it waits for
    try:
        while True:
            done = runs.finished(c, exp_id, config)
            if done is not None:
                try:
                    return results.load_result(done)
                except results.Unreadable as err:  # not finished after all: FAILED, so that it is trained again
                    print(f"{err}: training it again", flush=True)
                    c.set_tag(done.info.run_id, "error", str(err)[:500])
                    c.set_terminated(done.info.run_id, "FAILED")
                    continue
            holder = runs.holder(c, exp_id, config)
            if holder is None:
                run_id = runs.open_point(c, exp_id, parent_run_id, config)
                if runs.holder(c, exp_id, config, run_id) is None:
                    # the run another execution held may have FINISHED since the first look: with ours
                    # open, one that finishes from now on was seen RUNNING above, so this look is final
                    if runs.finished(c, exp_id, config) is None:
                        return run_point(c, run_id, parent_run_id, config, data_root)
                c.delete_run(run_id)  # another execution claimed it first, or finished it meanwhile
                continue
            if holder.info.run_id != waited:
                waited = holder.info.run_id
                line = (f"waiting for {config.method} s={config.sparsity} seed={config.seed}: run {waited} on "
                        f"{holder.data.tags.get('host')} is training it")
                print(line, flush=True)
                if parent_run_id:
                    c.set_tag(parent_run_id, "waiting", line)
            time.sleep(poll)
    finally:
        if waited and parent_run_id:
            with contextlib.suppress(Exception):  # the wait is over, however it ended
                c.delete_tag(parent_run_id, "waiting")


def log_run(config: RunSpec, report: RunResult, uri: str | None = None) -> None:
    """A run made outside any sweep (``python -m initprune run``), logged once it has trained, like
    a sweep's point: a run of its own with the same params, metrics, tags and ``result.json``
    (``report["run_id"]`` set), FINISHED, so that a later sweep reuses it. A run that fails to
    train leaves nothing in the store; one that cannot be logged is an OutputError that carries
    the result, so that it is not lost."""
    c = run_id = None
    try:
        c, exp_id = store.ensure_store(uri)
        began = int((time.time() - report.seconds) * 1000)
        run_id = report.run_id = runs.open_point(c, exp_id, None, config, start_time=began)
        runs.log_point(c, run_id, config, report)
        runs.finish_point(c, run_id, None)
    except Exception as err:
        if run_id is not None:
            with contextlib.suppress(Exception):
                runs.fail_point(c, run_id, err)
        problem = store.store_error(err, uri) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise api.OutputError(f"the run finished but could not be logged to MLflow: {problem}", report) from None


def run_point(c, run_id, parent_run_id, config: RunSpec, data_root) -> RunResult:
    """Train one point under its open run (``runs.open_point``), log it and mark it FINISHED;
    on any error the run is marked FAILED (KILLED on Ctrl-C or when superseded) and the error raised."""
    try:
        # a point opened after its sweep gave the execution up (a Dask task cannot be stopped) is
        # KILLED here, not left RUNNING: the sweep's clean-up had already passed
        with runs.beating(c, [run_id]):
            runs.check_execution(c, parent_run_id)
            faults.inject_failure(config)
            faults.pause("training")
            result = _raised(api.run_group([config], data_root)[0])
            result.run_id = run_id
            runs.log_point(c, run_id, config, result)
            runs.finish_point(c, run_id, parent_run_id)
        return result
    except BaseException as err:  # recorded, never FINISHED: the next sweep retries the point
        runs.fail_point(c, run_id, err)
        raise


def _raised(outcome):
    """A result of ``api.run_group``, or its error raised."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
