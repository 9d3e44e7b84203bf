"""Notebooks are thin, parameterized and stripped; profiles only pass parameters that exist."""

import ast
import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import pytest

from initprune.errors import InitpruneError
from initprune.lab import profiles

NOTEBOOKS = sorted(profiles.NOTEBOOKS.glob("*.ipynb"))


def cells(path, kind="code"):
    return [c for c in json.loads(Path(path).read_text())["cells"] if c["cell_type"] == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_every_line_of_it_seen_by_papermill(path):
    tagged = [c for c in cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assigned = [n.target.id for n in ast.parse("".join(tagged[0]["source"])).body if isinstance(n, ast.AnnAssign)]
    assert list(profiles.notebook_parameters(path.stem)) == assigned  # a comment papermill misreads drops one


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_committed_and_no_logic_in_notebooks(path):
    for cell in cells(path):
        assert not cell.get("outputs") and cell.get("execution_count") is None
        tree = ast.parse("".join(cell["source"]))
        assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


@pytest.mark.parametrize("profile", profiles.profiles())
def test_every_profile_passes_only_parameters_its_notebooks_have(profile):
    executions = profiles.load_profile(profile)  # validates names, types and every grid point
    assert executions and all(ex.points for ex in executions)


def test_profiles_cover_every_method_of_the_paper():
    for profile in ("smoke", "demo", "paper"):
        methods = {p.method for ex in profiles.load_profile(profile) for p in ex.points}
        assert {"dense", "random", "kstarts", "dissipating", "combined"} <= methods
    demo = {p.sparsity for ex in profiles.load_profile("demo") for p in ex.points}
    assert {0.5, 0.8, 0.9, 0.95, 0.98} <= demo


BAD_PROFILES = [
    ("executions: [{notebook: random}]\nsurprise: 1\n", "unknown key(s) ['surprise']"),
    ("executions: [{notebook: random, k: 3}]\n", "'k' is neither a parameter of random.ipynb"),
    ("executions: [{notebook: random, epochs: ten}]\n", "'epochs' must be int, got 'ten'"),
    ("executions: [{notebook: kstarts, fitness: beauty}]\n", "fitness must be one of: magnitude, gradient, both"),
    ("executions: [{notebook: snip}]\n", "no notebook 'snip'"),
    ("executions: [{notebook: random, dataset: imagenet}]\n", "unknown dataset 'imagenet'"),
    ("executions: [{notebook: random, sparsities: []}]\n", "is empty"),
    ("executions: []\n", "has no executions"),
    ("executions: [{notebook: random, sparsities: [1.5]}]\n", "sparsity must be in [0, 1)"),
    ("executions: [random\n", "not valid YAML"),
    ("resources: {gpus: -1}\nexecutions: [{notebook: random}]\n", "resources.gpus must be a number of 0 or more"),
    ("executions: [{notebook: random, resources: {tpus: 1}}]\n", "resources must be a mapping of cpus, gpus"),
]


@pytest.mark.parametrize("text,message", BAD_PROFILES, ids=[m for _, m in BAD_PROFILES])
def test_a_bad_profile_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InitpruneError) as err:
        profiles.load_profile(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(InitpruneError, match="unknown profile 'nope'; choose one of: "
                                             "demo, offline, offline-controls, paper, seconds, smoke"):
        profiles.load_profile("nope")


def test_resources_come_from_the_command_line_then_the_profile_then_the_device(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("resources: {cpus: 2}\nexecutions:\n  - {notebook: random}\n"
                    "  - {notebook: random, device: cuda}\n  - {notebook: random, resources: {cpus: 4, gpus: 0.5}}\n")
    plain, cuda, own = profiles.load_profile(str(path))
    assert plain.resources == {"cpus": 2, "gpus": 0}
    assert cuda.resources == {"cpus": 2, "gpus": 1}  # a cell told to train on cuda asks for one GPU
    assert own.resources == {"cpus": 4, "gpus": 0.5}
    assert profiles.load_profile(str(path), cpus=1, gpus=0)[2].resources == {"cpus": 1, "gpus": 0}
    assert plain.cell != cuda.cell and plain.cell == profiles.load_profile(str(path))[0].cell  # stable identity


def test_the_figures_notebook_shows_every_figure_the_library_writes():
    from initprune.report import figures

    source = "".join("".join(c["source"]) for c in cells(profiles.NOTEBOOKS / "figures.ipynb"))
    assert "figures.show_all(folder)" in source  # every figure, from their one declaration
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()) as said:
        figures.show_all(out)  # nothing assembled there: one line per figure
    shown = set(re.findall(r"^(\w+): left out", said.getvalue(), flags=re.M))
    assert shown == set(figures.every())


def test_the_run_defaults_are_declared_once_and_every_reader_agrees():
    """spec.RUN: RunSpec's fields, the command line's ``run`` and a grid read them; ``fit`` trains
    spec.FIT_EPOCHS (its documented 10) beside the run's 20."""
    import dataclasses
    import inspect

    from initprune import api, cli, spec
    from initprune.lab import grid

    fields = {f.name: f.default for f in dataclasses.fields(spec.RunSpec)}
    assert {k: fields[k] for k in spec.RUN} == spec.RUN
    run = cli.parser().parse_args(["run", "--method", "random"])
    assert {k: getattr(run, k) for k in spec.RUN if k != "method"} == {k: v for k, v in spec.RUN.items()
                                                                       if k != "method"}
    fit = {k: p.default for k, p in inspect.signature(api.fit).parameters.items()}
    assert fit["epochs"] == spec.FIT_EPOCHS == 10 and spec.RUN["epochs"] == 20
    assert {k: fit[k] for k in ("method", "sparsity", "seed", "device", "ablation")} == {
        k: spec.RUN[k] for k in ("method", "sparsity", "seed", "device", "ablation")}
    run_grid = {k: p.default for k, p in inspect.signature(grid.run_grid).parameters.items()}
    assert (run_grid["dataset"], run_grid["arch"], run_grid["epochs"], run_grid["device"]) == (
        spec.RUN["dataset"], spec.RUN["arch"], spec.RUN["epochs"], spec.RUN["device"])
    assert (list(run_grid["sparsities"]), list(run_grid["seeds"])) == ([spec.RUN["sparsity"]], [spec.RUN["seed"]])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_parameters_cell_default_agrees_with_the_declared_defaults(path):
    """Each notebook's parameters cell, read with nbformat (not run): every name it shares with
    the quick setting (executions.QUICK, from spec.RUN) has that value."""
    import nbformat

    from initprune.lab import executions

    (cell,) = [c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", [])]
    body = ast.parse(cell.source).body
    given = {n.target.id: ast.literal_eval(n.value) for n in body if isinstance(n, ast.AnnAssign)}
    want = {**executions.QUICK, **executions.QUICK_OF.get(path.stem, {})}
    shared = set(given) & set(want)
    assert {k: given[k] for k in shared} == {k: want[k] for k in shared}
    assert shared or path.stem == "figures"  # every notebook that trains shares some
