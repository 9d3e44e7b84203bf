"""The verdict on the paper's claims 2-4, declared before any run (docs/method.md, "The verdict"),
from a table of runs (``results.to_table``): which runs make each contrast, the families, and
claims.md. The numbers come from ``stats``.

A contrast is judged per cell (dataset, arch), training setting (epochs, every training setting,
torch threads and device: runs of one cell trained otherwise are a replication of their own, never
mixed in) and allocation regime, never pooled over cells; a method's runs at a pruner version not
today's are a label of their own ("snip [v1]", as in the figures: ``labels``):
the **uniform** regime (every scope option of every method ``layerwise``) and the **free** one
(random positions spread by ERK: random, K-starts and combined's K-starts stage; every ranking
global: dissipating, combined's dissipating stage and the score-based baselines). A method that
lacks a scope option (K-starts before it had one) counts as ``layerwise``. The unit is the seed:
a contrast takes the seeds both methods have and the sparsities both have on every one of them;
a seed's value is the difference in test accuracy (points) averaged over those sparsities.
"""

from __future__ import annotations

import itertools
import json
import math

from .. import data, pruners
from ..errors import InitpruneError
from . import labels, stats

REGIMES = ("uniform", "free")
UNIFORM = "layerwise"
# the free regime's allocation of the methods that place weights at random (or start from
# random masks); every other scope option of every other method ranks globally
FREE = {"random": {"scope": "erk"}, "kstarts": {"scope": "erk"},
        "combined": {"kstarts_scope": "erk", "scope": "global"}}
FREE_RANKED = "global"

# (claim, what the paper says, method, rivals): a rival in a tuple (rival, True) is taken under
# the same values of the method's line options (combined (cubic) vs dissipating (cubic))
PRIMARY = [
    ("2", "K-starts picks better masks than random", "kstarts", [("random", False)]),
    ("3", "dissipating gradients preserves accuracy best", "dissipating", [("random", False), ("kstarts", False)]),
    ("4", "the combination beats each of them and random", "combined",
     [("kstarts", False), ("dissipating", True), ("random", False)]),
]


def _entry(method: str):
    return pruners.PRUNERS[method] if method in pruners.PRUNERS else None


def _lines(method: str) -> tuple[str, ...]:
    entry = _entry(method)
    return entry.lines if entry is not None else ()


def _defaults(method: str) -> dict:
    entry = _entry(method)
    return {} if entry is None else {o.name: o.default for o in entry.declared()}


def resolved(method: str, options: dict | None) -> dict:
    """The method's options as the run held them: the registry's defaults, then the run's own."""
    return {**_defaults(method), **(options if isinstance(options, dict) else {})}


label = pruners.label  # "dissipating (cubic)"


def _scope_keys(method: str, values: dict) -> set[str]:
    return {"scope"} | {k for k in values if k.endswith("_scope")} | set(FREE.get(method, {}))


def regime(method: str, options: dict | None) -> str | None:
    """"uniform", "free", or None for an allocation that is neither (random with global scope)."""
    values = resolved(method, options)
    keys = _scope_keys(method, values)
    held = {k: values.get(k, UNIFORM) for k in keys}  # an option the method lacks: layerwise
    if all(v == UNIFORM for v in held.values()):
        return "uniform"
    if held == {k: FREE.get(method, {}).get(k, FREE_RANKED) for k in keys}:
        return "free"
    return None


def _rest(method: str, values: dict) -> str:
    """The options that are neither line nor scope options and differ from the defaults."""
    skip = set(_lines(method)) | _scope_keys(method, values)
    defaults = _defaults(method)
    return json.dumps({k: v for k, v in values.items() if k not in skip and (k not in defaults or v != defaults[k])},
                      sort_keys=True, default=str)


def declared_labels(method: str) -> list[str]:
    """Every label of a method: one per combination of the values its line options take."""
    entry = _entry(method)
    if entry is None:
        return [method]
    declared = {o.name: o for o in entry.declared()}
    keys = [k for k in entry.lines if k in declared]
    if any(not declared[k].choices for k in keys):
        raise InitpruneError(f"method '{method}': a line option ({', '.join(keys)}) must declare its choices")
    return [label(method, dict(zip(keys, combo))) for combo in itertools.product(*(declared[k].choices for k in keys))]


def primary_families() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(claim, text, [(method label, rival label)]): the declared primary contrasts of one cell
    and regime, each claim a family (claim 2: 1 contrast, 3: 6, 4: 9)."""
    out = []
    for number, text, method, rivals in PRIMARY:
        entry = _entry(method)
        keys = entry.lines if entry is not None else ()
        pairs = []
        for name in declared_labels(method):
            values = _values_of(method, name, keys)
            for rival, same in rivals:
                pairs.append((name, label(rival, values) if same else label(rival, {})))
        out.append((number, text, pairs))
    return out


def _values_of(method: str, name: str, keys) -> dict:
    entry = _entry(method)
    if entry is None or not keys:
        return {}
    declared = {o.name: o for o in entry.declared()}
    for combo in itertools.product(*(declared[k].choices for k in keys)):
        if label(method, dict(zip(keys, combo))) == name:
            return dict(zip(keys, combo))
    return {}


def rivals() -> list[str]:
    """The secondary rivals, from the registry: every established baseline (family "baseline")
    and every reference that prunes (post-training; not dense)."""
    return [m for m in pruners.PRUNERS.names() if pruners.PRUNERS[m].family == "baseline"] + \
        [m for m in pruners.of_family("reference") if pruners.PRUNERS[m].fixed_sparsity is None]


def margin(dataset: str) -> float:
    """The dataset's equivalence margin for a classification (points): its declaration in ``data``,
    else the default."""
    return stats.margin("classification", data.DATASETS[dataset].margin if dataset in data.DATASETS else None)


setting = labels.setting  # epochs, training settings, threads and device: a replication of its own
canonical = labels.canonical
suffixes = labels.suffixes


def _column(table, name: str) -> list:
    return list(table[name]) if name in table else [None] * len(table)


def _prepare(table):
    """The unablated runs with their label, regime, training setting and other options; per (cell,
    setting, regime, label) the runs with the default other options, else the option set that
    covers the most runs. A label says the pruner version where it is not today's ("snip [v1]"):
    a group of its own, as in the figures (``labels``)."""
    import pandas as pd

    table = table[table["ablation"] == "none"]
    if table.empty:
        return {}
    values = [resolved(m, o) for m, o in zip(table["method"], table["options"])]
    settings = [setting(*row) for row in zip(*(_column(table, c) for c in ("dataset", "epochs", "training", "history",
                                                                         "threads", "device")))]
    versions = [labels.suffixes([{"version": labels.version(m, v)}])[0]
                for m, v in zip(table["method"], _column(table, "version"))]
    table = table.assign(label=[labels.named(label(m, v), s) for m, v, s in zip(table["method"], values, versions)],
                         regime=[regime(m, v) for m, v in zip(table["method"], values)],
                         rest=[_rest(m, v) for m, v in zip(table["method"], values)],
                         setting=[canonical(s) for s in settings])
    table = table[table["regime"].notna()]
    picked = {}
    for key, part in table.groupby(["dataset", "arch", "setting", "regime", "label"]):
        counts = part["rest"].value_counts()
        picked[key] = pd.DataFrame(part[part["rest"] == ("{}" if "{}" in counts else counts.index[0])])
    return picked


def _runs(part) -> dict:
    """{(seed, sparsity): (accuracy, correctness or None, run id)}, the first run of each point."""
    out = {}
    correct = part["test_correct"] if "test_correct" in part else [None] * len(part)
    ids = part["run_id"] if "run_id" in part else ["?"] * len(part)
    for seed, sparsity, acc, c, run_id in zip(part["seed"], part["sparsity"], part["test_accuracy"], correct, ids):
        out.setdefault((int(seed), float(sparsity)), (float(acc), c if isinstance(c, str) and c else None, run_id))
    return out


def contrast(a, b) -> dict | None:
    """Method ``a`` minus rival ``b`` (their runs), paired by seed: the per-seed differences
    (points, averaged over the sparsities both have on every common seed), their test-set term
    (from the per-example correctness of the seeds logged at every sparsity), and per sparsity the
    descriptive effect and interval. None where they share no seed or no sparsity."""
    ra, rb = _runs(a), _runs(b)
    seeds = sorted({s for s, _ in ra} & {s for s, _ in rb})
    if not seeds:
        return None
    sparsities = sorted(set.intersection(*({p for s, p in ra if s == seed} & {p for s, p in rb if s == seed}
                                           for seed in seeds)))
    if not sparsities:
        return None
    diffs, records, per = [], [], {p: ([], []) for p in sparsities}
    paired = 0
    for seed in seeds:
        here = []
        for p in sparsities:
            (acc_a, ca, id_a), (acc_b, cb, id_b) = ra[(seed, p)], rb[(seed, p)]
            if ca is not None and cb is not None:
                try:
                    here.append(stats.difference(stats.correctness(ca), stats.correctness(cb)))
                except InitpruneError as e:
                    raise InitpruneError(f"runs {id_a} and {id_b} (seed {seed}, sparsity {p:g}), their test_correct: "
                                         f"{e}") from None
                per[p][1].append(here[-1])
                paired += 1
            per[p][0].append(stats.difference(acc_a, acc_b))
        diffs.append(sum(per[p][0][-1] for p in sparsities) / len(sparsities))
        if len(here) == len(sparsities):
            records.append(here)
    rows = []
    for p in sparsities:
        mean, low, high = stats.interval(per[p][0], stats.test_se(per[p][1]) if per[p][1] else 0.0)
        rows.append({"sparsity": p, "seeds": len(seeds), "mean": mean, "low": low, "high": high})
    return {"diffs": diffs, "se_test": stats.test_se(records) if records else 0.0, "seeds": seeds,
            "sparsities": sparsities, "with_correctness": paired, "pairs": len(seeds) * len(sparsities),
            "per_sparsity": rows}


def _where(picked) -> dict:
    """{(dataset, arch, setting): what tells the setting from the cell's others ("epochs=2"), or
    "" where the cell has one}."""
    cells: dict = {}
    for d, a, g, _, _ in picked:
        cells.setdefault((d, a), {})[g] = None  # each setting once, in order
    out = {}
    for (d, a), settings in cells.items():
        for g, suffix in zip(settings, suffixes([json.loads(g) for g in settings])):
            out[(d, a, g)] = suffix
    return out


MATCHED = "random at K-starts' cost"


def matched_epochs(method: str, options: dict, epochs: int) -> int | None:
    """The epochs random trains for the training K-starts (or a method like it) spends on
    ``epochs``: its run's epochs plus every candidate's warm-up beyond the winner's
    (``Pruner.trained_epochs``); None where that is no whole number of epochs or adds nothing."""
    try:
        spent = pruners.make(method, 0.5, **options)
    except Exception:  # a run of an older declaration: no matched rival
        return None
    total = spent.trained_epochs(epochs)
    return int(total) if total == int(total) and total > epochs else None


def _matched_families(picked, d: str, a: str, g: str, reg: str) -> list:
    """Claim 2's compute-matched rival (secondary): K-starts against random trained for as many
    epochs as K-starts spends in all, same cell, training settings and regime."""
    out = []
    base = json.loads(g)
    for (d2, a2, g2, r2, name), runs in picked.items():
        if (d2, a2, g2, r2) != (d, a, g, reg) or _base(name) != "kstarts" or base.get("epochs") is None:
            continue
        options = resolved("kstarts", runs["options"].iloc[0])
        epochs = matched_epochs("kstarts", options, base["epochs"])
        if epochs is None:
            continue
        rival = picked.get((d, a, canonical({**base, "epochs": epochs}), reg, "random"))
        if rival is not None:
            out.append((name, f"{MATCHED} ({epochs} epochs)", runs, rival))
    return out


def verdicts(table) -> list[dict]:
    """Every declared contrast of every cell, training setting and regime that has runs: the
    primary families (kind "primary", claim "2", "3", "4"), then the secondary ones (kind
    "secondary", one family per rival: every paper method against it; and claim 2's
    compute-matched random), each with its seeds, sparsities, effect (points), 95% and 90%
    intervals (test-set term in quadrature), p, Holm-adjusted p within its family and verdict
    (None for a declared contrast without paired runs: it counts in its family at p = 1)."""
    picked = _prepare(table)
    where = _where(picked)
    out = []
    cells = sorted({(d, a, g, r) for d, a, g, r, _ in picked},
                   key=lambda k: (k[0], k[1], where[k[:3]], REGIMES.index(k[3])))
    paper = [name for m in pruners.of_family("paper") for name in declared_labels(m)]
    for dataset, arch, g, reg in cells:
        here = {name: runs for (d, a, s, r, name), runs in picked.items() if (d, a, s, r) == (dataset, arch, g, reg)}
        families = [("primary", number, text, pairs, None) for number, text, pairs in primary_families()]
        for rival in rivals() + sorted({_base(n) for n in here} - set(pruners.PRUNERS.names())):
            for name in sorted(n for n in here if _base(n) == rival):
                families.append(("secondary", name, f"the paper's methods against {name}",
                                 [(p, name) for p in paper], None))
        for name, rival, runs, rival_runs in _matched_families(picked, dataset, arch, g, reg):
            families.append(("secondary", rival, f"{name} against random trained as long as it spends in all "
                             "(claim 2, compute-matched)", [(name, rival)], [(runs, rival_runs)]))
        found_all = [[contrast(*given[i]) if given else contrast(here[m], here[r]) if m in here and r in here
                      else None for i, (m, r) in enumerate(pairs)]
                     for _, _, _, pairs, given in families]
        if not any(c is not None for found in found_all for c in found):
            continue  # no contrast has runs in this cell and regime (dense alone, say)
        for (kind, number, text, pairs, _), found in zip(families, found_all):
            if kind == "secondary" and not any(found):
                continue
            judged = stats.judge(found, margin(dataset))
            for (m, r), c, j in zip(pairs, found, judged):
                row = {"kind": kind, "claim": number, "text": text, "dataset": dataset, "arch": arch, "regime": reg,
                       "setting": json.loads(g), "where": where[(dataset, arch, g)],
                       "method": m, "rival": r, "family": len(pairs), "margin": margin(dataset)}
                if c is None:
                    row.update(seeds=[], sparsities=[], verdict=None, per_sparsity=[])
                else:
                    row.update({k: v for k, v in c.items() if k != "diffs"}, diffs=c["diffs"],
                               **{k: v for k, v in j.items() if k != "seeds"})
                out.append(row)
    return out


_base = labels.base


def starred(rows) -> dict:
    """{(dataset, arch, regime): {label: sparsities}} for each paper method whose every primary
    contrast in that cell and regime came out **better**: the sparsities it was judged on."""
    found: dict = {}
    keys = {(r["dataset"], r["arch"], r["regime"], r["method"]) for r in rows if r["kind"] == "primary"}
    for d, a, g, m in keys:
        mine = [r for r in rows if r["kind"] == "primary" and (r["dataset"], r["arch"], r["regime"], r["method"])
                == (d, a, g, m)]
        if all(r["verdict"] == "better" for r in mine):
            found.setdefault((d, a, g), {})[m] = set.intersection(*(set(r["sparsities"]) for r in mine))
    return found


# ---- claims.md ----------------------------------------------------------------------------------


def _num(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.2f}"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _seeds(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5"."""
    runs, out = [], []
    for s in seeds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    for r in runs:
        out.append(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}")
    return ", ".join(out)


def _interval(r: dict, low: str = "low", high: str = "high") -> str:
    if r.get(low) is None or math.isnan(r[low]):
        return "[no interval: 1 seed]"
    return f"[{r[low]:.2f}, {r[high]:.2f}]"


def _record_note(r: dict) -> str:
    if r["with_correctness"] == r["pairs"]:
        return ""
    if r["with_correctness"] == 0:
        return " (no per-example correctness logged: no test-set term in the interval)"
    return (f" (test-set term from the seeds of the {r['with_correctness']} of {r['pairs']} run pairs with "
            "per-example correctness)")


_md = labels.markdown  # every name and value claims.md writes: shown as itself, never as Markdown or HTML


def cell(r: dict, between: str = "/") -> str:
    """"fashion_mnist/lenet300", with what tells its training setting from the cell's others
    where it has several ("digits/mlp [epochs=2]"), as Markdown."""
    return f"{_md(r['dataset'])}{between}{_md(r['arch'])}" + (f" [{_md(r['where'])}]" if r.get("where") else "")


def _vs(r: dict) -> str:
    return f"{_md(r['method'])} vs {_md(r['rival'])}"


def summary_line(r: dict) -> str:
    """One contrast in words (Markdown): "combined (cubic) vs random, fashion_mnist/lenet300,
    uniform: +3.10 points [1.20, 5.00], adjusted p = 0.004, 10 seeds (0-9): better"."""
    head = f"{_vs(r)}, {cell(r)}, {r['regime']}"
    if r["verdict"] is None:
        return f"{head}: no paired runs (counts in its family of {r['family']} at p = 1)"
    n = len(r["seeds"])
    return (f"{head}: {_num(r['mean'])} points {_interval(r)}, adjusted p = {_p(r['adjusted_p'])}, "
            f"{n} seed{'s' if n != 1 else ''} ({_seeds(r['seeds'])}): {r['verdict']}{_record_note(r)}")


def _family_table(group: list[dict]) -> list[str]:
    lines = ["| contrast | seeds | sparsities | effect (points) | 95% interval | 90% interval | margin | p "
             "| adjusted p | verdict |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    named = labels.sparsities([s for r in group if r["verdict"] is not None for s in r["sparsities"]])
    for r in group:
        if r["verdict"] is None:
            lines.append(f"| {_vs(r)} | 0 | | | | | ±{r['margin']:g} | 1 (no runs) | | |")
            continue
        lines.append(f"| {_vs(r)} | {len(r['seeds'])} ({_seeds(r['seeds'])}) "
                     f"| {', '.join(named[s] for s in r['sparsities'])} | {_num(r['mean'])} | {_interval(r)} "
                     f"| {_interval(r, 'low90', 'high90')} | ±{r['margin']:g} | {_p(r['p'])} | {_p(r['adjusted_p'])} "
                     f"| {r['verdict']}{_record_note(r)} |")
    return lines


def _per_sparsity(group: list[dict]) -> list[str]:
    present = [r for r in group if r["verdict"] is not None]
    sparsities = sorted({p["sparsity"] for r in present for p in r["per_sparsity"]})
    if not present:
        return []
    named = labels.sparsities(sparsities)
    lines = ["| dataset / arch | method | vs | regime | " + " | ".join(f"s={named[s]}" for s in sparsities) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in sparsities) + " |"]
    for r in present:
        by = {p["sparsity"]: p for p in r["per_sparsity"]}
        cells = [f"{_num(by[s]['mean'])} {_interval(by[s])}" if s in by else "" for s in sparsities]
        lines.append(f"| {cell(r, ' / ')} | {_md(r['method'])} | {_md(r['rival'])} | {r['regime']} | "
                     + " | ".join(cells) + " |")
    return lines


def _families(rows: list[dict]) -> list[tuple[tuple, list[dict]]]:
    groups: dict = {}
    for r in rows:
        groups.setdefault((cell(r, " / "), r["regime"], r["kind"], r["claim"], r["text"]), []).append(r)
    return list(groups.items())


def claims_markdown(table) -> str:
    """claims.md: a summary line per primary contrast, cell and regime, then each family with its
    adjusted p-values, then the per-sparsity rows (descriptive), then the secondary families."""
    rows = verdicts(table)
    lines = ["# The paper's claims on our grid", "",
             "Haroon, arXiv 2209.02201, claims 2-4, judged on our grid, not the paper's numbers, with statistics "
             "declared before any run (docs/method.md, \"The verdict\").", "",
             "Effect = test accuracy of the method minus its rival, in points, per seed averaged over the "
             "sparsities both have on every seed both have; cells and allocation regimes (uniform: every method "
             "layerwise; free: random positions by ERK, rankings global) are judged apart, never pooled. "
             "p: exact paired sign-flip test over the seeds (two-sided), Holm-adjusted within each family "
             "(one claim, or one secondary rival, in one cell and regime); a seed whose difference is exactly 0 "
             "carries no sign. Intervals: t over the seeds, the seeds' standard error and the test-set one (from "
             "the per-example correctness: every seed is scored on the same test set) added in quadrature. "
             "Verdict, significance first: **better** / **worse** when the adjusted p < 0.05 and the 95% interval "
             "excludes 0, **within margin** when the 90% interval also lies inside ±margin; else **equivalent** "
             "when it does (two one-sided tests, not Holm-adjusted); else **inconclusive**; **too few seeds** in "
             "place of better, worse or inconclusive when the smallest p its non-zero seeds can reach, "
             "Holm-adjusted over its family, is above 0.05.", ""]
    if not rows:
        return "\n".join(lines + ["No runs to compare yet: run `make demo` first.", ""])
    primary = [r for r in rows if r["kind"] == "primary"]
    lines += ["## Summary (primary contrasts)", ""]
    for (_, g, _, number, _text), group in _families(primary):
        here = cell(group[0])
        if all(r["verdict"] is None for r in group):
            lines.append(f"- claim {number}, {here}, {g}: no paired runs")
            continue
        lines += [f"- claim {number}: {summary_line(r)}" for r in group if r["verdict"] is not None]
        missing = [_vs(r) for r in group if r["verdict"] is None]
        if missing:
            lines.append(f"- claim {number}, {here}, {g}: no paired runs for {', '.join(missing)} (each counts in "
                         f"the family of {group[0]['family']} at p = 1)")
    lines.append("")
    lines += ["## Primary families", ""]
    for (c, g, _, number, text), group in _families(primary):
        lines += [f"### Claim {number}: {_md(text)} ({c}, {g}; family of {group[0]['family']})", "",
                  *_family_table(group), ""]
    lines += ["## Per sparsity (descriptive: effect [95% interval], no verdict)", ""]
    for (c, g, _, number, _text), group in _families(primary):
        table_lines = _per_sparsity(group)
        if table_lines:
            lines += [f"### Claim {number}, {c}, {g}", "", *table_lines, ""]
    secondary = [r for r in rows if r["kind"] == "secondary"]
    if secondary:
        lines += ["## Secondary (labelled so): the established baselines and post-training against the paper's "
                  "methods, and claim 2 at equal training cost", ""]
        for (c, g, _, _rival, text), group in _families(secondary):
            lines += [f"### Secondary: {_md(text)} ({c}, {g}; family of {group[0]['family']})", "",
                      *_family_table([r for r in group if r["verdict"] is not None]), "",
                      "Per sparsity (descriptive):", "", *_per_sparsity(group), ""]
    return "\n".join(lines)
