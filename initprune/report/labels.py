"""What a run was and how the report names it, one rule for the figures, the tables and the
claims: a run's group is its whole identity but the seed (``RunSpec.identity``: method, cell,
sparsity, epochs, options, training settings, device, torch threads and the pruner's version),
and a group's label says what tells it from the other groups of its method ("random
[threads=2]", "snip [v1]").
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

from .. import data, pruners


def canonical(value) -> str:
    """A value as sorted JSON: equal configurations give equal strings."""
    return json.dumps(value, sort_keys=True, default=str)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def setting(dataset, epochs, training, history=None, threads=None, device=None) -> dict:
    """What a run trained under beside its method and options: its epochs (from its history where
    the table lacks them), every training setting (the dataset's declared ones filled in), the
    torch threads and the kind of device (None where the table does not say)."""
    if _missing(epochs):
        epochs = len(history) if isinstance(history, list) else None
    declared = dataclasses.asdict(data.DATASETS[dataset].training) if dataset in data.DATASETS else {}
    return {"epochs": None if epochs is None else int(epochs), **declared,
            **(training if isinstance(training, dict) else {}),
            "threads": None if _missing(threads) else int(threads), "device": None if _missing(device) else device}


def version(method: str, stored) -> int | None:
    """The pruner version a run was computed with, None where that is the registry's version today
    (or the table does not say): only another version is named in a label."""
    if _missing(stored):
        return None
    stored = int(stored)
    return None if method in pruners.PRUNERS and stored == pruners.PRUNERS[method].version else stored


def identity(method: str, dataset, options, training, epochs, history, threads=None, device=None,
             stored_version=None) -> dict:
    """Everything that defines a run beside its method, cell, sparsity, ablation and seed: the
    method's options (its declared defaults filled in), its ``setting`` and its pruner ``version``.
    Runs of one identity may be averaged over seeds; runs of two never."""
    entry = pruners.PRUNERS[method] if method in pruners.PRUNERS else None
    defaults = {} if entry is None else {f.name: f.default for f in dataclasses.fields(entry)
                                         if f.default is not dataclasses.MISSING}
    trained = setting(dataset, epochs, training, history, threads, device)
    return {"epochs": trained.pop("epochs"), **defaults, **(options if isinstance(options, dict) else {}),
            **trained, "version": version(method, stored_version)}


COLUMNS = ("method", "dataset", "options", "training", "epochs", "history", "threads", "device", "version")


def identities(table) -> list[dict]:
    """``identity`` of each row of a runs table (a column it lacks: None)."""
    n = len(table)
    columns = [list(table[name]) if name in table else [None] * n for name in COLUMNS]
    return [identity(*row) for row in zip(*columns)]


def suffixes(configs: list[dict]) -> list[str]:
    """For each configuration, what tells it from the others: "key=value, ..." over the keys whose
    values differ among them (epochs first), then "vN" where its pruner version is not today's;
    "" where nothing does."""
    keys = sorted({k for c in configs for k in c} - {"version"}, key=lambda k: (k != "epochs", k != "scope", k))
    differ = [k for k in keys if len({canonical(c.get(k)) for c in configs}) > 1]
    out = [", ".join([f"{k}={c.get(k)}" for k in differ] + ([f"v{c['version']}"] if c.get("version") is not None
                                                             else [])) for c in configs]
    if len(set(out)) < len({canonical(c) for c in configs}):  # values alike as text ("1" and 1): as JSON
        out = [", ".join([f"{k}={canonical(c.get(k))}" for k in differ]
                         + ([f"v{c['version']}"] if c.get("version") is not None else [])) for c in configs]
    return out


def named(name: str, suffix: str) -> str:
    """A label with what tells its group apart: "random [threads=2]"."""
    return f"{name} [{suffix}]" if suffix else name


def base(name: str) -> str:
    """The method of a label: "dissipating (cubic) [epochs=2]" -> "dissipating"."""
    return name.split(" (")[0].split(" [")[0]


def sparsities(values) -> dict[float, str]:
    """Each sparsity as text, keyed by its exact value: as short as ever ("0.9"), and where two
    would read alike (0.9 and 0.9000001) each as long as it takes to tell them apart (its repr)."""
    values = sorted({float(v) for v in values})
    short = {v: f"{v:g}" for v in values}
    alike = Counter(short.values())
    return {v: short[v] if alike[short[v]] == 1 else repr(v) for v in values}


def markdown(text) -> str:
    """Text that comes from users (a label, an option's or setting's value) as Markdown writes it
    to be shown as itself, never read as Markdown, HTML or math: each character that could start
    markup escaped with a backslash (an underscore inside a word needs none, nor a bracket that
    opens no link: "random [epochs=2]" stays as it is), a line break shown as "\\n" (it would end
    a table row or start a heading). The one escaping of every label that accuracy_table.md and
    claims.md hold; report.html reads the escapes back (``report_html``)."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for i, ch in enumerate(text):
        after = text[i + 1:i + 2]
        plain = (ch == "_" and 0 < i and text[i - 1].isalnum() and after.isalnum()) or \
            (ch == "]" and after not in ("(", "["))
        out.append("\\\\n" if ch == "\n" else "\\" + ch if ch in MARKUP and not plain else ch)
    return "".join(out)


MARKUP = set("\\`*_]<>|#&~$")  # "[" opens a link only with a "](" or "][" after it
