"""Claim 1 in seconds: training seconds against density, per method, one panel per ``compute``
(dense: masked dense weights; sparse, auto: the kept weights only, docs/method.md "Sparse
compute"), side by side on one seconds axis, so that a reader sees what each method really costs,
its warm-up and dense pruning epochs included. A last panel, where a method ran under two
computes at the same sparsities, divides the two: the saving sparse compute measured.

``seconds_vs_sparsity`` takes the runs' records (mappings, or a runs table's rows): ``label`` (the
method label, ``figures.label``; ``method`` where there is none), ``sparsity``, ``compute`` (a
run stored before it existed computed dense) and ``training_seconds``; a run stored before its
seconds were measured has none, and is left out with a one-line note under the figure. The
report's figure (``seconds``) draws the main comparison's runs at the page's width.
"""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib.pyplot as plt

from ..sparse import COMPUTES  # the training setting compute's values, dense first
from . import figures as F

DENSE = COMPUTES[0]  # masked dense weights: what a run stored before ``compute`` existed computed
FONT = 9  # points; at most WIDTH inches shown at 1,400 px: 9 * 1400 / (72 * 14) = 12.5 px, never less than 9 px
WIDTH = 14.0  # inches, the whole figure, legend included
STYLE = dict(zip(COMPUTES, ("-", "--", ":")))


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
                    "compute": r.get("compute") or training.get("compute") or DENSE,
                    "seconds": None if seconds is None or not math.isfinite(float(seconds)) else float(seconds)})
    return out


def _method(label: str) -> str:
    return label.split(" ", 1)[0]


def seconds_vs_sparsity(records, width: float = WIDTH) -> plt.Figure:
    """Figure: training seconds (log) against density (log), mean over the seeds with their min
    and max, one line per method label and one panel per compute present; the dense network (a
    run at sparsity 0) a horizontal line in each panel; and, where a method ran under more than
    one compute, a panel of the ratio of each to its dense compute at the same sparsity.
    ``width``: the whole figure's, in inches."""
    rows = _rows(records)
    kept = [r for r in rows if r["seconds"] is not None]
    left = sorted({r["label"] for r in rows if r["seconds"] is None})
    panels = _panels(kept)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 4.2), squeeze=False, sharey=False)
    _draw(dict(zip(panels, axes[0])), kept)
    _finish(fig, left, len(rows) - len(kept), width)
    return fig


def _grouped(kept: list[dict]):
    """{(compute, label): {sparsity: seconds}} of the pruned runs, {label: seconds} of those at 0."""
    groups: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    ceiling: dict[str, list[float]] = defaultdict(list)  # nothing pruned computes dense whatever asked
    for r in kept:
        if r["sparsity"] == 0:
            ceiling[r["label"]].append(r["seconds"])
        else:
            groups[(r["compute"], r["label"])][r["sparsity"]].append(r["seconds"])
    return groups, ceiling


def _ratios(groups) -> dict:
    """{(compute, label): {sparsity: its mean seconds / the dense compute's}} where both ran."""
    dense = {name: per for (c, name), per in groups.items() if c == DENSE}  # read, never grown
    ratios = {(c, name): {s: _mean(v) / _mean(dense[name][s]) for s, v in per.items() if s in dense.get(name, {})}
              for (c, name), per in groups.items() if c != DENSE}
    return {k: v for k, v in ratios.items() if v}


def _panels(kept: list[dict]) -> list[str]:
    """The panels of measured runs: one per compute present (dense first), and "ratio" where a
    method ran under two."""
    groups, _ = _grouped(kept)
    computes = [c for c in COMPUTES if any(k[0] == c for k in groups)]
    computes += sorted({k[0] for k in groups} - set(computes))
    return [*(computes or [DENSE]), *(["ratio"] if _ratios(groups) else [])]


def _draw(axes: dict, kept: list[dict], where: str = "") -> None:
    """Draw the measured runs ``kept`` into ``axes`` ({panel: axes}, ``_panels``); ``where``: the
    cell, named in each panel's title."""
    groups, ceiling = _grouped(kept)
    ratios = _ratios(groups)
    labels = sorted({k[1] for k in groups}, key=lambda name: (F.registry_order(_method(name)), name))
    densities = [1 - r["sparsity"] for r in kept if r["sparsity"] > 0]
    # the cell on a line of its own: three panels share the page's width, and a title of both on
    # one line ran into the next panel's
    named = (lambda text: f"{where}\n{text}") if where else (lambda text: text)  # noqa: E731
    seconds_axes = []
    for compute, ax in axes.items():
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
            # the seeds' range about their mean, never below 0 (equal seconds average a hair past their max)
            low = [max(m - min(per[s]), 0.0) for m, s in zip(mean, xs)]
            high = [max(max(per[s]) - m, 0.0) for m, s in zip(mean, xs)]
            ax.errorbar([1 - s for s in xs], mean, yerr=[low, high], ls=STYLE.get(compute, "-"), marker="o",
                        ms=4, capsize=3, **style)
        ax.set_yscale("log")
        _axes(ax, densities, "training seconds (log)", named(f"compute: {compute}"))
    if len(seconds_axes) > 1:  # one seconds axis for every compute: the panels compare by eye
        low = min(a.get_ylim()[0] for a in seconds_axes)
        high = max(a.get_ylim()[1] for a in seconds_axes)
        for a in seconds_axes:
            a.set_ylim(low, high)
    if "ratio" in axes:
        ax = axes["ratio"]
        for (compute, name), per in sorted(ratios.items(), key=lambda kv: (F.registry_order(_method(kv[0][1])),
                                                                            kv[0])):
            xs = sorted(per)
            ax.plot([1 - s for s in xs], [per[s] for s in xs], ls=STYLE.get(compute, "-"), marker="o", ms=4,
                    color=F.color(_method(name)), label=f"{name}, {compute}")
        ax.axhline(1.0, color="gray", lw=0.8)
        _axes(ax, densities, "seconds / the dense compute's", named("sparse compute's saving"))


@F.contributes("training_seconds", "Claim 1 in seconds: what each method really costs to train, its warm-up and "
               "dense pruning epochs included, under dense compute (masked dense weights) and sparse compute (the kept "
               "weights only) side by side; the last panel divides the two.", (F.BY_CELL, F.BY_FAMILY))
def seconds(table):
    """Training seconds against density of the main comparison's runs that measured them, a row
    of panels per dataset and architecture (``_draw``), at the page's width; each label is its
    method's and, where the table holds both, its regime's, whatever the compute (the computes
    are the panels)."""
    rows = F.main_comparison(table)
    if len(rows):
        several = rows["regime"].dropna().nunique() > 1
        rows = rows.assign(label=[F.label(m, o if isinstance(o, dict) else {}) + (f", {r}" if several and
                                                                                isinstance(r, str) else "")
                                  for m, o, r in zip(rows["method"], rows["options"], rows["regime"])])
    if "training_seconds" in rows and len(rows):
        rows = rows[[s is not None and math.isfinite(float(s)) for s in rows["training_seconds"]]]
    else:
        rows = rows.iloc[:0]
    if rows.empty:
        raise F.Empty("no run in this store measured its training seconds")
    kept = {key: _rows(F.cell_of(rows, key)) for key in F.cells_of(rows)}
    panels = _panels([r for part in kept.values() for r in part])
    fig, grid = F.panel_grid(list(kept), panels)
    for key, part in kept.items():
        mine = set(_panels(part))
        for p in panels:
            if p not in mine:
                grid[(key, p)].set_axis_off()
        _draw({p: grid[(key, p)] for p in panels if p in mine}, part, F.title_of(key))
    return F.noted(fig)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _axes(ax, densities, ylabel: str, title: str) -> None:
    F.density_axis(ax, densities or [1.0])
    ax.set_xlabel("density (weights kept, log)", fontsize=FONT + 1)  # as wide as a third of the page allows
    ax.set_ylabel(ylabel, fontsize=FONT + 1)
    ax.set_title(title, fontsize=FONT + 2)
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3)


def _finish(fig, left: list[str], missing: int, width: float = WIDTH) -> None:
    """One legend beside the panels, each entry once; the note, and what was left out, under them."""
    entries: dict = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(text, handle)
    legend = 0.0
    if entries:
        legend = min(width / 3.5, 0.6 + 0.075 * max(len(t) for t in entries))
        fig.legend(list(entries.values()), list(entries), loc="center left",
                   bbox_to_anchor=((width - legend) / width, 0.5), fontsize=FONT, frameon=False)
    lines = [F.NOTE]
    if missing:
        lines.insert(0, f"left out: {missing} run{'s' * (missing > 1)} without training seconds "
                        f"(stored before they were measured): {', '.join(left)}")
    fig.text(0.005, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=FONT, color="gray")
    fig.tight_layout(rect=(0, 0.04 + 0.035 * len(lines), (width - legend) / width, 1))
