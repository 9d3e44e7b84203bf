"""The resolved run spec: its identity is the whole configuration, so a changed default is a new
point; an option added later stays out of it while it holds its neutral value; the core loads
no machinery; the package has no import cycle."""

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from initprune import options, pruners, spec
from initprune.lab import grid
from initprune.lab.store import ensure_store
from initprune.options import option
from initprune.spec import RunSpec

PACKAGE = Path(spec.__file__).resolve().parent


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _pruner(default_level: float, *, extra: bool = False, neutral=options.UNSET):
    """A random pruner whose option ``level`` has ``default_level`` as its default (and, with
    ``extra``, an option added later with the given neutral value): the same declaration each
    time (one qualified name), so the registry takes it again."""

    @dataclasses.dataclass
    class Tuned(pruners.Random):
        level: float = option(default_level, "a value the method reads", check=lambda v: 0 <= v <= 1,
                              must="in [0, 1]")
        if extra:
            added: str = option("old", "an option added after runs were stored", choices=("old", "new"),
                                neutral=neutral)

    return Tuned


def test_the_identity_holds_every_resolved_value_and_the_version():
    s = RunSpec(method="dissipating", options={"schedule": "cubic"}, training={"lr": 0.05})
    ident = s.identity()
    # every option, but one added later while it holds its neutral value (movement: relative)
    assert ident["options"] == {o.name: getattr(s.pruner(), o.name) for o in pruners.Dissipating.declared()
                                if o.neutral is options.UNSET or getattr(s.pruner(), o.name) != o.neutral}
    assert "movement" not in ident["options"] and len(ident["options"]) == len(pruners.Dissipating.declared()) - 1
    assert ident["options"]["prune_epochs"] == 3 and ident["training"]["lr"] == 0.05
    assert ident["training"]["batch_size"] == 32  # the dataset's, though nobody gave it
    assert ident["version"] == pruners.Dissipating.version and ident["device"] == "cpu" and ident["threads"] == 1
    assert "seed" not in ident
    assert s.hash() == dataclasses.replace(s, seed=7).hash()
    assert s.hash() != dataclasses.replace(s, threads=2).hash()  # threads change the numbers


def test_a_changed_default_changes_the_identity():
    with pruners.PRUNERS.scratch():
        pruners.PRUNERS.register("tuned")(_pruner(0.5))
        before = RunSpec(method="tuned")
        pruners.PRUNERS.register("tuned")(_pruner(0.25))
        after = RunSpec(method="tuned")
        assert before.options == {"scope": "layerwise", "level": 0.5} and after.options["level"] == 0.25
        assert before.hash() != after.hash()
        assert RunSpec(method="tuned", options={"level": 0.5}).hash() == before.hash()  # the same computation


def test_an_option_added_later_keeps_old_identities_while_it_holds_its_neutral_value():
    with pruners.PRUNERS.scratch():
        pruners.PRUNERS.register("tuned")(_pruner(0.5))
        old = RunSpec(method="tuned").hash()
        pruners.PRUNERS.register("tuned")(_pruner(0.5, extra=True, neutral="old"))
        assert RunSpec(method="tuned").hash() == old
        assert RunSpec(method="tuned", options={"added": "new"}).hash() != old
        pruners.PRUNERS.register("tuned")(_pruner(0.5, extra=True))  # declared without a neutral value
        assert RunSpec(method="tuned").hash() != old


def test_a_neutral_value_the_option_refuses_is_an_error_at_declaration():
    @dataclasses.dataclass
    class Bad(pruners.Random):
        added: int = option(1, "an option", check=lambda v: v >= 1, must="at least 1", neutral=0)

    with pytest.raises(Exception, match="its neutral value is refused by its own declaration"):
        Bad.declared()


def _points(uri) -> list:
    c, exp_id = ensure_store(uri)
    return c.search_runs([exp_id], "tags.kind = 'point' and attributes.status = 'FINISHED'", max_results=100)


def test_a_sweep_after_a_default_changed_trains_again_and_the_next_trains_nothing(store):
    """The stale-result bug: with the default left out of the hash, the second sweep would have
    read the first one's runs back as results of the new configuration."""
    go = lambda: grid.run_grid("tuned", "digits", "mlp", [0.5], [0, 1], 1, progress=False)  # noqa: E731
    with pruners.PRUNERS.scratch():
        pruners.PRUNERS.register("tuned")(_pruner(0.5))
        first = go()
        assert len(_points(store)) == 2
        pruners.PRUNERS.register("tuned")(_pruner(0.25))
        second = go()
        assert len(_points(store)) == 4  # trained again
        assert {r.run_id for r in second}.isdisjoint({r.run_id for r in first})
        assert all(r.options["level"] == 0.25 for r in second)
        third = go()
        assert len(_points(store)) == 4 and [r.run_id for r in third] == [r.run_id for r in second]


def test_a_spec_resolves_once_and_refuses_bad_values_before_anything_loads():
    with pytest.raises(options.OptionError, match="k must be an integer of at least 1"):
        RunSpec(method="kstarts", options={"k": 0})
    with pytest.raises(options.OptionError, match="lrr is not a training setting"):
        RunSpec(training={"lrr": 0.1})
    with pytest.raises(Exception, match="unknown dataset 'nope'"):
        RunSpec(dataset="nope")
    with pytest.raises(Exception, match="unknown device 'tpu'"):
        RunSpec(device="tpu")
    s = RunSpec(method="kstarts", sparsity=0.95, options={"k": 4})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.sparsity = 0.5
    assert json.loads(json.dumps(s.to_dict()))["options"]["k"] == 4


def test_the_run_fields_are_reserved_for_the_run():
    """A method option named like one of the run's own fields would be shadowed by it."""
    assert {f.name for f in dataclasses.fields(RunSpec)} <= pruners.RESERVED
    assert set(spec.SETTINGS) <= pruners.RESERVED


MACHINERY = ("mlflow", "papermill", "yaml", "ray", "dask", "pandas", "matplotlib", "nbformat")


def test_the_core_loads_no_tracking_notebooks_or_cluster_machinery():
    code = ("import sys, initprune, initprune.spec, initprune.result, initprune.api; initprune.fit; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({MACHINERY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _module(path: Path) -> str:
    """A module's name from the package: ``api``, ``lab.sweep``, ``report.claims``."""
    return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def _modules() -> dict[str, Path]:
    """Every module of the package, its subpackages' included, by name (``__init__`` files left out)."""
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.stem != "__init__"}


def _imports(path: Path) -> set[str]:
    """The initprune modules a module imports (named as ``_module`` names them), those inside
    functions included; imports under ``if TYPE_CHECKING:`` are for type checkers only and left
    out. ``from .. import masks`` in lab/ is ``masks``; ``from .lab import grid`` is ``lab.grid``."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            for n in ast.walk(node)}
    modules = set(_modules())
    here = _module(path).split(".")[:-1]  # the module's own package, from the root
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                assert node.level <= len(here) + 1, f"{path.name}: an import above the package"
                base = here[:len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif (node.module or "").split(".")[0] == "initprune":
                base = node.module.split(".")[1:]
            else:
                continue
            name = ".".join(base)
            if name in modules:  # from .X import a
                found.add(name)
            for alias in node.names:  # from . import a, b: each a module of its own
                child = ".".join([*base, alias.name])
                if child in modules:
                    found.add(child)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "initprune":
                    # import initprune.lab.sweep: the deepest module it names
                    named = [".".join(parts[1:i]) for i in range(len(parts), 1, -1)]
                    found |= {next((n for n in named if n in modules), "")} - {""}
    return found - {_module(path)}


def test_the_package_has_no_import_cycle():
    graph = {name: _imports(p) for name, p in _modules().items()}
    cycles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_a_point_computes_the_same_whatever_threads_its_caller_runs_and_gets_them_back():
    """A sweep job's share of the cores, or `run` on a bigger machine, used to set torch's thread
    count, which changes float results; now the spec fixes it, and the caller's is restored."""
    import torch

    from initprune import api

    point = RunSpec(method="snip", sparsity=0.9, epochs=2, options={"batches": 2})
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = api.run(point)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        b = api.run(point)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
    timeless = lambda r: [{k: v for k, v in h.items() if k != "seconds"} for h in r.history]  # noqa: E731
    assert timeless(a) == timeless(b) and a.test_correct == b.test_correct and a.threads == b.threads == 1


def test_every_grid_notebook_has_the_common_parameters_and_they_are_reserved():
    """The run's own parameter names are declared once (executions.COMMON); the notebooks'
    parameters cells are checked against them, and no method option may take one."""
    from initprune.lab import executions, profiles

    for name in ("random", "kstarts", "dissipating", "combined", "baselines", "sanity"):
        params = profiles.notebook_parameters(name)
        assert set(executions.COMMON) <= set(params), name
        assert set(params) - set(executions.COMMON) <= {"options", "method", "ablations"}, name
    assert set(executions.COMMON) <= pruners.RESERVED


def test_a_sweep_hands_its_kernels_the_resolved_specs():
    from initprune.lab import profiles

    (ex, *_) = profiles.load_profile("smoke")
    given = ex.parameters()["points"]
    assert [RunSpec(**p).hash() for p in given] == [p.hash() for p in ex.points()]
    assert ex.points() is ex.points()  # resolved once per execution


def test_every_module_has_a_layer_and_imports_nothing_above_it():
    """initprune.LAYERS is read from the folders: the core and the app at the root, the lab in
    lab/, the report in report/; every module is in one, and none imports a layer above its own
    (a lab module no report module; the core neither)."""
    import initprune

    assert list(initprune.LAYERS) == ["core", "lab", "report", "app"]
    rank = {m: i for i, names in enumerate(initprune.LAYERS.values()) for m in names}
    modules = set(_modules())
    assert modules == set(rank), f"modules without a layer: {sorted(modules - set(rank))}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"lab", "report"}, f"a folder that is no layer: {sorted(folders - {'lab', 'report'})}"
    for layer, names in initprune.LAYERS.items():
        where = {"lab": "lab.", "report": "report."}.get(layer)
        assert all(n.startswith(where) if where else "." not in n for n in names), (layer, names)
    assert set(initprune.LAYERS["app"]) == {"cli", "__main__"}
    upward = sorted(f"{m} -> {n}" for m in modules for n in _imports(_modules()[m]) if rank[n] > rank[m])
    assert not upward, upward


def test_the_import_graph_is_read_through_the_folders():
    """The layering test sees imports across folders: a lab module's ``from .. import`` of the
    core, a report module's ``from ..lab import``, the app's ``from .report import``."""
    modules = _modules()
    assert {"api", "data", "pruners", "lab.faults", "lab.results", "lab.runs", "lab.store"} <= _imports(
        modules["lab.grid"])
    assert {"lab.results", "lab.runs", "lab.store", "lab.tasks", "report.figures"} <= _imports(
        modules["report.assembly"])
    assert {"lab.grid", "lab.store", "report.assembly", "api"} <= _imports(modules["cli"])
    assert {"report.stats", "data", "pruners"} <= _imports(modules["report.claims"])
