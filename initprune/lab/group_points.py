"""The points of one group (``api.plan``) claimed, trained and logged: each point still its own
child run, claimed, logged, FINISHED or FAILED alone, as ``grid.run_point`` does one point.

A point already FINISHED is read back and one another execution holds is awaited, both as alone
(``one``: ``grid._train_or_reuse``); the points this execution claims train as one stack. A seed
that fails alone (a diverged loss) is FAILED and the others are logged; an error of the stack, or
Ctrl-C, marks every claimed point not yet FINISHED as FAILED (KILLED) and is raised. A sweep
killed in the middle of a stack loses nothing already FINISHED and trains the rest next time.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import api
from ..result import RunResult
from ..spec import RunSpec
from . import faults, runs


def run_points(c, exp_id, parent_run_id, configs: list[RunSpec], data_root,
               one: Callable[[RunSpec], RunResult]) -> list[RunResult]:
    """Each point's result, in order; the first error of a point is raised once the others
    of the stack are logged."""
    if len(configs) == 1:
        return [one(configs[0])]
    claimed = _claim(c, exp_id, parent_run_id, configs)
    if len(claimed) < 2:  # nothing to stack: each point as alone
        for run_id in claimed.values():
            c.delete_run(run_id)
        return [one(config) for config in configs]
    done: dict[int, RunResult] = {}
    failed: dict[int, BaseException] = {}
    try:
        with runs.beating(c, list(claimed.values())):  # a sweep on another host sees them held
            runs.check_execution(c, parent_run_id)
            ready = []
            for i, run_id in claimed.items():
                try:
                    faults.inject_failure(configs[i])
                    ready.append(i)
                except Exception as err:
                    runs.fail_point(c, run_id, err)
                    failed[i] = err
            faults.pause("training")
            outcome = api.run_group([configs[i] for i in ready], data_root) if ready else []
            for i, result in zip(ready, outcome):
                if isinstance(result, BaseException):  # this seed failed as it would alone
                    runs.fail_point(c, claimed[i], result)
                    failed[i] = result
                    continue
                result.run_id = claimed[i]
                try:
                    runs.log_point(c, claimed[i], configs[i], result)
                    runs.finish_point(c, claimed[i], parent_run_id)
                except Exception as err:
                    runs.fail_point(c, claimed[i], err)
                    failed[i] = err
                    continue
                done[i] = result
    except BaseException as err:  # the stack itself, or Ctrl-C: what is not FINISHED is not counted
        for i, run_id in claimed.items():
            if i not in done and i not in failed:
                runs.fail_point(c, run_id, err)
        raise
    if failed:
        raise failed[min(failed)]
    return [done[i] if i in done else one(config) for i, config in enumerate(configs)]


def _claim(c, exp_id, parent_run_id, configs: list[RunSpec]) -> dict[int, str]:
    """The points nobody has FINISHED or holds, each under a RUNNING run of its own, as
    ``grid._train_or_reuse`` claims one: {index: run id}."""
    claimed = {}
    for i, config in enumerate(configs):
        if runs.finished(c, exp_id, config) is not None or runs.holder(c, exp_id, config) is not None:
            continue
        run_id = runs.open_point(c, exp_id, parent_run_id, config)
        if runs.holder(c, exp_id, config, run_id) is None and runs.finished(c, exp_id, config) is None:
            claimed[i] = run_id
        else:
            c.delete_run(run_id)  # another execution claimed it first, or finished it meanwhile
    return claimed
