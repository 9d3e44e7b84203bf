"""One result record: ``fit`` and ``run`` return the same ``RunResult``; ``fit``'s mask is handed
to its caller and is never part of the record (the result JSON, the store)."""

import json

import torch
from torch import nn

import initprune
from initprune import api, masks
from initprune.models import initialize
from initprune.result import RunResult
from initprune.spec import RunSpec

from toys import toy_data


def test_fit_and_run_return_one_record_whose_json_never_holds_the_mask():
    model = initialize(nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 3)), torch.Generator().manual_seed(0))
    fitted = initprune.fit(model, train=toy_data(), test=toy_data(32, seed=1), method="random", sparsity=0.5,
                           epochs=1, seed=3)
    assert isinstance(fitted, RunResult)
    assert (fitted.method, fitted.seed, fitted.dataset, fitted.arch) == ("random", 3, None, None)
    assert set(fitted.mask) == set(masks.prunable(model))
    assert fitted.sparsity_actual == masks.sparsity(fitted.mask)
    record = fitted.to_dict()
    assert "mask" not in record and "mask" not in fitted
    assert RunResult.from_dict(json.loads(json.dumps(record))).to_dict() == record

    ran = api.run(RunSpec(method="random", sparsity=0.5, epochs=1, device="cpu"))
    assert type(ran) is RunResult and ran.mask is None and (ran.dataset, ran.arch) == ("digits", "mlp")
    assert set(ran.to_dict()) == set(record)
