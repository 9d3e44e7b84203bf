"""Dissipating gradients' own figures (docs/method.md, figure 4), from its report (``extra``, or
combined's, filed under dissipating's name: the sparsity after each pruning epoch, histograms of
the relative movement). Each is attached to the registry entries of the methods it draws
(``of``: dissipating, whose report it reads, then combined) by ``figures.contributes``; the
methods' names are that declaration's, never this module's code's.
"""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from . import figures as F
from . import labels

OF, BESIDE = ("dissipating", "combined"), ("random",)  # the declaration: whose figures these are


def _none(of) -> str:
    return f"no {' or '.join(of)} runs in this store"


@F.contributes("dissipating_schedules", "How far apart the schedules are, against random at the same sparsities: "
               "the schedule alone can decide the verdict.", of=OF, beside=BESIDE)
def dissipating_schedules(table, of, beside):
    """Accuracy against density for each dissipating schedule (alone and in combined), with
    random for reference: the schedule alone can decide the verdict."""
    if not table["method"].isin(of).any():
        raise F.Empty(_none(of))
    return F.noted(F.by_regime(table, [*beside, *of]))


def _report(extra, of):
    """Dissipating's report: the run's own, or the stage's in a method built on it."""
    return extra.get(of[0], extra)


@F.contributes("dissipating_sparsity", "Each curve should reach its target by the last pruning epoch E_d and stay "
               "there; combined starts at K-starts' s_k.", of=OF)
def dissipating_sparsity(table, of, beside):
    """Figure 4a: sparsity after each epoch at the highest target of each dataset and architecture,
    one line per method label and profile (mean over seeds). Combined holds K-starts' s_k from
    epoch 0 through its warm-up, then dissipates from there."""
    rows = F.regimed(F.main_comparison(table[table["method"].isin(of)]))
    if rows.empty:
        raise F.Empty(_none(of))
    cells = F.cells_of(rows)
    fig, panels = F.panel_grid(cells, ["all"])
    every = F.in_registry_order(rows, "label")
    for (key, _), ax in panels.items():
        part = F.cell_of(rows, key)
        target = part["sparsity"].max()
        for name in F.in_registry_order(part, "label"):
            group = part[(part["label"] == name) & (part["sparsity"] == target)]
            if group.empty:
                continue
            config = labels.identities(group.iloc[:1])[0]
            start = int(config["warmup_epochs"]) if group["method"].iloc[0] != of[0] else 0  # after K-starts
            curves = [[_report(e, of)["start_sparsity"], *_report(e, of)["sparsity_per_epoch"]] for e in group["extra"]]
            length = min(len(c) for c in curves)
            curve = list(np.mean([c[:length] for c in curves], axis=0))
            epochs = [0] * (start > 0) + list(range(start, start + length))  # combined: at s_k from epoch 0
            style = F.style_of(name, config, every)
            ax.plot(epochs, curve[:1] * (start > 0) + curve, label=name, alpha=0.8, **style)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        F.label_axes(ax, "epoch", "sparsity", F.title_of(key, f"sparsity per epoch at the target {target:g}"))
    return F.noted(fig)


@F.contributes("dissipating_movement", "How the histograms shift between pruning epochs: the pruned weights are the "
               "left tail; a tail that stops moving means the mask has settled.", of=OF)
def dissipating_movement(table, of, beside):
    """The distribution of relative movement |θ_e - θ0| / |θ0| at each pruning epoch: one run (the
    last) per dataset and architecture."""
    rows = table[table["method"].isin(of) & (table["ablation"] == "none")]
    if rows.empty:
        raise F.Empty(_none(of))
    cells = F.cells_of(rows)
    fig, panels = F.panel_grid(cells, ["all"])
    for (key, _), ax in panels.items():
        last = F.cell_of(rows, key).iloc[-1]
        for e, hist in enumerate(_report(last["extra"], of)["movement_histograms"]):
            counts = np.array(hist["counts"])
            edges = np.linspace(hist["log10_min"], hist["log10_max"], len(counts) + 1)
            ax.stairs(counts, edges, label=f"pruning epoch {e + 1}", color=f"C{e % 10}")
        options = last["options"] if isinstance(last["options"], dict) else {}
        F.label_axes(ax, "log10 relative movement r (pruned: the smallest)", "weights",
                     F.title_of(key, f"{F.label(last['method'], options)} at sparsity {last['sparsity']:g}, "
                                f"seed {last['seed']}"))
    return F.noted(fig)


@F.contributes("dissipating_prune_epochs", "A plateau: the smallest E_d that does as well as more epochs of pruning.",
               of=OF)
def dissipating_prune_epochs(table, of, beside):
    """Figure 4b: accuracy against the pruning epochs E_d, one line per sparsity (and profile), one
    panel per dataset and architecture."""
    rows = table[(table["method"] == of[0]) & (table["ablation"] == "none")]
    rows = F.profiled(rows, drop=("prune_epochs",))
    rows = rows.assign(prune_epochs=[int(c["prune_epochs"]) for c in labels.identities(rows)])
    sparsities = sorted(set(rows["sparsity"]))
    named = labels.sparsities(sparsities)
    cells = [key for key in F.cells_of(rows) if (F.cell_of(rows, key).groupby(["sparsity", "suffix"])["prune_epochs"]
                                               .nunique() > 1).any()]
    if not cells:
        raise F.Empty(f"no {of[0]} runs at more than one E_d in this store")
    fig, panels = F.panel_grid(cells, ["all"])
    for (key, _), ax in panels.items():
        for (s, suffix), group in F.cell_of(rows, key).groupby(["sparsity", "suffix"]):
            if group["prune_epochs"].nunique() < 2:
                continue
            stats = group.groupby("prune_epochs")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        color=f"C{sparsities.index(s) % 10}", label=labels.named(f"sparsity {named[s]}", suffix))
        F.label_axes(ax, "pruning epochs E_d", "test accuracy", F.title_of(key, "accuracy against E_d"))
    return F.noted(fig)
