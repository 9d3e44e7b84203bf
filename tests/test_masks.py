import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import initprune
from initprune import masks
from initprune.errors import InitpruneError

from toys import linear_chain, toy_data, toy_model


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


# ---- erk ----------------------------------------------------------------------------------

def test_erk_caps_a_layer_at_dense_and_splits_the_rest_by_largest_remainder():
    """Linear 4->3, 3->20, 20->5: weights (3, 4), (20, 3), (5, 20); N = 12 + 60 + 100 = 172.
    Raw densities (sum of dims / product): 7/12, 23/60, 25/100, so kept counts go as the sums
    of dims 7 : 23 : 25. s = 0.3: target round(0.7 * 172) = round(120.4) = 120.
    Scale 120 / 55: layer 0 would keep 7 * 120/55 = 15.27 > 12 weights: kept dense (12).
    The other two share 108 by 23 : 25, scale 108/48 = 2.25: 51.75 and 56.25, both within their
    size. Floors 51 + 56 = 107, one weight left: the larger remainder (.75) is layer 1's.
    Counts 12, 52, 56 (sum 120)."""
    model = linear_chain(4, 3, 20, 5)
    shapes = {n: tuple(w.shape) for n, w in masks.prunable(model).items()}
    assert masks.erk_counts(shapes, 0.3) == {"0.weight": 12, "2.weight": 52, "4.weight": 56}
    scores = {n: torch.rand(w.shape, generator=torch.Generator().manual_seed(0)) for n, w in
              masks.prunable(model).items()}
    mask = masks.select(scores, 0.3, "erk")
    assert {n: int(m.sum()) for n, m in mask.items()} == {"0.weight": 12, "2.weight": 52, "4.weight": 56}
    for n, m in mask.items():  # within a layer: its top scores
        assert scores[n][m].min() >= scores[n][~m].max() if (~m).any() else m.all()


def test_erk_remainder_ties_go_to_the_earlier_layer_and_no_layer_drops_below_one():
    """Weights (3, 4), (4, 3), (2, 4): N = 32, sums of dims 7 : 7 : 6 (raw densities 7/12, 7/12,
    6/8). s = 0.5: target 16, scale 16/20 = 0.8: 5.6, 5.6, 4.8. Floors 5 + 5 + 4 = 14, two left:
    the largest remainder .8 (layer 2) first, then the tie at .6 goes to the earlier layer 0:
    6, 5, 5. s = 0.9: target round(3.2) = 3, scale 3/20: 1.05, 1.05, 0.9; layer 2 is lifted to 1
    weight, the other two share 2 by 7 : 7: 1 and 1."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    shapes = {n: tuple(w.shape) for n, w in masks.prunable(model).items()}
    assert masks.erk_counts(shapes, 0.5) == {"0.weight": 6, "1.weight": 5, "2.weight": 5}
    assert masks.erk_counts(shapes, 0.9) == {"0.weight": 1, "1.weight": 1, "2.weight": 1}
    assert masks.erk_counts(shapes, 0.0) == {"0.weight": 12, "1.weight": 12, "2.weight": 8}


def test_erk_of_a_conv_uses_all_four_dims():
    """Conv2d 2->4 3x3: (4, 2, 3, 3), 72 weights, sum of dims 12; Linear (10, 16): 160 weights,
    sum 26. N = 232, s = 0.75: target 58, scale 58/38: 18.32 and 39.68: floors 18 + 39 = 57,
    the larger remainder (.68) is the Linear's: 18 and 40."""
    shapes = {"conv.weight": (4, 2, 3, 3), "fc.weight": (10, 16)}
    assert masks.erk_counts(shapes, 0.75) == {"conv.weight": 18, "fc.weight": 40}


def test_erk_within_a_mask_gives_a_layer_no_more_than_it_holds():
    """(3, 4), (4, 3), (2, 4) at s = 0.5 want 6, 5, 5 (above); if layer 0 holds only 4, it keeps
    those 4 and the other two share 12 by 7 : 6: 6.46 and 5.54, floors 6 + 5 = 11, the last to
    the larger remainder (.54): 6 and 6."""
    shapes = {"a": (3, 4), "b": (4, 3), "c": (2, 4)}
    assert masks.erk_counts(shapes, 0.5, {"a": 4, "b": 12, "c": 8}) == {"a": 4, "b": 6, "c": 6}
    within = {n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()}
    within["a"].view(-1)[4:] = False
    mask = masks.select({n: torch.rand(s) for n, s in shapes.items()}, 0.5, "erk", within=within)
    assert {n: int(m.sum()) for n, m in mask.items()} == {"a": 4, "b": 6, "c": 6}
    assert not (mask["a"] & ~within["a"]).any()


def test_unknown_scope_names_every_choice():
    with pytest.raises(InitpruneError, match="^unknown scope 'local'; choose one of: layerwise, global, erk$"):
        masks.select(arange_scores(4), 0.5, "local")
