import pytest
import torch

from initprune import masks, models
from initprune.data import DATASETS
from initprune.errors import InitpruneError


def _builds(arch, shape) -> bool:
    try:
        models.build(arch, shape, 10, seed=0)
        return True
    except InitpruneError:
        return False


# each architecture with the smallest input, among the registered datasets', that it takes
SHAPES = {arch: min((DATASETS[d].shape for d in DATASETS.names() if _builds(arch, DATASETS[d].shape)),
                    key=lambda shape: torch.Size(shape).numel(), default=None)
          for arch in models.MODELS.names()}


def test_every_architecture_takes_the_inputs_of_a_registered_dataset():
    assert all(SHAPES.values()), {arch: shape for arch, shape in SHAPES.items() if shape is None}


@pytest.mark.parametrize("arch", models.MODELS.names())
def test_every_model_builds_and_runs(arch):
    model = models.build(arch, SHAPES[arch], 10, seed=0)
    out = model(torch.zeros(2, *SHAPES[arch]))
    # a classifier's logits; a reconstruction's output has its input's shape, in [0, 1] (a sigmoid)
    assert out.shape == {"classification": (2, 10), "reconstruction": (2, *SHAPES[arch])}[models.task_of(arch)]
    assert masks.prunable(model)


@pytest.mark.parametrize("arch", models.MODELS.names())
def test_same_seed_same_init_and_the_global_rng_untouched(arch):
    state = torch.get_rng_state()
    a, b = models.build(arch, SHAPES[arch], 10, 1), models.build(arch, SHAPES[arch], 10, 1)
    c = models.build(arch, SHAPES[arch], 10, 2)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_known_sizes():
    count = lambda m: sum(w.numel() for w in masks.prunable(m).values())  # noqa: E731
    assert count(models.build("mlp", (1, 8, 8), 10, 0)) == 64 * 300 + 300 * 100 + 100 * 10
    assert count(models.build("lenet300", (1, 28, 28), 10, 0)) == 784 * 300 + 300 * 100 + 100 * 10
    assert count(models.build("lenet5", (1, 28, 28), 10, 0)) == 150 + 2400 + 400 * 120 + 120 * 84 + 840
    assert count(models.build("cnn1d", (1, 40), 10, 0)) == 32 * 3 + 2 * 32 * 32 * 3 + 32 * 5 * 10  # 7,840
    assert count(models.build("mlp", (1, 40), 10, 0)) == 40 * 300 + 300 * 100 + 100 * 10
    for shape, n in (((1, 28, 28), 784), ((1, 8, 8), 64), ((1, 40), 40)):  # the paper's 784-256-64-256-784
        assert count(models.build("autoencoder", shape, 10, 0)) == n * 256 + 256 * 64 + 64 * 256 + 256 * n
    resnet = models.build("resnet20", (3, 32, 32), 10, 0)
    assert len(masks.prunable(resnet)) == 20  # 19 convolutions and the classifier
    assert 0.26e6 < count(resnet) < 0.28e6  # ResNet-20 has about 0.27M weights


def test_a_model_that_does_not_fit_the_input_is_a_clear_error():
    with pytest.raises(InitpruneError, match="does not fit inputs of shape"):
        models.build("lenet5", (1, 8, 8), 10, 0)


def test_cnn1d_refuses_images_in_one_line():
    with pytest.raises(InitpruneError, match="'cnn1d' needs sequences"):
        models.build("cnn1d", (1, 8, 8), 10, 0)


def test_architectures_declare_their_task():
    assert {arch: models.task_of(arch) for arch in models.MODELS.names()} == {
        **{arch: "classification" for arch in ("mlp", "lenet300", "lenet5", "conv6", "cnn1d", "resnet20")},
        "autoencoder": "reconstruction"}


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (1, 40), (3, 32, 32)])
def test_the_autoencoder_reconstructs_its_input_shape_in_the_unit_interval(shape):
    model = models.build("autoencoder", shape, 10, seed=0)
    out = model(torch.randn(5, *shape) * 10)
    assert out.shape == (5, *shape) and out.min() >= 0 and out.max() <= 1
    sizes = [(m.in_features, m.out_features) for m in model if isinstance(m, torch.nn.Linear)]
    n = torch.Size(shape).numel()
    assert sizes == [(n, 256), (256, 64), (64, 256), (256, n)]
    assert isinstance(model[-2], torch.nn.Sigmoid) and isinstance(model[-1], torch.nn.Unflatten)
