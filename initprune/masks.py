"""Masks over the prunable weights, and the one top-k selection every pruner uses.

A mask is a plain ``{parameter name: bool tensor}``, True = kept, over the ``weight`` of every
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``. Selection is by index (a stable sort), never by a
threshold value, so ties cannot change how many weights are kept.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
from torch import Tensor, nn

from .errors import InitpruneError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
SCOPES = ("layerwise", "global", "erk")

Mask = dict[str, Tensor]


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The prunable weights of ``model``, by their ``named_parameters`` name: a weight that
    several layers share (weight tying) is one weight with one mask, under its first name."""
    weights, seen = {}, set()
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            _check_layer(name, module)
        if isinstance(module, PRUNABLE) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            weights[f"{name}.weight" if name else "weight"] = module.weight
    if not weights:
        raise InitpruneError(
            f"{type(model).__name__} has no nn.Linear/nn.Conv1d/nn.Conv2d layer to prune; "
            "build the model from those layers"
        )
    return weights


def _check_layer(name: str, module: nn.Module) -> None:
    """A layer whose forward uses the weight a mask zeroes, and that holds values: else one line."""
    layer = f"layer '{name or 'the model'}' ({type(module).__name__})"
    if isinstance(module.weight, nn.parameter.UninitializedParameter):
        raise InitpruneError(f"{layer} is lazy and has no weights yet; call the model once on a batch of "
                             "inputs before pruning it")
    if module._parameters.get("weight") is not module.weight:
        # weight_norm, a parametrization, torch.nn.utils.prune: the forward recomputes the weight from
        # other tensors, so zeroing it would report a sparsity the forward does not have
        raise InitpruneError(f"{layer} computes its weight from other tensors (weight_norm, a "
                             "parametrization or torch.nn.utils.prune); remove that first "
                             "(torch.nn.utils.parametrize.remove_parametrizations, torch.nn.utils.remove_weight_norm "
                             "or torch.nn.utils.prune.remove)")
    if module.weight.is_meta:
        raise InitpruneError(f"{layer} is on the meta device and has no values; materialize the model first "
                             "(model.to_empty(device='cpu'), then initialize its weights)")


def n_keep(numel: int, sparsity: float) -> int:
    """Weights kept of ``numel`` at ``sparsity``: round((1 - s) n), at least 1."""
    return max(1, math.floor((1.0 - sparsity) * numel + 0.5))


def dense(model: nn.Module) -> Mask:
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in prunable(model).items()}


def kept(mask: Mask) -> int:
    return sum(int(m.sum()) for m in mask.values())


def total(mask: Mask) -> int:
    return sum(m.numel() for m in mask.values())


def sparsity(mask: Mask) -> float:
    """Fraction of the prunable weights removed."""
    return 1.0 - kept(mask) / total(mask)


def layer_counts(mask: Mask) -> dict[str, dict[str, int]]:
    return {name: {"numel": m.numel(), "kept": int(m.sum())} for name, m in mask.items()}


def erk_counts(shapes: dict[str, tuple[int, ...]], sparsity: float,
               available: dict[str, int] | None = None) -> dict[str, int]:
    """Kept weights per layer under the ERK allocation (Evci et al. 2020) at ``sparsity``.

    A layer's density is proportional to the sum of its weight tensor's dims over their product,
    so its kept count is proportional to the sum of its dims (n_in + n_out for a Linear,
    c_in + c_out + k_h + k_w for a Conv2d). The scale is chosen so that the counts add up to
    exactly round((1 - s) N), N all the weights; a layer that would get more than it holds is
    kept whole (with ``available``, the weights it still holds: a mask only shrinks) and the
    others rescaled, and a layer that would get less than 1 weight gets 1, until neither happens
    (a water-filling, computed exactly in fractions). The fractional counts are then made
    integers by largest remainder, a tie going to the earlier layer. The total is never below
    one weight per layer, nor above what the layers hold.
    """
    names = list(shapes)
    numel = {n: math.prod(shapes[n]) for n in names}
    cap = {n: numel[n] if available is None else max(1, min(numel[n], available[n])) for n in names}
    target = min(max(len(names), n_keep(sum(numel.values()), sparsity)), sum(cap.values()))
    weight = {n: sum(shapes[n]) for n in names}  # density * numel, up to the common scale

    def counts(scale: Fraction) -> dict[str, Fraction]:
        return {n: min(max(scale * weight[n], Fraction(1)), Fraction(cap[n])) for n in names}

    # f(scale) = sum of the clipped counts is piecewise linear and nondecreasing: find the piece
    # holding the target, then the scale on it
    points = sorted({Fraction(v, weight[n]) for n in names for v in (1, cap[n])})
    value = [sum(counts(p).values()) for p in points]
    scale = points[-1]
    for lo, hi, f_lo, f_hi in zip(points, points[1:], value, value[1:]):
        if f_lo <= target <= f_hi:
            scale = lo if f_hi == f_lo else lo + (target - f_lo) * (hi - lo) / (f_hi - f_lo)
            break
    share = counts(scale)
    out = {n: math.floor(share[n]) for n in names}
    order = sorted(range(len(names)), key=lambda i: (-(share[names[i]] - out[names[i]]), i))
    for i in order[: target - sum(out.values())]:
        out[names[i]] += 1
    return out


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise InitpruneError(f"unknown scope '{scope}'; choose one of: {', '.join(SCOPES)}")


def select(
    scores: dict[str, Tensor],
    sparsity: float,
    scope: str = "layerwise",
    within: Mask | None = None,
    keep: dict[str, int] | int | None = None,
) -> Mask:
    """Keep the highest-scored weights so that ``sparsity`` is reached.

    ``scope``: ``layerwise`` (every layer at the sparsity), ``global`` (one ranking of all the
    weights) or ``erk`` (per-layer counts from ``erk_counts``, the top scores within each layer).
    ``within`` restricts the choice to weights already kept (a mask only ever shrinks; under
    erk a layer is given at most what it still holds, the others rescaled).
    ``keep`` overrides the kept count: per layer (layerwise, erk) or in all (global).
    No layer is ever emptied: each keeps at least its best weight.
    """
    check_scope(scope)
    ranked = {}
    for name, score in scores.items():
        s = torch.nan_to_num(score.detach().float(), nan=-math.inf).flatten()
        if within is not None:
            s = s.masked_fill(~within[name].flatten(), -math.inf)
        ranked[name] = s
    if scope in ("layerwise", "erk"):
        if isinstance(keep, dict):
            counts = keep
        elif scope == "erk":
            available = None if within is None else {n: int(within[n].sum()) for n in ranked}
            counts = erk_counts({n: tuple(s.shape) for n, s in scores.items()}, sparsity, available)
        else:
            counts = {n: n_keep(s.numel(), sparsity) for n, s in ranked.items()}
        return {
            name: _top(s, counts[name]).view_as(scores[name]) for name, s in ranked.items()
        }
    # global: one ranking, after reserving each layer's best weight so none is emptied
    flat = torch.cat([s.clone() for s in ranked.values()])
    offset = 0
    for s in ranked.values():
        flat[offset + int(torch.argmax(s))] = math.inf
        offset += s.numel()
    count = keep if isinstance(keep, int) else n_keep(flat.numel(), sparsity)
    chosen = _top(flat, max(count, len(ranked)))
    mask, offset = {}, 0
    for name, s in ranked.items():
        mask[name] = chosen[offset : offset + s.numel()].view_as(scores[name])
        offset += s.numel()
    return mask


def _top(scores: Tensor, count: int) -> Tensor:
    """Bool vector with True at the ``count`` highest scores (ties: lowest index first).

    The same result as a stable descending argsort, at the cost of a top-k: everything above
    the k-th value, then the lowest-indexed weights that tie with it.
    """
    count = min(count, scores.numel())
    if count <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    kth = torch.topk(scores, count, sorted=False).values.min()
    out = scores > kth
    ties = torch.nonzero(scores == kth).flatten()[: count - int(out.sum())]
    out[ties] = True
    return out


def random_scores(model: nn.Module, generator: torch.Generator) -> dict[str, Tensor]:
    return {
        name: torch.rand(w.shape, generator=generator, device=generator.device).to(w.device)
        for name, w in prunable(model).items()
    }


def problem(mask, weights: dict[str, Tensor], target: float | None = None, at_most: bool = False) -> str | None:
    """What is wrong with a method's mask over ``weights`` (its model's prunable weights), in a
    few words, or None: one boolean tensor per weight, of its shape; with ``target``, also no
    layer emptied, the removed weights zero (what the forward computes with) and the sparsity
    the method promised: the target within what rounding per layer allows (half a weight, or the
    one weight every layer keeps), or with ``at_most`` (a threshold decides it) at most that."""
    if not isinstance(mask, dict):
        return f"its mask is a {type(mask).__name__}, not a dict of boolean tensors by weight name"
    missing, unknown = [n for n in weights if n not in mask], [n for n in mask if n not in weights]
    if missing:
        return f"its mask has no entry for the prunable weight(s) {', '.join(missing)}"
    if unknown:
        return f"its mask names {', '.join(map(str, unknown))}, which the model has no prunable weight for"
    for name, w in weights.items():
        m = mask[name]
        if not torch.is_tensor(m) or m.dtype != torch.bool:
            kind = str(m.dtype).removeprefix("torch.") if torch.is_tensor(m) else type(m).__name__
            return f"its mask of {name} is {kind}, not bool (True = kept)"
        if m.shape != w.shape:
            return f"its mask of {name} has shape {tuple(m.shape)}, the weight {tuple(w.shape)}"
    if target is None:
        return None
    for name, w in weights.items():
        m = mask[name].to(w.device)
        if not m.any():
            return f"its mask empties {name} (no weight kept), which cuts the network"
        if bool((w.detach()[~m] != 0).any()):
            return (f"the weights its mask removes from {name} are not zero in the model; apply a mask with "
                    "ctx.trainee.set_mask")
    actual, slack = sparsity(mask), len(mask) / total(mask) + 1e-9
    if actual > target + slack or (not at_most and actual < target - slack):
        bound = f"at most {target:g}" if at_most else f"{target:g} (within ±{slack:.2g} for rounding per layer)"
        return f"its mask has sparsity {actual:.4g} where {bound} was asked"
    return None
