"""The established baselines and the sanity checks (Frankle et al. 2020)."""

import copy
import itertools

import pytest
import torch
from torch import nn

import initprune
from initprune import api, masks, models, pruners, seeds
from initprune.data import Batches
from initprune.errors import InitpruneError
from initprune.train import Settings, Trainee, Trainer

from toys import toy_data, toy_model

SCORE_BASED = [m for m in pruners.PRUNERS.names() if issubclass(pruners.PRUNERS[m], pruners.ScorePruner)]
FAST = {"snip": {"batches": 2}, "grasp": {"batches": 2}, "synflow": {"rounds": 5}, "kstarts": {"k": 2},
        "dissipating": {"prune_epochs": 1}}


def fit(method, sparsity=0.5, seed=0, epochs=2, model=None, **options):
    model = model if model is not None else toy_model(seed)
    return initprune.fit(model, train=toy_data(), test=toy_data(48, seed=1), method=method, sparsity=sparsity,
                         epochs=epochs, seed=seed, device="cpu", batch_size=16,
                         **{**FAST.get(method, {}), **options})


def context(model):
    x, y = toy_data(32, inputs=64, classes=10)
    x = x.view(-1, 1, 8, 8)
    batches = Batches(x, y, 8)
    trainer = Trainer(batches, None, (x, y), Settings(), "cpu", 1)
    return pruners.Context(trainer, Trainee(model, Settings(), masks.dense(model)), seeds.generator(0, "masks"))


def bn_model():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 64, 10))
    return models.initialize(model, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", SCORE_BASED)
def test_scoring_leaves_the_model_as_it_was(method):
    model = bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = context(model)
    pruner = pruners.make(method, 0.5, scope="layerwise", **FAST.get(method, {}))
    pruner.prune(ctx)
    mask = ctx.trainee.mask
    for name, value in model.state_dict().items():
        expected = before[name] * mask[name] if name in mask else before[name]  # BN stats untouched too
        assert torch.equal(value, expected), name


def test_magnitude_keeps_the_largest_initial_weights():
    model = toy_model()
    w = masks.prunable(model)["fc1.weight"].detach().abs().clone()
    result = fit("magnitude", 0.75, model=toy_model())
    kept = result.mask["fc1.weight"]
    assert w[kept].min() >= w[~kept].max()


def test_snip_score_is_weight_times_gradient():
    model = bn_model()
    ctx = context(model)
    scores = pruners.Snip(0.5, batches=1).scores(ctx)
    x, y = next(ctx.trainer.train_batches.epoch(0))
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(masks.prunable(model).values()))
    for (name, w), g in zip(masks.prunable(model).items(), grads):
        assert torch.allclose(scores[name], (w * g).abs(), atol=1e-7)


def test_snip_sums_the_gradients_over_batches_then_takes_the_absolute_value():
    """The score of Lee et al. 2019 over several batches is |θ ⊙ Σ_b g_b|, not Σ_b |θ ⊙ g_b|:
    on this model the two estimators keep different weights, and the first one must win."""
    model = bn_model()
    ctx = context(model)
    snip = pruners.Snip(0.5, batches=3, scope="layerwise")
    scores = snip.scores(ctx)
    scratch = copy.deepcopy(model).train()
    weights = masks.prunable(scratch)
    total = {n: torch.zeros_like(w) for n, w in weights.items()}
    per_batch = {n: torch.zeros_like(w) for n, w in weights.items()}
    for x, y in itertools.islice(ctx.trainer.train_batches.epoch(0), 3):
        grads = torch.autograd.grad(nn.functional.cross_entropy(scratch(x), y), list(weights.values()))
        for (n, w), g in zip(weights.items(), grads):
            total[n] += g
            per_batch[n] += (w.detach() * g).abs()
    defined = {n: (w.detach() * total[n]).abs() for n, w in weights.items()}
    for n in scores:
        assert torch.allclose(scores[n], defined[n], atol=1e-7), n
    kept, other = masks.select(defined, 0.5), masks.select(per_batch, 0.5)
    assert any(not torch.equal(kept[n], other[n]) for n in kept)  # the estimators differ here
    snip.prune(ctx)
    assert all(torch.equal(ctx.trainee.mask[n], kept[n]) for n in kept)


@pytest.mark.parametrize("method", ["snip", "grasp", "synflow"])
def test_the_mask_does_not_depend_on_the_mode_the_model_was_handed_over_in(method):
    """SNIP and GraSP score with batch statistics (train mode), SynFlow in eval mode, whatever
    mode the caller left; the caller's mode is left as it was."""
    found = {}
    for training in (True, False):
        model = bn_model().train(training)
        ctx = context(model)
        pruners.make(method, 0.5, **FAST.get(method, {})).prune(ctx)
        assert model.training == training
        found[training] = ctx.trainee.mask
    assert all(torch.equal(found[True][n], found[False][n]) for n in found[True])


@pytest.mark.parametrize("method", SCORE_BASED)
def test_a_frozen_layer_is_scored_and_stays_frozen(method):
    model = toy_model()
    model.fc1.weight.requires_grad_(False)
    result = fit(method, 0.5, model=model)
    assert result.layers["fc1.weight"]["kept"] < result.layers["fc1.weight"]["numel"]
    assert not model.fc1.weight.requires_grad


def test_snip_has_a_new_identity_since_its_estimator_changed():
    assert pruners.Snip.version == 2 and pruners.Grasp.version == 1
    assert api.RunSpec(method="snip").identity()["version"] == 2
    assert api.RunSpec(method="grasp").identity()["version"] == 1


def test_grasp_uses_the_hessian_gradient_product():
    """On a bias-free linear model, Hg has a closed form we can check against double backward."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, bias=False))
    models.initialize(model, torch.Generator().manual_seed(0))
    ctx = context(model)
    scores = pruners.Grasp(0.5, batches=1, temperature=1.0).scores(ctx)
    x, y = next(ctx.trainer.train_batches.epoch(0))
    w = model[1].weight.detach().clone().requires_grad_(True)
    loss = lambda v: nn.functional.cross_entropy(x.flatten(1) @ v.T, y)
    g = torch.autograd.grad(loss(w), w)[0]
    hg = torch.autograd.functional.hvp(loss, w, g)[1]
    assert torch.allclose(scores["1.weight"], w.detach() * hg, atol=1e-6)


def test_synflow_is_data_free_and_iterative():
    a = fit("synflow", 0.9, rounds=10)
    b = fit("synflow", 0.9, rounds=1)
    assert a.sparsity_actual == pytest.approx(0.9, abs=0.02)
    assert any(not torch.equal(a.mask[n], b.mask[n]) for n in a.mask)  # iterating changes the choice


def test_synflow_float64_option_and_overflow_is_reported():
    deep = nn.Sequential(nn.Flatten(), *[m for _ in range(40) for m in (nn.Linear(64, 64), nn.ReLU())],
                         nn.Linear(64, 10))
    with torch.no_grad():
        for m in deep.modules():
            if isinstance(m, nn.Linear):
                m.weight.fill_(1.0)
                m.bias.zero_()
    with pytest.raises(initprune.DivergedError, match="--double"):
        pruners.SynFlow(0.5, rounds=1).prune(context(deep))
    pruners.SynFlow(0.5, rounds=1, double=True).prune(context(deep))  # 64^41 fits in float64


def test_posttrain_trains_dense_then_prunes_then_finetunes():
    result = fit("posttrain", 0.8, epochs=2, finetune_epochs=1)
    assert [h["sparsity"] for h in result.history] == [0.0, 0.0, pytest.approx(0.8, abs=0.01)]
    assert result.extra["total_epochs"] == 3 and "dense_test_accuracy" in result.extra


# ---- sanity checks ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["random", "magnitude", "snip", "kstarts", "dissipating"])
def test_shuffle_changes_positions_but_not_layer_counts(method):
    plain, shuffled = fit(method, 0.8), fit(method, 0.8, ablation="shuffle")
    for name in plain.mask:
        assert int(plain.mask[name].sum()) == int(shuffled.mask[name].sum())
    assert any(not torch.equal(plain.mask[n], shuffled.mask[n]) for n in plain.mask)
    assert shuffled.extra["ablation"]["mask_changed"] > 0.3
    assert len(shuffled.history) == 2  # trained again from initialization, for the same epochs


@pytest.mark.parametrize("method", ["random", "magnitude", "synflow"])
def test_reinit_keeps_the_mask_and_draws_new_weights(method):
    plain, reinit = fit(method, 0.8), fit(method, 0.8, ablation="reinit")
    assert all(torch.equal(plain.mask[n], reinit.mask[n]) for n in plain.mask)
    assert reinit.extra["ablation"]["weights_changed"] > 0.9


@pytest.mark.parametrize("method", ["magnitude", "snip", "grasp"])
def test_invert_keeps_the_complement_within_each_layer(method):
    plain = fit(method, 0.5, scope="layerwise")
    inverted = fit(method, 0.5, scope="layerwise", ablation="invert")
    for name, m in plain.mask.items():
        overlap = int((m & inverted.mask[name]).sum())
        assert overlap <= 1  # odd layer sizes round the same middle weight into both


def test_invert_makes_kstarts_go_on_with_the_least_fit():
    result = fit("kstarts", 0.8, ablation="invert", k=3)
    fitness = [c["fitness"] for c in result.extra["candidates"]]
    assert result.extra["winner"] == fitness.index(min(fitness))


def test_ablations_that_do_not_apply_are_clear_errors():
    with pytest.raises(InitpruneError, match="invert does not apply to method 'random'"):
        fit("random", ablation="invert")
    with pytest.raises(InitpruneError, match="does not apply to method 'dense'"):
        fit("dense", 0.0, ablation="shuffle")
    with pytest.raises(InitpruneError, match="ablation must be one of: none, shuffle, .*; got 'flip'"):
        fit("random", ablation="flip")
