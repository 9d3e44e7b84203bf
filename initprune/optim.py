"""SGD, Adam and AdamW over a list of tensors, without ``torch.optim``.

Why: the first call into a ``torch.optim`` optimizer imports ``torch._dynamo`` (its methods are
wrapped to keep the compiler out), 2.5 s of every process that trains: each notebook kernel of a
sweep, each ``python -m initprune run``. These optimizers do what ``torch.optim.SGD``, ``Adam``
and ``AdamW`` do with ``foreach=True`` (the way ``Settings.make`` asked for them before), with the
same multi-tensor operations in the same order, so every update is bitwise the one torch.optim
makes: ``tests/test_optim.py`` checks that, step by step, against torch.optim itself.

Only what initprune uses: no closures, no sparse or complex gradients, no ``maximize``,
``nesterov``, ``dampening`` or ``amsgrad``. The interface is the part of torch.optim's that the
trainer, the masks and the stacked seeds use: ``param_groups[0]["lr"]``, ``state[param]`` (the
same keys: ``momentum_buffer``; ``step``, ``exp_avg``, ``exp_avg_sq``), ``zero_grad``, ``step``,
``state_dict`` and ``load_state_dict``; and ``swap``, with which sparse compute trains a layer's kept
values in its dense weight's place.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import torch
from torch import Tensor


class _Optimizer:
    def __init__(self, params, lr: float, weight_decay: float, **extra):
        self.params: list[Tensor] = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        self.param_groups = [{"params": self.params, "lr": lr, "weight_decay": weight_decay, **extra}]
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()

    def swap(self, old: Tensor, new: Tensor, convert) -> None:
        """Train ``new`` in ``old``'s place (same position), its state ``old``'s with every entry
        shaped like ``old`` passed through ``convert`` (sparse compute: the kept values of a
        weight, and back); scalar entries (Adam's step) carried as they are."""
        i = next(i for i, p in enumerate(self.params) if p is old)
        self.params[i] = new  # param_groups[0]["params"] is this list
        state = self.state.pop(old, None)
        if state:
            self.state[new] = {k: convert(v) if torch.is_tensor(v) and v.shape == old.shape else v
                               for k, v in state.items()}

    def _with_grads(self) -> tuple[list[Tensor], list[Tensor]]:
        """The parameters that have a gradient, and their gradients (torch.optim skips the rest)."""
        params = [p for p in self.params if p.grad is not None]
        return params, [p.grad for p in params]

    def state_dict(self) -> dict:
        """The state by parameter position, and the hyperparameters, as torch.optim lays them out."""
        index = {id(p): i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[id(p)]: s for p, s in self.state.items() if s},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = copy.deepcopy(state_dict)
        group = {k: v for k, v in state_dict["param_groups"][0].items() if k != "params"}
        self.param_groups[0].update(group)
        self.state = defaultdict(dict)
        for i, s in state_dict["state"].items():
            p = self.params[int(i)]
            self.state[p] = {k: v.to(dtype=p.dtype, device=p.device) if torch.is_tensor(v) and k != "step" else v
                             for k, v in s.items()}


class SGD(_Optimizer):
    """SGD with momentum (dampening 0) and an L2 penalty added to the gradient."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay, momentum=momentum)

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
        params, grads = self._with_grads()
        if not params:
            return
        if weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if momentum != 0:
            bufs = [self.state[p].get("momentum_buffer") for p in params]
            if all(b is not None for b in bufs):
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, grads, alpha=1)
            else:  # the first step (or a buffer a mask change dropped): the buffer starts as the gradient
                for i, (p, g) in enumerate(zip(params, grads)):
                    if bufs[i] is None:
                        bufs[i] = self.state[p]["momentum_buffer"] = g.detach().clone()
                    else:
                        bufs[i].mul_(momentum).add_(g, alpha=1)
            grads = bufs
        torch._foreach_add_(params, grads, alpha=-lr)


class Adam(_Optimizer):
    """Adam (betas 0.9, 0.999, eps 1e-8); with ``decoupled``, AdamW's weight decay."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, decoupled: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr, weight_decay, betas=betas, eps=eps, decoupled=decoupled)

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        params, grads = self._with_grads()
        if not params:
            return
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = torch.tensor(0.0, dtype=torch.get_default_dtype())
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
        if weight_decay != 0:
            if group["decoupled"]:
                torch._foreach_mul_(params, 1 - lr * weight_decay)
            else:
                grads = torch._foreach_add(grads, params, alpha=weight_decay)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        counts = [s.item() for s in steps]
        step_size = [(lr / (1 - beta1 ** n)) * -1 for n in counts]
        correction2_sqrt = [(1 - beta2 ** n) ** 0.5 for n in counts]
        denominator = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominator, correction2_sqrt)
        torch._foreach_add_(denominator, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominator, step_size)
