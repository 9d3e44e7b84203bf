"""Figure functions on a small hand-made table of runs: the numbers are known."""

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from initprune.lab import results
from initprune.pruners import PRUNERS
from initprune.report import assembly, claims, figures

matplotlib.use("Agg")


def result(method, sparsity, seed, acc, options=None, variant="{}", extra=None, epochs=3, cell=("digits", "mlp"),
           training=None):
    history = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_accuracy": acc,
                "test_accuracy": acc * (e + 1) / epochs, "sparsity": sparsity, "seconds": 0.1} for e in range(epochs)]
    return {"method": method, "dataset": cell[0], "arch": cell[1], "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": acc, "val_accuracy": acc, "epochs": epochs,
            "effective_sparsity": min(1.0, sparsity * 1.01), "dead_classes": 0, "history": history,
            "cost": {"training": 1 - 0.9 * sparsity, "inference": 1 - sparsity,
                     "training_flops": (1 - 0.9 * sparsity) * epochs * 1e6, "dense_epoch_flops": 1e6},
            "layers": {"0.weight": {"numel": 100, "kept": round(100 * (1 - sparsity))}},
            "extra": extra or {}, "options": options or {}, "variant": variant, "run_id": f"{method}{sparsity}{seed}",
            "training_seconds": 0.1 * epochs * (1 - 0.5 * sparsity),
            **({"training": training} if training is not None else {})}


KS = {"candidates": [{"index": 0, "fitness": 0.5, "epochs": 1.0, "final_test_accuracy": 0.7},
                     {"index": 1, "fitness": 0.9, "epochs": 1.0, "final_test_accuracy": 0.8}],
      "winner": 1, "extra_cost_epochs": 1.0, "rank_correlation": 1.0}
DIS = {"sparsity_per_epoch": [0.3, 0.6, 0.9], "start_sparsity": 0.0, "target_reached_epoch": 3,
       "movement_histograms": [{"log10_min": -8.0, "log10_max": 2.0, "counts": [1] * 40}] * 3,
       "kept_by_quartile": {"weighted": [0.2, 0.1, 0.05, 0.0], "layers": {}}}


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
    return declared(results.to_table(rows))


def declared(table, tested=(0.9, 0.99)):
    """A table whose runs' executions declared ``tested`` (the sparsities that carry the verdict)."""
    return table.assign(tested_sparsities=[list(tested)] * len(table))


def test_accuracy_vs_sparsity_draws_one_line_per_method_and_dense_as_the_ceiling(table):
    fig = figures.accuracy_vs_sparsity(table)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    lines = [lab for lab in labels if not lab.startswith("claim better")]  # the star's legend entry
    assert lines == ["dense", "random", "kstarts", "dissipating (linear)", "combined (linear)"]
    assert ax.get_xscale() == "log"


def test_every_figure_renders_from_the_table_and_from_any_one_method_of_it(table):
    """Every figure draws from the table (the sanity checks excepted: it has none) and, from a
    store of one method, draws or says in one line why it has nothing to draw: never a blank box."""
    for name in figures.every():
        if name in ("ablation_loss", "reconstructions"):  # no sanity checks; a classifier's store
            with pytest.raises(figures.Empty, match="no sanity-check runs|no reconstruction run"):
                figures.figure(name, table)
        else:
            assert figures._drawn(figures.figure(name, table)), name
        for method in table["method"].unique():  # a store holding one method only
            try:
                assert figures._drawn(figures.figure(name, table[table["method"] == method])), (name, method)
            except figures.Empty as empty:
                assert "in this store" in str(empty) and "\n" not in str(empty), (name, method)
        plt.close("all")


def test_a_notebook_that_draws_a_figure_with_nothing_to_draw_gets_one_line(table, capsys):
    assert figures.every()["ablation_loss"](table) is None
    assert capsys.readouterr().out == "ablation_loss: left out, no sanity-check runs in this store\n"


def test_accuracy_table_has_mean_and_spread_and_one_row_per_schedule(table):
    acc = figures.accuracy_table(table)
    row = acc[acc["method"] == "dissipating (linear)"].iloc[0]
    assert row["s=0.9"].startswith("0.8550 ± 0.0071 (n=2)")
    assert list(acc["method"]) == ["dense", "random", "kstarts", "dissipating (linear)", "combined (linear)"]


def test_claims_md_is_written_from_the_declared_verdict(table):
    text = claims.claims_markdown(table)
    assert "## Primary families" in text and "not the paper's numbers" in text
    # two seeds: no primary family can reach p < 0.05: too few seeds, or equivalent, whatever the numbers
    assert "- claim 2: kstarts vs random, digits/mlp, uniform, s=0.9: +2.00 points" in text
    assert "too few seeds" in {r["verdict"] for r in claims.verdicts(table)} <= {None, "too few seeds", "equivalent"}


def schedules_table():
    """Ten seeds (claim 3 at two tested sparsities, a family of 12, needs 10); the cubic schedule
    beats random and K-starts by 5 ± 1 points, linear loses by 5 ± 1."""
    rows = []
    for seed in range(10):
        noise = (-0.01, 0.0, 0.01)[seed % 3]
        for s in (0.9, 0.98):
            rows += [result("random", s, seed, 0.80), result("kstarts", s, seed, 0.80, extra=KS),
                     result("dissipating", s, seed, 0.85 + noise, options={"schedule": "cubic"},
                            variant='{"schedule": "cubic"}', extra=DIS),
                     result("dissipating", s, seed, 0.75 + noise, options={"schedule": "linear"}, extra=DIS)]
    return declared(results.to_table(rows), (0.9, 0.98))


def test_each_schedule_is_judged_apart_never_the_best_picked():
    rows = {(r["method"], r["rival"]): r for r in claims.verdicts(schedules_table())
            if r["kind"] == "primary" and r["role"] == "test"}
    cubic, linear = rows[("dissipating (cubic)", "random")], rows[("dissipating (linear)", "random")]
    assert (cubic["verdict"], linear["verdict"]) == ("better", "worse")
    assert rows[("dissipating (geometric)", "random")]["verdict"] is None  # not run: counts at p = 1
    assert claims.starred(claims.verdicts(schedules_table())) == {
        ("digits", "mlp", "uniform"): {"dissipating (cubic)": {0.9, 0.98}}}


def test_accuracy_figure_stars_where_the_claim_is_better_with_confidence():
    ax = figures.accuracy_vs_sparsity(schedules_table()).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "dissipating (cubic)" in labels and "dissipating (linear)" in labels
    assert any("better than every rival" in lab for lab in labels)
    gold = list(matplotlib.colors.to_rgba("gold"))
    stars = [c for c in ax.collections if len(c.get_offsets()) and len(c.get_facecolor())
             and list(c.get_facecolor()[0]) == pytest.approx(gold)]
    assert sorted(np.round(stars[0].get_offsets()[:, 0], 3).tolist()) == [0.02, 0.1]  # densities of 0.98 and 0.9
    plt.close("all")


def test_a_method_the_figures_never_heard_of_gets_a_style_and_a_verdict(table):
    mine = [result("mine", s, seed, 0.9) for s in (0.9, 0.99) for seed in (0, 1)]
    both = results.to_table(table.to_dict("records") + results.to_table(mine).to_dict("records"))
    ax = figures.accuracy_vs_sparsity(both).axes[0]
    assert "mine" in ax.get_legend_handles_labels()[1]
    declared = {figures.color(m) for m in PRUNERS.names()}
    assert figures.color("mine") not in declared and figures.family("mine") == "baseline"
    assert "mine" in list(figures.accuracy_table(both)["method"])
    plt.close("all")


def test_fitness_vs_final_says_which_run_each_point_is(table):
    ax = figures.every()["kstarts_fitness_vs_final"](table).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert {"s=0.9", "s=0.99", "seed 0", "seed 1", "winner (starred)"} <= set(labels)  # colour, marker, star
    plt.close("all")


def test_assemble_writes_figures_tables_and_claims(table, tmp_path):
    """The one entry point of a table's report (``assembly.assemble``): the figures and tables, then
    the verdict, each file written once."""
    written = assembly.assemble(table, tmp_path)
    assert len(written) == len(set(written))
    names = {p.name for p in written}
    assert {"accuracy_vs_sparsity-digits-mlp-paper.png", "accuracy_vs_sparsity-digits-mlp-paper.pdf",
            "accuracy_table.csv", "accuracy_table.md", "claims.md", "figures.json"} <= names
    assert all(p.stat().st_size > 0 for p in written)
    shown = figures.manifest(tmp_path)
    assert shown["ablation_loss"] == {"figures": [], "left_out": "no sanity-check runs in this store"}
    assert not list(tmp_path.glob("ablation_loss*"))  # never a blank box
    empty = assembly.assemble(results.to_table([]), tmp_path / "empty")
    assert "No runs to compare yet" in (tmp_path / "empty" / "claims.md").read_text() and empty
    assert not list((tmp_path / "empty").glob("*.png"))
    assert {e["left_out"] for e in figures.manifest(tmp_path / "empty").values()} == {
        "no finished runs in this store yet (make demo)"}


def test_a_second_assembly_removes_the_parts_it_does_not_draw_again(table, tmp_path):
    figures.assemble(table, tmp_path)
    assert (tmp_path / "kstarts_candidates-digits-mlp.png").exists()
    figures.assemble(table[table["method"] != "kstarts"], tmp_path)
    assert not (tmp_path / "kstarts_candidates-digits-mlp.png").exists()
    assert figures.manifest(tmp_path)["kstarts_candidates"]["left_out"] == "no kstarts runs in this store"


# ---- runs are grouped by what they were: two cells, two profiles (2 and 4 epochs) ----------------

CELLS = (("digits", "mlp"), ("mnist1d", "cnn1d"))


def mixed_rows(cell, shift):
    """One cell's runs at 2 and at 4 epochs (4 epochs: 0.1 better), with a K-starts k and a
    dissipating E_d variant, analysis-mode candidates and sanity checks against the rewind control."""
    rows = [result("dense", 0.0, s, 0.97 - shift, epochs=4, cell=cell) for s in (0, 1)]
    for epochs in (2, 4):
        gain = 0.1 * (epochs == 4) - shift
        for s in (0.9, 0.99):
            for seed in (0, 1):
                ks = {**KS, "candidates": [{**c, "fitness": c["fitness"] + gain + s} for c in KS["candidates"]]}
                rows += [result("random", s, seed, 0.6 + gain + 0.01 * seed, epochs=epochs, cell=cell),
                         result("kstarts", s, seed, 0.62 + gain, extra=ks, epochs=epochs, cell=cell),
                         result("kstarts", s, seed, 0.5 + gain, options={"k": 2}, variant='{"k": 2}', extra=ks,
                                epochs=epochs, cell=cell),
                         result("dissipating", s, seed, 0.7 + gain, extra=DIS, epochs=epochs, cell=cell),
                         result("dissipating", s, seed, 0.65 + gain, options={"prune_epochs": 1},
                                variant='{"prune_epochs": 1}', extra=DIS, epochs=epochs, cell=cell),
                         result("combined", s, seed, 0.72 + gain, extra={"kstarts": ks, "dissipating": DIS},
                                epochs=epochs, cell=cell)]
                rows += [{**result("kstarts", s, seed, acc + gain, extra=ks, epochs=epochs, cell=cell),
                          "ablation": kind} for kind, acc in (("shuffle", 0.3), ("rewind", 0.45))]
    return rows


@pytest.fixture(scope="module")
def mixed():
    return results.to_table([r for i, cell in enumerate(CELLS) for r in mixed_rows(cell, 0.05 * i)])


def plotted(ax):
    """Every number a panel shows: lines, error bars, scatters, bands, bars and steps."""
    out = []
    for line in ax.lines:
        if not len(line.get_xdata()):
            continue  # a legend's proxy
        out.append(("line", tuple(np.round(np.asarray(line.get_xdata(), float), 6)),
                    tuple(np.round(np.asarray(line.get_ydata(), float), 6))))
    for coll in ax.collections:
        out += [("coll", tuple(np.round(np.asarray(p.vertices, float), 6).ravel())) for p in coll.get_paths()]
        offsets = np.asarray(coll.get_offsets(), float)
        if offsets.size:
            out.append(("offsets", tuple(np.round(offsets, 6).ravel())))
    for patch in ax.patches:
        if isinstance(patch, matplotlib.patches.Rectangle):
            out.append(("bar", round(patch.get_x(), 6), round(patch.get_height(), 6)))
        else:
            out.append(("patch", tuple(np.round(np.asarray(patch.get_path().vertices, float), 6).ravel())))
    return sorted(out, key=repr)


def titled(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


@pytest.mark.parametrize("name", [n for n in figures.every() if n != "reconstructions"])  # classifiers only
def test_a_cells_panel_shows_what_that_cell_alone_and_the_figure_has_one_legend(mixed, name):
    make = figures.every()[name]
    fig = make(mixed)
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend for the figure, each entry once
    assert len(fig.legends) == 1, name
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(texts) == len(set(texts)), (name, texts)
    for ax in fig.axes:  # every panel names its dataset and architecture
        if ax.axison:
            assert any(f"{d} / {a}" in ax.get_title() for d, a in CELLS), (name, ax.get_title())
    together = titled(fig)
    seen = 0
    for dataset, arch in CELLS:
        alone = titled(make(mixed[mixed["dataset"] == dataset]))
        assert alone and all(f"{dataset} / {arch}" in title for title in alone), (name, list(alone))
        for title, ax in alone.items():
            assert title in together, (name, title)
            assert plotted(together[title]) == plotted(ax), (name, title)
            seen += len(plotted(ax))
    assert seen, name
    plt.close("all")


def test_runs_at_other_epochs_are_never_averaged_and_say_how_they_differ(mixed):
    acc = figures.accuracy_table(mixed)
    digits = acc[acc["dataset"] == "digits"].set_index("method")
    assert digits.loc["random [epochs=2]", "s=0.9"] == "0.6050 ± 0.0071 (n=2)"
    assert digits.loc["random [epochs=4]", "s=0.9"] == "0.7050 ± 0.0071 (n=2)"
    assert "random" not in digits.index and digits.loc["dense", "s=0"].endswith("(n=2)")
    ax = titled(figures.learning_curves(mixed))["digits / mlp, s=0.99"]
    lengths = {line.get_label(): len(line.get_xdata()) for line in ax.lines}
    assert lengths["kstarts [epochs=2]"] == 2 and lengths["kstarts [epochs=4]"] == 4
    plt.close("all")


def test_a_training_setting_beyond_the_label_is_named_too():
    rows = [result("random", 0.9, seed, 0.8, cell=("digits", "mlp"), training=t)
            for seed in (0, 1) for t in ({}, {"lr": 0.05})]
    labels = set(figures.accuracy_table(results.to_table(rows))["method"])
    assert labels == {"random [lr=0.1]", "random [lr=0.05]"}  # digits declares lr 0.1


def test_learning_curves_show_every_method_of_a_panel_even_at_another_sparsity():
    rows = [result("random", s, 0, 0.8) for s in (0.9, 0.99)] + [result("kstarts", 0.9, 0, 0.8, extra=KS)]
    ax = figures.learning_curves(results.to_table(rows), sparsity=0.99).axes[0]
    assert {line.get_label() for line in ax.lines} == {"random", "kstarts (s=0.9)"}
    plt.close("all")


def test_kstarts_candidates_keep_the_page_width_and_name_each_group_once(mixed):
    """Two profiles (2 and 4 epochs) and two variants of k, two sparsities, two seeds: 16 runs a
    cell, drawn in groups of one profile and sparsity, each group's sparsity once under it (never
    colliding), each profile a colour of the legend; the figure as wide as the page whatever the
    runs (it was a 4,497 px strip)."""
    fig = figures.every()["kstarts_candidates"](mixed)
    fig.canvas.draw()
    assert fig.get_figwidth() == figures.WIDTH
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        texts = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert texts == ["0.9\n(2)", "0.99\n(2)"] * 4
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        assert len(ax.collections) == 2 * 16  # every run's candidates and its winner
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["candidates [epochs=2, k=2]", "candidates [epochs=2, k=8]", "candidates [epochs=4, k=2]",
                      "candidates [epochs=4, k=8]", "the winner of its run"]
    plt.close("all")


def test_accuracy_figure_has_a_column_per_allocation_regime():
    rows = [result("random", s, seed, 0.8, options={"scope": o}) for s in (0.9, 0.99) for seed in (0, 1)
            for o in ("layerwise", "global")] + [result("dense", 0.0, 0, 0.97)]
    titles = list(titled(figures.accuracy_vs_sparsity(results.to_table(rows))))
    assert len(titles) == 2 and "uniform" in titles[0] and "free" in titles[1]
    plt.close("all")


def test_a_cell_run_in_one_regime_has_no_empty_reversed_panel_in_the_other():
    rows = [result("random", s, 0, 0.8, options={"scope": o}) for s in (0.9, 0.99) for o in ("layerwise", "erk")]
    rows += [result("random", s, 0, 0.7, cell=("mnist1d", "cnn1d")) for s in (0.9, 0.99)]
    fig = figures.accuracy_vs_sparsity(results.to_table(rows))
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 3 and all(ax.xaxis_inverted() for ax in shown)  # dense on the left
    blank = [ax for ax in fig.axes if not ax.axison]
    assert len(blank) == 1 and not blank[0].lines and not blank[0].get_title()
    plt.close("all")


def test_a_table_concatenated_by_hand_keeps_each_runs_label():
    import pandas as pd

    two = [results.to_table([result("random", 0.9, seed, 0.6 + 0.1 * (e == 4), epochs=e) for seed in (0, 1)])
           for e in (2, 4)]
    acc = figures.accuracy_table(pd.concat(two)).set_index("method")  # the same index twice
    assert acc.loc["random [epochs=2]", "s=0.9"] == "0.6000 ± 0.0000 (n=2)"
    assert acc.loc["random [epochs=4]", "s=0.9"] == "0.7000 ± 0.0000 (n=2)"


def test_the_report_names_no_method_and_repeats_no_default():
    """A method's own figures are attached to its registry entry (``figures.contributes(of=...)``)
    and its claim roles declared with it (``Pruner.roles``, ``Pruner.free``); no module of the
    report names a method but in that declaration (``OF``, ``BESIDE``), nor repeats an option's
    default (which would go stale when the declaration changes)."""
    import ast

    from initprune import pruners

    names = set(pruners.PRUNERS.names())
    declared = {o.name for m in names for o in pruners.PRUNERS[m].declared()}
    for path in sorted(Path(figures.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        skip = {id(n.body[0].value) for n in ast.walk(tree)  # docstrings
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        skip |= {id(c) for n in ast.walk(tree) if isinstance(n, ast.Assign)  # the registry's declaration
                 and any(isinstance(t, ast.Tuple) and {getattr(e, "id", None) for e in t.elts} == {"OF", "BESIDE"}
                         for t in n.targets) for c in ast.walk(n.value)}
        literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    and id(n) not in skip}
        assert not literals & names, (path.name, sorted(literals & names))
        private = [f"{n.value.id}.{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                   and isinstance(n.value, ast.Name) and n.value.id in {"F", "figures", "claims", "common", "labels"}
                   and n.attr.startswith("_")]
        assert not private, (path.name, private)  # no module reaches into another's private names
        if path.name == "figures.py":
            defaulted = [n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                         and isinstance(n.func, ast.Attribute) and n.func.attr == "get" and len(n.args) == 2
                         and isinstance(n.args[0], ast.Constant) and n.args[0].value in declared]
            assert not defaulted, defaulted
    every = figures.every()
    for method in names:  # a method's attached figures are the report's, in its entry
        for shown in PRUNERS.attached(method, "figures"):
            assert every[shown.figure.name] is shown and method in shown.figure.of
    assert {f.figure.name for f in PRUNERS.attached("kstarts", "figures")} >= {"kstarts_candidates"}


# ---- figures legible at the page's width, never empty (issues 33, 34) -------------------------------


def test_combined_starts_at_its_kstarts_sparsity_never_dense():
    """Combined prunes to s_k at initialisation (K-starts), then trains its warm-up there: its curve
    of sparsity per epoch starts at s_k at epoch 0, not at 0 (dense)."""
    split = 1 - (1 - 0.9) ** 0.5
    rows = [result("combined", 0.9, seed, 0.8, options={"warmup_epochs": 2},
                   extra={"kstarts": KS, "dissipating": {**DIS, "start_sparsity": split}}) for seed in (0, 1)]
    ax = figures.every()["dissipating_sparsity"](results.to_table(rows)).axes[0]
    [line] = [line for line in ax.lines if line.get_label().startswith("combined")]
    assert list(line.get_xdata()) == [0, 2, 3, 4, 5]
    assert list(line.get_ydata()) == pytest.approx([split, split, 0.3, 0.6, 0.9])
    plt.close("all")


def test_a_run_made_by_hand_never_replaces_a_profiles_group_and_is_listed_with_its_origin():
    """Issue 34: `run --method kstarts` (default k = 8) beside the demo's K-starts at k = 4 replaced
    the demo's in the figures and the table (the group with default options won). The main
    comparison holds the profiles' groups; the one made by hand is listed as such."""
    demo = [result("kstarts", 0.98, seed, 0.70, options={"k": 4}, extra=KS) for seed in (0, 1)]
    demo += [result("random", 0.98, seed, 0.60) for seed in (0, 1)]
    hand = [result("kstarts", 0.98, 0, 0.20, extra=KS)]
    table = results.to_table(demo + hand).assign(origin=["demo"] * len(demo) + ["run"])
    acc = figures.accuracy_table(table).set_index("method")
    assert acc.loc["kstarts", "s=0.98"] == "0.7000 ± 0.0000 (n=2)"
    others = figures.store_groups(table)
    assert others[["group", "origin", "runs", "seeds"]].values.tolist() == [
        ["kstarts [k=8]", "run (by hand)", 1, "0"]]
    handles = dict(zip(*reversed(figures.accuracy_vs_sparsity(table).axes[0].get_legend_handles_labels())))
    assert list(handles["kstarts"].lines[0].get_ydata()) == [0.7]  # the errorbar's line
    plt.close("all")


def test_the_runs_table_says_where_each_point_came_from(tmp_path):
    """A point of a sweep carries its execution's profile; one `run` made has no execution."""
    from initprune import spec
    from initprune.lab import store
    from initprune.result import RunResult

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = store.points(uri)
    parent = runs.start_parent("random", "digits", "mlp", "demo")
    for seed, above in ((0, parent), (1, None)):
        config = spec.RunSpec(method="random", epochs=1, sparsity=0.5, seed=seed)
        run_id = runs.open_point(config, above)
        runs.log(run_id, config, RunResult.from_dict({**result("random", 0.5, seed, 0.5),
                                                                 "config_hash": config.hash()}))
        runs.finish(run_id, None)
    table = results.runs_table(uri)
    assert sorted(zip(table["seed"], table["origin"])) == [(0, "demo"), (1, "run")]


def test_a_label_run_in_both_regimes_is_two_rows_of_the_accuracy_table_never_one():
    rows = [result("random", 0.9, seed, acc, options={"scope": scope}) for seed in (0, 1)
            for scope, acc in (("layerwise", 0.6), ("erk", 0.8))] + [result("dense", 0.0, 0, 0.97)]
    table = results.to_table(rows)
    acc = figures.accuracy_table(table)
    assert acc[["regime", "method", "s=0.9"]].values.tolist() == [
        ["", "dense", ""], ["uniform", "random", "0.6000 ± 0.0000 (n=2)"], ["free", "random", "0.8000 ± 0.0000 (n=2)"]]
    [(cell, page)] = figures.accuracy_cells(table)
    assert cell == ("digits", "mlp") and page[["regime", "method", "n", "s=0.9"]].values.tolist() == [
        ["both", "dense", "1", ""], ["uniform", "random", "2", "0.6000 ± 0.0000"],
        ["free", "random", "2", "0.8000 ± 0.0000"]]


def test_families_come_from_the_registry_a_control_beside_the_method_it_is_built_on():
    """The report draws the paper's methods, the controls and the baselines apart, each with the
    references; a control (here a plugin's, family "control", built on dissipating) comes with
    dissipating under the same schedule only. A colour per label: a method's schedules are shades
    of its hue, never one colour for two labels of a figure."""
    from dataclasses import dataclass
    from typing import ClassVar

    from matplotlib.colors import to_hex

    from initprune.pruners import Dissipating

    @dataclass
    class Control(Dissipating):
        family: ClassVar[str] = "control"
        color: ClassVar[str | None] = "tab:red"
        figures: ClassVar[str | None] = None

    with PRUNERS.scratch():
        PRUNERS.register("gradual_test")(Control)
        rows = [result("dense", 0.0, seed, 0.97) for seed in (0, 1)]
        for s in (0.9, 0.99):
            for seed in (0, 1):
                rows += [result("random", s, seed, 0.6), result("snip", s, seed, 0.7),
                         result("gradual_test", s, seed, 0.65, options={"schedule": "cubic"}, extra=DIS)]
                rows += [result("dissipating", s, seed, 0.8 + 0.01 * i, options={"schedule": sched}, extra=DIS)
                         for i, sched in enumerate(("linear", "geometric", "cubic"))]
        table = results.to_table(rows)
        cut = {fam: part for fam, _, part in figures.families(table)}
        assert list(cut) == ["paper", "control", "baseline"]
        assert sorted(set(cut["control"]["method"])) == ["dense", "dissipating", "gradual_test"]
        assert {o.get("schedule") for o in cut["control"][cut["control"]["method"] == "dissipating"]["options"]} == \
            {"cubic"}
        assert sorted(set(cut["baseline"]["method"])) == ["dense", "snip"]
        names = [slug for slug, *_ in figures.parts("accuracy_vs_sparsity", table)]
        assert names == ["digits-mlp-paper", "digits-mlp-control", "digits-mlp-baseline"]
        fig = figures.figure("accuracy_vs_sparsity", cut["paper"])
        handles, texts = fig.axes[0].get_legend_handles_labels()
        colours = {t: to_hex(h.lines[0].get_color()) if hasattr(h, "lines") else to_hex(h.get_color())
                   for h, t in zip(handles, texts)}
        assert len(set(colours.values())) == len(colours) == 5  # dense, random, three schedules
        shades = [colours[f"dissipating ({s})"] for s in ("linear", "geometric", "cubic")]
        assert shades == figures.shades(figures.color("dissipating"), 3)  # darkest first, declared order
        plt.close("all")


def test_a_figure_of_one_panel_never_averages_a_label_over_two_regimes():
    late = {**DIS, "sparsity_per_epoch": [0.1, 0.2, 0.9]}
    rows = [result("dissipating", 0.9, seed, 0.8, options={"scope": scope}, extra=extra) for seed in (0, 1)
            for scope, extra in (("layerwise", DIS), ("global", late))]
    rows += [result("random", 0.9, seed, acc, options={"scope": scope}) for seed in (0, 1)
             for scope, acc in (("layerwise", 0.5), ("erk", 0.7))]
    rows += [result("kstarts", 0.9, seed, 0.6, options={"k": k}, extra=KS) for seed in (0, 1) for k in (2, 8)]
    table = results.to_table(rows)
    ax = figures.figure("dissipating_sparsity", table).axes[0]
    curves = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    assert curves == {"dissipating (linear), uniform": [0.0, 0.3, 0.6, 0.9],
                      "dissipating (linear), free": [0.0, 0.1, 0.2, 0.9]}
    ax = figures.figure("kstarts_k_and_fitness", table).axes[0]
    assert {line.get_label(): line.get_ydata()[0] for line in ax.lines if "random" in line.get_label()} == {
        "random, uniform (k=1)": 0.5, "random, free (k=1)": 0.7}
    plt.close("all")


def test_the_quartile_and_seconds_figures_are_left_out_in_one_line_where_no_run_has_them(table, tmp_path):
    """A store whose runs report no kept fraction per |θ0| quartile and measured no training
    seconds: both figures are one line on the page, never a file drawn empty."""
    bare = table.assign(training_seconds=None, extra=[{} for _ in range(len(table))])
    shown = {name: figures.draw(name, bare, tmp_path) for name in ("kept_by_quartile", "training_seconds")}
    assert shown == {
        "kept_by_quartile": {"figures": [], "left_out": "no run in this store reports its kept fraction per |θ0| "
                                                        "quartile"},
        "training_seconds": {"figures": [], "left_out": "no run in this store measured its training seconds"}}
    assert not list(tmp_path.iterdir())
    drawn = figures.draw("kept_by_quartile", table, tmp_path)  # the dissipating runs report theirs
    assert [f["file"] for f in drawn["figures"]] == ["kept_by_quartile-digits-mlp-paper.png"]


def test_layer_density_draws_the_records_compare_returns():
    """explore.ipynb draws ``api.compare``'s RunResults: one bar per run and layer, its density."""
    from initprune.result import RunResult

    layers = {"1.weight": {"numel": 100, "kept": 10}, "3.weight": {"numel": 50, "kept": 25}}
    runs = [RunResult.from_dict({"method": m, "sparsity_actual": s, "layers": layers}) for m, s in
            (("random", 0.77), ("kstarts", 0.77))]
    fig = figures.layer_density(runs)
    heights = sorted(round(b.get_height(), 6) for ax in fig.axes for b in ax.patches)
    assert heights == [0.1, 0.1, 0.5, 0.5]
    plt.close(fig)
