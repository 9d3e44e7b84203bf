"""The report's contracts (issue "Contracts"): runs are grouped by their whole identity but the
seed, the same rule in figures, tables, curves and claims; sparsities are keyed by their exact
value; text that comes from users is never read as mathtext, Markdown or HTML."""

import io
import re

import matplotlib
import matplotlib.pyplot as plt
import pytest

from initprune import pruners
from initprune.lab import results
from initprune.report import claims, figures, report_html

matplotlib.use("Agg")


def result(method, sparsity, seed, acc, options=None, epochs=2, **more):
    history = [{"epoch": e + 1, "train_loss": 1.0, "val_accuracy": acc, "test_accuracy": acc,
                "sparsity": sparsity, "seconds": 0.1} for e in range(epochs)]
    return {"method": method, "dataset": "digits", "arch": "mlp", "seed": seed, "sparsity_target": sparsity,
            "sparsity_actual": sparsity, "test_accuracy": acc, "val_accuracy": acc, "epochs": epochs,
            "history": history, "layers": {"0.weight": {"numel": 100, "kept": 10}}, "extra": {},
            "options": options or {}, "run_id": f"{method}-{sparsity}-{seed}-{acc}", **more}


def table_of(rows):
    """The runs table of ``rows``, with the column ``version`` where a row names one (as
    ``results.runs_table`` reads it from each point's run)."""
    table = results.to_table(rows)
    return table.assign(version=[r.get("version") for r in rows]) if any("version" in r for r in rows) else table


def spread(cell: str, mean: str, n: int) -> bool:
    """An accuracy table cell of that mean over n seeds."""
    return cell.startswith(mean) and cell.endswith(f"(n={n})")


def legend(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


# ---- case 2: a group is a whole identity but the seed --------------------------------------------


def threads_table():
    """Seed 0 of random and K-starts, each trained with 1 and with 2 torch threads."""
    return results.to_table([result(m, 0.9, 0, acc + 0.01 * threads, threads=threads)
                             for m, acc in (("random", 0.2444), ("kstarts", 0.30)) for threads in (1, 2)])


def test_runs_with_other_threads_are_two_groups_never_one_seed_counted_twice():
    table = threads_table()
    acc = figures.accuracy_table(table).set_index("method")
    assert spread(acc.loc["random [threads=1]", "s=0.9"], "0.2544", 1)
    assert spread(acc.loc["random [threads=2]", "s=0.9"], "0.2644", 1)
    assert "random" not in acc.index
    shown = legend(figures.accuracy_vs_sparsity(table))
    assert {"random [threads=1]", "random [threads=2]"} <= set(shown)
    curves = figures.learning_curves(table).axes[0]
    assert {"random [threads=1]", "random [threads=2]"} <= {line.get_label() for line in curves.lines}
    rows = [r for r in claims.verdicts(table) if (r["method"], r["rival"]) == ("kstarts", "random")]
    assert sorted(r["where"] for r in rows) == ["threads=1", "threads=2"]  # two replications, never pooled
    assert all(r["seeds"] == [0] and r["mean"] == pytest.approx(100 * (0.30 - 0.2444)) for r in rows)
    plt.close("all")


def versions_table(current: int):
    """random at version ``current`` (the registry's) and one version before, seed 0, and K-starts beside."""
    return table_of([result("random", 0.9, 0, 0.2444, version=current - 1),
                             result("random", 0.9, 0, 0.4167, version=current),
                             result("kstarts", 0.9, 0, 0.5, version=pruners.PRUNERS["kstarts"].version)])


def test_a_method_at_two_versions_is_two_groups_the_older_named(monkeypatch):
    monkeypatch.setattr(pruners.PRUNERS["random"], "version", 2)  # a plugin's new version, say
    table = versions_table(2)
    acc = figures.accuracy_table(table).set_index("method")
    assert spread(acc.loc["random", "s=0.9"], "0.4167", 1)
    assert spread(acc.loc["random [v1]", "s=0.9"], "0.2444", 1)
    assert {"random", "random [v1]"} <= set(legend(figures.accuracy_vs_sparsity(table)))
    # the verdict judges the declared method as it is now, the older version never mixed in
    [row] = [r for r in claims.verdicts(table) if (r["method"], r["rival"]) == ("kstarts", "random")]
    assert row["mean"] == pytest.approx(100 * (0.5 - 0.4167))
    plt.close("all")


def test_a_plugin_the_registry_does_not_know_at_two_versions_is_two_groups():
    rows = [result("mine", 0.9, 0, 0.2444, version=1), result("mine", 0.9, 0, 0.4167, version=2),
            result("kstarts", 0.9, 0, 0.5)]
    table = table_of(rows)
    acc = figures.accuracy_table(table).set_index("method")
    assert spread(acc.loc["mine [v1]", "s=0.9"], "0.2444", 1)
    assert spread(acc.loc["mine [v2]", "s=0.9"], "0.4167", 1)
    against = {r["rival"]: r["mean"] for r in claims.verdicts(table) if r["method"] == "kstarts"
               and r["rival"].startswith("mine")}
    assert against == {"mine [v1]": pytest.approx(100 * (0.5 - 0.2444)),
                       "mine [v2]": pytest.approx(100 * (0.5 - 0.4167))}


def test_the_runs_table_carries_each_points_pruner_version(tmp_path, monkeypatch):
    from initprune import spec
    from initprune.lab import store
    from initprune.result import RunResult

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = store.points(uri)
    for version in (1, 2):
        monkeypatch.setattr(pruners.PRUNERS["random"], "version", version)
        config = spec.RunSpec(method="random", epochs=1, sparsity=0.5)
        run_id = runs.open_point(config, None)
        values = {**result("random", 0.5, 0, 0.5 + 0.1 * version), "config_hash": config.hash()}
        runs.log(run_id, config, RunResult.from_dict(values))
        runs.finish(run_id, None)
    table = results.runs_table(uri)
    assert sorted(zip(table["version"], table["test_accuracy"])) == [(1, 0.6), (2, 0.7)]


# ---- case 4: sparsities keyed by their exact value -----------------------------------------------


def test_near_equal_sparsities_are_two_columns_each_named_apart():
    table = results.to_table([result(m, s, 0, acc + 0.1 * (m == "kstarts")) for m in ("random", "kstarts")
                              for s, acc in ((0.9, 0.5), (0.9000001, 0.7), (0.99, 0.3))])
    acc = figures.accuracy_table(table).set_index("method")
    assert acc.loc["random", "s=0.9"].startswith("0.5000")
    assert acc.loc["random", "s=0.9000001"].startswith("0.7000")
    assert acc.loc["random", "s=0.99"].startswith("0.3000")  # not colliding: as short as ever
    assert acc.loc["random", "s=0.9000001 effective"] == ""
    text = claims.claims_markdown(table)  # the per-sparsity table: a column each, the list of each contrast
    assert "| s=0.9 | s=0.9000001 | s=0.99 |" in text and "| 0.9, 0.9000001, 0.99 |" in text


# ---- case 9: no mathtext in what comes from users ------------------------------------------------


def test_a_dollar_in_an_option_value_renders_as_itself_in_every_figure():
    rows = [result("mine", s, seed, 0.5, options={"data": data}) for s in (0.9, 0.99) for seed in (0, 1)
            for data in ("$HOME/data_$", "plain")]
    table = results.to_table(rows + [result("random", s, 0, 0.4) for s in (0.9, 0.99)])
    for make in figures.every().values():
        fig = make(table)
        if fig is None:  # nothing of its kind in this table (no sanity checks): one line, no figure
            continue
        fig.savefig(io.BytesIO(), format="png", dpi=30)  # drawn: mathtext would raise here
        plt.close(fig)
    fig = figures.accuracy_vs_sparsity(table)
    [text] = [t for t in fig.legends[0].get_texts() if "HOME" in t.get_text()]
    fig.canvas.draw()
    shown, math = text._preprocess_math(text.get_text())
    assert shown == "mine [data=$HOME/data_$]" and not math
    plt.close("all")


# ---- case 10: labels escaped for Markdown and HTML -----------------------------------------------

FORGED = "x\n## Summary (primary contrasts)\n- claim 2: FORGED kstarts vs random: better"
NASTY = ("a|b", FORGED, "**bold**", "`code`", "<script>alert(1)</script>", "[x](javascript:alert(1))")


@pytest.fixture(scope="module")
def nasty(tmp_path_factory):
    """Random and K-starts under five awkward values of a training setting (each a label's suffix
    and a cell's setting in claims), written as the report writes them: the accuracy table,
    claims.md and report.html."""
    rows = [result(m, 0.9, seed, acc + 0.01 * i, training={"note": note}) for i, note in enumerate(NASTY)
            for m, acc in (("random", 0.4), ("kstarts", 0.45)) for seed in (0, 1)]
    table = results.to_table(rows)
    out = tmp_path_factory.mktemp("nasty")
    (out / "accuracy_table.md").write_text(figures._markdown(figures.accuracy_table(table)))
    (out / "claims.md").write_text(claims.claims_markdown(table))
    report_html.write(out, table)
    return out


def pipes(line: str) -> int:
    """The cell separators of a Markdown table line: pipes not escaped by a backslash."""
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


@pytest.mark.parametrize("name", ["accuracy_table.md", "claims.md"])
def test_a_label_cannot_add_a_column_cut_a_table_or_inject_lines(nasty, name):
    text = (nasty / name).read_text()
    assert "FORGED" in text  # the label is there, on its own line's row
    assert not any(line.startswith("- claim 2: FORGED") for line in text.splitlines())
    assert text.count("## Summary") <= 1 and "<script>" not in text and "**bold**" not in text
    assert "`code`" not in text and not re.search(r"(?<!\\)\]\(", text)  # no link
    for block in re.findall(r"(?:^\|.*\n)+", text, flags=re.M):  # each table: as many cells in every row
        lines = block.splitlines()
        assert {pipes(line) for line in lines} == {pipes(lines[0])}, lines


def test_report_html_shows_every_label_as_text(nasty):
    page = (nasty / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<strong>bold</strong>" not in page and "**bold**" in page
    assert "<code>code</code>" not in page and "`code`" in page
    assert "a|b" in page and "\\|" not in page and "\\*" not in page  # no escape left showing
    assert "<h3>Summary" not in page.split("</section>", 1)[1]  # no second summary
    for table in re.findall(r"<table>.*?</table>", page, flags=re.S):
        head = len(re.findall("<th>", table))
        assert {len(re.findall("<td>", row)) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]} == {head}


# ---- minor: one seed has no spread ---------------------------------------------------------------


def test_one_seed_shows_no_spread():
    table = results.to_table([result("random", 0.9, 0, 0.2444)] + [result("kstarts", 0.9, s, 0.3) for s in (0, 1)])
    acc = figures.accuracy_table(table).set_index("method")
    assert acc.loc["random", "s=0.9"] == "0.2444 (n=1)"
    assert acc.loc["kstarts", "s=0.9"] == "0.3000 ± 0.0000 (n=2)"
