"""Progress bars: one on a terminal, one per cell in a notebook, none in a log.

A terminal gets plain tqdm, as wide as the terminal says it is, or 80 columns where it says 0 (a
pseudo-terminal nobody sized: ``script`` run without a terminal, some CI and container runners;
tqdm would trim its bar to nothing there). A notebook gets one widget per cell, reset by each run
that the cell starts: JupyterLab hides a cell's outputs beyond 50, and a widget is an output.
Anywhere else (a log, a pipe, pytest), no bar: what a run did is in its result.
"""

from __future__ import annotations

import os
import sys

_cell: tuple[int, object] | None = None  # (the notebook cell's execution count, its bar)


def on_terminal(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def terminal_bar(stream, **kwargs):
    """Plain tqdm (never a notebook widget) on ``stream``, a terminal."""
    from tqdm import tqdm

    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        size = None
    if size is not None and size.columns > 0 and size.lines > 0:
        return tqdm(file=stream, dynamic_ncols=True, **kwargs)
    # told 0 x 0, tqdm would draw nothing: a bar trimmed to 0 columns, on a line past the last row
    return tqdm(file=stream, ncols=_given("COLUMNS", 80), nrows=_given("LINES", 24), **kwargs)


def _given(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def _notebook_cell() -> int | None:
    """The execution count of the notebook cell that runs now; None outside a notebook's kernel."""
    ipython = sys.modules.get("IPython")  # never imported here: a notebook's kernel has
    shell = ipython.get_ipython() if ipython is not None else None
    if type(shell).__name__ != "ZMQInteractiveShell":
        return None
    return shell.execution_count


def bar(total: int, desc: str, unit: str):
    """A bar over ``total`` units of one run, on stderr: a new one on a terminal, the cell's one
    (reset) in a notebook, else None. ``done`` ends it."""
    global _cell
    shape = f"{{l_bar}}{{bar}}| {{n_fmt}}/{{total_fmt}} {unit}s [{{elapsed}}<{{remaining}}]"
    cell = _notebook_cell()
    if cell is None:  # drawn at each epoch's end, whenever it comes
        if not on_terminal(sys.stderr):
            return None
        return terminal_bar(sys.stderr, total=total, desc=desc, unit=unit, leave=False, bar_format=shape,
                            mininterval=0)
    if _cell is not None and _cell[0] == cell:
        shown = _cell[1]
        shown.reset(total=total)
        shown.set_description(desc, refresh=True)
        return shown
    try:
        from tqdm.notebook import tqdm

        shown = tqdm(total=total, desc=desc, unit=unit, bar_format=shape, mininterval=0)
    except ImportError:  # no ipywidgets: no bar rather than a text bar per run
        return None
    _cell = (cell, shown)
    return shown


def done(shown) -> None:
    """A run's bar at its end: a terminal's is closed (cleared); a notebook cell's stays, for the
    cell's next run to reset."""
    if shown is not None and (_cell is None or _cell[1] is not shown):
        shown.close()
