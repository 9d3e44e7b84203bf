"""Dissipating gradients' own figures (docs/method.md, figure 4), from its report (``extra``, or
combined's ``extra["dissipating"]``: the sparsity after each pruning epoch, histograms of the
relative movement). Found by ``initprune.report.figures`` through ``Dissipating.figures``.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from . import figures as F
from . import labels


@F.contributes("dissipating_schedules")
def dissipating_schedules(table):
    """Accuracy against density for each dissipating schedule (alone and in combined), with
    random for reference: the schedule alone can decide the verdict."""
    if not table["method"].isin(["dissipating", "combined"]).any():
        raise F.Empty("no dissipating or combined runs in this store")
    return F._note(F._by_regime(table, ["random", "dissipating", "combined"]))


def _dissipating_report(extra):
    return extra.get("dissipating", extra)


@F.contributes("dissipating_sparsity")
def dissipating_sparsity(table):
    """Figure 4a: sparsity after each epoch at the highest target of each dataset and architecture,
    one line per method label and profile (mean over seeds). Combined holds K-starts' s_k from
    epoch 0 through its warm-up, then dissipates from there."""
    rows = F.regimed(F._default(table[table["method"].isin(["dissipating", "combined"])]))
    if rows.empty:
        raise F.Empty("no dissipating or combined runs in this store")
    cells = F._cells(rows)
    fig, panels = F._grid(cells, ["all"])
    every = F._methods(rows, "label")
    for (key, _), ax in panels.items():
        part = F._cell(rows, key)
        target = part["sparsity"].max()
        for name in F._methods(part, "label"):
            group = part[(part["label"] == name) & (part["sparsity"] == target)]
            if group.empty:
                continue
            config = F._configs(group.iloc[:1])[0]
            start = int(config["warmup_epochs"]) if group["method"].iloc[0] == "combined" else 0
            curves = [[_dissipating_report(e)["start_sparsity"], *_dissipating_report(e)["sparsity_per_epoch"]]
                      for e in group["extra"]]
            length = min(len(c) for c in curves)
            curve = list(np.mean([c[:length] for c in curves], axis=0))
            epochs = [0] * (start > 0) + list(range(start, start + length))  # combined: at s_k from epoch 0
            style = F._style(name, config, every)
            ax.plot(epochs, curve[:1] * (start > 0) + curve, label=name, alpha=0.8, **style)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        F._label(ax, "epoch", "sparsity", F._title(key, f"sparsity per epoch at the target {target:g}"))
    return F._note(fig)


@F.contributes("dissipating_movement")
def dissipating_movement(table):
    """The distribution of relative movement |θ_e - θ0| / |θ0| at each pruning epoch: one run (the
    last) per dataset and architecture."""
    rows = table[table["method"].isin(["dissipating", "combined"]) & (table["ablation"] == "none")]
    if rows.empty:
        raise F.Empty("no dissipating or combined runs in this store")
    cells = F._cells(rows)
    fig, panels = F._grid(cells, ["all"])
    for (key, _), ax in panels.items():
        last = F._cell(rows, key).iloc[-1]
        for e, hist in enumerate(_dissipating_report(last["extra"])["movement_histograms"]):
            counts = np.array(hist["counts"])
            edges = np.linspace(hist["log10_min"], hist["log10_max"], len(counts) + 1)
            ax.stairs(counts, edges, label=f"pruning epoch {e + 1}", color=f"C{e % 10}")
        F._label(ax, "log10 relative movement r (pruned: the smallest)", "weights",
                 F._title(key, f"{F.label(last['method'], F._dict(last['options']))} at sparsity {last['sparsity']:g}, "
                           f"seed {last['seed']}"))
    return F._note(fig)


@F.contributes("dissipating_prune_epochs")
def dissipating_prune_epochs(table):
    """Figure 4b: accuracy against the pruning epochs E_d, one line per sparsity (and profile), one
    panel per dataset and architecture."""
    rows = table[(table["method"] == "dissipating") & (table["ablation"] == "none")]
    rows = F._profiled(rows, drop=("prune_epochs",))
    rows = rows.assign(prune_epochs=[int(c["prune_epochs"]) for c in F._configs(rows)])
    sparsities = sorted(set(rows["sparsity"]))
    named = labels.sparsities(sparsities)
    cells = [key for key in F._cells(rows) if (F._cell(rows, key).groupby(["sparsity", "suffix"])["prune_epochs"]
                                               .nunique() > 1).any()]
    if not cells:
        raise F.Empty("no dissipating runs at more than one E_d in this store")
    fig, panels = F._grid(cells, ["all"])
    for (key, _), ax in panels.items():
        for (s, suffix), group in F._cell(rows, key).groupby(["sparsity", "suffix"]):
            if group["prune_epochs"].nunique() < 2:
                continue
            stats = group.groupby("prune_epochs")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        color=f"C{sparsities.index(s) % 10}", label=F._named(f"sparsity {named[s]}", suffix))
        F._label(ax, "pruning epochs E_d", "test accuracy", F._title(key, "accuracy against E_d"))
    return F._note(fig)
