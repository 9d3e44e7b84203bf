"""Figure functions on a small hand-made table of runs: the numbers are known."""

import matplotlib
import matplotlib.pyplot as plt
import pytest

from initprune import figures, tracking

matplotlib.use("Agg")


def result(method, sparsity, seed, acc, options=None, variant="{}", extra=None, epochs=3):
    history = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_accuracy": acc,
                "test_accuracy": acc * (e + 1) / epochs, "sparsity": sparsity, "seconds": 0.1} for e in range(epochs)]
    return {"method": method, "dataset": "digits", "arch": "mlp", "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": acc, "val_accuracy": acc, "epochs": epochs,
            "history": history, "layers": {"0.weight": {"numel": 100, "kept": round(100 * (1 - sparsity))}},
            "extra": extra or {}, "options": options or {}, "variant": variant, "run_id": f"{method}{sparsity}{seed}"}


KS = {"candidates": [{"index": 0, "fitness": 0.5, "epochs": 1.0, "final_test_accuracy": 0.7},
                     {"index": 1, "fitness": 0.9, "epochs": 1.0, "final_test_accuracy": 0.8}],
      "winner": 1, "extra_cost_epochs": 1.0, "rank_correlation": 1.0}
DIS = {"sparsity_per_epoch": [0.3, 0.6, 0.9], "start_sparsity": 0.0, "target_reached_epoch": 3,
       "movement_histograms": [{"log10_min": -8.0, "log10_max": 2.0, "counts": [1] * 40}] * 3}


@pytest.fixture
def table():
    rows = [result("dense", 0.0, s, 0.97) for s in (0, 1)]
    for s in (0.9, 0.99):
        for seed in (0, 1):
            rows += [result("random", s, seed, 0.80 - (s > 0.95) * 0.3),
                     result("kstarts", s, seed, 0.82 - (s > 0.95) * 0.3, extra=KS),
                     result("dissipating", s, seed, 0.85 + 0.01 * seed, extra=DIS),
                     result("combined", s, seed, 0.84 + 0.02 * seed, extra={"kstarts": KS, "dissipating": DIS}),
                     result("kstarts", s, seed, 0.7, options={"k": 2}, variant='{"k": 2}', extra=KS)]
    rows += [result("dissipating", 0.99, seed, 0.8 + 0.01 * e, options={"prune_epochs": e},
                    variant=f'{{"prune_epochs": {e}}}', extra=DIS) for e in (1, 5) for seed in (0, 1)]
    return tracking.to_table(rows)


def test_accuracy_vs_sparsity_draws_one_line_per_method_and_dense_as_the_ceiling(table):
    fig = figures.accuracy_vs_sparsity(table)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["dense (0.970)", "random", "kstarts", "dissipating", "combined"]
    assert ax.get_xscale() == "log"


def test_every_figure_renders_from_the_table_and_from_any_one_method_of_it(table):
    for name, make in figures.FIGURES.items():
        assert make(table).axes, name
        for method in table["method"].unique():  # a store holding one method only
            assert make(table[table["method"] == method]).axes, (name, method)
        plt.close("all")


def test_accuracy_table_has_mean_and_spread(table):
    acc = figures.accuracy_table(table)
    row = acc[acc["method"] == "dissipating"].iloc[0]
    assert row["s=0.9"].startswith("0.8550 ± 0.0071 (n=2)")
    assert list(acc["method"]) == ["dense", "random", "kstarts", "dissipating", "combined"]


def test_verdicts_are_paired_differences_by_seed(table):
    rows = {(r["method"], r["rival"]): r for r in figures.verdicts(table)}
    k = rows[("kstarts", "random")]
    assert k["mean_difference"] == pytest.approx(0.02) and k["holds_everywhere"]
    d = rows[("dissipating", "kstarts")]
    # 0.9: 0.855 - 0.82 = 0.035; 0.99: 0.855 - 0.52 = 0.335
    assert d["mean_difference"] == pytest.approx((0.035 + 0.335) / 2) and d["holds_at"] == 2
    c = rows[("combined", "dissipating")]
    # seed 0: 0.84 - 0.85 = -0.01, seed 1: 0.86 - 0.86 = 0, at both sparsities
    assert c["mean_difference"] == pytest.approx(-0.005) and not c["holds_everywhere"]
    assert c["std_over_seeds"] == pytest.approx(0.01 / 2**0.5)
    text = figures.claims_markdown(table)
    assert "## Claim 4" in text and "does not hold" in text and "not the paper's numbers" in text


def test_assemble_writes_figures_tables_and_claims(table, tmp_path):
    written = figures.assemble(table, tmp_path)
    names = {p.name for p in written}
    assert {"accuracy_vs_sparsity.png", "accuracy_vs_sparsity.pdf", "accuracy_table.csv", "accuracy_table.md",
            "claims.md"} <= names
    assert all(p.stat().st_size > 0 for p in written)
    empty = figures.assemble(tracking.to_table([]), tmp_path / "empty")
    assert "No runs to compare yet" in (tmp_path / "empty" / "claims.md").read_text() and empty
