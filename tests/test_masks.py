import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import initprune
from initprune import masks
from initprune.errors import InitpruneError

from toys import toy_data, toy_model


def arange_scores(*sizes):
    """Scores 0, 1, 2, ... per layer: the expected mask is exact."""
    return {f"l{i}": torch.arange(n, dtype=torch.float32) for i, n in enumerate(sizes)}


def test_layerwise_keeps_the_highest_scores_exactly():
    mask = masks.select(arange_scores(10, 4), 0.5, "layerwise")
    assert mask["l0"].tolist() == [False] * 5 + [True] * 5
    assert mask["l1"].tolist() == [False, False, True, True]


def test_global_ranks_all_layers_together_and_never_empties_one():
    scores = {"big": torch.arange(100.0) + 10, "small": torch.zeros(3)}
    mask = masks.select(scores, 0.9, "global")
    assert masks.kept(mask) == 10
    assert int(mask["small"].sum()) == 1  # every other weight of it scores lower than all of 'big'
    assert mask["big"][-9:].all() and not mask["big"][:-9].any()


def test_ties_are_broken_by_index_not_by_threshold():
    mask = masks.select({"w": torch.ones(10)}, 0.7, "layerwise")
    assert mask["w"].tolist() == [True] * 3 + [False] * 7


def test_within_never_revives_a_removed_weight():
    within = {"w": torch.tensor([True, False, True, True])}
    mask = masks.select({"w": torch.tensor([0.0, 9.0, 1.0, 2.0])}, 0.5, "layerwise", within=within)
    assert mask["w"].tolist() == [False, False, True, True]


def test_unknown_scope_is_rejected():
    with pytest.raises(InitpruneError, match="unknown scope 'local'"):
        masks.select(arange_scores(4), 0.5, "local")


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 300), min_size=1, max_size=4),
       sparsity=st.floats(0, 0.999), scope=st.sampled_from(masks.SCOPES), seed=st.integers(0, 2**31))
def test_selection_hits_the_target_up_to_rounding(sizes, sparsity, scope, seed):
    g = torch.Generator().manual_seed(seed)
    scores = {f"l{i}": torch.rand(n, generator=g) for i, n in enumerate(sizes)}
    mask = masks.select(scores, sparsity, scope)
    assert all(m.dtype == torch.bool and m.any() for m in mask.values())  # no empty layer
    if scope == "layerwise":
        for n, m in zip(sizes, mask.values()):
            assert int(m.sum()) == max(1, math.floor((1 - sparsity) * n + 0.5))
    else:
        assert masks.kept(mask) == max(len(sizes), math.floor((1 - sparsity) * sum(sizes) + 0.5))


def test_prunable_weights_are_linear_and_conv_weights_only(toy):
    assert list(masks.prunable(toy)) == ["conv.weight", "fc1.weight", "fc2.weight"]


def test_a_model_without_prunable_layers_is_a_clear_error():
    with pytest.raises(InitpruneError, match="no nn.Linear"):
        masks.prunable(torch.nn.Sequential(torch.nn.ReLU()))


@settings(max_examples=12, deadline=None)
@given(optimizer=st.sampled_from(["sgd", "adam", "adamw"]), sparsity=st.floats(0.05, 0.95),
       hidden=st.integers(2, 12), method=st.sampled_from(["random", "dissipating"]),
       seed=st.integers(0, 1000))
def test_pruned_weights_stay_exactly_zero(optimizer, sparsity, hidden, method, seed):
    """Momentum, weight decay and Adam's moments must not revive a pruned weight, also when
    the mask shrinks mid-training (dissipating) with optimizer state already built up."""
    model = toy_model(seed, hidden=hidden)
    options = {"prune_epochs": 2} if method == "dissipating" else {}
    result = initprune.fit(model, train=toy_data(seed=seed), test=toy_data(32, seed=seed + 1),
                           method=method, sparsity=sparsity, epochs=3, seed=seed, device="cpu",
                           optimizer=optimizer, lr=0.05, weight_decay=0.01, batch_size=16, **options)
    weights = masks.prunable(model)
    for name, mask in result.mask.items():
        assert (weights[name][~mask] == 0).all()
        assert weights[name][mask].abs().sum() > 0


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.sampled_from([-math.inf, 0.0, 0.5, 1.0, 2.0]), min_size=1, max_size=40),
       count=st.integers(0, 45))
def test_top_k_equals_a_stable_argsort_even_with_ties(values, count):
    scores = torch.tensor(values)
    expected = torch.zeros(len(values), dtype=torch.bool)
    expected[torch.argsort(scores, descending=True, stable=True)[:count]] = True
    assert torch.equal(masks._top(scores, count), expected)


def test_a_prunable_layer_the_forward_never_uses_does_not_break_training():
    class Spare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = torch.nn.Linear(8, 3), torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.used(x)

    result = initprune.fit(Spare(), train=toy_data(), test=toy_data(16, seed=1), method="random", sparsity=0.5,
                           epochs=1, device="cpu", batch_size=16)
    assert result.layers["unused.weight"]["kept"] == 12
