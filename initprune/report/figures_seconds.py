"""Claim 1 in seconds: training seconds against density, per method, one panel per ``compute``
(dense: masked dense weights; sparse, auto: the kept weights only, docs/method.md "Sparse
compute"), side by side on one seconds axis, so that a reader sees what each method really costs,
its warm-up and dense pruning epochs included. A last panel, where a method ran under two
computes at the same sparsities, divides the two: the saving sparse compute measured.

``seconds_vs_sparsity`` takes the runs' records (mappings, or a runs table's rows): ``label`` (the
method label, ``figures.label``; ``method`` where there is none), ``sparsity``, ``compute`` (a
run stored before it existed computed dense) and ``training_seconds``; a run stored before its
seconds were measured has none, and is left out with a one-line note under the figure.
"""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib.pyplot as plt

from . import figures as F

COMPUTES = ("dense", "sparse", "auto")
FONT = 9  # points; at most WIDTH inches shown at 1,400 px: 9 * 1400 / (72 * 14) = 12.5 px, never less than 9 px
WIDTH = 14.0  # inches, the whole figure, legend included
STYLE = {"dense": "-", "sparse": "--", "auto": ":"}


def _rows(records) -> list[dict]:
    if hasattr(records, "to_dict"):  # a runs table
        records = records.to_dict("records")
    out = []
    for r in records:
        training = r.get("training") if isinstance(r.get("training"), dict) else {}
        name = r.get("label") or r.get("method")
        if r.get("label") is None and r.get("method") is not None and "options" in r:
            name = F.label(r["method"], r.get("options") or {})
        seconds = r.get("training_seconds")
        out.append({"label": str(name), "sparsity": float(r["sparsity"]),
                    "compute": r.get("compute") or training.get("compute") or "dense",
                    "seconds": None if seconds is None or not math.isfinite(float(seconds)) else float(seconds)})
    return out


def _method(label: str) -> str:
    return label.split(" ", 1)[0]


def seconds_vs_sparsity(records) -> plt.Figure:
    """Figure: training seconds (log) against density (log), mean over the seeds with their min
    and max, one line per method label and one panel per compute present; the dense network (a
    run at sparsity 0) a horizontal line in each panel; and, where a method ran under more than
    one compute, a panel of the ratio of each to its dense compute at the same sparsity."""
    rows = _rows(records)
    kept = [r for r in rows if r["seconds"] is not None]
    left = sorted({r["label"] for r in rows if r["seconds"] is None})
    groups: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    ceiling: dict[str, list[float]] = defaultdict(list)  # nothing pruned computes dense whatever asked
    for r in kept:
        if r["sparsity"] == 0:
            ceiling[r["label"]].append(r["seconds"])
        else:
            groups[(r["compute"], r["label"])][r["sparsity"]].append(r["seconds"])
    computes = [c for c in COMPUTES if any(k[0] == c for k in groups)]
    computes += sorted({k[0] for k in groups} - set(computes))
    computes = computes or ["dense"]
    labels = sorted({k[1] for k in groups}, key=lambda name: (F._order(_method(name)), name))
    ratios = {(c, name): {s: _mean(v) / _mean(groups[("dense", name)][s]) for s, v in groups[(c, name)].items()
                          if s in groups[("dense", name)]}
              for c in computes if c != "dense" for name in labels}
    ratios = {k: v for k, v in ratios.items() if v}
    panels = [*computes, *(["ratio"] if ratios else [])]
    height = 4.2
    fig, axes = plt.subplots(1, len(panels), figsize=(WIDTH, height), squeeze=False, sharey=False)
    densities = [1 - r["sparsity"] for r in kept if r["sparsity"] > 0]
    seconds_axes = []
    for ax, compute in zip(axes[0], panels):
        if compute == "ratio":
            continue
        seconds_axes.append(ax)
        for name, seconds in ceiling.items():  # the dense network: a line across every panel
            ax.axhline(_mean(seconds), ls="-.", lw=1.2, color=F.color(_method(name)), label=name)
        for name in labels:
            per = groups.get((compute, name))
            if not per:
                continue
            style = dict(color=F.color(_method(name)), label=name)
            xs = sorted(per)
            mean = [_mean(per[s]) for s in xs]
            low = [m - min(per[s]) for m, s in zip(mean, xs)]
            high = [max(per[s]) - m for m, s in zip(mean, xs)]
            ax.errorbar([1 - s for s in xs], mean, yerr=[low, high], ls=STYLE.get(compute, "-"), marker="o",
                        ms=4, capsize=3, **style)
        ax.set_yscale("log")
        _axes(ax, densities, "training seconds (log)", f"compute: {compute}")
    if len(seconds_axes) > 1:  # one seconds axis for every compute: the panels compare by eye
        low = min(a.get_ylim()[0] for a in seconds_axes)
        high = max(a.get_ylim()[1] for a in seconds_axes)
        for a in seconds_axes:
            a.set_ylim(low, high)
    if ratios:
        ax = axes[0][len(panels) - 1]
        for (compute, name), per in sorted(ratios.items(), key=lambda kv: (F._order(_method(kv[0][1])), kv[0])):
            xs = sorted(per)
            ax.plot([1 - s for s in xs], [per[s] for s in xs], ls=STYLE.get(compute, "-"), marker="o", ms=4,
                    color=F.color(_method(name)), label=f"{name}, {compute}")
        ax.axhline(1.0, color="gray", lw=0.8)
        _axes(ax, densities, "seconds / the dense compute's", "sparse compute's saving")
    _finish(fig, left, len(rows) - len(kept))
    return fig


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _axes(ax, densities, ylabel: str, title: str) -> None:
    F._density_axis(ax, densities or [1.0])
    ax.set_xlabel("density (fraction of weights kept, log)", fontsize=FONT + 1)
    ax.set_ylabel(ylabel, fontsize=FONT + 1)
    ax.set_title(title, fontsize=FONT + 2)
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3)


def _finish(fig, left: list[str], missing: int) -> None:
    """One legend beside the panels, each entry once; the note, and what was left out, under them."""
    entries: dict = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(text, handle)
    legend = 0.0
    if entries:
        legend = min(4.0, 0.6 + 0.075 * max(len(t) for t in entries))
        fig.legend(list(entries.values()), list(entries), loc="center left",
                   bbox_to_anchor=((WIDTH - legend) / WIDTH, 0.5), fontsize=FONT, frameon=False)
    lines = [F.NOTE]
    if missing:
        lines.insert(0, f"left out: {missing} run{'s' * (missing > 1)} without training seconds "
                        f"(stored before they were measured): {', '.join(left)}")
    fig.text(0.005, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=FONT, color="gray")
    fig.tight_layout(rect=(0, 0.04 + 0.035 * len(lines), (WIDTH - legend) / WIDTH, 1))
