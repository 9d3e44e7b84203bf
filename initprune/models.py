"""Models by name. Each builder takes the dataset's input shape (C, H, W) and class count.

An architecture declares its task (``@declares("reconstruction")``; classification where it
declares none): a classifier returns (N, classes) logits, a reconstruction its input's shape.

Models are built on the meta device and initialized from a ``torch.Generator``, so building one
never touches the global RNG and the same seed always gives the same θ0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import seeds
from .errors import InitpruneError
from .registry import Registry

MODELS: Registry = Registry("architecture")


def declares(task: str):
    """Mark the decorated builder as a model of ``task`` (initprune/tasks.py)."""

    def mark(builder):
        builder.task = task
        return builder

    return mark


def task_of(arch: str) -> str:
    """The task architecture ``arch`` declares: classification unless its builder says otherwise."""
    return getattr(MODELS[arch], "task", "classification")


def build(arch: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    builder = MODELS[arch]
    model = _construct(arch, builder, input_shape, num_classes, "meta")  # shapes only: θ0 is drawn below
    if _set_buffers(model):
        # a buffer the constructor filled (a plugin's scale, a fixed projection) has no value on the
        # meta device and to_empty would leave it uninitialized memory: build it for real instead,
        # the global RNG untouched and any random draw of the constructor fixed by the seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds.derive(seed, "buffers"))
            model = _construct(arch, builder, input_shape, num_classes, "cpu")
    else:
        model = model.to_empty(device="cpu")
    initialize(model, seeds.generator(seed, "init"))
    return model


def _construct(arch: str, builder, input_shape, num_classes: int, device: str) -> nn.Module:
    try:
        with torch.device(device):
            return builder(input_shape, num_classes)
    except InitpruneError:
        raise
    except Exception as err:  # a plugin's builder, say: one line that names it
        first = (str(err).strip().splitlines() or [""])[0]
        raise InitpruneError(f"architecture '{arch}' cannot be built for inputs {tuple(input_shape)} and "
                             f"{num_classes} classes: {type(err).__name__}: {first}") from None


def _set_buffers(model: nn.Module) -> bool:
    """Whether a module holds a buffer ``initialize`` does not reset (batch norm's it does)."""
    return any(not isinstance(m, nn.modules.batchnorm._BatchNorm) and any(True for _ in m.buffers(recurse=False))
               for m in model.modules())


@torch.no_grad()
def initialize(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's default initialization of Linear/Conv/BatchNorm, drawn from ``generator``."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()
        elif any(True for _ in module.parameters(recurse=False)):
            raise InitpruneError(f"cannot initialize {type(module).__name__}: add it to models.initialize")
    return model


class MLP(nn.Sequential):
    def __init__(self, input_shape, num_classes, hidden=(300, 100)):
        sizes = [math.prod(input_shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        super().__init__(*layers, nn.Linear(sizes[-1], num_classes))


@MODELS.register("mlp")
def mlp(input_shape, num_classes):
    """LeNet-300-100 on whatever input it gets; on digits 64-300-100-10."""
    return MLP(input_shape, num_classes)


@MODELS.register("lenet300")
def lenet300(input_shape, num_classes):
    """LeNet-300-100 (LeCun et al. 1998): 784-300-100-10 on MNIST."""
    return MLP(input_shape, num_classes)


def _flat_size(features: nn.Module, input_shape, arch: str) -> int:
    size = input_shape
    with torch.device("meta"):
        try:
            size = features(torch.zeros(1, *input_shape)).shape
        except RuntimeError:
            raise InitpruneError(
                f"architecture '{arch}' does not fit inputs of shape {tuple(input_shape)}; "
                "pick mlp for digits (8x8), cnn1d or mlp for mnist1d, or a 28x28/32x32 dataset"
            ) from None
    return math.prod(size[1:])


@MODELS.register("lenet5")
def lenet5(input_shape, num_classes):
    """LeNet-5: two 5x5 convolutions with max pooling, then 120-84-classes."""
    features = nn.Sequential(
        nn.Conv2d(input_shape[0], 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    )
    flat = _flat_size(features, input_shape, "lenet5")
    return nn.Sequential(
        features, nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


@MODELS.register("conv6")
def conv6(input_shape, num_classes):
    """Conv-6 of Frankle & Carbin (2019): 64-64-pool-128-128-pool-256-256-pool, 256-256-classes."""
    layers: list[nn.Module] = []
    channels = input_shape[0]
    for width in (64, 128, 256):
        for _ in range(2):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2))
    features = nn.Sequential(*layers, nn.Flatten())
    flat = _flat_size(features, input_shape, "conv6")
    return nn.Sequential(
        features, nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )


@MODELS.register("cnn1d")
def cnn1d(input_shape, num_classes, channels=32):
    """For sequences (MNIST-1D): three 1-D convolutions of 32 channels, kernel 3, stride 2, with
    ReLU (length 40 -> 20 -> 10 -> 5), then a linear classifier; 7,840 prunable weights."""
    if len(input_shape) != 2:
        raise InitpruneError(f"architecture 'cnn1d' needs sequences (channels, length), got inputs of shape "
                             f"{tuple(input_shape)}; use mnist1d")
    layers: list[nn.Module] = []
    cin = input_shape[0]
    for _ in range(3):
        layers += [nn.Conv1d(cin, channels, 3, stride=2, padding=1), nn.ReLU()]
        cin = channels
    features = nn.Sequential(*layers, nn.Flatten())
    return nn.Sequential(features, nn.Linear(_flat_size(features, input_shape, "cnn1d"), num_classes))


class _Block(nn.Module):
    """Basic residual block; the shortcut pads channels (option A of He et al. 2016): no weights."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class ResNet20(nn.Module):
    def __init__(self, input_shape, num_classes, blocks=3):
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for i, width in enumerate((16, 32, 64)):
            for b in range(blocks):
                stages.append(_Block(cin, width, 2 if (i and not b) else 1))
                cin = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.stages(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@MODELS.register("resnet20")
def resnet20(input_shape, num_classes):
    """CIFAR ResNet-20 (He et al. 2016): 3 stages of 3 basic blocks, 16/32/64 channels."""
    if len(input_shape) != 3 or min(input_shape[1:]) < 8:
        raise InitpruneError("architecture 'resnet20' needs image inputs of at least 8x8; use cifar10")
    return ResNet20(input_shape, num_classes)


class AutoEncoder(nn.Sequential):
    """A fully connected autoencoder: the flattened input, ``hidden`` layers with ReLU, then a
    layer back to the input's size with a sigmoid, unflattened to the input's shape. A plain
    chain of modules, so that effective sparsity reads it as one."""

    def __init__(self, input_shape, hidden=(256, 64, 256)):
        sizes = [math.prod(input_shape), *hidden, math.prod(input_shape)]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers[-1] = nn.Sigmoid()
        super().__init__(*layers, nn.Unflatten(1, tuple(input_shape)))


@MODELS.register("autoencoder")
@declares("reconstruction")
def autoencoder(input_shape, num_classes):
    """The paper's autoencoder, 784-256-64-256-784 on 28x28 images (64-... on digits, 40-... on
    MNIST-1D): ReLU, a sigmoid output in [0, 1]; the class count is not used."""
    return AutoEncoder(input_shape)
