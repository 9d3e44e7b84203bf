"""Assembling the report from the store (the report layer): the figures, tables, claims.md and
claims.json, the forest plot, the raw data (runs.csv, per_example.npz) and report.html written into
``figures/`` and logged to one figures run, the README's findings block where the report is
``results/offline``, and the ``figures`` command, which executes notebooks/figures.ipynb to do it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..lab import results, root, store
from ..lab.tasks import KERNEL, NOTEBOOKS, first_line, load_papermill
from . import claims, figures, findings, forest, raw, report_html

FINDINGS = store.ROOT / "results" / "offline"  # the one report whose claims.json the README's findings quote


def figures_run(c, exp_id: str) -> str:
    """Open the run that holds one assembly of the figures (the one place that makes it)."""
    return c.create_run(exp_id, tags={"kind": "figures", "git_commit": root.git_commit()},
                        run_name="figures").info.run_id


def figures_dir() -> Path:
    return Path(os.environ.get("INITPRUNE_FIGURES") or store.ROOT / "figures")


def make_figures(out: str | Path | None = None, run_id: str = "", uri: str | None = None) -> list[Path]:
    """Assemble every figure from the store into ``out`` (default ``figures/``, or
    $INITPRUNE_FIGURES) and log them to a figures run."""
    out = Path(out) if out else figures_dir()
    table = results.runs_table(uri)
    written = assemble(table, out)
    c, exp_id = store.ensure_store(uri)
    written.append(report_html.write(out, table, c, exp_id))  # the page of it all, logged with the rest
    written.append(out / "provenance.json")  # written beside it: the commit, machine and sweeps behind it
    own = not run_id
    if own:
        run_id = figures_run(c, exp_id)
    for path in written:
        c.log_artifact(run_id, str(path), "figures")
    c.log_metric(run_id, "runs", len(table))
    if own:
        c.set_terminated(run_id, "FINISHED")
    return written


def assemble(table, out: str | Path) -> list[Path]:
    """The report's files of a runs table in ``out``, each written once: the figures and the
    accuracy table (``figures.assemble``), then the verdict (``verdict``)."""
    return figures.assemble(table, out) + verdict(table, out)


def verdict(table, out: str | Path, echo=print) -> list[Path]:
    """The verdict's files in ``out``: claims.md and claims.json (every row: ``claims.verdicts``),
    the forest plot (left out, in one line, where it has nothing to draw: never written empty),
    the raw data they can be recomputed from (``raw``), and, where ``out`` is ``results/offline``,
    the README's findings block."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = claims.verdicts(table)
    (out / "claims.md").write_text(claims.claims_markdown(rows=rows))
    (out / "claims.json").write_text(json.dumps(rows, indent=1))
    written = [out / "claims.md", out / "claims.json"]
    fig = forest.forest(rows)
    for ext in ("png", "pdf"):
        (out / f"forest.{ext}").unlink(missing_ok=True)  # an earlier store's plot is not this one's
    if fig is None:
        echo("left out: forest (no primary contrast at a tested sparsity with paired runs in this store)")
    else:
        for ext in ("png", "pdf"):
            fig.savefig(out / f"forest.{ext}", dpi=100)
            written.append(out / f"forest.{ext}")
        plt.close(fig)
    written += raw.write(table, out)
    if out.resolve() == FINDINGS.resolve():
        findings.update(store.ROOT / "README.md", rows)
        echo(f"findings: README.md's block written from {out / 'claims.json'}")
    return written


def command(out: str | Path | None = None) -> int:
    """Execute figures.ipynb (the report) into a figures run: figures, tables and the notebook."""
    papermill = load_papermill()
    out = Path(out or figures_dir()).resolve()
    uri = store.default_uri()
    print(f"figures: reading the store {uri}", flush=True)
    c, exp_id = store.ensure_store(uri)
    print(f"figures: {len(results.finished_points(c, exp_id))} finished points", flush=True)
    for line in results.without_result(c, exp_id):  # the notebook leaves them out too, and says so there
        print(f"left out: {line}; a sweep of its profile trains it again")
    run_id = figures_run(c, exp_id)
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "figures.ipynb"
        print(f"figures: executing notebooks/figures.ipynb into {out} (figures, tables, claims.md, report.html)",
              flush=True)
        try:
            papermill.execute_notebook(str(NOTEBOOKS / "figures.ipynb"), str(output),
                                       parameters={"out": str(out), "figures_run_id": run_id, "tracking_uri": uri},
                                       cwd=str(NOTEBOOKS), **KERNEL)
            error = None
        except Exception as err:
            error = first_line(err)
        if output.exists():
            print(f"figures: logging the executed notebook to the figures run {run_id}", flush=True)
            c.log_artifact(run_id, str(output))
        c.set_terminated(run_id, "FAILED" if error else "FINISHED")
    if error:
        print(f"figures FAILED: {error}")
        return 1
    print(f"figures written to {out} (claims: {out / 'claims.md'}; the whole report: {out / 'report.html'})")
    return 0
