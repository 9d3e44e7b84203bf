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
