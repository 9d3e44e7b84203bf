"""Seeds that train together (initprune/stacking.py, train.train_group): a stacked seed's result is bitwise the one it
gets alone, and each point of a stack is still claimed, logged and resumed alone."""

import dataclasses

import pytest
import torch

from initprune import api, masks, models, pruners, stacking
from initprune import data as datasets
from initprune import train as loop
from initprune.errors import DivergedError
from initprune.spec import RunSpec
from initprune.train import Settings, Trainee, Trainer

from toys import linear_chain, toy_data

# every built-in method, small: (method, options, sparsity); the epochs are its own plus 2
BUILT_IN = [
    ("dense", {}, 0.0),
    ("random", {}, 0.9),
    ("kstarts", {"k": 2}, 0.9),
    ("dissipating", {"prune_epochs": 1}, 0.9),
    ("combined", {"k": 2, "prune_epochs": 1}, 0.9),
    ("magnitude", {}, 0.9),
    ("snip", {"batches": 2}, 0.9),
    ("grasp", {"batches": 2}, 0.9),
    ("synflow", {"rounds": 5}, 0.9),
    ("posttrain", {"finetune_epochs": 1}, 0.9),
    ("gradual_random", {"prune_epochs": 1}, 0.9),
    ("gradual_magnitude", {"prune_epochs": 1}, 0.9),
    ("kstarts_gradual_random", {"k": 2, "prune_epochs": 1}, 0.9),
]


def test_every_built_in_method_is_listed():
    built_in = {n for n in pruners.PRUNERS.names() if pruners.PRUNERS[n].__module__.startswith("initprune.")}
    assert built_in == {m for m, _, _ in BUILT_IN}


def specs(method, options, sparsity, seeds=(0, 1, 2), ablation="none", **training):
    pruner = pruners.make(method, sparsity, **options)
    first = RunSpec(method=method, dataset="digits", arch="mlp", sparsity=sparsity, epochs=pruner.min_epochs + 2,
                    seed=seeds[0], options=options, training=training, ablation=ablation, device="cpu", threads=1)
    return [dataclasses.replace(first, seed=s) for s in seeds]


def pruned(config: RunSpec, data):
    model = models.build(config.arch, data.input_shape, data.num_classes, config.seed)
    return api._prune(model, data.train, data.val, data.test, api.Setup.of_spec(config, data))


def same(a: api.Pruned, b: api.Pruned) -> None:
    """Bit for bit: the weights, the mask, the history (but its wall-clock seconds), the test
    predictions, the report and the cost."""
    for (n, wa), wb in zip(a.trainee.model.state_dict().items(), b.trainee.model.state_dict().values()):
        assert torch.equal(wa, wb), n
    assert all(torch.equal(a.trainee.mask[n], b.trainee.mask[n]) for n in a.trainee.mask)
    clock = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert clock(a.trainee.history) == clock(b.trainee.history)
    ra, rb = api._finish(a), api._finish(b)
    assert ra.test_correct == rb.test_correct and ra.extra == rb.extra and ra.cost == rb.cost
    assert (ra.test_accuracy, ra.val_accuracy, ra.epochs) == (rb.test_accuracy, rb.val_accuracy, rb.epochs)


def alone_and_stacked(configs):
    data = datasets.load("digits")
    with api._threaded(1):
        alone = [pruned(c, data) for c in configs]
        for p in alone:
            p.trainer.run(p.trainee, p.epochs_left)
        group = [pruned(c, data) for c in configs]
        left = {p.steps_left for p in group}
        assert len(left) == 1
        errors = loop.train_stacked([(p.trainer, p.trainee) for p in group], left.pop())
    assert errors == [None] * len(configs)
    return alone, group


@pytest.mark.parametrize("method,options,sparsity", BUILT_IN, ids=[m for m, _, _ in BUILT_IN])
def test_a_stacked_seed_is_bitwise_its_alone_result(method, options, sparsity):
    alone, group = alone_and_stacked(specs(method, options, sparsity))
    for a, b in zip(alone, group):
        same(a, b)


def test_an_ablation_stacked_is_bitwise_alone():
    alone, group = alone_and_stacked(specs("dissipating", {"prune_epochs": 1}, 0.9, ablation="shuffle"))
    for a, b in zip(alone, group):
        same(a, b)


@pytest.mark.parametrize("training", [
    {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.01},
    {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.01, "lr_schedule": "cosine"},
    {"weight_decay": 0.001, "lr_schedule": "cosine"},
], ids=["adam", "adamw-cosine", "sgd-decay-cosine"])
def test_every_optimizer_stacked_is_bitwise_alone(training):
    """Momentum carried from the pruning phase (dissipating trains before it prunes)."""
    alone, group = alone_and_stacked(specs("dissipating", {"prune_epochs": 1}, 0.9, seeds=(0, 1), **training))
    for a, b in zip(alone, group):
        same(a, b)


def test_run_group_gives_each_seed_the_result_it_gets_alone():
    configs = specs("kstarts", {"k": 2}, 0.9, seeds=(3, 4))
    group = api.run_group(configs)
    for config, b in zip(configs, group):
        a = api.run(config)
        keep = lambda r: {k: v for k, v in r.to_dict().items() if k not in ("seconds", "training_seconds", "history")}  # noqa: E731
        assert keep(a) == keep(b)
        assert [{**h, "seconds": 0} for h in a.history] == [{**h, "seconds": 0} for h in b.history]


def test_a_seed_that_diverges_fails_alone_and_the_others_train_on():
    settings = Settings(lr=0.1, batch_size=16)
    x, y = toy_data(n=64, inputs=40, classes=20)
    pairs, alone = [], []
    for seed in range(3):
        for out in (pairs, alone):
            model = models.initialize(linear_chain(40, 30, 20), torch.Generator().manual_seed(seed))
            if seed == 1:
                with torch.no_grad():
                    model[0].weight[0, 0] = float("nan")
            trainer = Trainer(datasets.Batches(x, y, 16, seed), (x, y), (x, y), settings, "cpu", 3)
            out.append((trainer, Trainee(model, settings, masks.dense(model))))
    assert stacking.stackable(pairs[0][1].model)
    errors = loop.train_stacked(pairs, 3 * 4)
    assert errors[0] is None and errors[2] is None and isinstance(errors[1], DivergedError)
    for seed in (0, 2):
        trainer, t = alone[seed]
        trainer.run(t, 3)
        assert all(torch.equal(a, b) for a, b in zip(t.model.parameters(), pairs[seed][1].model.parameters()))
        assert [h["train_loss"] for h in t.history] == [h["train_loss"] for h in pairs[seed][1].history]
    assert len(pairs[1][1].history) == 0  # it stopped where it would have alone: its first epoch's end


def test_what_stacks_is_a_committed_rule_per_device_and_cell():
    assert stacking.seeds_per_stack("cpu", "digits", "mlp", 1) == 8
    assert stacking.seeds_per_stack("cpu", "mnist", "lenet300", 1) == 1  # measured slower stacked
    assert stacking.seeds_per_stack("cpu", "digits", "mlp", 2) == 1  # measured at 1 thread only
    assert stacking.seeds_per_stack("cuda", "digits", "mlp", 1) == 1
    shape = (1, 28, 28)
    assert stacking.stackable(models.build("lenet300", shape, 10, 0))
    assert not stacking.stackable(models.build("lenet5", shape, 10, 0))  # a conv
    assert not stacking.stackable(models.build("resnet20", (3, 32, 32), 10, 0))  # batch norm: one by one
    assert not stacking.stackable(linear_chain(8, 6, 3))  # torch's bmm takes a loop of its own on small products
    for (_, dataset, arch) in stacking.RULES:
        data = datasets.DATASETS[dataset]
        assert stacking.stackable(models.build(arch, data.shape, data.classes, 0))


def test_plan_groups_neighbouring_seeds_of_one_point_at_most_the_rule_s_count():
    points = specs("random", {}, 0.9, seeds=tuple(range(10))) + specs("random", {}, 0.5, seeds=(0, 1))
    points += [dataclasses.replace(points[0], arch="lenet5", dataset="mnist")]
    plan = stacking.plan(points)
    assert [[p.seed for p in g] for g in plan] == [list(range(8)), [8, 9], [0, 1], [0]]
    assert [g[0].sparsity for g in plan] == [0.9, 0.9, 0.5, 0.9]


# ---- each point of a stack claimed, logged and resumed alone (grid.run_grid) ---------------------

@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def points(uri, status=None):
    from initprune.lab.store import ensure_store

    c, exp_id = ensure_store(uri)
    found = c.search_runs([exp_id], "tags.kind = 'point'", max_results=1000)
    return [r for r in found if status is None or r.info.status == status]


def grid_of(seeds):
    from initprune.lab import grid

    return grid.run_grid("random", "digits", "mlp", [0.9], list(seeds), 1, progress=False, device="cpu")


@pytest.fixture
def stacks(monkeypatch):
    """The seeds of every group of several that trains (a stack), in order."""
    seen, run_group = [], api.run_group
    monkeypatch.setattr(api, "run_group", lambda configs, data_root=None, **kw: (
        len(configs) > 1 and seen.append([c.seed for c in configs]), run_group(configs, data_root, **kw))[1])
    return seen


def test_a_stack_whose_seed_1_has_finished_trains_0_and_2_only_and_logs_each_alone(store, stacks):
    from initprune.lab.store import ensure_store

    before = grid_of([1])[0]
    assert stacks == []  # a group of one trains alone
    out = grid_of([0, 1, 2])
    assert stacks == [[0, 2]]
    assert [r.seed for r in out] == [0, 1, 2] and out[1].run_id == before.run_id  # read back, not trained
    finished = points(store, "FINISHED")
    assert len(finished) == len(points(store)) == 3
    assert {r.info.run_id for r in finished} == {r.run_id for r in out}
    c, _ = ensure_store(store)
    for r in out:  # each its own run, with its own params, metrics and result.json
        run = c.get_run(r.run_id)
        assert run.data.tags["seed"] == str(r.seed) and run.data.params["seed"] == str(r.seed)
        assert len(c.get_metric_history(r.run_id, "test_accuracy")) == 1
        assert [a.path for a in c.list_artifacts(r.run_id)] == ["result.json"]
    for r in (out[0], out[2]):  # and what it gets alone
        alone = api.run(RunSpec(method="random", dataset="digits", arch="mlp", sparsity=0.9, epochs=1,
                                seed=r.seed, device="cpu"))
        assert (alone.test_correct, alone.config_hash) == (r.test_correct, r.config_hash)
        assert alone.history[0]["train_loss"] == r.history[0]["train_loss"]


@pytest.mark.parametrize("error,status", [(RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")])
def test_a_stack_that_fails_leaves_its_points_unfinished_and_the_next_run_trains_them(store, stacks, monkeypatch,
                                                                                      error, status):
    def boom(pairs, steps):
        raise error("the stack broke")

    train = loop.train_stacked
    monkeypatch.setattr(loop, "train_stacked", boom)
    with pytest.raises(error):
        grid_of([0, 1])
    assert sorted(r.info.status for r in points(store)) == [status, status]
    assert all("the stack broke" in r.data.tags["error"] for r in points(store))
    monkeypatch.setattr(loop, "train_stacked", train)
    out = grid_of([0, 1])
    assert stacks == [[0, 1], [0, 1]]
    assert {r.info.run_id for r in points(store, "FINISHED")} == {r.run_id for r in out}


def test_a_seed_that_fails_in_a_stack_fails_alone_the_others_are_logged(store, stacks, monkeypatch):
    monkeypatch.setenv("INITPRUNE_INJECT_FAILURE", "random:1")
    with pytest.raises(RuntimeError, match="injected failure at random seed 1"):
        grid_of([0, 1, 2])
    assert stacks == [[0, 2]]
    assert sorted((int(r.data.tags["seed"]), r.info.status) for r in points(store)) == [
        (0, "FINISHED"), (1, "FAILED"), (2, "FINISHED")]
    monkeypatch.delenv("INITPRUNE_INJECT_FAILURE")
    out = grid_of([0, 1, 2])
    assert stacks == [[0, 2]]  # seed 1 trained alone: nothing else was left
    assert len(points(store, "FINISHED")) == 3 and out[1].run_id in {r.info.run_id for r in points(store)}


def test_an_untracked_grid_stacks_too_and_gives_what_each_point_gets_alone(stacks):
    from initprune.lab import grid

    out = grid.run_grid("random", "digits", "mlp", [0.9], [0, 1], 1, progress=False, device="cpu", tracking=False)
    assert stacks == [[0, 1]] and [r.seed for r in out] == [0, 1]
    alone = api.run(RunSpec(method="random", dataset="digits", arch="mlp", sparsity=0.9, epochs=1, seed=1,
                            device="cpu"))
    assert alone.test_correct == out[1].test_correct
    assert alone.history[0]["train_loss"] == out[1].history[0]["train_loss"]
