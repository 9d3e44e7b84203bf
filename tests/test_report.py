"""figures/report.html: one self-contained page, the verdict's summary first, every figure embedded."""

import base64
import re
import shutil
import subprocess

import pytest

from initprune.lab import results
from initprune.report import figures, report_html

CLAIMS = """# The paper's claims on our grid

**Summary.** K-starts beats random at s=0.9 on digits/mlp; nothing else is *detected*.

## Claim 2: K-starts beats random

| dataset / arch | method | vs |
| --- | --- | --- |
| digits / mlp | kstarts | random |
"""


def runs():
    """Two seeds of random, K-starts and dense on digits / mlp at two sparsities: no sanity checks,
    no analysis-mode runs, no E_d variants."""
    from test_figures import KS, result

    rows = [result("dense", 0.0, s, 0.97) for s in (0, 1)]
    rows += [result(m, s, seed, 0.8 - 0.1 * s, extra=KS if m == "kstarts" else None)
             for m in ("random", "kstarts") for s in (0.9, 0.99) for seed in (0, 1)]
    return results.to_table(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    table = runs()
    figures.assemble(table, out)  # what `figures` writes before the page
    (out / "claims.md").write_text(CLAIMS)
    return out, report_html.write(out, table)


def test_the_page_holds_every_figure_drawn_as_an_embedded_image_and_a_line_for_each_left_out(report):
    out, path = report
    page = path.read_text()
    shown = figures.manifest(out)
    assert set(shown) == set(figures.every())
    for name, entry in shown.items():
        for f in entry["figures"]:
            stem = f["file"][:-len(".png")]
            found = re.search(rf'<figure id="{stem}"><img alt="[^"]*" width="(\d+)" height="\d+" '
                              rf'data-font-px="([\d.]+)" src="data:image/png;base64,([^"]+)"', page)
            assert found, f"{stem} is not embedded"
            assert base64.b64decode(found.group(3)) == (out / f["file"]).read_bytes()
            assert int(found.group(1)) == figures.WIDTH * figures.DPI  # as wide as the page shows it
            assert float(found.group(2)) == pytest.approx(figures.SMALLEST * figures.DPI / 72, abs=0.01)
        if not entry["figures"]:
            assert f'<p class="left-out" id="{name}">' in page and entry["left_out"] in page, name
    assert "no kstarts runs at more than one k in this store" in page and "no sanity-check runs in this store" in page
    assert page.count("<figure") == sum(len(e["figures"]) for e in shown.values()) >= 6
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere


def test_the_accuracy_table_has_a_column_per_sparsity_of_its_cell_and_the_costs_folded(report):
    page = report[1].read_text()
    accuracy = page.split("<h2>Accuracy</h2>", 1)[1].split("<h2>", 1)[0]
    [table] = re.findall(r"<table(?: class=\"accuracy\")?>.*?</table>", accuracy.split("<details>")[0], flags=re.S)
    table = table.replace("\u00a0", " ")  # "mean ± sd" is held together by no-break spaces
    head = re.findall(r"<th(?: class=\"num\")?>(.*?)</th>", table)
    assert head == ["regime", "method", "n", "s=0", "s=0.9", "s=0.99"]
    assert '<td class="num">0.7100 ± 0.0000</td>' in table  # random at 0.9: n in its own column
    assert "<details><summary>effective sparsity and cost" in accuracy


def test_provenance_is_a_small_table_never_a_python_dict():
    facts = {"commit": "abc", "_sweeps": [{"profile": "demo", "commits": ["abc"], "started": "s", "ended": "e",
                                           "wall_seconds": 12.5, "executions": {"FAILED": 1, "FINISHED": 24}}]}
    page = "\n".join(report_html._provenance(facts))
    assert "<tr><th>commit</th><td>abc</td></tr>" in page
    assert "<td>1 failed, 24 finished</td>" in page and "{" not in page and "FINISHED" not in page
    assert page.count("<table") == 2  # the sweeps' own table inside the provenance table


def test_the_summary_comes_first_and_holds_only_what_precedes_the_first_section(report):
    page = report[1].read_text()
    summary = re.search(r'<section class="summary" id="summary">(.*?)</section>', page, re.S).group(1)
    assert "<strong>Summary.</strong> K-starts beats random at s=0.9" in summary and "<em>detected</em>" in summary
    assert "Claim 2" not in summary
    assert page.index('id="summary"') < page.index("<figure")
    assert "<td>kstarts</td>" in page  # the claim's table further down, as a table
    assert "Provenance" in page and "commit" in page


def test_summary_is_the_text_before_the_first_section_heading():
    assert report_html.summary("intro\n\n### sub\nmore\n## A\nrest") == "intro\n\n### sub\nmore\n"
    assert report_html.summary("no sections") == "no sections"
    assert report_html.summary("intro\n## Summary (primary)\n- a line\n## A\nrest") == \
        "intro\n## Summary (primary)\n- a line\n"  # claims.md's summary lines come with it


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="needs Chromium (Debian: apt-get install chromium)")
def test_headless_chromium_renders_the_page(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000",
                    f"--screenshot={shot}", report[1].as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # not a blank page


def test_provenance_names_each_sweep_with_its_commit_and_wall_time(report):
    from types import SimpleNamespace as NS

    def execution(sweep, start, end, status="FINISHED", commit="abc1234", profile="offline"):
        return NS(info=NS(start_time=start, end_time=end, status=status),
                  data=NS(tags={"sweep": sweep, "git_commit": commit, "profile": profile}))

    found = [execution("s1", 1_000_000, 1_060_000), execution("s1", 1_010_000, 1_125_500, status="FAILED"),
             execution("s2", 2_000_000, None, status="RUNNING", commit="def5678")]
    first, second = report_html.sweeps(found)
    assert first == {"sweep": "s1", "profile": "offline", "commits": ["abc1234"], "started": "1970-01-01 00:16:40 UTC",
                     "ended": "1970-01-01 00:18:45 UTC", "wall_seconds": 125.5,
                     "executions": {"FAILED": 1, "FINISHED": 1}}
    assert second["wall_seconds"] is None and second["commits"] == ["def5678"]
    import json

    written = json.loads((report[0] / "provenance.json").read_text())
    assert written["sweeps"] == [] and "commit" in written and "machine" in written
