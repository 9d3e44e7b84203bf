"""One registry style for pruners, models and datasets: register by name, look up by name.

Entries come from initprune itself and from plugins: a package's entry points in the groups
``initprune.pruners``, ``initprune.models`` and ``initprune.datasets``, or the modules named in
``INITPRUNE_PLUGINS=mod1,mod2``. Plugins are imported on the first lookup in any registry, so
that every process that looks an entry up (a notebook's kernel, a cluster's worker) has them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import InitpruneError

T = TypeVar("T")
GROUPS = ("initprune.pruners", "initprune.models", "initprune.datasets")
_plugins_loaded = False


def _origin(entry) -> str:
    """The module that declared an entry (a dataset's loader for a dataset)."""
    return getattr(getattr(entry, "load", None) or entry, "__module__", "?")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Add an entry under ``name``. A name taken by another module is an error naming both
        (the same module may register again: a reloaded plugin, a rerun notebook cell)."""

        def add(entry: T) -> T:
            old = self._entries.get(name)
            if old is not None and _origin(old) != _origin(entry):
                raise InitpruneError(f"{self.kind} '{name}' is registered twice: by {_origin(old)} and by "
                                     f"{_origin(entry)}; rename one of them")
            self._entries[name] = entry
            return entry

        return add

    def __getitem__(self, name: str) -> T:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise InitpruneError(
                f"unknown {self.kind} '{name}'; choose one of: {', '.join(self.names())}"
            ) from None

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries

    def names(self) -> list[str]:
        load_plugins()
        return list(self._entries)


def plugins() -> list[tuple[str, Callable[[], object]]]:
    """(what to call it in an error, how to import it) for every plugin, entry points first."""
    declared = entry_points()  # one scan of the installed packages
    found = [(f"entry point '{ep.name} = {ep.value}' ({ep.group})", ep.load)
             for group in GROUPS for ep in declared.select(group=group)]
    for module in filter(None, (m.strip() for m in os.environ.get("INITPRUNE_PLUGINS", "").split(","))):
        found.append((f"plugin '{module}' (INITPRUNE_PLUGINS)", lambda module=module: importlib.import_module(module)))
    return found


def load_plugins() -> None:
    """Import every plugin once per process; one that fails is one line naming it, every time
    a registry is asked, until it is fixed or removed."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # a plugin that looks an entry up while it is imported must not recurse
    from . import data, models, pruners  # noqa: F401  the built-ins first: a clash names the plugin

    for where, load in plugins():
        try:
            load()
        except Exception as err:
            _plugins_loaded = False
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            what = first if isinstance(err, InitpruneError) else f"{type(err).__name__}: {first}"
            raise InitpruneError(f"{where} failed to load: {what}; fix it, or uninstall it / remove it "
                                 "from INITPRUNE_PLUGINS") from None
