"""The criterion controls' figure (docs/method.md, "Criterion controls"): the kept fraction per |θ0|
quartile, from the ``kept_by_quartile`` that dissipating, combined and their controls report. A
criterion blind to |θ0| (gradual random) keeps every quartile alike; relative movement keeps
mostly the weights that started near zero. ``quartiles`` is the report's figure (every run that
reports them, whatever its method); ``kept_by_quartile`` draws hand-picked rows.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from ..errors import InitpruneError
from . import figures as F
from . import labels

QUARTILES = ("1 (smallest |θ0|)", "2", "3", "4 (largest |θ0|)")


def _check(rows) -> None:
    if not rows:
        raise InitpruneError("kept_by_quartile: no (label, fractions) to draw; give at least one")
    for label, fractions in rows:
        if len(fractions) != len(QUARTILES):
            raise InitpruneError(f"kept_by_quartile: '{label}' has {len(fractions)} fractions; give one per "
                                 f"quartile ({len(QUARTILES)}), smallest |θ0| first")
        if any(f is not None and not 0 <= f <= 1 for f in fractions):
            raise InitpruneError(f"kept_by_quartile: '{label}' has a fraction outside [0, 1]: {list(fractions)}")


def _bars(ax, rows, colors=None) -> None:
    """One group of bars per quartile, one bar per ``(label, fractions)``; None: no bar."""
    width = 0.8 / len(rows)
    for i, (label, fractions) in enumerate(rows):
        heights = [math.nan if f is None else f for f in fractions]
        ax.bar([q + (i - (len(rows) - 1) / 2) * width for q in range(len(QUARTILES))], heights, width,
               label=label, color=(colors or {}).get(label, f"C{i % 10}"))
    ax.set_xticks(range(len(QUARTILES)), QUARTILES)


def kept_by_quartile(rows: list[tuple[str, list]], title: str = "kept fraction per |θ0| quartile"):
    """Grouped bars, one group per quartile of |θ0| (smallest first) and one bar per
    ``(label, fractions)`` in ``rows``: the four kept fractions (a result's
    ``extra["kept_by_quartile"]["weighted"]``, or one layer's). A fraction that is None (a
    quartile too small a layer leaves empty) has no bar. Returns the matplotlib Figure."""
    _check(rows)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.2 + 0.5 * len(rows) * len(QUARTILES)), 3.8))
    _bars(ax, rows)
    ax.set_xlabel("quartile of |θ0| (per layer)")
    ax.set_ylabel("kept fraction at the final mask")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _weighted(extra) -> list | None:
    report = extra.get("kept_by_quartile") if isinstance(extra, dict) else None
    return report.get("weighted") if isinstance(report, dict) else None


def _mean(fractions: list[list]) -> list:
    """The mean over runs of each quartile's fraction, None where no run has one."""
    columns = [[f[q] for f in fractions if f[q] is not None] for q in range(len(QUARTILES))]
    return [float(np.mean(c)) if c else None for c in columns]


@F.contributes("kept_by_quartile", "Which weights each criterion keeps, by their size at initialisation: a "
               "criterion blind to |θ0| (gradual random) keeps every quartile alike; relative movement keeps mostly "
               "the weights that started near zero, magnitude the large ones.", (F.BY_CELL, F.BY_FAMILY))
def quartiles(table):
    """The kept fraction per |θ0| quartile of the final mask (weighted over the layers), mean over
    seeds, one bar per method label of the main comparison that reports it, at the highest
    sparsity of each dataset and architecture; a row of panels per dataset and architecture."""
    rows = F.regimed(F.main_comparison(table))
    rows = rows[[_weighted(e) is not None for e in rows["extra"]]] if len(rows) else rows
    if rows.empty:
        raise F.Empty("no run in this store reports its kept fraction per |θ0| quartile")
    fig, panels = F.panel_grid(F.cells_of(rows), ["all"])
    for (key, _), ax in panels.items():
        part = F.cell_of(rows, key)
        top = part["sparsity"].max()
        part = part[part["sparsity"] == top]
        names = F.in_registry_order(part, "label")
        shown = [(n, _mean([_weighted(e) for e in part[part["label"] == n]["extra"]])) for n in names]
        colors = {n: F.style_of(n, _config(part, n), names)["color"] for n in names}  # as the panel alone
        _bars(ax, shown, colors)
        F.label_axes(ax, "quartile of |θ0| (per layer)", "kept fraction at the final mask",
                     F.title_of(key, f"s={top:g}, mean over seeds"))
    return F.noted(fig)


def _config(part, name: str) -> dict:
    """The identity of the first run of label ``name`` in ``part`` (for its style)."""
    return labels.identities(part[part["label"] == name].iloc[:1])[0]
