"""Effective sparsity (Vysogorets & Kempe 2023): the prunable weights that are removed or can
carry no signal from the input to the logits, and the classes no path reaches.

A kept weight carries signal only if its input unit (a feature, or a channel of a conv) has a
path of kept weights from the input and its output unit has one to the logits. Paths are counted
from the input only: a unit fed by nothing but its bias (or a batch norm's shift) outputs a
constant, which carries no information about the input, so it counts as cut off, and so does
every weight leaving it.

The chain of layers is read from the module order of an ``nn.Sequential`` (nested ones
included), which is its forward order. It is exact for chains of ``nn.Linear``, ``nn.Conv1d``
and ``nn.Conv2d`` (ungrouped) with, between them, modules that act on each unit or channel
separately (activations, dropout, batch norm, pooling) and ``nn.Flatten``; convolutions at the
level of channels (two channels are connected if any entry of their kernel is kept), a Flatten
between a conv and a Linear mapping each channel to its block of features. Any other model
(a custom ``forward``, residual connections, layer norm, softmax, a weight used twice) is not
analysed: the result is the nominal sparsity with no dead class counted, flagged ``exact=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import masks

# modules that keep each unit or channel to itself: a cut-off unit stays cut off through them
PASSTHROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus,
               nn.Hardtanh, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d,
               nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
               nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.Flatten)


@dataclass(frozen=True)
class Effective:
    sparsity: float  # fraction of the prunable weights removed or on no input-to-logits path
    dead_classes: int  # logits that no path from the input reaches
    exact: bool  # False: the model is not a chain this module analyses; sparsity is the nominal one


def chain(model: nn.Module) -> list[tuple[nn.Module, bool]] | None:
    """The prunable layers of ``model`` in forward order, each with whether an ``nn.Flatten``
    comes between it and the layer before, if the model is a chain analysed exactly; else None."""
    layers: list[tuple[nn.Module, bool]] = []
    flat = False

    def walk(module: nn.Module) -> bool:
        nonlocal flat
        if isinstance(module, nn.Sequential):
            return all(walk(m) for m in module)
        if isinstance(module, masks.PRUNABLE):
            if getattr(module, "groups", 1) != 1:
                return False
            layers.append((module, flat))
            flat = False
            return True
        flat = flat or isinstance(module, nn.Flatten)
        return isinstance(module, PASSTHROUGH)

    if not walk(model) or not layers or len({id(m.weight) for m, _ in layers}) != len(layers):
        return None
    return layers


def _units(module: nn.Module, mask: Tensor) -> Tensor:
    """Connectivity (out units, in units) of a layer: True where some kept weight joins them."""
    return mask.flatten(2).any(2) if isinstance(module, (nn.Conv1d, nn.Conv2d)) else mask


def effective(model: nn.Module, mask: masks.Mask) -> Effective:
    """Effective sparsity and dead classes of ``model`` under ``mask`` (see the module's doc)."""
    nominal = Effective(masks.sparsity(mask), 0, False)
    found = chain(model)
    if found is None:
        return nominal
    layers = [m for m, _ in found]
    names = {id(w): n for n, w in masks.prunable(model).items()}
    if set(names.values()) != set(mask):
        return nominal
    conn = [_units(m, mask[names[id(m.weight)]].cpu()) for m in layers]
    # block[i]: input features of layer i per output unit of layer i - 1 (1, or a flattened channel's size)
    block = [1]
    for i in range(1, len(layers)):
        units, inputs = conn[i - 1].shape[0], conn[i].shape[1]
        # a Linear may read a flattened conv's channels in blocks; anything else must match one to one
        blocks = found[i][1] and isinstance(layers[i - 1], (nn.Conv1d, nn.Conv2d)) and isinstance(layers[i], nn.Linear)
        if inputs != units and not (blocks and inputs % units == 0):
            return nominal
        block.append(inputs // units)
    # forward: units with a path from the input
    fed = [torch.ones(conn[0].shape[1], dtype=torch.bool)]
    for i, a in enumerate(conn):
        out = (a & fed[i]).any(1)
        if i + 1 < len(conn):
            fed.append(out.repeat_interleave(block[i + 1]))
    dead_classes = int((~out).sum())
    # backward: units with a path to the logits
    reach = [torch.ones(conn[-1].shape[0], dtype=torch.bool)]
    for i in range(len(conn) - 1, 0, -1):
        into = (conn[i] & reach[0][:, None]).any(0)
        reach.insert(0, into.view(-1, block[i]).any(1))
    alive = 0
    for m, f, r in zip(layers, fed, reach):
        kept = mask[names[id(m.weight)]].cpu()
        on_path = r[:, None] & f[None, :]
        alive += int((kept.flatten(2).sum(2) if kept.dim() > 2 else kept.long())[on_path].sum())
    return Effective(1.0 - alive / masks.total(mask), dead_classes, True)
