"""What the figures and the claims both read of the registry, one definition each: a method's
entry, its declared defaults and labels, its family, and the allocation regime a run belongs to
(docs/method.md, "The verdict": **uniform**, every scope option of every method ``layerwise``;
**free**, random positions spread by ERK, every ranking global, each method's free allocation
declared with it: ``Pruner.free``). A method the registry does not know (a plugin no longer
installed) has no entry: no defaults, no line options, the family "baseline".
"""

from __future__ import annotations

import itertools

from .. import pruners
from ..errors import InitpruneError
from . import labels

REGIMES = ("uniform", "free")
UNIFORM = "layerwise"  # every scope option of the uniform regime
FREE_RANKED = "global"  # a scope option of the free regime that its method does not declare otherwise

label = pruners.label  # "dissipating (cubic)"
base = labels.base  # "dissipating (cubic) [epochs=2]" -> "dissipating"


def entry(method: str):
    """The method's registry entry; None for one the registry does not know."""
    return pruners.PRUNERS[method] if method in pruners.PRUNERS else None


def dense(method: str) -> bool:
    """A method that keeps every weight (the dense ceiling of a cell)."""
    found = entry(method)
    return found is not None and found.fixed_sparsity == 0


def lines(method: str) -> tuple[str, ...]:
    """The options whose every value is a label of its own (dissipating's schedule)."""
    found = entry(method)
    return found.lines if found is not None else ()


def defaults(method: str) -> dict:
    """The method's declared options and their defaults."""
    found = entry(method)
    return {} if found is None else {o.name: o.default for o in found.declared()}


def family(method: str) -> str:
    """"paper", "control", "baseline" or "reference" (a plugin's own word where it declares one)."""
    found = entry(method)
    return found.family if found is not None else "baseline"


def resolved(method: str, options: dict | None) -> dict:
    """The method's options as the run held them: the registry's defaults, then the run's own."""
    return {**defaults(method), **(options if isinstance(options, dict) else {})}


def free(method: str) -> dict:
    """The method's allocation in the free regime (``Pruner.free``)."""
    found = entry(method)
    return dict(found.free) if found is not None else {}


def scope_keys(method: str, values: dict) -> set[str]:
    """The options that allocate the method's weights over the layers."""
    return {"scope"} | {k for k in values if k.endswith("_scope")} | set(free(method))


def regime(method: str, options: dict | None) -> str | None:
    """"uniform", "free", or None for an allocation that is neither (random with global scope)."""
    values = resolved(method, options)
    keys = scope_keys(method, values)
    held = {k: values.get(k, UNIFORM) for k in keys}  # an option the method lacks: layerwise
    if all(v == UNIFORM for v in held.values()):
        return "uniform"
    if held == {k: free(method).get(k, FREE_RANKED) for k in keys}:
        return "free"
    return None


def declared_labels(method: str) -> list[str]:
    """Every label of a method: one per combination of the values its line options take."""
    found = entry(method)
    if found is None:
        return [method]
    declared = {o.name: o for o in found.declared()}
    keys = [k for k in found.lines if k in declared]
    if any(not declared[k].choices for k in keys):
        raise InitpruneError(f"method '{method}': a line option ({', '.join(keys)}) must declare its choices")
    return [label(method, dict(zip(keys, combo))) for combo in itertools.product(*(declared[k].choices for k in keys))]


def values_of(method: str, name: str) -> dict:
    """The values of the line options that label ``name`` of ``method`` holds ({} where none)."""
    found = entry(method)
    keys = lines(method)
    if found is None or not keys:
        return {}
    declared = {o.name: o for o in found.declared()}
    for combo in itertools.product(*(declared[k].choices for k in keys)):
        if label(method, dict(zip(keys, combo))) == name:
            return dict(zip(keys, combo))
    return {}
