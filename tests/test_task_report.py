"""The report reads each run's metric through its task: on an autoencoder's cell the figures draw
the test reconstruction error (lower is better, said on the axis), the tables show it, and the
claims judge it in percent of the cell's dense model's test error, lower error reading better."""

import math

import matplotlib
import pytest

from initprune.lab import results
from initprune.report import claims, figures, metric

matplotlib.use("Agg")

N = 100  # test examples of the synthetic runs
DENSE = 0.02  # the dense autoencoder's test error, every example


KS = {"candidates": [{"index": 0, "fitness": 0.5, "epochs": 1.0}, {"index": 1, "fitness": 0.9, "epochs": 1.0}],
      "winner": 1, "extra_cost_epochs": 1.0}


def recon(method, seed, sparsity, errors, epochs=3):
    """A reconstruction run of the autoencoder on digits whose per-example squared errors are ``errors``."""
    error = sum(errors) / len(errors)
    history = [{"epoch": e + 1, "train_loss": 0.1, "val_reconstruction_error": error,
                "test_reconstruction_error": error * (epochs - e), "sparsity": sparsity, "seconds": 0.1}
               for e in range(epochs)]
    return {"method": method, "dataset": "digits", "arch": "autoencoder", "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": None, "val_accuracy": None, "epochs": epochs,
            "history": history, "layers": {}, "extra": KS if method == "kstarts" else {}, "options": {},
            "variant": "{}", "run_id": f"{method}{seed}{sparsity}", "ablation": "none", "task": "reconstruction",
            "metric": "test_reconstruction_error", "higher_is_better": False, "test_reconstruction_error": error,
            "val_reconstruction_error": error, "test_squared_error": list(errors), "effective_sparsity": sparsity,
            "cost": {"training": 1.0, "inference": 1.0}}


def cell(gap: float, seeds=range(10)):
    """Dense at ``DENSE``; random's error 0.03 + 0.001 x seed on every example; K-starts' lower by
    2 ``gap`` on the first half of the examples (lower by ``gap`` on the mean), at s = 0.9."""
    rows = [recon("dense", seed, 0.0, [DENSE] * N) for seed in seeds]
    for seed in seeds:
        base = 0.03 + 0.001 * seed
        rows += [recon("random", seed, 0.9, [base] * N),
                 recon("kstarts", seed, 0.9, [base - 2 * gap] * (N // 2) + [base] * (N // 2))]
    table = results.to_table(rows)
    return table.assign(tested_sparsities=[[0.9]] * len(table))


def test_lower_reconstruction_error_reads_better_in_percent_of_the_dense_error():
    rows = claims.verdicts(cell(gap=0.001))
    [k] = [r for r in rows if (r["method"], r["rival"], r["role"]) == ("kstarts", "random", "test")]
    # d_i = 100 (e_random - e_kstarts) / e_dense = 100 x 0.001 / 0.02 = 5 at every seed; the test-set
    # term: D_j = 100 x 0.002 / 0.02 = 10 on half the examples, 0 on the other: sd_j = sqrt(2500 / 99)
    se = math.sqrt(2500 / 99) / math.sqrt(N)
    assert k["mean"] == pytest.approx(5.0) and k["se_test"] == pytest.approx(se)
    assert k["margin"] == 2.0 and k["task"] == "reconstruction" and k["dense_error"] == pytest.approx(DENSE)
    assert k["p"] == pytest.approx(2 / 1024) and k["verdict"] == "better"
    assert "+5.00 % of dense error" in claims.summary_line(k)
    [worse] = [r for r in claims.verdicts(cell(gap=-0.001)) if (r["method"], r["rival"], r["role"]) ==
               ("kstarts", "random", "test")]
    assert worse["mean"] == pytest.approx(-5.0) and worse["verdict"] == "worse"  # higher error: worse


def test_a_reconstruction_cell_without_dense_runs_has_no_verdict_rather_than_a_wrong_scale():
    table = cell(gap=0.001)
    assert claims.verdicts(table[table["method"] != "dense"]) == []


def test_the_figures_draw_reconstruction_error_and_say_lower_is_better(capsys):
    table = cell(gap=0.001)
    fig = figures.accuracy_vs_sparsity(table)
    ax = fig.axes[0]
    assert "lower is better" in ax.get_ylabel() and "reconstruction error" in ax.get_ylabel()
    [dense] = [line for line in ax.lines if line.get_label() == "dense"]
    assert dense.get_ydata()[0] == pytest.approx(DENSE)
    drawn = {c.get_label(): c for c in ax.containers}
    assert drawn["kstarts"].lines[0].get_ydata()[0] == pytest.approx(table[table["method"] == "kstarts"]
                                                                     ["test_reconstruction_error"].mean())
    curves = figures.learning_curves(table)
    assert "lower is better" in curves.axes[0].get_ylabel()
    assert "accuracy" not in figures.accuracy_markdown(table).split("\n")[0]
    frame = dict(figures.accuracy_cells(table))[("digits", "autoencoder")]
    assert frame.loc[frame["method"] == "dense", "s=0"].iloc[0].startswith("0.0200")


def test_assemble_keeps_reconstruction_runs(tmp_path, capsys):
    table = cell(gap=0.001)
    figures.assemble(table, tmp_path)
    assert "NaN" not in capsys.readouterr().out  # reconstruction runs are not left out as diverged
    shown = figures.manifest(tmp_path)["accuracy_vs_sparsity"]
    assert shown["figures"] and "autoencoder" in shown["figures"][0]["title"]


def test_metric_reads_each_rows_task_and_a_table_from_before_tasks_is_classification():
    table = cell(gap=0.001)
    scored = metric.scored(table)
    assert list(scored["score"]) == pytest.approx(list(table["test_reconstruction_error"]))
    old = results.to_table([{"method": "dense", "dataset": "digits", "arch": "mlp", "seed": 0, "sparsity": 0.0,
                             "sparsity_actual": 0.0, "test_accuracy": 0.9, "val_accuracy": 0.9, "epochs": 1}])
    assert list(metric.scored(old.drop(columns=["task"]))["score"]) == [0.9]
    assert metric.axis("classification") == "test accuracy (higher is better)"


def kept(level: float) -> dict:
    """Kept test images: 8 digits-sized targets and the outputs ``level`` away from them."""
    import numpy as np

    targets = np.linspace(0, 1, 8 * 64).reshape(8, 64).astype(np.float16)
    return {"targets": targets, "outputs": np.clip(targets + level, 0, 1).astype(np.float16)}


def test_the_reconstruction_figure_draws_dense_random_and_each_paper_method_at_the_highest_tested_sparsity():
    table = cell(gap=0.001)
    table = table.assign(reconstructions=[kept(0.01 * i) for i in range(len(table))])
    fig = figures.figure("reconstructions", table)
    rows = {ax.get_ylabel().split("\n")[0] for ax in fig.axes if ax.get_ylabel()}
    assert rows == {"input", "dense", "random", "kstarts"}
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 4 * 8 and images[0].get_array().shape == (8, 8)  # a 64-vector drawn 8 x 8
    assert "s=0.9 (highest tested sparsity)" in fig.texts[0].get_text() or \
        any("highest tested" in t.get_text() for t in fig.texts)


def test_the_reconstruction_figure_is_left_out_in_one_line_where_no_run_kept_images(tmp_path):
    shown = figures.draw("reconstructions", cell(gap=0.001), tmp_path)
    assert shown["figures"] == [] and "kept its test images" in shown["left_out"]


def test_a_reconstruction_run_keeps_its_test_images_in_the_store_and_the_runs_table_reads_them(tmp_path):
    from initprune import samples, spec
    from initprune.lab import grid

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = spec.RunSpec(method="random", dataset="digits", arch="autoencoder", epochs=1, sparsity=0.5, seed=0)
    from initprune import api

    result = api.run(config, record=lambda report: grid.log_run(config, report, uri))
    table = results.runs_table(uri)
    [images] = list(table["reconstructions"])
    assert images["targets"].shape == images["outputs"].shape == (samples.COUNT, 1, 8, 8)  # digits: 1 x 8 x 8
    assert (images["outputs"] == result.reconstructions["outputs"]).all()
    assert "reconstructions" not in result.to_dict()  # the result JSON is unchanged
