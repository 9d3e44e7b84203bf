"""The criterion controls (docs/method.md, "Criterion controls"): gradual random and gradual
magnitude on dissipating's schedule, K-starts followed by gradual random, dissipating's movement
option, and the kept fraction per |θ0| quartile."""

import json

import matplotlib.pyplot as plt
import pytest
import torch

import initprune
from initprune import cli, masks, pruners, seeds, spec
from initprune.errors import InitpruneError
from initprune.lab import profiles
from initprune.report import figures_controls

from toys import toy_data, toy_model

CONTROLS = ["gradual_random", "gradual_magnitude"]


def fit(method, sparsity, seed=0, epochs=3, **options):
    return initprune.fit(toy_model(seed), train=toy_data(), test=toy_data(48, seed=1), method=method,
                         sparsity=sparsity, epochs=epochs, seed=seed, device="cpu", batch_size=16, **options)


def same(a, b):
    return all(torch.equal(a[n], b[n]) for n in a)


def first_epoch_dense(seed):
    """The prunable weights after the first epoch, unpruned: what a pruning run scores at its end."""
    model = toy_model(seed)
    initprune.fit(model, train=toy_data(), test=toy_data(48, seed=1), method="dense", sparsity=0.0, epochs=1,
                  seed=seed, device="cpu", batch_size=16)
    return masks.prunable(model)


# ---- the controls share dissipating's schedule; only the criterion differs --------------------------

@pytest.mark.parametrize("scope", ["layerwise", "erk", "global"])
def test_the_controls_reach_dissipatings_sparsity_after_every_pruning_epoch(scope):
    """Toy (120 weights: conv 6, fc1 96, fc2 18), s = 0.9, cubic over 3 epochs: 0.633, 0.867, 0.9.
    Kept after each epoch: 44, 16, then 13 layerwise (1 + 10 + 2: each layer rounds on its own),
    12 under erk and global. Per layer the counts agree wherever the criterion cannot move them."""
    runs = {m: fit(m, 0.9, schedule="cubic", prune_epochs=3, scope=scope) for m in ["dissipating", *CONTROLS]}
    final = {"layerwise": 13, "erk": 12, "global": 12}[scope]
    for method, result in runs.items():
        kept = [round((1 - s) * 120) for s in result.extra["sparsity_per_epoch"]]
        assert kept == [44, 16, final], method
        assert [h["sparsity"] for h in result.history] == result.extra["sparsity_per_epoch"]
        assert result.extra["target_reached_epoch"] == 3
    if scope != "global":  # global: one ranking over all layers, so the criterion decides the split
        layers = {"layerwise": {"conv.weight": 1, "fc1.weight": 10, "fc2.weight": 2},
                  "erk": {"conv.weight": 2, "fc1.weight": 7, "fc2.weight": 3}}[scope]
        assert all({n: v["kept"] for n, v in r.layers.items()} == layers for r in runs.values())
    for control in CONTROLS:  # the same counts, other weights
        assert not same(runs[control].mask, runs["dissipating"].mask), control
    assert not same(runs["gradual_random"].mask, runs["gradual_magnitude"].mask)


def test_gradual_random_removes_a_uniform_draw_of_its_own_stream():
    """One pruning epoch from the dense mask: the kept weights are the top of uniform scores drawn
    from the stream named after the epoch, seeded from the run's masks stream."""
    seed, sparsity = 3, 0.7
    stream = seeds.generator(seeds.generator(seed, "masks").initial_seed(), "gradual_random:1")
    expected = masks.select(masks.random_scores(toy_model(seed), stream), sparsity)
    result = fit("gradual_random", sparsity, seed=seed, epochs=1, prune_epochs=1)
    assert same(result.mask, expected)


@pytest.mark.parametrize("method", ["gradual_random", "kstarts_gradual_random"])
def test_gradual_random_is_deterministic_and_blind_to_the_global_generator(method):
    options = dict(prune_epochs=2, schedule="cubic", **({"k": 2} if method.startswith("kstarts") else {}))
    torch.manual_seed(1)
    a = fit(method, 0.9, seed=5, **options)
    torch.manual_seed(12345)
    torch.rand(7)
    b = fit(method, 0.9, seed=5, **options)
    assert same(a.mask, b.mask)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert not same(a.mask, fit(method, 0.9, seed=6, **options).mask)


def test_gradual_magnitude_removes_the_smallest_weights_at_the_end_of_the_epoch():
    sparsity, seed = 0.7, 2
    trained = first_epoch_dense(seed)
    expected = masks.select({n: w.detach().abs() for n, w in trained.items()}, sparsity)
    result = fit("gradual_magnitude", sparsity, seed=seed, epochs=1, prune_epochs=1)
    assert same(result.mask, expected)


def test_kstarts_then_gradual_random_shares_combineds_kstarts_stage_and_schedule():
    options = dict(k=2, prune_epochs=2, epochs=3, schedule="cubic")
    combined, control = fit("combined", 0.96, **options), fit("kstarts_gradual_random", 0.96, **options)
    assert control.extra["kstarts"] == combined.extra["kstarts"]  # the same candidates, the same winner
    assert control.history[0] == {**combined.history[0], "seconds": control.history[0]["seconds"]}
    assert control.extra["gradual_random"]["sparsity_per_epoch"] == \
        combined.extra["dissipating"]["sparsity_per_epoch"]
    assert control.layers == combined.layers
    assert not same(control.mask, combined.mask)
    names = [name for name, _, _ in pruners.make("kstarts_gradual_random", 0.96, **{
        k: v for k, v in options.items() if k != "epochs"}).metrics(control.extra)]
    assert "gradual_random.sparsity" in names


# ---- dissipating's movement option -----------------------------------------------------------------

def test_absolute_movement_ranks_by_the_change_alone_and_differs_from_relative():
    sparsity, seed = 0.7, 2
    theta0, moved = masks.prunable(toy_model(seed)), first_epoch_dense(seed)
    expected = masks.select({n: (moved[n] - theta0[n]).abs() for n in moved}, sparsity)
    absolute = fit("dissipating", sparsity, seed=seed, epochs=1, prune_epochs=1, movement="absolute")
    relative = fit("dissipating", sparsity, seed=seed, epochs=1, prune_epochs=1)
    assert same(absolute.mask, expected)
    assert not same(absolute.mask, relative.mask)
    combined = pruners.make("combined", 0.9, movement="absolute")
    assert combined._dissipating.movement == "absolute"


def test_identities_stored_before_the_controls_stay():
    """Hashes computed on the code before the movement option and the controls existed."""
    before = {"529dab3200cb": dict(method="dissipating"),
              "ecac4ec97e5b": dict(method="dissipating", sparsity=0.95,
                                   options={"schedule": "cubic", "scope": "global"}),
              "2a5e32c94a97": dict(method="combined", sparsity=0.98, options={"schedule": "cubic"}),
              "0b172e3407ad": dict(method="combined", dataset="fashion_mnist", arch="lenet300", sparsity=0.95,
                                   epochs=6, options={"tau": 0.5})}
    for expected, given in before.items():
        point = spec.RunSpec(device="cpu", threads=1, **given)
        assert point.hash() == expected, given
        assert spec.RunSpec(device="cpu", threads=1, **{**given, "options": {
            **given.get("options", {}), "movement": "relative"}}).hash() == expected  # neutral: left out
        assert spec.RunSpec(device="cpu", threads=1, **{**given, "options": {
            **given.get("options", {}), "movement": "absolute"}}).hash() != expected


# ---- what the controls take, and how the rest of initprune names them ---------------------------------

def test_the_controls_are_their_own_family_without_a_threshold_or_a_movement():
    assert set(pruners.of_family("control")) == {"gradual_random", "gradual_magnitude", "kstarts_gradual_random"}
    for method in pruners.of_family("control"):
        cls = pruners.PRUNERS[method]
        assert cls.lines == ("schedule",) and pruners.label(method, {"schedule": "cubic"}) == f"{method} (cubic)"
        names = pruners.option_names(method)
        assert {"prune_epochs", "schedule", "scope"} <= set(names)
        assert not {"tau", "movement", "eps"} & set(names)
        with pytest.raises(InitpruneError, match=f"^tau does not apply to method '{method}' \\(its options: "):
            pruners.make(method, 0.9, tau=0.5)
    assert pruners.option_names("kstarts_gradual_random") == [
        n for n in pruners.option_names("combined") if n not in ("tau", "movement")]
    spec.make_pruner("gradual_magnitude", 0.9, "invert")  # inverted: the largest |θ_e| go
    for method in ("gradual_random", "kstarts_gradual_random"):
        with pytest.raises(InitpruneError, match=f"^ablation invert does not apply to method '{method}'"):
            spec.make_pruner(method, 0.9, "invert")


def test_a_profile_names_the_controls_and_the_movement(tmp_path):
    path = tmp_path / "controls.yaml"
    path.write_text(
        "description: the criterion controls\n"
        "defaults: {dataset: digits, arch: mlp, epochs: 4, seeds: [0], sparsities: [0.95]}\n"
        "executions:\n"
        "  - {notebook: baselines, method: [gradual_random, gradual_magnitude, kstarts_gradual_random],"
        " schedule: cubic, k: 2}\n"
        "  - {notebook: dissipating, schedule: cubic, movement: absolute}\n")
    points = [p for ex in profiles.load_profile(str(path)) for p in ex.points]
    assert [(p.method, p.options["schedule"]) for p in points] == [
        ("gradual_random", "cubic"), ("gradual_magnitude", "cubic"), ("kstarts_gradual_random", "cubic"),
        ("dissipating", "cubic")]
    assert points[2].options["k"] == 2 and points[3].options["movement"] == "absolute"


def test_the_command_line_takes_the_controls_and_movement(tmp_path, capsys):
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "gradual_random [control]" in listed and "movement=relative" in listed
    out = tmp_path / "r.json"
    assert cli.main(["run", "--method", "dissipating", "--movement", "absolute", "--prune-epochs", "1",
                     "--sparsity", "0.9", "--epochs", "1", "--no-tracking", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["options"]["movement"] == "absolute" and len(result["extra"]["kept_by_quartile"]["weighted"]) == 4
    assert cli.main(["run", "--method", "gradual_random", "--tau", "0.5", "--no-tracking"]) == 2
    assert "--tau does not apply to method 'gradual_random'" in capsys.readouterr().err


# ---- the kept fraction per |θ0| quartile ------------------------------------------------------------

def test_kept_by_quartile_on_hand_made_values():
    """Layer a: |θ0| = 1..8 (signs mixed, out of order), two weights a quartile; kept: both of the
    smallest, one of the second, none of the third, one of the largest. Layer b: 4 weights, one a
    quartile, the largest two kept. Layer c: 3 weights fill quartiles 1-3; the fourth is None."""
    init = {"a": torch.tensor([[3.0, -1.0, 8.0, 2.0], [-5.0, 6.0, -4.0, 7.0]]),
            "b": torch.tensor([0.4, -0.1, 0.3, 0.2]),
            "c": torch.tensor([0.5, 0.2, -0.9])}
    mask = {"a": torch.tensor([[False, True, True, True], [False, False, True, False]]),
            "b": torch.tensor([True, False, True, False]),
            "c": torch.tensor([True, False, False])}
    report = pruners.kept_by_quartile(mask, init)
    assert report["layers"] == {"a": [1.0, 0.5, 0.0, 0.5], "b": [0.0, 0.0, 1.0, 1.0], "c": [0.0, 1.0, 0.0, None]}
    # pooled: (2 + 0 + 0) / (2 + 1 + 1), (1 + 0 + 1) / 4, (0 + 1 + 0) / 4, (1 + 1) / (2 + 1)
    assert report["weighted"] == pytest.approx([0.5, 0.5, 0.25, 2 / 3])


@pytest.mark.parametrize("method,options", [("dissipating", {}), ("combined", {"k": 2}),
                                            ("gradual_random", {}), ("gradual_magnitude", {}),
                                            ("kstarts_gradual_random", {"k": 2})])
def test_every_dissipating_combined_and_control_result_reports_its_final_masks_quartiles(method, options):
    result = fit(method, 0.8, prune_epochs=1, epochs=2, **options)
    report = result.extra["kept_by_quartile"]
    assert report == pruners.kept_by_quartile(result.mask, masks.prunable(toy_model(0)))
    logged = [m for m in pruners.make(method, 0.8, prune_epochs=1, **options).metrics(result.extra)
              if m[0] == "kept_by_quartile"]  # to MLflow, step 1 the smallest |θ0|
    assert logged == [("kept_by_quartile", f, q + 1) for q, f in enumerate(report["weighted"])]
    # the fractions times each quartile's size give back every layer's kept count
    for name, fractions in report["layers"].items():
        numel = result.layers[name]["numel"]
        sizes = [sum(1 for r in range(numel) if r * 4 // numel == q) for q in range(4)]  # ranks cut in four
        assert round(sum(f * n for f, n in zip(fractions, sizes))) == result.layers[name]["kept"]


def test_relative_movement_keeps_the_weights_that_started_small_and_magnitude_the_large():
    """The tester's observation in miniature (toy, s = 0.9, one pruning epoch): relative movement
    keeps most of the smallest |θ0| quartile and least of the largest; gradual magnitude, one
    epoch from θ0, keeps the largest quartile only (13 of its 29 weights)."""
    relative = fit("dissipating", 0.9, prune_epochs=1, epochs=1).extra["kept_by_quartile"]["weighted"]
    assert relative[0] > relative[1] > relative[3]
    magnitude = fit("gradual_magnitude", 0.9, prune_epochs=1, epochs=1).extra["kept_by_quartile"]["weighted"]
    assert magnitude == pytest.approx([0.0, 0.0, 0.0, 13 / 29])


def test_the_quartile_figure_draws_one_bar_per_label_and_quartile():
    rows = [("dissipating (cubic)", [0.187, 0.011, 0.001, 0.0]), ("gradual_random (cubic)", [0.05, 0.05, 0.05, None])]
    fig = figures_controls.kept_by_quartile(rows)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.containers] == [label for label, _ in rows]
    assert [b.get_height() for b in ax.containers[0]] == pytest.approx([0.187, 0.011, 0.001, 0.0])
    heights = [b.get_height() for b in ax.containers[1]]
    assert heights[:3] == pytest.approx([0.05] * 3) and heights[3] != heights[3]  # None: no bar (NaN)
    plt.close(fig)
    with pytest.raises(InitpruneError, match="^kept_by_quartile: no \\(label, fractions\\) to draw"):
        figures_controls.kept_by_quartile([])
    with pytest.raises(InitpruneError, match="has 3 fractions; give one per quartile"):
        figures_controls.kept_by_quartile([("x", [0.1, 0.2, 0.3])])
