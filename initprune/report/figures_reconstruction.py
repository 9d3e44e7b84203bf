"""What an autoencoder reconstructs: a few test images (the first of the test set, the same for
every run: ``initprune.samples``) as dense, random and each paper method reconstruct them at the
highest tested sparsity of a reconstruction cell, one row per method, the input on top. A picture
says what a difference in test error means. Drawn from the images each reconstruction run keeps
beside its result (the runs table's column ``reconstructions``); left out with one line where no
run kept any."""

from __future__ import annotations

import math

import numpy as np

from . import common, labels, metric
from . import figures as F


def _shown(method: str) -> bool:
    """Dense and the paper's methods (random among them): the rows of the picture."""
    entry = common.entry(method)
    return entry is not None and (common.dense(method) or entry.family == "paper")


def _at(part) -> tuple[float, str]:
    """The sparsity to show and how it was chosen: the highest the cell's executions declared
    tested, else the highest run."""
    declared = [float(s) for v in (part["tested_sparsities"] if "tested_sparsities" in part else [])
                if isinstance(v, (list, tuple)) for s in v]
    if declared:
        return max(declared), "highest tested sparsity"
    pruned = part[~part["method"].map(common.dense)]["sparsity"]
    return float(pruned.max()), "highest sparsity run (none declared tested)"


def _image(flat: np.ndarray) -> np.ndarray | None:
    """An example as a 2-D image (a channel-first image's first channel, a square vector as a
    square), None for a 1-D signal that is no square (drawn as a line)."""
    a = np.asarray(flat, dtype=float)
    a = a[0] if a.ndim == 3 else a
    if a.ndim == 2:
        return a
    side = math.isqrt(a.size)
    return a.reshape(side, side) if side * side == a.size else None


def _draw(ax, example: np.ndarray) -> None:
    image = _image(example)
    if image is None:
        ax.plot(np.ravel(example), lw=0.8, color="black")
        ax.set_ylim(0, 1)
    else:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


@F.contributes("reconstructions", "The first test images (top row) as dense, random and each paper method "
               "reconstruct them at the highest tested sparsity of an autoencoder's cell, each beside its mean "
               "test error: what a difference in reconstruction error looks like (blur, lost strokes, one digit "
               "for another).")
def reconstructions(table):
    """Test images reconstructed by dense, random and each paper method at the highest tested
    sparsity, per reconstruction cell: the input on top, one row per method label (and regime),
    each the run of its smallest seed, its label beside with the mean test reconstruction error
    over the seeds."""
    table = metric.scored(table)
    if "reconstructions" not in table:
        raise F.Empty("no reconstruction run in this store kept its test images")
    kept = table["reconstructions"].map(lambda v: isinstance(v, dict) and "outputs" in v)
    rows = F.main_comparison(table[kept & (table["task"] == "reconstruction")])
    rows = rows[rows["method"].map(_shown)] if len(rows) else rows
    if rows.empty:
        raise F.Empty("no reconstruction run of dense, random or a paper method in this store kept its test images")
    key = F.cells_of(rows)[0]  # the report draws a figure per cell
    part = F.cell_of(rows, key)
    at, how = _at(F.cell_of(table, key))
    shown = part[part["method"].map(common.dense) | (part["sparsity"] == at)]
    if not (~shown["method"].map(common.dense)).any():
        raise F.Empty(f"no pruned reconstruction run at s={at:g} kept its test images")
    lines = []
    for (name, regime), group in shown.groupby(["label", shown["regime"].fillna("")], sort=False):
        first = group.sort_values("seed").iloc[0]
        lines.append((F.registry_order(common.base(name)), regime, name, first, group["score"].mean()))
    lines.sort(key=lambda x: (x[0], x[1]))
    count = min(len(first["reconstructions"]["outputs"]) for *_, first, _ in lines)
    targets = lines[0][3]["reconstructions"]["targets"]
    fig, axes = F.plt.subplots(len(lines) + 1, count, figsize=(F.WIDTH, 0.95 * (len(lines) + 1)),
                               squeeze=False, layout="constrained")
    for j in range(count):
        _draw(axes[0][j], targets[j])
        for i, (_, _, _, first, _) in enumerate(lines, start=1):
            _draw(axes[i][j], first["reconstructions"]["outputs"][j])
    axes[0][0].set_ylabel("input", rotation=0, ha="right", va="center", fontsize=F.SMALLEST + 1)
    named = labels.sparsities([at])
    several = len({regime for _, regime, *_ in lines if regime}) > 1  # name the regime only where two are shown
    for i, (_, regime, name, _, error) in enumerate(lines, start=1):
        text = f"{name}{', ' + regime if regime and several else ''}\nMSE {error:.4f}"
        axes[i][0].set_ylabel(F.plain(text), rotation=0, ha="right", va="center", fontsize=F.SMALLEST + 1)
    fig.suptitle(F.plain(f"{key[0]} / {key[1]}, s={named[at]} ({how}); dense at s=0; MSE: mean test reconstruction "
                         "error over seeds (lower is better)"), fontsize=F.RC["axes.titlesize"])
    return F.noted(fig)
