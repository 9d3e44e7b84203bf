"""The verdict's statistics: toy cases whose answers are computed by hand, then the honesty checks
of docs/method.md ("The verdict") as seeded simulations through the same code the report runs."""

import math

import numpy as np
import pytest

from initprune.errors import InitpruneError
from initprune.report import stats

T975 = {2: 4.302652729749464, 9: 2.262157162798205, 11: 2.200985160082949}  # t(0.975, df)
T95 = {9: 1.833112932653634, 11: 1.795884818704043}  # t(0.95, df)
SIGNIFICANT = [stats.WORDS.index(w) for w in ("better", "better, within margin", "worse, within margin", "worse")]
WITHIN = [stats.WORDS.index(w) for w in ("better, within margin", "equivalent", "worse, within margin")]


def one(diffs, margin, se_test=0.0):
    [j] = stats.judge([{"diffs": diffs, "se_test": se_test}], margin)
    return j


# ---- the test ------------------------------------------------------------------------------------


def test_sign_flip_p_is_exact_over_every_sign_pattern():
    # sums of +-1 +-2 +-3: 6, 4, 2, 0, 0, -2, -4, -6: |sum| >= 6 in 2 of 8 patterns
    assert stats.sign_flip_p([1, 2, 3]) == 0.25
    assert stats.sign_flip_p([-1, -2, -3]) == 0.25  # two-sided
    assert stats.sign_flip_p([1, -1]) == 1.0  # observed 0: every pattern at least as extreme
    assert stats.sign_flip_p([0, 0, 0, 0]) == 1.0
    assert stats.sign_flip_p([1, 2, 4]) == 0.25  # |7| reached only by +-(1, 2, 4)
    assert stats.sign_flip_p([1, 2, 2]) == 0.25  # sums 5, 1, 1, -3, 3, -1, -1, -5
    assert stats.sign_flip_p([0.5] * 6) == pytest.approx(2 / 64)  # the smallest p of 6 seeds, 2^(1-n)
    assert stats.sign_flip_p([0.1] * 16) == pytest.approx(2 / 2**16)  # still exact at 16


def test_a_difference_of_exactly_zero_carries_no_sign():
    assert stats.sign_flip_p([1, 2, 3, 0, 0]) == stats.sign_flip_p([1, 2, 3]) == 0.25
    # 16 signed seeds and 4 zeros: still every pattern of the 16, exactly
    assert stats.sign_flip_p([0.1] * 16 + [0.0] * 4) == pytest.approx(2 / 2**16)
    assert stats.smallest_p(12, 8) == 0.125 and stats.smallest_p(12, 12) == 1.0 and stats.smallest_p(6) == 2 / 64


def test_sign_flip_p_samples_past_16_signed_seeds_seeded_and_near_the_exact_value():
    d = np.random.default_rng(1).normal(0.3, 1.0, 17)
    every = stats._flips(17)
    exact = float(np.mean(np.abs(every @ d) >= abs(d.sum()) - 1e-9))
    sampled = stats.sign_flip_p(d)
    assert sampled == stats.sign_flip_p(d)  # the same sample every time
    assert sampled == pytest.approx(exact, abs=0.005)  # 100,000 draws: sd about 0.0016
    assert stats.sign_flip_p([1.0] * 20) <= 2e-5  # (1 + hits) / (1 + 100,000), hits about 0.2


def test_sign_flip_ps_of_many_contrasts_are_those_of_each_and_nan_is_no_seed():
    rng = np.random.default_rng(3)
    d = rng.normal(0.2, 1.0, (5, 9))
    d[1, 3] = 0.0
    d[2, 6:] = np.nan  # a contrast of 6 seeds in a family whose others have 9
    batch = stats.sign_flip_ps(d)
    assert batch.tolist() == [stats.sign_flip_p(row[np.isfinite(row)]) for row in d]


def test_holm_adjusts_four_p_values_step_down_and_each_family_apart():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]).tolist() == [1.0, 1.0]  # capped at 1
    assert stats.holm([0.2]).tolist() == [0.2]  # a family of one: unadjusted
    two = stats.holm([[0.01, 0.04, 0.03, 0.005], [0.2, 0.2, 0.2, 0.2]])
    assert two[0].tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02]) and two[1].tolist() == pytest.approx([0.8] * 4)
    with pytest.raises(InitpruneError, match="p-values must lie in"):
        stats.holm([0.1, 1.5])


# ---- differences and the interval ---------------------------------------------------------------


def test_a_hand_computed_interval_with_the_test_set_term():
    # 3 seeds, 4 test examples: A's and B's correctness per seed (rows) and example (columns)
    a = np.array([[1, 1, 1, 0], [1, 1, 0, 1], [1, 1, 1, 1]])
    b = np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 0]])
    x = stats.difference(a, b)  # 100 (a - b): [[0, 100, 0, 0], [0, 0, 0, 100], [100, 0, 0, 100]]
    d = x.mean(axis=1)
    assert d.tolist() == [25.0, 25.0, 50.0]  # each seed's difference in accuracy, in points
    # D_j = mean_i x_ij = 100/3, 100/3, 0, 200/3; its sd (ddof 1) = sqrt(2 (100/3)^2 / 3) = 27.2166;
    # se_test = sd_j / sqrt(4), se_test^2 = 5000 / 27
    se_test = stats.test_se(x)
    assert se_test**2 == pytest.approx(5000 / 27)
    # se_seed^2 = sd_i(25, 25, 50)^2 / 3 = (1250 / 6) / 3 = 625 / 9; the two in quadrature: 6875 / 27
    half = T975[2] * math.sqrt(625 / 9 + 5000 / 27)
    assert stats.interval(d, se_test) == pytest.approx((100 / 3, 100 / 3 - half, 100 / 3 + half))
    assert stats.interval(d, se_test)[1:] == pytest.approx((-35.3246, 101.9913), abs=1e-4)
    # the seeds alone would have claimed far more: the test-set term only widens
    assert stats.interval(d)[1] == pytest.approx(100 / 3 - T975[2] * 25 / 3)


def test_the_test_set_term_does_not_shrink_with_more_seeds_and_averages_the_sparsities():
    rng = np.random.default_rng(4)
    one_seed = (rng.random(200) < 0.9).astype(float) - (rng.random(200) < 0.88)
    copies = np.tile(one_seed, (12, 1))  # twelve seeds that agree on every example
    assert stats.test_se(copies) == pytest.approx(stats.test_se(one_seed[None, :]))
    records = rng.normal(0, 30, (4, 3, 50))  # 4 seeds, 3 sparsities, 50 examples
    assert stats.test_se(records) == pytest.approx(stats.test_se(records.mean(axis=1)))
    with pytest.raises(InitpruneError, match="cannot be pooled"):
        stats.test_se([np.zeros(5), np.zeros(6)])
    with pytest.raises(InitpruneError, match="at least 2 examples"):
        stats.test_se([[1.0], [2.0]])


def test_the_mean_over_sparsities_row_is_descriptive():
    d = np.array([[1.0, 3.0], [2.0, 4.0], [3.0, 5.0]])  # 3 seeds at 2 sparsities: per seed 2, 3, 4
    row = stats.summary(d)
    assert (row["mean"], row["low"], row["high"]) == pytest.approx((3.0, 3 - T975[2] / math.sqrt(3),
                                                                    3 + T975[2] / math.sqrt(3)))
    assert row["seeds"] == 3 and row["sparsities"] == 2 and "verdict" not in row and "p" not in row
    records = np.zeros((3, 2, 4))
    records[:, 0, :] = [0, 200, 0, 200]  # the sparsities' mean per example: 0, 100, 0, 100
    assert stats.summary(d, records)["se_test"] == pytest.approx(100 / math.sqrt(3) / 2)
    with pytest.raises(InitpruneError, match="every seed's finite difference at every sparsity"):
        stats.summary([[1.0, np.nan]])


def test_differences_point_the_same_way_for_accuracy_and_reconstruction_error():
    assert stats.difference(0.91, 0.9) == pytest.approx(1.0)  # points of accuracy
    # a reconstruction: A's error 0.018 against B's 0.020, dense 0.02: A is 10% of dense's error better
    assert stats.difference(0.018, 0.020, "reconstruction", dense_error=0.02) == pytest.approx(10.0)
    with pytest.raises(InitpruneError, match="pass dense_error > 0"):
        stats.difference(0.018, 0.020, "reconstruction")
    with pytest.raises(InitpruneError, match="cannot be paired: both runs must score the same test set"):
        stats.difference(np.zeros(3), np.zeros(4))
    with pytest.raises(InitpruneError, match="unknown task 'segmentation'"):
        stats.difference(1.0, 0.5, "segmentation")
    assert stats.correctness("0110").tolist() == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(InitpruneError, match="string of '0' and '1' only"):
        stats.correctness("01x")


def test_one_seed_has_no_interval_and_reads_too_few_seeds():
    mean, low, high = stats.interval([5.0])
    assert mean == 5.0 and math.isnan(low) and math.isnan(high)
    assert not stats.equivalent([5.0], margin=10.0)
    j = one([5.0], margin=2.0)
    assert j["verdict"] == "too few seeds" and j["p"] == 1.0 and j["p_min"] == 1.0
    # a nan interval is never read as excluding 0, nor as inside the margin
    assert stats.word(0.001, math.nan, math.nan, math.nan, math.nan, 1.0) == "inconclusive"


# ---- words ---------------------------------------------------------------------------------------


def test_words_significance_first():
    #                  adjusted p, 95% low, high, 90% low, high, margin
    assert stats.word(0.01, 0.2, 1.8, 0.3, 1.7, 1.0) == "better"
    assert stats.word(0.01, 0.2, 0.8, 0.3, 0.7, 1.0) == "better, within margin"
    assert stats.word(0.01, -0.8, -0.2, -0.7, -0.3, 1.0) == "worse, within margin"
    assert stats.word(0.01, -1.8, -0.2, -1.7, -0.3, 1.0) == "worse"
    assert stats.word(0.2, -0.2, 0.8, -0.1, 0.7, 1.0) == "equivalent"
    assert stats.word(0.01, -0.2, 0.8, -0.1, 0.7, 1.0) == "equivalent"  # p alone: the interval holds 0
    assert stats.word(0.2, -0.2, 1.8, -0.1, 1.7, 1.0) == "inconclusive"
    assert stats.word(0.2, -0.2, 1.8, -0.1, 1.7, 1.0, few=True) == "too few seeds"
    assert stats.word(0.01, 0.2, 1.8, 0.3, 1.7, 1.0, few=True) == "too few seeds"  # too few wins over p
    assert stats.word(0.2, -0.2, 0.8, -0.1, 0.7, 1.0, few=True) == "equivalent"  # and may read equivalent
    assert stats.word(0.01, 0.2, 1.8, 0.3, 1.0, 1.0) == "better"  # the margin's edge is outside
    assert set(stats.WORDS) == {"better", "better, within margin", "equivalent", "worse, within margin", "worse",
                                "inconclusive", "too few seeds"}


def test_a_consistent_difference_inside_the_margin_reads_within_margin():
    d = [0.3, 0.25, 0.35, 0.3, 0.2, 0.4, 0.3, 0.25, 0.35, 0.3, 0.3, 0.3]  # 12 seeds, all above 0
    j = one(d, margin=1.0, se_test=0.1)
    # sd^2 = 0.03 / 11; se^2 = sd^2 / 12 + 0.1^2 = 0.0102273
    se = math.sqrt(0.03 / 11 / 12 + 0.01)
    assert (j["low"], j["high"]) == pytest.approx((0.3 - T975[11] * se, 0.3 + T975[11] * se))  # [0.077, 0.523]
    assert (j["low90"], j["high90"]) == pytest.approx((0.3 - T95[11] * se, 0.3 + T95[11] * se))  # [0.118, 0.482]
    assert j["p"] == pytest.approx(2 / 4096) and j["verdict"] == "better, within margin"
    assert one([-x for x in d], margin=1.0, se_test=0.1)["verdict"] == "worse, within margin"
    assert one(d, margin=0.45, se_test=0.1)["verdict"] == "better"  # 90% high 0.482 > 0.45


def test_a_significant_effect_near_the_margin_is_not_hidden_as_equivalent():
    """The first offline verdict called +0.85 [0.68, 1.03] "equivalent" on a 90% upper bound just
    under the margin 1.0; significance first, it reads better, within margin."""
    d = [0.65, 1.05] * 5  # mean 0.85, sd^2 = 0.4 / 9, se = sqrt(0.4 / 90) = 0.0667
    j = one(d, margin=1.0)
    se = math.sqrt(0.4 / 90)
    assert j["high90"] == pytest.approx(0.85 + T95[9] * se) and j["high90"] < 1.0  # 0.972
    assert j["low"] == pytest.approx(0.85 - T975[9] * se) and j["low"] > 0  # 0.699
    assert j["adjusted_p"] == pytest.approx(2 / 1024) and j["verdict"] == "better, within margin"
    assert stats.equivalent(d, margin=1.0)  # the TOST alone still holds: it no longer decides first


def test_tost_holds_inside_the_margin_and_fails_outside():
    d = [0.1, -0.1, 0.2, 0.0, 0.1]  # mean 0.06, sd 0.114, 90% half 2.1318 x 0.051 = 0.109
    assert stats.equivalent(d, margin=1.0)
    assert not stats.equivalent(d, margin=0.15)  # high = 0.169 > 0.15
    assert not stats.equivalent([3.0, -3.0, 2.5, -2.0, 0.5], margin=1.0)  # wide interval
    assert not stats.equivalent([0.0] * 5, margin=1.0, se_test=1.0)  # the test-set term alone can deny it
    with pytest.raises(InitpruneError, match="equivalence margin is a positive number"):
        stats.equivalent(d, margin=0)


# ---- too few seeds -------------------------------------------------------------------------------


def test_zero_differences_leave_too_few_seeds():
    d = [0.0] * 8 + [1.0] * 4  # 12 seeds, 8 of them exactly 0: 4 signs, p and p_min 2^(1-4)
    j = one(d, margin=0.5)
    assert j["zeros"] == 8 and j["p"] == 0.125 and j["p_min"] == 0.125 and j["verdict"] == "too few seeds"
    # the same contrast may still read equivalent: mean 1/3, sd^2 = (24/9) / 11, 90% half 1.7959 x 0.142
    j = one(d, margin=1.0)
    assert (j["low90"], j["high90"]) == pytest.approx((1 / 3 - T95[11] * math.sqrt(24 / 9 / 11 / 12),
                                                       1 / 3 + T95[11] * math.sqrt(24 / 9 / 11 / 12)))
    assert j["verdict"] == "equivalent"


def test_too_few_seeds_is_holm_over_the_family_of_smallest_p_values():
    six = [0.0] * 6 + [2.0] * 6  # 6 signed seeds of 12: p_min = 2^-5 = 0.03125, and p too
    assert one(six, margin=0.5)["verdict"] == "better"  # alone: 0.031 < 0.05; 95% [0.34, 1.66]
    family = stats.judge([{"diffs": six}] * 3, margin=0.5)  # three of them: Holm 3 x 0.031 = 0.094
    assert [j["adjusted_p_min"] for j in family] == pytest.approx([3 / 32] * 3)
    assert {j["verdict"] for j in family} == {"too few seeds"}
    # beside two contrasts of 12 signed seeds: p_min 2^-11, 2^-11, 2^-5 -> 3/2048, 3/2048, 1/32
    family = stats.judge([{"diffs": six}, {"diffs": [1.0] * 12}, {"diffs": [1.5] * 12}], margin=0.5)
    assert family[0]["adjusted_p_min"] == pytest.approx(1 / 32) and family[0]["verdict"] == "better"


@pytest.mark.parametrize("family, enough", [(1, 6), (3, 7), (6, 8), (9, 9), (27, 11)])
def test_too_few_seeds_boundary_without_zeros(family, enough):
    huge = [{"diffs": [50.0 + i for i in range(enough - 1)]}] * family
    assert {j["verdict"] for j in stats.judge(huge, margin=1.0)} == {"too few seeds"}  # whatever the numbers
    huge = [{"diffs": [50.0 + i for i in range(enough)]}] * family
    assert {j["verdict"] for j in stats.judge(huge, margin=1.0)} == {"better"}


def test_a_declared_contrast_without_runs_counts_in_its_family():
    d = [0.5, 0.6, 0.5, 0.4, 0.5, 0.6, 0.5, 0.4, 0.5, 0.5]
    j, none = stats.judge([{"diffs": d}, None], margin=0.2)
    assert none is None and j["adjusted_p"] == pytest.approx(2 * j["p"]) and j["family"] == 2
    assert j["verdict"] == "better"


# ---- the reconstruction --------------------------------------------------------------------------


def test_a_reconstruction_with_lower_error_reads_better():
    dense = 0.02
    e_a = np.array([0.0180, 0.0182, 0.0178, 0.0181, 0.0179, 0.0180])  # A's mean test error per seed
    e_b = np.array([0.0200, 0.0199, 0.0202, 0.0201, 0.0198, 0.0200])
    d = stats.difference(e_a, e_b, "reconstruction", dense_error=dense)
    assert d.tolist() == pytest.approx([10.0, 8.5, 12.0, 10.0, 9.5, 10.0])  # 100 (e_B - e_A) / 0.02
    # per-example squared errors whose means are those errors: w_j alternating 0.5, 1.5 (mean 1)
    w = np.tile([0.5, 1.5], 25)
    x = stats.difference(e_a[:, None] * w, e_b[:, None] * w, "reconstruction", dense_error=dense)
    assert x.mean(axis=1) == pytest.approx(d)
    se = stats.test_se(x)  # D_j = 10 w_j: sd_j = 10 sqrt(50 x 0.25 / 49), over sqrt(50)
    assert se == pytest.approx(10 * math.sqrt(12.5 / 49) / math.sqrt(50))
    margin = stats.margin("reconstruction")
    j = one(d, margin, se)
    assert margin == 2.0 and j["mean"] == pytest.approx(10.0) and j["p"] == pytest.approx(2 / 64)
    assert j["low"] > 0 and j["verdict"] == "better"
    assert one(-d, margin, se)["verdict"] == "worse"  # A's error the higher


# ---- margins and power ---------------------------------------------------------------------------


def test_margins_are_declared_per_task():
    assert stats.margin("reconstruction") == 2.0 and stats.margin("reconstruction", declared=0.5) == 2.0
    assert stats.margin() == stats.DEFAULT_MARGIN == 2.0 and stats.margin(declared=3.0) == 3.0
    with pytest.raises(InitpruneError, match="unknown task 'ranking'"):
        stats.margin("ranking")
    with pytest.raises(InitpruneError, match="equivalence margin is a positive number"):
        stats.margin(declared=-1.0)


def test_the_power_threshold_follows_seeds_family_and_margin():
    sd = stats.power_sd(12, 27, 0.5)
    assert sd == pytest.approx(0.62, abs=0.02)  # METHOD: power 0.95 at sd 0.5, 0.65 at 0.7
    assert stats.power_sd(12, 27, 1.0) == pytest.approx(2 * sd)  # it scales with the margin
    # more seeds, or a smaller family: a wider spread is still found
    assert stats.power_sd(11, 27, 0.5) < sd < stats.power_sd(12, 9, 0.5) < stats.power_sd(12, 3, 0.5)
    assert stats.power_sd(8, 3, 0.5) < stats.power_sd(12, 3, 0.5)
    assert stats.power_sd(5, 1, 0.5) == 0.0 and stats.power_sd(10, 27, 0.5) == 0.0  # the family can't reach 0.05
    rng = np.random.default_rng(5)
    z = rng.standard_normal(12)
    z = (z - z.mean()) / z.std(ddof=1)
    family = [{"diffs": 1.0 + 0.8 * z}, {"diffs": 1.0 + 0.4 * z}] + [{"diffs": rng.normal(0, 0.4, 12)}] * 25
    wide, narrow = stats.judge(family, margin=0.5)[:2]
    assert wide["sd"] == pytest.approx(0.8) and wide["underpowered"] == "underpowered (sd = 0.80)"
    assert narrow["underpowered"] == "" and narrow["power_sd"] == pytest.approx(sd)


# ---- honesty checks (seeded simulations through ``assess``) -------------------------------------


def test_the_same_computation_twice_is_never_better_or_worse():
    """K-starts with k = 1 and random: the same masks, the same training, every per-example record
    identical. Whatever else the family holds, the contrast has d = 0 on every seed and no
    test-set term: p = 1, equivalent, never better or worse."""
    rng = np.random.default_rng(6)
    right = (rng.random((12, 500)) < 0.85).astype(float)
    x = stats.difference(right, right.copy())
    d = x.mean(axis=1)
    assert not d.any() and stats.test_se(x) == 0.0
    others = [{"diffs": rng.normal(3.0, 0.5, 12), "se_test": 0.2} for _ in range(8)]
    for margin in (0.5, 1.0, 2.0):
        j = stats.judge([{"diffs": d, "se_test": stats.test_se(x)}, *others], margin)[0]
        assert j["p"] == 1.0 and (j["low"], j["high"]) == (0.0, 0.0) and j["verdict"] == "equivalent"
    # the whole matrix: 1,000 families of 9 such contrasts, never a better or worse
    words = stats.assess(np.zeros((1000, 9, 12)), 0.5)["word"]
    assert not np.isin(words, SIGNIFICANT).any()


def _null_families(rng, count, family, seeds, collapse=0.0):
    """Differences under the null: contrasts of one family share the rival's seed effect (they are
    correlated); with ``collapse``, a seed collapses with that probability (a layerwise run at s =
    0.98, say) and its difference is 5 to 30 points, of either sign."""
    shared = rng.normal(0, 0.5, (count, 1, seeds))
    d = 0.6 * shared + 0.8 * rng.normal(0, 0.5, (count, family, seeds))
    hit = rng.random((count, family, seeds)) < collapse
    return d + hit * rng.choice([-1.0, 1.0], d.shape) * rng.uniform(5, 30, d.shape)


@pytest.mark.parametrize("collapse", [0.0, 0.15], ids=["gaussian", "collapsing"])
@pytest.mark.parametrize("family, seeds, count", [(27, 12, 1000), (3, 8, 20_000)])
def test_null_families_keep_the_family_wise_false_positive_rate(collapse, family, seeds, count):
    """Claim 4 (9 contrasts x 3 sparsities, 12 seeds; 1,000 families) and a secondary family (3
    sparsities, 8 seeds; 20,000 families), no true effect, Gaussian or heavy-tailed: at most 5% of
    families hold any better or worse. Holm over exact tests bounds it by 5% (for 3 independent
    contrasts of 8 seeds, 1 - (1 - 4/256)^3 = 4.6%); measured 3.4% and 1.1% (family of 27,
    Gaussian and collapsing), 4.4% and 1.4% (family of 3)."""
    rng = np.random.default_rng(2026)
    d = _null_families(rng, count, family, seeds, collapse)
    words = stats.assess(d, 0.5, se_test=0.05)["word"]
    rate = np.isin(words, SIGNIFICANT).any(axis=-1).mean()
    assert rate <= 0.05


def test_twice_the_margin_is_found_in_a_family_of_27_at_sd_half_a_point():
    """1,000 families of 27 (12 seeds), one contrast at a true +1.0 (twice the margin of 0.5), sd
    0.5, test-set term 0.1; the other 26 null: it reads better in at least 80% (measured 95%); at
    the spread ``power_sd`` marks as the edge, in about 80% (measured 79.5%)."""
    rng = np.random.default_rng(7)
    for sd, low, high in ((0.5, 0.8, 1.0), (stats.power_sd(12, 27, 0.5), 0.74, 0.88)):
        d = rng.normal(0, sd, (1000, 27, 12))
        d[:, 0] += 1.0
        words = stats.assess(d, 0.5, se_test=0.1 if sd == 0.5 else 0.0)["word"][:, 0]
        found = np.isin(words, [stats.WORDS.index("better"), stats.WORDS.index("better, within margin")]).mean()
        assert low <= found <= high, (sd, found)


def test_a_true_difference_of_exactly_the_margin_is_rarely_called_within_it():
    """15,000 contrasts (12 seeds, sd 0.5) whose true difference is exactly the margin, +0.5 or
    -0.5: equivalent or within margin in at most 5%. Without a test-set term the TOST's level is
    exactly 5% for Gaussian seeds, so the measured share is 5% up to its sampling error (sd
    0.18%; allowed: 3 sd); the test-set term of a real test set (0.1 points) makes it rarer:
    measured about 2%, below 5% outright."""
    rng = np.random.default_rng(8)
    for sign in (1.0, -1.0):
        d = rng.normal(sign * 0.5, 0.5, (15_000, 1, 12))
        bare = np.isin(stats.assess(d, 0.5)["word"], WITHIN).mean()
        assert 0.04 <= bare <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 15_000)
    assert np.isin(stats.assess(d, 0.5, se_test=0.1)["word"], WITHIN).mean() <= 0.05
