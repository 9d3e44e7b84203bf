"""A plugin as a user's own package would write it: a pruner with one option, a model and a
dataset, registered from outside initprune. The tests name it with INITPRUNE_PLUGINS, or
declare it as an entry point, and never edit a file of initprune/ or notebooks/ for it."""

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from initprune import masks
from initprune.data import Data, dataset
from initprune.models import MODELS
from initprune.options import option
from initprune.pruners import PRUNERS, Context, Pruner
from initprune.train import Settings


@PRUNERS.register("mine")
@dataclass
class Mine(Pruner):
    """Keep the weights whose magnitude grew most in a few training steps from θ0."""

    family: ClassVar[str] = "baseline"  # a rival of the paper's methods in the claims
    invertible: ClassVar[bool] = True
    my_option: int = option(3, "training steps before the choice", check=lambda v: v >= 1,
                            must="an integer of at least 1")

    def prune(self, ctx: Context) -> dict:
        t = ctx.trainee
        ctx.trainer.advance(t, self.my_option)
        growth = {n: w.detach().abs() - t.init[n].abs() for n, w in t.weights.items()}
        if ctx.invert:
            growth = {n: -g for n, g in growth.items()}
        t.set_mask(masks.select(growth, self.sparsity))
        return {"steps": self.my_option}


@MODELS.register("tiny")
def tiny(input_shape, num_classes):
    """One hidden layer of 16 units."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 16), nn.ReLU(),
                         nn.Linear(16, num_classes))


@dataset("blobs", classes=3, shape=(2,), training=Settings(lr=0.05, momentum=0.9, batch_size=16))
def blobs(root):
    """Three Gaussian blobs in the plane: 240 train, 60 validation, 60 test."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(360) % 3
    x = torch.tensor([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])[y] + torch.randn(360, 2, generator=g)
    return Data((x[:240], y[:240]), (x[240:300], y[240:300]), (x[300:], y[300:]))
