"""The paper's figures, each a function of a table of runs (a pandas DataFrame, one row per run,
as ``tracking.runs_table`` returns it) that returns a matplotlib figure.

Columns used: method, dataset, arch, sparsity, seed, test_accuracy, variant (JSON of the options
that differ from the method's defaults, "{}" for the default method), options (dict), history
(list of per-epoch dicts) and extra (the method's report).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

NOTE = "initprune, on our grid (shared/METHOD.md), not the paper's numbers"
PAPER = ("random", "kstarts", "dissipating", "combined")
BASELINES = ("magnitude", "snip", "grasp", "synflow", "posttrain")
ORDER = ("dense", *PAPER, *BASELINES)
COLORS = {"dense": "black", "random": "tab:gray", "kstarts": "tab:blue", "dissipating": "tab:orange",
          "combined": "tab:green", "magnitude": "tab:brown", "snip": "tab:purple", "grasp": "tab:pink",
          "synflow": "tab:olive", "posttrain": "tab:cyan"}
STYLES = {m: ":" for m in BASELINES}  # the paper's methods solid, the baselines dotted


def _default(table):
    """The main comparison: per dataset, arch and method, the runs with the method's default
    options, or where there are none, the option set that covers the most points."""
    table = table[table["ablation"] == "none"]
    if table.empty:
        return table
    keep = []
    for _, part in table.groupby(["dataset", "arch", "method"]):
        counts = part["variant"].value_counts()
        keep.append(part[part["variant"] == ("{}" if "{}" in counts else counts.index[0])])
    import pandas as pd

    return pd.concat(keep)


def _panels(table):
    keys = sorted({(d, a) for d, a in zip(table["dataset"], table["arch"])})
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(5.5 * max(1, len(keys)), 4.2), squeeze=False)
    return fig, list(zip(keys, axes[0]))


def _note(fig):
    fig.text(0.995, 0.005, NOTE, ha="right", va="bottom", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _methods(table):
    present = list(dict.fromkeys(table["method"]))
    return [m for m in ORDER if m in present] + [m for m in present if m not in ORDER]


def accuracy_vs_sparsity(table):
    """Figure 1: test accuracy against density (log axis), mean and spread over seeds."""
    table = _default(table)
    fig, panels = _panels(table)
    for (dataset, arch), ax in panels:
        part = table[(table["dataset"] == dataset) & (table["arch"] == arch)]
        for method in _methods(part):
            rows = part[part["method"] == method]
            if method == "dense":
                mean = rows["test_accuracy"].mean()
                ax.axhline(mean, color="black", ls="--", lw=1, label=f"dense ({mean:.3f})")
                continue
            stats = rows.groupby("sparsity")["test_accuracy"].agg(["mean", "std", "count"]).sort_index()
            density = 1 - stats.index.to_numpy()
            ax.errorbar(density, stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3,
                        label=method, color=COLORS.get(method), ls=STYLES.get(method, "-"))
        ax.set_xscale("log")
        ax.invert_xaxis()
        _label(ax, "density (fraction of weights kept, log)", "test accuracy", f"{dataset} / {arch}")
    return _note(fig)


def learning_curves(table, sparsity: float | None = None):
    """Figure 2: test accuracy per epoch at one sparsity (default: the highest), per method."""
    table = _default(table)
    if sparsity is None:
        sparsity = float(table.loc[table["method"] != "dense", "sparsity"].max())
    fig, panels = _panels(table)
    for (dataset, arch), ax in panels:
        part = table[(table["dataset"] == dataset) & (table["arch"] == arch)]
        for method in _methods(part):
            rows = part[(part["method"] == method) & ((part["sparsity"] == sparsity) | (part["method"] == "dense"))]
            if rows.empty:
                continue
            curves = np.array([[h["test_accuracy"] for h in hist] for hist in rows["history"]])
            epochs = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(0)
            ax.plot(epochs, mean, label=method, color=COLORS.get(method), ls="--" if method == "dense" else "-")
            ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15, color=COLORS.get(method))
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
    """Figure 3b: fitness after the warm-up against final accuracy of every candidate (analysis mode)."""
    rows = [r for r in table[table["method"] == "kstarts"]["extra"]
            if r["candidates"] and "final_test_accuracy" in r["candidates"][0]]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for n, extra in enumerate(rows):
        cands = extra["candidates"]
        ranks = np.argsort(np.argsort([c["fitness"] for c in cands])) / max(1, len(cands) - 1)
        ax.scatter(ranks, [c["final_test_accuracy"] for c in cands], alpha=0.6, s=20)
        win = cands[extra["winner"]]
        ax.scatter([ranks[extra["winner"]]], [win["final_test_accuracy"]], marker="*", s=90, color="tab:red",
                   label="winner" if n == 0 else None)
    rhos = [r["rank_correlation"] for r in rows if r.get("rank_correlation") is not None]
    title = "fitness rank after warm-up vs final accuracy"
    if rhos:
        title += f"\nmean Spearman rho {np.mean(rhos):.2f} over {len(rhos)} runs"
    _label(ax, "fitness rank (0 = least fit, 1 = fittest)", "final test accuracy", title)
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
        label = f"{row['method']}, {schedule}, E_d={len(report['sparsity_per_epoch'])}"
        lines.setdefault(label, []).append((start, [report["start_sparsity"], *report["sparsity_per_epoch"]]))
    for label, runs in sorted(lines.items()):
        start, curve = runs[0][0], list(np.mean([c for _, c in runs], axis=0))
        epochs = [0] * (start > 0) + list(range(start, start + len(curve)))  # combined: dense at 0
        ax.plot(epochs, [0.0] * (start > 0) + curve, marker="o", label=label,
                color=COLORS["combined" if label.startswith("combined") else "dissipating"],
                ls="--" if "cubic" in label else "-", alpha=0.8)
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
               color=COLORS.get(r["method"]))
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
    ax.set_xticklabels(layers, fontsize=8)
    ax.set_yscale("log")
    _label(ax, "", "density (kept / weights)", "Which layers keep their weights")
    return _note(fig)


def accuracy_table(table):
    """Table 1: mean ± std of final test accuracy, per (dataset, arch, method) and sparsity."""
    import pandas as pd

    table = _default(table)
    if table.empty:
        return pd.DataFrame(columns=["dataset", "arch", "method"])
    stats = table.groupby(["dataset", "arch", "method", "sparsity"])["test_accuracy"].agg(["mean", "std", "count"])
    stats["std"] = stats["std"].fillna(0.0)
    cells = stats.apply(lambda r: f"{r['mean']:.4f} ± {r['std']:.4f} (n={int(r['count'])})", axis=1)
    wide = cells.unstack("sparsity")
    wide.columns = [f"s={c:g}" for c in wide.columns]
    order = {m: i for i, m in enumerate(ORDER)}
    wide = wide.reset_index()
    wide = wide.sort_values(["dataset", "arch", "method"], key=lambda col: col.map(order).fillna(99)
                            if col.name == "method" else col)
    return pd.DataFrame(wide).fillna("")


# (claim, method that should win, methods it should beat)
CLAIMS = [
    ("2: K-starts picks better masks than random", "kstarts", ["random"]),
    ("3: dissipating gradients preserves accuracy best", "dissipating", ["random", "kstarts"]),
    ("4: the combination beats each of them and random", "combined", ["kstarts", "dissipating", "random"]),
    # beyond the paper: where its methods stand among the established ones
    *[(f"beyond the paper: {m} against the established baselines", m, list(BASELINES[:4]))
      for m in ("combined", "dissipating", "kstarts")],
]


def verdicts(table) -> list[dict]:
    """Each claim against each rival on each (dataset, arch): the difference in test accuracy,
    paired by seed, at every sparsity both were run at."""
    table = _default(table)
    out = []
    for (dataset, arch), part in table.groupby(["dataset", "arch"]):
        acc = part.pivot_table(index=["sparsity", "seed"], columns="method", values="test_accuracy")
        for claim, winner, rivals in CLAIMS:
            for rival in rivals:
                if winner not in acc or rival not in acc:
                    continue
                diff = (acc[winner] - acc[rival]).dropna()
                if diff.empty:
                    continue
                per_sparsity = diff.groupby(level="sparsity").mean()
                per_seed = diff.groupby(level="seed").mean()  # each seed's mean over sparsities
                out.append({
                    "dataset": dataset, "arch": arch, "claim": claim, "method": winner, "rival": rival,
                    "mean_difference": float(diff.mean()),
                    "std_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
                    "sparsities": len(per_sparsity), "holds_at": int((per_sparsity > 0).sum()),
                    "holds_everywhere": bool((per_sparsity > 0).all()),
                    "worst": float(per_sparsity.min()), "worst_at": float(per_sparsity.idxmin()),
                })
    return out


def claims_markdown(table) -> str:
    rows = verdicts(table)
    lines = ["# The paper's claims on our grid", "",
             f"Haroon, arXiv 2209.02201, claims 2-4 of shared/METHOD.md; {NOTE}.",
             "Difference = test accuracy of the method minus its rival, paired by seed, in points of accuracy.", ""]
    if not rows:
        return "\n".join(lines + ["No runs to compare yet: run `make demo` first.", ""])
    for claim in dict.fromkeys(r["claim"] for r in rows):
        lines += [f"## Claim {claim}", "",
                  "| dataset / arch | vs | mean difference | std over seeds | holds at | worst (at sparsity) "
                  "| verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in (r for r in rows if r["claim"] == claim):
            verdict = ("holds at every sparsity" if r["holds_everywhere"]
                       else "holds on average, not everywhere" if r["mean_difference"] > 0
                       else "does not hold")
            lines.append(f"| {r['dataset']} / {r['arch']} | {r['rival']} | {100 * r['mean_difference']:+.2f} "
                         f"| {100 * r['std_over_seeds']:.2f} | {r['holds_at']}/{r['sparsities']} "
                         f"| {100 * r['worst']:+.2f} (s={r['worst_at']:g}) | {verdict} |")
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
    "dissipating_movement": dissipating_movement,
    "dissipating_prune_epochs": dissipating_prune_epochs,
    "ablation_loss": ablation_loss,
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
