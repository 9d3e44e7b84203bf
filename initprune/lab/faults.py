"""Fault injection for tests: hooks the code passes through, inert unless a test sets
INITPRUNE_TEST_PAUSE or INITPRUNE_INJECT_FAILURE."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spec import RunSpec


def pause(stage: str) -> None:
    """Fault injection for tests: INITPRUNE_TEST_PAUSE='stage:seconds[:marker]' holds a point at
    'training' (its run just opened), 'logging' (metrics half written) or 'notebook' (executed,
    not yet stored), so that a test can kill the sweep exactly there; with a marker file, only the
    first point to get there waits."""
    spec = os.environ.get("INITPRUNE_TEST_PAUSE", "")
    if spec.startswith(f"{stage}:"):
        _, seconds, *marker = spec.split(":", 2)
        if marker:
            try:
                with Path(marker[0]).open("x") as f:
                    f.write(str(os.getpid()))  # which process holds the point, for the test to find
            except FileExistsError:
                return
        time.sleep(float(seconds))


def inject_failure(config: RunSpec) -> None:
    """Fault injection for tests: INITPRUNE_INJECT_FAILURE='method:seed' fails that point once
    per marker file, so that a retry can be shown to succeed."""
    spec = os.environ.get("INITPRUNE_INJECT_FAILURE")
    if spec and spec.split(":")[:2] == [config.method, str(config.seed)]:
        marker = spec.split(":", 2)[2] if spec.count(":") >= 2 else ""
        if not marker or not Path(marker).exists():
            if marker:
                Path(marker).touch()
            raise RuntimeError(f"injected failure at {config.method} seed {config.seed}")

