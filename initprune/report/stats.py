"""The verdict's statistics, declared before any run (docs/method.md, "The verdict"): the per-seed
differences of a contrast, the exact paired sign-flip test, Holm's step-down correction, the
t-interval with the test-set uncertainty added in quadrature, the zero-aware "too few seeds", the
power mark, the margins and the words a contrast earns.

Numbers only (numpy and scipy): which runs make a contrast is ``claims``' business. A contrast is
one method A against one rival B at one sparsity. d_i, one value per seed, is A's advantage:
points of test accuracy for a classification, percent of the dense model's mean test error for a
reconstruction; positive means A is better. x[i, j], the same per test example j (``difference``
of two per-example records), is where the test-set term of the interval comes from.

The functions that judge take NumPy arrays whose last axis is the seeds (NaN where a contrast has
no such seed) and whose axis before it is a family's contrasts, with any leading axes of their
own: the report passes one family, the honesty checks of tests/test_stats.py thousands of
simulated ones through the same code.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import InitpruneError

ALPHA = 0.05  # the level of every test; 1 - the coverage of the 95% interval; 2 x that of the TOST
EXACT_UP_TO = 16  # non-zero differences up to which every sign pattern is enumerated
SAMPLES = 100_000  # random sign patterns drawn past EXACT_UP_TO
SAMPLE_SEED = 0  # their seed: the same differences give the same p-value
POWER = 0.8  # the power to find twice the margin below which a contrast is "underpowered"
POWER_DRAWS = 2_000  # simulated contrasts that estimate it (seeded: the same every time)
POWER_SEED = 0
POWER_UP_TO = 14  # seeds up to which the power is simulated; past it, that of 14 (a lower bound)

WORDS = ("better", "better, within margin", "equivalent", "worse, within margin", "worse", "inconclusive",
         "too few seeds")

# The equivalence margin per task, declared before any run. A classification's is the dataset's
# own (``data``: points of test accuracy, about an eighth of the dense-minus-random gap at s = 0.98
# where the verdict is carried, wider where the test set is small or the task noisy); a
# reconstruction's is percent of the dense model's mean test error, the same for every dataset.
DEFAULT_MARGIN = 2.0  # a classification dataset that declares none (a plugin's)
MARGINS = {"classification": None, "reconstruction": 2.0}  # None: the dataset's declaration
TASKS = tuple(MARGINS)


def margin(task: str = "classification", declared: float | None = None) -> float:
    """The equivalence margin for ``task``: a reconstruction's ``MARGINS`` entry; a
    classification's the dataset's declaration (``declared``), else ``DEFAULT_MARGIN``."""
    if task not in MARGINS:
        raise InitpruneError(f"unknown task '{task}': the verdict knows {', '.join(TASKS)}")
    if MARGINS[task] is not None:
        return float(MARGINS[task])
    return _margin(declared) if declared is not None else DEFAULT_MARGIN


def _margin(value) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InitpruneError(f"an equivalence margin is a positive number (points, or percent of the dense error), "
                             f"got {value}")
    return float(value)


# ---- differences ---------------------------------------------------------------------------------


def _diffs(diffs) -> np.ndarray:
    d = np.asarray(diffs, dtype=float).ravel()
    if d.size == 0:
        raise InitpruneError("a contrast needs the difference of at least one seed; got none")
    if not np.isfinite(d).all():
        raise InitpruneError(f"per-seed differences must be finite numbers, got {d.tolist()}")
    return d


def difference(a, b, task: str = "classification", dense_error: float | None = None):
    """A's advantage over B, elementwise, in the units of the verdict: 100 (a - b) for a
    classification (a, b: accuracies, or per-example correctness 0/1), 100 (b - a) / ē_dense for a
    reconstruction (a, b: mean test errors, or per-example squared errors; ``dense_error`` the
    dense model's mean test error), so that positive always means A is better. Per-seed values
    give the d_i, per-example records (seeds, N) the x[i, j] that ``test_se`` takes."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise InitpruneError(f"per-example records of shapes {x.shape} and {y.shape} cannot be paired: both runs "
                             "must score the same test set")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InitpruneError("a metric or per-example record to compare holds a value that is not a finite number")
    if task == "classification":
        out = 100 * (x - y)
    elif task == "reconstruction":
        if dense_error is None or not (math.isfinite(dense_error) and dense_error > 0):
            raise InitpruneError(f"a reconstruction's difference is in percent of the dense model's mean test error: "
                                 f"pass dense_error > 0, got {dense_error}")
        out = 100 * (y - x) / dense_error
    else:
        raise InitpruneError(f"unknown task '{task}': the verdict knows {', '.join(TASKS)}")
    return out if out.ndim else float(out)


def correctness(text: str) -> np.ndarray:
    """A run's per-example correctness, stored as a string of '0' and '1' (one character per test
    example, in test-set order), as an array of 0.0 and 1.0."""
    if not isinstance(text, str) or not text:
        raise InitpruneError("per-example correctness must be a non-empty string of '0' and '1'")
    codes = np.frombuffer(text.encode(), dtype=np.uint8)
    if not np.isin(codes, (ord("0"), ord("1"))).all():
        raise InitpruneError("per-example correctness must be a string of '0' and '1' only")
    return (codes == ord("1")).astype(float)


def test_se(records) -> float:
    """The test-set term of the interval: with x[i, ..., j] the per-example differences (seed
    first, test example last; any axes between, the sparsities of a mean-over-sparsities row, are
    averaged), D_j = mean_i x[i, ..., j] and se_test = sd_j(D_j) / sqrt(N). Every seed is scored on
    the same N examples, so this term does not shrink with more seeds."""
    try:
        x = np.asarray(records, dtype=float)
    except ValueError:
        raise InitpruneError("per-example records of different test sets cannot be pooled: every run of a contrast "
                             "must score the same test set") from None
    if x.ndim < 2 or x.shape[-1] < 2 or x.size == 0:
        raise InitpruneError(f"the test-set term needs per-example records (seeds, ..., examples) of at least 2 "
                             f"examples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InitpruneError("per-example differences must be finite numbers")
    per_example = x.reshape(-1, x.shape[-1]).mean(axis=0)
    return float(per_example.std(ddof=1) / math.sqrt(per_example.size))


# ---- the test ------------------------------------------------------------------------------------


def sign_flip_p(diffs, samples: int = SAMPLES, seed: int = SAMPLE_SEED) -> float:
    """Two-sided p-value of the exact paired sign-flip test of "mean difference 0" (``sign_flip_ps``
    of one contrast). Differences that are all 0 give p = 1."""
    return float(sign_flip_ps(_diffs(diffs)[None, :], samples, seed)[0])


def sign_flip_ps(diffs, samples: int = SAMPLES, seed: int = SAMPLE_SEED) -> np.ndarray:
    """The sign-flip p-value of every contrast of ``diffs`` (..., seeds; NaN: no such seed).

    Under the null each seed's difference is as likely to have either sign, so the observed |sum|
    is ranked among the |sum| of every sign pattern (the observed one included): p = #{patterns
    with |sum| >= observed |sum|} / #patterns. A difference of exactly 0 carries no sign and is
    left out. Up to ``EXACT_UP_TO`` non-zero differences every pattern is enumerated (half of
    them: a pattern and its negation have the same |sum|); past it, ``samples`` patterns are
    drawn (seeded) and p = (1 + #{at least as extreme}) / (1 + samples)."""
    d = np.atleast_1d(np.asarray(diffs, dtype=float))
    x = np.nan_to_num(d.reshape(-1, d.shape[-1]), nan=0.0)
    x = np.take_along_axis(x, np.argsort(x == 0, axis=1, kind="stable"), axis=1)  # non-zero first
    signed = (x != 0).sum(axis=1)
    p = np.ones(len(x))
    exact = (signed > 0) & (signed <= EXACT_UP_TO)
    if exact.any():
        p[exact] = _exact(x[exact, :int(signed[exact].max())])
    for row in np.flatnonzero(signed > EXACT_UP_TO):
        p[row] = _sampled(x[row, :signed[row]], samples, seed)
    return p.reshape(d.shape[:-1])


def _tolerance(x: np.ndarray) -> np.ndarray:
    return 1e-9 * np.maximum(1.0, np.abs(x).sum(axis=-1))  # sums of the same numbers in another order


def _exact(x: np.ndarray) -> np.ndarray:
    """The exact p of each row: every pattern's |sum| is a sum over the first half of the seeds
    (first sign +1) plus one over the second half, 2^(n-1) additions a row in place of as many
    n-term products."""
    n = x.shape[1]
    first, second = _patterns(n - n // 2), _flips(n // 2)
    out = np.empty(len(x))
    step = max(1, 2**21 // (len(first) * len(second)))  # rows x patterns at a time
    for start in range(0, len(x), step):
        part = x[start:start + step]
        sums = (part[:, :len(first[0])] @ first.T)[:, :, None] + (part[:, len(first[0]):] @ second.T)[:, None, :]
        sums = np.abs(sums.reshape(len(part), -1))  # column 0: the observed pattern, all +1
        out[start:start + step] = np.count_nonzero(sums >= sums[:, :1] - _tolerance(part)[:, None], axis=1)
    return out / (len(first) * len(second))


def _sampled(x: np.ndarray, samples: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    observed, tol, hits = abs(x.sum()), float(_tolerance(x)), 0
    for start in range(0, samples, 10_000):  # (chunk, n) of +-1 at a time
        patterns = rng.choice(np.array([-1.0, 1.0]), size=(min(10_000, samples - start), x.size))
        hits += int(np.sum(np.abs(patterns @ x) >= observed - tol))
    return (1 + hits) / (1 + samples)


@functools.cache
def _patterns(n: int) -> np.ndarray:
    """Half the sign patterns of n seeds, those whose first sign is +1: (2^(n-1), n) of +-1, the
    first all +1."""
    return np.concatenate([np.ones((2 ** (n - 1), 1)), _flips(n - 1)], axis=1)


def _flips(n: int) -> np.ndarray:
    """Every sign pattern of n seeds: (2^n, n) of +-1, the first all +1."""
    return (1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)).astype(float)


def smallest_p(seeds, zeros=0):
    """The smallest p-value the sign-flip test can give n seeds of which z differ by exactly 0:
    2^(1 - (n - z)), at most 1."""
    signed = np.asarray(seeds) - np.asarray(zeros)
    out = np.minimum(1.0, 2.0 ** (1 - signed.astype(float)))
    return out if out.ndim else float(out)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values of each family (the last axis), in the order given:
    sorted ascending, the j-th smallest (from 0) becomes max over i <= j of min(1, (m - i) p_(i))."""
    p = np.asarray(pvalues, dtype=float)
    if p.size and (np.isnan(p).any() or (p < 0).any() or (p > 1).any()):
        raise InitpruneError(f"p-values must lie in [0, 1], got {p.tolist()}")
    if p.ndim == 0 or p.shape[-1] == 0:
        return p.copy()
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    steps = (m - np.arange(m)) * np.take_along_axis(p, order, axis=-1)
    out = np.empty_like(p)
    np.put_along_axis(out, order, np.minimum(1.0, np.maximum.accumulate(steps, axis=-1)), axis=-1)
    return out


# ---- the interval --------------------------------------------------------------------------------


def _t(q: float, df):
    from scipy.stats import t

    return t.ppf(q, df)


def intervals(diffs, se_test=0.0, level: float = 1 - ALPHA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) of every contrast of ``diffs`` (..., seeds; NaN: no such seed): mean(d) +-
    t(n - 1) sqrt(sd(d)^2 / n + se_test^2), at ``level``, n counting every seed (zeros included).
    Fewer than 2 seeds have no interval (NaN)."""
    d = np.asarray(diffs, dtype=float)
    n = np.isfinite(d).sum(axis=-1)
    some = np.maximum(n, 1)
    mean = np.where(n > 0, np.nansum(d, axis=-1) / some, np.nan)
    with np.errstate(invalid="ignore"):
        spread = np.nansum((d - mean[..., None]) ** 2, axis=-1) / np.maximum(n - 1, 1)
        half = _t(0.5 + level / 2, np.maximum(n - 1, 1)) * np.sqrt(spread / some + np.asarray(se_test, float) ** 2)
    half = np.where(n >= 2, half, np.nan)
    return mean, mean - half, mean + half


def interval(diffs, se_test: float = 0.0, level: float = 1 - ALPHA) -> tuple[float, float, float]:
    """(mean, low, high) of one contrast (``intervals``). One seed: (mean, nan, nan)."""
    mean, low, high = intervals(_diffs(diffs), _se(se_test), level)
    return float(mean), float(low), float(high)


def _se(value) -> float:
    if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value >= 0):
        raise InitpruneError(f"a test-set standard error is a number >= 0, got {value}")
    return float(value)


def _inside(low90, high90, margin):
    return (-margin < np.asarray(low90)) & (np.asarray(high90) < margin)  # False for nan


def equivalent(diffs, margin: float, se_test: float = 0.0) -> bool:
    """Two one-sided tests at ``ALPHA``: the 90% interval lies inside (-margin, margin). One seed
    (no interval) is never equivalent."""
    _, low, high = interval(diffs, se_test, level=1 - 2 * ALPHA)
    return bool(_inside(low, high, _margin(margin)))


# ---- power ---------------------------------------------------------------------------------------


def power_sd(seeds: int, family: int, margin: float) -> float:
    """The spread of d above which a contrast of ``seeds`` seeds in a family of ``family`` finds a
    true difference of twice the margin with less than ``POWER`` probability: "underpowered".
    0 where the family cannot reach ``ALPHA`` with these seeds at all ("too few seeds" says so).

    The power is that of the word "better": a sign-flip p below ALPHA / family (Holm never asks
    more of a contrast) and a 95% interval above 0 (the test-set term left out), for Gaussian
    differences, simulated (``POWER_DRAWS`` draws, seeded). It scales with the margin, so one
    simulation per (seeds, family) serves every margin: 0.62 points at a margin of 0.5 with 12
    seeds in a family of 27 (power 0.95 at 0.5, 0.65 at 0.7)."""
    if seeds < 2 or family < 1:
        return 0.0
    return _power_ratio(min(int(seeds), POWER_UP_TO), int(family)) * _margin(margin)


@functools.cache
def _power_ratio(n: int, family: int) -> float:
    """sd / margin at which the power to find 2 x margin is ``POWER``.

    With d = 2 margin + sd z (z standard normal), d is proportional to c + z with c = 2 margin / sd.
    For d with a positive sum, the pattern that flips the seeds F reaches at least the observed
    |sum| when sum_F d <= 0 (or its negation does), so p = 2 #{F: sum_F d <= 0} / 2^n and p <
    ALPHA / family holds when at most ``allowed`` non-empty F have c <= -mean_F(z): when c exceeds
    the (allowed + 1)-th largest -mean_F(z). With the interval's condition, each draw z gives the
    c* above which it reads better; the power at c is the share of draws with c* < c."""
    allowed = math.ceil(ALPHA * 2 ** (n - 1) / family - 1) - 1
    if allowed < 0:
        return 0.0
    z = np.random.default_rng(POWER_SEED).standard_normal((POWER_DRAWS, n))
    subsets = _flips(n)[1:] < 0  # every non-empty subset of the seeds
    means = subsets / subsets.sum(axis=1, keepdims=True)
    found, step = [], max(1, 2**22 // len(subsets))
    for start in range(0, POWER_DRAWS, step):
        v = -(z[start:start + step] @ means.T)  # (draws, subsets): -mean_F(z)
        found.append(-np.partition(-v, allowed, axis=1)[:, allowed])
    needed = np.maximum(np.concatenate(found),
                        -z.mean(axis=1) + _t(1 - ALPHA / 2, n - 1) * z.std(axis=1, ddof=1) / math.sqrt(n))
    return float(2 / np.quantile(needed, POWER))


# ---- words ---------------------------------------------------------------------------------------


def _codes(adjusted_p, low, high, low90, high90, margin, few):
    """Indices into WORDS, significance first: better / worse (adjusted p < ALPHA, 95% interval
    excluding 0, not too few seeds), "within margin" when the 90% interval also lies inside
    +-margin; else equivalent when it does; else too few seeds or inconclusive."""
    significant = (np.asarray(adjusted_p) < ALPHA) & ~np.asarray(few)
    up, down = significant & (np.asarray(low) > 0), significant & (np.asarray(high) < 0)
    inside = _inside(low90, high90, margin)
    return np.select([up & ~inside, up, down & inside, down, inside, few], [0, 1, 3, 4, 2, 6], default=5)


def word(adjusted_p: float, low: float, high: float, low90: float, high90: float, margin: float,
         few: bool = False) -> str:
    """The word of one contrast from its adjusted p-value, 95% and 90% intervals and whether its
    family's seeds are too few for it (``assess``); a missing interval (nan) never excludes 0
    and never lies inside the margin."""
    return WORDS[int(_codes(adjusted_p, low, high, low90, high90, _margin(margin), few))]


def assess(diffs, margin: float, se_test=0.0) -> dict[str, np.ndarray]:
    """Every contrast of every family of ``diffs`` (..., contrasts, seeds; NaN: no such seed; a
    contrast without any seed counts in its family at p = 1), with its test-set term ``se_test``
    (..., contrasts, or one number): arrays of seeds, zeros, mean, sd, low, high (95%), low90,
    high90, p, adjusted_p (Holm within the family), p_min (the smallest p its non-zero seeds can
    reach), adjusted_p_min (Holm over the family's p_min: above ALPHA, too few seeds), power_sd,
    underpowered and word (indices into WORDS)."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim < 2:
        raise InitpruneError(f"a family is (contrasts, seeds) of differences, got shape {d.shape}")
    mark = _margin(margin)
    se = np.broadcast_to(np.asarray(se_test, dtype=float), d.shape[:-1])
    if not (np.isfinite(se).all() and (se >= 0).all()):
        raise InitpruneError("a test-set standard error is a number >= 0")
    seeds, zeros = np.isfinite(d).sum(axis=-1), (d == 0).sum(axis=-1)
    p = sign_flip_ps(d)
    p_min = np.minimum(1.0, 2.0 ** (1.0 - (seeds - zeros)))
    adjusted, adjusted_min = holm(p), holm(p_min)
    mean, low, high = intervals(d, se)
    _, low90, high90 = intervals(d, se, level=1 - 2 * ALPHA)
    with np.errstate(invalid="ignore"):
        sd = np.where(seeds >= 2, np.sqrt(np.nansum((d - mean[..., None]) ** 2, axis=-1) / np.maximum(seeds - 1, 1)),
                      np.nan)
    family = d.shape[-2]
    need = np.vectorize(lambda n: power_sd(int(n), family, mark), otypes=[float])(seeds)
    few = adjusted_min > ALPHA
    return {"seeds": seeds, "zeros": zeros, "mean": mean, "sd": sd, "low": low, "high": high, "low90": low90,
            "high90": high90, "p": p, "adjusted_p": adjusted, "p_min": p_min, "adjusted_p_min": adjusted_min,
            "power_sd": need, "underpowered": (need > 0) & (sd > need),
            "word": _codes(adjusted, low, high, low90, high90, mark, few)}


def judge(family: list[dict | None], margin: float) -> list[dict | None]:
    """One family's contrasts, each {"diffs": per-seed differences, "se_test": its test-set term
    (``test_se``; 0 without per-example records)}, None for a declared contrast without paired
    runs (it counts in the family at p = 1, and comes back None): each with seeds, zeros, mean,
    sd, se_test, low, high (95%), low90, high90, p, adjusted_p, p_min, adjusted_p_min, family,
    power_sd, underpowered ("underpowered (sd = 0.73)" or "") and verdict (one of WORDS)."""
    if not family:
        return []
    found = [None if c is None else _diffs(c["diffs"]) for c in family]
    width = max([len(x) for x in found if x is not None], default=1)
    d = np.full((len(family), width), np.nan)
    for row, x in zip(d, found):
        if x is not None:
            row[:len(x)] = x
    se = [0.0 if c is None else _se(c.get("se_test", 0.0)) for c in family]
    a = assess(d, margin, np.array(se))
    out = []
    for i, c in enumerate(family):
        if c is None:
            out.append(None)
            continue
        row = {k: float(a[k][i]) for k in ("mean", "sd", "low", "high", "low90", "high90", "p", "adjusted_p",
                                              "p_min", "adjusted_p_min", "power_sd")}
        out.append({**row, "seeds": int(a["seeds"][i]), "zeros": int(a["zeros"][i]), "se_test": se[i],
                    "family": len(family),
                    "underpowered": f"underpowered (sd = {row['sd']:.2f})" if a["underpowered"][i] else "",
                    "verdict": WORDS[int(a["word"][i])]})
    return out


def summary(diffs, records=None) -> dict:
    """The descriptive mean-over-sparsities row of one contrast (effect and interval, no word):
    ``diffs`` (seeds, sparsities), each seed's d at each tested sparsity; ``records`` (seeds,
    sparsities, N) their per-example differences, or None (no test-set term). Each seed's value
    is its mean over the sparsities, and the test-set term that of the per-example means."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or not d.size or not np.isfinite(d).all():
        raise InitpruneError(f"a mean-over-sparsities row needs every seed's finite difference at every sparsity "
                             f"(seeds, sparsities), got shape {d.shape}")
    se = 0.0 if records is None else test_se(records)
    per_seed = d.mean(axis=1)
    mean, low, high = interval(per_seed, se)
    _, low90, high90 = interval(per_seed, se, level=1 - 2 * ALPHA)
    return {"mean": mean, "low": low, "high": high, "low90": low90, "high90": high90, "seeds": d.shape[0],
            "sparsities": d.shape[1], "se_test": se}
