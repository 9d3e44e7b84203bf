"""Test-wide environment, for pytest and nbval alike (notebook kernels inherit it): no network,
MLflow and figures in a temporary folder, never the user's mlruns/ or figures/; and how the
suite is laid out over its two workers."""

import atexit
import os
import shutil
import tempfile

import pytest

_tmp = tempfile.mkdtemp(prefix="initprune-tests-")
atexit.register(shutil.rmtree, _tmp, True)  # each pytest process's own folder, gone when it ends
os.environ["INITPRUNE_OFFLINE"] = "1"
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_tmp}/mlflow.db"
os.environ["INITPRUNE_FIGURES"] = f"{_tmp}/figures"
os.environ["MPLBACKEND"] = "Agg"


# ---- the suite over its two workers (pyproject: -n 2 --dist loadscope --no-loadscope-reorder) --
# xdist hands out work units in collection order: each test alone, except a group, which goes whole
# to one worker: each notebook (nbval runs its cells in order, in one kernel) and each file whose
# tests share a module-scoped fixture (clusters, servers, a report or a store built once). The long
# groups and files are collected first, so that the quick tests fill in beside them at the end.
# (xdist's own xdist_group marks do nothing under pytest 9: the node ids they rename stay as they were.)
GROUPED = ("tests/reliability/test_executors.py", "tests/reliability/test_auth.py", "tests/test_report.py",
           "tests/test_progress.py", "tests/test_figures.py")
HEAVY_FIRST = ("tests/reliability/test_executors.py", "tests/reliability/test_sweeps.py",
               "tests/reliability/test_stores.py", "tests/test_sweep.py", "tests/reliability/test_auth.py",
               "tests/reliability/test_lifecycle.py", "tests/test_plugins.py", "tests/test_cli.py")


def _file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_file(item.nodeid), len(rank)))  # stable: collection order otherwise


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: pytest -p no:xdist still runs
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = _file(nodeid)
            return file if file in GROUPED or file.endswith(".ipynb") else nodeid

    return Grouped(config, log)
