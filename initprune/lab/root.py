"""The lab's root: the clone of the project whose ``notebooks/``, ``mlruns/``, ``figures/`` and
git history the lab works in. The core needs none (its data folder is its own business).

``$INITPRUNE_ROOT`` names it; else the clone that holds this package (a checkout run in place, or
installed editable); else the nearest folder at or above the working directory that is a clone
(a wheel installed elsewhere, used from inside a clone). Outside any clone the lab says so in one
line.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import InitpruneError

ENV = "INITPRUNE_ROOT"


def is_clone(folder: Path) -> bool:
    """Whether ``folder`` is a clone of the project: its notebooks beside its package."""
    return (folder / "notebooks").is_dir() and (folder / "initprune").is_dir() and (folder / "pyproject.toml").is_file()


def find() -> Path | None:
    """The lab's root, or None outside any clone (``$INITPRUNE_ROOT`` is taken as given)."""
    given = os.environ.get(ENV)
    if given:
        return Path(given).expanduser().resolve()
    here = Path(__file__).resolve().parents[2]  # the folder that holds the package
    if is_clone(here):
        return here
    cwd = Path.cwd().resolve()
    return next((folder for folder in (cwd, *cwd.parents) if is_clone(folder)), None)


def root() -> Path:
    """The lab's root; an InitpruneError in one line where there is none."""
    found = find()
    if found is None:
        raise InitpruneError(f"{Path.cwd()} is not inside a clone of initprune, whose notebooks/ and mlruns/ the "
                             f"lab uses: run this from the clone, or set {ENV} to its folder")
    if not is_clone(found):
        raise InitpruneError(f"{ENV}={found} is not a clone of initprune (no notebooks/, initprune/ and "
                             "pyproject.toml there): set it to the clone's folder")
    return found


def git_commit() -> str:
    """The short commit of the lab's root, which every execution's run records; "unknown" where
    there is none (no clone, no git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root(), capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError, InitpruneError):
        return "unknown"
