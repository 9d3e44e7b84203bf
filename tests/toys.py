"""A tiny model and data, small enough for exact, hand-checkable masks."""

import torch
from torch import nn


class Toy(nn.Module):
    """Two linear layers and a conv: small enough for exact, hand-checkable masks."""

    def __init__(self, inputs=8, hidden=6, classes=3):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.fc1 = nn.Linear(2 * inputs, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = torch.relu(self.conv(x.view(len(x), 1, -1))).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def toy_data(n=96, inputs=8, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, inputs, generator=g)
    y = (x[:, :classes].argmax(1)).long()  # learnable labels
    return x, y


def toy_model(seed=0, **kw):
    from initprune.models import initialize

    return initialize(Toy(**kw), torch.Generator().manual_seed(seed))




def linear_chain(*sizes, bias=True):
    """nn.Sequential of Linear layers sizes[0] -> sizes[1] -> ... with ReLUs between."""
    layers = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers[:-1])
