"""The paper's figures, each a function of a table of runs (a pandas DataFrame, one row per run,
as ``results.runs_table`` returns it) that returns a matplotlib figure.

Columns used: method, dataset, arch, sparsity, seed, ablation, test_accuracy, epochs, options
(dict of resolved pruner options), training (dict of resolved training settings; missing: {}),
history (list of per-epoch dicts) and extra (the method's report).

Runs are grouped by what they were: dataset, architecture, method label and the whole
configuration but seed and sparsity (epochs, options, training settings). Runs of different
configurations are never averaged; where one label has several, each says how it differs
("random [epochs=2]"). Every figure has a panel per dataset and architecture, named in its title,
and one legend.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import claims, data, pruners
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
    plain = [m for m in names if not pruners.PRUNERS[m].color]
    index = plain.index(method) if method in plain else int(hashlib.sha256(method.encode()).hexdigest(), 16)
    return free[index % len(free)]


def family(method: str) -> str:
    entry = _entry(method)
    return entry.family if entry is not None else "baseline"


def _defaults(method: str) -> dict:
    entry = _entry(method)
    return {} if entry is None else {f.name: f.default for f in dataclasses.fields(entry)
                                     if f.default is not dataclasses.MISSING}


label = pruners.label  # "dissipating (cubic)": the one definition, in the registry's module


def _base(name: str) -> str:
    """The method of a label: "dissipating (cubic) [epochs=2]" -> "dissipating"."""
    return name.split(" (")[0].split(" [")[0]


# ---- what a run was: its configuration beside seed and sparsity --------------------------------


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _config(method: str, dataset, options, training, epochs, history) -> dict:
    """Everything that defines a run beside its seed and sparsity: its epochs, its resolved options
    (declared defaults filled in) and its training settings (the dataset's declared ones filled in;
    a missing ``training`` column is {})."""
    if epochs is None or (isinstance(epochs, float) and math.isnan(epochs)):
        epochs = len(history) if isinstance(history, list) else None
    declared = dataclasses.asdict(data.DATASETS[dataset].training) if dataset in data.DATASETS else {}
    return {"epochs": None if epochs is None else int(epochs), **_defaults(method), **_dict(options),
            **declared, **_dict(training)}


def _configs(table) -> list[dict]:
    n = len(table)
    column = lambda name: list(table[name]) if name in table else [None] * n  # noqa: E731
    return [_config(*row) for row in zip(column("method"), column("dataset"), column("options"), column("training"),
                                         column("epochs"), column("history"))]


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _suffixes(configs: list[dict]) -> list[str]:
    """For each configuration, what tells it from the others: "key=value, ..." over the keys whose
    values differ among them (epochs first), "" where all agree."""
    keys = sorted({k for c in configs for k in c}, key=lambda k: (k != "epochs", k != "scope", k))
    differ = [k for k in keys if len({_json(c.get(k)) for c in configs}) > 1]
    return [", ".join(f"{k}={c.get(k)}" for k in differ) for c in configs]


def _profiled(table, drop=(), within=("dataset", "arch")):
    """``table`` with the columns ``profile`` (the configuration without the keys ``drop``, as JSON:
    runs of one profile may be averaged, others never) and ``suffix`` (what tells the profile from
    the others of the same ``within`` group, "" when it is the only one)."""
    table = table.reset_index(drop=True)  # one label per row, even for a table concatenated by hand
    configs = [{k: v for k, v in c.items() if k not in drop} for c in _configs(table)]
    table = table.assign(profile=[_json(c) for c in configs], suffix="")
    if table.empty:
        return table
    by_profile = dict(zip(table["profile"], configs))
    for _, part in table.groupby(list(within), sort=False):
        profiles = list(dict.fromkeys(part["profile"]))
        if len(profiles) > 1:
            tell = dict(zip(profiles, _suffixes([by_profile[p] for p in profiles])))
            table.loc[part.index, "suffix"] = [tell[p] for p in part["profile"]]
    return table


def _named(name: str, suffix: str) -> str:
    return f"{name} [{suffix}]" if suffix else name


REGIMES = ("uniform", "free")
REGIME_TITLE = {"uniform": "uniform allocation (every method layerwise)",
                "free": "free allocation (random, K-starts erk; scores global)"}


def _regime(method: str, config: dict) -> str | None:
    """The allocation regime a run belongs to: "uniform" (layerwise), "free" (global or erk), None
    for the references (dense, post-training), which stand in both."""
    if family(method) == "reference":
        return None
    return claims.regime(method, config) or ("uniform" if config.get("scope", "layerwise") == "layerwise"
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
        fig.legend(list(entries.values()), list(entries), loc="center left", bbox_to_anchor=(right, 0.5),
                   fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, right, 1))
    return fig


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)


def _order(method: str) -> int:
    names = pruners.PRUNERS.names()
    return names.index(method) if method in names else len(names)


def _methods(table, column: str = "method"):
    """The methods (or labels) present, in registry order; a method's default label first."""
    present = list(dict.fromkeys(table[column]))
    return sorted(present, key=lambda n: (_order(_base(n)), n != label(_base(n), {}), n))


SCHEDULE_STYLE = {"linear": "-", "geometric": "-.", "cubic": "--"}
SCOPE_STYLE = {"layerwise": "-", "global": ":", "erk": (0, (5, 1, 1, 1))}


def _style(name: str, config: dict | None = None, names=()) -> dict:
    """A method keeps its colour everywhere; its variants are line styles (the schedule where it
    has one, else the allocation scope); labels of one method that differ beyond that (epochs,
    options) get markers of their own, the same in every panel of a figure (``names``: all of them)."""
    method, config = _base(name), config or {}
    if "schedule" in config:
        ls = SCHEDULE_STYLE.get(config["schedule"], FAMILY_STYLE.get(family(method), "-."))
    elif "scope" in config:
        ls = SCOPE_STYLE.get(config["scope"], "-.")
    else:
        ls = FAMILY_STYLE.get(family(method), "-.")
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
        if method == "dense":
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
    _density_axis(ax, 1 - part.loc[part["method"] != "dense", "sparsity"].to_numpy())


def _density_axis(ax, densities) -> None:
    """A log density axis, dense on the left, ticked at the densities run (not at powers of ten,
    whose minor labels collide on a narrow range)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ticks = sorted({round(float(d), 6) for d in densities if d > 0})
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda d, _: f"{d:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.invert_xaxis()


def _by_regime(table, methods=None):
    """Panels of accuracy against density: one row per allocation regime present (the references
    in each), one column per dataset and architecture."""
    found = claims.starred(verdicts(table))  # {(dataset, arch, regime): {label: sparsities}}
    table = _default(table)
    if methods is not None:
        table = table[table["method"].isin(methods)]
    regimes = [r for r in REGIMES if r in set(table["regime"].dropna())] or ["uniform"]
    cells = _cells(table)
    fig, panels = _grid(regimes, cells)
    every = _methods(table, "label")
    for (regime, key), ax in panels.items():
        part = _cell(table, key)
        part = part[part["regime"].isna() | (part["regime"] == regime)]
        _curves(ax, part, _methods(part, "label"), found.get((*key, regime), {}), every)
        _label(ax, "density (fraction of weights kept, log)", "test accuracy",
               _title(key, REGIME_TITLE[regime] if len(regimes) > 1 or regime != "uniform" else ""))
    return fig


def accuracy_vs_sparsity(table):
    """Figure 1: test accuracy against density (log axis), mean and spread over seeds, one panel per
    dataset and architecture and one row per allocation regime; a star where the paper's claim for
    that method is better than each of its rivals with confidence."""
    return _note(_by_regime(table))


def dissipating_schedules(table):
    """Accuracy against density for each dissipating schedule (alone and in combined), with
    random for reference: the schedule alone can decide the verdict."""
    fig = _by_regime(table, ["random", "dissipating", "combined"])
    for ax in fig.axes:
        if ax.get_title():
            ax.set_title(ax.get_title() + ": the dissipating schedules", fontsize=10)
    return _note(fig)


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
        pruned = part[part["method"] != "dense"]
        common = set.intersection(*[set(g["sparsity"]) for _, g in pruned.groupby("label")]) if len(pruned) else set()
        at = sparsity if sparsity is not None else (max(common) if common else
                                                     (float(pruned["sparsity"].max()) if len(pruned) else None))
        for name in names:
            rows = part[part["label"] == name]
            shown = name
            if rows["method"].iloc[0] != "dense":
                own = float(at) if at in set(rows["sparsity"]) else float(rows["sparsity"].max())
                rows = rows[rows["sparsity"] == own]
                if own != at:
                    shown = f"{name} (s={own:g})"
            length = min(len(h) for h in rows["history"])
            curves = np.array([[h["test_accuracy"] for h in hist[:length]] for hist in rows["history"]], dtype=float)
            epochs = np.arange(1, length + 1)
            style = _style(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(epochs, curves.mean(0), label=shown, markersize=4, **style)
            ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15, color=style["color"])
        _label(ax, "epoch", "test accuracy", _title(key, f"sparsity {at:g}" if at is not None else ""))
    return _note(fig)


def kstarts_candidates(table):
    """Each K-starts candidate's fitness after the warm-up, the winner marked, per run: one panel
    per dataset and architecture, the runs ordered by profile, sparsity and seed."""
    rows = _profiled(table[(table["method"] == "kstarts") & (table["ablation"] == "none")])
    cells = _cells(rows)
    counts = [len(_cell(rows, key)) for key in cells] or [1]
    fig, panels = _grid(cells[:1] and ["all"], cells, width=max(5.0, 0.32 * max(counts) + 1.5), height=4.6)
    for (_, key), ax in panels.items():
        part = _cell(rows, key).sort_values(["suffix", "sparsity", "seed"])
        for n, (_, row) in enumerate(part.iterrows()):
            cands = row["extra"]["candidates"]
            ax.scatter([n] * len(cands), [c["fitness"] for c in cands], color=color("kstarts"), alpha=0.5, s=18,
                       label="candidate")
            win = cands[row["extra"]["winner"]]
            ax.scatter([n], [win["fitness"]], color="tab:red", marker="*", s=90, label="winner")
        ax.set_xticks(range(len(part)))
        ax.set_xticklabels([_named(f"s={s:g} seed {d}", x) for s, d, x in zip(part["sparsity"], part["seed"],
                                                                               part["suffix"])],
                           fontsize=7, rotation=90)
        _label(ax, "", "fitness after warm-up", _title(key, "K-starts: every candidate's fitness"))
    return _note(fig)


FITNESS_STYLE = {"magnitude": ":", "gradient": "--", "both": "-"}


def kstarts_k_and_fitness(table):
    """Figure 3a: K-starts accuracy against k, one line per fitness criterion (and profile), one row
    of panels per dataset and architecture, one panel per sparsity run at more than one k."""
    rows = table[(table["method"] == "kstarts") & (table["ablation"] == "none")]
    full = [_dict(o).get("selection", "full") == "full" for o in rows["options"]]  # halving: not here
    rows = rows[np.array(full, dtype=bool)]
    rows = _profiled(rows, drop=("k", "fitness"))
    configs = _configs(rows)
    rows = rows.assign(k=[int(c["k"]) for c in configs], fitness=[c["fitness"] for c in configs])
    random = _default(table[table["method"] == "random"])
    panels_of = {key: sorted(s for s, g in _cell(rows, key).groupby("sparsity") if g["k"].nunique() > 1)
                 for key in _cells(rows)}
    keys = [key for key in panels_of if panels_of[key]]
    width = max([len(panels_of[k]) for k in keys] or [1])
    profiles = sorted(set(rows["suffix"]))  # a marker per profile, the same in every panel
    fig, panels = _grid(keys, list(range(width)), width=5, height=3.8)
    for (key, j), ax in panels.items():
        if j >= len(panels_of[key]):
            ax.set_axis_off()
            continue
        s = panels_of[key][j]
        part = _cell(rows, key)
        part = part[part["sparsity"] == s]
        for (fitness, suffix), group in part.groupby(["fitness", "suffix"]):
            stats = group.groupby("k")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), capsize=3, color=color("kstarts"),
                        marker=MARKERS[profiles.index(suffix) % len(MARKERS)], ls=FITNESS_STYLE.get(fitness, "-."),
                        label=_named(f"kstarts, fitness: {fitness}", suffix))
        base = _cell(random, key)
        base = base[base["sparsity"] == s]
        names = sorted(set(random["label"]))
        for name, group in base.groupby("label"):
            ax.axhline(group["test_accuracy"].mean(), color=color("random"), label=f"{name} (k=1)",
                       ls=(":", "-.", "--", (0, (1, 3)))[names.index(name) % 4])
        ax.set_xscale("log", base=2)
        _label(ax, "k (random starts)", "test accuracy", _title(key, f"K-starts at sparsity {s:g}"))
    return _note(fig)


def kstarts_fitness_vs_final(table):
    """Figure 3b: fitness rank after the warm-up against final accuracy of every candidate
    (analysis mode), one panel per dataset and architecture; colour: the sparsity, marker: the
    seed, the winner starred; the mean rank correlation per profile in the title."""
    from matplotlib.lines import Line2D

    rows = table[(table["method"] == "kstarts") & (table["ablation"] == "none")]
    rows = rows[np.array([bool(e.get("candidates")) and "final_test_accuracy" in e["candidates"][0]
                         for e in rows["extra"]], dtype=bool)]
    rows = _profiled(rows)
    cells = _cells(rows)
    sparsities = sorted(set(rows["sparsity"]))
    seeds = sorted(set(rows["seed"]))
    fig, panels = _grid(cells[:1] and ["all"], cells, width=6, height=4.2)
    for (_, key), ax in panels.items():
        part = _cell(rows, key).sort_values(["sparsity", "seed"])
        for _, row in part.iterrows():
            cands, winner = row["extra"]["candidates"], row["extra"]["winner"]
            ranks = np.argsort(np.argsort([c["fitness"] for c in cands])) / max(1, len(cands) - 1)
            tint = f"C{sparsities.index(row['sparsity']) % 10}"
            mark = MARKERS[seeds.index(row["seed"]) % len(MARKERS)]
            ax.scatter(ranks, [c["final_test_accuracy"] for c in cands], alpha=0.6, s=20, color=tint, marker=mark)
            ax.scatter([ranks[winner]], [cands[winner]["final_test_accuracy"]], marker="*", s=110, color=tint,
                       edgecolor="black", linewidth=0.6)
        rhos = []
        for suffix, group in part.groupby("suffix"):
            values = [e["rank_correlation"] for e in group["extra"] if e.get("rank_correlation") is not None]
            if values:
                rhos.append(_named(f"mean Spearman rho {np.mean(values):.2f} over {len(values)} runs", suffix))
        _label(ax, "fitness rank (0 = least fit, 1 = fittest)", "final test accuracy",
               _title(key, "fitness rank after warm-up vs final accuracy") + "".join(f"\n{r}" for r in rhos))
    if len(rows):  # proxies: one entry per sparsity, per seed, and the winner's star, each once
        ax = next(iter(panels.values()))
        for i, s in enumerate(sparsities):
            ax.add_line(Line2D([], [], color=f"C{i % 10}", marker="o", ls="", label=f"s={s:g}"))
        for i, seed in enumerate(seeds):
            ax.add_line(Line2D([], [], color="gray", marker=MARKERS[i % len(MARKERS)], ls="", label=f"seed {seed}"))
        ax.add_line(Line2D([], [], color="gray", marker="*", markersize=10, ls="", label="winner (starred)"))
    return _note(fig)


def _dissipating_report(extra):
    return extra.get("dissipating", extra)


def dissipating_sparsity(table):
    """Figure 4a: sparsity after each epoch at the highest target of each dataset and architecture,
    one line per method label and profile (mean over seeds); combined starts after its warm-up."""
    rows = _default(table[table["method"].isin(["dissipating", "combined"])])
    cells = _cells(rows)
    fig, panels = _grid(cells[:1] and ["all"], cells, width=5.5, height=4)
    every = _methods(rows, "label")
    for (_, key), ax in panels.items():
        part = _cell(rows, key)
        target = part["sparsity"].max()
        for name in _methods(part, "label"):
            group = part[(part["label"] == name) & (part["sparsity"] == target)]
            if group.empty:
                continue
            config = _configs(group.iloc[:1])[0]
            start = int(config.get("warmup_epochs", 1)) if group["method"].iloc[0] == "combined" else 0
            curves = [[_dissipating_report(e)["start_sparsity"], *_dissipating_report(e)["sparsity_per_epoch"]]
                      for e in group["extra"]]
            length = min(len(c) for c in curves)
            curve = list(np.mean([c[:length] for c in curves], axis=0))
            epochs = [0] * (start > 0) + list(range(start, start + length))  # combined: dense at 0
            style = _style(name, config, every)
            ax.plot(epochs, [0.0] * (start > 0) + curve, label=name, alpha=0.8, **style)
        _label(ax, "epoch", "sparsity", _title(key, f"dissipating gradients: sparsity per epoch (target {target:g})"))
    return _note(fig)


def dissipating_movement(table):
    """The distribution of relative movement |θ_e - θ0| / |θ0| at each pruning epoch: one run (the
    last) per dataset and architecture."""
    rows = table[table["method"].isin(["dissipating", "combined"]) & (table["ablation"] == "none")]
    cells = _cells(rows)
    fig, panels = _grid(cells[:1] and ["all"], cells, width=5.5, height=4)
    for (_, key), ax in panels.items():
        last = _cell(rows, key).iloc[-1]
        for e, hist in enumerate(_dissipating_report(last["extra"])["movement_histograms"]):
            counts = np.array(hist["counts"])
            edges = np.linspace(hist["log10_min"], hist["log10_max"], len(counts) + 1)
            ax.stairs(counts, edges, label=f"pruning epoch {e + 1}", color=f"C{e % 10}")
        _label(ax, "log10 relative movement r (pruned: the smallest)", "weights",
               _title(key, f"{label(last['method'], _dict(last['options']))} at sparsity {last['sparsity']:g}, "
                           f"seed {last['seed']}"))
    return _note(fig)


def dissipating_prune_epochs(table):
    """Figure 4b: accuracy against the pruning epochs E_d, one line per sparsity (and profile), one
    panel per dataset and architecture."""
    rows = table[(table["method"] == "dissipating") & (table["ablation"] == "none")]
    rows = _profiled(rows, drop=("prune_epochs",))
    rows = rows.assign(prune_epochs=[int(c["prune_epochs"]) for c in _configs(rows)])
    sparsities = sorted(set(rows["sparsity"]))
    cells = _cells(rows)
    fig, panels = _grid(cells[:1] and ["all"], cells, width=5.5, height=4)
    for (_, key), ax in panels.items():
        for (s, suffix), group in _cell(rows, key).groupby(["sparsity", "suffix"]):
            if group["prune_epochs"].nunique() < 2:
                continue
            stats = group.groupby("prune_epochs")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        color=f"C{sparsities.index(s) % 10}", label=_named(f"sparsity {s:g}", suffix))
        _label(ax, "pruning epochs E_d", "test accuracy", _title(key, "dissipating gradients: accuracy against E_d"))
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
    ax.set_xticklabels(layers, fontsize=8)
    ax.set_yscale("log")
    _label(ax, "", "density (kept / weights)", "Which layers keep their weights")
    return _note(fig)


def _cost(table, kind: str):
    """The runs' training or inference cost (FLOPs relative to dense); NaN for runs stored
    before costs were counted."""
    column = table["cost"] if "cost" in table else [None] * len(table)
    return np.array([c[kind] if isinstance(c, dict) and kind in c else math.nan for c in column], dtype=float)


def accuracy_table(table):
    """Table 1: mean ± std of final test accuracy, per (dataset, arch, method label) and sparsity,
    each beside the mean training and inference cost over seeds (FLOPs relative to dense); runs of
    different configurations are different labels, never one cell."""
    import pandas as pd

    table = _default(table)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "arch", "method"])
    table = table.assign(cost_training=_cost(table, "training"), cost_inference=_cost(table, "inference"))
    groups = table.groupby(["dataset", "arch", "label", "sparsity"])
    stats = groups["test_accuracy"].agg(["mean", "std", "count"])
    stats["std"] = stats["std"].fillna(0.0)
    cells = stats.apply(lambda r: f"{r['mean']:.4f} ± {r['std']:.4f} (n={int(r['count'])})", axis=1)
    costs = groups[["cost_training", "cost_inference"]].mean()
    columns = {f"s={c:g}": cells.unstack("sparsity")[c] for c in sorted(stats.index.unique("sparsity"))}
    for c in list(columns):
        s = float(c[2:])
        for kind in ("training", "inference"):
            values = costs[f"cost_{kind}"].unstack("sparsity")[s]
            columns[f"{c} {kind} cost"] = values.map(lambda v: "" if math.isnan(v) else f"{v:.3g}")
    wide = pd.DataFrame(columns)
    wide = wide[[k for c in wide.columns if " " not in c for k in (c, f"{c} training cost", f"{c} inference cost")]]
    wide = wide.reset_index().rename(columns={"label": "method"})
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
    regimes = [r for r in REGIMES if r in set(table["regime"].dropna())] or ["uniform"]
    fig, panels = _grid(regimes, _cells(table))
    every = _methods(table, "label")
    for (regime, key), ax in panels.items():
        part = _cell(table, key)
        part = part[part["regime"].isna() | (part["regime"] == regime)]
        for name in _methods(part, "label"):
            rows = part[part["label"] == name]
            stats = rows.groupby("sparsity")[["cost_training", "test_accuracy"]].mean()
            style = _style(name, _configs(rows.iloc[:1])[0], every)
            ax.plot(stats["cost_training"], stats["test_accuracy"], label=name, **{**style, "ls": style["ls"]
                    if len(stats) > 1 else "none"}, alpha=0.85)
        ax.set_xscale("log")
        _label(ax, "training cost (FLOPs relative to one dense training, log)", "test accuracy",
               _title(key, REGIME_TITLE[regime] if len(regimes) > 1 or regime != "uniform" else ""))
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
        ax.set_xticklabels(methods, fontsize=8, rotation=30, ha="right")
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
        table = table[table["effective_sparsity"].notna() & (table["method"] != "dense")]
    else:
        table = table.iloc[:0]
    regimes = [r for r in REGIMES if r in set(table["regime"].dropna())] or ["uniform"]
    cells = _cells(table)
    fig, panels = _grid(regimes, cells)
    every = _methods(table, "label")
    for (regime, key), ax in panels.items():
        part = _cell(table, key)
        part = part[part["regime"].isna() | (part["regime"] == regime)]
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
        _label(ax, "nominal density (kept, log)", "effective density (log)",
               _title(key, REGIME_TITLE[regime] if len(regimes) > 1 or regime != "uniform" else ""))
    return _note(fig)


FIGURES = {
    "accuracy_vs_sparsity": accuracy_vs_sparsity,
    "learning_curves": learning_curves,
    "kstarts_candidates": kstarts_candidates,
    "kstarts_k_and_fitness": kstarts_k_and_fitness,
    "kstarts_fitness_vs_final": kstarts_fitness_vs_final,
    "dissipating_sparsity": dissipating_sparsity,
    "dissipating_schedules": dissipating_schedules,
    "dissipating_movement": dissipating_movement,
    "dissipating_prune_epochs": dissipating_prune_epochs,
    "ablation_loss": ablation_loss,
    "effective_vs_nominal": effective_vs_nominal,
    "accuracy_vs_cost": accuracy_vs_cost,
}


def assemble(table, out: str | Path) -> list[Path]:
    """Every figure as PNG and PDF, the accuracy table as CSV and Markdown, and claims.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FIGURES.items():
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
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"
