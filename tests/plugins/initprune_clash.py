"""A plugin that registers a name initprune already has."""

from dataclasses import dataclass

from initprune.pruners import PRUNERS, Pruner


@PRUNERS.register("snip")
@dataclass
class NotSnip(Pruner):
    """Not SNIP."""
