"""Effective sparsity on small chains whose paths are counted by hand."""

import pytest
import torch
from torch import nn

import initprune
from initprune import masks, paths

from toys import linear_chain, toy_data, toy_model


def b(rows):
    return torch.tensor(rows, dtype=torch.bool)


def apply(model, mask):
    with torch.no_grad():
        for n, w in masks.prunable(model).items():
            w.mul_(mask[n])


def test_a_hidden_unit_without_inputs_cuts_off_its_outgoing_weights_and_a_class():
    """Linear 3->3, ReLU, Linear 3->2 (with biases), 15 weights, 6 kept (nominal 0.6).
    Hidden unit 1 keeps no input: its outgoing weights (to both classes) carry no signal, and
    class 1, fed only by unit 1, is reached by no path. Hidden unit 2 has an input but no kept
    weight onward: its incoming weight is cut off too. What is left on a path: unit 0's two
    inputs and unit 0 -> class 0: 3 of 15, effective sparsity 1 - 3/15 = 0.8."""
    model = linear_chain(3, 3, 2)
    mask = {"0.weight": b([[1, 1, 0], [0, 0, 0], [1, 0, 0]]), "2.weight": b([[1, 1, 0], [0, 1, 0]])}
    found = paths.effective(model, mask)
    assert masks.sparsity(mask) == pytest.approx(0.6)
    assert found == paths.Effective(pytest.approx(0.8), 1, True)
    # the bias of unit 1 still feeds class 1, but nothing of the input does: its logit is constant
    with torch.no_grad():  # positive weights and inputs: unit 0 is active, its class varies with x
        for w in model.parameters():
            w.copy_(torch.linspace(0.5, 1.5, w.numel()).view_as(w))
    apply(model, mask)
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(0)) + 0.1
    logits = model(x)
    assert torch.allclose(logits[:, 1], logits[0, 1].expand(5))
    assert not torch.allclose(logits[:, 0], logits[0, 0].expand(5))


def test_a_conv_then_linear_chain_counts_channels_and_their_flattened_blocks():
    """Conv1d 2->2 channels, kernel 2 (8 weights), on length 3: length 2 out, flattened to 4
    features (channel 0: features 0-1, channel 1: 2-3), then Linear 4->2 (8 weights).
    Conv: channel 0 keeps two kernel entries, channel 1 none: channel 1 is cut off, and with it
    features 2 and 3. Linear: class 0 keeps features 0, 2, 3; class 1 only feature 2: class 1 is
    dead. On a path: the 2 conv entries of channel 0 (feature 0 reaches class 0) and the weight
    feature 0 -> class 0: 3 of 16, effective 0.8125 (nominal: 6 kept, 0.625)."""
    model = nn.Sequential(nn.Conv1d(2, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    mask = {"0.weight": b([[[1, 0], [0, 1]], [[0, 0], [0, 0]]]), "3.weight": b([[1, 0, 1, 1], [0, 0, 1, 0]])}
    assert masks.sparsity(mask) == pytest.approx(0.625)
    assert paths.effective(model, mask) == paths.Effective(pytest.approx(0.8125), 1, True)
    apply(model, mask)
    logits = model(torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(logits[:, 1], logits[0, 1].expand(4))


def test_a_channel_that_reaches_no_logit_cuts_off_its_kernel():
    """The same conv+linear, every conv entry kept (8), but no Linear weight reads channel 1's
    features 2-3: channel 1's 4 kernel entries are cut off. On a path: 4 conv entries and the
    Linear's 4 weights on features 0-1: 8 of 16 (nominal: 12 of 16 kept). Both classes reached."""
    model = nn.Sequential(nn.Conv1d(2, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    mask = {"0.weight": torch.ones(2, 2, 2, dtype=torch.bool), "3.weight": b([[1, 1, 0, 0], [1, 1, 0, 0]])}
    assert paths.effective(model, mask) == paths.Effective(pytest.approx(0.5), 0, True)


def test_a_dense_chain_has_its_nominal_sparsity_and_no_dead_class():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 4))
    assert paths.effective(model, masks.dense(model)) == paths.Effective(0.0, 0, True)


def test_a_model_that_is_not_a_chain_falls_back_to_the_nominal_sparsity():
    """Toy has its own forward (functional relu and flatten): not read as a chain."""
    model = toy_model()
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.9)
    assert paths.chain(model) is None
    assert paths.effective(model, mask) == paths.Effective(masks.sparsity(mask), 0, False)
    residual = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))  # layer norm mixes units
    assert paths.effective(residual, masks.dense(residual)).exact is False


def test_fit_reports_effective_sparsity_and_dead_classes():
    model = linear_chain(8, 6, 3)
    result = initprune.fit(model, train=toy_data(), test=toy_data(32, seed=1), method="random", sparsity=0.9,
                           epochs=1, seed=0, device="cpu", batch_size=16)
    expected = paths.effective(model, result.mask)
    assert expected.exact
    assert (result.effective_sparsity, result.dead_classes) == (expected.sparsity, expected.dead_classes)
    assert result.effective_sparsity >= result.sparsity_actual
