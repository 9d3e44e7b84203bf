"""Test-wide environment, for pytest and nbval alike (notebook kernels inherit it): no network,
MLflow and figures in a temporary folder, never the user's mlruns/ or figures/. And the suite's
layout over its two workers (pyproject: ``-n 2 --dist loadgroup``), see ``pytest_collection_modifyitems``."""

import os
import tempfile

import pytest

_tmp = tempfile.mkdtemp(prefix="initprune-tests-")
os.environ["INITPRUNE_OFFLINE"] = "1"
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_tmp}/mlflow.db"
os.environ["INITPRUNE_FIGURES"] = f"{_tmp}/figures"
os.environ["MPLBACKEND"] = "Agg"

# The tests that start notebook kernels, sweeps or clusters, heaviest first: handed out before the
# quick ones, so that the quick ones fill in beside them and the run does not end on a long one.
HEAVY_FIRST = (
    "tests/reliability/test_sweeps.py",
    "tests/test_sweep.py",
    "tests/reliability/test_stores.py",
    "tests/reliability/test_lifecycle.py",
    "tests/test_plugins.py",
)


def _file(item) -> str:
    return item.nodeid.split("::", 1)[0]


def _shares_a_module_fixture(item) -> bool:
    """Whether the test uses a fixture that its own file defines for the whole module (a cluster,
    a server, a store built once): the file's tests must then run on one worker, to build it once."""
    for defs in getattr(item, "_fixtureinfo", None) and item._fixtureinfo.name2fixturedefs.values() or ():
        fixture = defs[-1]
        if fixture.scope in ("module", "package", "session") and fixture.baseid == _file(item):
            return True
    return False


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks into the node ids
def pytest_collection_modifyitems(config, items):
    """With ``--dist loadgroup`` every test is handed to whichever worker is free, one at a time,
    except a group, which goes whole to one worker: each notebook (nbval runs its cells in order in
    one kernel) and each file whose tests share a module-scoped fixture (the executors' clusters and
    server, a report or a store built once). xdist hands out the groups first, the largest first
    (the executors' file), then single tests in the order left here: the heavy files first."""
    for item in items:
        if item.nodeid.endswith(".ipynb") or ".ipynb::" in item.nodeid or _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(_file(item)))
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_file(item), len(rank)))  # stable: collection order otherwise
