"""Progress bars on a terminal.

A terminal gets plain tqdm, as wide as the terminal says it is, or 80 columns where it says 0 (a
pseudo-terminal nobody sized: ``script`` run without a terminal, some CI and container runners;
tqdm would trim its bar to nothing there).
"""

from __future__ import annotations

import os


def on_terminal(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def terminal_bar(stream, **kwargs):
    """Plain tqdm (never a notebook widget) on ``stream``, a terminal."""
    from tqdm import tqdm

    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        width = 0
    if width > 0:
        return tqdm(file=stream, dynamic_ncols=True, **kwargs)
    return tqdm(file=stream, ncols=int(os.environ.get("COLUMNS", "0") or 0) or 80, **kwargs)
