"""The verdict on the paper's claims 2-4, declared before any run (docs/method.md, "The verdict"),
from a table of runs (``results.to_table``): which runs make each contrast, the families, claims.md
and the one-screen table at its top. The numbers come from ``stats``.

A contrast is judged per cell (dataset, arch), training setting (epochs, every training setting,
torch threads and device: runs of one cell trained otherwise are a replication of their own, never
mixed in), allocation regime and **tested sparsity**, never pooled; a method's runs at a pruner
version not today's are a label of their own ("snip [v1]", as in the figures: ``labels``). The
regimes: **uniform** (every scope option of every method ``layerwise``) and **free** (random
positions spread by ERK: random, K-starts and combined's K-starts stage; every ranking global:
dissipating, combined's dissipating stage and the score-based baselines). A method that lacks a
scope option counts as ``layerwise``. The tested sparsities are those the profile declared for the
cell (``tested_sparsities``, read back from the runs of the executions that declared it: the table's
column of that name); a cell that declares none has descriptive rows only, no verdict word.

The unit is the seed: at one sparsity a contrast takes the seeds both methods have there, and a
seed's value is the difference in test accuracy (points). Each claim in one cell and regime is one
Holm family over its contrasts times the tested sparsities; each secondary family is one rival
against one method variant over the tested sparsities. Beside the tests: each contrast's mean over
the tested sparsities (``stats.summary``) and its rows at the sparsities not tested, descriptive.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .. import data, pruners
from ..errors import InitpruneError
from . import common, labels, metric, stats
from .common import REGIMES, UNIFORM, declared_labels, label, regime, resolved  # noqa: F401  (claims.UNIFORM: the figures')

PRIMARY = "primary"  # a role with a claim of the paper; every other role is a secondary family of its own


def roles() -> list[pruners.Role]:
    """Every contrast the registry's methods declare (``pruners.roles``: claims 2-4 by the paper's
    methods, the criterion controls, claim 2 at equal cost, the movement variant)."""
    return pruners.roles()


def _variants(method: str) -> dict[str, str]:
    """{its other options as ``_rest`` writes them: what its label adds} for each variant of
    ``method`` a role declares ("movement=absolute"): a label of its own, not a run set aside."""
    return {json.dumps(dict(r.variant), sort_keys=True, default=str): ", ".join(f"{k}={v}" for k, v in r.variant)
            for r in roles() if r.method == method and r.variant}


def _rest(method: str, values: dict) -> str:
    """The options that are neither line nor scope options and differ from the defaults."""
    skip = set(common.lines(method)) | common.scope_keys(method, values)
    held = common.defaults(method)
    return json.dumps({k: v for k, v in values.items() if k not in skip and (k not in held or v != held[k])},
                      sort_keys=True, default=str)


def primary_families() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(claim, text, [(method label, rival label)]): the declared primary contrasts of one cell
    and regime, each claim a family (claim 2: 1 contrast, 3: 6, 4: 9), from the registry's roles."""
    found: dict = {}
    for r in (r for r in roles() if r.claim):
        text, pairs = found.setdefault(r.claim, (r.text, []))
        for name in declared_labels(r.method):
            pairs.append((name, label(r.rival, common.values_of(r.method, name) if r.same else {})))
    return [(claim, text, _by_label(pairs)) for claim, (text, pairs) in found.items()]


def _by_label(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs of a claim grouped by method label, in the order each label came first."""
    order = list(dict.fromkeys(m for m, _ in pairs))
    return sorted(pairs, key=lambda p: order.index(p[0]))


def secondary_pairs(here) -> list[tuple[str, str, str]]:
    """(method label, rival label, the family's text) of every secondary role the registry
    declares (the criterion controls against the method variant they share a schedule with, a
    variant against its method) whose two labels have runs in ``here``; claim 2 at equal cost
    is ``_matched_families``'."""
    out = []
    for r in (r for r in roles() if not r.claim and not r.matched):
        for name in declared_labels(r.method):
            if r.variant:
                method, rival = labels.named(name, _variants(r.method)[_variant_key(r)]), name
            else:
                method, rival = name, label(r.rival, common.values_of(r.method, name) if r.same else {})
            if method in here and rival in here:
                out.append((method, rival, r.text or f"{method} against {rival}"))
    return out


def _variant_key(r: pruners.Role) -> str:
    return json.dumps(dict(r.variant), sort_keys=True, default=str)


def rivals() -> list[str]:
    """The secondary rivals, from the registry: every established baseline (family "baseline")
    and every reference that prunes (post-training; not dense)."""
    return [m for m in pruners.PRUNERS.names() if pruners.PRUNERS[m].family == "baseline"] + \
        [m for m in pruners.of_family("reference") if pruners.PRUNERS[m].fixed_sparsity is None]


def margin(dataset: str, task: str = "classification") -> float:
    """The equivalence margin of ``task`` on ``dataset``: a classification's (points) the dataset's
    declaration in ``data``, else the default; a reconstruction's (percent of the dense model's
    test error) the task's (``stats.margin``)."""
    return stats.margin(task, data.DATASETS[dataset].margin if dataset in data.DATASETS else None)


def dense_errors(picked) -> dict:
    """{(dataset, arch, setting): the dense model's mean test metric over its seeds}, what a
    reconstruction's differences are relative to (``stats.difference``)."""
    out: dict = {}
    for (d, a, g, _, name), runs in picked.items():
        if common.dense(common.base(name)) and (d, a, g) not in out:
            out[(d, a, g)] = float(metric.scored(runs)["score"].mean())
    return out


setting = labels.setting  # epochs, training settings, threads and device: a replication of its own
canonical = labels.canonical
suffixes = labels.suffixes


def _column(table, name: str) -> list:
    return list(table[name]) if name in table else [None] * len(table)


def _declared(value) -> tuple | None:
    """A run's tested sparsities as its execution declared them: a tuple, None where it declared none."""
    if isinstance(value, str):
        value = json.loads(value)  # as runs.csv holds it
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return tuple(float(v) for v in value)


def _prepare(table):
    """The unablated runs with their label, regime, training setting and other options; per (cell,
    setting, regime, label) the runs with the default other options, else the option set that
    covers the most runs. A label says the pruner version where it is not today's ("snip [v1]"):
    a group of its own, as in the figures (``labels``), and so does a variant a role declares
    ("dissipating (cubic) [movement=absolute]"). With it, per (cell, setting, regime) the
    tested sparsities its runs' executions declared (their union; None where none declared any)."""
    import pandas as pd

    table = metric.scored(table[table["ablation"] == "none"])  # each run's test metric, through its task
    if table.empty:
        return {}, {}
    values = [resolved(m, o) for m, o in zip(table["method"], table["options"])]
    settings = [setting(*row) for row in zip(*(_column(table, c) for c in ("dataset", "epochs", "training", "history",
                                                                         "threads", "device")))]
    versions = [labels.suffixes([{"version": labels.version(m, v)}])[0]
                for m, v in zip(table["method"], _column(table, "version"))]
    rests = [_rest(m, v) for m, v in zip(table["method"], values)]
    variants = [_variants(m).get(r, "") for m, r in zip(table["method"], rests)]  # a label of its own
    table = table.assign(label=[labels.named(label(m, v), ", ".join(filter(None, (x, s))))
                                for m, v, x, s in zip(table["method"], values, variants, versions)],
                         regime=[regime(m, v) for m, v in zip(table["method"], values)],
                         rest=["{}" if x else r for r, x in zip(rests, variants)],
                         setting=[canonical(s) for s in settings])
    table = table[table["regime"].notna()]
    tested: dict = {}
    for key, found in zip(zip(table["dataset"], table["arch"], table["setting"], table["regime"]),
                          _column(table, "tested_sparsities")):
        found = _declared(found)
        if found is not None:
            tested[key] = tuple(sorted(set(tested.get(key, ())) | set(found)))
    picked = {}
    for key, part in table.groupby(["dataset", "arch", "setting", "regime", "label"]):
        counts = part["rest"].value_counts()
        picked[key] = pd.DataFrame(part[part["rest"] == ("{}" if "{}" in counts else counts.index[0])])
    return picked, tested


def _runs(part) -> dict:
    """{(seed, sparsity): (test metric, per-example record or None, run id)}, the first run of each
    point; the metric and the record those of the runs' task (``metric.scored``: test accuracy and
    correctness, test reconstruction error and squared errors)."""
    out = {}
    part = metric.scored(part)
    field = metric.record_field(metric.of(part))
    kept = part[field] if field in part else [None] * len(part)
    ids = part["run_id"] if "run_id" in part else ["?"] * len(part)
    for seed, sparsity, score, c, run_id in zip(part["seed"], part["sparsity"], part["score"], kept, ids):
        out.setdefault((int(seed), float(sparsity)), (float(score), c if metric.logged(c) else None, run_id))
    return out


def _examples(record) -> np.ndarray:
    """A per-example record as numbers: correctness (a string of '0' and '1') as 0/1, squared errors as they are."""
    return stats.correctness(record) if isinstance(record, str) else np.asarray(record, dtype=float)


def _difference(a, b, scale=None):
    """A's advantage over B in the verdict's units (``stats.difference``): points of accuracy, or
    with ``scale`` = (task, dense model's mean test error) percent of that error, lower error better."""
    return stats.difference(a, b) if scale is None else stats.difference(a, b, *scale)


def _record(a, b, seed, sparsity, scale=None):
    """The per-example differences of one seed's pair of runs, or None where either lacks them."""
    (_, ca, id_a), (_, cb, id_b) = a, b
    if ca is None or cb is None:
        return None
    try:
        return _difference(_examples(ca), _examples(cb), scale)
    except InitpruneError as e:
        field = "test_correct" if isinstance(ca, str) else "test_squared_error"
        raise InitpruneError(f"runs {id_a} and {id_b} (seed {seed}, sparsity {sparsity:g}), their {field}: "
                             f"{e}") from None


def _test_se(records: list, where: str) -> float:
    try:
        return stats.test_se(records)
    except InitpruneError as e:
        raise InitpruneError(f"{where}: {e}") from None


def contrast(ra: dict, rb: dict, sparsity: float, scale=None) -> dict | None:
    """Method A minus rival B (their ``_runs``) at one sparsity, paired by seed: the seeds both
    have there, their differences (points; with ``scale``, a reconstruction's (task, dense error):
    percent of the dense model's mean test error, positive where A's error is lower) and the
    test-set term from the per-example records of the seeds that logged them. None where they
    share no seed at that sparsity."""
    seeds = sorted(seed for seed, p in ra if p == sparsity and (seed, p) in rb)
    if not seeds:
        return None
    diffs, records = [], []
    for seed in seeds:
        a, b = ra[(seed, sparsity)], rb[(seed, sparsity)]
        diffs.append(_difference(a[0], b[0], scale))
        record = _record(a, b, seed, sparsity, scale)
        if record is not None:
            records.append(record)
    where = f"runs {ra[(seeds[0], sparsity)][2]} and {rb[(seeds[0], sparsity)][2]} (sparsity {sparsity:g})"
    return {"diffs": diffs, "se_test": _test_se(records, where) if records else 0.0, "seeds": seeds,
            "with_correctness": len(records), "pairs": len(seeds)}


def mean_contrast(ra: dict, rb: dict, sparsities, scale=None) -> dict | None:
    """The descriptive mean over ``sparsities`` (``stats.summary``): the seeds both have at every
    one of them, each seed's mean difference, the test-set term of the per-example means where
    every pair logged its correctness. None where no seed has them all."""
    sparsities = sorted(sparsities)
    seeds = sorted(seed for seed in {s for s, _ in ra} if all((seed, p) in ra and (seed, p) in rb for p in sparsities))
    if not seeds or not sparsities:
        return None
    diffs = [[_difference(ra[(s, p)][0], rb[(s, p)][0], scale) for p in sparsities] for s in seeds]
    records = [[_record(ra[(s, p)], rb[(s, p)], s, p, scale) for p in sparsities] for s in seeds]
    complete = all(r is not None for row in records for r in row)
    try:
        found = stats.summary(diffs, records if complete else None)
    except InitpruneError as e:
        raise InitpruneError(f"the mean over sparsities {', '.join(f'{p:g}' for p in sparsities)}: {e}") from None
    per_seed = [sum(row) / len(row) for row in diffs]
    return {**found, "diffs": per_seed, "seeds": seeds, "with_correctness": len(seeds) * len(sparsities)
            if complete else sum(r is not None for row in records for r in row), "pairs": len(seeds) * len(sparsities)}


def _describe(c: dict) -> dict:
    """A descriptive row's numbers: effect, spread, 95% and 90% intervals, no test and no word."""
    d = c["diffs"]
    mean, low, high = stats.interval(d, c["se_test"])
    _, low90, high90 = stats.interval(d, c["se_test"], level=1 - 2 * stats.ALPHA)
    sd = float(np.std(d, ddof=1)) if len(d) >= 2 else math.nan
    return {"mean": mean, "low": low, "high": high, "low90": low90, "high90": high90, "sd": sd,
            "zeros": int(sum(x == 0 for x in d))}


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
    """Claim 2's compute-matched rival (secondary; the roles with ``matched``): the method against
    its rival trained for as many epochs as the method spends in all, same cell, training
    settings and regime."""
    out = []
    base = json.loads(g)
    for r in (r for r in roles() if r.matched):
        for (d2, a2, g2, r2, name), runs in picked.items():
            if (d2, a2, g2, r2) != (d, a, g, reg) or _base(name) != r.method or base.get("epochs") is None:
                continue
            epochs = matched_epochs(r.method, resolved(r.method, runs["options"].iloc[0]), base["epochs"])
            if epochs is None:
                continue
            rival = picked.get((d, a, canonical({**base, "epochs": epochs}), reg, label(r.rival, {})))
            if rival is not None:
                out.append((name, f"{r.text or r.rival} ({epochs} epochs)", runs, rival))
    return out


# the unit of a contrast's effect per task: a classification's points of accuracy; a reconstruction's
# percent of the cell's dense model's mean test error (positive: the method's error is lower)
UNITS = {"classification": "points", "reconstruction": "% of dense error"}
ROLES = ("test", "mean", "descriptive")  # a declared test; the mean over its sparsities; an untested sparsity
WORDS_BETTER = ("better", "better, within margin")


def _blank(**row) -> dict:
    """Every field of a claims.json row, unset: a row of any role carries them all."""
    out = {"sparsity": None, "sparsities": [], "seeds": [], "n": 0, "zeros": 0, "mean": None, "sd": None,
           "se_seed": None, "se_test": None, "low": None, "high": None, "low90": None, "high90": None, "p": None,
           "adjusted_p": None, "p_min": None, "adjusted_p_min": None, "power_sd": None, "underpowered": "",
           "verdict": None, "family": 0, "family_id": None, "with_correctness": 0, "pairs": 0, "diffs": []}
    return {**out, **row}


def _se_seed(sd, n) -> float | None:
    return None if sd is None or n < 2 or math.isnan(sd) else sd / math.sqrt(n)


def _family_rows(base: dict, family_id: str, pairs, tested) -> list[dict]:
    """One family's rows: each contrast at each tested sparsity, judged (Holm over them all), then
    each contrast's mean over the tested sparsities and its rows at the sparsities not tested
    (descriptive). ``pairs``: [(method label, rival label, method's runs, rival's runs)], runs as
    ``_runs`` makes them (None: not run). ``tested``: the cell's declared sparsities, or () where
    it declares none (descriptive rows only)."""
    out = []
    tests = [(m, r, a, b, s) for m, r, a, b in pairs for s in tested]
    scale = None if base.get("task", metric.CLASSIFICATION) == metric.CLASSIFICATION else \
        (base["task"], base["dense_error"])
    found = [contrast(a, b, s, scale) if a is not None and b is not None else None for _, _, a, b, s in tests]
    judged = stats.judge(found, base["margin"]) if tests else []
    for (m, r, _, _, s), c, j in zip(tests, found, judged):
        row = _blank(**base, role="test", method=m, rival=r, sparsity=s, sparsities=[s], family=len(tests),
                     family_id=family_id)
        if c is not None:
            row.update({k: v for k, v in j.items() if k not in ("seeds", "family")}, **c, n=len(c["seeds"]))
            row["se_seed"] = _se_seed(row["sd"], row["n"])
        out.append(row)
    for m, r, a, b in pairs:
        if a is None or b is None:
            continue
        every = sorted({p for _, p in a} & {p for _, p in b})
        over = list(tested) if tested else every
        c = mean_contrast(a, b, over, scale) if len(over) > 1 else None
        if c is not None:
            row = _blank(**base, role="mean", method=m, rival=r, sparsities=over, family_id=family_id)
            row.update({k: c[k] for k in ("mean", "low", "high", "low90", "high90", "se_test", "diffs", "seeds",
                                          "with_correctness", "pairs")}, n=len(c["seeds"]))
            row["sd"] = float(np.std(c["diffs"], ddof=1)) if row["n"] >= 2 else None
            row["zeros"], row["se_seed"] = int(sum(x == 0 for x in c["diffs"])), _se_seed(row["sd"], row["n"])
            out.append(row)
        for s in (p for p in every if p not in tested):
            c = contrast(a, b, s, scale)
            if c is not None:
                row = _blank(**base, role="descriptive", method=m, rival=r, sparsity=s, sparsities=[s],
                             family_id=family_id)
                row.update(c, **_describe(c), n=len(c["seeds"]))
                row["se_seed"] = _se_seed(row["sd"], row["n"])
                out.append(row)
    return out


def verdicts(table) -> list[dict]:
    """Every row of the verdict (claims.json), per cell, training setting and regime that has
    runs: the primary families (kind "primary", claim "2", "3", "4"), then the secondary ones (kind
    "secondary": one family per rival and paper method variant, and claim 2's compute-matched
    random). Each row has its role ("test": one contrast at one tested sparsity, with seeds,
    zeros, effect (points), sd, se_seed, se_test, 95% and 90% intervals, p, Holm-adjusted p
    within its family, the family's size and id, the power mark and its verdict word (None for a
    declared contrast without paired runs: it counts in its family at p = 1); "mean": its mean
    over the tested sparsities; "descriptive": a sparsity not tested, or any where the cell
    declares none), with no word for the last two."""
    picked, declared = _prepare(table)
    where = _where(picked)
    out = []
    cells = sorted({(d, a, g, r) for d, a, g, r, _ in picked},
                   key=lambda k: (k[0], k[1], where[k[:3]], REGIMES.index(k[3])))
    paper = [name for m in pruners.of_family("paper") for name in declared_labels(m)]
    dense = dense_errors(picked)
    for dataset, arch, g, reg in cells:
        here = {name: _runs(runs) for (d, a, s, r, name), runs in picked.items()
                if (d, a, s, r) == (dataset, arch, g, reg)}
        tested = declared.get((dataset, arch, g, reg), ())
        name = f"{dataset}/{arch}" + (f" [{where[(dataset, arch, g)]}]" if where[(dataset, arch, g)] else "")
        families = [("primary", number, text, [(m, r, here.get(m), here.get(r)) for m, r in pairs],
                     f"{name}, {reg}, claim {number}") for number, text, pairs in primary_families()]
        for rival in rivals() + sorted({_base(n) for n in here} - set(pruners.PRUNERS.names())):
            for against in sorted(n for n in here if _base(n) == rival):
                for m in (p for p in paper if p in here):
                    families.append(("secondary", against, f"{m} against {against}",
                                     [(m, against, here[m], here[against])], f"{name}, {reg}, {m} vs {against}"))
        for m, against, text in secondary_pairs(here):
            families.append(("secondary", against, text, [(m, against, here[m], here[against])],
                             f"{name}, {reg}, {m} vs {against}"))
        for m, rival, runs, rival_runs in _matched_families(picked, dataset, arch, g, reg):
            families.append(("secondary", rival, f"{m} against random trained as long as it spends in all "
                             "(claim 2, compute-matched)", [(m, rival, _runs(runs), _runs(rival_runs))],
                             f"{name}, {reg}, {m} vs {rival}"))
        if not any(a is not None and b is not None for *_, pairs, _ in families for _, _, a, b in pairs):
            continue  # no contrast has runs in this cell and regime (dense alone, say)
        task = metric.of(next(runs for (d, a, s, r, _), runs in picked.items() if (d, a, s, r) == (dataset, arch, g,
                                                                                                  reg)))
        if task != metric.CLASSIFICATION and not dense.get((dataset, arch, g), 0) > 0:
            continue  # a reconstruction's differences are percent of the dense error: no dense runs, no verdict
        base = {"dataset": dataset, "arch": arch, "regime": reg, "setting": json.loads(g),
                "where": where[(dataset, arch, g)], "margin": margin(dataset, task), "tested": list(tested),
                "task": task, "unit": UNITS.get(task, "points"),
                "dense_error": dense.get((dataset, arch, g)) if task != metric.CLASSIFICATION else None}
        for kind, number, text, pairs, family_id in families:
            if kind == "secondary" and not any(a is not None and b is not None for _, _, a, b in pairs):
                continue
            if kind == "primary" and not tested:
                pairs = [p for p in pairs if p[2] is not None and p[3] is not None]
            out += _family_rows({"kind": kind, "claim": number, "text": text, **base}, family_id, pairs,
                                tested)
    return out


_base = labels.base


def starred(rows) -> dict:
    """{(dataset, arch, regime): {label: sparsities}}: for each paper method, the tested sparsities
    at which every one of its primary contrasts in that cell and regime came out better (within
    margin or not)."""
    found: dict = {}
    tests = [r for r in rows if r["kind"] == "primary" and r["role"] == "test"]
    for key in {(r["dataset"], r["arch"], r["regime"], r["method"], r["sparsity"]) for r in tests}:
        mine = [r for r in tests if (r["dataset"], r["arch"], r["regime"], r["method"], r["sparsity"]) == key]
        if all(r["verdict"] in WORDS_BETTER for r in mine):
            found.setdefault(key[:3], {}).setdefault(key[3], set()).add(key[4])
    return found


# ---- the one-screen verdict ---------------------------------------------------------------------


def cell_key(r: dict) -> tuple:
    return r["dataset"], r["arch"], r["where"]


def carrier(rows) -> tuple | None:
    """The cell (dataset, arch, where) that carries the verdict: of the cells with tested
    sparsities and paired runs there, the one with the most seeds on its primary contrasts; on a tie the one with the
    smallest margin (a dataset declares a wider one where its test set is small or its task noisy),
    then the first in order. None where no cell declares any."""
    return most([r for r in rows if r["kind"] == "primary" and r["role"] == "test"], lambda r: r["n"])


def most(rows, seeds) -> tuple | None:
    total: dict = {}
    for r in rows:
        total[cell_key(r)] = total.get(cell_key(r), 0) + seeds(r)
    margins = {cell_key(r): r["margin"] for r in rows}
    total = {k: v for k, v in total.items() if v > 0}  # a cell whose declared contrasts have no paired runs: none
    return min(total, key=lambda k: (-total[k], margins[k])) if total else None


def glance(rows) -> list[dict]:
    """The one-screen verdict, one table per cell with paired runs at its tested sparsities, the
    carrier first: one row per primary contrast (claim, method, rival), one column per regime and
    tested sparsity, each cell its test row (None where that contrast has none there). Each table: {"cell": a row
    of the cell (for ``cell``), "carries": bool, "columns": [(regime, sparsity)], "rows": [{"claim",
    "method", "rival", "cells": [...]}]}."""
    tests = [r for r in rows if r["kind"] == "primary" and r["role"] == "test"]
    first = carrier(rows)
    keys = list(dict.fromkeys(cell_key(r) for r in tests if r["verdict"] is not None))
    keys.sort(key=lambda k: k != first)
    out = []
    for key in keys:
        mine = [r for r in tests if cell_key(r) == key]
        columns = list(dict.fromkeys((r["regime"], r["sparsity"]) for r in
                                     sorted(mine, key=lambda r: (REGIMES.index(r["regime"]), r["sparsity"]))))
        by = {(r["claim"], r["method"], r["rival"], r["regime"], r["sparsity"]): r for r in mine}
        contrasts = list(dict.fromkeys((r["claim"], r["method"], r["rival"]) for r in mine))
        out.append({"cell": mine[0], "carries": key == first, "columns": columns,
                    "rows": [{"claim": c, "method": m, "rival": v,
                              "cells": [by.get((c, m, v, *col)) for col in columns]} for c, m, v in contrasts]})
    return out


def no_glance(rows) -> str:
    """Why there is no one-screen verdict (Markdown)."""
    if any(r["tested"] for r in rows):
        return ("No primary contrast has paired runs at a declared tested sparsity: the tests below count each at "
                "p = 1, and the other rows are descriptive, with no verdict word.")
    return ("No cell declares tested sparsities (a profile's `tested_sparsities`): every row below is descriptive, "
            "with no verdict word.")


def effect(r: dict | None) -> str:
    """A glance cell: "better +1.60", "no runs" or "" (no such test)."""
    if r is None:
        return ""
    if r["verdict"] is None:
        return "no runs"
    return f"{r['verdict']} {_num(r['mean'])}"


def undeclared(rows) -> list[dict]:
    """One row of each cell and regime that declares no tested sparsities (descriptive only)."""
    seen: dict = {}
    for r in rows:
        if not r["tested"]:
            seen.setdefault((cell_key(r), r["regime"]), r)
    return list(seen.values())


# ---- claims.md ----------------------------------------------------------------------------------


def _num(x) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.2f}"


def _p(p) -> str:
    if p is None:
        return ""
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


def _s(r: dict) -> str:
    return labels.sparsities([r["sparsity"]])[r["sparsity"]]


def summary_line(r: dict) -> str:
    """One test row in words (Markdown): "combined (cubic) vs random, fashion_mnist/lenet300,
    uniform, s=0.95: +1.65 points [1.32, 1.98], adjusted p = 0.002 (family of 9), 12 seeds (0-11):
    better"."""
    head = f"{_vs(r)}, {cell(r)}, {r['regime']}, s={_s(r)}"
    if r["verdict"] is None:
        return f"{head}: no paired runs (counts in its family of {r['family']} at p = 1)"
    n = r["n"]
    zeros = f", {r['zeros']} of them 0" if r["zeros"] else ""
    power = f"; {r['underpowered']}" if r["underpowered"] else ""
    return (f"{head}: {_num(r['mean'])} {r.get('unit', 'points')} {_interval(r)}, adjusted p = {_p(r['adjusted_p'])} "
            f"(family of {r['family']}), {n} seed{'s' if n != 1 else ''} ({_seeds(r['seeds'])}{zeros}): "
            f"{r['verdict']}{power}{_record_note(r)}")


def glance_lines(table: dict) -> list[str]:
    named = labels.sparsities([s for _, s in table["columns"]])
    lines = ["| claim | contrast | " + " | ".join(f"{g} s={named[s]}" for g, s in table["columns"]) + " |",
             "| --- | --- | " + " | ".join("---" for _ in table["columns"]) + " |"]
    for row in table["rows"]:
        lines.append(f"| {row['claim']} | {_md(row['method'])} vs {_md(row['rival'])} | "
                     + " | ".join(effect(c) for c in row["cells"]) + " |")
    return lines


READING = ("Effect = test accuracy of the method minus its rival, in points, mean over the seeds both have at "
           "that sparsity (an autoencoder's cell: its rival's test reconstruction error minus its own, in percent "
           "of the cell's dense model's mean test error, so that lower error reads better); cells, allocation "
           "regimes (uniform: every method layerwise; free: random positions by ERK, rankings global) and "
           "sparsities are judged apart, never pooled. Only the sparsities the profile "
           "declared before it ran (`tested_sparsities`) carry tests; the others, and the mean over the tested "
           "ones, are descriptive (no verdict word). p: exact paired sign-flip test over the seeds (two-sided), "
           "Holm-adjusted within each family (one claim in one cell and regime over its contrasts and tested "
           "sparsities; one secondary rival against one method variant over the tested sparsities); a seed "
           "whose difference is exactly 0 carries no sign. Intervals: t over the seeds, the seeds' standard "
           "error and the test-set one (from the per-example correctness: every seed is scored on the same test "
           "set) added in quadrature. Verdict, significance first: **better** / **worse** when the adjusted p < "
           "0.05 and the 95% interval excludes 0, **within margin** when the 90% interval also lies inside "
           "±margin; else **equivalent** when it does (two one-sided tests, not Holm-adjusted); else "
           "**inconclusive**; **too few seeds** in place of better, worse or inconclusive when the smallest p "
           "its non-zero seeds can reach, Holm-adjusted over its family, is above 0.05. **underpowered (sd = "
           "...)**: the seeds' spread is too wide for the family to find twice the margin with 80% power.")


def _family_table(group: list[dict]) -> list[str]:
    unit = group[0].get("unit", "points")
    lines = [f"| contrast | s | seeds | zeros | effect ({unit}) | 95% interval | 90% interval | se seed | se test "
             "| margin | p | adjusted p | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in group:
        if r["verdict"] is None:
            lines.append(f"| {_vs(r)} | {_s(r)} | 0 | | | | | | | ±{r['margin']:g} | 1 (no runs) | | |")
            continue
        word = r["verdict"] + (f"; {r['underpowered']}" if r["underpowered"] else "")
        lines.append(f"| {_vs(r)} | {_s(r)} | {r['n']} ({_seeds(r['seeds'])}) | {r['zeros']} | {_num(r['mean'])} "
                     f"| {_interval(r)} | {_interval(r, 'low90', 'high90')} | {_se(r['se_seed'])} "
                     f"| {_se(r['se_test'])} | ±{r['margin']:g} | {_p(r['p'])} | {_p(r['adjusted_p'])} "
                     f"| {word}{_record_note(r)} |")
    return lines


def _se(x) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.2f}"


def _means(group: list[dict]) -> list[str]:
    lines = ["| cell | regime | contrast | sparsities | seeds | effect (points) | 95% interval | 90% interval |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in group:
        named = labels.sparsities(r["sparsities"])
        lines.append(f"| {cell(r, ' / ')} | {r['regime']} | {_vs(r)} | {', '.join(named[s] for s in r['sparsities'])} "
                     f"| {r['n']} | {_num(r['mean'])} | {_interval(r)} | {_interval(r, 'low90', 'high90')} |")
    return lines


def _descriptive(group: list[dict]) -> list[str]:
    sparsities = sorted({r["sparsity"] for r in group})
    named = labels.sparsities(sparsities)
    lines = ["| cell | regime | contrast | " + " | ".join(f"s={named[s]}" for s in sparsities) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in sparsities) + " |"]
    keys = list(dict.fromkeys((cell(r, " / "), r["regime"], _vs(r)) for r in group))
    by = {(cell(r, " / "), r["regime"], _vs(r), r["sparsity"]): r for r in group}
    for key in keys:
        cells = [f"{_num(by[(*key, s)]['mean'])} {_interval(by[(*key, s)])} (n={by[(*key, s)]['n']})"
                 if (*key, s) in by else "" for s in sparsities]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
    return lines


def _families(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["family_id"], []).append(r)
    return list(groups.items())


def claims_markdown(table=None, rows=None) -> str:
    """claims.md from a runs table (or its ``verdicts`` rows): the one-screen verdict (the carrier
    cell's table, then the replications'), how to read it, a line per test, each family with its
    adjusted p-values, the descriptive rows, then the secondary families."""
    rows = verdicts(table) if rows is None else rows
    lines = ["# The paper's claims on our grid", "",
             "Haroon, arXiv 2209.02201, claims 2-4, judged on our grid, not the paper's numbers, with statistics "
             "declared before any run (docs/method.md, \"The verdict\").", ""]
    if not rows:
        return "\n".join(lines + ["No runs to compare yet: run `make demo` first.", ""])
    lines += ["## Verdict at a glance", ""]
    tables = glance(rows)
    if not tables:
        lines += [no_glance(rows), ""]
    for t in tables:
        c = t["cell"]
        if t["carries"]:
            most = max((r["n"] for row in t["rows"] for r in row["cells"] if r), default=0)
            lines += [f"**{cell(c)}** carries the verdict (the most seeds on its primary contrasts, up to {most}). "
                      "Each entry: the verdict word and the effect (points, method minus rival); one column per "
                      "regime and tested sparsity.", ""]
        else:
            lines += [f"### Replication: {cell(c)}", ""]
        lines += [*glance_lines(t), ""]
    loose = undeclared(rows)
    if loose:
        lines += ["Descriptive only (no tested sparsities declared, no verdict word): "
                  + "; ".join(f"{cell(r)}, {r['regime']}" for r in loose) + ".", ""]
    lines += ["## How to read it", "", READING, ""]
    tests = [r for r in rows if r["role"] == "test"]
    primary = [r for r in tests if r["kind"] == "primary"]
    if primary:
        lines += ["## Summary (primary contrasts, per tested sparsity)", ""]
        for _, group in _families(primary):
            lines += [f"- claim {r['claim']}: {summary_line(r)}" for r in group if r["verdict"] is not None]
            missing = list(dict.fromkeys(_vs(r) for r in group if r["verdict"] is None))
            if missing:
                r = group[0]
                lines.append(f"- claim {r['claim']}, {cell(r)}, {r['regime']}: no paired runs for "
                             f"{', '.join(missing)} at some or all tested sparsities (each counts in the family of "
                             f"{r['family']} at p = 1)")
        lines += ["", "## Primary families", ""]
        for _, group in _families(primary):
            r = group[0]
            contrasts = len({(x["method"], x["rival"]) for x in group})
            lines += [f"### Claim {r['claim']}: {_md(r['text'])} ({cell(r, ' / ')}, {r['regime']}; family of "
                      f"{r['family']}: {contrasts} contrast{'s' if contrasts != 1 else ''} x {len(r['tested'])} "
                      "tested sparsities)", "", *_family_table(group), ""]
    means = [r for r in rows if r["role"] == "mean"]
    if means:
        lines += ["## Mean over the tested sparsities (descriptive: effect [95% interval], no verdict; where a cell "
                  "declares none, over every sparsity its seeds share)", "", *_means(means), ""]
    described = [r for r in rows if r["role"] == "descriptive"]
    if described:
        lines += ["## Sparsities not tested (descriptive: effect [95% interval] (seeds), no verdict)", "",
                  *_descriptive(described), ""]
    secondary = [r for r in tests if r["kind"] == "secondary"]
    if secondary:
        lines += ["## Secondary (labelled so): the established baselines and post-training against each paper "
                  "method, and claim 2 at equal training cost", ""]
        for _, group in _families(secondary):
            r = group[0]
            lines += [f"### Secondary: {_md(r['text'])} ({cell(r, ' / ')}, {r['regime']}; family of {r['family']})",
                      "", *_family_table(group), ""]
    return "\n".join(lines)
