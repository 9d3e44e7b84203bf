"""Datasets by name, held in memory as tensors and batched by indexing.

``digits`` ships inside scikit-learn and works offline. ``mnist``, ``fashion_mnist`` and ``cifar10``
come through torchvision: read from ``--data-root`` (default ``data/`` at the repository root, or
``$INITPRUNE_DATA``), downloaded there when missing and a network is at hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import seeds
from .errors import InitpruneError
from .registry import Registry

DATASETS: Registry = Registry("dataset")
REPO_ROOT = Path(__file__).resolve().parent.parent
SPLIT_SEED = 20220906  # fixes the train/validation split of every dataset, independent of runs


@dataclass
class Data:
    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    num_classes: int
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train[0].shape[1:])


def default_root() -> Path:
    return Path(os.environ.get("INITPRUNE_DATA") or REPO_ROOT / "data")


def load(name: str, root: str | Path | None = None) -> Data:
    return DATASETS[name](Path(root) if root else default_root())


def _split(x: Tensor, y: Tensor, n_val: int, n_test: int = 0):
    """A fixed, seeded permutation into train / validation (/ test) parts."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    parts = [order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]]
    return [(x[i], y[i]) for i in parts]


def _standardize(x: Tensor, reference: Tensor) -> Tensor:
    """Per-channel mean 0, std 1, with statistics of the training images only."""
    dims = [d for d in range(reference.dim()) if d != 1]
    mean = reference.mean(dim=dims, keepdim=True)
    std = reference.std(dim=dims, keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


@DATASETS.register("digits")
def digits(root: Path) -> Data:
    """scikit-learn's 1,797 8x8 digits: 1,257 train, 180 validation, 360 test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    val, test, train = _split(x, y, n_val=180, n_test=360)
    norm = lambda xy: (_standardize(xy[0], train[0]), xy[1])  # noqa: E731
    return Data(norm(train), norm(val), norm(test), num_classes=10)


def _torchvision(cls_name: str, root: Path, name: str):
    """Both splits of a torchvision dataset: read locally, else downloaded, else a clear error."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    offline = os.environ.get("INITPRUNE_OFFLINE") == "1"
    splits = []
    for train in (True, False):
        try:
            splits.append(cls(str(root), train=train, download=False))
            continue
        except RuntimeError:
            if offline:
                reason = "INITPRUNE_OFFLINE=1 forbids the download"
            else:
                try:
                    splits.append(cls(str(root), train=train, download=True))
                    continue
                except Exception as err:  # no network, a mirror down, a bad checksum
                    reason = f"download failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
        raise InitpruneError(
            f"dataset '{name}' not found under {root} and {reason}; run once with internet, "
            f"or copy torchvision's {cls_name} files there (--data-root DIR or $INITPRUNE_DATA)"
        )
    return splits


def _images(data) -> Tensor:
    x = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)


def _from_torchvision(cls_name: str, root: Path, name: str, n_val: int, augment=None) -> Data:
    train_set, test_set = _torchvision(cls_name, root, name)
    x = _images(train_set.data).float() / 255.0
    y = torch.as_tensor(train_set.targets, dtype=torch.long)
    xt = _images(test_set.data).float() / 255.0
    yt = torch.as_tensor(test_set.targets, dtype=torch.long)
    n_val = min(n_val, len(y) // 5)
    val, _, train = _split(x, y, n_val=n_val)
    ref = train[0]
    norm = lambda xy: (_standardize(xy[0], ref), xy[1])  # noqa: E731
    return Data(norm(train), norm(val), norm((xt, yt)), num_classes=10, augment=augment)


@DATASETS.register("mnist")
def mnist(root: Path) -> Data:
    return _from_torchvision("MNIST", root, "mnist", n_val=5000)


@DATASETS.register("fashion_mnist")
def fashion_mnist(root: Path) -> Data:
    return _from_torchvision("FashionMNIST", root, "fashion_mnist", n_val=5000)


def crop_and_flip(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip of a whole batch at once."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device)
              .to(x.device))
    rows = (torch.arange(h, device=x.device) + dy[:, None])[:, None, :, None]  # (n, 1, h, 1)
    cols = (torch.arange(w, device=x.device) + dx[:, None])[:, None, None, :]  # (n, 1, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


@DATASETS.register("cifar10")
def cifar10(root: Path) -> Data:
    return _from_torchvision("CIFAR10", root, "cifar10", n_val=5000, augment=crop_and_flip)


class Batches:
    """Mini-batches of in-memory tensors, in an order fixed by (seed, epoch)."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, seed: int = 0, augment=None):
        self.x, self.y, self.batch_size, self.seed, self.augment = x, y, batch_size, seed, augment

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def generator(self, epoch: int) -> torch.Generator:
        return seeds.generator(self.seed, f"data:{epoch}", self.x.device)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        g = self.generator(epoch)
        order = torch.randperm(len(self.y), generator=g, device=self.x.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.x[idx]
            yield (self.augment(x, g) if self.augment else x), self.y[idx]


class LoaderBatches:
    """A user's DataLoader behind the same interface: its own order, one pass per epoch."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int, start: int = 0):
        for b, (x, y) in enumerate(self.loader):
            if b >= start:
                yield x.to(self.device), y.to(self.device)


def check_batch(name: str, batch, dtype: torch.dtype | None = None, classes: int | None = None):
    """One batch of a user's DataLoader as the (x, y) fit trains on, or one line saying why not:
    a dict, a label that is no class index, a label past the model's outputs. ``x`` comes back
    in ``dtype`` (the model's), ``y`` as int64."""
    if isinstance(batch, dict):
        raise InitpruneError(f"{name}: the DataLoader yields dict batches (keys {', '.join(map(str, batch))}); "
                             "fit needs (x, y) pairs of tensors: give the DataLoader a collate_fn that returns them")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(torch.is_tensor(t) for t in batch)):
        raise InitpruneError(f"{name}: the DataLoader yields {type(batch).__name__} batches; "
                             "fit needs (x, y) pairs of tensors")
    x, y = batch
    if y.dim() != 1 or len(y) != len(x) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise InitpruneError(f"{name}: y must be a 1-d tensor of integer class labels, one per row of x; "
                             f"got {y.dtype} {tuple(y.shape)} for {len(x)} rows")
    if classes is not None and len(y):
        low, top = int(y.min()), int(y.max())
        if low < 0 or top >= classes:
            bad = low if low < 0 else top
            raise InitpruneError(f"{name}: label {bad} is out of range for a model with {classes} outputs")
    return (x if dtype is None else x.to(dtype)), y.long()


class CheckedLoader:
    """A user's DataLoader whose every batch goes through check_batch: a bad label deep in an
    epoch is one clear line where it is met, not an IndexError (or a CUDA assert) in the loss."""

    def __init__(self, loader, name: str, dtype: torch.dtype, classes: int):
        self.loader, self.name, self.dtype, self.classes = loader, name, dtype, classes

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield check_batch(self.name, batch, self.dtype, self.classes)
