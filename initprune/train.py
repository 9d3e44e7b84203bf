"""One training loop for every method and every run (``_train``).

A ``Trainee`` is one line of training: a model, its optimizer, its mask and its history. The
``Trainer`` holds what all trainees of a run share (data, optimizer settings, seed, device) and
trains a trainee step by step, so that K-starts can train candidates for fractions of an epoch and
every candidate sees the same data order.

The learning rate follows ``Settings.lr_schedule`` by the trainee's step count, so K-starts'
candidates and the winner that carries on see the rate the step they stand at asks for.

Pruned weights stay exactly zero: their gradients are zeroed before each step, the weights are
zeroed after it, and the optimizer's state (momentum, Adam moments) is cleared wherever a mask
removes a weight.

Task: the Trainer's ``task`` (initprune/tasks.py) gives the loss and the metric: the history
records ``val_<metric>`` and ``test_<metric>`` (``val_accuracy``, ``test_accuracy`` for a
classifier), and ``record`` is a split's per-example record (correctness, squared error).

Cost: every training step of every trainee goes through the Trainer, which counts its theoretical
FLOPs (``Cost``); a pruner adds its scoring passes with ``Trainer.count_pass``. ``Trainer.seconds``
is the measured time of the same steps and passes (``Trainer.scoring`` times a pass).

Compute (``Settings.compute``): once a trainee's mask is final (``Trainee.final``: K-starts'
candidates from the start, every run's trainee once its pruner has chosen), each Linear that
``sparse.plan`` picks trains on its kept weights only (initprune/sparse.py); ``Trainee.densify``
writes the values back and restores the dense layers when training is over.

Stacking: the loop trains one trainee, or several as one stacked model (initprune/stacking.py):
the seeds of a point (``train_group``, bitwise as alone, only where every seed trains dense) and
K-starts' candidates (``Trainer.together``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from . import masks, optim, options, progress, sparse, stacking, tasks
from .errors import DivergedError
from .options import option

OPTIMIZERS = ("sgd", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine")


FINITE_POSITIVE = dict(check=lambda v: v > 0, must="a finite number above 0")
FINITE_NON_NEGATIVE = dict(check=lambda v: v >= 0, must="a finite number of 0 or more")


@dataclass(frozen=True)
class Settings:
    """Optimizer and batching, the same for every method on a dataset and architecture."""

    optimizer: str = option("sgd", "the optimizer", choices=OPTIMIZERS)
    lr: float = option(0.1, "learning rate", **FINITE_POSITIVE)
    momentum: float = option(0.9, "SGD momentum", **FINITE_NON_NEGATIVE)
    weight_decay: float = option(0.0, "L2 penalty", **FINITE_NON_NEGATIVE)
    batch_size: int = option(32, "training batch size", check=lambda v: v >= 1, must="an integer of at least 1")
    lr_schedule: str = option("constant", "the learning rate over training: constant, or cosine (from lr to 0 "
                              "over the run's epochs, set every step)", choices=LR_SCHEDULES, neutral="constant")
    compute: str = option("dense", "how a Linear whose mask is final trains: dense (masked dense weights), sparse "
                          "(its kept weights only, CSR products) or auto (sparse where the committed rule of "
                          "initprune/sparse.py says it pays)", choices=sparse.COMPUTES, neutral="dense")

    def __post_init__(self):
        # every comparison with NaN is false, so a NaN got past "momentum < 0" and surfaced
        # epochs later as a diverged loss with the advice to lower --lr: options refuse NaN
        options.validate(self)

    def make(self, params) -> optim.SGD | optim.Adam:
        """torch.optim's SGD, Adam or AdamW with foreach=True, bitwise (initprune/optim.py says why)."""
        if self.optimizer == "sgd":
            return optim.SGD(params, self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        return optim.Adam(params, self.lr, weight_decay=self.weight_decay, decoupled=self.optimizer == "adamw")

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate of training step ``step`` (0 is the first) of a run of ``total`` steps.

        ``cosine``: lr·(1 + cos(π·step/total))/2, from lr at the first step towards 0 at the last.
        Steps past ``total`` (posttrain's fine-tuning) start the cosine again from lr."""
        if self.lr_schedule == "constant" or total <= 0:
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (step % total) / total))

    def schedule(self, optimizer: optim.SGD | optim.Adam, step: int, total: int) -> None:
        """Set ``optimizer``'s learning rate for step ``step``; ``constant`` never touches it."""
        if self.lr_schedule != "constant":
            lr = self.lr_at(step, total)
            for group in optimizer.param_groups:
                group["lr"] = lr


class Cost:
    """Theoretical FLOPs of the prunable layers, in integers (so that ratios are exact).

    A layer's forward FLOPs for one input are its kept weights times its output positions (1 for
    Linear, L_out for Conv1d, H_out * W_out for Conv2d), measured once with forward hooks. A
    training step costs 3x the forward (forward and backward) for each of its inputs, at the
    trainee's density at that step; evaluation is not counted. ``training`` is the sum over the
    run relative to one dense training of the same epochs and batches; ``inference`` is one
    forward of the final network relative to dense; ``training_flops`` and ``dense_epoch_flops``
    are absolute (``report``)."""

    def __init__(self):
        self.positions: dict[str, int] | None = None  # output positions per prunable weight
        self.spent = 0  # FLOPs counted so far (multiply-accumulates)
        self.batches: dict[tuple[int, int], int] = {}  # (epoch, step) -> inputs, the reference's batches
        self.paused = False

    @torch.no_grad()
    def measure(self, model: nn.Module, x: Tensor) -> None:
        """Each prunable layer's output positions per input, from one forward of one input."""
        if self.positions is not None:
            return
        names = {id(w): n for n, w in masks.prunable(model).items()}
        found: dict[str, int] = {}

        def hook(module, _, out):
            name = names.get(id(module.weight))
            if name is not None and name not in found and torch.is_tensor(out):
                found[name] = out.numel() // max(1, len(out) * module.weight.shape[0])

        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, masks.PRUNABLE)]
        was_training = model.training
        model.eval()  # batch norm leaves its statistics alone; one input is enough
        try:
            model(x[:1])
        finally:
            model.train(was_training)
            for h in handles:
                h.remove()
        # a layer the forward never uses costs nothing
        self.positions = {n: found.get(n, 0) for n in names.values()}

    def forward(self, kept: dict[str, int]) -> int:
        """Forward FLOPs of one input at these kept counts."""
        return sum(k * self.positions[n] for n, k in kept.items())

    def add(self, kept: dict[str, int], inputs: int, passes: int = 3) -> None:
        if not self.paused:
            self.spent += passes * inputs * self.forward(kept)

    def report(self, mask: masks.Mask, epochs: int) -> dict[str, float]:
        """{"training", "inference"} relative to dense, the reference: 3x the dense forward of every
        input of epochs 0 .. ``epochs`` - 1; and absolute: ``training_flops`` (what was counted)
        and ``dense_epoch_flops`` (3x the dense forward of every input of one epoch, the first),
        so that the report divides by a dense training of any number of epochs (docs/method.md,
        "Cost")."""
        full = {n: m.numel() for n, m in mask.items()}
        dense = self.forward(full)
        inputs = sum(v for (e, _), v in self.batches.items() if e < epochs)
        epoch = sum(v for (e, _), v in self.batches.items() if e == 0)
        return {"training": self.spent / max(1, 3 * inputs * dense),
                "inference": self.forward({n: int(m.sum()) for n, m in mask.items()}) / max(1, dense),
                "training_flops": self.spent, "dense_epoch_flops": 3 * epoch * dense}


class Trainee:
    """A model under training with its optimizer and mask; ``history`` has one entry per epoch.

    ``weights`` maps the prunable weights' names to them and ``mask`` their names to boolean masks;
    ``prunable`` lists the same weights in that order and ``mask_values`` their masks as 0/1 tensors
    of the weights' dtype (both set by ``set_mask``; read them, don't assign them). ``steps`` counts
    the training steps taken so far.

    ``final``: the mask will not change again in this run (what sparse compute waits for);
    ``sparse`` the layers computing on their kept weights now, by weight name (their dense weights
    in ``weights`` hold the kept values after every ``Trainer.advance``); ``compute_layers`` what
    each layer computes with once the mask is final, "sparse" or "dense" (None before);
    ``keeps_all`` whether the mask keeps every weight."""

    def __init__(self, model: nn.Module, settings: Settings, mask: masks.Mask, final: bool = False):
        self.model = model
        self.optimizer = settings.make(model.parameters())
        self.weights = masks.prunable(model)
        self.init = {n: w.detach().clone() for n, w in self.weights.items()}  # θ0
        self.history: list[dict] = []
        self.steps = 0
        self._loss = [0.0, 0]  # running (sum, count) of the current epoch's training loss
        self._seconds = 0.0
        self.final = final
        self.sparse: dict[str, sparse.SparseLinear] = {}
        self.compute_layers: dict[str, str] | None = None
        self.set_mask(mask)

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return len(self.history)

    @torch.no_grad()
    def set_mask(self, mask: masks.Mask) -> None:
        """Apply a mask: zero the removed weights and their optimizer state."""
        self.densify()
        self.mask = {n: m.to(self.weights[n].device) for n, m in mask.items()}
        self.kept = {n: int(m.sum()) for n, m in self.mask.items()}  # what a step costs (Cost)
        self.keeps_all = all(k == m.numel() for k, m in zip(self.kept.values(), self.mask.values()))
        self._dense = self.keeps_all
        self.prunable = list(self.weights.values())
        self.mask_values = [self.mask[n].to(w.dtype) for n, w in self.weights.items()]
        for w in self.prunable:  # a layer the forward never uses still gets a (zero) gradient to mask
            if w.grad is None:
                w.grad = torch.zeros_like(w)
        torch._foreach_mul_(self.prunable, self.mask_values)
        for w, m in zip(self.prunable, self.mask_values):
            for value in self.optimizer.state.get(w, {}).values():
                if torch.is_tensor(value) and value.shape == w.shape:
                    value.mul_(m)
        self._masked = (self.prunable, self.mask_values)

    def mask_grads(self) -> None:
        if not self._dense:
            torch._foreach_mul_([w.grad for w in self._masked[0]], self._masked[1])

    @torch.no_grad()
    def mask_weights(self) -> None:
        if not self._dense:
            torch._foreach_mul_(self._masked[0], self._masked[1])

    def sink_grads(self, sink: list[Tensor]) -> None:
        """Add this step's |∂L/∂θ| to ``sink`` (one tensor per prunable weight, its shape)."""
        if not self.sparse:
            torch._foreach_add_(sink, torch._foreach_abs([w.grad for w in self.prunable]))
            return
        for name, s in zip(self.weights, sink):
            layer = self.sparse.get(name)
            if layer is None:
                s.add_(self.weights[name].grad.abs())
            elif layer.values.grad is not None:
                s.view(-1).index_add_(0, layer.st.index, layer.values.grad.abs())

    @torch.no_grad()
    def go_sparse(self, names: list[str]) -> None:
        """The layers ``names`` compute on their kept weights from now on: the optimizer trains
        their values in place of their dense weights, its state taken at the kept positions."""
        names = [n for n in names if n not in self.sparse]
        if not names:
            return
        for name, layer in sparse.to_sparse(self.model, self.mask, names).items():
            w = self.weights[name]
            self.optimizer.swap(w, layer.values, layer.take)
            w.grad = None
            self.sparse[name] = layer
        self._split()

    @torch.no_grad()
    def densify(self) -> None:
        """Every layer back to its dense weight (the kept values written in, zeros elsewhere),
        its optimizer state spread back over the weight's shape."""
        if not getattr(self, "sparse", None):
            return
        for name, layer in self.sparse.items():
            w = self.weights[name]
            self.optimizer.swap(layer.values, w, layer.put)
            w.grad = torch.zeros_like(w)
        sparse.to_dense(self.model, self.sparse)
        self.sparse = {}
        self._split()

    @torch.no_grad()
    def sync(self) -> None:
        """The sparse layers' kept values into their dense weights (for whoever reads ``weights``)."""
        for layer in self.sparse.values():
            layer.write_back()

    def _split(self) -> None:
        """The weights still masked dense, and their masks."""
        pairs = [(w, m) for (n, w), m in zip(self.weights.items(), self.mask_values) if n not in self.sparse]
        self._masked = ([w for w, _ in pairs], [m for _, m in pairs])
        self._dense = all(k == m.numel() for n, k, m in zip(self.mask, self.kept.values(), self.mask.values())
                          if n not in self.sparse)

    def clone(self, settings: Settings, mask: masks.Mask) -> Trainee:
        """A fresh trainee from this one's θ0 with another mask (for K-starts candidates: a
        candidate's mask is final)."""
        self.densify()
        model = copy.deepcopy(self.model)
        with torch.no_grad():
            for name, w in masks.prunable(model).items():
                w.copy_(self.init[name])
        twin = Trainee(model, settings, mask, final=True)
        twin.init = self.init
        return twin

    def adopt(self, other: Trainee) -> None:
        """Take over another trainee's weights, optimizer state, mask and history, in place."""
        other.densify()
        self.densify()
        self.model.load_state_dict(other.model.state_dict())
        # same parameter order; a deep copy, since loading keeps tensors it could share
        self.optimizer.load_state_dict(copy.deepcopy(other.optimizer.state_dict()))
        self.history, self.steps = list(other.history), other.steps
        self._loss, self._seconds = list(other._loss), other._seconds
        self.set_mask(other.mask)


class Trainer:
    """Trains trainees on shared data, with a progress bar and a per-epoch history."""

    def __init__(self, train, val, test, settings: Settings, device, epochs: int,
                 eval_batch: int = 1024, task: tasks.Task | None = None,
                 target: Callable[[Tensor], Tensor] | None = None):
        self.train_batches, self.val, self.test = train, val, test
        # what the model learns: classification unless told; ``target`` maps a batch of inputs to
        # what a reconstruction reproduces (the dataset's Data.target; None: the inputs themselves)
        self.task, self.target = task or tasks.get("classification"), target
        self.settings, self.device, self.epochs = settings, device, epochs
        self.eval_batch = eval_batch
        self.steps_per_epoch = len(train)
        self.cost = Cost()
        self.seconds = 0.0  # measured time of the training steps and scoring passes that ``cost`` counts
        self.total_steps = epochs * self.steps_per_epoch  # the span of a learning-rate schedule
        self.bar = progress.bar(epochs, "training", "epoch")  # one per run, over its epochs; None in a log

    def loss(self, outputs: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """The task's loss of a batch's ``outputs`` (inputs ``x``, labels ``y``)."""
        return self.task.loss(outputs, tasks.targets(self.task, x, y, self.target))

    @property
    def device_kind(self) -> str:
        return torch.device(self.device).type

    def plan(self, t: Trainee) -> dict[str, str]:
        """What each of ``t``'s layers computes with once its mask is final ("sparse" or "dense")."""
        return sparse.plan(t.model, t.mask, self.settings.compute, self.device_kind)

    def trains_dense(self, t: Trainee) -> bool:
        """Whether ``t`` trains every layer dense (so that it may be stacked with others)."""
        return not t.final or "sparse" not in self.plan(t).values()

    def prepare(self, t: Trainee) -> None:
        """A trainee whose mask is final computes as the plan says from here on."""
        if not t.final:
            return
        if t.compute_layers is None:
            t.compute_layers = self.plan(t)
        t.go_sparse([n for n, c in t.compute_layers.items() if c == "sparse"])

    @contextmanager
    def scoring(self):
        """Time a pruner's scoring passes into ``seconds`` (as ``count_pass`` counts their FLOPs)."""
        began = time.perf_counter()
        try:
            yield
        finally:
            if not self.cost.paused:
                self.seconds += time.perf_counter() - began

    def count_pass(self, model: nn.Module, x: Tensor, mask: masks.Mask, passes: int = 3) -> None:
        """Count a scoring pass on ``x`` (forward and backward: 3x the forward) at ``mask``'s density."""
        self.cost.measure(model, x)
        self.cost.add({n: int(m.sum()) for n, m in mask.items()}, len(x), passes)

    def _count(self, t: Trainee, epoch: int, step: int, x: Tensor) -> None:
        if self.cost.positions is None:
            self.cost.measure(t.model, x)
        self.cost.batches.setdefault((epoch, step), len(x))
        self.cost.add(t.kept, len(x))

    def run(self, t: Trainee, epochs: int = 1, on_epoch_end: Callable[[Trainee], None] | None = None,
            grad_sink: list[Tensor] | None = None) -> None:
        """Train ``epochs`` whole epochs (pruning in ``on_epoch_end`` before the record)."""
        for _ in range(epochs):
            self.advance(t, self.steps_per_epoch - t.steps % self.steps_per_epoch, grad_sink, on_epoch_end)

    def advance(self, t: Trainee, n: int, grad_sink: list[Tensor] | None = None,
                on_epoch_end: Callable[[Trainee], None] | None = None) -> None:
        """Train ``t`` for ``n`` more steps; ``grad_sink`` (one tensor per prunable weight) accumulates Σ|∂L/∂θ|."""
        _train([(self, t)], n, [grad_sink], on_epoch_end)

    def together(self, trainees: list[Trainee], n: int, sinks: list[list[Tensor]],
                 stacked: bool | None = None) -> None:
        """Train trainees that stand at the same step ``n`` steps each, with the same batches:
        as one stacked model (``stacking.Vmapped``), or one by one.

        ``stacked=None`` stacks on CUDA, where one launch for k models pays; on this project's
        2-core CPU the stack measured no faster (9.1 dense epochs for k=8 either way, plus a
        few seconds of vmap warm-up), so the CPU trains one by one. Batch norm keeps running
        statistics per model, which a stack cannot: such models always go one by one."""
        if stacked is None:
            stacked = self.device.type == "cuda" if isinstance(self.device, torch.device) else False
        if (not stacked or len(trainees) == 1 or any(True for _ in trainees[0].model.buffers())
                or not all(self.trains_dense(t) for t in trainees)):  # sparse compute goes one by one
            for t, sink in zip(trainees, sinks):
                self.advance(t, n, sink)
            return
        _train([(self, t) for t in trainees], n, sinks, stack=stacking.Vmapped)

    def _step(self, t: Trainee, x: Tensor, y: Tensor, grad_sink) -> Tensor:
        params = t.optimizer.params
        had = [p.grad is not None for p in params]
        for p in params:  # autograd hands its gradients over: nothing zeroed, nothing added into (4% of a step)
            p.grad = None
        loss = self.loss(t.model(x), x, y)
        loss.backward()
        for p, kept in zip(params, had):  # one the forward left out: a zero gradient where zeroing left one
            if kept and p.grad is None:
                p.grad = torch.zeros_like(p)
        t.mask_grads()
        if grad_sink is not None:
            t.sink_grads(grad_sink)
        t.optimizer.step()
        t.mask_weights()
        return loss.detach()

    def _end_epoch(self, t: Trainee, on_epoch_end) -> None:
        began = time.perf_counter()
        if on_epoch_end is not None:
            on_epoch_end(t)
        loss_sum, count = t._loss
        train_loss = float(loss_sum) / max(count, 1)
        if not math.isfinite(train_loss):
            raise DivergedError(
                f"training diverged: the loss is {train_loss} in epoch {t.epoch + 1}; lower --lr"
            )
        metric = self.task.metric
        t.history.append({
            "epoch": t.epoch + 1,
            "train_loss": train_loss,
            f"val_{metric}": self.score(t.model, self.val),
            f"test_{metric}": self.score(t.model, self.test),
            "sparsity": masks.sparsity(t.mask),
            "seconds": t._seconds + time.perf_counter() - began,
        })
        t._loss, t._seconds = [0.0, 0], 0.0
        if self.bar is not None and t.epoch > self.bar.n:  # the furthest trainee's epochs (K-starts trains several)
            self.bar.update(t.epoch - self.bar.n)
            if self.bar.n >= self.epochs:
                progress.done(self.bar)

    @torch.no_grad()
    def record(self, model: nn.Module, split) -> Tensor | None:
        """The task's record of every example of ``split`` (whether the model classifies it
        right; its squared error), in the split's order: the paired test-set error of the
        verdict is counted from it."""
        if split is None:
            return None
        was_training = model.training
        model.eval()
        records = [self.task.per_example(model(x), tasks.targets(self.task, x, y, self.target)).cpu()
                   for x, y in _eval_batches(split, self.eval_batch, self.device)]
        model.train(was_training)
        return torch.cat(records) if records else torch.zeros(0)

    def score(self, model: nn.Module, split) -> float | None:
        """The task's metric on ``split`` (accuracy, reconstruction error)."""
        records = self.record(model, split)
        return None if records is None else self.task.score(records)


def _eval_batches(split, batch_size, device):
    if isinstance(split, tuple):
        x, y = split
        for i in range(0, len(y), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
    else:  # a DataLoader
        for x, y in split:
            yield x.to(device), y.to(device)


def train_group(pairs: list[tuple[Trainer, Trainee]], steps: int) -> list[BaseException | None]:
    """Train each (trainer, trainee) pair ``steps`` more steps: the seeds of one point, each on
    its own trainer (api.run_group). As one stack (``train_stacked``) where there are several,
    every one trains dense and the model is ``stacking.stackable``; else one by one. Returns,
    per pair, the error that stopped it (a diverged loss), None if it trained to the end."""
    if len(pairs) > 1 and stacking.stackable(pairs[0][1].model) and all(tr.trains_dense(t) for tr, t in pairs):
        return train_stacked(pairs, steps)
    return [_train([pair], steps, keep_going=True)[0] for pair in pairs]


def train_stacked(pairs: list[tuple[Trainer, Trainee]], steps: int) -> list[BaseException | None]:
    """``train_group``'s pairs as one ``stacking.Stack``: bitwise what each gets alone; a seed
    whose loss diverges leaves the stack and the others go on."""
    return _train(pairs, steps, stack=stacking.Stack, keep_going=True)


def _train(pairs: list[tuple[Trainer, Trainee]], n: int, sinks: list | None = None,
           on_epoch_end: Callable[[Trainee], None] | None = None, stack=None,
           keep_going: bool = False) -> list[BaseException | None]:
    """The training loop, the one every run goes through: ``n`` more steps of each (trainer,
    trainee) pair, all standing at the same step, each on its own trainer's batches (pairs of one
    trainer share them), counted (``Cost``), timed and, at each epoch's end, evaluated and
    recorded by its own trainer (pruning in ``on_epoch_end`` first). Alone (one pair), or as one
    stacked model (``stack``: a class of initprune/stacking.py). ``sinks``: per pair, a list of
    tensors accumulating Σ|∂L/∂θ|, or None. ``keep_going``: a pair whose loss diverges stops and
    the others go on, its error returned in its place; else the error is raised."""
    errors: list[BaseException | None] = [None] * len(pairs)
    sinks = sinks or [None] * len(pairs)
    if n <= 0 or not pairs:
        return errors
    if len({t.steps for _, t in pairs}) > 1:
        raise ValueError("the trainees trained together must stand at the same step")
    first = pairs[0][0]
    per_epoch, live = first.steps_per_epoch, list(range(len(pairs)))
    for _, t in pairs:
        t.model.train()

    def stacked():
        return stack([pairs[i][1] for i in live], first.settings, [sinks[i] for i in live], first.loss)

    together = stacked() if stack is not None else None
    while n > 0 and live:
        now = pairs[live[0]][1].steps
        epoch, start = divmod(now, per_epoch)
        todo = min(n, per_epoch - start)
        began = time.perf_counter()
        sources = {id(pairs[i][0]): pairs[i][0] for i in live}
        for s, drawn in enumerate(zip(*(tr.train_batches.epoch(epoch, start) for tr in sources.values()))):
            if s == todo:
                break
            batch = dict(zip(sources, drawn))
            xs = [batch[id(pairs[i][0])] for i in live]
            for i, (x, _) in zip(live, xs):
                trainer, t = pairs[i]
                trainer._count(t, epoch, start + s, x)  # measures the dense layers on the first step
                if s == 0:
                    trainer.prepare(t)
            if together is None:
                (trainer, t), (x, y) = pairs[live[0]], xs[0]
                trainer.settings.schedule(t.optimizer, now + s, trainer.total_steps)
                stepped = time.perf_counter()
                losses = [trainer._step(t, x, y, sinks[live[0]])]
            else:
                first.settings.schedule(together.optimizer, now + s, first.total_steps)
                stepped = time.perf_counter()
                losses = together.step([x for x, _ in xs], [y for _, y in xs])
            spent = (time.perf_counter() - stepped) / len(live)
            for i, loss in zip(live, losses):
                trainer, t = pairs[i]
                if not trainer.cost.paused:
                    trainer.seconds += spent
                t._loss[0] += loss
                t._loss[1] += 1
        n -= todo
        if together is not None:
            together.write_back()
        spent = (time.perf_counter() - began) / len(live)
        for i in live:
            t = pairs[i][1]
            t.steps += todo
            t.sync()
            t._seconds += spent
        if (now + todo) % per_epoch == 0:
            for i in list(live):
                try:
                    pairs[i][0]._end_epoch(pairs[i][1], on_epoch_end)
                except DivergedError as err:  # as it would alone: this one fails, the others go on
                    if not keep_going:
                        raise
                    errors[i] = err
                    live.remove(i)
            if together is not None and live and n > 0 and len(live) < together.k:
                together = stacked()
    return errors
