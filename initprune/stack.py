"""Seeds that train together: the points of one execution that differ only in the seed train
their post-pruning phase as one stacked model, where a committed rule says it pays.

Each seed is pruned alone exactly as it would be alone (its θ0, its data order, its masks and
its pruning decisions); the training that follows runs the group's seeds as one model whose
parameters are stacked along a first axis of size k. Each seed keeps its own batches (its own
generator), its own masks applied every step, its own optimizer state, learning-rate position,
per-epoch evaluation and history.

Bitwise: a stacked seed's result is the one it gets alone, bit for bit (CPU, 1 thread). The
stack does not go through ``torch.func.vmap``, whose linear is a batched matmul plus a separate
bias add (measured up to 1.5e-5 off ``addmm`` on one forward): every ``nn.Linear`` is a
``baddbmm`` of the stacked bias, inputs and weights, which computes each seed's slice with the
very GEMM call ``addmm`` makes alone; its backward (``bmm``, a sum over the batch) and every other
op (ReLU, the loss per seed, the masks, the optimizers' elementwise updates) are the alone ones,
slice by slice. So stacking never changes a number and is no part of a run's identity; the tests
(tests/test_stack.py) hold it to that for every built-in method and an ablation. Only models made
of the layers above (``stackable``: Linear, ReLU, Flatten in an nn.Sequential, no buffers) stack;
batch norm keeps per-model statistics, so a model with buffers always goes one by one.

Where it is used is ``RULES``, per device kind and cell, from the bench's measurement; never
measured at run time. A group whose seeds would train a layer sparse (``Settings.compute``) trains
one by one.
"""

from __future__ import annotations

import json
import time

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .errors import DivergedError
from .result import RunResult
from .spec import RunSpec
from .train import Trainee, Trainer

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


SUPPORTED = (nn.Linear, nn.ReLU, nn.Flatten)
# torch's CPU bmm computes a product of contraction x rows x columns under this in a loop of its
# own, not with the GEMM that addmm calls alone: a layer's three products (forward, ∂W, ∂x) are
# each batch x in x out, so a Linear of in x out under it never stacks bitwise
SMALL_BMM = 400


def stackable(model: nn.Module) -> bool:
    """Whether the stack computes this model bitwise as it computes alone: an nn.Sequential
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


class Stack:
    """k trainees of one stackable architecture, all at the same step, as one model: each
    parameter stacked along a first axis of size k, one optimizer over the stacked tensors
    (every optimizer here is elementwise), each trainee's optimizer state carried in and out."""

    def __init__(self, trainees: list[Trainee], settings, loss):
        self.trainees, self.k = trainees, len(trainees)
        self.task_loss = loss  # the trainers' Trainer.loss: (outputs, inputs, labels) -> the task's loss
        skeleton = trainees[0].model
        self.names = [n for n, _ in skeleton.named_parameters()]
        own = [dict(t.model.named_parameters()) for t in trainees]
        with torch.no_grad():
            self.params = {n: torch.stack([o[n].detach() for o in own]).requires_grad_(True) for n in self.names}
        self.layers = []  # (kind, weight, bias) in forward order
        by_module = {id(m): name for name, m in skeleton.named_modules()}
        for m in _leaves(skeleton):
            prefix = by_module[id(m)]
            if isinstance(m, nn.Linear):
                bias = self.params[f"{prefix}.bias"] if m.bias is not None else None
                self.layers.append(("linear", self.params[f"{prefix}.weight"], bias))
            else:
                self.layers.append(("relu" if isinstance(m, nn.ReLU) else "flatten", None, None))
        prunable = list(trainees[0].weights)
        self.w = [self.params[n] for n in prunable]
        self.dense = all(t._dense for t in trainees)
        self.m = [torch.stack([t.mask_values[i] for t in trainees]) for i in range(len(prunable))]
        self.optimizer = settings.make(list(self.params.values()))
        for n in self.names:  # the optimizer state the trainees carry (momentum of the pruning phase)
            states = [t.optimizer.state.get(o[n]) for t, o in zip(trainees, own)]
            if any(states):
                if not all(states) or any(set(s) != set(states[0]) for s in states):
                    raise ValueError("the trainees' optimizer states differ in kind: train them one by one")
                self.optimizer.state[self.params[n]] = {
                    key: torch.stack([s[key] for s in states]) if _shaped_like(v, own[0][n]) else _copy(v)
                    for key, v in states[0].items()}
        # each trainee's running loss of the current epoch, summed in the order it sums alone
        dtype, device = self.w[0].dtype, self.w[0].device
        self.loss = torch.stack([torch.as_tensor(t._loss[0], dtype=dtype, device=device) for t in trainees])
        self.count = [t._loss[1] for t in trainees]

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

    def step(self, x: Tensor, y: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=False)
        outputs = self.forward(x)
        losses = torch.stack([self.task_loss(outputs[i], x[i], y[i]) for i in range(self.k)])
        losses.sum().backward()
        if not self.dense:
            torch._foreach_mul_([w.grad for w in self.w], self.m)
        self.optimizer.step()
        if not self.dense:
            with torch.no_grad():
                torch._foreach_mul_(self.w, self.m)
        self.loss += losses.detach()
        self.count = [c + 1 for c in self.count]

    @torch.no_grad()
    def write_back(self, state: bool = False) -> None:
        """Each trainee's weights (and, with ``state``, its optimizer state and running loss)
        from its slice of the stack."""
        for i, t in enumerate(self.trainees):
            own = dict(t.model.named_parameters())
            for n in self.names:
                own[n].copy_(self.params[n][i])
                if state and self.optimizer.state.get(self.params[n]):
                    t.optimizer.state[own[n]] = {
                        key: v[i].clone() if _shaped_like(v, self.params[n]) else _copy(v)
                        for key, v in self.optimizer.state[self.params[n]].items()}
            if state:
                t._loss = [self.loss[i].clone(), self.count[i]]


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


def _shaped_like(value, param: Tensor) -> bool:
    return torch.is_tensor(value) and value.shape == param.shape


def _copy(value):
    return value.clone() if torch.is_tensor(value) else value


def train(pairs: list[tuple[Trainer, Trainee]], steps: int) -> list[BaseException | None]:
    """Train each (trainer, trainee) pair ``steps`` more steps, as one stack: each trainee on its
    own trainer's batches, evaluated and recorded by its own trainer at each epoch's end, as
    ``Trainer.advance`` does alone. All trainees stand at the same step. Returns, per pair, the
    error that stopped it (a diverged loss), None if it trained to the end; a diverged seed
    leaves the stack and the others go on."""
    errors: list[BaseException | None] = [None] * len(pairs)
    live = list(range(len(pairs)))
    if steps <= 0 or not pairs:
        return errors
    if len({t.steps for _, t in pairs}) > 1:
        raise ValueError("the trainees of a stack must stand at the same step")
    trainers = [tr for tr, _ in pairs]
    settings, per_epoch = trainers[0].settings, trainers[0].steps_per_epoch
    for _, t in pairs:
        t.model.train()
    stack = Stack([t for _, t in pairs], settings, trainers[0].loss)
    while steps > 0 and live:
        now = pairs[live[0]][1].steps
        epoch, start = divmod(now, per_epoch)
        todo = min(steps, per_epoch - start)
        began = time.perf_counter()
        bar = tqdm(total=todo, desc=f"epoch {epoch + 1}/{trainers[0].epochs} ({len(live)} seeds)", leave=False,
                   disable=None, unit="batch")
        batches = zip(*(pairs[i][0].train_batches.epoch(epoch, start) for i in live))
        for s, drawn in enumerate(batches):
            if s == todo:
                break
            for i, (x, _) in zip(live, drawn):
                pairs[i][0]._count(pairs[i][1], epoch, start + s, x)
            settings.schedule(stack.optimizer, now + s, trainers[0].total_steps)
            stack.step(torch.stack([x for x, _ in drawn]), torch.stack([y for _, y in drawn]))
            bar.update()
        bar.close()
        steps -= todo
        stack.write_back(state=True)
        spent = (time.perf_counter() - began) / len(live)
        for i in live:
            t = pairs[i][1]
            t.steps += todo
            t._seconds += spent
        if (now + todo) % per_epoch == 0:
            for i in list(live):
                try:
                    pairs[i][0]._end_epoch(pairs[i][1], None)
                except DivergedError as err:  # as it would alone: this seed fails, the others go on
                    errors[i] = err
                    live.remove(i)
            if steps > 0 and live and len(live) < stack.k:
                stack = Stack([pairs[i][1] for i in live], settings, trainers[0].loss)
            elif steps > 0 and live:
                stack.loss.zero_()
                stack.count = [0] * stack.k
    return errors


def run_group(configs: list[RunSpec], data_root=None) -> list[RunResult | BaseException]:
    """``api.run`` of each spec (specs that differ only in the seed), the training after the
    pruning as one stack where the model is ``stackable``, else one by one. Returns per spec its
    result, or the error that stopped that seed alone (the others go on); an error of the stack
    itself, or Ctrl-C, is raised."""
    from . import api, models
    from . import data as datasets

    first = configs[0]
    if any(_group_key(c) != _group_key(first) for c in configs):
        raise ValueError("a stack's specs must differ in the seed only")
    task = api.task_of(first)
    data = datasets.load(first.dataset, data_root)
    target = data.target if data.unit is not None else None
    out: list[RunResult | BaseException | None] = [None] * len(configs)
    seconds = [0.0] * len(configs)
    pruned: dict[int, api.Pruned] = {}
    with api._threaded(first.threads):
        for i, config in enumerate(configs):
            began = time.perf_counter()
            try:
                model = models.build(config.arch, data.input_shape, data.num_classes, config.seed)
                pruned[i] = api._prune(model, data.train, data.test, config.method, config.sparsity, config.epochs,
                                       config.seed, data.val, config.device, data.augment, config.ablation,
                                       {**config.training, **config.options}, task, target)
            except Exception as err:  # this seed fails as it would alone
                out[i] = err
            seconds[i] += time.perf_counter() - began
        began = time.perf_counter()
        left = {i: _steps_left(p) for i, p in pruned.items()}
        together = [i for i in pruned if left[i] > 0]
        # compute is resolved before stacking: a group stacks only when every seed trains dense
        dense = all(pruned[i].trainer.trains_dense(pruned[i].trainee) for i in together)
        if (len(together) > 1 and dense and stackable(pruned[together[0]].trainee.model)
                and len(set(left.values())) == 1):
            errors = train([(pruned[i].trainer, pruned[i].trainee) for i in together], left[together[0]])
            for i, err in zip(together, errors):
                if err is not None:
                    out[i] = err
                    del pruned[i]
            spent = (time.perf_counter() - began) / len(together)
            for i in together:
                seconds[i] += spent
        else:
            for i in together:
                began = time.perf_counter()
                p = pruned[i]
                try:
                    p.trainer.run(p.trainee, p.epochs - p.trainee.epoch)
                except DivergedError as err:
                    out[i] = err
                    del pruned[i]
                seconds[i] += time.perf_counter() - began
        for i, p in pruned.items():
            began = time.perf_counter()
            try:
                fitted = api._finish(p)
            except Exception as err:
                out[i] = err
                continue
            seconds[i] += time.perf_counter() - began
            out[i] = api._run_result(configs[i], fitted, seconds[i])
    return out


def _steps_left(p) -> int:
    """The steps ``Trainer.run(trainee, epochs - trainee.epoch)`` would train."""
    t, per = p.trainee, p.trainer.steps_per_epoch
    epochs = p.epochs - t.epoch
    return (t.steps // per + epochs) * per - t.steps if epochs > 0 else 0


def _group_key(config: RunSpec) -> str:
    return json.dumps({k: v for k, v in config.to_dict().items() if k != "seed"}, sort_keys=True, default=str)


def plan(points: list[RunSpec]) -> list[list[RunSpec]]:
    """The points in order, cut into groups: neighbours that differ only in the seed, of a cell
    whose rule stacks on the device kind this machine resolves them to, at most the rule's
    seeds per group; every other point a group of one."""
    from .spec import device_kind

    groups: list[list[RunSpec]] = []
    for p in points:
        last = groups[-1] if groups else None
        most = seeds_per_stack(device_kind(p.device), p.dataset, p.arch, p.threads)
        if last and len(last) < most and _group_key(last[0]) == _group_key(p):
            last.append(p)
        else:
            groups.append([p])
    return groups


def run_all(configs: list[RunSpec], data_root=None) -> list[RunResult]:
    """``api.run`` of each spec, untracked: a group of one alone, a larger one as ``run_group``;
    the first error raised."""
    from . import api

    if len(configs) == 1:
        return [api.run(configs[0], data_root=data_root)]
    out = run_group(configs, data_root)
    for r in out:
        if isinstance(r, BaseException):
            raise r
    return out
