"""The project's own methods reference: it exists, covers every built-in method and option, and
nothing a user's clone ships points at notes that only the developers have."""

from pathlib import Path

import pytest

from initprune import pruners

ROOT = Path(__file__).resolve().parent.parent
METHOD = ROOT / "docs" / "method.md"
DEVELOPER_NOTES = ("shared/METHOD.md", "shared/INTERFACE.md", "shared/STYLE.md")
BUILT_IN = [m for m in pruners.PRUNERS.names() if pruners.PRUNERS[m].__module__ == "initprune.pruners"]


def shipped_files():
    """README.md and every text file under initprune/, notebooks/ and docs/."""
    yield ROOT / "README.md"
    for folder in ("initprune", "notebooks", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".ipynb", ".yaml", ".yml", ".txt", ".toml"}:
                yield path


def test_the_methods_reference_exists_and_is_cited_by_the_readme():
    assert METHOD.is_file() and len(METHOD.read_text().splitlines()) > 100
    assert "docs/method.md" in (ROOT / "README.md").read_text()


def test_no_shipped_file_names_the_developers_notes():
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
