"""The paper's figures, each a function of a table of runs (a pandas DataFrame, one row per run,
as ``results.runs_table`` returns it) that returns a matplotlib figure.

Columns used: method, dataset, arch, sparsity, seed, ablation, task and the test metric it names
(``metric.scored``: test_accuracy, test_reconstruction_error), epochs, options
(dict of resolved pruner options), training (dict of resolved training settings; missing: {}),
threads, device, version (the pruner's; missing: today's), history (list of per-epoch dicts) and
extra (the method's report).

Runs are grouped by their whole identity but the seed (``labels.identity``: dataset,
architecture, method label, and epochs, options, training settings, threads, device and pruner
version), the rule the claims follow too. Runs of different identities are never averaged; where
one label has several, each says how it differs ("random [epochs=2]", "random [threads=2]",
"snip [v1]"). The main comparison holds the groups that profiles' sweeps ran (``_picked``; a run
made by hand with ``run`` never replaces one, ``store_groups`` lists it).

Every figure has a row of panels per dataset and architecture, each named in its title, and one
legend below them; the report draws each figure apart per cell and, for the comparisons, per
family of methods (``parts``), as wide as the page shows it (``WIDTH`` at ``DPI``, type from
``SMALLEST`` points), and leaves out with one line one that has nothing to draw (``Empty``).
Text that comes from users is never mathtext (``plain``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .. import masks, pruners
from ..errors import InitpruneError
from ..lab.results import BY_HAND
from . import claims, common, cost, labels, metric

NOTE = "initprune, on our grid (docs/method.md), not the paper's numbers"
FAMILY_STYLE = {"paper": "-", "baseline": ":", "reference": "--"}
MARKERS = ("o", "s", "^", "D", "v", "P")

# the page: report.html shows a figure at most about 1,120 px wide, so every figure is drawn that
# wide (WIDTH inches at DPI) and its text never smaller than 7 pt (about 14 px there)
WIDTH, ROW, DPI = 7.5, 3.3, 150
RC = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
      "legend.fontsize": 8, "figure.titlesize": 10, "legend.title_fontsize": 8}
SMALLEST = 7  # pt: the note and the densest labels; the legibility test holds the page to 9 px
LEGEND_MOST = 10  # entries a legend should hold; a figure's parts keep it near that


class Empty(Exception):
    """A figure with nothing to draw in this table: its message is the one line the report shows
    in its place ("no analysis-mode runs in this store"); nothing is written."""


# colours for methods that declare none (a plugin's, one the registry no longer knows), after
# those the registered methods declare are taken out
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan", "teal", "crimson", "navy", "darkgoldenrod", "magenta", "slateblue",
           "chocolate", "darkseagreen")


def color(method: str) -> str:
    """The method's declared colour, else one no registered method declares: registered methods
    in registry order, others by a hash of their name."""
    entry = common.entry(method)  # None: a method the registry no longer knows gets a style of its own
    if entry is not None and entry.color:
        return entry.color
    names = pruners.PRUNERS.names()
    free = [c for c in PALETTE if c not in {pruners.PRUNERS[m].color for m in names}] or list(PALETTE)
    undeclared = [m for m in names if not pruners.PRUNERS[m].color]
    index = undeclared.index(method) if method in undeclared else int(hashlib.sha256(method.encode()).hexdigest(), 16)
    return free[index % len(free)]


def shades(base: str, n: int) -> list[str]:
    """``n`` shades of one hue, darkest first (a method's variants: its schedules, its runs at
    other epochs); one: the colour itself."""
    import colorsys

    from matplotlib.colors import to_hex, to_rgb

    if n <= 1:
        return [base]
    h, lightness, s = colorsys.rgb_to_hls(*to_rgb(base))
    low, high = max(0.12, lightness - 0.22), min(0.78, lightness + 0.22)
    if high - low < 0.3:  # black, white: a grey ramp
        low, high = (0.1, 0.6) if lightness < 0.5 else (0.4, 0.85)
    return [to_hex(colorsys.hls_to_rgb(h, v, s)) for v in np.linspace(low, high, n)]


family = common.family
label = common.label  # "dissipating (cubic)": the one definition, in the registry's module


# ---- what a run was: its whole identity but seed and sparsity (labels.identity) ------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


_configs = labels.identities
_json = labels.canonical


def profiled(table, drop=(), within=("dataset", "arch")):
    """``table`` with the columns ``profile`` (the identity without the keys ``drop``, as JSON:
    runs of one profile may be averaged, others never) and ``suffix`` (what tells the profile from
    the others of the same ``within`` group, and its pruner version where not today's)."""
    table = table.reset_index(drop=True)  # one label per row, even for a table concatenated by hand
    configs = [{k: v for k, v in c.items() if k not in drop} for c in _configs(table)]
    table = table.assign(profile=[_json(c) for c in configs], suffix="")
    if table.empty:
        return table
    by_profile = dict(zip(table["profile"], configs))
    for _, part in table.groupby(list(within), sort=False):
        profiles = list(dict.fromkeys(part["profile"]))
        tell = dict(zip(profiles, labels.suffixes([by_profile[p] for p in profiles])))
        table.loc[part.index, "suffix"] = [tell[p] for p in part["profile"]]
    return table


_named = labels.named


REGIME_TITLE = {"uniform": "uniform: every method layerwise", "free": "free: random ERK, scores global"}


def _regime(method: str, config: dict) -> str | None:
    """The allocation regime a run belongs to: "uniform" (layerwise), "free" (global or erk), None
    for the references (dense, post-training), which stand in both."""
    if family(method) == "reference":
        return None
    return common.regime(method, config) or ("uniform" if config.get("scope") in (None, common.UNIFORM)
                                             else "free")


def _origins(table) -> list[str]:
    """Where each run came from: the profile whose sweep ran it, ``BY_HAND`` for ``run``'s, "?"
    where the table does not say (a table made by hand)."""
    return [o if isinstance(o, str) and o else "?" for o in table["origin"]] if "origin" in table \
        else ["?"] * len(table)


def _labelled(table):
    """The unablated runs with the columns ``label``, ``regime``, ``rest`` (the options beyond
    the label and scope that differ from the defaults, as JSON) and ``origin``."""
    table = metric.scored(table[table["ablation"] == "none"] if "ablation" in table else table)
    configs = _configs(table)
    methods = list(table["method"])
    rest = []
    for method, config in zip(methods, configs):
        entry, defaults = common.entry(method), common.defaults(method)
        keys = set(entry.lines if entry is not None else ()) | {"scope", "epochs"}
        rest.append(_json({k: v for k, v in config.items() if k in defaults and k not in keys and v != defaults[k]}))
    return table.assign(label=[label(m, c) for m, c in zip(methods, configs)],
                        regime=[_regime(m, c) for m, c in zip(methods, configs)], rest=rest,
                        origin=_origins(table))


def _picked(table):
    """Of the labelled runs, those of the main comparison: the runs of a profile's sweep (those
    ``run`` made by hand only in a store that holds nothing else), and per dataset, arch, regime
    and label the option set with the method's defaults, else the one that covers the most points."""
    swept = table[table["origin"] != BY_HAND]
    table = swept if len(swept) else table
    keep = []
    for _, part in table.groupby(["dataset", "arch", "label", table["regime"].fillna("")], sort=False):
        counts = part["rest"].value_counts()
        keep.append(part[part["rest"] == ("{}" if "{}" in counts else counts.index[0])])
    return keep


def main_comparison(table):
    """The main comparison, runs grouped by what they were (``_picked``). Runs that still differ
    (in epochs, training settings, or scope within a regime) are never averaged: each group gets
    what tells it from the others of its label and regime in its label. Adds the columns
    ``label``, ``regime`` and ``profile``."""
    import pandas as pd

    table = _labelled(table)
    if table.empty:
        return table.assign(label=pd.Series(dtype=str), regime=pd.Series(dtype=object),
                            profile=pd.Series(dtype=str)).drop(columns="rest")
    table = pd.concat(_picked(table)).drop(columns="rest")
    table = profiled(table.assign(within=table["regime"].fillna("")),
                      within=("dataset", "arch", "label", "within")).drop(columns="within")
    table["label"] = [_named(n, s) for n, s in zip(table["label"], table["suffix"])]
    return table.drop(columns="suffix")


def regimed(table):
    """The main comparison's runs (``main_comparison``) with each label that stands in more than one
    regime naming its own ("random, free"): for a figure that draws the regimes in one panel."""
    if table.empty:
        return table
    several = table.groupby("label")["regime"].nunique() > 1
    return table.assign(label=[f"{n}, {r}" if several.get(n, False) and isinstance(r, str) else n
                               for n, r in zip(table["label"], table["regime"])])


def store_groups(table):
    """Every group of runs (its whole identity but the seed; an ablation a group of its own) that
    the main comparison leaves out, one row each: its cell, its name (what tells it from the other
    groups of its method there), where it came from (the profiles whose sweeps ran it, or ``run``
    by hand), and its runs, seeds and sparsities. Variants (K-starts' k, dissipating's E_d) show
    in their method's own figures, sanity checks in ``ablation_loss``; a group ``run`` made by
    hand shows nowhere else."""
    import pandas as pd

    columns = ["dataset", "arch", "group", "origin", "runs", "seeds", "sparsities"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.reset_index(drop=True)
    shown = set(pd.concat(_picked(_labelled(table))).index) if (table["ablation"] == "none").any() else set()
    table = profiled(table.assign(origin=_origins(table), label=[label(m, c) for m, c in
                                                                   zip(table["method"], _configs(table))]),
                      within=("dataset", "arch", "method"))
    rows = []
    for (dataset, arch, _, ablation), part in table.groupby(["dataset", "arch", "profile", "ablation"],
                                                                  sort=False):
        if ablation == "none" and set(part.index) <= shown:
            continue
        name = _named(part["label"].iloc[0], part["suffix"].iloc[0])
        rows.append({"dataset": dataset, "arch": arch,
                     "group": name + ("" if ablation == "none" else f", {ablation}"),
                     "origin": ", ".join(sorted(set(part["origin"]), key=lambda o: (o == BY_HAND, o)))
                     .replace(BY_HAND, "run (by hand)"),
                     "runs": len(part), "seeds": ", ".join(map(str, sorted({int(s) for s in part["seed"]}))),
                     "sparsities": ", ".join(labels.sparsities(part["sparsity"]).values())})
    return pd.DataFrame(rows, columns=columns)


def cells_of(table) -> list[tuple[str, str]]:
    return sorted({(d, a) for d, a in zip(table["dataset"], table["arch"])})


def cell_of(table, key):
    return table[(table["dataset"] == key[0]) & (table["arch"] == key[1])]


def panel_grid(rows: list, cols: list, height: float = ROW):
    """One panel per (row, column), the figure as wide as the page (``WIDTH``) whatever the
    columns, a row ``height`` inches tall; an empty figure still has one (blank) panel. Laid out
    by matplotlib's constrained layout: no title, label or legend is cut or overlaps another."""
    nr, nc = max(1, len(rows)), max(1, len(cols))
    fig, axes = plt.subplots(nr, nc, figsize=(WIDTH, height * nr), squeeze=False, layout="constrained")
    panels = {(r, c): axes[i][j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    for i in range(nr):
        for j in range(nc):
            if i >= len(rows) or j >= len(cols):
                axes[i][j].set_axis_off()
    return fig, panels


def title_of(key, *more) -> str:
    return ", ".join([f"{key[0]} / {key[1]}", *[m for m in more if m]])


def noted(fig):
    """The note and one legend for the whole figure, below the panels (no legend hides a curve,
    none is taller than the figure), each entry once: a name has one style in every panel. The
    figure grows by the legend's rows and by a strip above the panels, never in width: the
    strip holds the note at its right and leaves its left to a heading (``heading``)."""
    entries = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            if not text.startswith("_"):
                entries.setdefault(text, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    grow = STRIP
    if entries:
        longest = max(len(plain(t)) for t in entries)
        ncols = int(max(1, min(4, len(entries), WIDTH // (0.75 + 0.075 * longest))))
        rows = math.ceil(len(entries) / ncols)
        grow += 0.12 + 0.21 * rows
        fig.legend(list(entries.values()), [plain(t) for t in entries], loc="outside lower center", ncols=ncols,
                   frameon=False)
    height = fig.get_figheight() + grow
    fig.set_figheight(height)
    fig.get_layout_engine().set(rect=(0, 0, 1, 1 - STRIP / height))
    fig.text(0.995, 1 - 0.06 / height, NOTE, ha="right", va="top", fontsize=SMALLEST, color="gray")
    return fig


STRIP = 0.3  # inches above the panels: the figure's heading and the note


def heading(fig, text: str) -> None:
    """The figure's heading, at the left of the strip above its panels (``noted`` keeps it free)."""
    fig.text(0.005, 1 - 0.04 / fig.get_figheight(), plain(text), ha="left", va="top", fontsize=RC["figure.titlesize"],
             fontweight="bold")


def plain(text: str) -> str:
    """Text that comes from users (a label, an option's value, a plugin's name) as matplotlib shows
    it: never mathtext, whose parser fails on "$HOME/data_$" (every ``$`` escaped)."""
    return str(text).replace("$", r"\$")


def _fit(ax, text: str, size: float) -> str:
    """``text`` broken into lines as wide as the panel (its column of the figure) holds at
    ``size`` points: a long title or axis label never runs into the next panel's."""
    columns = ax.get_subplotspec().get_gridspec().ncols if ax.get_subplotspec() is not None else 1
    return wrapped(text, ax.figure.get_figwidth() / columns, size)


def wrapped(text: str, inches: float, size: float) -> str:
    """``text`` (from users: ``plain``) in lines no wider than ``inches`` at ``size`` points."""
    import textwrap

    chars = max(8, int(inches / (0.58 * size / 72)))
    return "\n".join(textwrap.wrap(plain(text), chars, break_on_hyphens=False)) or plain(text)


def label_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(_fit(ax, xlabel, RC["axes.labelsize"]))
    ax.set_ylabel(plain(ylabel))
    ax.set_title(_fit(ax, title, RC["axes.titlesize"]))
    ax.grid(alpha=0.3)


def registry_order(method: str) -> int:
    names = pruners.PRUNERS.names()
    return names.index(method) if method in names else len(names)


def in_registry_order(table, column: str = "method"):
    """The methods (or labels) present, in registry order; a method's default label first."""
    present = list(dict.fromkeys(table[column]))
    return sorted(present, key=lambda n: (registry_order(common.base(n)), n != label(common.base(n), {}), n))


LINESTYLES = ("-", "-.", "--", ":", (0, (5, 1, 1, 1)), (0, (1, 3)))
SCOPE_STYLE = dict(zip(masks.SCOPES, ("-", ":", (0, (5, 1, 1, 1)))))  # layerwise, global, erk


def _variant_style(method: str, config: dict):
    """The line style of a method's variant: the place of its first line option's value among the
    values that option declares (dissipating's schedule), else of its allocation scope; None for
    a method with neither."""
    entry = common.entry(method)
    declared = {o.name: o for o in entry.declared()} if entry is not None else {}
    for key in entry.lines if entry is not None else ():
        choices = declared[key].choices if key in declared else None
        if choices and config.get(key) in choices:
            return LINESTYLES[choices.index(config[key]) % len(LINESTYLES)]
    return SCOPE_STYLE.get(config.get("scope"))


def _variant_rank(method: str, name: str) -> int:
    """Where a label of ``method`` stands among its variants: the place of its line options'
    values among those the options declare (dissipating's schedules in their declared order)."""
    entry = common.entry(method)
    if entry is None or not entry.lines:
        return 0
    try:
        return common.declared_labels(method).index(name.split(" [")[0])
    except (ValueError, InitpruneError):
        return 0


def style_of(name: str, config: dict | None = None, names=()) -> dict:
    """A colour per label: a method's hue, each of its labels in the figure (``names``: all of
    them, for styles that agree across panels) a shade of it, darkest first in the order its line
    option declares its values; the line style follows the line option's value (else the
    allocation scope) and the marker the label's place, so that no two labels read alike even
    in grey."""
    method, config = common.base(name), config or {}
    ls = _variant_style(method, config) or FAMILY_STYLE.get(family(method), "-.")
    same = sorted([n for n in dict.fromkeys(names) if common.base(n) == method] or [name],
                  key=lambda n: (_variant_rank(method, n), n))
    index = same.index(name) if name in same else 0
    return {"color": shades(color(method), len(same))[index], "ls": ls, "marker": MARKERS[index % len(MARKERS)]}


def _curves(ax, part, names, confident=None, every=()):
    """Accuracy against density, mean ± std over the seeds of one profile, one line per label; dense
    as a ceiling. ``confident``: {label: sparsities} where the paper's claim is better against every
    rival. ``every``: every label of the figure (for markers that agree across panels)."""
    for name in names:
        rows = part[part["label"] == name]
        method = common.base(name)
        config = _configs(rows.iloc[:1])[0]
        if common.dense(method):
            mean = rows["score"].mean()
            ax.axhline(mean, color="black", ls="--", lw=1, label=name)
            ax.annotate(f"{mean:.3g}", (0.01, mean), xycoords=("axes fraction", "data"), fontsize=7,
                        va="bottom")
            continue
        stats = rows.groupby("sparsity")["score"].agg(["mean", "std"]).sort_index()
        density = 1 - stats.index.to_numpy()
        ax.errorbar(density, stats["mean"], yerr=stats["std"].fillna(0), capsize=3, label=name,
                    **style_of(name, config, every or names))
        marked = sorted(set((confident or {}).get(name, ())) & set(stats.index))
        if marked:
            ax.scatter(1 - np.array(marked), stats.loc[marked, "mean"], marker="*", s=160, zorder=5,
                       facecolor="gold", edgecolor=color(method), linewidth=0.8)
    if confident and any(confident.values()):
        ax.scatter([], [], marker="*", s=160, facecolor="gold", edgecolor="gray",
                   label="better than every rival (primary verdict)")
    density_axis(ax, 1 - part.loc[~part["method"].map(common.dense), "sparsity"].to_numpy())


def density_axis(ax, densities) -> None:
    """A log density axis, dense on the left, ticked at the densities run (not at powers of ten,
    whose minor labels collide on a narrow range)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = sorted({round(float(d), 6) for d in densities if d > 0})
    if not ticks:  # nothing pruned here: a plain axis, never a reversed empty one
        return
    if len(ticks) == 1:  # one density: a range of zero width, which a log axis cannot show
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda d, _: f"{d:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_xaxis()


def _regime_grid(table):
    """A row of panels per dataset and architecture and a column per allocation regime present
    (the references in each), as wide as the page: the figure, every label of it, and per panel
    that has runs of its regime (axes, regime, cell, its runs, its title). A panel without runs of
    its own (a cell run in one regime only) is left blank, without axes."""
    regimes = [r for r in common.REGIMES if r in set(table["regime"].dropna())] or ["uniform"]
    fig, grid = panel_grid(cells_of(table), regimes)
    panels = []
    for (key, regime), ax in grid.items():
        part = cell_of(table, key)
        if len(regimes) > 1 and not (part["regime"] == regime).any():
            ax.set_axis_off()
            continue
        part = part[part["regime"].isna() | (part["regime"] == regime)]
        named = REGIME_TITLE[regime] if len(regimes) > 1 or regime != "uniform" else ""
        panels.append((ax, regime, key, part, title_of(key, named)))
    return fig, in_registry_order(table, "label"), panels


def by_regime(table, methods=None):
    """Panels of accuracy against density: one row per dataset and architecture, one column per
    allocation regime present (the references in each)."""
    found = claims.starred(claims.verdicts(table))  # {(dataset, arch, regime): {label: sparsities}}
    table = main_comparison(table)
    if methods is not None:
        table = table[table["method"].isin(methods)]
    if table.empty:
        raise Empty("no runs of these methods in this store")
    fig, every, panels = _regime_grid(table)
    for ax, regime, key, part, title in panels:
        _curves(ax, part, in_registry_order(part, "label"), found.get((*key, regime), {}), every)
        label_axes(ax, "density (fraction of weights kept, log)", metric.axis(metric.of(part)), title)
    return fig


def accuracy_vs_sparsity(table):
    """Figure 1: test accuracy against density (log axis), mean and spread over seeds, a row of
    panels per dataset and architecture and a column per allocation regime; a star where the
    paper's claim for that method is better than each of its rivals with confidence."""
    return noted(by_regime(table))


def learning_curves(table, sparsity: float | None = None):
    """Figure 2: test accuracy per epoch, per method label, at one sparsity per panel (a row per
    dataset and architecture, a column per allocation regime): ``sparsity``, or the highest that
    every pruning method of the panel has; a method that lacks it is shown at its own highest,
    and its label says so. Mean over seeds, the band from min to max."""
    table = main_comparison(table)
    if table.empty:
        raise Empty("no finished runs in this store")
    fig, every, panels = _regime_grid(table)
    for ax, _, _, part, title in panels:
        names = in_registry_order(part, "label")
        pruned = part[~part["method"].map(common.dense)]
        shared = set.intersection(*[set(g["sparsity"]) for _, g in pruned.groupby("label")]) if len(pruned) else set()
        at = sparsity if sparsity is not None else (max(shared) if shared else
                                                     (float(pruned["sparsity"].max()) if len(pruned) else None))
        named = labels.sparsities([*part["sparsity"], *([at] if at is not None else [])])
        for name in names:
            rows = part[part["label"] == name]
            shown = name
            if not common.dense(rows["method"].iloc[0]):
                own = float(at) if at in set(rows["sparsity"]) else float(rows["sparsity"].max())
                rows = rows[rows["sparsity"] == own]
                if own != at:
                    shown = f"{name} (s={named[own]})"
            length = min(len(h) for h in rows["history"])
            key = f"test_{metric.task(metric.of(rows)).metric}"  # the history's name for the task's metric
            curves = np.array([[h.get(key) for h in hist[:length]] for hist in rows["history"]], dtype=float)
            epochs = np.arange(1, length + 1)
            style = style_of(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(epochs, curves.mean(0), label=shown, markersize=4, **style)
            ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15, color=style["color"])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        at_s = f"s={named[float(at)]}" if at is not None else ""
        label_axes(ax, "epoch", metric.axis(metric.of(part)), ", ".join([title, at_s]))
    return noted(fig)


def layer_density(results: list):
    """Density of each layer's mask, one bar group per layer, one bar per run (``RunResult``s, as
    ``run``, ``fit`` and ``api.compare`` return them)."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), layout="constrained")  # noted sets the layout's rect
    layers = list(results[0].layers) if results else []
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        dens = [r.layers[n]["kept"] / r.layers[n]["numel"] for n in layers]
        ax.bar(np.arange(len(layers)) + i * width, dens, width, label=f"{r.method} (s={r.sparsity_actual:.2f})",
               color=color(r.method))
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    ax.set_xticklabels([plain(n) for n in layers], fontsize=8)
    ax.set_yscale("log")
    label_axes(ax, "", "density (kept / weights)", "Which layers keep their weights")
    return noted(fig)


def _cost(table, kind: str):
    """The runs' training or inference cost (FLOPs relative to dense); NaN for runs stored
    before costs were counted."""
    column = table["cost"] if "cost" in table else [None] * len(table)
    return np.array([c[kind] if isinstance(c, dict) and kind in c else math.nan for c in column], dtype=float)


def _accuracy_stats(table):
    """Per (dataset, arch, regime, method label, sparsity) of the main comparison: the mean,
    standard deviation and count of the final test metric over seeds (its task's: ``metric``), and
    the mean effective sparsity, training cost (``cost.training``), training seconds and inference
    cost (NaN where no run of it measured them). The regime
    is "" for the references, which stand in both."""
    table = main_comparison(table)
    effective = [float(v) if v is not None and v == v else math.nan
                 for v in (table["effective_sparsity"] if "effective_sparsity" in table else [None] * len(table))]
    table = table.assign(cost_training=cost.training(table), cost_inference=_cost(table, "inference"),
                         training_seconds=cost.seconds(table), effective=effective, regime=table["regime"].fillna(""))
    groups = table.groupby(["dataset", "arch", "regime", "label", "sparsity"])
    stats = groups["score"].agg(["mean", "std", "count"])
    return stats.join(groups[["cost_training", "cost_inference", "training_seconds", "effective"]].mean())


def _in_order(frame, column: str = "method"):
    """Rows by dataset, arch, regime (the references first, then ``common.REGIMES``) and method label in
    registry order."""
    order = {name: i for i, name in enumerate(in_registry_order(frame, column))}
    regimes = {r: i for i, r in enumerate(("", *common.REGIMES))}
    return frame.sort_values(["dataset", "arch", "regime", column], key=lambda col: col.map(order)
                             if col.name == column else col.map(regimes) if col.name == "regime" else col)


def accuracy_table(table):
    """Table 1 as data (accuracy_table.csv): mean ± std of final test accuracy (the mean alone for
    one seed), per (dataset, arch, regime, method label) and sparsity, each beside the mean
    effective sparsity (removed or cut off from the input or the logits) and the mean training and
    inference cost over seeds (FLOPs relative to dense); runs of different identities are
    different rows, never one cell. The page shows it per cell, narrower (``accuracy_cells``,
    ``cost_cells``)."""
    import pandas as pd

    if main_comparison(table).empty:
        return pd.DataFrame(columns=["dataset", "arch", "regime", "method"])
    stats = _accuracy_stats(table)
    cells = stats.apply(lambda r: f"{r['mean']:.4f}" + (f" ± {r['std']:.4f}" if r["count"] > 1 else "")
                        + f" (n={int(r['count'])})", axis=1)  # one seed has no spread to show
    columns = {}
    for s, name in labels.sparsities(stats.index.unique("sparsity")).items():  # by exact value, named apart
        c = f"s={name}"
        columns[c] = cells.unstack("sparsity")[s]
        columns[f"{c} effective"] = stats["effective"].unstack("sparsity")[s].map(
            lambda v: "" if math.isnan(v) else f"{v:.4f}")
        for kind in ("training", "inference"):
            values = stats[f"cost_{kind}"].unstack("sparsity")[s]
            columns[f"{c} {kind} cost"] = values.map(lambda v: "" if math.isnan(v) else f"{v:.3g}")
        columns[f"{c} training seconds"] = stats["training_seconds"].unstack("sparsity")[s].map(
            lambda v: "" if math.isnan(v) else f"{v:.3g}")
    wide = pd.DataFrame(columns).reset_index().rename(columns={"label": "method"})
    return pd.DataFrame(_in_order(wide)).fillna("")


def accuracy_cells(table) -> list[tuple[tuple[str, str], object]]:
    """Table 1 as the page shows it: per dataset and architecture, one row per regime, method
    label and configuration, one column per sparsity run there ("s=0.9": mean ± std of the final
    test accuracy), the seeds once in the column n where every sparsity of the row has as many
    (else each cell says its own "(n=...)"). Narrow enough for the page: no empty column of
    another cell, no cost beside each value (``cost_cells`` holds them)."""
    import pandas as pd

    stats = _accuracy_stats(table)
    out = []
    for (dataset, arch), part in stats.groupby(level=["dataset", "arch"], sort=True):
        part = part.droplevel(["dataset", "arch"])
        named = labels.sparsities(part.index.unique("sparsity"))
        keys = _in_order(part.reset_index()[["regime", "label"]].drop_duplicates().assign(dataset="", arch=""),
                         "label")
        rows = []
        for regime, method in zip(keys["regime"], keys["label"]):
            mine = part.loc[(regime, method)]
            counts = set(mine["count"].astype(int))
            row = {"regime": regime or "both", "method": method, "n": str(counts.pop()) if len(counts) == 1 else ""}
            for s, r in mine.iterrows():
                row[f"s={named[s]}"] = f"{r['mean']:.4f}" + (f" ± {r['std']:.4f}" if r["count"] > 1 else "") + \
                    ("" if row["n"] else f" (n={int(r['count'])})")
            rows.append(row)
        columns = ["regime", "method", "n"] + [f"s={named[s]}" for s in sorted(named)]
        out.append(((dataset, arch), pd.DataFrame(rows, columns=columns).fillna("")))
    return out


def cost_cells(table) -> list[tuple[tuple[str, str], object]]:
    """Per dataset and architecture, one row per regime, method label and sparsity: the mean
    effective sparsity, training cost (FLOPs relative to one dense training of the cell's
    reference epochs: ``cost``), measured training seconds and inference cost (FLOPs relative to
    dense) over seeds; "n/a" where no run of it measured them (stored before they were counted)."""
    import pandas as pd

    stats = _accuracy_stats(table)
    out = []
    for (dataset, arch), part in stats.groupby(level=["dataset", "arch"], sort=True):
        part = part.droplevel(["dataset", "arch"]).reset_index()
        named = labels.sparsities(part["sparsity"])
        part = _in_order(part.assign(dataset="", arch=""), "label")
        show = lambda v, f: "n/a" if math.isnan(v) else format(v, f)  # noqa: E731
        out.append(((dataset, arch), pd.DataFrame({
            "regime": part["regime"].replace("", "both"), "method": part["label"],
            "s": [named[s] for s in part["sparsity"]],
            "effective sparsity": [show(v, ".4f") for v in part["effective"]],
            "training cost": [show(v, ".3g") for v in part["cost_training"]],
            "training seconds": [show(v, ".3g") for v in part["training_seconds"]],
            "inference cost": [show(v, ".3g") for v in part["cost_inference"]]})))
    return out


def accuracy_vs_cost(table):
    """Figure 6a: test accuracy against training cost (FLOPs relative to one dense training, log
    axis), one point per method label and sparsity, mean over seeds; a row of panels per dataset
    and architecture, a column per allocation regime."""
    table = main_comparison(table)
    table = table.assign(cost_training=cost.training(table)).dropna(subset=["cost_training"])
    if table.empty:
        raise Empty("no run in this store counted its training cost")
    fig, every, panels = _regime_grid(table)
    for ax, _, _, part, title in panels:
        for name in in_registry_order(part, "label"):
            rows = part[part["label"] == name]
            stats = rows.groupby("sparsity")[["cost_training", "score"]].mean()
            style = style_of(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(stats["cost_training"], stats["score"], label=name, **{**style, "ls": style["ls"]
                    if len(stats) > 1 else "none"}, alpha=0.85)
        ax.set_xscale("log")
        label_axes(ax, "training cost (FLOPs relative to one dense training, log)", metric.axis(metric.of(part)), title)
    return noted(fig)


def ablation_loss(table):
    """Sanity checks (Frankle et al. 2020): test accuracy lost under each ablation, per method label
    and profile, paired by (sparsity, seed) and averaged, one panel per dataset and architecture.
    The reference is the rewind control (the final mask retrained from θ0) where it was run, else
    the method's own run; the panel title says which. A method whose accuracy survives shuffling
    chooses layer densities, not weights."""
    rows = profiled(metric.scored(table), within=("dataset", "arch", "method"))
    rows = rows.assign(label=[label(m, c) for m, c in zip(rows["method"], _configs(rows))])
    keys = ["dataset", "arch", "method", "sparsity", "seed", "profile"]
    ablated = rows[~rows["ablation"].isin(["none", "rewind"])]
    if ablated.empty:
        raise Empty("no sanity-check runs in this store")
    kinds = list(dict.fromkeys(ablated["ablation"]))
    cells = cells_of(ablated)
    fig, panels = panel_grid(cells, ["all"], height=3.6)
    for (key, _), ax in panels.items():
        part = cell_of(rows, key)
        reference = "rewind" if (part["ablation"] == "rewind").any() else "none"
        base = part[part["ablation"] == reference].drop_duplicates(keys).set_index(keys)["score"]
        joined = cell_of(ablated, key).join(base.rename("reference"), on=keys).dropna(subset=["reference"])
        sign = 1 if metric.higher(metric.of(part)) else -1  # lost: the metric's way to worse
        joined = joined.assign(lost=sign * (joined["reference"] - joined["score"]),
                               name=[_named(n, s) for n, s in zip(joined["label"], joined["suffix"])])
        stats = joined.groupby(["name", "ablation"])["lost"].agg(["mean", "std"]).reset_index()
        methods = in_registry_order(stats, "name")
        width = 0.8 / max(1, len(kinds))
        for i, kind in enumerate(kinds):
            bars = stats[stats["ablation"] == kind].set_index("name").reindex(methods)
            if bars["mean"].notna().any():
                ax.bar(np.arange(len(methods)) + i * width, bars["mean"], width, yerr=bars["std"].fillna(0),
                       capsize=2, label=kind, color=f"C{i % 10}")
        ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
        ax.set_xticklabels([wrapped(m, WIDTH / max(1, len(methods)), RC["xtick.labelsize"]) for m in methods])
        ax.axhline(0, color="black", lw=0.8)
        against = "the rewind control" if reference == "rewind" else "the unablated run (no rewind control run)"
        worse = "lost" if sign > 0 else "gained"  # accuracy lost, reconstruction error gained
        label_axes(ax, "", f"{metric.words(metric.of(part))} {worse}", title_of(key, f"lost against {against}"))
    return noted(fig)


def effective_vs_nominal(table):
    """Figure 6b: effective density (weights on a path from the input to the logits) against the
    nominal density, per method label, a row of panels per dataset and architecture and a column
    per regime; on the diagonal every kept weight can carry signal. Runs logged before effective
    sparsity was measured are left out."""
    table = main_comparison(table)
    if "effective_sparsity" in table:
        table = table[table["effective_sparsity"].notna() & ~table["method"].map(common.dense)]
    else:
        table = table.iloc[:0]
    if table.empty:
        raise Empty("no run in this store measured its effective sparsity")
    fig, every, panels = _regime_grid(table)
    for ax, _, _, part, title in panels:
        for name in in_registry_order(part, "label"):
            rows = part[part["label"] == name]
            stats = rows.groupby("sparsity")["effective_sparsity"].mean().sort_index()
            ax.plot(1 - stats.index.to_numpy(), 1 - stats.to_numpy(), label=name,
                    **style_of(name, _configs(rows.iloc[:1])[0], every))
        lims = [d for d in 1 - part["sparsity"].to_numpy() if d > 0]
        if lims:
            ax.plot([min(lims), 1], [min(lims), 1], color="gray", lw=0.8, ls=":", label="every kept weight alive")
            ax.set_xscale("log")
            ax.set_yscale("log")
        label_axes(ax, "nominal density (kept, log)", "effective density (log)", title)
    return noted(fig)


# ---- every figure, and the parts the report shows it in ------------------------------------------

BY_CELL, BY_FAMILY = "cell", "family"
FAMILY_TITLE = {"paper": "the paper's methods", "control": "the criterion controls",  # in the report's order
                "baseline": "the established baselines", "reference": "the references"}


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of the report, declared once: its ``name`` (its files, its place on the page and in
    figures.ipynb), ``draw`` (the function that draws it of a runs table or raises ``Empty``),
    ``caption`` (what to look at in it, said once above its parts), ``by`` (how the report cuts
    the table: a figure per dataset and architecture, ``BY_CELL``, and per family of methods,
    ``BY_FAMILY``), and for a method's own figure ``of``, the registered methods whose runs it
    draws (it is attached to their entries), and ``beside``, those drawn with them for reference."""

    name: str
    draw: object
    caption: str
    by: tuple[str, ...] = (BY_CELL,)
    of: tuple[str, ...] = ()
    beside: tuple[str, ...] = ()


_REPORT: dict = {}  # the figures of every method (``of`` empty), by name, in the report's order


def contributes(name: str, caption: str, by: tuple[str, ...] = (BY_CELL,), of: tuple[str, ...] = (),
                beside: tuple[str, ...] = ()):
    """Declare the decorated ``figure(table)`` a figure of the report (``Figure``): where ``of``
    names methods, it is attached to their registry entries (``PRUNERS.attach("figures", ...)``:
    how a method, a plugin's too, contributes the figures of what it reports) and the function
    is called with ``of`` and ``beside`` as keywords; else it is one of every method's. The
    decorated function draws in the report's type sizes (``RC``); where it has nothing to draw,
    it prints the one line why and returns None, so that a notebook's cell shows that line
    (``figure`` raises ``Empty``)."""
    import functools

    def add(make):
        @functools.wraps(make)
        def shown(*args, **kwargs):
            """The figure, or where it has nothing to draw None, the one line why printed (a notebook's
            cell shows that line, not a blank box)."""
            try:
                return draw_figure(shown.figure, *args, **kwargs)
            except Empty as empty:
                print(f"{name}: left out, {empty}")
                return None

        shown.figure = Figure(name, make, caption, tuple(by), tuple(of), tuple(beside))
        if of:
            pruners.PRUNERS.attach("figures", *of)(shown)
        else:
            _REPORT[name] = shown
        return shown

    return add


def draw_figure(declared: Figure, *args, **kwargs):
    """A declared figure of a table, in the report's type sizes (``RC``); ``Empty`` where it has
    nothing to draw."""
    with plt.rc_context(RC):
        if declared.of:
            kwargs = {"of": declared.of, "beside": declared.beside, **kwargs}
        return declared.draw(*args, **kwargs)


def figure(name: str, *args, **kwargs):
    """Figure ``name`` of a table (``draw_figure``)."""
    return draw_figure(every()[name].figure, *args, **kwargs)


accuracy_vs_sparsity = contributes(
    "accuracy_vs_sparsity", "Where the curves part as density falls (to the right), and whether a method stays "
    "above random at the sparsities tested; the error bars are the spread over seeds, the dashed line dense. A gold "
    "star marks a sparsity where a claimed method beats every rival with 95% confidence.",
    (BY_CELL, BY_FAMILY))(accuracy_vs_sparsity)
learning_curves = contributes(
    "learning_curves", "Where each curve ends, not where it starts: a method that starts higher but ends level only "
    "trains faster, it does not prune better. The band spans the seeds.", (BY_CELL, BY_FAMILY))(learning_curves)
ablation_loss = contributes(
    "ablation_loss", "Bars near zero for shuffle mean the method chose layer densities, not weights; a tall invert "
    "bar means its choice of weights matters. Losses are against the rewind control where it was run.")(ablation_loss)
effective_vs_nominal = contributes(
    "effective_vs_nominal", "Points below the dotted diagonal: kept weights that no path from input to logits uses "
    "(dead); a method far below it at high sparsity is sparser than it says.",
    (BY_CELL, BY_FAMILY))(effective_vs_nominal)
accuracy_vs_cost = contributes(
    "accuracy_vs_cost", "Up and to the left is better: the same accuracy for less training. Methods that train "
    "candidates or prune late pay for it here.", (BY_CELL, BY_FAMILY))(accuracy_vs_cost)


def every() -> dict:
    """Every figure by name, in the report's order: those of every method, then each registered
    method's own (attached to its entry, a plugin's too), in registry order. The report's own
    modules of figures import this one and register on import (the package imports them)."""
    found = dict(_REPORT)
    for method in pruners.PRUNERS.names():
        for shown in pruners.PRUNERS.attached(method, "figures"):
            found.setdefault(shown.figure.name, shown)
    return found


def _ancestors(method: str) -> list[str]:
    """The registered methods ``method`` is built on (a control's: the paper method whose schedule
    it shares), nearest first."""
    entry = common.entry(method)
    if entry is None:
        return []
    return [m for m in pruners.PRUNERS.names() if m != method and issubclass(entry, pruners.PRUNERS[m])]


def families(table) -> list[tuple[str, str, object]]:
    """The table cut by family of methods, from the registry: (family, title, its runs) for each
    family present but the references, in the order of ``FAMILY_TITLE`` (the paper's, the
    controls, the baselines), then a plugin's own in the order the registry first names one;
    each part holds the references too (dense, post-training: the ceiling and the other side) and,
    beside a method built on another (a control on a paper method), that method under the same
    values of its line options (dissipating (cubic) beside gradual_random (cubic)). A table of
    references alone is one part."""
    import pandas as pd

    table = table.reset_index(drop=True)
    of = table["method"].map(family)
    known = list(FAMILY_TITLE)
    present = sorted(set(of) - {"reference"}, key=lambda f: (known.index(f) if f in known else len(known),
                                                             min(registry_order(m) for m in table["method"][of == f])))
    if not present:
        return [("reference", FAMILY_TITLE["reference"], table)]
    configs = _configs(table)
    out = []
    for name in present:
        members = of == name
        keep = members | (of == "reference")
        for method in dict.fromkeys(table["method"][members]):
            mine = [configs[i] for i in np.flatnonzero(table["method"] == method)]
            for parent in _ancestors(method):
                lines = common.entry(parent).lines
                held = {tuple(c.get(k) for k in lines) for c in mine}
                keep |= (table["method"] == parent) & np.array([tuple(c.get(k) for k in lines) in held
                                                                for c in configs], dtype=bool)
        out.append((name, FAMILY_TITLE.get(name, f"family {name}"), pd.DataFrame(table[keep])))
    return out


def parts(name: str, table) -> list[tuple[str, str, str, object]]:
    """The figures the report draws of ``name``: (a slug for its file, its title, its heading, its
    runs), a figure per dataset and architecture and, where ``name`` is cut so, per family of
    methods (the heading: the family's title; the panels name the cell)."""
    import re

    by = every()[name].figure.by
    out = []
    for key in cells_of(table) if BY_CELL in by else [None]:
        cell = table if key is None else cell_of(table, key)
        for fam, title, part in families(cell) if BY_FAMILY in by else [(None, "", cell)]:
            words = [*(key or ()), *([fam] if fam else [])]
            slug = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", str(w)) for w in words)
            out.append((slug, ", ".join(w for w in [key and f"{key[0]} / {key[1]}", title] if w), title, part))
    return out


def _drawn(fig) -> bool:
    """Whether a figure shows anything: a line, a point, a bar or a band in one of its panels."""
    return any((line.get_xdata() is not None and len(line.get_xdata())) for ax in fig.axes for line in ax.lines) or \
        any(len(c.get_offsets()) for ax in fig.axes for c in ax.collections) or \
        any(ax.patches for ax in fig.axes)


def smallest_font(fig) -> float:
    """The smallest type in points of any text the figure shows."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes)) if sizes else float(RC["font.size"])


MANIFEST = "figures.json"


def draw(name: str, table, out: Path) -> dict:
    """Every part of figure ``name`` (``parts``) as PNG and PDF in ``out``: {"figures": [per file
    its title, size in pixels, DPI and smallest type in points], "left_out": the one line that says
    why there is none, or None}. A part with nothing to draw is never written."""
    drawn, why = [], None
    for slug, title, head, part in parts(name, table) if len(table) else []:
        try:
            fig = figure(name, part)
        except Empty as empty:
            why = why or str(empty)
            continue
        if not _drawn(fig):
            plt.close(fig)
            continue
        if head:
            heading(fig, head)
        stem = f"{name}-{slug}" if slug else name
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{stem}.{ext}", dpi=DPI)
        width, height = fig.get_size_inches() * DPI
        drawn.append({"file": f"{stem}.png", "pdf": f"{stem}.pdf", "title": title, "width": round(width),
                      "height": round(height), "dpi": DPI, "smallest_pt": smallest_font(fig)})
        plt.close(fig)
    if not drawn:
        why = why or ("no finished runs in this store yet (make demo)" if not len(table)
                      else "nothing to draw in this store")
    return {"figures": drawn, "left_out": None if drawn else why}


def assemble(table, out: str | Path) -> list[Path]:
    """Every figure as PNG and PDF (a file per part: ``parts``), ``figures.json`` (what each part
    is and its smallest type, for the page; the line that stands for a figure left out), and the
    accuracy table as CSV and Markdown (the verdict's files are the assembly's:
    ``assembly.verdict``). The files of an earlier assembly that this one does not write again
    are removed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = metric.scored(table)  # each run's test metric, through its task
    if len(table) and table["score"].isna().any():  # a diverged run has no metric to draw
        nan = table["score"].isna()
        named = [f"{r.method} s={r.sparsity:g} seed {r.seed} (run {r.run_id})" for r in table[nan].itertuples()]
        said = " or ".join(sorted({metric.words(t) for t in table[nan]["task"]}))  # test accuracy, ...
        print(f"initprune: warning: left out of the figures and tables, their {said} is NaN: {', '.join(named)}")
        table = table[~nan]
    before = manifest(out)
    shown = {name: draw(name, table, out) for name in every()}
    written = [out / f[k] for entry in shown.values() for f in entry["figures"] for k in ("file", "pdf")]
    for entry in before.values():  # the last assembly's parts that this one has not drawn again
        for f in entry["figures"]:
            for k in ("file", "pdf"):
                if out / f[k] not in written:
                    (out / f[k]).unlink(missing_ok=True)
    (out / MANIFEST).write_text(json.dumps(shown, indent=1) + "\n")
    acc = accuracy_table(table)
    acc.to_csv(out / "accuracy_table.csv", index=False)
    (out / "accuracy_table.md").write_text(accuracy_markdown(table))
    return written + [out / n for n in (MANIFEST, "accuracy_table.csv", "accuracy_table.md")]


def manifest(out: str | Path) -> dict:
    """What ``assemble`` wrote into ``out`` (``figures.json``): per figure name its parts and the
    line that stands for it where it has none; {} where nothing was assembled there."""
    path = Path(out) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def images(out: str | Path, name: str) -> list[Path]:
    """The PNG files of figure ``name`` in ``out``, as ``assemble`` wrote them (the notebook shows
    them; none where it was left out)."""
    return [Path(out) / f["file"] for f in manifest(out).get(name, {}).get("figures", [])]


def show(out: str | Path, name: str) -> None:
    """In a notebook: every part of figure ``name`` in ``out`` (one per dataset and architecture,
    and per family of methods), or the line that says why it was left out."""
    found = images(out, name)
    if not found:
        print(f"{name}: left out, {manifest(out).get(name, {}).get('left_out') or 'not assembled in ' + str(out)}")
        return
    from IPython.display import Image, display

    display(*[Image(path) for path in found])


def show_all(out: str | Path) -> None:
    """In a notebook: every figure (``every``) in ``out``, each under its name and caption (its
    ``Figure``), or the line that says why it was left out."""
    from IPython.display import Markdown, display

    for name, shown in every().items():
        if images(out, name):
            display(Markdown(f"**{name.replace('_', ' ')}**: {shown.figure.caption}"))
        show(out, name)


def accuracy_markdown(table) -> str:
    """accuracy_table.md: ``accuracy_cells``, a table per dataset and architecture under its
    heading."""
    cells = accuracy_cells(table)
    if not cells:
        return "No finished runs yet.\n"
    table = metric.scored(table)
    axis = {(d, a): metric.axis(metric.of(cell_of(table, (d, a)))) for (d, a), _ in cells}  # each cell's metric
    return "\n".join(f"### {labels.markdown(f'{d} / {a}: {axis[(d, a)]}')}\n\n{_markdown(frame)}"
                     for (d, a), frame in cells)


def _markdown(frame) -> str:
    """A table as Markdown, every header and cell escaped (``labels.markdown``): a label is shown
    as itself, never as a column, a line or markup."""
    head = "| " + " | ".join(map(labels.markdown, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(map(labels.markdown, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"

