"""One suite over every registered pruner, then exact checks of each of the paper's methods."""

import math

import pytest
import torch

import initprune
from initprune import masks, models, pruners, seeds
from initprune.errors import InitpruneError

from toys import toy_data, toy_model

# by option, so that every method that declares one (a new one included) runs fast
FAST = {"k": 3, "prune_epochs": 1, "batches": 2, "rounds": 5, "finetune_epochs": 1}


def fast(method):
    return {k: v for k, v in FAST.items() if k in pruners.option_names(method)}


def fit(method, sparsity, seed=0, model=None, epochs=2, **options):
    model = model if model is not None else toy_model(seed)
    return initprune.fit(model, train=toy_data(), test=toy_data(48, seed=1), method=method,
                         sparsity=sparsity, epochs=epochs, seed=seed, device="cpu", batch_size=16,
                         **{**fast(method), **options})


@pytest.mark.parametrize("method", initprune.PRUNERS.names())
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
def test_every_pruner_keeps_exact_counts(method, sparsity):
    if pruners.PRUNERS[method].fixed_sparsity not in (None, sparsity):
        with pytest.raises(InitpruneError, match="^sparsity must be 0: method 'dense' keeps every weight"):
            fit(method, sparsity)
        return
    model = toy_model()
    result = fit(method, sparsity, model=model)
    assert list(result.mask) == list(masks.prunable(model))
    exact = lambda n: max(1, math.floor((1 - sparsity) * n + 0.5))
    for name, mask in result.mask.items():
        assert mask.dtype == torch.bool and mask.shape == masks.prunable(model)[name].shape
        assert mask.any()  # no layer emptied
    if pruners.make(method, sparsity).options().get("scope") == "global":
        assert masks.kept(result.mask) == max(len(result.mask), exact(masks.total(result.mask)))
    else:
        assert all(v["kept"] == exact(v["numel"]) for v in result.layers.values())
    assert result.history[-1]["sparsity"] == pytest.approx(result.sparsity_actual)
    assert len(result.history) == 2 + result.extra.get("finetune_epochs", 0)


@pytest.mark.parametrize("method", initprune.PRUNERS.names())
def test_every_pruner_runs_on_the_1d_cnn_of_mnist1d(method):
    model = models.build("cnn1d", (1, 40), 10, seed=0)
    x, y = toy_data(64, inputs=40, classes=10)
    sparsity = 0.0 if pruners.PRUNERS[method].fixed_sparsity is not None else 0.9
    result = initprune.fit(model, train=(x.view(-1, 1, 40), y), test=(x[:16].view(-1, 1, 40), y[:16]),
                           method=method, sparsity=sparsity, epochs=2, seed=0, device="cpu", batch_size=16,
                           **fast(method))
    assert list(result.mask) == ["0.0.weight", "0.2.weight", "0.4.weight", "1.weight"]
    assert result.sparsity_actual == pytest.approx(sparsity, abs=0.01)
    weights = masks.prunable(model)
    assert all((weights[n][~m] == 0).all() for n, m in result.mask.items())


@pytest.mark.parametrize("method", [m for m in initprune.PRUNERS.names() if m != "dense"])
def test_same_seed_same_mask_and_another_seed_another(method):
    a, b, c = fit(method, 0.5, seed=3), fit(method, 0.5, seed=3), fit(method, 0.5, seed=4)
    assert all(torch.equal(a.mask[n], b.mask[n]) for n in a.mask)
    assert a.test_accuracy == b.test_accuracy and a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert any(not torch.equal(a.mask[n], c.mask[n]) for n in a.mask)


def test_random_scoring_leaves_the_weights_untouched():
    model = toy_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert masks.sparsity(mask) == pytest.approx(0.5, abs=0.02)


def test_unknown_method_and_misplaced_option_are_clear_errors():
    with pytest.raises(InitpruneError, match="unknown method 'snipp'; choose one of: dense, random"):
        fit("snipp", 0.5)
    with pytest.raises(InitpruneError, match="k does not apply to method 'random'"):
        fit("random", 0.5, k=3)
    with pytest.raises(InitpruneError, match="^k must be an integer of at least 1"):
        fit("kstarts", 0.5, k=0)
    with pytest.raises(InitpruneError, match="^epochs must be 4 or more"):
        fit("combined", 0.5, epochs=3, warmup_epochs=1, prune_epochs=3)


# ---- K-starts ----------------------------------------------------------------------------

def test_kstarts_fitness_is_the_formula_of_method_md():
    """Hand-set weights, masks and accumulated gradients; the numbers below are worked by hand."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        model[1].weight.copy_(torch.tensor([[-5.0, 6.0]]))
    settings = initprune.train.Settings()
    keep_a = {"0.weight": torch.tensor([[True, True], [False, False]]), "1.weight": torch.tensor([[True, False]])}
    keep_b = {"0.weight": torch.tensor([[False, False], [True, True]]), "1.weight": torch.tensor([[False, True]])}
    dense = {k: torch.ones_like(v) for k, v in keep_a.items()}
    a = initprune.train.Trainee(model, settings, dense).clone(settings, keep_a)
    b = a.clone(settings, keep_b)
    sink_a = [torch.tensor([[2.0, 4.0], [9.0, 9.0]]), torch.tensor([[1.0, 9.0]])]
    sink_b = [torch.tensor([[9.0, 9.0], [1.0, 1.0]]), torch.tensor([[9.0, 2.0]])]
    # magnitude: a = mean(1, 2) + 5 = 6.5; b = mean(3, 4) + 6 = 9.5
    # gradient:  a = mean(2, 4) + 1 = 4.0; b = mean(1, 1) + 2 = 3.0
    # both: a = 6.5/9.5 * 4/4 = 0.684..; b = 9.5/9.5 * 3/4 = 0.75
    scores = pruners.KStarts(0.5)._fitness([a, b], [sink_a, sink_b])
    assert [s["magnitude"] for s in scores] == [6.5, 9.5]
    assert [s["gradient"] for s in scores] == [4.0, 3.0]
    assert [s["fitness"] for s in scores] == pytest.approx([6.5 / 9.5, 0.75])
    assert pruners.KStarts(0.5, fitness="gradient")._fitness([a, b], [sink_a, sink_b])[0]["fitness"] == 4.0


@pytest.mark.parametrize("fitness", pruners.FITNESS)
@pytest.mark.parametrize("selection", pruners.SELECTION)
def test_kstarts_goes_on_with_the_fittest_candidate(fitness, selection):
    k, sparsity, seed = 4, 0.8, 7
    result = fit("kstarts", sparsity, seed=seed, k=k, fitness=fitness, selection=selection, epochs=3)
    extra = result.extra
    final = [c for c in extra["candidates"] if c["epochs"] == 1.0]
    assert extra["winner"] == max(final, key=lambda c: (c["fitness"], -c["index"]))["index"]
    # the winner's mask is the winner-th random mask drawn from the run's generator
    g, model = seeds.generator(seed, "masks"), toy_model(seed)
    drawn = [masks.select(masks.random_scores(model, g), sparsity) for _ in range(k)]
    assert all(torch.equal(result.mask[n], drawn[extra["winner"]][n]) for n in result.mask)
    expected_cost = (k - 1) * 1.0 if selection == "full" else sum(c["epochs"] for c in extra["candidates"]) - 1
    assert extra["extra_cost_epochs"] == pytest.approx(expected_cost)
    if selection == "halving":
        assert extra["extra_cost_epochs"] < k - 1
        assert sorted(c["epochs"] for c in extra["candidates"]) == pytest.approx([1 / 3, 1 / 3, 1, 1])
    assert len(result.history) == 3  # the warm-up epoch counts: no retraining


# ---- dissipating gradients ------------------------------------------------------------------

def test_dissipating_prunes_exactly_the_weights_that_moved_least():
    sparsity, seed = 0.7, 2
    dense_model, theta0 = toy_model(seed), masks.prunable(toy_model(seed))
    fit("dense", 0.0, seed=seed, model=dense_model, epochs=1)  # the same first epoch, unpruned
    moved = masks.prunable(dense_model)
    expected = masks.select(
        {n: (moved[n] - theta0[n]).abs() / (theta0[n].abs() + 1e-8) for n in moved}, sparsity)
    result = fit("dissipating", sparsity, seed=seed, epochs=1, prune_epochs=1)
    assert all(torch.equal(result.mask[n], expected[n]) for n in expected)


@pytest.mark.parametrize("schedule", pruners.SCHEDULES)
def test_dissipating_follows_its_schedule_and_reports_it(schedule):
    result = fit("dissipating", 0.9, prune_epochs=3, schedule=schedule, epochs=4)
    per_epoch = result.extra["sparsity_per_epoch"]
    expected = [pruners.scheduled(0.0, 0.9, e, 3, schedule) for e in (1, 2, 3)]
    assert per_epoch == pytest.approx(expected, abs=0.02)
    assert [h["sparsity"] for h in result.history[:3]] == per_epoch
    assert result.extra["target_reached_epoch"] == 3
    if schedule == "cubic":
        assert per_epoch[0] > pruners.scheduled(0.0, 0.9, 1, 3, "linear")  # fast first


def test_geometric_schedule_removes_the_same_fraction_of_the_kept_weights_each_epoch():
    """Target 0.875 over 3 epochs: density 1 -> 1/2 -> 1/4 -> 1/8, the same split as combined's
    (1 - s_k) = sqrt(1 - s). Per layer (conv 6, fc1 96, fc2 18 weights) the kept counts are
    3/48/9, then 2/24/5 (1.5 and 4.5 round up), then 1/12/2: 60, 31 and 15 of 120."""
    assert [pruners.scheduled(0.0, 0.875, e, 3, "geometric") for e in (1, 2, 3)] == pytest.approx([0.5, 0.75, 0.875])
    assert pruners.scheduled(0.0, 0.99, 1, 2, "geometric") == pytest.approx(0.9)
    assert pruners.scheduled(0.5, 0.875, 1, 2, "geometric") == pytest.approx(0.75)  # from a starting mask
    result = fit("dissipating", 0.875, prune_epochs=3, schedule="geometric", epochs=3)
    assert [round((1 - s) * 120) for s in result.extra["sparsity_per_epoch"]] == [60, 31, 15]
    assert result.layers == {"conv.weight": {"numel": 6, "kept": 1}, "fc1.weight": {"numel": 96, "kept": 12},
                             "fc2.weight": {"numel": 18, "kept": 2}}


def test_dissipating_threshold_prunes_below_tau_capped_by_the_target():
    low = fit("dissipating", 0.9, tau=1e-9, prune_epochs=1, epochs=1)
    assert low.sparsity_actual < 0.2  # almost everything moved more than 1e-9 of itself
    high = fit("dissipating", 0.9, tau=1e9, prune_epochs=1, epochs=1)
    assert high.sparsity_actual == pytest.approx(0.9, abs=0.02)  # capped


# ---- combined ------------------------------------------------------------------------------

def test_combined_kstarts_stage_at_the_split_then_reaches_the_target():
    result = fit("combined", 0.96, k=3, warmup_epochs=1, prune_epochs=2, epochs=4)
    assert result.extra["kstarts_sparsity"] == pytest.approx(0.8)  # 1 - sqrt(1 - 0.96)
    assert result.history[0]["sparsity"] == pytest.approx(0.8, abs=0.02)
    assert result.extra["dissipating"]["start_sparsity"] == result.history[0]["sparsity"]
    assert result.sparsity_actual == pytest.approx(0.96, abs=0.02)
    assert [h["sparsity"] for h in result.history][1:3] == result.extra["dissipating"]["sparsity_per_epoch"]
    explicit = fit("combined", 0.96, k=3, prune_epochs=1, kstarts_sparsity=0.5, epochs=2)
    assert explicit.history[0]["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_kstarts_analysis_trains_every_candidate_and_leaves_the_run_as_it_was():
    plain = fit("kstarts", 0.8, k=3, epochs=3)
    analysed = fit("kstarts", 0.8, k=3, epochs=3, analysis=True)
    finals = [c["final_test_accuracy"] for c in analysed.extra["candidates"]]
    assert len(finals) == 3 and all(0 <= a <= 1 for a in finals)
    # the winner's copy trained to the end is the run itself: same data order, same state
    assert finals[analysed.extra["winner"]] == analysed.test_accuracy == plain.test_accuracy
    rho = analysed.extra["rank_correlation"]
    assert rho is None or -1 <= rho <= 1


def test_random_masks_do_not_follow_the_weights():
    """θ0 and the masks come from one seed but separate streams: a random mask keeps weights of
    ordinary size, not the largest (the bug of drawing both from the same numbers)."""
    model = models.build("mlp", (1, 8, 8), 10, seed=0)
    result = initprune.fit(model, train=toy_data(64, inputs=64, classes=10), test=toy_data(16, inputs=64, classes=10),
                           method="random", sparsity=0.9, epochs=1, seed=0, device="cpu", lr=1e-9)
    w = models.build("mlp", (1, 8, 8), 10, seed=0)[1].weight.detach().abs()
    kept = result.mask["1.weight"]
    assert float(w[kept].mean()) == pytest.approx(float(w.mean()), rel=0.05)


def test_seed_streams_are_distinct_and_stable():
    assert len({seeds.derive(0, p) for p in ("init", "masks", "data:0", "data:1")}) == 4
    assert seeds.derive(0, "init") == seeds.derive(0, "init") != seeds.derive(1, "init")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_candidates_trained_as_one_stacked_model_match_one_by_one(optimizer):
    """The vmap path of K-starts is the same arithmetic as training each candidate alone."""
    from initprune.data import Batches
    from initprune.train import Settings, Trainee, Trainer

    settings = Settings(optimizer=optimizer, lr=0.05, weight_decay=0.01, batch_size=16)
    trainer = Trainer(Batches(*toy_data(), 16, seed=0), None, None, settings, "cpu", 2)
    base = Trainee(toy_model(), settings, masks.dense(toy_model()))
    g = seeds.generator(0, "masks")
    drawn = [masks.select(masks.random_scores(base.model, g), 0.7) for _ in range(3)]
    alone = [base.clone(settings, m) for m in drawn]
    stacked = [base.clone(settings, m) for m in drawn]
    sink_alone = [[torch.zeros_like(w) for w in t.prunable] for t in alone]
    sink_stacked = [[torch.zeros_like(w) for w in t.prunable] for t in stacked]
    for t, s in zip(alone, sink_alone):
        trainer.advance(t, 5, s)
        trainer.advance(t, 4, s)
    trainer.together(stacked, 5, sink_stacked, stacked=True)
    trainer.together(stacked, 4, sink_stacked, stacked=True)  # optimizer state carried across calls
    for a, b, sa, sb in zip(alone, stacked, sink_alone, sink_stacked):
        for (n, wa), wb in zip(a.weights.items(), b.prunable):
            assert torch.allclose(wa, wb, atol=1e-5), n
            assert (wb[~b.mask[n]] == 0).all()
        assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(sa, sb))
        assert a.history[0]["train_loss"] == pytest.approx(b.history[0]["train_loss"], abs=1e-5)
        assert a.steps == b.steps == 9


# ---- layer allocation (scope) ---------------------------------------------------------------

def scopes_of(method):
    """(method, scope) for every scope a pruner's ``scope`` option accepts."""
    opt = next((o for o in pruners.PRUNERS[method].declared() if o.name == "scope"), None)
    return [(method, s) for s in (opt.choices if opt else ())]


@pytest.mark.parametrize("method,scope", [p for m in initprune.PRUNERS.names() for p in scopes_of(m)])
@pytest.mark.parametrize("sparsity", [0.5, 0.99])
def test_every_pruner_under_every_scope_keeps_exact_counts(method, scope, sparsity):
    model = toy_model()
    extra = {"kstarts_scope": scope} if "kstarts_scope" in pruners.option_names(method) else {}
    result = fit(method, sparsity, model=model, scope=scope, **extra)
    weights = masks.prunable(model)
    assert list(result.mask) == list(weights)
    assert all(m.dtype == torch.bool and m.shape == weights[n].shape and m.any() for n, m in result.mask.items())
    exact = lambda n: max(1, math.floor((1 - sparsity) * n + 0.5))
    if scope == "layerwise":
        assert all(v["kept"] == exact(v["numel"]) for v in result.layers.values())
    else:  # toy: 120 weights in 3 layers: 60 at s = 0.5; 3 (one a layer) at s = 0.99
        assert masks.kept(result.mask) == max(len(weights), exact(masks.total(result.mask))) == {0.5: 60, 0.99: 3}[
            sparsity]
    if scope == "erk" and method in ("random", "kstarts", "magnitude", "snip", "grasp", "posttrain"):
        # chosen in one step from the dense mask: exactly the ERK counts
        shapes = {n: tuple(w.shape) for n, w in weights.items()}
        assert {n: v["kept"] for n, v in result.layers.items()} == masks.erk_counts(shapes, sparsity)


def test_kstarts_candidates_follow_its_scope_and_combined_passes_kstarts_scope_on():
    """Toy (conv (2, 1, 3), fc1 (6, 16), fc2 (3, 6); sums of dims 6, 22, 9), K-starts at s = 0.5:
    target 60, scale 60/37: conv would keep 9.7 > 6: dense; 54 shared 22 : 9: 38.32 and 15.68,
    floors 38 + 15 = 53, the last to fc2 (.68): 6, 38, 16."""
    result = fit("kstarts", 0.5, scope="erk")
    assert {n: v["kept"] for n, v in result.layers.items()} == {"conv.weight": 6, "fc1.weight": 38,
                                                                  "fc2.weight": 16}
    assert pruners.make("kstarts", 0.5).scope == pruners.make("combined", 0.5).kstarts_scope == "layerwise"
    combined = pruners.make("combined", 0.75, kstarts_scope="erk", scope="layerwise")
    assert combined._kstarts.scope == "erk" and combined._dissipating.scope == "layerwise"


def test_new_scope_options_are_neutral_at_their_defaults():
    for method, name in (("kstarts", "scope"), ("combined", "kstarts_scope")):
        opt = next(o for o in pruners.PRUNERS[method].declared() if o.name == name)
        assert opt.default == opt.neutral == "layerwise"


def test_an_unknown_scope_is_a_one_line_error_naming_the_choices():
    with pytest.raises(InitpruneError, match="^scope must be one of: layerwise, global, erk; got 'local'$"):
        pruners.make("snip", 0.5, scope="local")
    with pytest.raises(InitpruneError, match="^kstarts_scope must be one of: layerwise, global, erk"):
        pruners.make("combined", 0.5, kstarts_scope="uniform")


@pytest.mark.parametrize("method,scope", [p for m in initprune.PRUNERS.names() for p in scopes_of(m) or [(m, None)]])
def test_every_pruner_under_every_scope_prunes_the_autoencoder_of_digits(method, scope):
    """The reconstruction task through every method and scope, run by name as the command line
    runs it: digits' autoencoder is 64-256-64-256-64."""
    from initprune.spec import RunSpec

    sparsity = 0.0 if pruners.PRUNERS[method].fixed_sparsity is not None else 0.9
    options = {**fast(method), **({"scope": scope} if scope else {}),
               **({"kstarts_scope": scope} if "kstarts_scope" in pruners.option_names(method) else {})}
    result = initprune.api.run(RunSpec(method=method, sparsity=sparsity, dataset="digits", arch="autoencoder",
                                       epochs=2, options=options, device="cpu"))
    assert (result.task, result.metric, result.higher_is_better) == ("reconstruction", "test_reconstruction_error",
                                                                    False)
    assert result.test_accuracy is None and result.dead_classes is None and result.dead_outputs >= 0
    assert 0 < result.test_reconstruction_error == result.history[-1]["test_reconstruction_error"] < 1
    assert [n for n in result.layers] == ["1.weight", "3.weight", "5.weight", "7.weight"]
    exact = lambda n: max(1, math.floor((1 - sparsity) * n + 0.5))
    if scope in ("global", "erk"):
        assert sum(v["kept"] for v in result.layers.values()) == exact(4 * 64 * 256)
    else:
        assert all(v["kept"] == exact(v["numel"]) for v in result.layers.values())
    assert result.effective_sparsity >= result.sparsity_actual == pytest.approx(sparsity, abs=1e-4)
