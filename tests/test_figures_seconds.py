"""The seconds figure (claim 1 in seconds) on hand-made records whose seconds are known: every
method drawn under each compute, the ratio panel dividing the two, what has no seconds left out
with a note, and every text readable at a 1,400 px page width."""

import math

import matplotlib
import pandas as pd

from initprune.report import figures_seconds

matplotlib.use("Agg")

METHODS = ("random", "kstarts (4)", "dissipating (cubic)", "combined (cubic)")
# per compute, seconds = base * (1 - 0.9 * sparsity), so sparse costs less at every sparsity
BASE = {"dense": 10.0, "sparse": 4.0}
PAGE, DPI = 1400, 150  # the report's page width in px, and the dpi it saves figures at


def _records():
    out = []
    for label in METHODS:
        for compute, base in BASE.items():
            for sparsity in (0.9, 0.98):
                for seed, wobble in ((0, 0.9), (1, 1.1)):
                    out.append({"label": label, "sparsity": sparsity, "compute": compute, "seed": seed,
                                "training_seconds": base * (1 - 0.9 * sparsity) * wobble})
    out.append({"label": "dense", "sparsity": 0.0, "compute": "dense", "training_seconds": 12.0})
    out += [{"label": "snip", "sparsity": 0.9, "compute": "dense", "training_seconds": None},
            {"label": "snip", "sparsity": 0.98, "compute": "dense", "training_seconds": math.nan}]
    return out


def _panels(fig):
    return {ax.get_title(): ax for ax in fig.axes}


def _drawn(ax) -> dict:
    """Label -> (x, y) of what a panel draws: its error-bar lines and its plain lines."""
    out = {c.get_label(): c.lines[0].get_data() for c in ax.containers}
    out.update({ln.get_label(): ln.get_data() for ln in ax.get_lines() if not ln.get_label().startswith("_")})
    return out


def test_each_method_is_drawn_under_each_compute_and_the_ratio_divides_them():
    fig = figures_seconds.seconds_vs_sparsity(_records())
    panels = _panels(fig)
    assert set(panels) == {"compute: dense", "compute: sparse", "sparse compute's saving"}
    for compute, base in BASE.items():
        ax = panels[f"compute: {compute}"]
        drawn = _drawn(ax)
        assert set(drawn) == set(METHODS) | {"dense"}  # snip has no seconds: in no panel
        x, y = drawn["random"]
        pairs = dict(zip([round(float(v), 6) for v in x], [float(v) for v in y]))
        assert set(pairs) == {0.1, 0.02}  # density, the mean over the seeds
        assert math.isclose(pairs[0.1], base * 0.19) and math.isclose(pairs[0.02], base * (1 - 0.9 * 0.98))
        assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    ratio = panels["sparse compute's saving"]
    lines = _drawn(ratio)
    assert set(lines) == {f"{m}, sparse" for m in METHODS}
    assert all(math.isclose(float(v), 0.4) for _, y in lines.values() for v in y)
    dense_y = panels["compute: dense"].get_ylim()
    assert panels["compute: sparse"].get_ylim() == dense_y  # one seconds axis: compared by eye


def test_what_has_no_seconds_is_left_out_with_a_note():
    fig = figures_seconds.seconds_vs_sparsity(_records())
    notes = [t.get_text() for t in fig.texts if t.get_text().startswith("left out")]
    assert notes and notes[0].splitlines()[0] == ("left out: 2 runs without training seconds "
                                                   "(stored before they were measured): snip")
    none = figures_seconds.seconds_vs_sparsity([r for r in _records() if r["label"] != "snip"])
    assert not any("left out" in t.get_text() for t in none.texts)


def test_a_runs_table_works_too_and_a_run_without_compute_computed_dense():
    """Rows as the runs table has them: the label from the method and its options, ``compute``
    from the training settings; a run stored before ``compute`` existed counts as dense."""
    rows = [{"method": "dissipating", "options": {"schedule": "cubic"}, "sparsity": 0.9,
             "training": {}, "training_seconds": 3.0},
            {"method": "dissipating", "options": {"schedule": "cubic"}, "sparsity": 0.9,
             "training": {"compute": "sparse"}, "training_seconds": 1.5}]
    fig = figures_seconds.seconds_vs_sparsity(pd.DataFrame(rows))
    panels = _panels(fig)
    assert set(_drawn(panels["compute: dense"])) == set(_drawn(panels["compute: sparse"])) == {"dissipating (cubic)"}
    assert list(_drawn(panels["sparse compute's saving"])["dissipating (cubic), sparse"][1]) == [0.5]


def test_every_text_is_at_least_9_px_at_the_page_width():
    fig = figures_seconds.seconds_vs_sparsity(_records())
    fig.canvas.draw()
    width = fig.get_figwidth()
    shown = min(PAGE, width * DPI) / (width * DPI)  # a wider image is scaled down to the page
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip() and t.get_visible()]
    assert texts
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() * DPI / 72 * shown < 9]
    assert not small, small


def test_seeds_that_took_the_same_seconds_draw_a_bar_of_no_spread():
    """Three seeds of 0.1 s each average to 0.10000000000000002 s, a hair above their maximum: the
    spread drawn is 0, never a negative error bar that stops the whole report (make demo did)."""
    records = [{"label": "random", "sparsity": 0.9, "compute": "dense", "seed": seed, "training_seconds": 0.1}
               for seed in range(3)]
    fig = figures_seconds.seconds_vs_sparsity(records)
    (bars,) = _panels(fig)["compute: dense"].containers
    assert [float(v) for v in bars.lines[0].get_data()[1]] == [sum([0.1] * 3) / 3]


def test_methods_run_under_auto_alone_draw_without_a_ratio():
    """The offline grid trains every method under compute auto only: no dense compute to divide
    by, so no ratio panel (the figure stopped the grid's report: a dict grew while read)."""
    records = [{"label": m, "sparsity": s, "compute": "auto", "seed": 0, "training_seconds": 2.0 - s}
               for m in ("random", "kstarts") for s in (0.95, 0.98)]
    fig = figures_seconds.seconds_vs_sparsity(records)
    assert set(_panels(fig)) == {"compute: auto"}


def test_the_reports_panels_titles_and_labels_do_not_run_into_each_other():
    """The report draws the panels of a cell side by side at the page's width, the cell named in
    each title: no title or axis label overlaps another (the cell and the compute on one line ran
    into the next panel, and so did the density label; the seconds grid showed it)."""
    from initprune.report import figures as F

    rows = figures_seconds._rows(_records())
    kept = [r for r in rows if r["seconds"] is not None]
    panels = figures_seconds._panels(kept)
    key = ("fashion_mnist", "lenet300")
    fig, grid = F.panel_grid([key], panels)
    figures_seconds._draw({p: grid[(key, p)] for p in panels}, kept, F.title_of(key))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for ax in fig.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    assert len(texts) == 3 * len(panels)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlapping = [(a, b) for i, (a, box) in enumerate(boxes) for b, other in boxes[i + 1:] if box.overlaps(other)]
    assert not overlapping, overlapping
