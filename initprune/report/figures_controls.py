"""The criterion controls' figure (docs/method.md, "Criterion controls"): the kept fraction per |θ0|
quartile, from the ``kept_by_quartile`` that dissipating, combined and their controls report. A
criterion blind to |θ0| (gradual random) keeps every quartile alike; relative movement keeps
mostly the weights that started near zero.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt

from ..errors import InitpruneError

QUARTILES = ("1 (smallest |θ0|)", "2", "3", "4 (largest |θ0|)")


def kept_by_quartile(rows: list[tuple[str, list]], title: str = "kept fraction per |θ0| quartile"):
    """Grouped bars, one group per quartile of |θ0| (smallest first) and one bar per
    ``(label, fractions)`` in ``rows``: the four kept fractions (a result's
    ``extra["kept_by_quartile"]["weighted"]``, or one layer's). A fraction that is None (a
    quartile too small a layer leaves empty) has no bar. Returns the matplotlib Figure."""
    if not rows:
        raise InitpruneError("kept_by_quartile: no (label, fractions) to draw; give at least one")
    for label, fractions in rows:
        if len(fractions) != len(QUARTILES):
            raise InitpruneError(f"kept_by_quartile: '{label}' has {len(fractions)} fractions; give one per "
                                 f"quartile ({len(QUARTILES)}), smallest |θ0| first")
        if any(f is not None and not 0 <= f <= 1 for f in fractions):
            raise InitpruneError(f"kept_by_quartile: '{label}' has a fraction outside [0, 1]: {list(fractions)}")
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 + 0.5 * len(rows) * len(QUARTILES)), 3.8))
    width = 0.8 / len(rows)
    for i, (label, fractions) in enumerate(rows):
        heights = [math.nan if f is None else f for f in fractions]
        ax.bar([q + (i - (len(rows) - 1) / 2) * width for q in range(len(QUARTILES))], heights, width,
               label=label, color=f"C{i % 10}")
    ax.set_xticks(range(len(QUARTILES)), QUARTILES)
    ax.set_xlabel("quartile of |θ0| (per layer)")
    ax.set_ylabel("kept fraction at the final mask")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
