"""Faults of issue 13: runs that cannot fit in memory, outputs that cannot be written, valid
PyTorch models and loaders that fit misread, and training settings that are not numbers."""

import errno
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import initprune
from initprune import cli
from initprune.errors import InitpruneError
from initprune.train import Settings

from toys import Toy, toy_data, toy_model


def fit(model=None, train=None, test=None, **kw):
    return initprune.fit(model if model is not None else toy_model(), train=train or toy_data(),
                         test=test or toy_data(32, seed=1), device="cpu", batch_size=16,
                         **{"method": "random", "sparsity": 0.5, "epochs": 1, **kw})


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and "Traceback" not in text


def untouched(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    return lambda: all(torch.equal(before[k], v) for k, v in model.state_dict().items())


RUN = ["run", "--method", "random", "--epochs", "1", "--no-tracking"]


# ---- memory --------------------------------------------------------------------------------------

_CEILING = []


def _fence():
    """Cap this process's address space 1 GB above what it used at the first call: code that
    allocates without asking fails there, in seconds, instead of taking the shared machine
    down. One ceiling for all tests, since a failed test's traceback keeps what it allocated."""
    if not _CEILING:
        _CEILING.append(int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize() + 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_CEILING[0], hard))


@contextmanager
def memory_fence():
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    _fence()
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _fence_child():
    """The same for a command-line process: torch alone maps about 3 GB of address space."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (5 * 2**30, hard))


def wide_toy():
    return toy_model(inputs=64, hidden=512)  # about 1 MB a copy with its optimizer state


@pytest.mark.parametrize("options", [dict(method="kstarts", k=10**6),
                                     dict(method="kstarts", k=10**6, analysis=True),
                                     dict(method="combined", k=10**6, sparsity=0.9, epochs=4)],
                         ids=["kstarts", "kstarts-analysis", "combined"])
def test_a_k_that_cannot_fit_in_memory_is_refused_at_once(options):
    model = wide_toy()
    same = untouched(model)
    began = time.perf_counter()
    with memory_fence(), pytest.raises(InitpruneError) as err:
        fit(model, train=toy_data(inputs=64), test=toy_data(32, inputs=64, seed=1), **options)
    message = str(err.value)
    assert time.perf_counter() - began < 10
    assert "\n" not in message and "--k" in message
    assert "would hold about" in message and "available" in message
    assert same()


def test_a_normal_k_fits():
    result = fit(wide_toy(), train=toy_data(inputs=64), test=toy_data(32, inputs=64, seed=1),
                 method="kstarts", k=4)
    assert len(result.extra["candidates"]) == 4


def test_the_memory_estimate_is_not_far_below_what_candidates_really_take(monkeypatch):
    """A lower bound (activations are left out), but not a wild one: 200 toy candidates, each
    trained one step, against the bytes of every tensor they hold (weights, gradients, optimizer
    state, gradient sums): counted, not read off the process, whose size depends on the allocator
    and on what earlier tests freed. The per-object overheads are left out on both sides."""
    from initprune import memory, pruners
    from initprune.train import Trainee

    monkeypatch.setattr(memory, "TENSOR_OVERHEAD", 0)
    monkeypatch.setattr(memory, "MODULE_OVERHEAD", 0)
    model, settings = toy_model(), Settings(momentum=0.9)
    x, y = toy_data(16)
    base = Trainee(model, settings, initprune.masks.dense(model))
    cpu = torch.device("cpu")
    estimate = memory.estimate(model, pruners.make("kstarts", 0.5, k=200), settings, [], cpu)
    estimate -= memory.per_copy(model, settings, cpu)  # the run's own copy exists already
    held = [base.clone(settings, base.mask) for _ in range(200)]
    sinks = [[torch.zeros_like(w) for w in t.prunable] for t in held]
    for t in held:  # one step each: the optimizer state exists from here on
        nn.functional.cross_entropy(t.model(x), y).backward()
        t.optimizer.step()
    tensors = [v for t in held for p in t.model.parameters()
               for v in (p, p.grad, *t.optimizer.state.get(p, {}).values()) if torch.is_tensor(v)]
    tensors += [m for t in held for m in t.mask_values] + [s for sink in sinks for s in sink]
    measured = sum(v.numel() * v.element_size() for v in tensors)
    assert 0.5 * measured < estimate < 2 * measured, (estimate, measured)


def test_the_command_line_refuses_the_k_of_the_issue_in_one_line(tmp_path):
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "initprune", "run", "--method", "kstarts", "--k", "100000",
                           "--epochs", "1", "--no-tracking", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, preexec_fn=_fence_child)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert one_line(proc.stderr) and "initprune: error: " in proc.stderr and "--k" in proc.stderr
    assert not out.exists()


# ---- outputs --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--out", "--save-model"])
def test_an_unwritable_destination_is_refused_before_training(tmp_path, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    other = "--save-model" if flag == "--out" else "--out"
    kept = tmp_path / "other"
    proc = subprocess.run([sys.executable, "-m", "initprune", *RUN, flag, str(blocker / "x"), other, str(kept)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert one_line(proc.stderr) and proc.stderr.startswith(f"initprune: error: {flag} {blocker / 'x'}")
    assert "test accuracy" not in proc.stderr  # refused before training
    assert not kept.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def _fail_for(suffix):
    real = os.replace

    def replace(src, dst, *args, **kw):
        if str(dst).endswith(suffix):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(src, dst, *args, **kw)
    return replace


def test_a_result_that_cannot_be_written_after_training_goes_to_stdout_and_the_model_is_kept(
        tmp_path, capsys, monkeypatch):
    out, model = tmp_path / "r.json", tmp_path / "m.pt"
    monkeypatch.setattr(os, "replace", _fail_for(".json"))
    code = cli.main([*RUN, "--out", str(out), "--save-model", str(model)])
    captured = capsys.readouterr()
    assert code == 1
    assert one_line(captured.err) and f"--out {out}" in captured.err and "Read-only file system" in captured.err
    assert f"--save-model {model}" in captured.err  # says what was kept
    assert json.loads(captured.out)["method"] == "random"  # the result is not lost
    assert not out.exists() and set(initprune.api.load(model)) == {"state_dict", "mask"}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_a_model_that_cannot_be_saved_after_training_keeps_the_result(tmp_path, capsys, monkeypatch):
    out, model = tmp_path / "r.json", tmp_path / "m.pt"
    monkeypatch.setattr(os, "replace", _fail_for(".pt"))
    monkeypatch.setattr(torch, "save", _failing_save(torch.save))
    code = cli.main([*RUN, "--out", str(out), "--save-model", str(model)])
    captured = capsys.readouterr()
    assert code == 1
    assert one_line(captured.err) and f"--save-model {model}" in captured.err and f"--out {out}" in captured.err
    assert json.loads(out.read_text())["method"] == "random"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def _failing_save(real):
    """torch.save into the model's path fails as on a read-only disk (whatever name it writes)."""
    def save(obj, path, *args, **kw):
        if ".pt" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(obj, path, *args, **kw)
    return save


# ---- models and loaders fit must not misread -------------------------------------------------------

class Shared(nn.Module):
    """Two layers that use one weight Parameter (weight tying)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


def test_a_weight_shared_by_two_layers_gets_one_mask_counted_once():
    torch.manual_seed(0)
    model, x = Shared(), torch.randn(96, 16)
    y = x[:, :3].argmax(1)
    result = initprune.fit(model, (x, y), (x, y), method="random", sparsity=0.5, epochs=1, device="cpu")
    assert list(result.mask) == ["a.weight", "c.weight"]
    assert result.layers["a.weight"] == {"numel": 256, "kept": 128}
    zeros = int((model.a.weight == 0).sum()) + int((model.c.weight == 0).sum())
    assert result.sparsity_actual == pytest.approx(zeros / (256 + 48))


class Dicts(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


class Pair(nn.Module):
    """Returns (logits, features): a valid PyTorch model that fit cannot train as it is."""

    def __init__(self):
        super().__init__()
        self.net = toy_model()

    def forward(self, x):
        return self.net(x), x


class LateBadLabel(Dataset):
    """Labels in range except one in the last batch: only seen once training reaches it."""

    def __init__(self, x, y):
        self.x, self.y = x, y.clone()
        self.y[-1] = 9

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


X, Y = toy_data()
LOADER_FAULTS = [
    (dict(train=DataLoader(Dicts(X, Y), batch_size=16)), "train: the DataLoader yields dict batches"),
    (dict(model=Pair()), "the model returns a tuple"),
    (dict(model=Pair(), train=DataLoader(TensorDataset(X, Y), batch_size=16)), "the model returns a tuple"),
    (dict(train=DataLoader(TensorDataset(X, Y + 5), batch_size=16)), "label 7 is out of range for a model with 3"),
    (dict(test=DataLoader(TensorDataset(X, Y + 5), batch_size=16)), "label 7 is out of range for a model with 3"),
    (dict(train=DataLoader(TensorDataset(X, Y.float()), batch_size=16)), "integer class labels"),
    (dict(model=toy_model().half()), "float16"),
    (dict(model=toy_model().bfloat16()), "bfloat16"),
]


@pytest.mark.parametrize("kwargs,message", LOADER_FAULTS, ids=[m for _, m in LOADER_FAULTS])
def test_a_model_or_loader_fit_cannot_train_is_refused_in_one_line_before_training(kwargs, message):
    model = kwargs.pop("model", toy_model())
    same = untouched(model)
    with pytest.raises(InitpruneError) as err:
        fit(model, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert same()


def test_a_bad_label_late_in_a_loader_is_one_line_where_it_is_met():
    with pytest.raises(InitpruneError) as err:
        fit(train=DataLoader(LateBadLabel(X, Y), batch_size=16))
    assert "train: label 9 is out of range for a model with 3 outputs" in str(err.value)
    assert "\n" not in str(err.value)


class Recording(Toy):
    """Keeps the inputs of every training step."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.seen.append(x.clone())
        return super().forward(x)


def test_looking_at_a_shuffled_loader_first_does_not_change_the_order_training_sees():
    from initprune.models import initialize

    loader = DataLoader(TensorDataset(X, Y), batch_size=16, shuffle=True)
    torch.manual_seed(3)
    expected = [x for x, _ in loader]
    model = initialize(Recording(), torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    fit(model, train=loader)
    assert len(model.seen) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(model.seen, expected))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_inputs_of_another_float_dtype_are_converted_to_the_models(dtype):
    x, y = toy_data()
    result = fit(train=(x.to(dtype), y), test=(x.to(dtype), y), epochs=2)
    assert result.test_accuracy > 0.4
    loader = DataLoader(TensorDataset(x.to(dtype), y), batch_size=16)
    assert fit(train=loader, test=loader).epochs == 1


def test_a_float64_model_trains_in_float64():
    x, y = toy_data()
    model = toy_model().double()
    result = fit(model, train=(x, y), test=(x, y), method="kstarts", k=2, epochs=2)
    assert result.test_accuracy > 0.4
    assert all(p.dtype == torch.float64 for p in model.parameters())


# ---- training settings ----------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_SETTINGS = [
    (dict(lr=NAN), "lr"), (dict(lr=INF), "lr"), (dict(lr="0.1"), "lr"),
    (dict(momentum=NAN), "momentum"), (dict(momentum=INF), "momentum"), (dict(momentum=-1), "momentum"),
    (dict(weight_decay=NAN), "weight_decay"), (dict(weight_decay=INF), "weight_decay"),
    (dict(weight_decay=-1), "weight_decay"), (dict(batch_size=2.5), "batch_size"),
    (dict(batch_size=True), "batch_size"), (dict(batch_size=0), "batch_size"), (dict(lr=True), "lr"),
]


@pytest.mark.parametrize("kwargs,flag", BAD_SETTINGS, ids=[str(k) for k, _ in BAD_SETTINGS])
def test_a_training_setting_that_is_not_a_finite_number_is_refused_naming_it(kwargs, flag):
    with pytest.raises(InitpruneError) as err:
        Settings(**kwargs)
    assert str(err.value).startswith(flag + " must be") and "\n" not in str(err.value)
    model = toy_model()
    same = untouched(model)
    with pytest.raises(InitpruneError, match=flag):
        initprune.fit(model, toy_data(), toy_data(32, seed=1), method="random", sparsity=0.5, epochs=1,
                      device="cpu", **{"batch_size": 16, **kwargs})
    assert same()


@pytest.mark.parametrize("flag", ["--momentum", "--lr", "--weight-decay"])
def test_nan_on_the_command_line_is_refused_naming_its_flag(capsys, tmp_path, flag):
    out = tmp_path / "r.json"
    code = cli.main([*RUN, flag, "nan", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert one_line(err) and err.startswith(f"initprune: error: {flag} must be") and "lower --lr" not in err
    assert not out.exists()

