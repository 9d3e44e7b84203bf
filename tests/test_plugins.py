"""A user's own package adds a pruner, a model and a dataset (tests/plugins/initprune_mine), and
they work like built-ins: fit, run, list, profiles through notebooks, MLflow and the figures,
with no file of initprune/ or notebooks/ edited for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import initprune
from initprune import api, registry
from initprune.data import DATASETS
from initprune.errors import InitpruneError
from initprune.lab import results, sweep
from initprune.models import MODELS
from initprune.pruners import PRUNERS
from initprune.report import claims as claims_module
from initprune.report import figures

PLUGINS = Path(__file__).resolve().parent / "plugins"
RUN = ["run", "--method", "mine", "--dataset", "blobs", "--arch", "tiny", "--sparsity", "0.5", "--epochs", "2"]


def cli(*args, plugins: str = "initprune_mine", **env):
    """``python -m initprune ARGS`` in a process that finds the plugin through INITPRUNE_PLUGINS."""
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "initprune", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": path, "INITPRUNE_PLUGINS": plugins, **env})


@pytest.fixture
def plugged(monkeypatch):
    """This process with the plugin on its path (not on $PYTHONPATH: as a module beside the
    working directory is), and registries that forget it afterwards."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    with PRUNERS.scratch(), MODELS.scratch(), DATASETS.scratch():
        yield monkeypatch
    sys.modules.pop("initprune_mine", None)


def test_run_trains_the_plugin_method_with_its_option_and_logs_it_to_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    done = cli(*RUN, "--my-option", "3", "--out", str(tmp_path / "r.json"), "--tracking-uri", uri)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["options"] == {"my_option": 3} and result["extra"] == {"steps": 3}
    assert result["sparsity_actual"] == pytest.approx(0.5, abs=0.02) and result["run_id"]
    from mlflow import MlflowClient

    run = MlflowClient(uri).get_run(result["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["kind"] == "point"
    assert run.data.params["option.my_option"] == "3" and run.data.params["method"] == "mine"
    assert run.data.params["training.lr"] == "0.05"  # the dataset's declared training settings
    assert run.data.metrics["test_accuracy"] == pytest.approx(result["test_accuracy"])


@pytest.mark.parametrize("value,says", [("0", "--my-option must be an integer of at least 1, got 0"),
                                        ("three", "--my-option must be an integer of at least 1, got 'three'")])
def test_a_bad_value_of_the_plugin_option_is_one_line_naming_its_flag(tmp_path, value, says):
    done = cli(*RUN, "--my-option", value, "--out", str(tmp_path / "r.json"), "--no-tracking")
    assert done.returncode == 2 and done.stderr == f"initprune: error: {says}\n"
    assert not (tmp_path / "r.json").exists()


def test_list_and_help_show_the_plugin_entries():
    out = cli("list").stdout
    assert "mine [baseline]: Keep the weights whose magnitude grew most" in out
    assert "my_option=3  training steps before the choice" in out
    assert "blobs: Three Gaussian blobs in the plane" in out and "tiny: One hidden layer of 16 units." in out
    assert "--my-option INT" in cli("run", "--help").stdout


@pytest.mark.parametrize("plugin,says", [
    ("initprune_broken", "plugin 'initprune_broken' (INITPRUNE_PLUGINS) failed to load: ImportError: this plugin "
                         "needs a package that is not installed"),
    ("initprune_clash", "method 'snip' is registered twice: by initprune.pruners and by initprune_clash"),
    ("no_such_plugin", "plugin 'no_such_plugin' (INITPRUNE_PLUGINS) failed to load: ModuleNotFoundError"),
])
def test_a_plugin_that_fails_is_one_line_naming_it(plugin, says):
    done = cli("list", plugins=plugin)
    assert done.returncode == 2 and says in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_entry_points_bring_the_plugin_to_fit_and_run(plugged, tmp_path):
    """Declared as a package's entry points (a dist-info on the path, as pip writes it)."""
    dist = tmp_path / "initprune_mine-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: initprune-mine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[initprune.pruners]\nmine = initprune_mine\n[initprune.models]\n"
                                           "tiny = initprune_mine\n[initprune.datasets]\nblobs = initprune_mine\n")
    plugged.syspath_prepend(str(tmp_path))
    plugged.delenv("INITPRUNE_PLUGINS", raising=False)
    registry.load_plugins(again=True)
    assert "mine" in PRUNERS.names() and "tiny" in MODELS.names() and "blobs" in DATASETS.names()

    blobs = initprune.data.load("blobs")
    model = initprune.models.build("tiny", blobs.input_shape, blobs.num_classes, seed=0)
    result = initprune.fit(model, blobs.train, blobs.test, method="mine", sparsity=0.5, epochs=1, device="cpu",
                           my_option=2)
    assert result.extra == {"steps": 2} and result.sparsity_actual == pytest.approx(0.5, abs=0.02)
    with pytest.raises(InitpruneError, match=r"^my_option must be an integer of at least 1, got 0$"):
        initprune.fit(model, blobs.train, blobs.test, method="mine", sparsity=0.5, epochs=1, my_option=0)
    inverted = api.run(api.RunSpec(method="mine", dataset="blobs", arch="tiny", sparsity=0.5, epochs=1,
                                     ablation="invert"), device="cpu")
    assert inverted.ablation == "invert" and 0 <= inverted.test_accuracy <= 1
    torch.testing.assert_close(torch.tensor(inverted.sparsity_actual), torch.tensor(0.5), atol=0.02, rtol=0)


def test_a_profile_runs_the_plugin_through_a_notebook_into_mlflow_and_the_figures(plugged, tmp_path):
    """Its option reaches the notebook from the profile, beside a built-in's (k), without any
    notebook naming either; the kernels find the plugin where this process did; its runs carry
    the option as a param; the figures and the claims tables take it in as a rival."""
    plugged.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    plugged.setenv("INITPRUNE_PLUGINS", "initprune_mine")
    registry.load_plugins(again=True)
    profile = tmp_path / "mine.yaml"
    profile.write_text("executions:\n  - {notebook: baselines, dataset: blobs, arch: tiny, method: [kstarts, mine], "
                       "k: 2, my_option: 2, sparsities: [0.5, 0.8], seeds: [0, 1], epochs: 2}\n")
    lines = []
    assert sweep.sweep(str(profile), echo=lines.append) == 0, lines
    table = results.runs_table()
    mine = table[table["method"] == "mine"]
    assert len(mine) == 4 and all(o == {"my_option": 2} for o in mine["options"])
    assert all(o["k"] == 2 for o in table[table["method"] == "kstarts"]["options"])
    from mlflow import MlflowClient

    runs = MlflowClient().search_experiments()[0]
    params = [r.data.params for r in MlflowClient().search_runs([runs.experiment_id], "tags.method = 'mine'")]
    assert len(params) == 4 and {p["option.my_option"] for p in params} == {"2"}

    fig = figures.accuracy_vs_sparsity(table)
    assert "mine" in [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    claims = claims_module.claims_markdown(table)
    assert "| blobs / tiny | uniform | kstarts vs mine |" in claims  # no tested sparsities declared: descriptive
    # a second sweep finds everything finished: nothing retrains
    lines.clear()
    assert sweep.sweep(str(profile), echo=lines.append) == 0
    assert "1 executions, 1 already finished, 0 to run" in " ".join(lines)


def _declare(name, field_text):
    """A pruner class declared from source, as a plugin module would."""
    space = {}
    exec("from dataclasses import dataclass, field\nfrom initprune.options import option\n"
         "from initprune.pruners import Pruner\n"
         f"@dataclass\nclass {name.title()}(Pruner):\n    '''A test method.'''\n    {field_text}\n", space)
    return space[name.title()]


@pytest.mark.parametrize("field_text,says", [
    ('seed: int = option(0, "a seed of its own")', "option(s) seed have the name of one of the run's own settings"),
    ('lr: float = option(0.1, "a rate")', "option(s) lr have the name of one of the run's own settings"),
    ("k: int = 3", "declare it with options.option(default, help, ...)"),
    ('k: int = option(0, "starts", check=lambda v: v >= 1)', "its default is refused by its own declaration"),
    ('k: int | str = option(3, "starts")', "an option is bool, int, float or str"),
    ('k: list = option(None, "starts")', "an option is bool, int, float or str"),
])
def test_a_declaration_the_rest_of_initprune_could_not_carry_is_refused_when_registered(field_text, says):
    with PRUNERS.scratch(), pytest.raises(InitpruneError, match=says.replace("(", r"\(").replace(")", r"\)")):
        PRUNERS.register("odd")(_declare("odd", field_text))
    assert "odd" not in PRUNERS.names()


def test_the_same_declaration_may_register_again_but_another_may_not_take_its_name():
    with PRUNERS.scratch():
        cls = _declare("twice", 'k: int = option(3, "starts")')
        PRUNERS.register("twice")(cls)
        PRUNERS.register("twice")(cls)  # a rerun notebook cell, a reloaded plugin
        with pytest.raises(InitpruneError, match="method 'snip' is registered twice"):
            PRUNERS.register("snip")(cls)
    assert "twice" not in PRUNERS.names()


def test_the_built_in_names_are_declared_as_the_command_line_reads_them():
    """registry.BUILT_IN: what `python -m initprune run` checks a name against before torch is
    imported; each registry's own entries, in order, and nothing of initprune's undeclared."""
    from initprune.tasks import TASKS

    for reg in (PRUNERS, DATASETS, MODELS, TASKS):
        own = [n for n, entry in reg._entries.items() if registry._origin(entry)[0].startswith("initprune.")]
        assert own == list(registry.BUILT_IN[reg.kind]), reg.kind
    cls = _declare("undeclared", 'k: int = option(3, "starts")')
    cls.__module__ = "initprune.pruners"  # one added to initprune and not to BUILT_IN
    with PRUNERS.scratch(), pytest.raises(InitpruneError, match=r"method 'undeclared' of initprune's own is not "
                                          r"declared in initprune.registry.BUILT_IN\['method'\]; add it there"):
        PRUNERS.register("undeclared")(cls)
