"""The paper's figures, each a function of a table of runs (a pandas DataFrame, one row per run,
as ``results.runs_table`` returns it) that returns a matplotlib figure.

Columns used: method, dataset, arch, sparsity, seed, test_accuracy, variant (JSON of the options
that differ from the method's defaults, "{}" for the default method), options (dict), history
(list of per-epoch dicts) and extra (the method's report).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import pruners

NOTE = "initprune, on our grid (shared/METHOD.md), not the paper's numbers"
LEVEL = 0.95  # the confidence of every interval of the verdict
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


def label(method: str, options: dict | None) -> str:
    """A method with the options that make a method of its own (dissipating's schedule), so
    that "dissipating (cubic)" and "dissipating (linear)" are judged apart."""
    entry = _entry(method)
    keys = entry.lines if entry is not None else ()
    values = {**_defaults(method), **(options or {})}
    parts = [str(values[k]) for k in keys if k in values]
    return f"{method} ({', '.join(parts)})" if parts else method


def _base(name: str) -> str:
    """The method of a label: "dissipating (cubic)" -> "dissipating"."""
    return name.split(" (")[0]


def _rest(method: str, variant: str) -> str:
    """The variant without the options that make labels: what is left must be the defaults."""
    entry = _entry(method)
    keys = entry.lines if entry is not None else ()
    return json.dumps({k: v for k, v in json.loads(variant or "{}").items() if k not in keys}, sort_keys=True)


def _default(table):
    """The main comparison: per dataset, arch and label, the runs with the method's default
    options beside those of its label, or where there are none, the option set that covers
    the most points. Adds the column ``label``."""
    import pandas as pd

    table = table[table["ablation"] == "none"]
    if table.empty:
        return table.assign(label=pd.Series(dtype=str))
    table = table.assign(label=[label(m, o) for m, o in zip(table["method"], table["options"])],
                         rest=[_rest(m, v) for m, v in zip(table["method"], table["variant"])])
    keep = []
    for _, part in table.groupby(["dataset", "arch", "label"]):
        counts = part["rest"].value_counts()
        keep.append(part[part["rest"] == ("{}" if "{}" in counts else counts.index[0])])
    return pd.concat(keep).drop(columns="rest")


def _panels(table, extra_width: float = 0.0):
    keys = sorted({(d, a) for d, a in zip(table["dataset"], table["arch"])})
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(5.5 * max(1, len(keys)) + extra_width, 4.2),
                             squeeze=False)
    return fig, list(zip(keys, axes[0]))


def _note(fig, legend_right: bool = False):
    """The grid's note; with ``legend_right``, one legend for every panel, beside them, so that no
    legend hides a curve."""
    fig.text(0.995, 0.005, NOTE, ha="right", va="bottom", fontsize=7, color="gray")
    right = 1.0
    if legend_right:
        entries = {}
        for ax in fig.axes:
            for handle, text in zip(*ax.get_legend_handles_labels()):
                entries.setdefault(text, handle)
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        if entries:
            right = 1 - 2.6 / fig.get_figwidth()
            fig.legend(list(entries.values()), list(entries), loc="center left", bbox_to_anchor=(right, 0.5),
                       fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, right, 1))
    return fig


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _order(method: str) -> int:
    names = pruners.PRUNERS.names()
    return names.index(method) if method in names else len(names)


def _methods(table, column: str = "method"):
    """The methods (or labels) present, in registry order; a method's default label first."""
    present = list(dict.fromkeys(table[column]))
    return sorted(present, key=lambda n: (_order(_base(n)), n != label(_base(n), {}), n))


def _style(name: str, index: int = 0) -> dict:
    """Colour from the method, line style from its family, a marker per label of one method."""
    method = _base(name)
    return {"color": color(method), "ls": FAMILY_STYLE.get(family(method), "-."),
            "marker": MARKERS[index % len(MARKERS)]}


def _curves(ax, part, names, confident=None):
    """Accuracy against density, mean ± std over seeds, one line per label; dense as a ceiling.
    ``confident``: {label: sparsities} where the paper's claim is better against every rival."""
    seen: dict[str, int] = {}
    for name in names:
        rows = part[part["label"] == name]
        method = _base(name)
        if method == "dense":
            mean = rows["test_accuracy"].mean()
            ax.axhline(mean, color="black", ls="--", lw=1, label=f"dense ({mean:.3f})")
            continue
        index = seen[method] = seen.get(method, -1) + 1
        stats = rows.groupby("sparsity")["test_accuracy"].agg(["mean", "std"]).sort_index()
        density = 1 - stats.index.to_numpy()
        ax.errorbar(density, stats["mean"], yerr=stats["std"].fillna(0), capsize=3, label=name,
                    **_style(name, index))
        marked = sorted(set((confident or {}).get(name, ())) & set(stats.index))
        if marked:
            ax.scatter(1 - np.array(marked), stats.loc[marked, "mean"], marker="*", s=160, zorder=5,
                       facecolor="gold", edgecolor=color(method), linewidth=0.8)
    if confident and any(confident.values()):
        ax.scatter([], [], marker="*", s=160, facecolor="gold", edgecolor="gray",
                   label=f"claim better than every rival ({LEVEL:.0%} CI)")
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


def accuracy_vs_sparsity(table):
    """Figure 1: test accuracy against density (log axis), mean and spread over seeds; a star
    where the paper's claim for that method is better than each of its rivals with confidence."""
    table = _default(table)
    confident = _confident(verdicts(table))
    fig, panels = _panels(table, extra_width=2.6)
    for (dataset, arch), ax in panels:
        part = table[(table["dataset"] == dataset) & (table["arch"] == arch)]
        _curves(ax, part, _methods(part, "label"), confident.get((dataset, arch)))
        _label(ax, "density (fraction of weights kept, log)", "test accuracy", f"{dataset} / {arch}")
    return _note(fig, legend_right=True)


def dissipating_schedules(table):
    """Accuracy against density for each dissipating schedule (alone and in combined), with
    random for reference: the schedule alone can decide the verdict."""
    table = _default(table)
    table = table[table["method"].isin(["random", "dissipating", "combined"])]
    fig, panels = _panels(table, extra_width=2.6)
    for (dataset, arch), ax in panels:
        part = table[(table["dataset"] == dataset) & (table["arch"] == arch)]
        _curves(ax, part, _methods(part, "label"))
        _label(ax, "density (fraction of weights kept, log)", "test accuracy",
               f"{dataset} / {arch}: the dissipating schedules")
    return _note(fig, legend_right=True)


def learning_curves(table, sparsity: float | None = None):
    """Figure 2: test accuracy per epoch at one sparsity (default: the highest), per method."""
    table = _default(table)
    if sparsity is None:
        sparsity = float(table.loc[table["method"] != "dense", "sparsity"].max())
    fig, panels = _panels(table)
    for (dataset, arch), ax in panels:
        part = table[(table["dataset"] == dataset) & (table["arch"] == arch)]
        for name in _methods(part, "label"):
            rows = part[(part["label"] == name) & ((part["sparsity"] == sparsity) | (part["method"] == "dense"))]
            if rows.empty:
                continue
            curves = np.array([[h["test_accuracy"] for h in hist] for hist in rows["history"]])
            epochs = np.arange(1, curves.shape[1] + 1)
            style = {"color": color(rows["method"].iloc[0]), "ls": _style(name)["ls"]}
            ax.plot(epochs, curves.mean(0), label=name, **style)
            ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15, color=style["color"])
        _label(ax, "epoch", "test accuracy", f"{dataset} / {arch}, sparsity {sparsity:g}")
    return _note(fig)


def kstarts_candidates(table):
    """Each K-starts candidate's fitness after the warm-up, the winner marked, per point."""
    rows = table[table["method"] == "kstarts"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for n, (_, row) in enumerate(rows.iterrows()):
        cands = row["extra"]["candidates"]
        ax.scatter([n] * len(cands), [c["fitness"] for c in cands], color="tab:blue", alpha=0.5, s=18)
        win = cands[row["extra"]["winner"]]
        ax.scatter([n], [win["fitness"]], color="tab:red", marker="*", s=90,
                   label="winner" if n == 0 else None)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"s={s:g}\nseed {d}" for s, d in zip(rows["sparsity"], rows["seed"])], fontsize=7)
    _label(ax, "", "fitness after warm-up", "K-starts: every candidate's fitness, and the one that went on")
    return _note(fig)


def kstarts_k_and_fitness(table):
    """Figure 3a: K-starts accuracy against k, one line per fitness criterion, one panel per sparsity."""
    rows = table[table["method"] == "kstarts"].copy()
    rows["k"] = [int(o.get("k", 8)) for o in rows["options"]]
    rows["fitness"] = [o.get("fitness", "both") for o in rows["options"]]
    rows = rows.loc[[o.get("selection", "full") == "full" for o in rows["options"]]]  # halving: not here
    sparsities = sorted(s for s in rows["sparsity"].unique() if rows[rows["sparsity"] == s]["k"].nunique() > 1)
    fig, axes = plt.subplots(1, max(1, len(sparsities)), figsize=(5 * max(1, len(sparsities)), 3.8), squeeze=False)
    random = _default(table[table["method"] == "random"])
    for s, ax in zip(sparsities, axes[0]):
        part = rows[rows["sparsity"] == s]
        for fitness, group in part.groupby("fitness"):
            stats = group.groupby("k")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        label=f"fitness: {fitness}")
        base = random[random["sparsity"] == s]["test_accuracy"]
        if len(base):
            ax.axhline(base.mean(), color="gray", ls=":", label="random (k=1)")
        ax.set_xscale("log", base=2)
        _label(ax, "k (random starts)", "test accuracy", f"K-starts at sparsity {s:g}")
    return _note(fig)


def kstarts_fitness_vs_final(table):
    """Figure 3b: fitness after the warm-up against final accuracy of every candidate (analysis
    mode), one colour per run (sparsity and seed), its winner starred."""
    kstarts = table[table["method"] == "kstarts"]
    rows = [(s, seed, extra) for s, seed, extra in zip(kstarts["sparsity"], kstarts["seed"], kstarts["extra"])
            if extra["candidates"] and "final_test_accuracy" in extra["candidates"][0]]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for n, (sparsity, seed, extra) in enumerate(sorted(rows, key=lambda r: (r[0], r[1]))):
        cands = extra["candidates"]
        ranks = np.argsort(np.argsort([c["fitness"] for c in cands])) / max(1, len(cands) - 1)
        ax.scatter(ranks, [c["final_test_accuracy"] for c in cands], alpha=0.6, s=20, color=f"C{n % 10}",
                   label=f"s={sparsity:g}, seed {seed}")
        win = cands[extra["winner"]]
        ax.scatter([ranks[extra["winner"]]], [win["final_test_accuracy"]], marker="*", s=110, color=f"C{n % 10}",
                   edgecolor="black", linewidth=0.6, label="winner (starred)" if n == 0 else None)
    rhos = [e["rank_correlation"] for _, _, e in rows if e.get("rank_correlation") is not None]
    title = "fitness rank after warm-up vs final accuracy"
    if rhos:
        title += f"\nmean Spearman rho {np.mean(rhos):.2f} over {len(rhos)} runs"
    _label(ax, "fitness rank (0 = least fit, 1 = fittest)", "final test accuracy", title)
    if rows:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _note(fig)


def _dissipating_report(extra):
    return extra.get("dissipating", extra)


def dissipating_sparsity(table):
    """Figure 4a: sparsity after each epoch at the highest target, one line per method and
    schedule (mean over seeds); combined starts after its K-starts warm-up."""
    rows = table[table["method"].isin(["dissipating", "combined"])]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    target = rows["sparsity"].max() if len(rows) else None
    lines: dict[str, list] = {}
    for _, row in rows[rows["sparsity"] == target].iterrows():
        report = _dissipating_report(row["extra"])
        start = int(row["options"].get("warmup_epochs", 1)) if row["method"] == "combined" else 0
        schedule = row["options"].get("schedule", "linear")
        name = f"{row['method']}, {schedule}, E_d={len(report['sparsity_per_epoch'])}"
        lines.setdefault(name, []).append((start, [report["start_sparsity"], *report["sparsity_per_epoch"]]))
    for name, runs in sorted(lines.items()):
        start, curve = runs[0][0], list(np.mean([c for _, c in runs], axis=0))
        epochs = [0] * (start > 0) + list(range(start, start + len(curve)))  # combined: dense at 0
        schedule = name.split(", ")[1]
        ax.plot(epochs, [0.0] * (start > 0) + curve, label=name, color=color(name.split(",")[0]), alpha=0.8,
                marker=MARKERS[pruners.SCHEDULES.index(schedule) if schedule in pruners.SCHEDULES else -1],
                ls={"linear": "-", "geometric": "-.", "cubic": "--"}.get(schedule, ":"))
    _label(ax, "epoch", "sparsity", "Dissipating gradients: sparsity per epoch"
           + (f" (target {target:g})" if target is not None else ""))
    return _note(fig)


def dissipating_movement(table):
    """The distribution of relative movement |θ_e - θ0| / |θ0| at each pruning epoch (one run)."""
    rows = table[table["method"].isin(["dissipating", "combined"])]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    title = "relative movement of the kept weights"
    if len(rows):
        last = rows.iloc[-1]
        for e, hist in enumerate(_dissipating_report(last["extra"])["movement_histograms"]):
            counts = np.array(hist["counts"])
            edges = np.linspace(hist["log10_min"], hist["log10_max"], len(counts) + 1)
            ax.stairs(counts, edges, label=f"pruning epoch {e + 1}")
        title = f"{last['method']}, sparsity {last['sparsity']:g}: {title}"
    _label(ax, "log10 relative movement r (pruned: the smallest)", "weights", title)
    return _note(fig)


def dissipating_prune_epochs(table):
    """Figure 4b: accuracy against the pruning epochs E_d, per sparsity."""
    rows = table[table["method"] == "dissipating"].copy()
    rows["prune_epochs"] = [int(o.get("prune_epochs", 3)) for o in rows["options"]]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for s, group in rows.groupby("sparsity"):
        if group["prune_epochs"].nunique() < 2:
            continue
        stats = group.groupby("prune_epochs")["test_accuracy"].agg(["mean", "std"]).sort_index()
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                    label=f"sparsity {s:g}")
    _label(ax, "pruning epochs E_d", "test accuracy", "Dissipating gradients: accuracy against E_d")
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


def accuracy_table(table):
    """Table 1: mean ± std of final test accuracy, per (dataset, arch, method label) and sparsity."""
    import pandas as pd

    table = _default(table)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "arch", "method"])
    stats = table.groupby(["dataset", "arch", "label", "sparsity"])["test_accuracy"].agg(["mean", "std", "count"])
    stats["std"] = stats["std"].fillna(0.0)
    cells = stats.apply(lambda r: f"{r['mean']:.4f} ± {r['std']:.4f} (n={int(r['count'])})", axis=1)
    wide = cells.unstack("sparsity")
    wide.columns = [f"s={c:g}" for c in wide.columns]
    wide = wide.reset_index().rename(columns={"label": "method"})
    order = {name: i for i, name in enumerate(_methods(wide))}
    wide = wide.sort_values(["dataset", "arch", "method"], key=lambda col: col.map(order) if col.name == "method"
                            else col)
    return pd.DataFrame(wide).fillna("")


# (number, claim, method that should win, methods it should beat): the paper's claims 2-4
CLAIMS = [
    ("2", "K-starts picks better masks than random", "kstarts", ["random"]),
    ("3", "dissipating gradients preserves accuracy best", "dissipating", ["random", "kstarts"]),
    ("4", "the combination beats each of them and random", "combined", ["kstarts", "dissipating", "random"]),
]


def claims() -> list[tuple[str, str, str, list[str]]]:
    """The paper's claims, then each of its methods against every established baseline of the
    registry (family "baseline"), so that a new baseline joins the comparison by itself."""
    rivals = [m for m in pruners.PRUNERS.names() if family(m) == "baseline"]
    beyond = [("beyond", f"{m} against the established baselines", m, rivals) for _, _, m, _ in CLAIMS]
    return CLAIMS + beyond


def interval(diffs) -> tuple[float, float, float]:
    """Mean and two-sided t-interval (``LEVEL``) of paired differences over seeds; (mean, nan,
    nan) with fewer than two seeds, where no interval exists."""
    from scipy.stats import t

    d = np.asarray(diffs, dtype=float)
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf(0.5 + LEVEL / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no difference detected"


def verdicts(table) -> list[dict]:
    """Each claim against each rival on each (dataset, arch): per sparsity, the paired
    difference in test accuracy over seeds with its t-interval and a three-way verdict (better:
    interval above 0, worse: below 0, else no difference detected). A method with several
    labels (dissipating's schedules) is judged once per label; against a rival with the same
    kind of label (combined vs dissipating), the same schedule."""
    table = table if "label" in table else _default(table)
    out = []
    for (dataset, arch), part in table.groupby(["dataset", "arch"]):
        acc = part.pivot_table(index=["sparsity", "seed"], columns="label", values="test_accuracy")
        options = {name: rows["options"].iloc[0] for name, rows in part.groupby("label")}
        for number, claim, winner, rivals in claims():
            for name in _methods(part[part["method"] == winner], "label"):
                for rival in rivals:
                    # a rival with the same kind of label (combined vs dissipating): the same schedule
                    same = _entry(rival) is not None and _entry(winner) is not None and \
                        _entry(rival).lines == _entry(winner).lines
                    against = label(rival, options[name] if same else {})
                    if against not in acc or name == against:
                        continue
                    diff = (acc[name] - acc[against]).dropna()
                    if diff.empty:
                        continue
                    rows = []
                    for sparsity, d in diff.groupby(level="sparsity"):
                        mean, low, high = interval(d.to_numpy())
                        rows.append({"sparsity": float(sparsity), "seeds": len(d), "mean": mean, "low": low,
                                     "high": high, "verdict": verdict(low, high)})
                    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("better", "no difference detected",
                                                                                 "worse")}
                    out.append({"dataset": dataset, "arch": arch, "claim": number, "text": claim,
                                "method": name, "rival": against, "mean_difference": float(diff.mean()),
                                "better": counts["better"], "no_difference": counts["no difference detected"],
                                "worse": counts["worse"], "sparsities": len(rows), "per_sparsity": rows})
    return out


def _confident(rows) -> dict:
    """{(dataset, arch): {label: sparsities}} where a paper claim's method is better than every
    one of its claim's rivals (not the beyond-the-paper comparison)."""
    found: dict = {}
    for (dataset, arch, method), group in _groupby(rows, lambda r: (r["dataset"], r["arch"], r["method"])):
        group = [r for r in group if r["claim"] != "beyond"]
        if not group:
            continue
        sets = [{p["sparsity"] for p in r["per_sparsity"] if p["verdict"] == "better"} for r in group]
        found.setdefault((dataset, arch), {})[method] = set.intersection(*sets)
    return found


def _groupby(rows, key):
    groups: dict = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups.items()


def _points(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.2f}"


def claims_markdown(table) -> str:
    rows = verdicts(table)
    lines = ["# The paper's claims on our grid", "",
             f"Haroon, arXiv 2209.02201, claims 2-4 of shared/METHOD.md; {NOTE}.",
             "Difference = test accuracy of the method minus its rival, paired by seed, in points of accuracy; "
             f"per sparsity its mean with a two-sided {LEVEL:.0%} t-interval over seeds (t with n - 1 degrees of "
             "freedom). Verdict per sparsity: **better** (interval above 0), **worse** (below 0), or no difference "
             "detected. Each dissipating schedule is its own method, judged apart.", ""]
    if not rows:
        return "\n".join(lines + ["No runs to compare yet: run `make demo` first.", ""])
    for (number, text), group in _groupby(rows, lambda r: (r["claim"], r["text"])):
        title = f"Claim {number}: {text}" if number != "beyond" else f"Beyond the paper: {text}"
        sparsities = sorted({p["sparsity"] for r in group for p in r["per_sparsity"]})
        lines += [f"## {title}", "",
                  "| dataset / arch | method | vs | mean difference | verdict over sparsities |",
                  "| --- | --- | --- | --- | --- |"]
        for r in group:
            lines.append(f"| {r['dataset']} / {r['arch']} | {r['method']} | {r['rival']} "
                         f"| {_points(r['mean_difference'])} | better at {r['better']}, no difference at "
                         f"{r['no_difference']}, worse at {r['worse']} of {r['sparsities']} sparsities |")
        lines += ["", "Per sparsity: mean difference [95% interval], verdict.", "",
                  "| dataset / arch | method | vs | " + " | ".join(f"s={s:g}" for s in sparsities) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in sparsities) + " |"]
        for r in group:
            by = {p["sparsity"]: p for p in r["per_sparsity"]}
            cells = []
            for s in sparsities:
                p = by.get(s)
                if p is None:
                    cells.append("")
                    continue
                mark = {"better": "**better**", "worse": "**worse**"}.get(p["verdict"], "no difference")
                cells.append(f"{_points(p['mean'])} [{_points(p['low'])}, {_points(p['high'])}] {mark}")
            lines.append(f"| {r['dataset']} / {r['arch']} | {r['method']} | {r['rival']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def ablation_loss(table):
    """Sanity checks (Frankle et al. 2020): test accuracy lost under each ablation, per method,
    paired by (sparsity, seed) with the unablated run and averaged. A method whose accuracy
    survives shuffling chooses layer densities, not weights."""
    keys = ["dataset", "arch", "method", "sparsity", "seed", "variant"]
    base = table[table["ablation"] == "none"].drop_duplicates(keys).set_index(keys)["test_accuracy"]
    ablated = table[table["ablation"] != "none"]
    fig, ax = plt.subplots(figsize=(7, 4))
    if len(ablated):
        joined = ablated.join(base.rename("unablated"), on=keys).dropna(subset=["unablated"])
        joined["lost"] = joined["unablated"] - joined["test_accuracy"]
        stats = joined.groupby(["method", "ablation"])["lost"].agg(["mean", "std"]).reset_index()
        methods = _methods(stats)
        kinds = list(dict.fromkeys(stats["ablation"]))
        width = 0.8 / max(1, len(kinds))
        for i, kind in enumerate(kinds):
            part = stats[stats["ablation"] == kind].set_index("method").reindex(methods)
            ax.bar(np.arange(len(methods)) + i * width, part["mean"], width, yerr=part["std"].fillna(0),
                   capsize=2, label=kind)
        ax.set_xticks(np.arange(len(methods)) + 0.4 - width / 2)
        ax.set_xticklabels(methods, fontsize=8)
        ax.axhline(0, color="black", lw=0.8)
    _label(ax, "", "test accuracy lost (unablated - ablated)",
           "Sanity checks: what each method's mask carries beyond layer densities")
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
}


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
