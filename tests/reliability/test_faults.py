"""Faults of issue 13: runs that cannot fit in memory, outputs that cannot be written, valid
PyTorch models and loaders that fit misread, and training settings that are not numbers."""


import pytest
import torch
from torch import nn

import initprune
from initprune import cli
from initprune.errors import InitpruneError
from initprune.train import Settings

from toys import toy_data, toy_model


def fit(model=None, train=None, test=None, **kw):
    return initprune.fit(model if model is not None else toy_model(), train=train or toy_data(),
                         test=test or toy_data(32, seed=1), device="cpu", batch_size=16,
                         **{"method": "random", "sparsity": 0.5, "epochs": 1, **kw})


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and "Traceback" not in text


def untouched(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    return lambda: all(torch.equal(before[k], v) for k, v in model.state_dict().items())


RUN = ["run", "--method", "random", "--epochs", "1", "--no-tracking"]


# ---- models and loaders fit must not misread -------------------------------------------------------

class Shared(nn.Module):
    """Two layers that use one weight Parameter (weight tying)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def test_a_weight_shared_by_two_layers_gets_one_mask_counted_once():
    torch.manual_seed(0)
    model, x = Shared(), torch.randn(96, 16)
    y = x[:, :3].argmax(1)
    result = initprune.fit(model, (x, y), (x, y), method="random", sparsity=0.5, epochs=1, device="cpu")
    assert list(result.mask) == ["a.weight", "c.weight"]
    assert result.layers["a.weight"] == {"numel": 256, "kept": 128}
    zeros = int((model.a.weight == 0).sum()) + int((model.c.weight == 0).sum())
    assert result.sparsity_actual == pytest.approx(zeros / (256 + 48))


# ---- training settings ----------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_SETTINGS = [
    (dict(lr=NAN), "--lr"), (dict(lr=INF), "--lr"), (dict(lr="0.1"), "--lr"),
    (dict(momentum=NAN), "--momentum"), (dict(momentum=INF), "--momentum"), (dict(momentum=-1), "--momentum"),
    (dict(weight_decay=NAN), "--weight-decay"), (dict(weight_decay=INF), "--weight-decay"),
    (dict(weight_decay=-1), "--weight-decay"), (dict(batch_size=2.5), "--batch-size"),
    (dict(batch_size=True), "--batch-size"), (dict(batch_size=0), "--batch-size"), (dict(lr=True), "--lr"),
]


@pytest.mark.parametrize("kwargs,flag", BAD_SETTINGS, ids=[str(k) for k, _ in BAD_SETTINGS])
def test_a_training_setting_that_is_not_a_finite_number_is_refused_naming_its_flag(kwargs, flag):
    with pytest.raises(InitpruneError) as err:
        Settings(**kwargs)
    assert str(err.value).startswith(flag + " must be") and "\n" not in str(err.value)
    model = toy_model()
    same = untouched(model)
    with pytest.raises(InitpruneError, match=flag):
        initprune.fit(model, toy_data(), toy_data(32, seed=1), method="random", sparsity=0.5, epochs=1,
                      device="cpu", **{"batch_size": 16, **kwargs})
    assert same()


@pytest.mark.parametrize("flag", ["--momentum", "--lr", "--weight-decay"])
def test_nan_on_the_command_line_is_refused_naming_its_flag(capsys, tmp_path, flag):
    out = tmp_path / "r.json"
    code = cli.main([*RUN, flag, "nan", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert one_line(err) and err.startswith(f"initprune: error: {flag} must be") and "lower --lr" not in err
    assert not out.exists()

