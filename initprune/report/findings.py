"""The README's findings: a block between two markers, written only by ``figures --out
results/offline`` from that folder's claims.json (``assembly.make_figures``), so that the README
says no more than the numbers. A test checks that the committed block is what claims.json gives.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import InitpruneError
from . import claims

BEGIN = "<!-- findings:begin -->"
END = "<!-- findings:end -->"
SOURCE = "results/offline/claims.json"
OLD = ("**First offline run, old analysis; superseded when the new grid runs.** Its claims.json predates the "
       "per-sparsity verdict: each entry is the old pooled test (the mean over s = {sparsities}, a floored interval, "
       "equivalence judged before significance), kept as that run reported it. docs/method.md, \"The verdict\", "
       "says why it was replaced.")


def _margin(r: dict) -> str:
    return f"±{r['margin']:g} point{'' if r['margin'] == 1 else 's'}"


def _effect(r: dict) -> str:
    if r.get("verdict") is None:
        return "no runs"
    mean = r.get("mean")
    return r["verdict"] if mean is None or math.isnan(mean) else f"{r['verdict']} {mean:+.2f}"


def _new(rows: list[dict]) -> list[str]:
    tables = claims.glance(rows)
    if not tables:
        return [claims.no_glance(rows)]
    t, others = tables[0], tables[1:]
    lines = [f"**{claims.cell(t['cell'])}** carries the verdict (margin {_margin(t['cell'])}); each entry "
             "the verdict word and the effect (points, method minus rival):", "", *claims.glance_lines(t)]
    return lines + _replications([o["cell"] for o in others])


def _replications(cells: list[dict]) -> list[str]:
    if not cells:
        return []
    return ["", "Replications, in claims.md: " + "; ".join(claims.cell(c) for c in cells) + "."]


def _old(rows: list[dict]) -> list[str]:
    """The first offline run's pooled verdicts (claims.json before per-sparsity rows): its carrier
    cell's primary contrasts, a column per regime."""
    primary = [r for r in rows if r.get("kind") == "primary"]
    if not primary:
        return ["No primary contrast in this claims.json."]
    carrier = claims.most(primary, lambda r: len(r.get("seeds") or []))
    mine = [r for r in primary if claims.cell_key(r) == carrier]
    others = list({claims.cell_key(r): r for r in primary if claims.cell_key(r) != carrier}.values())
    regimes = [g for g in claims.REGIMES if any(r["regime"] == g for r in mine)]
    sparsities = sorted({s for r in mine for s in r.get("sparsities") or []})
    by = {(r["claim"], r["method"], r["rival"], r["regime"]): r for r in mine}
    contrasts = list(dict.fromkeys((r["claim"], r["method"], r["rival"]) for r in mine))
    named = ", ".join(f"{s:g}" for s in sparsities)
    lines = [OLD.format(sparsities=named), "",
             f"**{claims.cell(mine[0])}** (margin {_margin(mine[0])} as then declared); each entry the "
             "old verdict word and the pooled effect (points, method minus rival):", "",
             "| claim | contrast | " + " | ".join(f"{g} (mean of s = {named})" for g in regimes) + " |",
             "| --- | --- | " + " | ".join("---" for _ in regimes) + " |"]
    for number, method, rival in contrasts:
        cells = [_effect(by[(number, method, rival, g)]) if (number, method, rival, g) in by else "" for g in regimes]
        lines.append(f"| {number} | {claims.labels.markdown(method)} vs {claims.labels.markdown(rival)} | "
                     + " | ".join(cells) + " |")
    return lines + _replications(others)


def block(rows: list[dict]) -> str:
    """The findings block, markers included, from claims.json's rows (``claims.verdicts``; the
    first offline run's, made under the old analysis, with a header that says so)."""
    old = bool(rows) and "role" not in rows[0]
    body = _old(rows) if old else _new(rows)
    return "\n".join([BEGIN, f"<!-- written by `figures --out results/offline` from {SOURCE}; not by hand -->", "",
                      *body, "", END])


def current(readme: str | Path) -> str:
    """The findings block of a README, markers included."""
    text = Path(readme).read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise InitpruneError(f"{readme} has no findings block: put the lines {BEGIN} and {END} where it goes")
    return text[start:end + len(END)]


def update(readme: str | Path, rows: list[dict]) -> None:
    """Write the findings block of ``rows`` into a README, between its markers."""
    text = Path(readme).read_text()
    Path(readme).write_text(text.replace(current(readme), block(rows)))
