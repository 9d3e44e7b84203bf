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

from initprune import grid, options, pruners, spec
from initprune.options import option
from initprune.spec import RunSpec
from initprune.store import ensure_store

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
    assert ident["options"] == {o.name: getattr(s.pruner(), o.name) for o in pruners.Dissipating.declared()}
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


def _imports(path: Path) -> set[str]:
    """The initprune modules a module imports, those inside functions included; imports under
    ``if TYPE_CHECKING:`` are for type checkers only and left out."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
            for n in ast.walk(node)}
    found = set()
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base.startswith("initprune"):
                base = base.removeprefix("initprune").lstrip(".")
                if base:
                    found.add(base.split(".")[0])
                else:  # from . import a, b
                    found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("initprune.")}
    return found - {"__init__", path.stem}


def test_the_package_has_no_import_cycle():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
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
    """The run's own parameter names are declared once (sweep.COMMON); the notebooks' parameters
    cells are checked against them, and no method option may take one."""
    from initprune import sweep

    for name in ("random", "kstarts", "dissipating", "combined", "baselines", "sanity"):
        params = sweep.notebook_parameters(name)
        assert set(sweep.COMMON) <= set(params), name
        assert set(params) - set(sweep.COMMON) <= {"options", "method", "ablations"}, name
    assert set(sweep.COMMON) <= pruners.RESERVED


def test_a_sweep_hands_its_kernels_the_resolved_specs():
    from initprune import sweep

    (ex, *_) = sweep.load_profile("smoke")
    given = ex.parameters()["points"]
    assert [RunSpec(**p).hash() for p in given] == [p.hash() for p in ex.points()]
    assert ex.points() is ex.points()  # resolved once per execution


def test_every_module_has_a_layer_and_imports_nothing_above_it():
    import initprune

    rank = {m: i for i, names in enumerate(initprune.LAYERS.values()) for m in names}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(rank), f"modules without a layer: {sorted(modules - set(rank))}"
    upward = sorted(f"{m} -> {n}" for m in modules for n in _imports(PACKAGE / f"{m}.py") if rank[n] > rank[m])
    assert not upward, upward
