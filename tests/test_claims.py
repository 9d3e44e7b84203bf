"""The declared contrasts on synthetic runs tables whose verdicts are known: per tested sparsity,
Holm within each family, descriptive rows beside them, and the one-screen verdict."""

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


def declared(rows, tested=(0.5, 0.9)):
    """The runs table of ``rows``, every run's execution having declared ``tested`` (as
    ``results.runs_table`` reads it from each point's execution run)."""
    table = results.to_table(rows)
    return table.assign(tested_sparsities=[list(tested)] * len(table))


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


def test_a_consistent_gain_is_better_at_each_tested_sparsity_with_the_test_set_term():
    rows = [r for r in claims.verdicts(declared(pair("kstarts", "random", range(10), gap=2)))
            if (r["method"], r["rival"]) == ("kstarts", "random")]
    tests = rows_of(rows, role="test")
    assert [r["sparsity"] for r in tests] == [0.5, 0.9] and {r["family"] for r in tests} == {2}
    k = tests[0]
    # seed i is right on examples 60+i and 61+i only: D_j = 100 x (seeds right on j) / 10 is 10 on 2
    # examples, 20 on 9, 0 on 89: sd_j = sqrt((3800 - 100 x 2^2) / 99), se_test = sd_j / sqrt(100)
    se = math.sqrt(3400 / 99) / 10
    assert k["mean"] == pytest.approx(2.0) and k["se_test"] == pytest.approx(se) and k["se_seed"] == pytest.approx(0)
    assert (k["low"], k["high"]) == pytest.approx((2 - 2.2622 * se, 2 + 2.2622 * se), abs=1e-3)
    # p = 2/1024 at each sparsity; Holm over the family of 2 (1 contrast x 2 tested sparsities)
    assert k["p"] == pytest.approx(2 / 1024) and k["adjusted_p"] == pytest.approx(4 / 1024)
    assert k["verdict"] == "better" and k["n"] == 10 and k["zeros"] == 0  # 90%: [0.93, 3.07], not inside ±2
    assert k["family_id"] == "digits/mlp, uniform, claim 2"
    assert claims.summary_line(k) == ("kstarts vs random, digits/mlp, uniform, s=0.5: +2.00 points [0.67, 3.33], "
                                      "adjusted p = 0.004 (family of 2), 10 seeds (0-9): better")
    [mean] = rows_of(rows, role="mean")
    assert mean["verdict"] is None and mean["sparsities"] == [0.5, 0.9] and mean["mean"] == pytest.approx(2.0)


def test_without_per_example_correctness_the_test_set_term_is_0_and_the_summary_says_so():
    table = declared(pair("kstarts", "random", range(10), gap=2, logged=False))
    k = rows_of(claims.verdicts(table), method="kstarts", rival="random", role="test")[0]
    assert k["high"] - k["low"] == pytest.approx(0, abs=1e-9)  # identical differences, no test-set term: width 0
    assert k["with_correctness"] == 0 and "no per-example correctness logged" in claims.summary_line(k)
    table = table.drop(columns="test_correct")  # runs logged before the field existed
    k = rows_of(claims.verdicts(table), method="kstarts", rival="random", role="test")[0]
    assert k["se_test"] == 0.0 and "no test-set term in the interval" in claims.claims_markdown(table)


def test_the_same_computation_twice_is_never_better_or_worse():
    rows = []
    for seed in range(12):
        for s in (0.5, 0.9, 0.98):
            acc = 55 + (seed * 7 + int(100 * s)) % 30
            rows += [run(m, seed, s, acc / N, correct=correct(acc)) for m in ("kstarts", "random")]
    found = rows_of(claims.verdicts(declared(rows, (0.5, 0.9, 0.98))), method="kstarts", rival="random", role="test")
    assert [r["verdict"] for r in found] == ["equivalent"] * 3 and {r["p"] for r in found} == {1.0}


def test_one_seed_reads_too_few_seeds_and_no_interval():
    k = rows_of(claims.verdicts(declared(pair("kstarts", "random", [0], gap=30))), method="kstarts", role="test")[0]
    assert k["verdict"] == "too few seeds" and math.isnan(k["low"])
    assert "[no interval: 1 seed]" in claims.summary_line(k) and "1 seed (0)" in claims.summary_line(k)


@pytest.mark.parametrize("seeds, word", [(6, "too few seeds"), (7, "better")])
def test_claim_2_over_two_tested_sparsities_needs_7_seeds(seeds, word):
    # a family of 2: 2 x 2^(1 - 6) = 0.0625 cannot reach 0.05; 2 x 2^(1 - 7) = 0.031 can
    table = declared(pair("kstarts", "random", range(seeds), gap=10))
    assert {r["verdict"] for r in rows_of(claims.verdicts(table), method="kstarts", role="test")} == {word}


def test_too_few_seeds_counts_only_the_seeds_that_differ():
    rows = pair("kstarts", "random", range(7), gap=10, sparsities=(0.5,))
    for r in rows:  # seeds 0 and 1: K-starts kept candidate 0, random's own mask: the same run
        if r["method"] == "kstarts" and r["seed"] < 2:
            r.update(test_accuracy=(60 + r["seed"]) / N, test_correct=correct(60 + r["seed"]))
    [k] = rows_of(claims.verdicts(declared(rows, (0.5,))), method="kstarts", role="test")
    # 7 seeds, 2 of them 0: the smallest p is 2^(1 - 5) = 0.0625 > 0.05, though 7 seeds of a
    # family of 1 would reach 0.016
    assert (k["n"], k["zeros"], k["p_min"]) == (7, 2, pytest.approx(1 / 16)) and k["verdict"] == "too few seeds"
    assert "7 seeds (0-6, 2 of them 0): too few seeds" in claims.summary_line(k)


def test_holm_families_count_every_declared_contrast_times_the_tested_sparsities():
    rows = []
    for seed in range(12):
        for s in (0.5, 0.9, 0.95):
            base = 60 + seed
            rows += [run("random", seed, s, base / N, correct=correct(base)),
                     run("kstarts", seed, s, base / N, correct=correct(base)),
                     run("dissipating", seed, s, (base + 5) / N, options={"schedule": "cubic"},
                         correct=correct(base + 5)),
                     run("combined", seed, s, (base + 6) / N, options={"schedule": "cubic"},
                         correct=correct(base + 6)),
                     run("snip", seed, s, (base + 1) / N, options={"scope": "layerwise"}, correct=correct(base + 1))]
    found = claims.verdicts(declared(rows, (0.5, 0.9, 0.95)))
    tests = rows_of(found, role="test", regime="uniform")
    sizes = {(r["kind"], r["family_id"]): r["family"] for r in tests}
    assert {k[1]: v for k, v in sizes.items() if k[0] == "primary"} == {
        "digits/mlp, uniform, claim 2": 3, "digits/mlp, uniform, claim 3": 18, "digits/mlp, uniform, claim 4": 27}
    # each secondary family: one rival against one method variant, over the 3 tested sparsities
    secondary = {k[1]: v for k, v in sizes.items() if k[0] == "secondary"}
    assert secondary == {f"digits/mlp, uniform, {m} vs snip": 3 for m in
                         ("random", "kstarts", "dissipating (cubic)", "combined (cubic)")}
    assert all(len(rows_of(tests, family_id=f)) == n for (_, f), n in sizes.items())
    cubic = rows_of(tests, method="dissipating (cubic)", rival="random", sparsity=0.9)[0]
    # p = 2/4096 on 12 seeds; Holm over 18, six of them at 2/4096 (the smallest, tied): 18 x 2/4096 = 0.0088
    assert cubic["adjusted_p"] == pytest.approx(18 * 2 / 4096) and cubic["verdict"] == "better"
    [snip] = rows_of(tests, method="dissipating (cubic)", rival="snip", sparsity=0.5)
    assert snip["adjusted_p"] == pytest.approx(3 * 2 / 4096) and snip["verdict"] == "better"
    text = claims.claims_markdown(rows=found)
    assert "### Claim 3: dissipating gradients preserves accuracy best (digits / mlp, uniform; family of 18: " \
           "6 contrasts x 3 tested sparsities)" in text
    assert "no paired runs for dissipating (linear) vs random, dissipating (linear) vs kstarts" in text
    assert "### Secondary: dissipating (cubic) against snip (digits / mlp, uniform; family of 3)" in text


def test_a_reversal_across_sparsities_is_two_verdicts_never_pooled():
    rows = pair("dissipating", "random", range(10), gap=-3, sparsities=(0.5,)) + \
        pair("dissipating", "random", range(10), gap=4, sparsities=(0.9,))
    rows = [dict(r, options={"schedule": "linear"}) if r["method"] == "dissipating" else r for r in rows]
    found = rows_of(claims.verdicts(declared(rows)), method="dissipating (linear)", rival="random")
    assert [(r["sparsity"], r["verdict"]) for r in rows_of(found, role="test")] == [(0.5, "worse"), (0.9, "better")]
    [mean] = rows_of(found, role="mean")  # the pooled mean, shown as such and judged never
    assert mean["mean"] == pytest.approx(0.5) and mean["verdict"] is None and mean["p"] is None


def test_a_cell_that_declares_no_tested_sparsities_is_descriptive_only_and_says_so():
    table = results.to_table(pair("kstarts", "random", range(10), gap=2))  # run by hand: no declaration
    found = claims.verdicts(table)
    assert {r["role"] for r in found} == {"mean", "descriptive"} and {r["verdict"] for r in found} == {None}
    assert [r["sparsity"] for r in rows_of(found, role="descriptive")] == [0.5, 0.9]
    text = claims.claims_markdown(table)
    assert "No cell declares tested sparsities" in text and "Descriptive only (no tested sparsities declared, no " \
        "verdict word): digits/mlp, uniform." in text
    assert not any(w in text.split("## How to read it")[1] for w in ("better", "worse")) or \
        "better" not in text.split("## Mean over")[1]
    assert claims.glance(found) == [] and claims.starred(found) == {}


def test_an_untested_sparsity_is_a_descriptive_row_and_the_mean_is_over_the_tested_ones():
    rows = pair("kstarts", "random", range(10), gap=2, sparsities=(0.5, 0.9)) + \
        pair("kstarts", "random", range(10), gap=20, sparsities=(0.8,))
    found = rows_of(claims.verdicts(declared(rows)), method="kstarts", rival="random")
    [described] = rows_of(found, role="descriptive")
    assert described["sparsity"] == 0.8 and described["verdict"] is None and described["mean"] == pytest.approx(20)
    [mean] = rows_of(found, role="mean")
    assert mean["sparsities"] == [0.5, 0.9] and mean["mean"] == pytest.approx(2.0)  # 0.8 left out
    text = claims.claims_markdown(declared(rows))
    assert "| digits / mlp | uniform | kstarts vs random | +20.00 [" in text


def test_a_spread_too_wide_for_the_seeds_is_marked_underpowered():
    rows = []
    for seed in range(12):
        for s in (0.95, 0.98, 0.99):
            d = 1.0 + (1.5 if seed % 2 else -1.5)  # sd about 1.57 points, above the 0.62 that 12 seeds can resolve
            rows += [run("combined", seed, s, 0.8 + d / 100, options={"schedule": "cubic"}, dataset="fashion_mnist",
                         arch="lenet300"),
                     run("random", seed, s, 0.8, dataset="fashion_mnist", arch="lenet300")]
    found = rows_of(claims.verdicts(declared(rows, (0.95, 0.98, 0.99))), method="combined (cubic)", rival="random",
                    role="test")
    assert {r["family"] for r in found} == {27} and found[0]["power_sd"] == pytest.approx(0.62, abs=0.05)
    assert {r["underpowered"] for r in found} == {f"underpowered (sd = {found[0]['sd']:.2f})"}
    assert found[0]["sd"] == pytest.approx(1.5 * math.sqrt(12 / 11))
    assert "; underpowered (sd = 1.57)" in claims.summary_line(found[0])


def test_two_cells_are_judged_apart_never_pooled():
    rows = pair("kstarts", "random", range(10), gap=3) + \
        pair("kstarts", "random", range(10), gap=-4, dataset="mnist1d", arch="cnn1d")
    text = claims.claims_markdown(declared(rows))
    summary = text.split("## Primary families")[0]
    lines = [line for line in summary.splitlines() if line.startswith("- claim 2: kstarts vs random")
             and "s=0.5" in line]
    # gap 3 of 100: D_j = 10 x (seeds right on j only for kstarts): sum D_j^2 = 100 x 82, se_test =
    # sqrt((8200 - 900) / 99) / 10 = 0.859, t(0.975, 9) = 2.2622; gap 4: sqrt((14000 - 1600) / 99) / 10 = 1.119
    assert lines == ["- claim 2: kstarts vs random, digits/mlp, uniform, s=0.5: +3.00 points [1.06, 4.94], adjusted "
                     "p = 0.004 (family of 2), 10 seeds (0-9): better",
                     "- claim 2: kstarts vs random, mnist1d/cnn1d, uniform, s=0.5: -4.00 points [-6.53, -1.47], "
                     "adjusted p = 0.004 (family of 2), 10 seeds (0-9): worse"]
    assert "-0.50" not in summary  # the pooled mean of the two cells appears nowhere


def test_ablated_runs_stay_out_and_bad_correctness_is_a_clear_error():
    rows = pair("kstarts", "random", range(6), gap=10)
    ablated = [dict(r, ablation="shuffle", test_accuracy=0.0, run_id=r["run_id"] + "s") for r in rows]
    k = rows_of(claims.verdicts(declared(rows + ablated)), method="kstarts", rival="random", role="test")[0]
    assert k["mean"] == pytest.approx(10.0)
    rows[0]["test_correct"] = "01"
    with pytest.raises(InitpruneError, match=r"^runs kstarts00.5digits and random00.5digits \(seed 0, sparsity 0.5\), "
                                             "their test_correct: .* cannot be paired"):
        claims.verdicts(declared(rows))


def test_no_runs_and_only_dense():
    assert claims.verdicts(results.to_table([])) == []
    assert "No runs to compare yet" in claims.claims_markdown(results.to_table([run("dense", 0, 0.0, 0.9)]))


def test_the_declarations_of_a_cells_executions_are_united():
    rows = pair("kstarts", "random", range(8), gap=5, sparsities=(0.5, 0.9))
    table = results.to_table(rows).assign(tested_sparsities=[[0.5] if r["sparsity_target"] == 0.5 else [0.9]
                                                             if r["method"] == "kstarts" else None for r in rows])
    tests = rows_of(claims.verdicts(table), role="test", method="kstarts")
    assert [r["sparsity"] for r in tests] == [0.5, 0.9] and tests[0]["tested"] == [0.5, 0.9]


def trained(rows, epochs):
    return [{**r, "epochs": epochs, "run_id": f"{r['run_id']}e{epochs}"} for r in rows]


def test_runs_of_one_cell_trained_for_other_epochs_are_judged_apart_never_mixed():
    six = trained(pair("kstarts", "random", range(10), gap=2), 6)
    two = trained(pair("kstarts", "random", range(10), gap=-30), 2)  # another profile, same cell, no tests declared
    table = results.to_table(six + two)
    table = table.assign(tested_sparsities=[[0.5, 0.9] if e == 6 else None for e in table["epochs"]])
    alone = rows_of(claims.verdicts(declared(six)), method="kstarts", rival="random", role="test")
    both = rows_of(claims.verdicts(table), method="kstarts", rival="random")
    assert sorted({r["where"] for r in both}) == ["epochs=2", "epochs=6"]
    at6 = rows_of(both, where="epochs=6", role="test")
    assert [r["mean"] for r in at6] == pytest.approx([r["mean"] for r in alone])
    assert [r["mean"] for r in at6] == pytest.approx([2.0, 2.0])
    assert {r["verdict"] for r in at6} == {"better"} and at6[0]["setting"]["epochs"] == 6
    at2 = rows_of(both, where="epochs=2")
    assert {r["role"] for r in at2} == {"mean", "descriptive"} and {r["verdict"] for r in at2} == {None}
    assert rows_of(at2, role="mean")[0]["mean"] == pytest.approx(-30.0)
    text = claims.claims_markdown(table)
    assert "kstarts vs random, digits/mlp [epochs=6], uniform, s=0.5: +2.00" in text
    assert "Descriptive only (no tested sparsities declared, no verdict word): digits/mlp [epochs=2], uniform." in text


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
    rows = claims.verdicts(declared(kstarts + random6 + random9, (0.5,)))
    [m] = rows_of(rows, method="kstarts", rival="random at K-starts' cost (9 epochs)", role="test")
    assert m["kind"] == "secondary" and m["family"] == 1 and m["where"] == "epochs=6"
    assert m["mean"] == pytest.approx(-5.0) and m["verdict"] == "worse" and m["seeds"] == list(range(6))
    [plain] = rows_of(rows, method="kstarts", rival="random", where="epochs=6", role="test")
    assert plain["mean"] == pytest.approx(10.0)  # the 6-epoch rival, untouched by the 9-epoch runs
    without = claims.verdicts(declared(kstarts + random6, (0.5,)))
    assert not rows_of(without, rival="random at K-starts' cost (9 epochs)")


# ---- where the tested sparsities come from: the profile, the execution's run, the runs table -----


def profile(tmp_path, tested_default, tested_entry=None):
    path = tmp_path / "p.yaml"
    entry = "" if tested_entry is None else f", tested_sparsities: {tested_entry}"
    path.write_text(f"""
defaults: {{dataset: digits, arch: mlp, epochs: 1, seeds: [0], sparsities: [0.5, 0.9]{tested_default}}}
executions:
  - {{notebook: random}}
  - {{notebook: kstarts, sparsities: [0.8]{entry}}}
""")
    return str(path)


def test_a_profile_declares_tested_sparsities_outside_the_cells_identity(tmp_path):
    from initprune.lab import profiles

    plain = profiles.load_profile(profile(tmp_path, ""))
    found = profiles.load_profile(profile(tmp_path, ", tested_sparsities: [0.9, 0.5]", "[]"))
    assert [ex.tested for ex in plain] == [None, None]
    assert [ex.tested for ex in found] == [(0.5, 0.9), ()]  # sorted; [] declares the execution descriptive
    assert [ex.cell for ex in found] == [ex.cell for ex in plain]  # the same grid cells, the same points
    assert [p.hash() for ex in found for p in ex.points] == [p.hash() for ex in plain for p in ex.points]
    # a sparsity that another execution of the cell runs may be declared (kstarts runs 0.8 only)
    assert profiles.load_profile(profile(tmp_path, "", "[0.5]"))[1].tested == (0.5,)


@pytest.mark.parametrize("given, message", [
    ("0.9", "must be a list of sparsities between 0 and 1"),
    ("[0.9, 1.0]", "must be a list of sparsities between 0 and 1"),
    ("[true]", "must be a list of sparsities between 0 and 1"),
    ("[0.9, 0.9]", "names a sparsity twice"),
    ("[0.95]", "tested sparsity 0.95 is run by no execution of digits/mlp in this profile; declare sparsities it "
               r"runs \(0.5, 0.8, 0.9\)"),
])
def test_a_bad_tested_sparsities_declaration_is_one_clear_line(tmp_path, given, message):
    from initprune.lab import profiles

    with pytest.raises(InitpruneError, match=message):
        profiles.load_profile(profile(tmp_path, f", tested_sparsities: {given}"))


def test_the_runs_table_carries_each_points_executions_declaration(tmp_path):
    from initprune import spec
    from initprune.lab import store
    from initprune.result import RunResult

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = store.points(uri)
    declared_run, _ = runs.start_attempt("random", "digits", "mlp", "offline", "cell1", "sweep1",
                                         tested_sparsities="[0.5, 0.9]", reference_epochs="4")
    plain_run, _ = runs.start_attempt("random", "digits", "mlp", "demo", "cell2", "sweep1")
    for seed, parent in ((0, declared_run), (1, plain_run), (2, None)):  # seed 2: run by hand
        config = spec.RunSpec(method="random", epochs=1, sparsity=0.5, seed=seed)
        run_id = runs.open_point(config, parent)
        runs.log(run_id, config, RunResult.from_dict({**run("random", seed, 0.5, 0.5),
                                                                "config_hash": config.hash()}))
        runs.finish(run_id, parent)
    table = results.runs_table(uri).sort_values("seed")
    assert list(table["tested_sparsities"]) == [[0.5, 0.9], None, None]
    assert list(table["reference_epochs"]) == [4, None, None]  # the cost's reference, where declared
    assert list(table["profile"].fillna("by hand")) == ["offline", "demo", "by hand"]


# ---- claim roles through the registry (issues 30 and 33: the criterion controls) --------------------


def test_the_criterion_controls_are_secondary_families_declared_by_their_methods():
    """Each control is judged against the method variant it shares a schedule with (gradual random
    and gradual magnitude against dissipating under the same schedule, K-starts then gradual random
    against combined), and the absolute movement against the relative one: one secondary family
    each over the tested sparsities, from the roles the methods declare (``Pruner.roles``)."""
    rows = []
    for seed in range(8):
        for s in (0.5, 0.9):
            rows += [run("dissipating", seed, s, 0.80, options={"schedule": "cubic"}),
                     run("dissipating", seed, s, 0.70, options={"schedule": "cubic", "movement": "absolute"}),
                     run("gradual_random", seed, s, 0.75, options={"schedule": "cubic"}),
                     run("gradual_magnitude", seed, s, 0.80, options={"schedule": "cubic"}),
                     run("combined", seed, s, 0.82, options={"schedule": "cubic"}),
                     run("kstarts_gradual_random", seed, s, 0.78, options={"schedule": "cubic"})]
    found = claims.verdicts(declared(rows))
    tests = [r for r in found if r["kind"] == "secondary" and r["role"] == "test"]
    families = {(r["method"], r["rival"]): r for r in tests}
    assert set(families) == {("dissipating (cubic)", "gradual_random (cubic)"),
                             ("dissipating (cubic)", "gradual_magnitude (cubic)"),
                             ("combined (cubic)", "kstarts_gradual_random (cubic)"),
                             ("dissipating (cubic) [movement=absolute]", "dissipating (cubic)")}
    assert all(r["family"] == 2 for r in tests)  # one rival against one method variant over 2 sparsities
    assert families[("dissipating (cubic)", "gradual_random (cubic)")]["verdict"] == "better"
    assert families[("dissipating (cubic) [movement=absolute]", "dissipating (cubic)")]["verdict"] == "worse"
    assert families[("dissipating (cubic)", "gradual_magnitude (cubic)")]["verdict"] == "equivalent"
    assert not any(r["method"].endswith("[movement=absolute]") for r in found if r["kind"] == "primary")


def test_a_method_declares_its_roles_and_the_verdict_takes_them_without_a_name_in_claims():
    """A plugin's method that declares a role against random (``Pruner.roles``) gets its secondary
    family; the roles a class declares are its own, never inherited by a subclass."""
    from dataclasses import dataclass
    from typing import ClassVar

    from initprune.pruners import PRUNERS, Random, Role

    with PRUNERS.scratch():
        @dataclass
        class Mine(Random):
            family: ClassVar[str] = "control"
            roles: ClassVar[tuple[Role, ...]] = (Role("mine", "random", text="mine against random"),)

        @dataclass
        class Child(Mine):
            family: ClassVar[str] = "control"

        PRUNERS.register("mine")(Mine)
        PRUNERS.register("mine_child")(Child)
        rows = [run(m, seed, s, acc) for seed in range(8) for s in (0.5, 0.9)
                for m, acc in (("mine", 0.8), ("random", 0.7), ("mine_child", 0.8))]
        found = [r for r in claims.verdicts(declared(rows)) if r["role"] == "test" and r["kind"] == "secondary"]
    assert {(r["method"], r["rival"], r["text"]) for r in found} == {("mine", "random", "mine against random")}
    assert {r["verdict"] for r in found} == {"better"}
