"""Stacked models: several trainees of one architecture trained as one model whose parameters
are stacked along a first axis of size k. The training loop is the Trainer's (initprune/train.py);
this module holds the two ways it may stack, and the rule of where the seeds of a point stack.

``Stack`` (the seeds of a point, ``train.train_group``) is bitwise: a stacked seed's result is
the one it gets alone, bit for bit (CPU, 1 thread). It does not go through ``torch.func.vmap``,
whose linear is a batched matmul plus a separate bias add (measured up to 1.5e-5 off ``addmm`` on
one forward): every ``nn.Linear`` is a ``baddbmm`` of the stacked bias, inputs and weights, which
computes each seed's slice with the very GEMM call ``addmm`` makes alone; its backward (``bmm``, a
sum over the batch) and every other op (ReLU, the loss per seed, the masks, the optimizers'
elementwise updates) are the alone ones, slice by slice. So stacking never changes a number and is
no part of a run's identity; tests/test_stack.py holds it to that for every built-in method and an
ablation. Only models made of the layers above (``stackable``: Linear, ReLU, Flatten in an
nn.Sequential, no buffers) stack; batch norm keeps per-model statistics, so a model with buffers
always goes one by one. Each seed keeps its own batches, masks, optimizer state, learning-rate
position, per-epoch evaluation and history.

``Vmapped`` (K-starts' candidates, ``Trainer.together``): any model without buffers, through
``torch.func.vmap``, every candidate on the same batches; equal to one by one within float
tolerance, not bitwise.

Where the seeds of a point stack is ``RULES``, per device kind and cell, from the bench's
measurement; never measured at run time. A group whose seeds would train a layer sparse
(``Settings.compute``) trains one by one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .spec import RunSpec
    from .train import Settings, Trainee

# (device kind, dataset, arch) -> the most seeds one stack trains; a cell not here goes one by
# one. Set from the bench's measurement, never measured at run time. Per training step of 8
# seeds, 1 thread, this project's 2-core CPU (issue 23's measurement): digits / mlp, batch 32: sequential
# 26.9 ms, stacked 14.6 ms (yes); lenet300, batch 128: 31.4 vs 48.2 ms (no); lenet5: 264 vs
# 441 ms (no; a conv does not stack bitwise here anyway). This stack (benchmarks/bench.py
# --stack-only, seeds_stacked_vs_sequential, the machine loaded): digits / mlp 0.40 of
# sequential (0.29 - 0.58 over 7 rounds); lenet300 0.82 (0.64 - 0.92), left out until a quiet
# machine confirms it. CUDA: no rule (not measured bitwise equal there).
RULES: dict[tuple[str, str, str], int] = {
    ("cpu", "digits", "mlp"): 8,
}
THREADS = 1  # the thread count the rule and the bitwise equality were measured at


def seeds_per_stack(device: str, dataset: str, arch: str, threads: int) -> int:
    """How many seeds of this cell train as one stack (1: one by one)."""
    if threads != THREADS:
        return 1
    return max(1, RULES.get((device, dataset, arch), 1))


def plan(points: list[RunSpec]) -> list[list[RunSpec]]:
    """The points in order, cut into the groups ``api.run_group`` trains: neighbours that differ
    only in the seed, of a cell whose rule stacks (``RULES``) on their device's kind, at most the
    rule's seeds per group; every other point a group of one."""
    groups: list[list[RunSpec]] = []
    for p in points:
        last = groups[-1] if groups else None
        # a spec's device is resolved where it is made (cuda:1): its kind is the rule's (spec.device_kind
        # resolves it again; spec imports train, which imports this module)
        most = seeds_per_stack(p.device.partition(":")[0], p.dataset, p.arch, p.threads)
        if last and len(last) < most and seedless(last[0]) == seedless(p):
            last.append(p)
        else:
            groups.append([p])
    return groups


def seedless(spec: RunSpec) -> str:
    """A spec without its seed: the same for the seeds of one point."""
    return json.dumps({k: v for k, v in spec.to_dict().items() if k != "seed"}, sort_keys=True, default=str)


SUPPORTED = (nn.Linear, nn.ReLU, nn.Flatten)
# torch's CPU bmm computes a product of contraction x rows x columns under this in a loop of its
# own, not with the GEMM that addmm calls alone: a layer's three products (forward, ∂W, ∂x) are
# each batch x in x out, so a Linear of in x out under it never stacks bitwise
SMALL_BMM = 400


def stackable(model: nn.Module) -> bool:
    """Whether ``Stack`` computes this model bitwise as it computes alone: an nn.Sequential
    (nested ones too) of Linear (in x out of SMALL_BMM or more), ReLU and Flatten(1, -1),
    without buffers (no batch norm)."""
    if any(True for _ in model.buffers()) or not isinstance(model, nn.Sequential):
        return False
    for m in _leaves(model):
        if not isinstance(m, SUPPORTED):
            return False
        if isinstance(m, nn.Linear) and m.in_features * m.out_features < SMALL_BMM:
            return False
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return False
        if isinstance(m, nn.ReLU) and m.inplace:
            return False
    return True


def _leaves(model: nn.Module):
    for m in model.children():
        if isinstance(m, nn.Sequential):
            yield from _leaves(m)
        else:
            yield m


class _Stacked:
    """What both stacks share: the trainees' parameters stacked (k, ...), one optimizer over the
    stacked tensors (every optimizer here is elementwise), each trainee's optimizer state carried
    in and written back out with its weights."""

    def __init__(self, trainees: list[Trainee], settings: Settings):
        self.trainees, self.k = trainees, len(trainees)
        self.names = [n for n, _ in trainees[0].model.named_parameters()]
        own = [dict(t.model.named_parameters()) for t in trainees]
        with torch.no_grad():
            self.params = {n: torch.stack([o[n].detach() for o in own]).requires_grad_(True) for n in self.names}
        self.w = [self.params[n] for n in trainees[0].weights]  # (k, *shape) per prunable weight
        self.m = [torch.stack(ms) for ms in zip(*(t.mask_values for t in trainees))]
        self.optimizer = settings.make(list(self.params.values()))
        for n in self.names:  # the optimizer state the trainees carry (momentum of the pruning phase)
            states = [t.optimizer.state.get(o[n]) for t, o in zip(trainees, own)]
            if any(states):
                if not all(states) or any(set(s) != set(states[0]) for s in states):
                    raise ValueError("the trainees' optimizer states differ in kind: train them one by one")
                self.optimizer.state[self.params[n]] = {
                    key: torch.stack([s[key] for s in states]) if _shaped_like(v, own[0][n]) else _copy(v)
                    for key, v in states[0].items()}

    @torch.no_grad()
    def write_back(self) -> None:
        """Each trainee's weights and optimizer state from its slice of the stack."""
        for i, t in enumerate(self.trainees):
            own = dict(t.model.named_parameters())
            for n in self.names:
                own[n].copy_(self.params[n][i])
                state = self.optimizer.state.get(self.params[n])
                if state:  # per-parameter entries are stacked; scalars (Adam's step) are shared
                    t.optimizer.state[own[n]] = {key: v[i].clone() if _shaped_like(v, self.params[n]) else _copy(v)
                                                 for key, v in state.items()}


class Stack(_Stacked):
    """The seeds of a point as one model, each seed's slice computed bitwise as it is alone;
    each seed on its own batches (``step`` takes one batch per seed)."""

    def __init__(self, trainees: list[Trainee], settings: Settings, sinks, loss):
        if any(s is not None for s in sinks):
            raise ValueError("a Stack sums no gradients; K-starts' candidates stack with Vmapped")
        super().__init__(trainees, settings)
        self.task_loss = loss  # the trainer's Trainer.loss: (outputs, inputs, labels) -> the task's loss
        skeleton = trainees[0].model
        self.layers = []  # (kind, weight, bias) in forward order
        by_module = {id(m): name for name, m in skeleton.named_modules()}
        for m in _leaves(skeleton):
            prefix = by_module[id(m)]
            if isinstance(m, nn.Linear):
                bias = self.params[f"{prefix}.bias"] if m.bias is not None else None
                self.layers.append(("linear", self.params[f"{prefix}.weight"], bias))
            else:
                self.layers.append(("relu" if isinstance(m, nn.ReLU) else "flatten", None, None))
        self.dense = all(t.keeps_all for t in trainees)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (k, B, classes) of inputs (k, B, ...): seed i's slice computed as seed i alone."""
        for kind, w, b in self.layers:
            if kind == "linear":
                x = _Linear.apply(x, w, b)
            elif kind == "relu":
                x = torch.relu(x)
            else:
                x = x.flatten(2)
        return x

    def step(self, xs: list[Tensor], ys: list[Tensor]) -> Tensor:
        """One step of every seed on its own batch; returns the k losses."""
        self.optimizer.zero_grad(set_to_none=False)
        x = torch.stack(xs)
        outputs = self.forward(x)
        losses = torch.stack([self.task_loss(outputs[i], x[i], y) for i, y in enumerate(ys)])
        losses.sum().backward()
        if not self.dense:
            torch._foreach_mul_([w.grad for w in self.w], self.m)
        self.optimizer.step()
        if not self.dense:
            with torch.no_grad():
                torch._foreach_mul_(self.w, self.m)
        return losses.detach()


class _Linear(torch.autograd.Function):
    """k linear layers at once, each seed's slice computed by the GEMM calls its ``F.linear``
    makes alone: forward ``addmm(b, x, Wᵀ)`` (as ``baddbmm``); backward as autograd's ``addmm``
    (``mm_mat2_backward`` of the transposed weight: ``(gᵀ x)``, not ``(xᵀ g)ᵀ``, which rounds
    otherwise): ∂W = gᵀ x, ∂x = g W, ∂b = Σ_batch g."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return torch.baddbmm(b.unsqueeze(1), x, w.mT) if b is not None else torch.bmm(x, w.mT)

    @staticmethod
    def backward(ctx, g: Tensor):
        x, w = ctx.saved_tensors
        gx = torch.bmm(g, w) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.mT, x) if ctx.needs_input_grad[1] else None
        gb = g.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


class Vmapped(_Stacked):
    """K-starts' candidates as one model through ``torch.func.vmap``, all on the same batch: one
    forward and backward for all, their separate updates within float tolerance (each loss
    depends on its own parameters only); ``sinks`` sum each candidate's |∂L/∂θ|."""

    def __init__(self, trainees: list[Trainee], settings: Settings, sinks, loss):
        from torch.func import functional_call, vmap

        super().__init__(trainees, settings)
        self.sinks = sinks
        self.sink = [torch.stack(s) for s in zip(*sinks)] if sinks[0] is not None else None
        skeleton = trainees[0].model
        self.losses = vmap(lambda p, x, y: loss(functional_call(skeleton, p, (x,)), x, y), in_dims=(0, None, None))

    def step(self, xs: list[Tensor], ys: list[Tensor]) -> Tensor:
        """One step of every candidate on the batch they share; returns the k losses."""
        self.optimizer.zero_grad(set_to_none=False)
        losses = self.losses(self.params, xs[0], ys[0])  # (k,)
        losses.sum().backward()
        grads = [w.grad for w in self.w]
        torch._foreach_mul_(grads, self.m)
        if self.sink is not None:
            torch._foreach_add_(self.sink, torch._foreach_abs(grads))
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_mul_(self.w, self.m)
        return losses.detach()

    @torch.no_grad()
    def write_back(self) -> None:
        super().write_back()
        if self.sink is not None:
            for i in range(self.k):
                for mine, stacked in zip(self.sinks[i], self.sink):
                    mine.copy_(stacked[i])


def _shaped_like(value, param: Tensor) -> bool:
    """An optimizer state entry shaped like its parameter (momentum, Adam's moments)."""
    return torch.is_tensor(value) and value.shape == param.shape


def _copy(value):
    return value.clone() if torch.is_tensor(value) else value
