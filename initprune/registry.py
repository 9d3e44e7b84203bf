"""One registry style for pruners, models, datasets and tasks: register by name, look up by name.

Entries come from initprune itself and from plugins: a package's entry points in the groups
``initprune.pruners``, ``initprune.models``, ``initprune.datasets`` and ``initprune.tasks``, or the modules named in
``INITPRUNE_PLUGINS=mod1,mod2``. Plugins are imported on the first lookup in any registry, so
that every process that looks an entry up (a notebook's kernel, a cluster's worker) has them.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from .errors import InitpruneError

T = TypeVar("T")
GROUPS = ("initprune.pruners", "initprune.models", "initprune.datasets", "initprune.tasks")
_plugins_loaded = False
_plugin_roots: list[str] = []  # where the INITPRUNE_PLUGINS modules were found

# initprune's own entries, by registry, in the order they are registered: what the command line
# checks a name against before it imports torch (``run --method nope`` answers at once). A registry
# refuses an entry of initprune's own that is not declared here.
BUILT_IN = {
    "method": ("dense", "random", "kstarts", "dissipating", "combined", "gradual_random", "gradual_magnitude",
               "kstarts_gradual_random", "magnitude", "snip", "grasp", "synflow", "posttrain"),
    "dataset": ("digits", "mnist1d", "mnist", "fashion_mnist", "mnist5k", "cifar10"),
    "architecture": ("mlp", "lenet300", "lenet5", "conv6", "cnn1d", "resnet20", "autoencoder"),
    "task": ("classification", "reconstruction"),
}


def _origin(entry) -> tuple[str, str]:
    """Who declared an entry: (module, qualified name) of the class or function, or of a
    dataset's loader."""
    declared = getattr(entry, "load", None) or entry
    return getattr(declared, "__module__", "?"), getattr(declared, "__qualname__", str(id(declared)))


class Registry(Generic[T]):
    """Entries by name. ``check(name, entry)`` refuses an entry the rest of initprune could not
    use, when it is registered, so that a plugin's slip is one line at import."""

    def __init__(self, kind: str, check: Callable[[str, T], None] | None = None):
        self.kind, self.check = kind, check
        self._entries: dict[str, T] = {}
        self._attached: dict[str, dict[str, list]] = {}  # name: {what: [functions]}

    def register(self, name: str) -> Callable[[T], T]:
        """Add an entry under ``name``. A name another declaration has is an error naming both
        (the same declaration may register again: a reloaded plugin, a rerun notebook cell)."""

        def add(entry: T) -> T:
            old = self._entries.get(name)
            if old is not None and _origin(old) != _origin(entry):
                raise InitpruneError(f"{self.kind} '{name}' is registered twice: by {_origin(old)[0]} and by "
                                     f"{_origin(entry)[0]}; rename one of them")
            own = BUILT_IN.get(self.kind)
            if own is not None and name not in own and _origin(entry)[0].startswith("initprune."):
                raise InitpruneError(f"{self.kind} '{name}' of initprune's own is not declared in "
                                     f"initprune.registry.BUILT_IN['{self.kind}']; add it there")
            if self.check is not None:
                self.check(name, entry)
            self._entries[name] = entry
            return entry

        return add

    def __getitem__(self, name: str) -> T:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            raise InitpruneError(_unknown(self.kind, name, self.names())) from None

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._entries

    def names(self) -> list[str]:
        load_plugins()
        return list(self._entries)

    def attach(self, what: str, *names: str) -> Callable:
        """Add the decorated function to the entries ``names`` under ``what``: how a layer above this
        registry's (the report's figures of a method) adds to an entry whose module may not import
        it. The entries must be registered; the same function attached again replaces itself."""

        def add(function):
            for name in names:
                if name not in self._entries:
                    raise InitpruneError(f"{what} {getattr(function, '__name__', function)!s}: no {self.kind} "
                                         f"'{name}' to attach it to; register the {self.kind} first, or "
                                         f"choose one of: {', '.join(self._entries)}")
                mine = self._attached.setdefault(name, {}).setdefault(what, [])
                mine[:] = [f for f in mine if _origin(f) != _origin(function)] + [function]
            return function

        return add

    def attached(self, name: str, what: str) -> list:
        """The functions attached to entry ``name`` under ``what``, in the order they were."""
        load_plugins()
        return list(self._attached.get(name, {}).get(what, []))

    @contextlib.contextmanager
    def scratch(self):
        """Entries registered (and functions attached) inside are forgotten after (trying a pruner
        out in a notebook, tests)."""
        saved = dict(self._entries)
        attached = {n: {w: list(fs) for w, fs in kinds.items()} for n, kinds in self._attached.items()}
        try:
            yield self
        finally:
            self._entries.clear()
            self._entries.update(saved)
            self._attached.clear()
            self._attached.update(attached)


def unknown(kind: str, name: str) -> str | None:
    """Without importing anything: the error for a name that is none of initprune's own ``kind``s
    where no plugin is declared, as the registry says it once loaded; None when the name is
    built in, or may be a plugin's (entry points and INITPRUNE_PLUGINS name modules, not the
    entries they register: only loading them tells)."""
    if name in BUILT_IN[kind] or os.environ.get("INITPRUNE_PLUGINS", "").strip():
        return None
    declared = entry_points()
    if any(declared.select(group=group) for group in GROUPS):
        return None
    return _unknown(kind, name, BUILT_IN[kind])


def _unknown(kind: str, name: str, names) -> str:
    return f"unknown {kind} '{name}'; choose one of: {', '.join(names)}"


def plugins() -> list[tuple[str, Callable[[], object]]]:
    """(what to call it in an error, how to import it) for every plugin, entry points first."""
    declared = entry_points()  # one scan of the installed packages
    found = [(f"entry point '{ep.name} = {ep.value}' ({ep.group})", ep.load)
             for group in GROUPS for ep in declared.select(group=group)]
    for module in filter(None, (m.strip() for m in os.environ.get("INITPRUNE_PLUGINS", "").split(","))):
        found.append((f"plugin '{module}' (INITPRUNE_PLUGINS)", lambda module=module: importlib.import_module(module)))
    return found


def load_plugins(again: bool = False) -> None:
    """Import every plugin once per process (``again``: look for plugins anew); one that fails is
    one line naming it, every time a registry is asked, until it is fixed or removed."""
    global _plugins_loaded
    if _plugins_loaded and not again:
        return
    # a plugin that looks an entry up while it is imported must not recurse. The built-ins are
    # registered first (by their registry's module, as it is imported: before any lookup in it, and
    # before a plugin can register there), so a clash names the plugin
    _plugins_loaded = True

    for where, load in plugins():
        try:
            found = load()
            if where.endswith("(INITPRUNE_PLUGINS)") and getattr(found, "__file__", None):
                _plugin_roots.append(_root(found))
        except (Exception, SystemExit) as err:  # sys.exit at import would end every command, silently
            _plugins_loaded = False
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            what = first if isinstance(err, InitpruneError) else f"{type(err).__name__}: {first}"
            raise InitpruneError(f"{where} failed to load: {what}; fix it, or uninstall it / remove it "
                                 "from INITPRUNE_PLUGINS") from None


def _root(module) -> str:
    """The folder a module was imported from: what makes it importable elsewhere."""
    path = Path(module.__file__).resolve()
    depth = module.__name__.count(".") + (path.name == "__init__.py")
    return str(path.parents[depth])


def plugin_paths() -> list[str]:
    """The folders of the plugins named by INITPRUNE_PLUGINS, for processes this one starts (a
    sweep's notebook kernels), which may not share its working directory."""
    load_plugins()
    return list(dict.fromkeys(_plugin_roots))
