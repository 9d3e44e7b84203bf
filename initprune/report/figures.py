"""The paper's figures, each a function of a table of runs (a pandas DataFrame, one row per run,
as ``results.runs_table`` returns it) that returns a matplotlib figure.

Columns used: method, dataset, arch, sparsity, seed, ablation, test_accuracy, epochs, options
(dict of resolved pruner options), training (dict of resolved training settings; missing: {}),
threads, device, version (the pruner's; missing: today's), history (list of per-epoch dicts) and
extra (the method's report).

Runs are grouped by their whole identity but the seed (``labels.identity``: dataset,
architecture, method label, and epochs, options, training settings, threads, device and pruner
version), the rule the claims follow too. Runs of different identities are never averaged; where
one label has several, each says how it differs ("random [epochs=2]", "random [threads=2]",
"snip [v1]"). Every figure has a panel per dataset and architecture, named in its title, and one
legend; text that comes from users is never mathtext (``plain``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .. import masks, pruners
from . import claims, labels
from .claims import claims_markdown, verdicts

NOTE = "initprune, on our grid (docs/method.md), not the paper's numbers"
FAMILY_STYLE = {"paper": "-", "baseline": ":", "reference": "--"}
MARKERS = ("o", "s", "^", "D", "v", "P")


def _entry(method: str):
    """The method's registry entry; None for one the registry does not know (a plugin that is
    not installed any more): it still gets a line, in a style of its own."""
    return pruners.PRUNERS[method] if method in pruners.PRUNERS else None


# colours for methods that declare none (a plugin's, one the registry no longer knows), after
# those the registered methods declare are taken out
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan", "teal", "crimson", "navy", "darkgoldenrod", "magenta", "slateblue",
           "chocolate", "darkseagreen")


def color(method: str) -> str:
    """The method's declared colour, else one no registered method declares: registered methods
    in registry order, others by a hash of their name."""
    entry = _entry(method)
    if entry is not None and entry.color:
        return entry.color
    names = pruners.PRUNERS.names()
    free = [c for c in PALETTE if c not in {pruners.PRUNERS[m].color for m in names}] or list(PALETTE)
    undeclared = [m for m in names if not pruners.PRUNERS[m].color]
    index = undeclared.index(method) if method in undeclared else int(hashlib.sha256(method.encode()).hexdigest(), 16)
    return free[index % len(free)]


def _dense(method: str) -> bool:
    """A method that keeps every weight (the dense ceiling), drawn as a line across the panel."""
    entry = _entry(method)
    return entry is not None and entry.fixed_sparsity == 0


def family(method: str) -> str:
    entry = _entry(method)
    return entry.family if entry is not None else "baseline"


def _defaults(method: str) -> dict:
    entry = _entry(method)
    return {} if entry is None else {f.name: f.default for f in dataclasses.fields(entry)
                                     if f.default is not dataclasses.MISSING}


label = pruners.label  # "dissipating (cubic)": the one definition, in the registry's module
_base = labels.base  # "dissipating (cubic) [epochs=2]" -> "dissipating"


# ---- what a run was: its whole identity but seed and sparsity (labels.identity) ------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


_configs = labels.identities
_json = labels.canonical


def _profiled(table, drop=(), within=("dataset", "arch")):
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


REGIMES = ("uniform", "free")
REGIME_TITLE = {"uniform": "uniform allocation (every method layerwise)",
                "free": "free allocation (random, K-starts erk; scores global)"}


def _regime(method: str, config: dict) -> str | None:
    """The allocation regime a run belongs to: "uniform" (layerwise), "free" (global or erk), None
    for the references (dense, post-training), which stand in both."""
    if family(method) == "reference":
        return None
    return claims.regime(method, config) or ("uniform" if config.get("scope") in (None, claims.UNIFORM)
                                             else "free")


def _default(table):
    """The main comparison, runs grouped by what they were. Per dataset, arch, regime and label,
    the runs with the method's default options beside those of its label and its scope, or where
    there are none, the option set that covers the most points. Runs that still differ (in epochs,
    training settings or scope) are never averaged: each profile gets what tells it from the others
    of its label in its label. Adds the columns ``label``, ``regime`` and ``profile``."""
    import pandas as pd

    table = table[table["ablation"] == "none"] if "ablation" in table else table
    if table.empty:
        return table.assign(label=pd.Series(dtype=str), regime=pd.Series(dtype=object),
                            profile=pd.Series(dtype=str))
    configs = _configs(table)
    methods = list(table["method"])
    rest = []
    for method, config in zip(methods, configs):
        entry, defaults = _entry(method), _defaults(method)
        keys = set(entry.lines if entry is not None else ()) | {"scope", "epochs"}
        rest.append(_json({k: v for k, v in config.items() if k in defaults and k not in keys and v != defaults[k]}))
    table = table.assign(label=[label(m, c) for m, c in zip(methods, configs)],
                         regime=[_regime(m, c) for m, c in zip(methods, configs)], rest=rest)
    keep = []
    for _, part in table.groupby(["dataset", "arch", "label", table["regime"].fillna("")], sort=False):
        counts = part["rest"].value_counts()
        keep.append(part[part["rest"] == ("{}" if "{}" in counts else counts.index[0])])
    table = _profiled(pd.concat(keep).drop(columns="rest"), within=("dataset", "arch", "label"))
    table["label"] = [_named(n, s) for n, s in zip(table["label"], table["suffix"])]
    return table.drop(columns="suffix")


def _cells(table) -> list[tuple[str, str]]:
    return sorted({(d, a) for d, a in zip(table["dataset"], table["arch"])})


def _cell(table, key):
    return table[(table["dataset"] == key[0]) & (table["arch"] == key[1])]


def _grid(rows: list, cols: list, width: float = 5.5, height: float = 4.2):
    """One panel per (row, column); an empty figure still has one (blank) panel."""
    nr, nc = max(1, len(rows)), max(1, len(cols))
    fig, axes = plt.subplots(nr, nc, figsize=(width * nc, height * nr), squeeze=False)
    panels = {(r, c): axes[i][j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    for i in range(nr):
        for j in range(nc):
            if i >= len(rows) or j >= len(cols):
                axes[i][j].set_axis_off()
    return fig, panels


def _title(key, *more) -> str:
    return ", ".join([f"{key[0]} / {key[1]}", *[m for m in more if m]])


def _note(fig, legend_right: bool = True):
    """The grid's note and one legend for the whole figure, beside the panels (no legend hides a
    curve), each entry once: a name has one style in every panel."""
    fig.text(0.995, 0.005, NOTE, ha="right", va="bottom", fontsize=7, color="gray")
    right = 1.0
    entries = {}
    for ax in fig.axes:
        for handle, text in zip(*ax.get_legend_handles_labels()):
            if not text.startswith("_"):
                entries.setdefault(text, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if legend_right and entries:
        legend = 0.8 + 0.065 * max(len(t) for t in entries)  # inches, at fontsize 8
        width = fig.get_figwidth()
        fig.set_figwidth(width + legend)
        right = width / (width + legend)
        fig.legend(list(entries.values()), [plain(t) for t in entries], loc="center left",
                   bbox_to_anchor=(right, 0.5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, right, 1))
    return fig


def plain(text: str) -> str:
    """Text that comes from users (a label, an option's value, a plugin's name) as matplotlib shows
    it: never mathtext, whose parser fails on "$HOME/data_$" (every ``$`` escaped)."""
    return str(text).replace("$", r"\$")


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(plain(xlabel))
    ax.set_ylabel(plain(ylabel))
    ax.set_title(plain(title), fontsize=10)
    ax.grid(alpha=0.3)


def _order(method: str) -> int:
    names = pruners.PRUNERS.names()
    return names.index(method) if method in names else len(names)


def _methods(table, column: str = "method"):
    """The methods (or labels) present, in registry order; a method's default label first."""
    present = list(dict.fromkeys(table[column]))
    return sorted(present, key=lambda n: (_order(_base(n)), n != label(_base(n), {}), n))


LINESTYLES = ("-", "-.", "--", ":", (0, (5, 1, 1, 1)), (0, (1, 3)))
SCOPE_STYLE = dict(zip(masks.SCOPES, ("-", ":", (0, (5, 1, 1, 1)))))  # layerwise, global, erk


def _variant_style(method: str, config: dict):
    """The line style of a method's variant: the place of its first line option's value among the
    values that option declares (dissipating's schedule), else of its allocation scope; None for
    a method with neither."""
    entry = _entry(method)
    declared = {o.name: o for o in entry.declared()} if entry is not None else {}
    for key in entry.lines if entry is not None else ():
        choices = declared[key].choices if key in declared else None
        if choices and config.get(key) in choices:
            return LINESTYLES[choices.index(config[key]) % len(LINESTYLES)]
    return SCOPE_STYLE.get(config.get("scope"))


def _style(name: str, config: dict | None = None, names=()) -> dict:
    """A method keeps its colour everywhere; its variants are line styles (its line option where it
    has one, else the allocation scope); labels of one method that differ beyond that (epochs,
    options) get markers of their own, the same in every panel of a figure (``names``: all of them)."""
    method, config = _base(name), config or {}
    ls = _variant_style(method, config) or FAMILY_STYLE.get(family(method), "-.")
    same = [n for n in dict.fromkeys(names) if _base(n) == method] or [name]
    index = same.index(name) if name in same else 0
    return {"color": color(method), "ls": ls, "marker": MARKERS[index % len(MARKERS)]}


def _curves(ax, part, names, confident=None, every=()):
    """Accuracy against density, mean ± std over the seeds of one profile, one line per label; dense
    as a ceiling. ``confident``: {label: sparsities} where the paper's claim is better against every
    rival. ``every``: every label of the figure (for markers that agree across panels)."""
    for name in names:
        rows = part[part["label"] == name]
        method = _base(name)
        config = _configs(rows.iloc[:1])[0]
        if _dense(method):
            mean = rows["test_accuracy"].mean()
            ax.axhline(mean, color="black", ls="--", lw=1, label=name)
            ax.annotate(f"{mean:.3f}", (0.01, mean), xycoords=("axes fraction", "data"), fontsize=7,
                        va="bottom")
            continue
        stats = rows.groupby("sparsity")["test_accuracy"].agg(["mean", "std"]).sort_index()
        density = 1 - stats.index.to_numpy()
        ax.errorbar(density, stats["mean"], yerr=stats["std"].fillna(0), capsize=3, label=name,
                    **_style(name, config, every or names))
        marked = sorted(set((confident or {}).get(name, ())) & set(stats.index))
        if marked:
            ax.scatter(1 - np.array(marked), stats.loc[marked, "mean"], marker="*", s=160, zorder=5,
                       facecolor="gold", edgecolor=color(method), linewidth=0.8)
    if confident and any(confident.values()):
        ax.scatter([], [], marker="*", s=160, facecolor="gold", edgecolor="gray",
                   label="claim better than every rival (primary verdict)")
    _density_axis(ax, 1 - part.loc[~part["method"].map(_dense), "sparsity"].to_numpy())


def _density_axis(ax, densities) -> None:
    """A log density axis, dense on the left, ticked at the densities run (not at powers of ten,
    whose minor labels collide on a narrow range)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = sorted({round(float(d), 6) for d in densities if d > 0})
    if len(ticks) == 1:  # one density: a range of zero width, which a log axis cannot show
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2)
    ax.set_xscale("log")
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda d, _: f"{d:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_xaxis()


def _regime_grid(table):
    """A row of panels per allocation regime present (the references in each) and a column per
    dataset and architecture: the figure, every label of it, and per panel (axes, regime, cell,
    its runs, its title)."""
    regimes = [r for r in REGIMES if r in set(table["regime"].dropna())] or ["uniform"]
    fig, grid = _grid(regimes, _cells(table))
    panels = []
    for (regime, key), ax in grid.items():
        part = _cell(table, key)
        part = part[part["regime"].isna() | (part["regime"] == regime)]
        named = REGIME_TITLE[regime] if len(regimes) > 1 or regime != "uniform" else ""
        panels.append((ax, regime, key, part, _title(key, named)))
    return fig, _methods(table, "label"), panels


def _by_regime(table, methods=None):
    """Panels of accuracy against density: one row per allocation regime present (the references
    in each), one column per dataset and architecture."""
    found = claims.starred(verdicts(table))  # {(dataset, arch, regime): {label: sparsities}}
    table = _default(table)
    if methods is not None:
        table = table[table["method"].isin(methods)]
    fig, every, panels = _regime_grid(table)
    for ax, regime, key, part, title in panels:
        _curves(ax, part, _methods(part, "label"), found.get((*key, regime), {}), every)
        _label(ax, "density (fraction of weights kept, log)", "test accuracy", title)
    return fig


def accuracy_vs_sparsity(table):
    """Figure 1: test accuracy against density (log axis), mean and spread over seeds, one panel per
    dataset and architecture and one row per allocation regime; a star where the paper's claim for
    that method is better than each of its rivals with confidence."""
    return _note(_by_regime(table))


def learning_curves(table, sparsity: float | None = None):
    """Figure 2: test accuracy per epoch, per method, at one sparsity per panel: ``sparsity``, or
    the highest that every pruning method of the panel has; a method that lacks it is shown at
    its own highest, and its label says so. Mean over seeds, the band from min to max."""
    table = _default(table)
    cells = _cells(table)
    fig, panels = _grid(cells[:1] and ["all"], cells)
    every = _methods(table, "label")
    for (_, key), ax in panels.items():
        part = _cell(table, key)
        names = _methods(part, "label")
        pruned = part[~part["method"].map(_dense)]
        common = set.intersection(*[set(g["sparsity"]) for _, g in pruned.groupby("label")]) if len(pruned) else set()
        at = sparsity if sparsity is not None else (max(common) if common else
                                                     (float(pruned["sparsity"].max()) if len(pruned) else None))
        named = labels.sparsities([*part["sparsity"], *([at] if at is not None else [])])
        for name in names:
            rows = part[part["label"] == name]
            shown = name
            if not _dense(rows["method"].iloc[0]):
                own = float(at) if at in set(rows["sparsity"]) else float(rows["sparsity"].max())
                rows = rows[rows["sparsity"] == own]
                if own != at:
                    shown = f"{name} (s={named[own]})"
            length = min(len(h) for h in rows["history"])
            curves = np.array([[h["test_accuracy"] for h in hist[:length]] for hist in rows["history"]], dtype=float)
            epochs = np.arange(1, length + 1)
            style = _style(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(epochs, curves.mean(0), label=shown, markersize=4, **style)
            ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15, color=style["color"])
        _label(ax, "epoch", "test accuracy", _title(key, f"sparsity {named[float(at)]}" if at is not None else ""))
    return _note(fig)


def layer_density(results: list[dict]):
    """Density of each layer's mask, one bar group per layer, one bar per run."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    layers = list(results[0]["layers"]) if results else []
    width = 0.8 / max(1, len(results))
    for i, r in enumerate(results):
        dens = [r["layers"][n]["kept"] / r["layers"][n]["numel"] for n in layers]
        ax.bar(np.arange(len(layers)) + i * width, dens, width, label=f"{r['method']} (s={r['sparsity_actual']:.2f})",
               color=color(r["method"]))
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    ax.set_xticklabels([plain(n) for n in layers], fontsize=8)
    ax.set_yscale("log")
    _label(ax, "", "density (kept / weights)", "Which layers keep their weights")
    return _note(fig)


def _cost(table, kind: str):
    """The runs' training or inference cost (FLOPs relative to dense); NaN for runs stored
    before costs were counted."""
    column = table["cost"] if "cost" in table else [None] * len(table)
    return np.array([c[kind] if isinstance(c, dict) and kind in c else math.nan for c in column], dtype=float)


def accuracy_table(table):
    """Table 1: mean ± std of final test accuracy (the mean alone for one seed), per (dataset, arch,
    method label) and sparsity, each beside the mean effective sparsity (removed or cut off from the
    input or the logits) and the mean training and inference cost over seeds (FLOPs relative to
    dense); runs of different identities are different labels, never one cell."""
    import pandas as pd

    table = _default(table)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "arch", "method"])
    table = table.assign(cost_training=_cost(table, "training"), cost_inference=_cost(table, "inference"))
    groups = table.groupby(["dataset", "arch", "label", "sparsity"])
    stats = groups["test_accuracy"].agg(["mean", "std", "count"])
    cells = stats.apply(lambda r: f"{r['mean']:.4f}" + (f" ± {r['std']:.4f}" if r["count"] > 1 else "")
                        + f" (n={int(r['count'])})", axis=1)  # one seed has no spread to show
    effective = [float(v) if v is not None and v == v else math.nan
                 for v in (table["effective_sparsity"] if "effective_sparsity" in table else [None] * len(table))]
    table = table.assign(effective=effective)
    groups = table.groupby(["dataset", "arch", "label", "sparsity"])
    costs = groups[["cost_training", "cost_inference", "effective"]].mean()
    columns = {}
    for s, name in labels.sparsities(stats.index.unique("sparsity")).items():  # by exact value, named apart
        c = f"s={name}"
        columns[c] = cells.unstack("sparsity")[s]
        columns[f"{c} effective"] = costs["effective"].unstack("sparsity")[s].map(
            lambda v: "" if math.isnan(v) else f"{v:.4f}")
        for kind in ("training", "inference"):
            values = costs[f"cost_{kind}"].unstack("sparsity")[s]
            columns[f"{c} {kind} cost"] = values.map(lambda v: "" if math.isnan(v) else f"{v:.3g}")
    wide = pd.DataFrame(columns).reset_index().rename(columns={"label": "method"})
    order = {name: i for i, name in enumerate(_methods(wide))}
    wide = wide.sort_values(["dataset", "arch", "method"], key=lambda col: col.map(order) if col.name == "method"
                            else col)
    return pd.DataFrame(wide).fillna("")


def accuracy_vs_cost(table):
    """Figure 6a: test accuracy against training cost (FLOPs relative to one dense training, log
    axis), one point per method label and sparsity, mean over seeds; a panel per dataset and
    architecture and a row per allocation regime."""
    table = _default(table)
    table = table.assign(cost_training=_cost(table, "training")).dropna(subset=["cost_training"])
    fig, every, panels = _regime_grid(table)
    for ax, _, _, part, title in panels:
        for name in _methods(part, "label"):
            rows = part[part["label"] == name]
            stats = rows.groupby("sparsity")[["cost_training", "test_accuracy"]].mean()
            style = _style(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(stats["cost_training"], stats["test_accuracy"], label=name, **{**style, "ls": style["ls"]
                    if len(stats) > 1 else "none"}, alpha=0.85)
        ax.set_xscale("log")
        _label(ax, "training cost (FLOPs relative to one dense training, log)", "test accuracy", title)
    return _note(fig)


def ablation_loss(table):
    """Sanity checks (Frankle et al. 2020): test accuracy lost under each ablation, per method label
    and profile, paired by (sparsity, seed) and averaged, one panel per dataset and architecture.
    The reference is the rewind control (the final mask retrained from θ0) where it was run, else
    the method's own run; the panel title says which. A method whose accuracy survives shuffling
    chooses layer densities, not weights."""
    rows = _profiled(table, within=("dataset", "arch", "method"))
    rows = rows.assign(label=[label(m, c) for m, c in zip(rows["method"], _configs(rows))])
    keys = ["dataset", "arch", "method", "sparsity", "seed", "profile"]
    ablated = rows[~rows["ablation"].isin(["none", "rewind"])]
    kinds = list(dict.fromkeys(ablated["ablation"]))
    cells = _cells(ablated)
    fig, panels = _grid(cells[:1] and ["all"], cells, width=7, height=4)
    for (_, key), ax in panels.items():
        part = _cell(rows, key)
        reference = "rewind" if (part["ablation"] == "rewind").any() else "none"
        base = part[part["ablation"] == reference].drop_duplicates(keys).set_index(keys)["test_accuracy"]
        joined = _cell(ablated, key).join(base.rename("reference"), on=keys).dropna(subset=["reference"])
        joined = joined.assign(lost=joined["reference"] - joined["test_accuracy"],
                               name=[_named(n, s) for n, s in zip(joined["label"], joined["suffix"])])
        stats = joined.groupby(["name", "ablation"])["lost"].agg(["mean", "std"]).reset_index()
        methods = _methods(stats, "name")
        width = 0.8 / max(1, len(kinds))
        for i, kind in enumerate(kinds):
            bars = stats[stats["ablation"] == kind].set_index("name").reindex(methods)
            if bars["mean"].notna().any():
                ax.bar(np.arange(len(methods)) + i * width, bars["mean"], width, yerr=bars["std"].fillna(0),
                       capsize=2, label=kind, color=f"C{i % 10}")
        ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
        ax.set_xticklabels([plain(m) for m in methods], fontsize=8, rotation=30, ha="right")
        ax.axhline(0, color="black", lw=0.8)
        against = "the rewind control" if reference == "rewind" else "the unablated run (no rewind control run)"
        _label(ax, "", "test accuracy lost", _title(key, f"sanity checks: lost against {against}"))
    return _note(fig)


def effective_vs_nominal(table):
    """Figure 6b: effective density (weights on a path from the input to the logits) against the
    nominal density, per method label, one panel per dataset and architecture and a row per regime;
    on the diagonal every kept weight can carry signal. Runs logged before effective sparsity was
    measured are left out."""
    table = _default(table)
    if "effective_sparsity" in table:
        table = table[table["effective_sparsity"].notna() & ~table["method"].map(_dense)]
    else:
        table = table.iloc[:0]
    fig, every, panels = _regime_grid(table)
    for ax, _, _, part, title in panels:
        for name in _methods(part, "label"):
            rows = part[part["label"] == name]
            stats = rows.groupby("sparsity")["effective_sparsity"].mean().sort_index()
            ax.plot(1 - stats.index.to_numpy(), 1 - stats.to_numpy(), label=name,
                    **_style(name, _configs(rows.iloc[:1])[0], every))
        lims = [d for d in 1 - part["sparsity"].to_numpy() if d > 0]
        if lims:
            ax.plot([min(lims), 1], [min(lims), 1], color="gray", lw=0.8, ls=":", label="every kept weight alive")
            ax.set_xscale("log")
            ax.set_yscale("log")
        _label(ax, "nominal density (kept, log)", "effective density (log)", title)
    return _note(fig)


_FIGURES = {  # every figure by name: the generic ones here, each method's own added by its module
    "accuracy_vs_sparsity": accuracy_vs_sparsity,
    "learning_curves": learning_curves,
    "ablation_loss": ablation_loss,
    "effective_vs_nominal": effective_vs_nominal,
    "accuracy_vs_cost": accuracy_vs_cost,
}


def contributes(name: str):
    """Add the decorated ``figure(table)`` to the figures: how a method's own figures module (named by
    its pruner's ``figures``) contributes the figures of its report."""

    def add(make):
        _FIGURES[name] = make
        return make

    return add


def every() -> dict:
    """Every figure by name, each registered method's own included (a plugin's too): their modules
    are imported on the first call, not when this module is, so that a plugin that fails to load
    is one line from the command that looked it up."""
    for method in pruners.PRUNERS.names():
        if pruners.PRUNERS[method].figures:
            importlib.import_module(pruners.PRUNERS[method].figures)
    return _FIGURES


def __getattr__(name: str):
    if name == "FIGURES":  # figures.FIGURES: every figure, as every() gives them
        return every()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def assemble(table, out: str | Path) -> list[Path]:
    """Every figure as PNG and PDF, the accuracy table as CSV and Markdown, and claims.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(table) and table["test_accuracy"].isna().any():  # a diverged run has no accuracy to draw
        nan = table["test_accuracy"].isna()
        named = [f"{r.method} s={r.sparsity:g} seed {r.seed} (run {r.run_id})" for r in table[nan].itertuples()]
        print(f"initprune: warning: left out of the figures and tables, their test accuracy is NaN: "
              f"{', '.join(named)}")
        table = table[~nan]
    written = []
    for name, make in every().items():
        fig = make(table) if len(table) else _empty(name)
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{name}.{ext}", dpi=150)
            written.append(out / f"{name}.{ext}")
        plt.close(fig)
    acc = accuracy_table(table)
    acc.to_csv(out / "accuracy_table.csv", index=False)
    (out / "accuracy_table.md").write_text(_markdown(acc))
    (out / "claims.md").write_text(claims_markdown(table))
    (out / "claims.json").write_text(json.dumps(verdicts(table), indent=1))
    return written + [out / n for n in ("accuracy_table.csv", "accuracy_table.md", "claims.md", "claims.json")]


def _empty(name: str):
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, f"{name}: no finished runs yet (make demo)", ha="center", va="center")
    ax.set_axis_off()
    return fig


def _markdown(frame) -> str:
    """A table as Markdown, every header and cell escaped (``labels.markdown``): a label is shown
    as itself, never as a column, a line or markup."""
    head = "| " + " | ".join(map(labels.markdown, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(map(labels.markdown, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"
