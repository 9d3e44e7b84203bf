"""The verdict as the report shows it: the one-screen table, the forest plot, the raw data that
claims.json is recomputed from, and the README's findings block."""

import json
import math
import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from initprune.lab import results
from initprune.lab.root import root
from initprune.report import assembly, claims, findings, forest, raw, report_html

matplotlib.use("Agg")

N = 200  # test examples of the synthetic runs
SCHEDULES = ("linear", "geometric", "cubic")
PRIMARY = {"random": {}, "kstarts": {}, **{f"dissipating|{s}": {"schedule": s} for s in SCHEDULES},
           **{f"combined|{s}": {"schedule": s} for s in SCHEDULES}}
FREE = {"random": {"scope": "erk"}, "kstarts": {"scope": "erk"}, "dissipating": {"scope": "global"},
        "combined": {"kstarts_scope": "erk", "scope": "global"}}


def runs(dataset="fashion_mnist", arch="lenet300", seeds=6, sparsities=(0.95, 0.98), regimes=("uniform", "free"),
         training=None, seed=0):
    """Every primary method in each regime, with per-example correctness drawn at random (seeded):
    each method a little better than the last."""
    rng = np.random.default_rng(seed)
    out = []
    for regime in regimes:
        for i, (key, options) in enumerate(PRIMARY.items()):
            method = key.split("|")[0]
            options = {**options, **(FREE[method] if regime == "free" else {})}
            for s in sparsities:
                for seed_ in range(seeds):
                    bits = rng.random(N) < 0.7 + 0.01 * i
                    out.append({"method": method, "dataset": dataset, "arch": arch, "seed": seed_,
                                "sparsity_target": s, "sparsity_actual": s, "test_accuracy": float(bits.mean()),
                                "val_accuracy": 0.7, "epochs": 3, "history": [], "layers": {}, "extra": {},
                                "options": options, "training": training or {}, "ablation": "none",
                                "run_id": f"{dataset}-{key}-{regime}-{s}-{seed_}",
                                "test_correct": "".join("1" if b else "0" for b in bits), "training_seconds": 2.0,
                                "cost": {"training": 0.2, "inference": 0.05}})
    return out


def table_of(rows, tested):
    table = results.to_table(rows)
    return table.assign(tested_sparsities=[tested.get(d) for d in table["dataset"]])


@pytest.fixture(scope="module")
def verdict_rows():
    rows = runs(sparsities=(0.9, 0.95, 0.98, 0.99)) + runs("digits", "mlp", seeds=4, seed=1)
    return claims.verdicts(table_of(rows, {"fashion_mnist": [0.95, 0.98, 0.99], "digits": [0.95, 0.98]}))


# ---- the one-screen verdict ------------------------------------------------------------------------


def test_the_glance_is_one_row_per_primary_contrast_and_one_column_per_regime_and_tested_sparsity(verdict_rows):
    first, second = claims.glance(verdict_rows)
    assert first["carries"] and (first["cell"]["dataset"], first["cell"]["arch"]) == ("fashion_mnist", "lenet300")
    assert first["columns"] == [(g, s) for g in ("uniform", "free") for s in (0.95, 0.98, 0.99)]
    assert len(first["rows"]) == 16 and all(len(r["cells"]) == 6 for r in first["rows"])
    assert [r["claim"] for r in first["rows"]] == ["2"] + ["3"] * 6 + ["4"] * 9
    assert all(c["sparsity"] == s and c["regime"] == g for r in first["rows"] for c, (g, s) in
               zip(r["cells"], first["columns"]))  # 0.9, not declared, is no column
    assert not second["carries"] and second["cell"]["dataset"] == "digits" and len(second["columns"]) == 4
    text = claims.claims_markdown(rows=verdict_rows)
    glance = text.split("## Verdict at a glance")[1].split("## How to read it")[0]
    table = [line for line in glance.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 16 + 2 + 16 and table[0] == (
        "| claim | contrast | uniform s=0.95 | uniform s=0.98 | uniform s=0.99 | free s=0.95 | free s=0.98 | "
        "free s=0.99 |")
    k = first["rows"][0]["cells"][0]
    assert table[2] == f"| 2 | kstarts vs random | {claims.effect(k)} | " + " | ".join(
        claims.effect(c) for c in first["rows"][0]["cells"][1:]) + " |"
    assert claims.effect(k) == f"{k['verdict']} {k['mean']:+.2f}"
    assert "### Replication: digits/mlp" in glance


def test_the_carrier_is_the_cell_with_the_most_seeds_then_the_smallest_margin():
    rows = runs(seeds=6, regimes=("uniform",)) + runs("digits", "mlp", seeds=7, regimes=("uniform",))
    tested = {"fashion_mnist": [0.95, 0.98], "digits": [0.95, 0.98]}
    assert claims.carrier(claims.verdicts(table_of(rows, tested)))[0] == "digits"
    rows = runs(seeds=6, regimes=("uniform",)) + runs("digits", "mlp", seeds=6, regimes=("uniform",))
    assert claims.carrier(claims.verdicts(table_of(rows, tested)))[0] == "fashion_mnist"  # margin 0.5 against 2


def test_the_verdict_section_of_report_html_colours_each_word_folds_replications_and_escapes(tmp_path):
    nasty = {"note": "<script>alert(1)</script>|**x**"}
    rows = runs(seeds=4, training=nasty) + runs(seeds=3, training={"note": "plain"}) + \
        runs("digits", "mlp", seeds=3, seed=1)  # two settings of one cell: the note tells them apart
    rows = claims.verdicts(table_of(rows, {"fashion_mnist": [0.95, 0.98], "digits": [0.95, 0.98]}))
    (tmp_path / "claims.md").write_text(claims.claims_markdown(rows=rows))
    (tmp_path / "claims.json").write_text(json.dumps(rows))
    fig = forest.forest(rows)
    fig.savefig(tmp_path / "forest.png", dpi=30)
    plt.close(fig)
    page = report_html.write(tmp_path, results.to_table([])).read_text()
    top = re.search(r'<section class="summary" id="summary">(.*?)</section>', page, re.S).group(1)
    first, folded = top.split('<details class="replication">', 1)
    table = re.search(r'<table class="verdict">(.*?)</table>', first, re.S).group(1)
    assert table.count("<tr>") == 1 + 16 and table.count('<td class="word') == 16 * 4
    assert re.findall(r"<th>(.*?)</th>", table)[2:] == ["uniform s=0.95", "uniform s=0.98", "free s=0.95",
                                                        "free s=0.98"]
    words = set(re.findall(r'<td class="word ([a-z-]+)">', table))
    assert words and words <= {"better", "better-within-margin", "equivalent", "worse-within-margin", "worse",
                               "inconclusive", "too-few-seeds", "no-runs"}
    assert "<strong>fashion_mnist/lenet300 [note=&lt;script&gt;alert(1)&lt;/script&gt;|**x**]</strong> carries" in first
    assert "<script>" not in page
    assert "<summary>Replication: fashion_mnist/lenet300 [note=plain]</summary>" in folded
    assert "<summary>Replication: digits/mlp</summary>" in folded and '<figure id="forest">' in top
    assert top.index("<table") < top.index('<figure id="forest">')
    full = page.split("<h2>The verdict in full</h2>")[1]
    assert "Verdict at a glance" not in full and "Summary (primary contrasts, per tested sparsity)" in full
    md = (tmp_path / "claims.md").read_text()
    glance = md.split("## Verdict at a glance")[1].split("## How to read it")[0]
    assert "<script>" not in glance and "\\<script\\>" in glance


# ---- the forest plot -------------------------------------------------------------------------------


def test_the_forest_plot_draws_each_primary_contrast_with_its_interval_and_the_margin(verdict_rows):
    fig = forest.forest(verdict_rows)
    assert [ax.get_title() for ax in fig.axes] == ["uniform regime", "free regime"]
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 16 and labels[0] == "kstarts vs random" and labels[-1] == "combined (cubic) vs random"
    intervals = [line for line in ax.lines if line.get_transform() == ax.transData and len(line.get_xdata()) == 2]
    assert len(intervals) == 16 * 3  # a 95% interval per contrast and tested sparsity
    k = next(r for r in verdict_rows if r["role"] == "test" and r["kind"] == "primary" and r["regime"] == "uniform"
             and r["dataset"] == "fashion_mnist" and r["sparsity"] == 0.95 and r["method"] == "kstarts")
    assert any(list(line.get_xdata()) == pytest.approx([k["low"], k["high"]]) for line in intervals)
    [band] = [p for p in ax.patches]
    assert band.get_label() == "equivalence margin ±0.5 points"
    assert fig.get_size_inches()[0] * 100 <= 1400  # at 100 dpi within the page's 1,400 px
    fig.savefig(__import__("io").BytesIO(), format="png", dpi=100)
    plt.close(fig)


def test_a_forest_with_nothing_to_draw_is_left_out_in_one_line(tmp_path, capsys):
    table = results.to_table(runs(seeds=3, regimes=("uniform",)))  # declares nothing: descriptive only
    assert forest.forest(claims.verdicts(table)) is None
    (tmp_path / "forest.png").write_bytes(b"an earlier store's")
    written = assembly.verdict(table, tmp_path, echo=print)
    assert capsys.readouterr().out.strip() == (
        "left out: forest (no primary contrast at a tested sparsity with paired runs in this store)")
    assert not (tmp_path / "forest.png").exists() and {p.name for p in written} == {
        "claims.md", "claims.json", "runs.csv", "per_example.npz"}


# ---- raw data --------------------------------------------------------------------------------------


KSTARTS = {"candidates": [{"index": 0, "fitness": 0.5, "epochs": 1.0}], "winner": 0, "extra_cost_epochs": 0.0}


def same(a, b, where="") -> None:
    """Two claims.json values alike: floats to 1e-9, everything else exactly."""
    if isinstance(a, float) or isinstance(b, float):
        assert (a is None and b is None) or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9, where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def test_claims_json_is_recomputed_from_runs_csv_and_per_example_npz_alone(tmp_path):
    from initprune import spec
    from initprune.lab import store
    from initprune.result import RunResult

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    lab_runs = store.points(uri)
    parent, _ = lab_runs.start_attempt("random", "digits", "mlp", "p", "cell", "sweep",
                                       tested_sparsities="[0.5, 0.9]")
    rng = np.random.default_rng(3)
    for method, lift in (("random", 0.0), ("kstarts", 0.05), ("snip", 0.02)):
        for s in (0.5, 0.9, 0.95):
            for seed in range(7):
                config = spec.RunSpec(method=method, epochs=1, sparsity=s, seed=seed,
                                      options={"scope": "layerwise"} if method == "snip" else {})
                bits = rng.random(N) < 0.6 + lift
                result = RunResult.from_dict({**runs()[0], "method": method, "dataset": "digits", "arch": "mlp",
                                              "seed": seed, "sparsity_target": s, "sparsity_actual": s,
                                              "test_accuracy": float(bits.mean()), "options": config.options,
                                              "config_hash": config.hash(), "effective_sparsity": s + 0.001,
                                              "test_correct": "".join("1" if b else "0" for b in bits),
                                              "extra": KSTARTS if method == "kstarts" else {}})
                run_id = lab_runs.open_point(config, parent)
                lab_runs.log(run_id, config, result)
                lab_runs.finish(run_id, parent)
    # an autoencoder's cell beside it: squared errors per example, lower is better, dense its scale
    for method, s, lift in (("dense", 0.0, 0.0), ("random", 0.5, 0.0), ("random", 0.9, 0.0),
                            ("kstarts", 0.5, -0.004), ("kstarts", 0.9, -0.004)):
        for seed in range(7):
            config = spec.RunSpec(method=method, dataset="digits", arch="autoencoder", epochs=1, sparsity=s, seed=seed)
            errors = (rng.random(N) * 0.02 + 0.03 + lift).tolist()
            result = RunResult.from_dict({**runs()[0], "method": method, "dataset": "digits", "arch": "autoencoder",
                                          "seed": seed, "sparsity_target": s, "sparsity_actual": s,
                                          "task": "reconstruction", "metric": "test_reconstruction_error",
                                          "test_accuracy": None, "test_correct": None, "options": {},
                                          "test_reconstruction_error": float(np.mean(errors)),
                                          "val_reconstruction_error": float(np.mean(errors)),
                                          "test_squared_error": errors, "config_hash": config.hash(),
                                          "effective_sparsity": s, "extra": KSTARTS if method == "kstarts" else {}})
            run_id = lab_runs.open_point(config, parent)
            lab_runs.log(run_id, config, result)
            lab_runs.finish(run_id, parent)
    table = results.runs_table(uri)
    expected = json.loads(json.dumps(claims.verdicts(table)))
    assert {r["role"] for r in expected} == {"test", "mean", "descriptive"} and any(
        r["verdict"] for r in expected)
    assert any(r["verdict"] and r.get("arch") == "autoencoder" for r in expected), "no judged reconstruction row"
    out = tmp_path / "report"
    assert [p.name for p in raw.write(table, out)] == ["runs.csv", "per_example.npz"]
    del table
    frame = raw.read(out)
    assert len(frame) == 63 + 35 and set(frame["run_id"]) == set(np.load(out / "per_example.npz").files)
    errors = frame[frame["task"] == "reconstruction"]["test_squared_error"]
    assert len(errors) == 35 and all(len(e) == N and isinstance(e[0], float) for e in errors)
    assert {"options", "training", "seed", "test_accuracy", "effective_sparsity", "training_seconds",
            "cost_training", "test_examples", "tested_sparsities", "profile"} <= set(frame.columns)
    same(expected, json.loads(json.dumps(raw.recompute(out))))


def test_the_committed_offline_claims_are_recomputed_from_its_raw_data_alone():
    """results/offline/claims.json, every row and float (to 1e-9), from its runs.csv and
    per_example.npz: the classifiers' correctness and the autoencoder's squared errors."""
    out = root() / "results" / "offline"
    committed = json.loads((out / "claims.json").read_text())
    assert {r["task"] for r in committed} == {"classification", "reconstruction"}
    same(committed, json.loads(json.dumps(raw.recompute(out))))


def test_raw_data_missing_or_cut_is_a_clear_error(tmp_path):
    with pytest.raises(Exception, match=r"no runs.csv in .*: `figures --out .*` writes it beside claims.json"):
        raw.read(tmp_path)
    raw.write(results.to_table(runs(seeds=1, regimes=("uniform",))), tmp_path)
    np.savez_compressed(tmp_path / "per_example.npz")  # emptied
    with pytest.raises(Exception, match=r"has 200 per-example results in runs.csv but none in per_example.npz"):
        raw.read(tmp_path)


# ---- the README's findings -------------------------------------------------------------------------


def test_the_readmes_findings_block_is_what_results_offline_claims_json_gives():
    rows = json.loads((root() / "results" / "offline" / "claims.json").read_text())
    assert findings.current(root() / "README.md") == findings.block(rows)


def test_the_findings_block_of_new_rows_is_the_carriers_glance(verdict_rows, tmp_path):
    text = findings.block(json.loads(json.dumps(verdict_rows)))
    assert text.startswith(findings.BEGIN) and text.endswith(findings.END) and "old analysis" not in text
    [table] = [claims.glance(verdict_rows)[0]]
    assert "\n".join(claims.glance_lines(table)) in text and "Replications, in claims.md: digits/mlp." in text
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{findings.BEGIN}\nold\n{findings.END}\nafter\n")
    findings.update(readme, verdict_rows)
    assert readme.read_text() == f"before\n{text}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(Exception, match="has no findings block: put the lines <!-- findings:begin -->"):
        findings.update(readme, verdict_rows)


def test_a_declared_cell_without_primary_runs_has_no_glance_and_says_why():
    rows = [r for r in runs(seeds=3, regimes=("uniform",)) if r["method"] == "random"]
    rows += [dict(r, method="snip", options={"scope": "layerwise"}, run_id=r["run_id"] + "-snip") for r in rows]
    found = claims.verdicts(table_of(rows, {"fashion_mnist": [0.95, 0.98]}))
    assert any(r["kind"] == "secondary" and r["verdict"] for r in found)  # random against snip is judged
    assert claims.glance(found) == [] and claims.carrier(found) is None and forest.forest(found) is None
    assert "No primary contrast has paired runs at a declared tested sparsity" in claims.claims_markdown(rows=found)
