"""``figures/report.html``: the report as one self-contained page, for a browser or an e-mail.

The verdict comes first, on one screen: the table of the cell that carries it (one row per primary
contrast, one column per regime and tested sparsity, each entry its verdict word in colour and the
effect), the replication cells folded below it, and the forest plot; then every figure (a PNG per
dataset and architecture, and per family of methods, embedded as base64, each at the width the
page shows it) under a sentence on what to look at, or one line where it has nothing to draw; the
accuracy table per cell; the groups of runs beside the main comparison and where they came from;
the verdict in full; and the provenance as a small table: commit, the profiles in the store,
seeds, machine and time. Nothing on the page is fetched from elsewhere.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import platform
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
h3 { margin: 2rem 0 .3rem; } p.look { color: #444; margin: 0 0 .6rem; max-width: 52rem; }
figure { margin: .8rem 0 1.6rem; } figure img { display: block; max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9rem; margin-top: .2rem; }
p.left-out { color: #666; font-style: italic; margin: .3rem 0; }
table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .2rem .45rem; text-align: left; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.accuracy td.num { white-space: normal; } /* "mean ± sd" stays whole; "(n=12)" may go below it */
th { background: #f3f3f3; } code { background: #f3f3f3; padding: 0 .2rem; }
details { margin: .4rem 0 1rem; } summary { cursor: pointer; color: #3b6fb6; }
.summary { background: #f7f9fc; border-left: 4px solid #3b6fb6; padding: .5rem 1rem; }
table.verdict { font-size: .75rem; margin: .5rem 0; }
table.verdict td, table.verdict th { white-space: nowrap; padding: .12rem .4rem; }
table.verdict td:nth-child(2) { white-space: normal; min-width: 14rem; }
td.better { background: #c8ecd0; } td.better-within-margin { background: #e6f5e9; }
td.worse { background: #f7c9c9; } td.worse-within-margin { background: #fbe7e7; }
td.equivalent { background: #dde7f5; } td.inconclusive { color: #555; } td.too-few-seeds { color: #8a6d00; }
td.no-runs { color: #999; font-style: italic; } details.replication { margin: .5rem 0; }
table.provenance th { width: 11rem; vertical-align: top; } table.provenance td { max-width: 52rem; }
"""


def summary(claims: str) -> str:
    """The part of claims.md before its first ``## `` heading, and its summary section (a first
    ``## Summary ...`` heading and its lines) where it opens with one."""
    heads = [m.start() for m in re.finditer(r"^## ", claims, flags=re.MULTILINE)]
    if not heads:
        return claims
    if claims.startswith("## Summary", heads[0]):
        return claims[:heads[1]] if len(heads) > 1 else claims
    return claims[:heads[0]]


ESCAPED = r"(\\[!-/:-@\[-`{-~])"  # a backslash and the ASCII punctuation it makes plain (CommonMark)


def _markup(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"(?<![*\w])\*([^*]+)\*(?![*\w])", r"<em>\1</em>", out)


def _inline(text: str) -> str:
    """A line's bold, italics and code as HTML; a backslash-escaped character (how claims.md and
    the accuracy table write every label, ``labels.markdown``) is the character itself."""
    parts = re.split(ESCAPED, text)
    return "".join(html.escape(p[1], quote=False) if i % 2 else _markup(p) for i, p in enumerate(parts))


def _cells(line: str) -> list[str]:
    """A table row's cells: split at each pipe a backslash does not escape."""
    cells = [""]
    for token in re.findall(r"\\.|\||[^\\|]+|\\", line.strip()):
        if token == "|":
            cells.append("")
        else:
            cells[-1] += token
    if len(cells) > 1 and not cells[0].strip():  # the row's opening pipe
        cells = cells[1:]
    if len(cells) > 1 and not cells[-1].strip():  # its closing pipe
        cells = cells[:-1]
    return [c.strip() for c in cells]


def markdown(text: str) -> str:
    """The Markdown that claims.md and the accuracy table use, as HTML: headings, paragraphs,
    bullet lists, pipe tables, bold, italics and code."""
    out, para, lines = [], [], text.splitlines()

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^(#{1,6}) (.*)", line)
        if heading:
            flush()
            level = min(6, len(heading.group(1)) + 1)  # the page has its own h1
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
            continue
        elif re.match(r"^\s*[-*] ", line):
            flush()
            items = []
            while i < len(lines) and re.match(r"^\s*[-*] ", lines[i]):
                items.append("<li>" + _inline(re.sub(r"^\s*[-*] ", "", lines[i])) + "</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        elif not line.strip():
            flush()
        else:
            para.append(line.strip())
        i += 1
    flush()
    return "\n".join(out)


def _word_class(r) -> str:
    return "no-runs" if r["verdict"] is None else r["verdict"].replace(", ", "-").replace(" ", "-")


def _glance_table(table: dict) -> str:
    """One cell's one-screen verdict as an HTML table: a row per primary contrast, a column per
    regime and tested sparsity, each entry its word (a class that colours it) and the effect."""
    from . import claims, labels

    named = labels.sparsities([s for _, s in table["columns"]])
    head = "".join(f"<th>{html.escape(g)} s={named[s]}</th>" for g, s in table["columns"])
    body = []
    for row in table["rows"]:
        cells = "".join(f'<td class="word {_word_class(r)}">{html.escape(claims.effect(r))}</td>' if r else "<td></td>"
                        for r in row["cells"])
        body.append(f"<tr><td>{html.escape(row['claim'])}</td><td>{html.escape(row['method'])} vs "
                    f"{html.escape(row['rival'])}</td>{cells}</tr>")
    return (f'<table class="verdict"><thead><tr><th>claim</th><th>contrast</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _plain_cell(r: dict) -> str:
    where = f" [{r['where']}]" if r.get("where") else ""
    return html.escape(f"{r['dataset']}/{r['arch']}{where}")


def verdict(rows: list[dict], forest_png: Path | None = None) -> str:
    """The verdict at a glance (claims.json's rows): the carrier cell's table, each replication
    cell's folded under it, the cells without tested sparsities named, then the forest plot."""
    from . import claims

    tables = claims.glance(rows)
    out = ["<h2>Verdict at a glance</h2>"]
    if not tables:
        out.append(f"<p>{_inline(claims.no_glance(rows))}</p>")
    for t in tables:
        if t["carries"]:
            most = max((r["n"] for row in t["rows"] for r in row["cells"] if r), default=0)
            out.append(f"<p><strong>{_plain_cell(t['cell'])}</strong> carries the verdict (the most seeds on its "
                       f"primary contrasts, up to {most}). Each entry: the verdict word and the effect (points, "
                       "method minus rival), per allocation regime and tested sparsity.</p>")
            out.append(_glance_table(t))
        else:
            out.append(f'<details class="replication"><summary>Replication: {_plain_cell(t["cell"])}</summary>'
                       f"{_glance_table(t)}</details>")
    loose = claims.undeclared(rows)
    if loose:
        out.append("<p>Descriptive only (no tested sparsities declared, no verdict word): "
                   + "; ".join(f"{_plain_cell(r)}, {html.escape(r['regime'])}" for r in loose) + ".</p>")
    if forest_png is not None and forest_png.exists():
        out.append(f'<figure id="forest"><img alt="forest plot" src="{_image(forest_png)}"><figcaption><strong>'
                   "Forest plot.</strong> Each primary contrast of the cell that carries the verdict at each tested "
                   "sparsity: the effect and its 95% interval; the grey band is the equivalence margin. An interval "
                   "clear of 0 is a difference (filled where Holm's correction keeps it); one inside the band is "
                   "too small to matter.</figcaption></figure>")
    return "\n".join(out)


def _sections(text: str) -> list[str]:
    """claims.md cut before each ``## `` heading: the intro, then each section."""
    heads = [0] + [m.start() for m in re.finditer(r"^## ", text, flags=re.MULTILINE)] + [len(text)]
    return [text[a:b] for a, b in zip(heads, heads[1:]) if b > a]


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _utc(ms) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def sweeps(found) -> list[dict]:
    """Each sweep that wrote the store, from its execution runs: its profile, commits, first start,
    last end, wall time (the end minus the start: a resumed sweep is a sweep of its own) and how
    its executions ended."""
    by: dict = {}
    for r in found:
        by.setdefault(r.data.tags.get("sweep") or "(no sweep id)", []).append(r)
    out = []
    for sweep, part in by.items():
        began = min(r.info.start_time for r in part if r.info.start_time)
        ended = [r.info.end_time for r in part if r.info.end_time]
        statuses = [r.info.status for r in part]
        out.append({"sweep": sweep, "profile": ", ".join(sorted({r.data.tags.get("profile") or "?" for r in part})),
                    "commits": sorted({r.data.tags.get("git_commit") or "unknown" for r in part}),
                    "started": _utc(began), "ended": _utc(max(ended)) if ended else None,
                    "wall_seconds": round((max(ended) - began) / 1000, 1) if ended else None,
                    "executions": {s: statuses.count(s) for s in sorted(set(statuses))}})
    return sorted(out, key=lambda s: s["started"])


def ended(executions: dict) -> str:
    """How a sweep's executions ended, in words: "24 finished, 1 failed"."""
    return ", ".join(f"{n} {status.lower()}" for status, n in executions.items()) or "no executions"


def provenance(table, c=None, exp_id: str | None = None) -> dict:
    """Where the numbers come from: commit, profiles in the store, the sweeps that ran them, seeds,
    machine, time."""
    import torch

    from ..lab import root

    profiles, commits, ran = [], [], []
    if c is not None and exp_id is not None:
        found = c.search_runs([exp_id], "tags.kind = 'execution'", max_results=5000)
        profiles = sorted({r.data.tags.get("profile") for r in found if r.data.tags.get("profile")})
        commits = sorted({r.data.tags.get("git_commit") for r in found if r.data.tags.get("git_commit")})
        ran = sweeps(found)
    seeds = sorted({int(s) for s in table["seed"].dropna()}) if len(table) else []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {
        "commit": f"{root.git_commit()} (this page); the runs' sweeps at {', '.join(commits) or 'unknown'}",
        "profiles in the store": ", ".join(profiles) or "none",
        "runs": f"{len(table)} finished points",
        "seeds": ", ".join(map(str, seeds)) or "none",
        "machine": f"{platform.node()}: {platform.machine()}, {cores} CPU threads, {gpu}; Python "
                   f"{platform.python_version()}, torch {torch.__version__}",
        "sweeps": "; ".join(f"{w['profile']} at {', '.join(w['commits'])}: {w['started']} to {w['ended']}, "
                            f"{w['wall_seconds']} s, {ended(w['executions'])}" for w in ran) or "none",
        "written": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "_sweeps": ran,
    }


def _table(frame, numeric=(), cls: str = "") -> str:
    """A DataFrame as an HTML table, every header and cell escaped: a label is shown as itself.
    ``numeric``: the columns set right-aligned, on one line."""
    def cell(tag, name, value):
        align = ' class="num"' if name in numeric else ""
        text = html.escape(str(value), quote=False).replace(" ± ", "\u00a0±\u00a0")  # "mean ± sd" never split
        return f"<{tag}{align}>{text}</{tag}>"

    head = "".join(cell("th", c, c) for c in frame.columns)
    rows = "".join("<tr>" + "".join(cell("td", c, v) for c, v in zip(frame.columns, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    attrs = f' class="{cls}"' if cls else ""
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _figures(out: Path) -> list[str]:
    """Each figure under its title with what to look at, its parts (a figure per dataset and
    architecture, and per family of methods) as embedded PNGs that carry their natural width and
    smallest type in pixels (``data-font-px``, for the legibility test); a figure with nothing to
    draw as one line saying why."""
    from . import figures

    shown = figures.manifest(out)
    parts = ["<h2>Figures</h2>"]
    for name, declared in figures.every().items():
        entry = shown.get(name)
        if entry is None:
            continue
        title = name.replace("_", " ")
        if not entry["figures"]:
            parts.append(f'<p class="left-out" id="{name}"><strong>{html.escape(title)}</strong>: left out, '
                         f"{html.escape(entry['left_out'] or 'nothing to draw')}.</p>")
            continue
        parts.append(f'<h3 id="{name}">{html.escape(title)}</h3>')
        parts.append(f'<p class="look">{html.escape(declared.figure.caption)}</p>')  # what to look at, declared with it
        for f in entry["figures"]:
            png = out / f["file"]
            if not png.exists():
                continue
            font = f["smallest_pt"] * f["dpi"] / 72
            parts.append(f'<figure id="{html.escape(Path(f["file"]).stem)}"><img alt="{html.escape(title)}, '
                         f'{html.escape(f["title"])}" width="{f["width"]}" height="{f["height"]}" '
                         f'data-font-px="{font:.2f}" src="{_image(png)}">'
                         f"<figcaption>{html.escape(f['title'])}</figcaption></figure>")
    return parts


def _accuracy(table) -> list[str]:
    """The accuracy table per dataset and architecture, the cost and effective sparsity folded
    under each, and the groups of runs the main comparison leaves out."""
    from . import figures, metric

    parts = ["<h2>Accuracy</h2>", "<p>The final test metric of each cell's task (test accuracy; for an "
             "autoencoder, test reconstruction error, lower is better), mean ± standard deviation over seeds (n: "
             "how many; one seed: no spread), one row per method and configuration, one column per sparsity "
             "(accuracy_table.csv holds it all as data).</p>"]
    cells = figures.accuracy_cells(table) if len(table) else []
    if not cells:
        parts.append("<p>No accuracy table yet.</p>")
    costs = dict(figures.cost_cells(table)) if len(table) else {}
    for (dataset, arch), frame in cells:
        task = metric.of(table[(table["dataset"] == dataset) & (table["arch"] == arch)])
        parts.append(f"<h3>{html.escape(f'{dataset} / {arch}: {metric.axis(task)}')}</h3>")
        parts.append(_table(frame, numeric=[c for c in frame.columns if c != "method"], cls="accuracy"))
        if (dataset, arch) in costs:
            cost = costs[(dataset, arch)]
            parts.append("<details><summary>effective sparsity and cost (training: FLOPs relative to one "
                         "dense training of the cell's reference epochs, n/a where stored without absolute FLOPs; "
                         "training seconds; inference: FLOPs relative to dense), "
                         f"{html.escape(f'{dataset} / {arch}')}</summary>"
                         f"{_table(cost, numeric=[c for c in cost.columns if c != 'method'])}</details>")
    parts += _store(table)
    return parts


def _store(table) -> list[str]:
    """The groups of runs in the store that the main figures and tables leave out, and where
    each came from (a profile's sweep, or ``run`` by hand)."""
    from . import figures

    groups = figures.store_groups(table) if len(table) else None
    parts = ["<h2>Runs in this store</h2>"]
    if groups is None or groups.empty:
        return parts + ["<p>Every group of runs in this store is in the figures and tables above.</p>"]
    known = "origin" in table and (table["origin"].fillna("?") != "?").any()
    parts.append("<p>Groups of runs (a whole identity but the seed) beside the main comparison: variants shown in "
                 "their method's own figures, sanity checks in ablation loss, and runs made by hand with "
                 "<code>run</code>, shown nowhere else. Origin: the profile whose sweep ran it"
                 + ("" if known else " (unknown for these runs: the table does not say)") + ".</p>")
    return parts + [_table(groups if known else groups.assign(origin="unknown"), numeric=["runs"])]


def _provenance(facts: dict) -> list[str]:
    """Where the numbers come from, as a small table; the sweeps as one of their own."""
    rows = [(k, str(v)) for k, v in facts.items() if not k.startswith("_") and k != "sweeps"]
    parts = ["<h2>Provenance</h2>", '<table class="provenance"><tbody>']
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows]
    ran = facts.get("_sweeps") or []
    if ran:
        import pandas as pd

        frame = pd.DataFrame([{"profile": w["profile"], "commits": ", ".join(w["commits"]), "started": w["started"],
                               "ended": w["ended"] or "running", "wall time": f"{w['wall_seconds']} s"
                               if w["wall_seconds"] is not None else "", "executions": ended(w["executions"])}
                              for w in ran])
        parts.append(f"<tr><th>sweeps</th><td>{_table(frame, numeric=['wall time'])}</td></tr>")
    else:
        parts.append("<tr><th>sweeps</th><td>none</td></tr>")
    return parts + ["</tbody></table>"]


def write(out: str | Path, table, c=None, exp_id: str | None = None) -> Path:
    """Write ``report.html`` into ``out``, from what ``figures.assemble`` left there."""
    out = Path(out)
    claims = (out / "claims.md").read_text() if (out / "claims.md").exists() else ""
    rows = json.loads((out / "claims.json").read_text()) if (out / "claims.json").exists() else None
    if rows and "role" in rows[0]:  # the verdict's rows: the glance from them, claims.md's text below
        sections = _sections(claims)
        intro = sections[0] if sections and not sections[0].startswith("## ") else ""
        top = markdown(re.sub(r"^# .*\n", "", intro)) + verdict(rows, out / "forest.png")  # the page has its title
        rest = "".join(p for p in sections if p.startswith("## ") and not p.startswith("## Verdict at a glance"))
    else:
        top, rest = markdown(summary(claims)), claims[len(summary(claims)):]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>initprune report: the paper's claims on our grid</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>initprune report</h1>",
             f'<section class="summary" id="summary">{top}</section>']
    parts += _figures(out)
    parts += _accuracy(table)
    if rest.strip():
        parts += ["<h2>The verdict in full</h2>", markdown(rest)]
    facts = provenance(table, c, exp_id)
    parts += _provenance(facts)
    (out / "provenance.json").write_text(json.dumps({k.lstrip("_"): v for k, v in facts.items()}, indent=1) + "\n")
    parts += ["</body></html>"]
    path = out / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
