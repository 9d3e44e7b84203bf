"""Tasks declared, not assumed: classification and reconstruction, their losses, metrics and
directions, and the autoencoder trained, pruned and reported through its task."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import initprune
from initprune import api, cli, masks, models, tasks
from initprune import data as datasets
from initprune.errors import InitpruneError
from initprune.spec import RunSpec
from initprune.train import Settings, Trainee, Trainer


def test_the_two_tasks_declare_loss_metric_direction_record_and_label():
    c, r = tasks.get("classification"), tasks.get("reconstruction")
    assert c.describe() == {"task": "classification", "metric": "test_accuracy", "higher_is_better": True}
    assert r.describe() == {"task": "reconstruction", "metric": "test_reconstruction_error",
                            "higher_is_better": False}
    assert (c.record, r.record) == ("correctness", "squared error")
    assert "higher is better" in c.label and "lower is better" in r.label
    assert (c.reaches, r.reaches) == ("the logits", "the reconstruction")
    assert (c.logits, r.logits) == (True, False)


def test_reconstruction_loss_is_the_mse_and_its_record_each_examples_squared_error():
    r = tasks.get("reconstruction")
    out = torch.tensor([[[0.0, 1.0]], [[0.5, 0.5]]])  # two examples of shape (1, 2)
    target = torch.tensor([[[1.0, 1.0]], [[0.0, 0.5]]])
    assert r.loss(out, target).item() == pytest.approx((1 + 0 + 0.25 + 0) / 4)
    records = r.per_example(out, target)
    assert records.tolist() == pytest.approx([0.5, 0.125])
    assert r.score(records) == pytest.approx(0.3125) == r.loss(out, target).item()
    c = tasks.get("classification")
    logits, y = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), torch.tensor([0, 0, 0])
    assert c.loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item())
    assert c.per_example(logits, y).tolist() == [True, False, True] and c.score(c.per_example(logits, y)) == 2 / 3


def test_a_task_missing_a_declaration_or_with_a_metric_the_result_cannot_hold_is_refused():
    with tasks.TASKS.scratch():
        with pytest.raises(InitpruneError, match="^task 'half' .* does not declare .*metric"):
            tasks.TASKS.register("half")(type("Half", (tasks.Task,), {}))
        psnr = type("Psnr", (tasks.Reconstruction,), {"metric": "psnr"})
        with pytest.raises(InitpruneError, match="^task 'psnr' .* the result has no field test_psnr, val_psnr"):
            tasks.TASKS.register("psnr")(psnr)
        denoise = tasks.TASKS.register("denoising")(type("Denoising", (tasks.Reconstruction,), {}))
        assert tasks.get("denoising").describe()["task"] == "denoising" and denoise.metric == "reconstruction_error"
    with pytest.raises(InitpruneError, match="^unknown task .denoising.; choose one of: classification, "):
        tasks.get("denoising")


# ---- targets: the input in [0, 1] ----------------------------------------------------------------

def test_digits_target_is_the_image_over_16_while_the_input_stays_standardised():
    data = datasets.load("digits")
    images, _ = datasets._digits_arrays()
    raw = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    # the splits are rows of the one seeded permutation: find each test input's image by its target
    target = data.targets("test")
    assert target.shape == data.test[0].shape and target.min() >= 0 and target.max() <= 1
    val, test, train = datasets._parts(len(raw), 180, 360)
    assert torch.allclose(target, raw[test], atol=1e-6)
    assert torch.allclose(data.targets("train"), raw[train], atol=1e-6)
    x = data.train[0]
    assert abs(float(x.mean())) < 1e-5 and float(x.std()) == pytest.approx(1.0, abs=1e-4)  # still standardised


def test_mnist1d_target_is_min_max_scaled_with_the_training_splits_statistics():
    data = datasets.load("mnist1d")
    train = data.targets("train")
    assert float(train.min()) == pytest.approx(0.0, abs=1e-6) and float(train.max()) == pytest.approx(1.0, abs=1e-6)
    test = data.targets("test")
    assert test.min() >= 0 and test.max() <= 1  # a test value past the training range is clipped
    # affine in the input: the order of values is kept, the scale the same for every split
    x, low, high = data.val[0][:50], data.train[0].min(), data.train[0].max()
    assert torch.allclose(data.target(x), ((x - low) / (high - low)).clamp(0, 1), atol=1e-5)


def test_a_dataset_that_serves_reconstruction_must_say_how_its_inputs_go_to_the_unit_interval():
    x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,))
    with datasets.DATASETS.scratch():
        datasets.dataset("nounit", classes=2, shape=(1, 4, 4), training=Settings(),
                         tasks=datasets.BOTH)(lambda root: datasets.Data((x, y), (x, y), (x, y)))
        with pytest.raises(InitpruneError, match="^dataset 'nounit' serves reconstruction but its loader gives no "
                                                 "Data.unit"):
            datasets.load("nounit")


def test_an_autoencoder_on_a_dataset_that_serves_classification_only_is_a_one_line_error():
    x, y = torch.rand(20, 1, 4, 4), torch.randint(0, 2, (20,))
    with datasets.DATASETS.scratch():
        datasets.dataset("labels", classes=2, shape=(1, 4, 4), training=Settings())(
            lambda root: datasets.Data((x, y), (x, y), (x, y)))
        with pytest.raises(InitpruneError, match="^architecture 'autoencoder' is a reconstruction model but dataset "
                                                 "'labels' serves classification only; pick another"):
            api.run(RunSpec(method="dense", sparsity=0.0, dataset="labels", arch="autoencoder", epochs=1,
                            device="cpu"))


def test_a_reconstruction_trains_with_adam_whatever_its_dataset_declares_for_classifiers():
    """An autoencoder under fashion_mnist's SGD at lr 0.1 trained to worse than the mean image once
    pruned: a reconstruction takes Adam at lr 1e-3, with the dataset's batches and schedule."""
    ae = RunSpec(method="dense", sparsity=0.0, dataset="fashion_mnist", arch="autoencoder", epochs=1, device="cpu")
    mlp = RunSpec(method="dense", sparsity=0.0, dataset="fashion_mnist", arch="lenet300", epochs=1, device="cpu")
    assert {k: ae.training[k] for k in ("optimizer", "lr", "batch_size", "lr_schedule")} == {
        "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "lr_schedule": "cosine"}
    assert (mlp.training["optimizer"], mlp.training["lr"]) == ("sgd", 0.1)
    given = RunSpec(method="dense", sparsity=0.0, dataset="fashion_mnist", arch="autoencoder", epochs=1,
                    device="cpu", training={"optimizer": "sgd", "lr": 0.05})
    assert (given.training["optimizer"], given.training["lr"]) == ("sgd", 0.05)  # what a run asks for wins


# ---- training, pruning and the result through the task -----------------------------------------

def autoencoder_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)  # the input is its own target: already in [0, 1]
    return x, torch.zeros(n, dtype=torch.long)


def test_fit_trains_a_reconstruction_on_the_mse_and_reports_its_metric_lower_is_better():
    torch.manual_seed(0)
    model = models.build("autoencoder", (1, 4, 4), 10, seed=0)
    x, y = autoencoder_data()
    xt, yt = autoencoder_data(32, seed=1)
    with torch.no_grad():
        before = F.mse_loss(model(xt), xt).item()
    result = initprune.fit(model, (x, y), (xt, yt), method="random", sparsity=0.5, epochs=8, seed=0, device="cpu",
                           task="reconstruction", optimizer="adam", lr=0.01, batch_size=16)
    assert (result.task, result.metric, result.higher_is_better) == ("reconstruction", "test_reconstruction_error",
                                                                    False)
    assert result.test_accuracy is None and result.val_accuracy is None and result.test_correct is None
    with torch.no_grad():
        mse = F.mse_loss(model(xt), xt).item()
        per = (model(xt) - xt).square().flatten(1).mean(1)
    assert result.test_reconstruction_error == pytest.approx(mse, rel=1e-5)
    assert result.test_reconstruction_error < before  # training lowers the error: lower is better
    assert result.test_squared_error == pytest.approx(per.tolist(), rel=1e-5)
    assert set(result.history[0]) == {"epoch", "train_loss", "val_reconstruction_error",
                                      "test_reconstruction_error", "sparsity", "seconds"}
    assert result.dead_classes is None and result.dead_outputs is not None


def test_a_reconstruction_model_must_return_its_targets_shape():
    model = models.build("mlp", (1, 4, 4), 10, seed=0)
    x, y = autoencoder_data()
    with pytest.raises(InitpruneError, match=r"^the model returns a tensor of shape \(2, 10\) for inputs of shape "
                                             r"\(2, 1, 4, 4\); a reconstruction needs its target's shape"):
        initprune.fit(model, (x, y), (x, y), method="dense", sparsity=0.0, epochs=1, device="cpu",
                      task="reconstruction")


def reachable_outputs(model, mask) -> torch.Tensor:
    """Which outputs a path of kept weights from the input reaches, by boolean products, layer by layer."""
    layers = [n for n in masks.prunable(model)]
    alive = torch.ones(mask[layers[0]].shape[1], dtype=torch.bool)
    for n in layers:
        alive = (mask[n].float() @ alive.float()) > 0
    return alive


def test_effective_sparsity_and_dead_outputs_count_paths_to_the_reconstruction():
    model = models.build("autoencoder", (1, 8, 8), 10, seed=0)
    data = datasets.load("digits")
    result = initprune.fit(model, data.train, data.test, method="random", sparsity=0.995, epochs=1, seed=0,
                           device="cpu", task="reconstruction", target=data.target, scope="layerwise")
    dead = int((~reachable_outputs(model, result.mask)).sum())
    assert result.dead_outputs == dead > 0 and result.dead_classes is None
    assert result.effective_sparsity > result.sparsity_actual
    # a dead output's weights carry nothing: its reconstruction is the sigmoid of its bias alone, for every input
    with torch.no_grad():
        out = model(data.test[0][:5]).flatten(1)
    idle = ~reachable_outputs(model, result.mask)
    assert torch.allclose(out[:, idle], out[:1, idle].expand(5, -1))


def test_classification_keeps_its_fields_and_counts_dead_outputs_as_dead_classes():
    from toys import toy_data

    model = models.build("mlp", (8,), 3, seed=0)
    result = initprune.fit(model, toy_data(), toy_data(48, seed=1), method="random", sparsity=0.99, epochs=1,
                           device="cpu", batch_size=16)
    assert (result.task, result.metric, result.higher_is_better) == ("classification", "test_accuracy", True)
    assert result.dead_classes == result.dead_outputs and result.test_reconstruction_error is None
    assert set(result.test_correct) <= {"0", "1"} and len(result.test_correct) == 48
    assert result.test_accuracy == result.test_correct.count("1") / 48


def snip_by_hand(model, batch, target, sparsity):
    weights = masks.prunable(model)
    x, _ = batch
    loss = F.mse_loss(model(x), target(x))
    grads = torch.autograd.grad(loss, list(weights.values()))
    return masks.select({n: (w.detach() * g).abs() for (n, w), g in zip(weights.items(), grads)}, sparsity, "global")


def test_snip_scores_with_the_reconstruction_loss_and_grasp_ignores_its_temperature():
    data = datasets.load("digits")
    common = dict(sparsity=0.9, epochs=1, seed=0, device="cpu", task="reconstruction", target=data.target,
                  batch_size=32)
    model = models.build("autoencoder", (1, 8, 8), 10, seed=0)
    first = next(iter(datasets.Batches(*data.train, 32, seed=0).epoch(0)))
    expected = snip_by_hand(models.build("autoencoder", (1, 8, 8), 10, seed=0), first, data.target, 0.9)
    result = initprune.fit(model, data.train, data.test, method="snip", batches=1, **common)
    assert all(torch.equal(result.mask[n], expected[n]) for n in expected)
    grasp = [initprune.fit(models.build("autoencoder", (1, 8, 8), 10, seed=0), data.train, data.test,
                           method="grasp", batches=1, temperature=t, **common).mask for t in (1.0, 200.0)]
    assert all(torch.equal(grasp[0][n], grasp[1][n]) for n in grasp[0])  # a reconstruction's temperature is 1


def test_kstarts_gradient_fitness_accumulates_the_reconstruction_loss_gradient():
    data = datasets.load("digits")
    batches = datasets.Batches(*data.train, 32, seed=0)
    trainer = Trainer(batches, None, None, Settings(), "cpu", 1, task=tasks.get("reconstruction"),
                      target=data.target)
    model = models.build("autoencoder", (1, 8, 8), 10, seed=0)
    twin = models.build("autoencoder", (1, 8, 8), 10, seed=0)
    t = Trainee(model, trainer.settings, masks.dense(model))
    sink = [torch.zeros_like(w) for w in t.prunable]
    trainer.advance(t, 1, grad_sink=sink)
    x, _ = next(iter(batches.epoch(0)))
    grads = torch.autograd.grad(F.mse_loss(twin(x), data.target(x)), list(masks.prunable(twin).values()))
    assert all(torch.allclose(s, g.abs(), atol=1e-8) for s, g in zip(sink, grads))


def test_run_by_name_carries_the_tasks_metric_into_the_result_json_and_the_command_line(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli.main(["run", "--arch", "autoencoder", "--dataset", "digits", "--method", "kstarts", "--k", "2",
                     "--sparsity", "0.9", "--epochs", "2", "--no-tracking", "--out", str(out), "--device", "cpu"])
    assert code == 0
    result = json.loads(out.read_text())
    assert (result["task"], result["metric"], result["higher_is_better"]) == ("reconstruction",
                                                                              "test_reconstruction_error", False)
    assert result["test_accuracy"] is None and result["dead_classes"] is None and result["dead_outputs"] == 0
    assert result["test_reconstruction_error"] == result["history"][-1]["test_reconstruction_error"]
    assert len(result["test_squared_error"]) == 360  # digits' test split
    assert np.mean(result["test_squared_error"]) == pytest.approx(result["test_reconstruction_error"], rel=1e-5)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "0 dead outputs" in last and f"test reconstruction error {result['test_reconstruction_error']:.4f}" in last
    back = initprune.RunResult.from_dict(result)
    assert back.score == result["test_reconstruction_error"]


def test_posttrain_reports_the_dense_models_metric_under_its_name():
    result = api.run(RunSpec(method="posttrain", sparsity=0.9, dataset="digits", arch="autoencoder", epochs=1,
                             options={"finetune_epochs": 1}, device="cpu"))
    assert result.extra["dense_test_reconstruction_error"] == result.history[0]["test_reconstruction_error"]
    assert "dense_test_accuracy" not in result.extra and result.epochs == 2
