"""What the lenet300 epoch could lose, tried against what it does now: each change timed paired
with the current code (bench.py's ``paired``: interleaved, order alternating) and checked for
bitwise equal weights, since a change that moves a result is not a speed-up here.

    python benchmarks/hotpath.py [--rounds 5] [--images 60000]

- ``compile``: torch.compile of the step's forward and backward (the optimizer stays ours);
  its compilation and the compiler's import are reported apart, since every notebook kernel of
  a sweep would pay them again.
- ``fused_sgd``: torch's fused SGD kernel (``torch._fused_sgd_``) for our foreach step.
- ``zeroed_grads``: the step as it was: gradients zeroed, then autograd's added into them. The
  trainer now sets them to None before each backward, so that autograd hands its own over: the
  same bits, so kept; this line shows what that saves (a ratio above 1).
- ``eval_batch_B``: evaluation (Trainer.correct over 10,000 images, 1 thread) in batches of B
  against the trainer's 1024, lenet300 and lenet5, and whether every image is judged the same.

Writes benchmarks/hotpath.json.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, matmul_bound, mnist_like, paired  # noqa: E402

from initprune import masks, models  # noqa: E402
from initprune.data import Batches  # noqa: E402
from initprune.train import Settings, Trainee, Trainer  # noqa: E402


def epoch(x, y, change: str | None = None, sparsity: float = 0.9):
    """One lenet300 epoch as the trainer runs it, at ``sparsity``, with ``change`` applied; returns
    a function that runs it from the same θ0 and returns the weights."""
    def run():
        model = models.build("lenet300", (1, 28, 28), 10, 0)
        mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), sparsity)
        settings = Settings(batch_size=128)
        trainee = Trainee(model, settings, mask)
        trainer = Trainer(Batches(x, y, 128, seed=0), None, None, settings, "cpu", 1)
        if change:
            trainer._step = CHANGES[change](trainee)
        trainer.advance(trainee, len(trainer.train_batches))
        return [p.detach().clone() for p in model.parameters()]
    return run


def _compiled(t: Trainee):
    def loss_of(x, y):
        loss = F.cross_entropy(t.model(x), y)
        loss.backward()
        return loss.detach()
    loss_of = torch.compile(loss_of)

    def step(t_, x, y, sink):
        t.optimizer.zero_grad(set_to_none=False)
        loss = loss_of(x, y)
        t.mask_grads()
        t.optimizer.step()
        t.mask_weights()
        return loss
    return step


def _fused(t: Trainee):
    opt = t.optimizer
    group = opt.param_groups[0]

    def step(t_, x, y, sink):
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(t.model(x), y)
        loss.backward()
        t.mask_grads()
        params, grads = opt._with_grads()
        bufs = [opt.state[p].get("momentum_buffer") for p in params]
        first = bufs[0] is None
        if first:
            bufs = [torch.empty_like(p) for p in params]
            for p, b in zip(params, bufs):
                opt.state[p]["momentum_buffer"] = b
        with torch.no_grad():
            torch._fused_sgd_(params, grads, bufs, weight_decay=group["weight_decay"], momentum=group["momentum"],
                              lr=group["lr"], dampening=0.0, nesterov=False, maximize=False, is_first_step=first)
        t.mask_weights()
        return loss.detach()
    return step


def _zeroed(t: Trainee):
    """The step before this round: gradients zeroed and autograd's added into them."""
    def step(t_, x, y, sink):
        t.optimizer.zero_grad(set_to_none=False)
        loss = F.cross_entropy(t.model(x), y)
        loss.backward()
        t.mask_grads()
        t.optimizer.step()
        t.mask_weights()
        return loss.detach()
    return step


def _judge(batch: int, model, split) -> torch.Tensor:
    """Which images of ``split`` the model gets right, evaluated in batches of ``batch``."""
    trainer = Trainer(Batches(*split, 128, seed=0), None, None, Settings(), "cpu", 1, eval_batch=batch)
    return trainer.record(model, split)


CHANGES = {"compile": _compiled, "fused_sgd": _fused, "zeroed_grads": _zeroed}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="paired rounds per change (default 5)")
    p.add_argument("--images", type=int, default=60_000, help="images in the epoch (default 60000)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    x, y = mnist_like(args.images)
    ours = epoch(x, y)
    out = {"images": args.images, "threads": torch.get_num_threads(), "torch": torch.__version__}
    out["ours_vs_matmul_bound"] = paired(ours, matmul_bound(args.images, 128), args.rounds)
    reference = ours()
    for change in CHANGES:
        began = time.perf_counter()
        if change == "compile":
            importlib.import_module("torch._dynamo")  # its import, apart
            out["compile_import_s"] = time.perf_counter() - began
            began = time.perf_counter()
        weights = epoch(x, y, change)()  # compiles, where it does
        first = time.perf_counter() - began
        same = all(torch.equal(a.view(torch.int32), b.view(torch.int32))  # the bits: a zero's sign too
                   for a, b in zip(weights, reference))
        worst = max(float((a - b).abs().max()) for a, b in zip(weights, reference))
        ratios = paired(epoch(x, y, change), ours, args.rounds)
        out[change] = {"vs_ours": ratios, "median": statistics.median(ratios), "bitwise": same,
                       "max_abs_difference": worst, "first_epoch_s": first}
        print(f"{change:18s} {statistics.median(ratios):.3f} of our epoch ({min(ratios):.3f} - {max(ratios):.3f}), "
              f"bitwise {'equal' if same else f'different (max |Δw| {worst:.2g})'}, first epoch {first:.1f} s")
    torch.set_num_threads(1)
    for arch in ("lenet300", "lenet5"):
        model = models.build(arch, (1, 28, 28), 10, 0).eval()
        split = mnist_like(10_000, seed=1)
        judged = {b: _judge(b, model, split) for b in (256, 1024, 4096)}
        for b in (256, 4096):
            ratios = paired(functools.partial(_judge, b, model, split), functools.partial(_judge, 1024, model, split),
                            args.rounds)
            same = torch.equal(judged[b], judged[1024])
            out[f"eval_batch_{b}_{arch}"] = {"vs_ours": ratios, "median": statistics.median(ratios), "same": same}
            print(f"eval batch {b:5d} {arch:9s} {statistics.median(ratios):.3f} of batch 1024 "
                  f"({min(ratios):.3f} - {max(ratios):.3f}), every image judged the same: {same}")
    med = statistics.median(out["ours_vs_matmul_bound"])
    print(f"our epoch: {med:.2f}x its dense matmuls")
    if "compile_import_s" in out:
        print(f"torch._dynamo import: {out['compile_import_s']:.1f} s")
    (ROOT / "benchmarks" / "hotpath.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
