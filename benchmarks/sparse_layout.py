"""What the layout of a sparse layer's input gradient costs a whole epoch: paired, in one run.

    python benchmarks/sparse_layout.py [--rounds N] [--sparsity S]

``SparseLinear``'s backward used to hand its input gradient back as a transposed view of the CSR
product; the ReLU's backward that receives it runs about 10x slower on that layout. It is
contiguous now (initprune/sparse.py, ``_Product.backward``), with bitwise the same values. Two
runs of ``benchmarks/sparse.py`` an hour apart cannot say how much of an epoch that saved: the
machine's own speed drifts between them. This trains three copies of LeNet-300-100 at one
sparsity on the same batches, in interleaved rounds (the order rotating), one thread, batch 128,
60,000 synthetic images an epoch: masked dense, ``compute: sparse`` as it is, and ``compute:
sparse`` with the old transposed gradient put back; it prints and writes (key
``sparse_gradient_layout`` of benchmarks/latest.json) each round's epoch ratios, their medians and
ranges, and checks that both sparse copies end with bitwise the same weights.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from initprune import masks, models, sparse
from initprune.data import Batches
from initprune.train import Settings, Trainee, Trainer

ROOT = Path(__file__).resolve().parent.parent
BATCH = 128
KINDS = ("dense", "contiguous", "transposed")


PRODUCT = sparse._Product  # the product as it is; a SparseLinear computes with whatever sparse._Product is


class _Transposed(PRODUCT):
    """The product with the old input gradient: the transposed view, as it was before."""

    @staticmethod
    def backward(ctx, g):
        gx, gv, gb, none = PRODUCT.backward(ctx, g)
        if gx is not None:
            n_in = ctx.st.shape[1]
            gx = gx.reshape(-1, n_in).mT.contiguous().mT.reshape(*ctx.lead, n_in)  # same values, transposed layout
        return gx, gv, gb, none


@contextlib.contextmanager
def _product(kind: str):
    """The old layout's product while the "transposed" copy trains; the product as it is otherwise."""
    sparse._Product = _Transposed if kind == "transposed" else PRODUCT
    try:
        yield
    finally:
        sparse._Product = PRODUCT


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (each: one epoch of each copy)")
    p.add_argument("--sparsity", type=float, default=0.98)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    n = 60_000
    model = models.build("lenet300", (1, 28, 28), 10, 0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    mask = masks.select(masks.random_scores(model, g), args.sparsity)
    pairs = {}
    for kind in KINDS:
        settings = Settings(lr=0.01, momentum=0.9, batch_size=BATCH, compute="dense" if kind == "dense" else "sparse")
        trainer = Trainer(Batches(x, y, BATCH, seed=0), None, None, settings, torch.device("cpu"), args.rounds + 1)
        trainee = Trainee(copy.deepcopy(model), settings, mask, final=True)
        with _product(kind):
            trainer.advance(trainee, 5)  # the layers switched to sparse, the kernels called once
        pairs[kind] = (trainer, trainee)
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in range(args.rounds):
        for kind in KINDS[r % 3:] + KINDS[:r % 3]:
            trainer, trainee = pairs[kind]
            with _product(kind):
                began = time.perf_counter()
                trainer.advance(trainee, trainer.steps_per_epoch)
                times[kind].append(time.perf_counter() - began)
    same = all(torch.equal(a, b) for a, b in zip(pairs["contiguous"][1].model.parameters(),
                                                  pairs["transposed"][1].model.parameters()))
    out: dict = {"sparsity": args.sparsity, "rounds": args.rounds, "examples": n, "batch": BATCH,
                 "bitwise_same_weights": same, "seconds": {k: statistics.median(v) for k, v in times.items()}}
    for name, (a, b) in {"transposed_over_dense": ("transposed", "dense"),
                         "contiguous_over_dense": ("contiguous", "dense"),
                         "contiguous_over_transposed": ("contiguous", "transposed")}.items():
        ratios = [u / v for u, v in zip(times[a], times[b])]
        out[name] = {"ratio": statistics.median(ratios), "range": [min(ratios), max(ratios)]}
        print(f"{name:28s} {out[name]['ratio']:.3f} ({min(ratios):.3f} - {max(ratios):.3f})")
    print("epoch seconds, median: " + ", ".join(f"{k} {v:.3f}" for k, v in out["seconds"].items())
          + f"; both sparse copies bitwise the same weights: {same}")
    latest = ROOT / "benchmarks" / "latest.json"
    data = json.loads(latest.read_text()) if latest.exists() else {}  # keys measured elsewhere stay
    data["sparse_gradient_layout"] = out
    latest.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {latest}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
