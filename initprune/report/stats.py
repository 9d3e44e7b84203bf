"""The verdict's statistics, declared before any run (docs/method.md, "The verdict"): the exact
paired sign-flip test, Holm's step-down correction, the t-interval floored by the paired
test-set error, the TOST equivalence test and the words a contrast earns.

Numbers only (numpy and scipy): which runs make a contrast is ``claims``' business. Every
function takes the per-seed differences of one contrast (method minus rival, in points of
accuracy, one value per seed) and, where it needs one, the floor on their standard error.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InitpruneError

ALPHA = 0.05  # the level of every test, and 1 - the coverage of the 95% interval
EXACT_UP_TO = 16  # seeds up to which every sign pattern is enumerated
SAMPLES = 100_000  # random sign patterns drawn past EXACT_UP_TO seeds
SAMPLE_SEED = 0  # their seed: the same differences give the same p-value

WORDS = ("equivalent", "better", "worse", "inconclusive", "too few seeds")


def _diffs(diffs) -> np.ndarray:
    d = np.asarray(diffs, dtype=float).ravel()
    if d.size == 0:
        raise InitpruneError("a contrast needs the difference of at least one seed; got none")
    if not np.isfinite(d).all():
        raise InitpruneError(f"per-seed differences must be finite numbers, got {d.tolist()}")
    return d


def sign_flip_p(diffs, samples: int = SAMPLES, seed: int = SAMPLE_SEED) -> float:
    """Two-sided p-value of the exact paired sign-flip test of "mean difference 0".

    Under the null each seed's difference is as likely to have either sign, so the observed
    |sum| is ranked among the |sum| of every one of the 2^n sign patterns (the observed one
    included): p = #{patterns with |sum| >= observed |sum|} / 2^n. Past ``EXACT_UP_TO`` seeds,
    ``samples`` patterns are drawn (seeded) and p = (1 + #{at least as extreme}) / (1 + samples).
    Differences that are all 0 give p = 1."""
    d = _diffs(diffs)
    n = d.size
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))  # sums of the same numbers in another order
    if n <= EXACT_UP_TO:
        return float(np.mean(np.abs(_patterns(n) @ d) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, samples, 10_000):  # (chunk, n) of +-1 at a time
        patterns = rng.choice(np.array([-1.0, 1.0]), size=(min(10_000, samples - start), n))
        hits += int(np.sum(np.abs(patterns @ d) >= observed - tol))
    return (1 + hits) / (1 + samples)


@functools.cache
def _patterns(n: int) -> np.ndarray:
    """Every sign pattern of n seeds: (2^n, n) of +-1, the first all +1."""
    return (1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)).astype(float)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sorted ascending, the j-th
    smallest (from 0) becomes max over i <= j of min(1, (m - i) p_(i))."""
    p = np.asarray(pvalues, dtype=float)
    if p.size and (np.isnan(p).any() or (p < 0).any() or (p > 1).any()):
        raise InitpruneError(f"p-values must lie in [0, 1], got {p.tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


def paired_se(n01: int, n10: int, n: int) -> float:
    """The paired test-set standard error of one seed's difference in accuracy at one sparsity,
    as a fraction: sqrt(n01 + n10) / N, the discordant examples (right for one method only) over
    the test size, as in McNemar's test."""
    if n <= 0:
        raise InitpruneError(f"a test set has at least one example, got N = {n}")
    return math.sqrt(n01 + n10) / n


def discordant(a: str, b: str) -> tuple[int, int, int]:
    """(n01, n10, N) of two per-example correctness strings ('0'/'1', one character per test
    example, in test-set order) of the same test set."""
    if len(a) != len(b) or not a:
        raise InitpruneError(f"per-example correctness of {len(a)} and {len(b)} test examples cannot be paired: "
                             "both runs must score the same test set")
    if set(a) - {"0", "1"} or set(b) - {"0", "1"}:
        raise InitpruneError("per-example correctness must be a string of '0' and '1' only")
    x = np.frombuffer(a.encode(), dtype=np.uint8) == ord("1")
    y = np.frombuffer(b.encode(), dtype=np.uint8) == ord("1")
    return int(np.sum(~x & y)), int(np.sum(x & ~y)), len(a)


def seed_se(per_sparsity: list[float]) -> float:
    """One seed's standard error when its difference is the mean over K sparsities.

    ``per_sparsity`` holds that seed's paired standard error at each of the K sparsities
    (``paired_se``: sqrt(n01_k + n10_k) / N_k, in the units of the difference). The seed's
    difference is (1/K) sum_k d_k, and its se is sqrt(sum_k se_k^2) / K: the K test-set errors
    taken as independent, which for one test set of N examples is sqrt(sum_k (n01_k + n10_k)) /
    (K N), the discordant counts of all sparsities added as if they came from K N examples.
    The sparsities score the same examples, so their errors are, if anything, positively
    correlated and the true se is larger: this is a floor, never an estimate of the whole error.
    A sparsity without per-example data counts 0."""
    if not per_sparsity:
        raise InitpruneError("a seed's difference needs at least one sparsity")
    return math.sqrt(sum(s * s for s in per_sparsity)) / len(per_sparsity)


def floor(seed_ses) -> float:
    """The pooled floor on the standard error of the mean difference over n seeds:
    sqrt(mean_i se_i^2 / n)."""
    s = np.asarray(seed_ses, dtype=float)
    if s.size == 0:
        raise InitpruneError("the floor needs the standard error of at least one seed")
    return float(math.sqrt(np.mean(s**2) / s.size))


@functools.cache
def _t(q: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def interval(diffs, floor_se: float = 0.0, level: float = 1 - ALPHA) -> tuple[float, float, float]:
    """(mean, low, high): the two-sided t-interval (n - 1 degrees of freedom) of the mean
    difference at ``level``, its standard error max(sd / sqrt(n), ``floor_se``). One seed has
    no interval: (mean, nan, nan). Without a floor (0), identical differences give an interval
    of width 0 at their value."""
    d = _diffs(diffs).tolist()
    n = len(d)
    mean = math.fsum(d) / n
    if n < 2:
        return mean, math.nan, math.nan
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    half = _t(0.5 + level / 2, n - 1) * max(sd / math.sqrt(n), float(floor_se))
    return mean, mean - half, mean + half


def equivalent(diffs, margin: float, floor_se: float = 0.0) -> bool:
    """Two one-sided tests at ``ALPHA``: the floored 90% interval lies inside (-margin, margin).
    One seed (no interval) is never equivalent."""
    if not margin > 0:
        raise InitpruneError(f"an equivalence margin is a positive number of points, got {margin}")
    _, low, high = interval(diffs, floor_se, level=1 - 2 * ALPHA)
    return bool(-margin < low and high < margin)  # False for nan


def too_few(seeds: int, family: int) -> bool:
    """Whether Holm's smallest adjusted p-value, m 2^(1-n) for a family of m with n seeds (the
    exact sign-flip test's smallest p is 2^(1-n)), cannot reach ``ALPHA``."""
    return family * 2.0 ** (1 - seeds) > ALPHA


def word(seeds: int, family: int, adjusted_p: float, low: float, high: float, equivalence: bool) -> str:
    """The verdict of one contrast: **too few seeds** where its family could not reach ALPHA
    whatever the numbers; else **equivalent** where the TOST holds; else **better** / **worse**
    where the adjusted p < ALPHA and the floored 95% interval excludes 0 above / below; else
    **inconclusive**. A missing interval (nan) is never read as excluding 0."""
    if too_few(seeds, family):
        return "too few seeds"
    if equivalence:
        return "equivalent"
    if adjusted_p < ALPHA and low > 0:
        return "better"
    if adjusted_p < ALPHA and high < 0:
        return "worse"
    return "inconclusive"


def judge(family: list[dict], margin: float) -> list[dict]:
    """One family's contrasts, each {"diffs": per-seed differences, "floor": its floored se},
    None for a declared contrast without paired runs (it counts in the family, at p = 1):
    each comes back with mean, low, high (95%), low90, high90, p, adjusted_p and verdict."""
    if not margin > 0:
        raise InitpruneError(f"an equivalence margin is a positive number of points, got {margin}")
    m = len(family)
    p = [1.0 if c is None else sign_flip_p(c["diffs"]) for c in family]
    adjusted = holm(p)
    out = []
    for c, raw, adj in zip(family, p, adjusted):
        if c is None:
            out.append(None)
            continue
        d, fl = _diffs(c["diffs"]), float(c.get("floor", 0.0))
        mean, low, high = interval(d, fl)
        _, low90, high90 = interval(d, fl, level=1 - 2 * ALPHA)
        eq = bool(-margin < low90 and high90 < margin)  # equivalent(), its interval computed once
        out.append({"mean": mean, "low": low, "high": high, "low90": low90, "high90": high90, "p": raw,
                    "adjusted_p": adj, "family": m, "seeds": int(d.size), "equivalent": eq,
                    "verdict": word(int(d.size), m, adj, low, high, eq)})
    return out
