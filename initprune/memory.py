"""Will a run fit in memory? An estimate made before anything is allocated.

A run holds ``1 + candidates`` copies of the model (K-starts trains k candidates beside the
run's own), each with its gradients, optimizer state, masks and gradient sums, plus the data it
moves onto the device. Activations are left out, so the estimate is a lower bound: a run it
refuses cannot fit, a run it accepts may still be tight.
"""

from __future__ import annotations

from torch import nn

from . import masks
from .errors import InitpruneError

# What a tensor and a module cost beyond their numbers, measured with torch 2.x on CPU: about
# 0.5 KB of Python and ATen objects per tensor, 2 KB per module. On CUDA the caching allocator
# rounds every tensor up to 512 bytes. For a small model this outweighs the numbers themselves.
TENSOR_OVERHEAD = 512
MODULE_OVERHEAD = 2048


def optimizer_slots(settings) -> int:
    """Tensors the optimizer keeps per parameter, each the parameter's size."""
    if settings.optimizer == "sgd":
        return 1 if settings.momentum else 0
    return 2  # Adam and AdamW: first and second moments


def per_copy(model: nn.Module, settings, device) -> int:
    """Bytes one trained copy of ``model`` holds: weights, gradients, optimizer state, buffers,
    and per prunable weight its gradient sum, its mask as a float and as a bool."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    weights = list(masks.prunable(model).values())
    per_param = 2 + optimizer_slots(settings)  # weight, gradient, optimizer state
    size = (per_param * sum(p.numel() * p.element_size() for p in params)
            + sum(b.numel() * b.element_size() for b in buffers)
            + sum(w.numel() * (2 * w.element_size() + 1) for w in weights))
    tensors = per_param * len(params) + len(buffers) + 3 * len(weights)
    modules = len(list(model.modules())) if device.type == "cpu" else 0
    return size + tensors * TENSOR_OVERHEAD + modules * MODULE_OVERHEAD


def estimate(model: nn.Module, pruner, settings, splits, device) -> int:
    """Bytes the run will hold on ``device`` at its peak. On CUDA, K-starts trains candidates
    without buffers as one stacked model (train.Trainer.together), a second copy of each."""
    stacked = device.type == "cuda" and pruner.candidates > 1 and not any(True for _ in model.buffers())
    candidates = pruner.candidates * (2 if stacked else 1)
    # data already on the device is already out of what is available
    data = sum(t.numel() * t.element_size() for split in splits if isinstance(split, tuple)
               for t in split if t.device.type != device.type)
    return (1 + candidates) * per_copy(model, settings, device) + data


def available(device) -> int | None:
    """Bytes free for this run on ``device``; None where it cannot be known."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        # what PyTorch's cache holds but no tensor uses is free to this run too
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check(model: nn.Module, pruner, settings, splits, device) -> None:
    """Refuse, in one line, a run that cannot fit on its device."""
    need, free = estimate(model, pruner, settings, splits, device), available(device)
    if free is None or need <= free:
        return
    copies = f"{1 + pruner.candidates} copies of the model" if pruner.candidates else "the model"
    advice = "lower --k, or use a smaller model" if "k" in pruner.options() else "use a smaller model or less data"
    raise InitpruneError(
        f"method '{pruner.name}' would hold about {_size(need)} ({copies} with gradients, optimizer state "
        f"and masks, and the data) but {_size(free)} is available on {device}; {advice}"
    )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
