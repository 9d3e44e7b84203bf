"""The verdict's statistics on toy cases whose answers are computed by hand."""

import math

import numpy as np
import pytest

from initprune.errors import InitpruneError
from initprune.report import stats


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


def test_sign_flip_p_samples_past_16_seeds_seeded_and_near_the_exact_value():
    d = np.random.default_rng(1).normal(0.3, 1.0, 17)
    exact = float(np.mean(np.abs(stats._patterns(17) @ d) >= abs(d.sum()) - 1e-9))
    sampled = stats.sign_flip_p(d)
    assert sampled == stats.sign_flip_p(d)  # the same sample every time
    assert sampled == pytest.approx(exact, abs=0.005)  # 100,000 draws: sd about 0.0016
    assert stats.sign_flip_p([1.0] * 20) <= 2e-5  # (1 + hits) / (1 + 100,000), hits about 0.2


def test_holm_adjusts_four_p_values_step_down():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 1 x 0.04)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.2]) == [0.2]  # a family of one: unadjusted
    with pytest.raises(InitpruneError, match="p-values must lie in"):
        stats.holm([0.1, 1.5])


def test_paired_standard_error_from_discordant_examples():
    assert stats.discordant("0110", "0101") == (1, 1, 4)  # example 3 right for b only, example 2 for a only
    assert stats.paired_se(1, 1, 4) == pytest.approx(math.sqrt(2) / 4)
    assert stats.seed_se([0.3, 0.4]) == pytest.approx(0.25)  # sqrt(0.09 + 0.16) / 2
    assert stats.floor([0.3, 0.4]) == pytest.approx(math.sqrt((0.09 + 0.16) / 2 / 2))
    with pytest.raises(InitpruneError, match="cannot be paired: both runs must score the same test set"):
        stats.discordant("011", "0110")
    with pytest.raises(InitpruneError, match="string of '0' and '1' only"):
        stats.discordant("01x", "010")


def test_zero_variance_the_floor_keeps_the_interval_open():
    same = [2.0] * 5
    mean, low, high = stats.interval(same)  # no per-example data: floor 0, an interval of width 0
    assert (mean, low, high) == (2.0, 2.0, 2.0)
    mean, low, high = stats.interval(same, floor_se=0.5)  # t(0.975, 4) = 2.7764
    assert (low, high) == pytest.approx((2 - 2.7764 * 0.5, 2 + 2.7764 * 0.5), abs=1e-4)
    # the floor only ever widens: spread larger than the floor keeps sd / sqrt(n)
    d = [1.0, 2.0, 3.0]  # sd 1, se 0.577, t(0.975, 2) = 4.3027
    assert stats.interval(d, floor_se=0.1)[1:] == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)),
                                                                abs=1e-4)


def test_tost_holds_inside_the_margin_and_fails_outside():
    d = [0.1, -0.1, 0.2, 0.0, 0.1]  # mean 0.06, sd 0.114, 90% half 2.1318 x 0.051 = 0.109
    assert stats.equivalent(d, margin=1.0)
    assert not stats.equivalent(d, margin=0.15)  # high = 0.169 > 0.15
    assert not stats.equivalent([3.0, -3.0, 2.5, -2.0, 0.5], margin=1.0)  # wide interval
    assert not stats.equivalent([0.0] * 5, margin=1.0, floor_se=1.0)  # the floor alone can deny it
    with pytest.raises(InitpruneError, match="equivalence margin is a positive number"):
        stats.equivalent(d, margin=0)


def test_one_seed_has_no_interval_and_reads_too_few_seeds():
    mean, low, high = stats.interval([5.0])
    assert mean == 5.0 and math.isnan(low) and math.isnan(high)
    assert not stats.equivalent([5.0], margin=10.0)
    [judged] = stats.judge([{"diffs": [5.0], "floor": 0.0}], margin=2.0)
    assert judged["verdict"] == "too few seeds" and judged["p"] == 1.0
    # a nan interval is never read as excluding 0, even past the seed rule
    assert stats.word(10, 1, 0.001, math.nan, math.nan, False) == "inconclusive"


@pytest.mark.parametrize("family, enough", [(1, 6), (6, 8), (9, 9)])
def test_too_few_seeds_boundary(family, enough):
    assert stats.too_few(enough - 1, family) and not stats.too_few(enough, family)
    # whatever the numbers: a huge, consistent effect one seed short is still too few
    huge = [{"diffs": [50.0 + i for i in range(enough - 1)], "floor": 0.0}] * family
    assert {j["verdict"] for j in stats.judge(huge, margin=1.0)} == {"too few seeds"}
    huge = [{"diffs": [50.0 + i for i in range(enough)], "floor": 0.0}] * family
    assert {j["verdict"] for j in stats.judge(huge, margin=1.0)} == {"better"}


def test_words_equivalent_wins_over_significant_then_better_worse_inconclusive():
    small = [0.5, 0.6, 0.5, 0.4, 0.5, 0.6, 0.5, 0.4, 0.5, 0.5]  # consistent, well inside a margin of 2
    [j] = stats.judge([{"diffs": small, "floor": 0.0}], margin=2.0)
    assert j["adjusted_p"] < 0.05 and j["low"] > 0 and j["verdict"] == "equivalent"
    [j] = stats.judge([{"diffs": [-x for x in small], "floor": 0.0}], margin=0.2)
    assert j["verdict"] == "worse"
    [j] = stats.judge([{"diffs": [3.0, -2.0, 1.0, -1.0, 2.5, -3.0, 0.5, 1.0], "floor": 0.0}], margin=1.0)
    assert j["verdict"] == "inconclusive"
    # a declared contrast without runs counts in the family: 2 x p
    j, none = stats.judge([{"diffs": small, "floor": 0.0}, None], margin=0.2)
    assert none is None and j["adjusted_p"] == pytest.approx(2 * j["p"]) and j["family"] == 2


def test_simulated_null_families_keep_the_family_wise_false_positive_rate():
    """2,000 families of 6 contrasts (claim 3's), 10 seeds, true effect 0: the share of families
    with any "better" or "worse" stays at most 6% (Holm over exact tests: at most 5%)."""
    rng = np.random.default_rng(2026)
    positives = 0
    for _ in range(2000):
        shared = rng.normal(0, 1, 10)  # the contrasts of a family share seeds: correlated nulls
        family = [{"diffs": 0.5 * shared + rng.normal(0, 1, 10), "floor": 0.1} for _ in range(6)]
        positives += any(j["verdict"] in ("better", "worse") for j in stats.judge(family, margin=0.01))
    assert positives / 2000 <= 0.06
