"""The declared contrasts on synthetic runs tables whose verdicts are known."""

import math

import pytest

from initprune import data
from initprune.errors import InitpruneError
from initprune.lab import results
from initprune.report import claims

N = 100  # test examples of the synthetic runs


def run(method, seed, sparsity, acc, dataset="digits", arch="mlp", options=None, correct=None, ablation="none"):
    return {"method": method, "dataset": dataset, "arch": arch, "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": acc, "val_accuracy": acc, "history": [], "layers": {},
            "extra": {}, "options": options or {}, "variant": "{}", "run_id": f"{method}{seed}{sparsity}{dataset}",
            "ablation": ablation, "test_correct": correct}


def correct(right: int) -> str:
    """The first ``right`` of N examples right: two such strings differ on |a - b| examples."""
    return "1" * right + "0" * (N - right)


def rows_of(rows, **match):
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def pair(method, rival, seeds, gap, sparsities=(0.5, 0.9), logged=True, **where):
    """``method`` ``gap`` examples (of N) above ``rival`` at every seed and sparsity."""
    out = []
    for seed in seeds:
        for s in sparsities:
            base = 60 + seed
            out += [run(method, seed, s, (base + gap) / N, correct=correct(base + gap) if logged else None, **where),
                    run(rival, seed, s, base / N, correct=correct(base) if logged else None, **where)]
    return out


def test_margins_are_declared_with_the_datasets():
    names = ("digits", "mnist1d", "fashion_mnist", "mnist", "mnist5k", "cifar10")
    assert {n: claims.margin(n) for n in names} == {n: data.DATASETS[n].margin for n in names} == {
        "digits": 2.0, "mnist1d": 2.0, "fashion_mnist": 0.5, "mnist": 0.5, "mnist5k": 1.0, "cifar10": 1.0}
    assert claims.margin("a_plugin_dataset") == 2.0


def test_declared_families_and_regimes():
    sizes = {number: len(pairs) for number, _, pairs in claims.primary_families()}
    assert sizes == {"2": 1, "3": 6, "4": 9}
    pairs = claims.primary_families()[2][2]  # claim 4
    assert ("combined (cubic)", "dissipating (cubic)") in pairs and ("combined (cubic)", "dissipating (linear)") \
        not in pairs
    assert claims.rivals() == ["magnitude", "snip", "grasp", "synflow", "posttrain"]
    assert claims.regime("kstarts", {}) == "uniform"  # no scope option yet: layerwise
    assert claims.regime("random", {"scope": "erk"}) == "free" and claims.regime("random", {"scope": "global"}) is None
    assert claims.regime("snip", {}) == "free" and claims.regime("snip", {"scope": "layerwise"}) == "uniform"
    assert claims.regime("combined", {"kstarts_scope": "erk", "scope": "global"}) == "free"
    assert claims.regime("combined", {"scope": "global"}) is None  # its K-starts stage layerwise: neither


def test_a_consistent_gain_is_better_and_the_test_set_term_keeps_its_interval_open():
    table = results.to_table(pair("kstarts", "random", range(10), gap=2))
    [k] = rows_of(claims.verdicts(table), method="kstarts", rival="random")
    # seed i is right on examples 60+i and 61+i only: D_j = 100 x (seeds right on j) / 10 is 10 on 2
    # examples, 20 on 9, 0 on 89: sd_j = sqrt((3800 - 100 x 2^2) / 99), se_test = sd_j / sqrt(100)
    se = math.sqrt(3400 / 99) / 10
    assert k["mean"] == pytest.approx(2.0) and k["se_test"] == pytest.approx(se)
    assert (k["low"], k["high"]) == pytest.approx((2 - 2.2622 * se, 2 + 2.2622 * se), abs=1e-3)
    assert k["p"] == pytest.approx(2 / 1024) and k["verdict"] == "better"  # 90%: [0.93, 3.07], not inside ±2
    assert k["seeds"] == list(range(10)) and k["sparsities"] == [0.5, 0.9]
    line = claims.summary_line(k)
    assert line == "kstarts vs random, digits/mlp, uniform: +2.00 points [0.67, 3.33], adjusted p = 0.002, " \
                   "10 seeds (0-9): better"


def test_without_per_example_correctness_the_test_set_term_is_0_and_the_summary_says_so():
    table = results.to_table(pair("kstarts", "random", range(10), gap=2, logged=False))
    [k] = rows_of(claims.verdicts(table), method="kstarts", rival="random")
    assert k["high"] - k["low"] == pytest.approx(0, abs=1e-9)  # identical differences, no test-set term: width 0
    assert k["with_correctness"] == 0 and "no per-example correctness logged" in claims.summary_line(k)
    table = table.drop(columns="test_correct")  # runs logged before the field existed
    [k] = rows_of(claims.verdicts(table), method="kstarts", rival="random")
    assert k["se_test"] == 0.0 and "no test-set term in the interval" in claims_text(table)


def claims_text(table):
    return claims.claims_markdown(table)


def test_the_same_computation_twice_is_never_better_or_worse():
    rows = []
    for seed in range(12):
        for s in (0.5, 0.9, 0.98):
            acc = 55 + (seed * 7 + int(100 * s)) % 30
            rows += [run(m, seed, s, acc / N, correct=correct(acc)) for m in ("kstarts", "random")]
    found = rows_of(claims.verdicts(results.to_table(rows)), method="kstarts", rival="random")
    assert [r["verdict"] for r in found] == ["equivalent"] and found[0]["p"] == 1.0


def test_one_seed_reads_too_few_seeds_and_no_interval():
    table = results.to_table(pair("kstarts", "random", [0], gap=30))
    [k] = rows_of(claims.verdicts(table), method="kstarts", rival="random")
    assert k["verdict"] == "too few seeds" and math.isnan(k["low"])
    assert "[no interval: 1 seed]" in claims.summary_line(k) and "1 seed (0)" in claims.summary_line(k)


@pytest.mark.parametrize("seeds, word", [(5, "too few seeds"), (6, "better")])
def test_claim_2_needs_6_seeds(seeds, word):
    table = results.to_table(pair("kstarts", "random", range(seeds), gap=10))
    assert rows_of(claims.verdicts(table), method="kstarts", rival="random")[0]["verdict"] == word


def test_a_contrast_uses_the_seeds_both_have_and_the_sparsities_both_have_on_each():
    rows = pair("kstarts", "random", range(8), gap=2)
    rows = [r for r in rows if not (r["method"] == "random" and r["seed"] == 3 and r["sparsity_target"] == 0.9)]
    rows += [run("kstarts", 9, 0.5, 0.9)]  # a seed the rival lacks
    [k] = rows_of(claims.verdicts(results.to_table(rows)), method="kstarts", rival="random")
    assert k["seeds"] == list(range(8)) and k["sparsities"] == [0.5]
    assert [p["sparsity"] for p in k["per_sparsity"]] == [0.5] and "verdict" not in k["per_sparsity"][0]


def test_two_cells_are_judged_apart_never_pooled():
    rows = pair("kstarts", "random", range(10), gap=3) + \
        pair("kstarts", "random", range(10), gap=-4, dataset="mnist1d", arch="cnn1d")
    text = claims.claims_markdown(results.to_table(rows))
    summary = text.split("## Primary families")[0]
    lines = [line for line in summary.splitlines() if line.startswith("- claim 2: kstarts vs random")]
    # gap 3 of 100: D_j = 10 x (seeds right on j only for kstarts): sum D_j^2 = 100 x 82, se_test =
    # sqrt((8200 - 900) / 99) / 10 = 0.859, t(0.975, 9) = 2.2622; gap 4: sqrt((14000 - 1600) / 99) / 10 = 1.119
    assert lines == ["- claim 2: kstarts vs random, digits/mlp, uniform: +3.00 points [1.06, 4.94], adjusted "
                     "p = 0.002, 10 seeds (0-9): better",
                     "- claim 2: kstarts vs random, mnist1d/cnn1d, uniform: -4.00 points [-6.53, -1.47], adjusted "
                     "p = 0.002, 10 seeds (0-9): worse"]
    assert "-0.50" not in summary  # the pooled mean of the two cells appears nowhere


def test_claim_3_families_count_every_declared_schedule_and_regimes_apart():
    rows = []
    for seed in range(8):
        for s in (0.5, 0.9):
            base = 60 + seed
            rows += [run("random", seed, s, base / N, correct=correct(base)),
                     run("kstarts", seed, s, base / N, correct=correct(base)),
                     run("dissipating", seed, s, (base + 5) / N, options={"schedule": "cubic"},
                         correct=correct(base + 5)),
                     # the free regime: random by ERK, dissipating global; the same accuracies
                     run("random", seed, s, base / N, options={"scope": "erk"}, correct=correct(base)),
                     run("dissipating", seed, s, (base + 5) / N, options={"schedule": "cubic", "scope": "global"},
                         correct=correct(base + 5))]
    found = claims.verdicts(results.to_table(rows))
    uniform = rows_of(found, kind="primary", claim="3", regime="uniform")
    assert len(uniform) == 6 and {r["family"] for r in uniform} == {6}
    cubic = rows_of(uniform, method="dissipating (cubic)", rival="random")[0]
    # p = 2/256 on 8 seeds; Holm over 6, two of them at 2/256, four without runs at p = 1: 6 x 2/256 = 0.047
    assert cubic["adjusted_p"] == pytest.approx(6 * 2 / 256) and cubic["verdict"] == "better"
    assert [r["verdict"] for r in rows_of(uniform, method="dissipating (linear)")] == [None, None]
    free = rows_of(found, kind="primary", claim="3", regime="free", method="dissipating (cubic)")
    assert [r["rival"] for r in free if r["verdict"]] == ["random"]  # kstarts has no ERK runs: no free kstarts
    text = claims.claims_markdown(results.to_table(rows))
    assert "dissipating (cubic) vs random, digits/mlp, free: +5.00 points" in text
    assert "no paired runs for dissipating (linear) vs random" in text


def test_secondary_families_are_labelled_and_per_sparsity_rows_carry_no_verdict():
    rows = pair("kstarts", "snip", range(10), gap=2)
    rows = [dict(r, options={"scope": "layerwise"}) if r["method"] == "snip" else r for r in rows]  # uniform
    text = claims.claims_markdown(results.to_table(rows))
    secondary = text.split("## Secondary (labelled so)")[1]
    assert "### Secondary: the paper's methods against snip (digits / mlp, uniform; family of 8)" in secondary
    assert "| digits / mlp | kstarts | snip | uniform |" in secondary  # per sparsity: effect and interval only
    per = [line for line in secondary.splitlines() if line.startswith("| digits / mlp | kstarts | snip |")]
    assert per and not any(w in per[0] for w in ("better", "worse", "equivalent", "inconclusive"))
    found = rows_of(claims.verdicts(results.to_table(rows)), kind="secondary", method="kstarts")
    # a family of 8 (every paper label) with 10 seeds: 8 x 2/1024 = 0.016
    assert found[0]["rival"] == "snip" and found[0]["adjusted_p"] == pytest.approx(8 * 2 / 1024)
    assert found[0]["verdict"] == "better"
    assert claims.verdicts(results.to_table(rows))[0]["kind"] == "primary"


def test_ablated_runs_stay_out_and_bad_correctness_is_a_clear_error():
    rows = pair("kstarts", "random", range(6), gap=10)
    ablated = [dict(r, ablation="shuffle", test_accuracy=0.0, run_id=r["run_id"] + "s") for r in rows]
    [k] = rows_of(claims.verdicts(results.to_table(rows + ablated)), method="kstarts", rival="random")
    assert k["mean"] == pytest.approx(10.0)
    rows[0]["test_correct"] = "01"
    with pytest.raises(InitpruneError, match=r"^runs kstarts00.5digits and random00.5digits \(seed 0, sparsity 0.5\), "
                                             "their test_correct: .* cannot be paired"):
        claims.verdicts(results.to_table(rows))


def test_no_runs_and_only_dense():
    assert claims.verdicts(results.to_table([])) == []
    assert "No runs to compare yet" in claims.claims_markdown(results.to_table([run("dense", 0, 0.0, 0.9)]))


def trained(rows, epochs):
    return [{**r, "epochs": epochs, "run_id": f"{r['run_id']}e{epochs}"} for r in rows]


def test_runs_of_one_cell_trained_for_other_epochs_are_judged_apart_never_mixed():
    six = trained(pair("kstarts", "random", range(10), gap=2), 6)
    two = trained(pair("kstarts", "random", range(10), gap=-30), 2)  # another profile, same cell
    alone = {r["where"]: r for r in rows_of(claims.verdicts(results.to_table(six)), method="kstarts", rival="random")}
    both = rows_of(claims.verdicts(results.to_table(six + two)), method="kstarts", rival="random")
    assert sorted(r["where"] for r in both) == ["epochs=2", "epochs=6"]
    [at6] = [r for r in both if r["where"] == "epochs=6"]
    assert at6["mean"] == pytest.approx(alone[""]["mean"]) == pytest.approx(2.0) and at6["verdict"] == "better"
    assert at6["setting"]["epochs"] == 6
    [at2] = [r for r in both if r["where"] == "epochs=2"]
    assert at2["mean"] == pytest.approx(-30.0) and at2["verdict"] == "worse"
    assert "kstarts vs random, digits/mlp [epochs=6], uniform: +2.00" in claims.claims_markdown(
        results.to_table(six + two))


def test_claim_2_at_equal_cost_pairs_k_starts_with_random_trained_as_long_as_it_spends():
    assert claims.matched_epochs("kstarts", {"k": 4}, 6) == 9  # 6 epochs + 3 candidates' warm-up epochs
    assert claims.matched_epochs("kstarts", {"k": 4, "warmup_epochs": 2}, 6) == 12
    assert claims.matched_epochs("kstarts", {"k": 1}, 6) is None  # no extra spending: no such rival
    opts = {"k": 4}
    kstarts = trained([run("kstarts", s, p, (70 + s) / N, options=opts, correct=correct(70 + s))
                       for s in range(6) for p in (0.5, 0.9)], 6)
    random6 = trained([run("random", s, p, (60 + s) / N, correct=correct(60 + s))
                       for s in range(6) for p in (0.5, 0.9)], 6)
    random9 = trained([run("random", s, p, (75 + s) / N, correct=correct(75 + s))
                       for s in range(6) for p in (0.5, 0.9)], 9)
    rows = claims.verdicts(results.to_table(kstarts + random6 + random9))
    [m] = rows_of(rows, method="kstarts", rival="random at K-starts' cost (9 epochs)")
    assert m["kind"] == "secondary" and m["family"] == 1 and m["where"] == "epochs=6"
    assert m["mean"] == pytest.approx(-5.0) and m["verdict"] == "worse" and m["seeds"] == list(range(6))
    [plain] = rows_of(rows, method="kstarts", rival="random", where="epochs=6")
    assert plain["mean"] == pytest.approx(10.0)  # the 6-epoch rival, untouched by the 9-epoch runs
    without = claims.verdicts(results.to_table(kstarts + random6))
    assert not rows_of(without, rival="random at K-starts' cost (9 epochs)")
