"""Effective sparsity on small chains whose paths are counted by hand, and on random conv chains
against what their masked models do on inputs."""

import copy

import pytest
import torch
from torch import nn

import initprune
from initprune import connectivity, masks, models, seeds
from initprune.errors import InitpruneError

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
    found = connectivity.effective(model, mask)
    assert masks.sparsity(mask) == pytest.approx(0.6)
    assert found == connectivity.Effective(pytest.approx(0.8), 1, True)
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
    assert connectivity.effective(model, mask, (2, 3)) == connectivity.Effective(pytest.approx(0.8125), 1, True)
    apply(model, mask)
    logits = model(torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(logits[:, 1], logits[0, 1].expand(4))


def test_a_channel_that_reaches_no_logit_cuts_off_its_kernel():
    """The same conv+linear, every conv entry kept (8), but no Linear weight reads channel 1's
    features 2-3: channel 1's 4 kernel entries are cut off. On a path: 4 conv entries and the
    Linear's 4 weights on features 0-1: 8 of 16 (nominal: 12 of 16 kept). Both classes reached."""
    model = nn.Sequential(nn.Conv1d(2, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    mask = {"0.weight": torch.ones(2, 2, 2, dtype=torch.bool), "3.weight": b([[1, 1, 0, 0], [1, 1, 0, 0]])}
    assert connectivity.effective(model, mask, (2, 3)) == connectivity.Effective(pytest.approx(0.5), 0, True)


def test_a_dense_chain_has_its_nominal_sparsity_and_no_dead_class():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 4))
    assert connectivity.effective(model, masks.dense(model), (1, 6, 6)) == connectivity.Effective(0.0, 0, True)


def test_a_model_that_is_not_a_chain_falls_back_to_the_nominal_sparsity():
    """Toy has its own forward (functional relu and flatten): not read as a chain."""
    model = toy_model()
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.9)
    assert connectivity.chain(model) is None
    assert connectivity.effective(model, mask) == connectivity.Effective(masks.sparsity(mask), 0, False)
    residual = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))  # layer norm mixes units
    assert connectivity.effective(residual, masks.dense(residual)).exact is False

    class Skip(nn.Sequential):  # a Sequential with its own forward: not its modules' order
        def forward(self, x):
            return self[1](self[0](x) + x)

    reflected = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1, padding_mode="reflect"), nn.Flatten(), nn.Linear(8, 2))
    dilated = nn.Sequential(nn.Conv1d(1, 2, 3), nn.MaxPool1d(2, dilation=2), nn.Flatten(), nn.Linear(4, 2))
    for model, shape in ((Skip(nn.Linear(4, 4), nn.Linear(4, 2)), (4,)), (reflected, (1, 4)), (dilated, (1, 6))):
        assert connectivity.effective(model, masks.dense(model), shape) == connectivity.Effective(0.0, 0, False)


def on_inputs(model, mask, input_shape, inputs=32, seed=0):
    """Dead logits and effective sparsity as the masked model shows them on inputs: its kept
    weights made positive, no biases, positive inputs. Every ReLU then passes its input and every
    unit is a sum of positive terms, one per path from the input (a unit fed only by padding is
    0): a logit no path reaches is 0 for every input, and a kept weight on no input-to-logits path
    has a zero gradient for every input, the others a positive one."""
    net = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    weights = masks.prunable(net)
    with torch.no_grad():
        for n, w in weights.items():
            w.copy_((torch.rand(w.shape, generator=g) + 0.5) * mask[n])
        for m in net.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    logits = net(torch.rand(inputs, *input_shape, generator=g) + 0.5)
    grads = torch.autograd.grad(logits.sum(), list(weights.values()))
    alive = sum(int(((d != 0) & mask[n]).sum()) for n, d in zip(weights, grads))
    return connectivity.Effective(1.0 - alive / masks.total(mask), int((logits == 0).all(0).sum()), True)


STRIDED = {  # conv chains where stride and padding leave positions fed only by padding
    "conv1d": (lambda: nn.Sequential(nn.Conv1d(2, 4, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv1d(4, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 5)), (2, 9)),
    "conv2d": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                     nn.Linear(16, 5)), (1, 7, 7)),
    "dilated+pool": (lambda: nn.Sequential(nn.Conv1d(1, 3, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
                                           nn.AvgPool1d(2, ceil_mode=True),  # 7 -> 4, the last window of 1
                                           nn.Conv1d(3, 3, 3, stride=2, padding=1), nn.Flatten(),
                                           nn.Linear(6, 4)), (1, 13)),
}


@pytest.mark.parametrize("arch", STRIDED)
def test_random_sparse_conv_chains_match_what_their_masked_models_do_on_inputs(arch):
    """30 random masks at 70-90% sparsity per chain: dead logits and live weights as counted
    from the inputs; among them, chains with some but not all classes dead."""
    build, shape = STRIDED[arch]
    model = build()
    g = torch.Generator().manual_seed(0)
    partly_dead = 0
    for i in range(30):
        keep = (0.1, 0.2, 0.3)[i % 3]
        mask = {n: torch.rand(w.shape, generator=g) < keep for n, w in masks.prunable(model).items()}
        found = connectivity.effective(model, mask, shape)
        truth = on_inputs(model, mask, shape, seed=i)
        assert found == connectivity.Effective(pytest.approx(truth.sparsity, abs=1e-12), truth.dead_classes, True), i
        partly_dead += 0 < found.dead_classes < model[-1].out_features
    assert partly_dead >= 3


def test_max_pooling_joins_each_output_position_to_its_whole_window():
    """Max pooling (padded, in ceil mode, adaptive) joins an output position to every position of
    its window, as average pooling over the same windows does: the same counts as the chain with
    average pools (measured on inputs), and the logits it finds dead are 0 on positive inputs."""
    def build(pool, adaptive):
        return nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.ReLU(),
                             pool(3, stride=2, padding=1, ceil_mode=True),  # 5x5 -> 3x3
                             nn.Conv2d(3, 4, 3, stride=2, padding=1), adaptive((2, 1)), nn.Flatten(), nn.Linear(8, 5))

    maxed, averaged = build(nn.MaxPool2d, nn.AdaptiveMaxPool2d), build(nn.AvgPool2d, nn.AdaptiveAvgPool2d)
    g = torch.Generator().manual_seed(1)
    dead = 0
    for i in range(12):
        mask = {n: torch.rand(w.shape, generator=g) < 0.2 for n, w in masks.prunable(maxed).items()}
        found = connectivity.effective(maxed, mask, (1, 9, 9))
        assert found == on_inputs(averaged, mask, (1, 9, 9), seed=i), i
        assert found.dead_classes == on_inputs(maxed, mask, (1, 9, 9), seed=i).dead_classes, i
        dead += found.dead_classes
    assert dead > 0


def test_cnn1d_magnitude_at_099_seed_3_finds_the_nine_constant_logits():
    """The tester's run: cnn1d (three Conv1d of kernel 3, stride 2, padding 1: length 40 -> 5) on
    MNIST-1D's (1, 40), magnitude layerwise at 0.99, seed 3 (the mask depends on the seed alone).
    Kept: 1 + 31 + 31 + 16 of 7,840. On a path: 4 weights (0.999490), one class reached; the other
    9 logits are constant over inputs (the channel-level count said 8 and 0.999235). Random erk
    at 0.9: 0.900383 (it said 0.9)."""
    model = models.build("cnn1d", (1, 40), 10, 3)
    mask = masks.select({n: w.detach().abs() for n, w in masks.prunable(model).items()}, 0.99, "layerwise")
    assert [int(m.sum()) for m in mask.values()] == [1, 31, 31, 16]
    found = connectivity.effective(model, mask, (1, 40))
    assert found == connectivity.Effective(pytest.approx(1 - 4 / 7840), 9, True)
    assert found == on_inputs(model, mask, (1, 40))
    apply(model, mask)  # its own weights and biases: the dead logits do not move over 4,096 inputs
    with torch.no_grad():
        logits = model(torch.randn(4096, 1, 40, generator=torch.Generator().manual_seed(0)))
    constant = (logits == logits[0]).all(0)
    assert int(constant.sum()) == 9
    # the tester's other run: random erk at 0.9, seed 3 (its mask stream): 781 of the 784 kept on a path
    erk = masks.select(masks.random_scores(model, seeds.generator(3, "masks")), 0.9, "erk")
    assert masks.kept(erk) == 784
    assert connectivity.effective(model, erk, (1, 40)) == connectivity.Effective(pytest.approx(1 - 781 / 7840), 0, True)


def test_two_strided_conv2d_find_the_class_fed_only_by_padding():
    """Conv2d 1->2 and 2->2, kernel 3, stride 2, padding 1, on 4x4 (-> 2x2 -> 1x1), Flatten,
    Linear 2->3: 18 + 36 + 6 = 60 weights, 7 kept.
    Conv 1: channel 0 keeps only its top-left entry, which reads input (2i-1, 2j-1): real only at
    output (1, 1); channel 1 only its centre, real everywhere.
    Conv 2 (output (0, 0) reads (a-1, b-1) through entry (a, b)): channel 0 keeps channel 0's
    centre, at (0, 0), unfed: channel 0 is cut off. Channel 1 keeps channel 0's bottom-right, at
    (1, 1), fed; and channel 1's top-left, at (-1, -1), padding: that entry carries nothing, and
    channel 1 of conv 1 reaches no logit.
    Linear: class 0 reads feature 1 (alive), class 1 feature 0 (cut off), class 2 nothing.
    On a path: conv 1's top-left, conv 2's bottom-right, class 0's weight: 3 of 60 (0.95), 2 dead
    classes (counted by channels: all 7 kept weights on a path, 1 dead class)."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 3, stride=2, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(2, 3))
    conv1, conv2 = torch.zeros(2, 1, 3, 3, dtype=torch.bool), torch.zeros(2, 2, 3, 3, dtype=torch.bool)
    conv1[0, 0, 0, 0] = conv1[1, 0, 1, 1] = True
    conv2[0, 0, 1, 1] = conv2[1, 0, 2, 2] = conv2[1, 1, 0, 0] = True
    mask = {"0.weight": conv1, "2.weight": conv2, "5.weight": b([[0, 1], [1, 0], [0, 0]])}
    assert masks.sparsity(mask) == pytest.approx(1 - 7 / 60)
    found = connectivity.effective(model, mask, (1, 4, 4))
    assert found == connectivity.Effective(pytest.approx(0.95), 2, True)
    assert found == on_inputs(model, mask, (1, 4, 4))
    with torch.inference_mode():  # a caller's mode and its tensors change nothing
        assert connectivity.effective(model, {n: m.clone() for n, m in mask.items()}, (1, 4, 4)) == found
    apply(models.initialize(model, torch.Generator().manual_seed(0)), mask)  # signed weights, biases
    with torch.no_grad():
        logits = model(torch.randn(256, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    assert (logits[:, 1:] == logits[0, 1:]).all()


def test_a_conv_chain_needs_the_input_shape_and_a_wrong_one_is_said_in_one_line():
    """The positions a conv feeds depend on the input's length: without it, the nominal sparsity,
    flagged not exact; a shape the layers do not take is the caller's error."""
    model = nn.Sequential(nn.Conv1d(2, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    mask = masks.dense(model)
    assert connectivity.effective(model, mask) == connectivity.Effective(0.0, 0, False)
    with pytest.raises(InitpruneError, match=r"do not take inputs of shape \(2, 5\).*one input") as err:
        connectivity.effective(model, mask, (2, 5))
    assert "\n" not in str(err.value)


def test_fit_reports_effective_sparsity_and_dead_classes():
    model = linear_chain(8, 6, 3)
    result = initprune.fit(model, train=toy_data(), test=toy_data(32, seed=1), method="random", sparsity=0.9,
                           epochs=1, seed=0, device="cpu", batch_size=16)
    expected = connectivity.effective(model, result.mask)
    assert expected.exact
    assert (result.effective_sparsity, result.dead_classes) == (expected.sparsity, expected.dead_classes)
    assert result.effective_sparsity >= result.sparsity_actual


def test_fit_counts_a_conv_models_positions_from_its_inputs_shape():
    """fit passes the shape of its inputs: a strided Conv1d chain's effective sparsity is the
    per-position count, not the nominal sparsity of a model it could not analyse."""
    model = models.initialize(STRIDED["conv1d"][0](), torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 9, generator=g)
    y = torch.randint(0, 5, (64,), generator=g)
    result = initprune.fit(model, train=(x, y), test=(x[:16], y[:16]), method="random", sparsity=0.7, epochs=1,
                           seed=0, device="cpu", batch_size=16)
    expected = connectivity.effective(model, result.mask, (2, 9))
    assert expected.exact and expected.sparsity > result.sparsity_actual
    assert (result.effective_sparsity, result.dead_classes) == (expected.sparsity, expected.dead_classes)
