"""K-starts' own figures (docs/method.md, figures 3a and 3b), from its report (``extra``: each
candidate's fitness, the winner, and in analysis mode each candidate's final accuracy). Each is
attached to K-starts' registry entry (``of``) by ``figures.contributes``; they read the runs table
like every figure.
"""

from __future__ import annotations

import numpy as np

from ..pruners import KStarts
from . import figures as F
from . import labels

OF, BESIDE = ("kstarts",), ("random",)  # the declaration: whose figures these are, and random as k = 1


@F.contributes("kstarts_candidates", "Whether the starred winner stands apart from the other candidates of its run; "
               "a winner inside the cloud was picked by noise.", of=OF)
def kstarts_candidates(table, of, beside):
    """Each K-starts candidate's fitness after the warm-up, the winner starred, per run: a row of
    panels per dataset and architecture, the runs side by side in groups of one profile and
    sparsity (seeds in order), each group's sparsity once under it and its profile a colour of
    the legend, so that a grid of any size keeps the page's width."""
    from matplotlib.lines import Line2D

    rows = F.profiled(table[table["method"].isin(of) & (table["ablation"] == "none")])
    if rows.empty:
        raise F.Empty(f"no {of[0]} runs in this store")
    cells = F.cells_of(rows)
    named = labels.sparsities(rows["sparsity"])
    suffixes = sorted(set(rows["suffix"]))
    tint = {x: F.color(of[0]) if len(suffixes) == 1 else f"C{i % 10}" for i, x in enumerate(suffixes)}
    fig, panels = F.panel_grid(cells, ["all"])
    for (key, _), ax in panels.items():
        part = F.cell_of(rows, key).sort_values(["suffix", "sparsity", "seed"])
        ticks, names, x = [], [], 0
        for (suffix, sparsity), group in part.groupby(["suffix", "sparsity"], sort=False):
            for n, (_, row) in enumerate(group.iterrows()):
                cands = row["extra"]["candidates"]
                ax.scatter([x + n] * len(cands), [c["fitness"] for c in cands], color=tint[suffix], alpha=0.6, s=14)
                win = cands[row["extra"]["winner"]]
                ax.scatter([x + n], [win["fitness"]], marker="*", s=80, facecolor="gold", edgecolor="black",
                           linewidth=0.6, zorder=3)
            ticks.append(x + (len(group) - 1) / 2)
            names.append(f"{named[sparsity]}\n({len(group)})")
            x += len(group) + 1
        ax.set_xticks(ticks, names)
        ax.set_xlim(-1, x - 1)
        F.label_axes(ax, "sparsity (runs)", "fitness after warm-up",
                 F.title_of(key, "every candidate's fitness, one column per run"))
    ax = next(iter(panels.values()))
    for suffix in suffixes:  # proxies: a colour per profile, the winner's star, each once
        ax.add_line(Line2D([], [], color=tint[suffix], marker="o", ls="", alpha=0.6,
                           label=labels.named("candidates", suffix)))
    ax.add_line(Line2D([], [], marker="*", markersize=10, markerfacecolor="gold", markeredgecolor="black", ls="",
                       label="the winner of its run"))
    return F.noted(fig)


# a line style per fitness criterion, in the order the option declares them
FITNESS_STYLE = dict(zip(next(o.choices for o in KStarts.declared() if o.name == "fitness"), (":", "--", "-")))


@F.contributes("kstarts_k_and_fitness", "Whether accuracy rises with k (more random starts) above random's line "
               "(k = 1); a flat line means the choice among candidates buys nothing.", of=OF, beside=BESIDE)
def kstarts_k_and_fitness(table, of, beside):
    """Figure 3a: K-starts accuracy against k, one line per fitness criterion (and profile), one row
    of panels per dataset and architecture, one panel per sparsity run at more than one k."""
    rows = table[table["method"].isin(of) & (table["ablation"] == "none")]
    full = [c["selection"] == "full" for c in labels.identities(rows)]  # halving: not here
    rows = rows[np.array(full, dtype=bool)]
    rows = F.profiled(rows, drop=("k", "fitness"))
    configs = labels.identities(rows)
    rows = rows.assign(k=[int(c["k"]) for c in configs], fitness=[c["fitness"] for c in configs])
    random = F.regimed(F.main_comparison(table[table["method"].isin(beside)]))
    panels_of = {key: sorted(s for s, g in F.cell_of(rows, key).groupby("sparsity") if g["k"].nunique() > 1)
                 for key in F.cells_of(rows)}
    keys = [key for key in panels_of if panels_of[key]]
    if not keys:
        raise F.Empty(f"no {of[0]} runs at more than one k in this store")
    named = labels.sparsities(rows["sparsity"])
    width = max(len(panels_of[k]) for k in keys)
    profiles = sorted(set(rows["suffix"]))  # a marker per profile, the same in every panel
    fig, panels = F.panel_grid(keys, list(range(width)))
    for (key, j), ax in panels.items():
        if j >= len(panels_of[key]):
            ax.set_axis_off()
            continue
        s = panels_of[key][j]
        part = F.cell_of(rows, key)
        part = part[part["sparsity"] == s]
        for (fitness, suffix), group in part.groupby(["fitness", "suffix"]):
            stats = group.groupby("k")["test_accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0), capsize=3, color=F.color(of[0]),
                        marker=F.MARKERS[profiles.index(suffix) % len(F.MARKERS)], ls=FITNESS_STYLE.get(fitness, "-."),
                        label=labels.named(f"{of[0]}, fitness: {fitness}", suffix))
        base = F.cell_of(random, key)
        base = base[base["sparsity"] == s]
        names = sorted(set(random["label"]))
        for name, group in base.groupby("label"):
            ax.axhline(group["test_accuracy"].mean(), color=F.color(labels.base(name)), label=f"{name} (k=1)",
                       ls=(":", "-.", "--", (0, (1, 3)))[names.index(name) % 4])
        ax.set_xscale("log", base=2)
        F.label_axes(ax, "k (random starts)", "test accuracy", F.title_of(key, f"s={named[s]}"))
    return F.noted(fig)


@F.contributes("kstarts_fitness_vs_final", "A rising trend: fitter candidates after the warm-up end more accurate. "
               "Without it the fitness does not pick better masks.", of=OF)
def kstarts_fitness_vs_final(table, of, beside):
    """Figure 3b: fitness rank after the warm-up against final accuracy of every candidate
    (analysis mode), one panel per dataset and architecture; colour: the sparsity, marker: the
    seed, the winner starred; the mean rank correlation per profile in the title."""
    from matplotlib.lines import Line2D

    rows = table[table["method"].isin(of) & (table["ablation"] == "none")]
    rows = rows[np.array([bool(e.get("candidates")) and "final_test_accuracy" in e["candidates"][0]
                         for e in rows["extra"]], dtype=bool)]
    if rows.empty:
        raise F.Empty("no analysis-mode runs in this store")
    rows = F.profiled(rows)
    cells = F.cells_of(rows)
    sparsities = sorted(set(rows["sparsity"]))
    named = labels.sparsities(sparsities)
    seeds = sorted(set(rows["seed"]))
    fig, panels = F.panel_grid(cells, ["all"], height=3.6)
    for (key, _), ax in panels.items():
        part = F.cell_of(rows, key).sort_values(["sparsity", "seed"])
        for _, row in part.iterrows():
            cands, winner = row["extra"]["candidates"], row["extra"]["winner"]
            ranks = np.argsort(np.argsort([c["fitness"] for c in cands])) / max(1, len(cands) - 1)
            tint = f"C{sparsities.index(row['sparsity']) % 10}"
            mark = F.MARKERS[seeds.index(row["seed"]) % len(F.MARKERS)]
            ax.scatter(ranks, [c["final_test_accuracy"] for c in cands], alpha=0.6, s=20, color=tint, marker=mark)
            ax.scatter([ranks[winner]], [cands[winner]["final_test_accuracy"]], marker="*", s=110, color=tint,
                       edgecolor="black", linewidth=0.6)
        rhos = []
        for suffix, group in part.groupby("suffix"):
            values = [e["rank_correlation"] for e in group["extra"] if e.get("rank_correlation") is not None]
            if values:
                rhos.append(labels.named(f"mean Spearman rho {np.mean(values):.2f} over {len(values)} runs", suffix))
        F.label_axes(ax, "fitness rank after the warm-up (0 = least fit, 1 = fittest)", "final test accuracy",
                 F.title_of(key, "; ".join(rhos)))
    if len(rows):  # proxies: one entry per sparsity, per seed, and the winner's star, each once
        ax = next(iter(panels.values()))
        for i, s in enumerate(sparsities):
            ax.add_line(Line2D([], [], color=f"C{i % 10}", marker="o", ls="", label=f"s={named[s]}"))
        for i, seed in enumerate(seeds):
            ax.add_line(Line2D([], [], color="gray", marker=F.MARKERS[i % len(F.MARKERS)], ls="", label=f"seed {seed}"))
        ax.add_line(Line2D([], [], color="gray", marker="*", markersize=10, ls="", label="winner (starred)"))
    return F.noted(fig)
