"""Assembling the report from the store (the report layer): the figures, tables, claims.md and
report.html written into ``figures/`` and logged to one figures run, and the ``figures`` command,
which executes notebooks/figures.ipynb to do it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..lab import results, runs, store
from ..lab.tasks import KERNEL, NOTEBOOKS, first_line, load_papermill
from . import figures, report_html


def figures_run(c, exp_id: str) -> str:
    """Open the run that holds one assembly of the figures (the one place that makes it)."""
    return c.create_run(exp_id, tags={"kind": "figures", "git_commit": runs.git_commit()},
                        run_name="figures").info.run_id


def figures_dir() -> Path:
    return Path(os.environ.get("INITPRUNE_FIGURES") or store.ROOT / "figures")


def make_figures(out: str | Path | None = None, run_id: str = "", uri: str | None = None) -> list[Path]:
    """Assemble every figure from the store into ``out`` (default ``figures/``, or
    $INITPRUNE_FIGURES) and log them to a figures run."""
    out = Path(out) if out else figures_dir()
    table = results.runs_table(uri)
    written = figures.assemble(table, out)
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
