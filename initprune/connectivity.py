"""Effective sparsity (Vysogorets & Kempe 2023): the prunable weights that are removed or can
carry no signal from the input to the logits, and the classes no path reaches.

A kept weight carries signal only if its input unit has a path of kept weights from the input
and its output unit has one to the logits. A unit is a feature of a Linear's input or output, or
one position of one channel of a conv's: kernel entry (o, c, t) joins position p of output
channel o to position p * stride - padding + t * dilation of input channel c, where that
position exists; where it falls in the padding the entry reads nothing there. Paths are counted
from the input only: a unit fed by nothing but its bias (or a batch norm's shift, or padding)
outputs a constant, which carries no information about the input, so it counts as cut off, and
so does every weight leaving it. A Flatten maps each position of each channel to its feature.

The chain of layers is read from the module order of an ``nn.Sequential`` (nested ones
included, not a subclass with its own ``forward``), which is its forward order. It is exact for
chains of ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` (zero padding; any stride, dilation
and groups) with, between them, modules that act on each unit separately (activations, dropout,
batch norm), pooling (max, average, adaptive: an output position joined to its window's
positions) and ``nn.Flatten`` / ``nn.Unflatten``, given the shape of one input
(``input_shape``, as a dataset's). Without it only a chain whose first layer is a Linear is
analysed, its input a vector of ``in_features``. Any other model (a conv chain without its input
shape, a custom ``forward``, residual connections, layer norm, softmax, a weight used twice,
another padding mode, a dilated max pool) is not analysed: the result is the nominal sparsity
with no dead class counted, flagged ``exact=False``.

How: each module is replaced by its pattern, a map linear in its input with non-negative
coefficients, positive exactly where the module joins an input unit to an output unit (a layer's
weights its 0/1 mask and no bias, activations the identity, max pooling an average over the same
windows). On an input of ones a unit's pattern value is positive exactly when a path reaches it;
the gradient of a module's pattern weighted by its output units that reach the logits is
positive exactly at its input units that reach them, and at the kept weights that join a fed
unit to one of those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import masks
from .errors import InitpruneError

# modules that act on each unit to itself: a cut-off unit stays cut off through them
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus,
               nn.Hardtanh, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d)
# modules whose own forward is already their pattern: linear, non-negative on every unit they join
OWN_PATTERN = (nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
CONVS = (nn.Conv1d, nn.Conv2d)

Pattern = Callable[[Tensor, Tensor | None], Tensor]  # (input units, a layer's 0/1 weights) -> output units


@dataclass(frozen=True)
class Effective:
    sparsity: float  # fraction of the prunable weights removed or on no input-to-logits path
    dead_classes: int  # logits that no path from the input reaches
    exact: bool  # False: the model is not a chain this module analyses; sparsity is the nominal one


def pattern(module: nn.Module) -> Pattern | None:
    """The pattern of one module of a chain (see the module's doc), or None if it has none here."""
    if isinstance(module, nn.Linear):
        return lambda x, w: F.linear(x, w)
    if isinstance(module, CONVS):
        if module.padding_mode != "zeros":  # reflected or circular padding copies real positions
            return None
        conv = F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d
        return lambda x, w: conv(x, w, None, module.stride, module.padding, module.dilation, module.groups)
    if isinstance(module, ELEMENTWISE):
        return lambda x, w: x
    if isinstance(module, OWN_PATTERN):
        return lambda x, w: module(x)
    if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)) and not module.return_indices:
        pool = F.adaptive_avg_pool1d if isinstance(module, nn.AdaptiveMaxPool1d) else F.adaptive_avg_pool2d
        return lambda x, w: pool(x, module.output_size)  # the same windows
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)) and not module.return_indices:
        if module.dilation not in (1, (1,), (1, 1)):
            return None
        pool = F.avg_pool1d if isinstance(module, nn.MaxPool1d) else F.avg_pool2d
        return lambda x, w: pool(x, module.kernel_size, module.stride, module.padding, module.ceil_mode)
    return None


def chain(model: nn.Module) -> list[nn.Module] | None:
    """The modules of ``model`` in forward order, if it is a chain analysed exactly; else None."""
    modules: list[nn.Module] = []

    def walk(module: nn.Module) -> bool:
        if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
            return all(walk(m) for m in module)
        modules.append(module)
        return pattern(module) is not None

    layers = [m for m in modules if isinstance(m, masks.PRUNABLE)] if walk(model) else []
    if not layers or len({id(m.weight) for m in layers}) != len(layers):
        return None
    return modules


def effective(model: nn.Module, mask: masks.Mask, input_shape: Sequence[int] | None = None) -> Effective:
    """Effective sparsity and dead classes of ``model`` under ``mask`` for inputs of shape
    ``input_shape`` (one input's, without the batch; see the module's doc)."""
    nominal = Effective(masks.sparsity(mask), 0, False)
    modules = chain(model)
    if modules is None:
        return nominal
    names = {id(w): n for n, w in masks.prunable(model).items()}
    layers = [m for m in modules if isinstance(m, masks.PRUNABLE)]
    if {names[id(m.weight)] for m in layers} != set(mask):
        return nominal
    given = input_shape is not None
    if not given:
        if not isinstance(layers[0], nn.Linear):
            return nominal  # a conv's positions depend on the input's length or size
        # whatever comes before the first layer (flatten, activations) leaves every unit fed
        modules = modules[next(i for i, m in enumerate(modules) if m is layers[0]):]
        input_shape = (layers[0].in_features,)
    with torch.inference_mode(False), torch.enable_grad():  # whatever mode the caller is in
        weights = {id(m): mask[names[id(m.weight)]].detach().to("cpu", torch.float32) for m in layers}
        steps = [(pattern(m), weights.get(id(m))) for m in modules]
        try:
            fed = _fed(steps, tuple(input_shape))
        except RuntimeError as err:  # the shapes do not follow through the chain
            if not given:
                return nominal
            raise InitpruneError(f"the model's layers do not take inputs of shape {tuple(input_shape)}: "
                                 f"{str(err).splitlines()[0]}; give the shape of one input, without the batch"
                                 ) from None
        return _count(steps, fed, mask)


def _fed(steps: list[tuple[Pattern, Tensor | None]], input_shape: tuple[int, ...]) -> list[Tensor]:
    """The units each module receives with a path from the input (1.0) or none (0.0), and last
    the logits."""
    fed = [torch.ones(1, *input_shape, dtype=torch.float32, device="cpu")]
    for step, w in steps:
        fed.append((step(fed[-1], w) > 0).float())
    return fed


def _count(steps: list[tuple[Pattern, Tensor | None]], fed: list[Tensor], mask: masks.Mask) -> Effective:
    """Dead classes and effective sparsity, walking back from the logits: the units with a path
    to them, and the kept weights that join a fed unit to one of those."""
    dead_classes = int((fed[-1] == 0).sum())
    reach = torch.ones_like(fed[-1])
    alive = 0
    for (step, w), x in zip(reversed(steps), reversed(fed[:-1])):
        x = x.detach().requires_grad_()
        if w is None:
            (into,) = torch.autograd.grad((step(x, w) * reach).sum(), [x])
        else:
            w = w.detach().requires_grad_()
            into, joined = torch.autograd.grad((step(x, w) * reach).sum(), [x, w])
            alive += int(((joined > 0) & (w > 0)).sum())
        reach = (into > 0).float()
    return Effective(1.0 - alive / masks.total(mask), dead_classes, True)
