"""The resolved run spec: its identity is the whole configuration, so a changed default is a new
point; an option added later stays out of it while it holds its neutral value; the core loads
no machinery; the package has no import cycle."""

import ast
import dataclasses
import json
import pickle
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


def test_the_identity_holds_every_resolved_value_and_the_version(monkeypatch):
    monkeypatch.setattr(spec.torch.cuda, "is_available", lambda: False)  # auto: cpu, on any machine
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
    from initprune.errors import InitpruneError

    # the notebooks' words are the lab's to keep clear: a method whose option takes one is refused there
    space = {}
    exec("from dataclasses import dataclass\nfrom initprune.options import option\n"
         "from initprune.pruners import Pruner\n@dataclass\nclass Odd(Pruner):\n    'A test method.'\n"
         "    seeds: int = option(1, 'a count')\n", space)
    with pruners.PRUNERS.scratch():
        pruners.PRUNERS.register("odd")(space["Odd"])  # the core has nothing against it
        with pytest.raises(InitpruneError, match=r"option\(s\) seeds have the name of one of the notebooks' param"):
            executions.check_options(["random", "odd"])
    executions.check_options(pruners.PRUNERS.names())  # no registered method's option takes one


def test_a_sweep_hands_its_kernels_the_resolved_specs(monkeypatch):
    from initprune.lab import grid, profiles

    (ex, *_) = profiles.load_profile("smoke")
    given = ex.parameters["points"]
    assert [RunSpec(**p).hash() for p in given] == [p.hash() for p in ex.points]
    # resolved once, as it was made: what a worker unpickles (Ray, Dask, the local pool) is never expanded again
    monkeypatch.setattr(grid, "expand", lambda *a, **k: pytest.fail("expanded again"))
    worker = pickle.loads(pickle.dumps(ex))
    assert worker.parameters["points"] == given and worker.cell == ex.cell and worker == ex
    assert [p.hash() for p in worker.points] == [RunSpec(**p).hash() for p in given]


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
    assert {"api", "data", "pruners", "lab.faults", "lab.points", "lab.store"} <= _imports(modules["lab.grid"])
    assert {"lab.results", "lab.root", "lab.store", "lab.tasks", "report.figures"} <= _imports(
        modules["report.assembly"])
    assert {"lab.grid", "lab.store", "report.assembly", "api"} <= _imports(modules["cli"])
    assert {"report.stats", "data", "pruners"} <= _imports(modules["report.claims"])


# ---- issue 29: identities that hold across spellings and machines ----------------------------------

def _profile(tmp_path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def test_an_integer_for_a_float_option_is_the_float(tmp_path):
    """Issue 29, case 6: ``temperature: 200`` in a profile against the default 200.0 trained twice,
    and a profile's ``tau: 1`` and the command line's ``--tau 1`` (1.0) never met: each option and
    training setting is held as its declared type before it is hashed."""
    from initprune import cli
    from initprune.lab import profiles

    grasp = RunSpec(method="grasp", options={"temperature": 200}, training={"lr": 1, "momentum": 0})
    assert type(grasp.options["temperature"]) is float and type(grasp.training["lr"]) is float
    assert grasp.hash() == RunSpec(method="grasp", training={"lr": 1.0, "momentum": 0.0}).hash()
    args = cli.parser().parse_args(["run", "--method", "dissipating", "--tau", "1"])
    flagged = cli.parse_given(args, pruners.Dissipating.declared())
    assert RunSpec(method="dissipating", options={"tau": 1}).hash() == RunSpec(method="dissipating",
                                                                                options=flagged).hash()
    for bad in ({"temperature": True}, {"temperature": "200"}):  # a bool is not a number, text neither
        with pytest.raises(options.OptionError, match=f"temperature must be .*got {bad['temperature']!r}"):
            RunSpec(method="grasp", options=bad)
    with pytest.raises(options.OptionError, match="k must be an integer"):
        RunSpec(method="kstarts", options={"k": True})

    cells = {}
    for name, value in (("int", "200"), ("float", "200.0"), ("default", None)):
        extra = f", temperature: {value}" if value else ""
        (ex,) = profiles.load_profile(_profile(tmp_path, name, "executions:\n  - {notebook: baselines, method: "
                                               f"[grasp], sparsities: [0.9], seeds: [0, 1], epochs: 2{extra}}}\n"))
        cells[name] = (ex.cell, [(p.hash(), p.seed) for p in ex.points])
    assert cells["int"] == cells["float"]  # one grid cell, its points once
    assert cells["int"][1] == cells["default"][1]  # the default's points: read back, not trained again


# (profile, execution, method, sparsity, seed, ablation) -> (point hash, cell): computed on the code before
# issue 29 (commit 8ad4039), on a machine without a GPU; the stores of these profiles keep them
DEFAULT_IDENTITIES = {
    ("smoke", 0, "random", 0.9, 0, "none"): ("e98afb59fdb4", "be5cdbc91f19"),
    ("smoke", 5, "snip", 0.9, 0, "rewind"): ("bf4595ea1b2e", "24e0035fd840"),
    ("demo", 1, "kstarts", 0.99, 2, "none"): ("5c30a2c9e1d0", "60ecb01a9b16"),
    ("demo", 3, "combined", 0.99, 2, "none"): ("dab0f4874803", "ce2003d4acb6"),
    ("demo", 4, "grasp", 0.99, 2, "none"): ("1d98836dabf9", "a28d81c651c8"),
    ("demo", 12, "grasp", 0.95, 2, "none"): ("b42adacb9203", "c2f571c90dc9"),
    ("offline-first", 2, "dissipating", 0.98, 9, "none"): ("b875167255ee", "f694a59126d5"),
    ("paper", 2, "dissipating", 0.99, 2, "none"): ("bd7c80c01578", "d92d587892af"),
    ("paper", 47, "random", 0.98, 2, "rewind"): ("eb6f07451bb2", "b2d7b32cfe3f"),
}


def test_the_default_profiles_keep_their_identities(monkeypatch):
    """Normalising option types and resolving the device in the driver leave every point and
    cell of the default profiles where the store has them (``device: auto`` on a machine without
    a GPU, as they were recorded)."""
    import torch

    from initprune.lab import profiles

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    kept = Path(__file__).parent / "profiles"  # the first offline run's profile, as it ran
    loaded = {name: profiles.load_profile(str(kept / f"{name}.yaml") if (kept / f"{name}.yaml").exists() else name)
              for name in {k[0] for k in DEFAULT_IDENTITIES}}
    found = {}
    for name, i, *point in DEFAULT_IDENTITIES:
        ex = loaded[name][i]
        p = [p for p in ex.points if [p.method, p.sparsity, p.seed, p.ablation] == point][-1]  # its last
        found[(name, i, *point)] = (p.hash(), ex.cell)
    assert found == DEFAULT_IDENTITIES


def test_device_auto_is_resolved_in_the_driver_against_its_workers(tmp_path, monkeypatch):
    """Issue 29, case 8: a driver without a GPU and workers with one resolved ``auto`` each its own
    way, so the driver never found its points finished. The driver resolves it, against the GPUs
    its executor declares, into the specs the workers receive; no hash asks torch."""
    import torch

    from initprune.lab import profiles

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the head: no GPU
    text = "executions:\n  - {notebook: random, sparsities: [0.9], seeds: [0], epochs: 2}\n"
    cpu_head = _profile(tmp_path, "plain", text)
    gpu_workers = _profile(tmp_path, "gpus", "resources: {gpus: 1}\n" + text)
    (on_cpu,), (declared,), (flagged,) = (profiles.load_profile(cpu_head), profiles.load_profile(gpu_workers),
                                          profiles.load_profile(cpu_head, gpus=1))
    sent = declared.parameters["points"]
    assert [p["device"] for p in sent] == ["cuda"] and flagged.parameters["points"] == sent
    assert on_cpu.points[0].device == "cpu"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("torch asked at hash time"))
    spec = declared.points[0]
    assert spec.identity()["device"] == "cuda" and on_cpu.points[0].identity()["device"] == "cpu"
    worker = RunSpec(**sent[0])  # what the kernel on a GPU worker builds and hashes: the same point
    assert worker.hash() == spec.hash() == flagged.points[0].hash() != on_cpu.points[0].hash()
    assert dataclasses.replace(spec, device="cuda:1").hash() == spec.hash()  # the index is no identity


def test_a_worker_without_a_gpu_refuses_a_cuda_spec_in_one_line(store, monkeypatch):
    """A spec resolved to cuda by its driver, handed to a worker that has no GPU: refused before
    anything trains or is recorded, in one line that says what to do."""
    import torch

    from initprune.errors import InitpruneError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = RunSpec(method="random", sparsity=0.9, epochs=1, device="cuda")
    with pytest.raises(InitpruneError) as err:
        grid.run_grid("random", points=[spec.to_dict()], progress=False)
    text = str(err.value)
    assert "\n" not in text and "cuda" in text and "no CUDA device" in text and "--gpus-per-task" in text
    c, exp_id = ensure_store()
    assert not c.search_runs([exp_id], "tags.kind = 'point'")  # nothing opened, nothing FAILED


def test_no_field_or_mapping_of_a_spec_can_be_changed_in_place(monkeypatch):
    """Every field refuses assignment and deletion, and its mappings every way a dict changes."""
    monkeypatch.setenv("INITPRUNE_THREADS", "1")
    s = RunSpec(method="kstarts", sparsity=0.9, epochs=3, options={"k": 3}, device="cpu")
    h = s.hash()
    for f in dataclasses.fields(RunSpec):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(s, f.name, getattr(s, f.name))
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(s, f.name)
    for mapping in (s.options, s.training):
        key = next(iter(mapping))

        def merged(m=mapping):
            m |= {}

        for change in (lambda m=mapping, k=key: m.__setitem__(k, 1), lambda m=mapping, k=key: m.__delitem__(k),
                       merged, lambda m=mapping: m.update({}), lambda m=mapping: m.clear(),
                       lambda m=mapping, k=key: m.pop(k), lambda m=mapping: m.popitem(),
                       lambda m=mapping: m.setdefault("x", 1)):
            with pytest.raises(TypeError, match="cannot change"):
                change()
    assert s.hash() == h == RunSpec(**s.to_dict()).hash()


def test_a_spec_cannot_change_and_still_travels(monkeypatch):
    """Its mappings are read-only (a mutated spec would keep its cached, stale hash), yet a spec
    pickles (Ray, Dask) and serialises to JSON (papermill) as before, with the same identity."""
    import copy
    import pickle

    monkeypatch.setenv("INITPRUNE_THREADS", "1")
    s = RunSpec(method="kstarts", sparsity=0.9, epochs=3, options={"k": 3}, device="cpu")
    h = s.hash()
    for change in (lambda: s.options.__setitem__("k", 2), lambda: s.training.update(lr=1.0),
                   lambda: s.options.pop("k"), lambda: s.training.clear(), lambda: s.options.setdefault("x", 1)):
        with pytest.raises(TypeError, match="cannot change"):
            change()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seed = 1
    assert s.options["k"] == 3 and s.hash() == h
    for twin in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), RunSpec(**json.loads(json.dumps(s.to_dict())))):
        assert twin == s and twin.hash() == h
        with pytest.raises(TypeError):
            twin.options["k"] = 2
    assert type(s.to_dict()["options"]) is dict  # plain values out, for YAML and papermill alike
    other = dataclasses.replace(s, options={**s.options, "k": 2})  # the way to another spec
    assert other.hash() != h and other.hash() == RunSpec(**{**s.to_dict(), "options": {"k": 2}}).hash()
