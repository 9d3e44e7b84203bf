"""The project's own methods reference: it exists, covers every built-in method and option, and
nothing a user's clone ships points at notes that only the developers have."""

from pathlib import Path

import pytest

from initprune import pruners

ROOT = Path(__file__).resolve().parent.parent
METHOD = ROOT / "docs" / "method.md"
# the developers' notes, named with or without a folder; the project's own reference is docs/method.md
DEVELOPER_NOTES = ("METHOD.md", "INTERFACE.md", "STYLE.md")
BUILT_IN = [m for m in pruners.PRUNERS.names() if pruners.PRUNERS[m].__module__ == "initprune.pruners"]


def shipped_files():
    """README.md and every text file under initprune/, notebooks/ and docs/."""
    yield ROOT / "README.md"
    yield ROOT / "Makefile"
    for folder in ("initprune", "notebooks", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".ipynb", ".yaml", ".yml", ".txt", ".toml"}:
                yield path


def test_the_methods_reference_exists_and_is_cited_by_the_readme():
    assert METHOD.is_file() and len(METHOD.read_text().splitlines()) > 100
    assert "docs/method.md" in (ROOT / "README.md").read_text()


def test_no_shipped_file_names_the_developers_notes():
    """A clone has docs/method.md, not the notes it was written from: upper case, with or without a
    folder, is theirs (the case-sensitive match leaves docs/method.md alone)."""
    offenders = [f"{path.relative_to(ROOT)}: {note}" for path in shipped_files()
                 for note in DEVELOPER_NOTES if note in path.read_text(errors="replace")]
    assert not offenders, offenders


@pytest.mark.parametrize("method", BUILT_IN)
def test_every_built_in_method_and_each_of_its_options_is_in_the_reference(method):
    text = METHOD.read_text()
    assert f"`{method}`" in text, method
    missing = [o.name for o in pruners.PRUNERS[method].declared() if f"`{o.name}`" not in text]
    assert not missing, (method, missing)


def test_the_reference_cites_the_paper_and_the_baselines_by_author_and_year():
    text = METHOD.read_text()
    for citation in ("Haroon", "2209.02201", "Lee et al. 2019", "Wang et al. 2020", "Tanaka et al. 2020",
                     "Frankle et al. 2020", "Evci et al. 2020", "Zhu & Gupta 2017", "Vysogorets & Kempe 2023"):
        assert citation in text, citation


RESULTS = ROOT / "results" / "offline"


def _section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    assert f"\n## {title}\n" in text, title
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_quotes_the_committed_offline_results_as_they_are():
    """Every accuracy the README quotes is in results/offline/, its verdict is the findings block
    (written from claims.json: tests/test_verdict_report.py checks it), and the commit and sweep
    time it names are the ones provenance.json recorded."""
    import csv
    import json

    from initprune.report import findings

    section = _section("What the offline grid finds")
    block = findings.current(ROOT / "README.md")
    assert block in section and not [line for line in section.replace(block, "").splitlines()
                                     if line.startswith("- claim ")], "a verdict quoted outside the findings block"
    section = section.replace(block, "")
    rows = {(r["dataset"], r["arch"], r["regime"], r["method"]): r
            for r in csv.DictReader((RESULTS / "accuracy_table.csv").open())}
    table = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
             if line.startswith("| ") and not line.startswith("| method") and "---" not in line]
    assert len(table) >= 7
    for method, regime, *values in table:
        row = rows[("fashion_mnist", "lenet300", regime, method)]
        assert all(v in row.values() for v in values if v), (method, regime, values)
    facts = json.loads((RESULTS / "provenance.json").read_text())
    [sweep] = [s for s in facts["sweeps"] if s["profile"] == "offline" and s["started"] in section]
    assert f"{sweep['wall_seconds'] / 60:.0f} minutes" in section and sweep["commits"][0] in section


def test_the_readme_says_who_can_write_to_server_and_ui_in_each_mode(monkeypatch, tmp_path):
    """Issue 22, case 9: the README states who can write with the login (the default) and with
    --no-auth, where the credentials are, and names the file the code really uses."""
    from initprune.lab import auth

    text = " ".join((ROOT / "README.md").read_text().split())
    part = text[text.index("**Who can write.**"):][:2500]
    assert "basic-auth" in part and "401" in part  # the default: a login, anything else refused
    assert "--no-auth" in part and "anyone on this host" in part and "delete" in part  # the other mode
    monkeypatch.delenv("INITPRUNE_CREDENTIALS", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    where = auth.credentials_path().relative_to(tmp_path)  # the file the code really uses
    assert f"~/{where}" == "~/.config/initprune/mlflow-credentials" and f"~/{where}" in part
    assert "0600" in part and "INITPRUNE_CREDENTIALS" in part and auth.USER in part and auth.PASSWORD in part


def test_the_readme_lists_exactly_the_declared_figures_in_the_reports_order():
    """Figure names are declared once (``figures.contributes``); the README's list between its
    markers names each of them, in the order report.html shows them, and no other."""
    import re

    from initprune.report import figures

    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- figures:begin -->"):text.index("<!-- figures:end -->")]
    assert re.findall(r"`(\w+)`", block) == list(figures.every())
