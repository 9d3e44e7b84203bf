"""Contracts that hold: results that are what they claim (buffers, computed weights, the mask a
method promised) and one line, never a traceback, for what a plugin, a dataset or a run got
wrong (issue: wrong results and tracebacks)."""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as torch_prune
from torch import nn

import initprune
from initprune import api, cli, data, masks, models, registry
from initprune.data import DATASETS, Data
from initprune.errors import InitpruneError
from initprune.lab import results
from initprune.models import MODELS
from initprune.options import option
from initprune.pruners import PRUNERS, Context, Pruner
from initprune.report import figures

from toys import toy_data, toy_model

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def fit(model=None, **kw):
    return initprune.fit(model if model is not None else toy_model(), train=toy_data(), test=toy_data(32, seed=1),
                         device="cpu", batch_size=16, **{"method": "random", "sparsity": 0.5, "epochs": 1, **kw})


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


# ---- 1. a plugin model's buffers ----------------------------------------------------------------


class Scaled(nn.Module):
    """A plugin's model with buffers its constructor fills: a constant and a random projection."""

    def __init__(self, inputs, classes):
        super().__init__()
        self.fc = nn.Linear(inputs, classes)
        self.register_buffer("scale", torch.full((1,), 1.0))
        self.register_buffer("projection", torch.randn(inputs))

    def forward(self, x):
        return self.fc(x.flatten(1) * self.projection) * self.scale


def test_a_plugin_models_buffers_hold_what_its_constructor_put_there():
    with MODELS.scratch():
        MODELS.register("scaled")(lambda shape, classes: Scaled(math.prod(shape), classes))
        rng = torch.get_rng_state()
        a, b = models.build("scaled", (8,), 3, seed=0), models.build("scaled", (8,), 3, seed=0)
        assert torch.equal(torch.get_rng_state(), rng)  # building never moves the global RNG
        c = models.build("scaled", (8,), 3, seed=1)
    assert a.scale.tolist() == [1.0]
    assert torch.equal(a.projection, b.projection) and torch.equal(a.fc.weight, b.fc.weight)  # the seed fixes all
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_built_in_models_are_still_drawn_from_the_seed_alone():
    a, b = models.build("resnet20", (3, 32, 32), 10, 3), models.build("resnet20", (3, 32, 32), 10, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a.bn.running_var.tolist() == [1.0] * 16


# ---- 2. layers that compute their weight; lazy and meta layers ---------------------------------


class Doubled(nn.Module):
    def forward(self, w):
        return 2 * w


COMPUTED = {
    "weight_norm": lambda layer: torch.nn.utils.weight_norm(layer),
    "parametrizations.weight_norm": lambda layer: torch.nn.utils.parametrizations.weight_norm(layer),
    "a parametrization": lambda layer: parametrize.register_parametrization(layer, "weight", Doubled()),
    "torch.nn.utils.prune": lambda layer: torch_prune.l1_unstructured(layer, "weight", 0.2),
}


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("how", COMPUTED)
def test_a_layer_that_computes_its_weight_is_refused_naming_it_before_training(how):
    model = toy_model()
    COMPUTED[how](model.fc1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InitpruneError) as err:
        fit(model)
    assert "layer 'fc1'" in one_line(err) and "computes its weight" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing trained


def meta_model():
    with torch.device("meta"):
        return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))


@pytest.mark.parametrize("make,says", [
    (lambda: nn.Sequential(nn.LazyLinear(6), nn.ReLU(), nn.Linear(6, 3)), "layer '0' (LazyLinear) is lazy"),
    (meta_model, "layer '0' (Linear) is on the meta device"),
], ids=["lazy", "meta"])
def test_a_lazy_or_meta_layer_is_one_line_naming_it(make, says):
    with pytest.raises(InitpruneError) as err:
        fit(make())
    assert says in one_line(err)


# ---- 3. a mask that misses the target -------------------------------------------------------------


def _kept_everything(ctx):  # the trainee starts dense: returning at once keeps every weight
    pass


def _emptied(ctx):
    ctx.trainee.set_mask({n: torch.zeros_like(w, dtype=torch.bool) for n, w in ctx.trainee.weights.items()})


def _halves(ctx):
    ctx.trainee.set_mask({n: torch.full_like(w, 0.5) for n, w in ctx.trainee.weights.items()})


def _flat(ctx):  # a shape set_mask cannot multiply by
    ctx.trainee.set_mask({n: torch.ones(w.numel(), dtype=torch.bool) for n, w in ctx.trainee.weights.items()})


def _row(ctx):  # a shape that broadcasts: no error, and a wrong mask
    ctx.trainee.set_mask({n: torch.ones(w.shape[-1], dtype=torch.bool) for n, w in ctx.trainee.weights.items()})


def _missing(ctx):
    chosen = masks.select(masks.random_scores(ctx.trainee.model, ctx.generator), 0.9)
    ctx.trainee.set_mask({n: m for n, m in chosen.items() if n != "fc2.weight"})


def _assigned(ctx):  # the mask assigned, never applied: the forward keeps every weight
    ctx.trainee.mask = masks.select(masks.random_scores(ctx.trainee.model, ctx.generator), 0.9)


BAD_MASKS = [
    (_kept_everything, "its mask has sparsity 0 where 0.9"),
    (_emptied, "its mask empties conv.weight"),
    (_halves, "its mask of conv.weight is float32, not bool"),
    (_flat, "its mask of conv.weight has shape (6,), the weight (2, 1, 3)"),
    (_row, "its mask of conv.weight has shape (3,), the weight (2, 1, 3)"),
    (_missing, "its mask has no entry for the prunable weight(s) fc2.weight"),
    (_assigned, "the weights its mask removes from conv.weight are not zero"),
]


def bad_pruner(choose):
    @dataclass
    class Bad(Pruner):
        def prune(self, ctx: Context) -> dict:
            choose(ctx)
            return {}

    return Bad


@pytest.mark.parametrize("choose,says", BAD_MASKS, ids=[c.__name__.strip("_") for c, _ in BAD_MASKS])
def test_a_mask_that_misses_the_contract_is_one_line_naming_the_method(choose, says):
    with PRUNERS.scratch():
        PRUNERS.register("bad")(bad_pruner(choose))
        with pytest.raises(InitpruneError) as err:
            fit(method="bad", sparsity=0.9)
    text = one_line(err)
    assert text.startswith(f"method 'bad' ({__name__})") and says in text, text


@pytest.mark.parametrize("method,options", [
    ("random", {"scope": "global"}), ("magnitude", {}), ("dissipating", {"prune_epochs": 1}),
    ("dissipating", {"prune_epochs": 1, "tau": 1e-6}),
], ids=["random-global", "magnitude", "dissipating", "dissipating-tau"])
def test_the_built_in_methods_keep_their_promise(method, options):
    result = fit(method=method, sparsity=0.9, **options)
    slack = len(result.mask) / masks.total(result.mask)
    if "tau" in options:  # the threshold decides: a tiny tau keeps more than the target allows removing
        assert result.sparsity_actual < 0.9 - slack
    else:
        assert abs(result.sparsity_actual - 0.9) <= slack


# ---- 4. plugins that fail: one line naming them ----------------------------------------------------


def test_a_plugin_that_exits_while_imported_fails_every_command_naming_it(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("INITPRUNE_PLUGINS", "initprune_exits")
    monkeypatch.setattr(registry, "_plugins_loaded", False)  # looked for anew; as it was afterwards
    with PRUNERS.scratch(), MODELS.scratch(), DATASETS.scratch():
        assert cli.main(["list"]) == 2
    said = capsys.readouterr().err
    assert "plugin 'initprune_exits' (INITPRUNE_PLUGINS) failed to load: SystemExit: 0" in said
    assert said.count("\n") == 1, said


@dataclass
class BadCheck(Pruner):
    level: int = option(1, "a level", check=lambda v: v == 1 or v.lower(), must="whatever")  # raises past 1

    def prune(self, ctx):
        return {}


def test_a_check_that_raises_on_the_default_is_one_line_when_registered():
    @dataclass
    class Raises(Pruner):
        level: int = option(1, "a level", check=lambda v: v.lower(), must="whatever")

    with PRUNERS.scratch(), pytest.raises(InitpruneError) as err:
        PRUNERS.register("raises")(Raises)
    assert f"method 'raises' ({__name__}): checking its options raised AttributeError" in one_line(err)


@dataclass
class BadMetrics(Pruner):
    def prune(self, ctx):
        ctx.trainee.set_mask(masks.select(masks.random_scores(ctx.trainee.model, ctx.generator), self.sparsity))
        return {"steps": 1}

    def metrics(self, extra):
        return [("bad.loss", extra["loss"], 0)]


@dataclass
class NoReport(Pruner):
    invertible: ClassVar[bool] = True

    def prune(self, ctx):
        ctx.trainee.set_mask(masks.select(masks.random_scores(ctx.trainee.model, ctx.generator), self.sparsity))


@pytest.mark.parametrize("cls,kw,says", [
    (BadCheck, {"level": 2}, "checking its options raised AttributeError"),
    (BadMetrics, {}, "its metrics(report) raised KeyError: 'loss'"),
    (NoReport, {"ablation": "shuffle"}, "prune returned NoneType, not a dict"),
], ids=["check", "metrics", "none-under-ablation"])
def test_a_pruner_whose_check_or_report_fails_is_one_line_naming_it(cls, kw, says):
    with PRUNERS.scratch():
        PRUNERS.register("plug")(cls)
        with pytest.raises(InitpruneError) as err:
            fit(method="plug", **kw)
    text = one_line(err)
    assert text.startswith(f"method 'plug' ({__name__})") and says in text, text


def blobs(val="same"):
    def load(root):
        if val == "raises":
            raise OSError("the server is down")
        x, y = toy_data(60)
        split = {"same": (x[:20], y[:20]), "none": None, "shape": (x[:20, :4], y[:20])}[val]
        return Data((x[20:], y[20:]), split, (x[:20], y[:20]))

    return load


@pytest.mark.parametrize("val,says", [
    ("raises", "dataset 'blobs' failed to load: OSError: the server is down"),
    ("none", "dataset 'blobs': its val split is NoneType, not an (X, y) pair"),
    ("shape", "dataset 'blobs': its val inputs have shape (4,) but its train inputs (8,)"),
])
def test_a_dataset_whose_loader_fails_or_whose_splits_disagree_is_one_line_naming_it(val, says):
    with DATASETS.scratch():
        data.dataset("blobs", classes=3, shape=(8,), training=initprune.train.Settings())(blobs(val))
        with pytest.raises(InitpruneError) as err:
            data.load("blobs")
    assert says in one_line(err)


# ---- 5. a plugin's colour ---------------------------------------------------------------------------


def test_a_colour_matplotlib_cannot_draw_is_refused_when_registered():
    @dataclass
    class Coloured(Pruner):
        color: ClassVar[str | None] = "not-a-colour"

    with PRUNERS.scratch(), pytest.raises(InitpruneError) as err:
        PRUNERS.register("coloured")(Coloured)
    assert "method 'coloured'" in one_line(err) and "'not-a-colour' is not a matplotlib colour" in str(err.value)
    with PRUNERS.scratch():  # a valid one registers
        Coloured.color = "#1f77b4"
        PRUNERS.register("coloured")(Coloured)


# ---- 6. numpy and torch numbers in a report ----------------------------------------------------------


@dataclass
class Numpy(Pruner):
    def prune(self, ctx):
        ctx.trainee.set_mask(masks.select(masks.random_scores(ctx.trainee.model, ctx.generator), self.sparsity))
        return {"f": np.float32(0.5), "i": np.int64(3), "t": torch.tensor(2.0), "a": np.arange(2),
                "nested": [{"n": np.float64(1.5)}]}

    def metrics(self, extra):
        return [("numpy.f", extra["f"], extra["i"])]


def test_numpy_and_torch_numbers_in_a_report_are_logged_and_written_as_python_numbers(tmp_path):
    logged = []
    with PRUNERS.scratch(), MODELS.scratch(), DATASETS.scratch():
        PRUNERS.register("numpy")(Numpy)
        MODELS.register("flat")(lambda shape, classes: nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)))
        data.dataset("blobs", classes=3, shape=(8,), training=initprune.train.Settings(batch_size=16))(blobs())
        report = api.run(api.RunSpec(method="numpy", dataset="blobs", arch="flat", sparsity=0.5, epochs=1),
                         device="cpu", out=tmp_path / "out.json",
                         record=lambda r: logged.append(json.dumps(r.to_dict())))
    expected = {"f": 0.5, "i": 3, "t": 2.0, "a": [0, 1], "nested": [{"n": 1.5}]}
    written = json.loads((tmp_path / "out.json").read_text())["extra"]
    assert written == expected and json.loads(logged[0])["extra"] == expected
    assert [type(report.extra[k]) for k in ("f", "i", "t")] == [float, int, float]


def test_every_built_in_colour_is_a_matplotlib_colour():
    """Registration checks a plugin's colour (the built-ins skip it, so that the core never loads
    matplotlib): the built-ins' are checked here instead."""
    from matplotlib.colors import is_color_like

    assert all(is_color_like(PRUNERS[m].color) for m in PRUNERS.names() if PRUNERS[m].color is not None)


# ---- 7. a NaN accuracy in the figures ------------------------------------------------------------------


def test_a_run_whose_accuracy_is_nan_is_left_out_of_the_figures_named_in_one_line(tmp_path, capsys, monkeypatch):
    from test_figures import KS, result

    monkeypatch.setattr(figures, "every", lambda: {"accuracy_vs_sparsity": figures.accuracy_vs_sparsity})  # one: fast

    rows = []
    for s in (0.9, 0.99):
        for seed in (0, 1):
            rows += [result("random", s, seed, 0.80), result("kstarts", s, seed, float("nan"), extra=KS)]
    written = figures.assemble(results.to_table(rows), tmp_path)
    warned = capsys.readouterr().out.strip().splitlines()
    assert len(warned) == 1 and "test accuracy is NaN" in warned[0] and "kstarts s=0.9 seed 0" in warned[0]
    assert all(p.exists() for p in written)
    assert "kstarts" not in (tmp_path / "accuracy_table.md").read_text()
