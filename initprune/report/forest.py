"""The forest plot of the verdict: each primary contrast of the cell that carries it, its effect at
each tested sparsity with its 95% interval, a line at 0 and the equivalence margin shaded, rows
grouped by claim, one panel per allocation regime (docs/method.md, "The verdict"). A reader sees at
once which intervals clear 0 and which sit inside the margin.
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt

from . import claims
from .figures import plain, wrapped

ROW = 0.34  # inches per contrast: its tested sparsities side by side within it
WIDTH = 13.0  # inches: at 100 dpi about the 1,300 px a 1,400 px page gives a figure
MARKERS = "osD^v<>ph"


def forest(rows) -> matplotlib.figure.Figure | None:
    """The forest plot of the carrier cell's primary tests (``claims.verdicts`` rows, or
    claims.json's), or None where no primary contrast has a tested sparsity with runs: nothing to
    draw, and nothing is written."""
    tables = [t for t in claims.glance(rows) if t["carries"]]
    if not tables:
        return None
    table = tables[0]
    found = [r for row in table["rows"] for r in row["cells"] if r is not None and r["verdict"] is not None]
    if not found:
        return None
    regimes = list(dict.fromkeys(g for g, _ in table["columns"]))
    sparsities = sorted({s for _, s in table["columns"]})
    named = {s: f"s = {n}" for s, n in claims.labels.sparsities(sparsities).items()}
    colors = dict(zip(sparsities, plt.get_cmap("viridis")([0.0 + 0.7 * i / max(1, len(sparsities) - 1)
                                                           for i in range(len(sparsities))])))
    # y positions: a claim's heading, then its contrasts, top to bottom
    ticks, labels, headings, place, y = [], [], [], {}, 0.0
    for number in dict.fromkeys(row["claim"] for row in table["rows"]):
        text = next(r["text"] for row in table["rows"] for r in row["cells"] if r is not None and r["claim"] == number)
        headings.append((y, f"Claim {number}: {text}"))
        y += 1
        for row in (r for r in table["rows"] if r["claim"] == number):
            ticks.append(y)
            labels.append(f"{row['method']} vs {row['rival']}")
            place[(row["method"], row["rival"])] = y
            y += 1
    height = max(3.0, ROW * y + 1.6)
    fig, axes = plt.subplots(1, len(regimes), figsize=(WIDTH, height), sharey=True, squeeze=False)
    margin = found[0]["margin"]
    spread = len(sparsities)
    for ax, regime in zip(axes[0], regimes):
        ax.axvspan(-margin, margin, color="0.85", zorder=0, label=f"equivalence margin ±{margin:g} points")
        ax.axvline(0, color="0.3", lw=1, zorder=1)
        for row in table["rows"]:
            for (g, s), r in zip(table["columns"], row["cells"]):
                if g != regime or r is None or r["verdict"] is None:
                    continue
                offset = (sparsities.index(s) - (spread - 1) / 2) * 0.6 / max(1, spread)
                at = place[(row["method"], row["rival"])] + offset
                if r["low"] is not None and not math.isnan(r["low"]):
                    ax.plot([r["low"], r["high"]], [at, at], color=colors[s], lw=2, zorder=2)
                filled = r["verdict"] not in ("inconclusive", "too few seeds", "equivalent")
                ax.plot([r["mean"]], [at], MARKERS[sparsities.index(s) % len(MARKERS)], ms=6, zorder=3,
                        color=colors[s], markerfacecolor=colors[s] if filled else "white", label=named[s])
        for at, _ in headings[1:]:
            ax.axhline(at - 0.5, color="0.75", lw=0.6)
        ax.set_title(f"{regime} regime", fontsize=12)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=10)
    ax0 = axes[0][0]
    ax0.set_yticks(ticks, [plain(t) for t in labels], fontsize=10)
    for at, text in headings:
        ax0.text(0.0, at, plain(text), transform=ax0.get_yaxis_transform(), ha="right", va="center",
                 fontsize=10, fontweight="bold")
    ax0.set_ylim(y - 0.4, -0.6)
    handles, names = ax0.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    fig.legend(list(unique.values()), list(unique.keys()), loc="lower center", ncol=len(unique), fontsize=10,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    first = found[0]
    where = f" [{first['where']}]" if first["where"] else ""
    # the title in lines the figure's width holds (a long cell name ran past both edges)
    title = wrapped(f"{first['dataset']}/{first['arch']}{where}: the primary contrasts at each tested sparsity "
                    "(filled: better or worse, Holm-adjusted; open: no such difference found)", WIDTH, 12)
    fig.suptitle(title, fontsize=12)
    fig.supxlabel("effect: method minus rival, points of test accuracy (mean over seeds, 95% interval)", fontsize=10,
                  y=0.4 / height)
    fig.tight_layout(rect=(0, 0.55 / height, 1, 1 - (0.3 + 0.2 * title.count("\n")) / height))
    return fig
