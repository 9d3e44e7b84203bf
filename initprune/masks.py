"""Masks over the prunable weights, and the one top-k selection every pruner uses.

A mask is a plain ``{parameter name: bool tensor}``, True = kept, over the ``weight`` of every
``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``. Selection is by index (a stable sort), never by a
threshold value, so ties cannot change how many weights are kept.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .errors import InitpruneError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
SCOPES = ("layerwise", "global")

Mask = dict[str, Tensor]


def prunable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The prunable weights of ``model``, by their ``named_parameters`` name: a weight that
    several layers share (weight tying) is one weight with one mask, under its first name."""
    weights, seen = {}, set()
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            weights[f"{name}.weight" if name else "weight"] = module.weight
    if not weights:
        raise InitpruneError(
            f"{type(model).__name__} has no nn.Linear/nn.Conv1d/nn.Conv2d layer to prune; "
            "build the model from those layers"
        )
    return weights


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

    ``within`` restricts the choice to weights already kept (a mask only ever shrinks).
    ``keep`` overrides the kept count: per layer (layerwise) or in all (global).
    No layer is ever emptied: each keeps at least its best weight.
    """
    check_scope(scope)
    ranked = {}
    for name, score in scores.items():
        s = torch.nan_to_num(score.detach().float(), nan=-math.inf).flatten()
        if within is not None:
            s = s.masked_fill(~within[name].flatten(), -math.inf)
        ranked[name] = s
    if scope == "layerwise":
        counts = keep if isinstance(keep, dict) else {n: n_keep(s.numel(), sparsity) for n, s in ranked.items()}
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
