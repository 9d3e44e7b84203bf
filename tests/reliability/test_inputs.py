"""Bad input everywhere, determinism, numerical faults and safe loading."""

import os
import pickle
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import initprune
from initprune import api, masks
from initprune.errors import InitpruneError
from initprune.lab import grid, store
from initprune.lab.points import Points

from toys import toy_data, toy_model


def fit(model=None, train=None, test=None, **kw):
    return initprune.fit(model if model is not None else toy_model(), train=train or toy_data(),
                         test=test or toy_data(32, seed=1), device="cpu", batch_size=16,
                         **{"method": "random", "sparsity": 0.5, "epochs": 1, **kw})


BAD_FIT = [
    (dict(model=nn.Sequential(nn.ReLU())), "has no nn.Linear/nn.Conv1d/nn.Conv2d layer"),
    (dict(train=(torch.randn(10, 8), torch.zeros(9, dtype=torch.long))), "X has 10 rows and y has 9"),
    (dict(train=(torch.randn(10, 8), torch.full((10,), 7))), "label 7 is out of range for a model with 3 outputs"),
    (dict(train=(torch.full((10, 8), float("nan")), torch.zeros(10, dtype=torch.long))), "NaN"),
    (dict(train=(torch.randn(10, 8), torch.rand(10))), "integer class labels"),
    (dict(train=(torch.randn(10, 5), torch.zeros(10, dtype=torch.long))), "does not accept inputs of shape"),
    (dict(train="digits"), "must be an (X, y) pair of tensors or a DataLoader"),
    (dict(sparsity=float("nan")), "sparsity must be in [0, 1)"),
    (dict(epochs=2.5), "epochs must be a positive integer"),
]


@pytest.mark.parametrize("kwargs,message", BAD_FIT, ids=[m for _, m in BAD_FIT])
def test_fit_refuses_bad_input_before_training(kwargs, message):
    model = kwargs.get("model", toy_model())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InitpruneError) as err:
        fit(**{**kwargs, "model": model})
    assert message in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing trained


BAD_GRID = [
    (dict(sparsities="0.5"), "sparsities must be a list of numbers"),
    (dict(sparsities=[0.5], seeds=["0"]), "seeds must be a list of integers"),
    (dict(sparsities=[0.5], epochs="3"), "epochs must be an integer"),
    (dict(sparsities=[]), "is empty"),
]


@pytest.mark.parametrize("kwargs,message", BAD_GRID, ids=[m for _, m in BAD_GRID])
def test_notebook_parameters_of_the_wrong_type_fail_before_anything_is_recorded(kwargs, message, tmp_path,
                                                                                monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(InitpruneError, match=message):
        grid.run_grid("random", **{"seeds": [0], "epochs": 1, **kwargs})
    c, exp_id = store.ensure_store(uri)
    assert not c.search_runs([exp_id], "")


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), sparsity=st.floats(0.05, 0.95))
def test_same_configuration_same_bits_another_seed_another_mask(seed, sparsity):
    a, b = fit(seed=seed, sparsity=sparsity), fit(seed=seed, sparsity=sparsity)
    assert all(torch.equal(a.mask[n], b.mask[n]) for n in a.mask)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert a.test_accuracy == b.test_accuracy
    c = fit(seed=seed + 1, sparsity=sparsity)
    assert any(not torch.equal(a.mask[n], c.mask[n]) for n in a.mask)


def test_config_hashes_are_pinned():
    """A change here orphans every recorded run: change it only on purpose, with a note."""
    # identity scheme 2 (issue 18): the whole resolved configuration; scheme 1 gave 44136fa355b3,
    # 914d27d2ae55 and d5298f6354cb (SNIP's version 2; d36468c9ad75 before issue 11). On cpu, what
    # device auto is on a machine without a GPU (on one with a GPU, auto is cuda: other identities)
    assert api.RunSpec(device="cpu").hash() == "44a9a88014ac"
    assert api.RunSpec(method="combined", sparsity=0.99, options={"k": 16}, device="cpu").hash() == "146f9cab6491"
    assert api.RunSpec(method="snip", ablation="shuffle", device="cpu").hash() == "b9ffd5bf622d"


def test_a_diverging_run_stops_and_is_failed_with_its_epoch(tmp_path, monkeypatch):
    with pytest.raises(initprune.DivergedError, match=r"loss is (nan|inf) in epoch 1"):
        fit(lr=1e12, momentum=0.9, epochs=3)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    c, exp_id = store.ensure_store(uri)
    diverging = api.RunSpec(sparsity=0.5, epochs=2, training={"lr": 1e12})
    with pytest.raises(initprune.DivergedError):
        grid.train(Points(c, exp_id), "", [diverging], [Points(c, exp_id).open_point(diverging, "")], None)
    (run,) = c.search_runs([exp_id], "tags.kind = 'point'")
    assert run.info.status == "FAILED" and "epoch 1" in run.data.tags["error"]


def test_loading_refuses_a_checkpoint_that_would_run_code(tmp_path):
    marker = tmp_path / "owned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"state_dict": Payload()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        api.load(evil)
    assert not marker.exists()
    good = tmp_path / "good.pt"
    model = toy_model()
    api.save(model, masks.dense(model), good)
    assert set(api.load(good)) == {"state_dict", "mask"}


def test_an_unwritable_store_fails_at_once(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    proc = subprocess.run([sys.executable, "-m", "initprune", "sweep", "--profile", "smoke"],
                          env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{blocker}/mlruns/mlflow.db"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cannot write the MLflow store" in proc.stderr and proc.stderr.count("\n") == 1


def test_the_ui_binds_to_this_machine_only_by_default():
    from initprune import cli

    args = cli.parser().parse_args(["ui"])
    assert args.host == "127.0.0.1"


def test_processes_opening_a_new_store_at_once_all_get_the_same_experiment(tmp_path):
    uri = f"sqlite:///{tmp_path}/new/mlflow.db"
    code = "from initprune.lab import store; print(store.ensure_store()[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1
