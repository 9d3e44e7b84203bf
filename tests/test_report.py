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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    table = results.to_table([])
    figures.assemble(table, out)  # what `figures` writes before the page: every figure, with no runs yet
    (out / "claims.md").write_text(CLAIMS)
    return out, report_html.write(out, table)


def test_the_page_holds_every_figure_as_an_embedded_image(report):
    out, path = report
    page = path.read_text()
    for name in figures.FIGURES:
        found = re.search(rf'<figure id="{name}"><img alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
        assert found, f"{name} is not embedded"
        assert base64.b64decode(found.group(1)) == (out / f"{name}.png").read_bytes()
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere


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
