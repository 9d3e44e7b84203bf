"""initprune's optimizers against torch.optim's, bitwise: the same weights and the same state after
every step, through learning-rate changes, masked state, skipped gradients and a state round trip."""

import copy
import subprocess
import sys

import pytest
import torch

from initprune import masks, models, optim
from initprune.train import Settings, Trainee

CASES = {  # Settings: torch.optim's optimizer with the same hyperparameters
    "sgd": (dict(optimizer="sgd", lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, 0.1, 0.9, foreach=True)),
    "sgd, no momentum, L2": (dict(optimizer="sgd", lr=0.05, momentum=0.0, weight_decay=1e-3),
                             lambda p: torch.optim.SGD(p, 0.05, 0.0, weight_decay=1e-3, foreach=True)),
    "sgd, L2": (dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4),
                lambda p: torch.optim.SGD(p, 0.1, 0.9, weight_decay=5e-4, foreach=True)),
    "adam": (dict(optimizer="adam", lr=0.01), lambda p: torch.optim.Adam(p, 0.01, foreach=True)),
    "adam, L2": (dict(optimizer="adam", lr=0.01, weight_decay=1e-2),
                 lambda p: torch.optim.Adam(p, 0.01, weight_decay=1e-2, foreach=True)),
    "adamw": (dict(optimizer="adamw", lr=0.003, weight_decay=1e-2),
              lambda p: torch.optim.AdamW(p, 0.003, weight_decay=1e-2, foreach=True)),
}


def _pair(dtype):
    g = torch.Generator().manual_seed(0)
    ours = [torch.randn(s, generator=g, dtype=dtype, requires_grad=True) for s in ((30, 20), (30,), (10, 30), (10,))]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    return ours, theirs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_every_step_is_bitwise_torch_optims(case, dtype):
    kwargs, torch_optimizer = CASES[case]
    ours, theirs = _pair(dtype)
    a, b = Settings(**kwargs).make(ours), torch_optimizer(theirs)
    g = torch.Generator().manual_seed(1)
    for step in range(25):
        grads = [torch.randn(p.shape, generator=g, dtype=dtype) for p in ours]
        for p, q, grad in zip(ours, theirs, grads):
            p.grad, q.grad = grad.clone(), grad.clone()
        if step == 7:  # a parameter without a gradient this step is left alone, as torch.optim does
            ours[3].grad = theirs[3].grad = None
        if step % 5 == 4:  # a schedule sets the rate of each step
            for opt in (a, b):
                opt.param_groups[0]["lr"] *= 0.5
        if step == 10:  # a mask change zeroes part of the state (Trainee.set_mask)
            cut = (torch.arange(600) % 3 == 0).reshape(30, 20).to(dtype)
            for opt, p in ((a, ours[0]), (b, theirs[0])):
                for v in opt.state[p].values():
                    if v.shape == p.shape:
                        v.mul_(cut)
        a.step(), b.step()
        for p, q in zip(ours, theirs):
            assert torch.equal(p, q), f"{case}: step {step} differs"
            assert {k: v for k, v in a.state[p].items()}.keys() == b.state[q].keys()
            for key, v in a.state[p].items():
                assert torch.equal(torch.as_tensor(v), torch.as_tensor(b.state[q][key])), (case, step, key)
        a.zero_grad(set_to_none=False), b.zero_grad(set_to_none=False)
        assert all(torch.equal(p.grad, q.grad) for p, q in zip(ours, theirs) if q.grad is not None)


@pytest.mark.parametrize("case", ["sgd", "adam"])
def test_a_state_dict_carries_the_state_to_an_optimizer_over_other_tensors(case):
    kwargs, _ = CASES[case]
    ours, _ = _pair(torch.float32)
    twins = [p.detach().clone().requires_grad_() for p in ours]
    a, b = Settings(**kwargs).make(ours), Settings(**kwargs).make(twins)
    for _ in range(3):
        for p, q in zip(ours, twins):
            p.grad = torch.ones_like(p)
            q.grad = torch.ones_like(q)
        a.step()
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    with torch.no_grad():
        for p, q in zip(ours, twins):
            q.copy_(p)
    a.step(), b.step()
    assert all(torch.equal(p, q) for p, q in zip(ours, twins))
    assert a.state[ours[0]] is not b.state[twins[0]] and set(a.state[ours[0]]) == set(b.state[twins[0]])


def test_a_trainee_trains_as_with_torch_optim():
    """A few masked training steps of a real model: the same weights as with torch.optim.SGD."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    model = models.build("mlp", (1, 8, 8), 10, 0)
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.8)
    ours = Trainee(copy.deepcopy(model), Settings(), mask)
    theirs = Trainee(copy.deepcopy(model), Settings(), mask)
    theirs.optimizer = torch.optim.SGD(theirs.model.parameters(), 0.1, 0.9, foreach=True)
    for t in (ours, theirs):
        for i in range(0, 64, 16):
            t.optimizer.zero_grad(set_to_none=False)
            torch.nn.functional.cross_entropy(t.model(x[i:i + 16]), y[i:i + 16]).backward()
            t.mask_grads()
            t.optimizer.step()
            t.mask_weights()
    for p, q in zip(ours.model.parameters(), theirs.model.parameters()):
        assert torch.equal(p, q)


def test_training_does_not_import_the_compiler():
    """What the optimizers are for: a process that trains never imports torch._dynamo (2.5 s)."""
    code = ("import sys; from initprune import api; from initprune.spec import RunSpec; "
            "api.run(RunSpec(method='random', sparsity=0.5, epochs=1)); print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_an_empty_parameter_list_is_refused():
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD([], 0.1)


class _LeftOut(torch.nn.Module):
    """A model with a layer its forward never uses: it still gets a (zero) gradient."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc1, self.fc2, self.unused = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10), torch.nn.Linear(8, 8)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("case", ["sgd, L2", "adamw"])
def test_the_trainers_step_is_bitwise_the_step_on_zeroed_gradients(case):
    """The trainer hands autograd's gradients over instead of zeroing and adding into them: the
    same bits (signs of zeros included) as zero_grad(set_to_none=False), a left-out layer too."""
    from initprune.data import Batches
    from initprune.train import Trainer

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)
    settings = Settings(**CASES[case][0], batch_size=16)
    model = _LeftOut()
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.7)
    ours, theirs = Trainee(copy.deepcopy(model), settings, mask), Trainee(copy.deepcopy(model), settings, mask)
    trainer = Trainer(Batches(x, y, 16, seed=0), None, None, settings, "cpu", 1)
    trainer.advance(ours, 6)
    for xb, yb in trainer.train_batches.epoch(0, 0):
        theirs.optimizer.zero_grad(set_to_none=False)
        torch.nn.functional.cross_entropy(theirs.model(xb), yb).backward()
        theirs.mask_grads()
        theirs.optimizer.step()
        theirs.mask_weights()
    assert not torch.equal(theirs.model.unused.weight, model.unused.weight)  # weight decay moved the left-out layer
    for p, q in zip(ours.model.parameters(), theirs.model.parameters()):
        assert torch.equal(_bits(p), _bits(q))
        for key, value in theirs.optimizer.state[q].items():
            if torch.is_tensor(value) and value.shape == q.shape:
                assert torch.equal(_bits(ours.optimizer.state[p][key]), _bits(value))
