"""Sparse compute (initprune/sparse.py, Settings.compute): a layer whose mask is final trains on
its kept weights only, and agrees with masked dense within float tolerance, step by step and over
whole runs; pruned weights are exactly zero; the identity keeps every stored run's.

Tolerances, both sides computed on the machine that runs the test: one layer's forward and
gradients 1e-5 (float32; the sums run in another order); weights after 5 optimizer steps 1e-5
(SGD) and 1e-4 (Adam, AdamW, whose update divides by the root of a tiny second moment); whole
runs on digits, 3 seeds: the same masks where the mask does not depend on trained weights, the
mean test accuracy within 2 points."""

import copy
import statistics

import pytest
import torch
from torch import nn

from initprune import api, masks, sparse
from initprune import train as loop
from initprune.data import Batches
from initprune.spec import RunSpec
from initprune.train import Settings, Trainee, Trainer

from toys import linear_chain, toy_data, toy_model

OPTIMIZERS = {
    "sgd": (dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-3), 1e-5),
    "adam": (dict(optimizer="adam", lr=0.01, weight_decay=1e-3), 1e-4),
    "adamw": (dict(optimizer="adamw", lr=0.01, weight_decay=1e-2), 1e-4),
}


def test_one_layer_computes_what_the_masked_dense_layer_computes():
    g = torch.Generator().manual_seed(0)
    linear = nn.Linear(40, 30)
    mask = torch.rand(30, 40, generator=g) > 0.8
    with torch.no_grad():
        linear.weight.mul_(mask)
    layer = sparse.SparseLinear(linear, mask)
    assert torch.equal(layer.values, linear.weight.detach()[mask])  # CSR order is row-major
    x = torch.randn(2, 16, 40, generator=g, requires_grad=True)  # leading dims beyond the batch too
    dense_out, sparse_out = linear(x), layer(x)
    grad = torch.randn(dense_out.shape, generator=g)
    dx, dw, db = torch.autograd.grad(dense_out, (x, linear.weight, linear.bias), grad)
    sx, sv, sb = torch.autograd.grad(sparse_out, (x, layer.values, layer.bias), grad)
    for a, b in ((dense_out, sparse_out), (dx, sx), (dw[mask], sv), (db, sb)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    # laid out as a dense layer's input gradient (a ReLU's backward runs 10x slower on a transposed one)
    assert sx.is_contiguous() and sx.shape == dx.shape
    assert layer.bias is linear.bias
    small = sparse.Structure.of(mask[:5, :6])  # gradcheck, in float64, on a few weights (it is slow)
    values = torch.randn(len(small.index), dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(3, 6, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, v: sparse._Product.apply(x, v, None, small), (x, values))


def _pair(settings: dict, sparsity: float = 0.8):
    """A masked dense trainee and a sparse one, the same θ0 and mask, on the same batches."""
    model = linear_chain(16, 32, 24, 3)
    g = torch.Generator().manual_seed(1)
    mask = masks.select(masks.random_scores(model, g), sparsity)
    x, y = toy_data(n=64, inputs=16)
    trainers, trainees = [], []
    for compute in ("dense", "sparse"):
        s = Settings(batch_size=16, compute=compute, **settings)
        trainers.append(Trainer(Batches(x, y, 16, seed=0), None, None, s, "cpu", 2))
        trainees.append(Trainee(copy.deepcopy(model), s, mask, final=True))
    return trainers, trainees, mask


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_step_agrees_with_masked_dense_and_pruned_weights_stay_zero(name):
    settings, tol = OPTIMIZERS[name]
    (td, ts), (dense, sparse_), mask = _pair(settings)
    for step in range(5):
        td.advance(dense, 1)
        ts.advance(sparse_, 1)
        assert set(sparse_.sparse) == set(mask)  # every Linear computes sparse
        for n, w in dense.weights.items():
            layer = sparse_.sparse[n]
            assert torch.equal(layer.st.index, mask[n].flatten().nonzero().flatten())  # the same kept set
            assert torch.allclose(w.grad[mask[n]], layer.values.grad, atol=1e-5, rtol=1e-5), (name, step, n)
            assert torch.allclose(w.detach(), sparse_.weights[n].detach(), atol=tol, rtol=tol), (name, step, n)
            assert (sparse_.weights[n][~mask[n]] == 0).all()  # written back after every advance
    state = sparse_.optimizer.state
    for layer in sparse_.sparse.values():  # optimizer state for the kept values only
        assert all(v.shape == layer.values.shape for v in state[layer.values].values() if v.dim())
    sparse_.densify()  # back to the dense layers, the optimizer state spread back over the weights
    assert all(type(m) is not sparse.SparseLinear for m in sparse_.model.modules())
    assert [p.shape for p in sparse_.optimizer.params] == [p.shape for p in dense.optimizer.params]
    for p, q in zip(dense.optimizer.params, sparse_.optimizer.params):
        assert p.shape == q.shape
        for key, v in dense.optimizer.state[p].items():
            assert torch.allclose(v, sparse_.optimizer.state[q][key], atol=tol, rtol=tol), key
    td.advance(dense, 1)
    ts.advance(sparse_, 1)  # and on to sparse again
    for n, w in dense.weights.items():
        assert torch.allclose(w.detach(), sparse_.weights[n].detach(), atol=tol, rtol=tol)
        assert (sparse_.weights[n][~mask[n]] == 0).all()


def test_conv_layers_stay_dense_and_the_plan_follows_the_setting():
    model = toy_model()
    mask = masks.select(masks.random_scores(model, torch.Generator().manual_seed(0)), 0.5)
    assert sparse.plan(model, mask, "sparse", "cpu") == {"conv.weight": "dense", "fc1.weight": "sparse",
                                                           "fc2.weight": "sparse"}
    assert set(sparse.plan(model, mask, "dense", "cpu").values()) == {"dense"}
    assert set(sparse.plan(model, masks.dense(model), "sparse", "cpu").values()) == {"dense"}  # nothing pruned


def test_auto_is_the_committed_rule():
    """Sparse where the bench found it pays: a large Linear at high sparsity on the CPU; a small
    one, a dense-ish one, or a device kind the rule has no entry for stays dense."""
    assert sparse.decide("auto", "cpu", (300, 784), 4704)  # lenet300's first layer at 0.98
    assert not sparse.decide("auto", "cpu", (10, 100), 20)  # too small to pay the call overhead
    assert sparse.decide("auto", "cpu", (100, 300), 600)  # its second layer at 0.98
    assert not sparse.decide("auto", "cpu", (100, 300), 1500)  # at 0.95: about even, stays dense
    assert not sparse.decide("auto", "cpu", (64, 256), 327)  # about even at every sparsity
    assert not sparse.decide("auto", "cpu", (300, 784), 117600)  # half dense
    assert not sparse.decide("auto", "cuda", (300, 784), 4704)
    assert sparse.decide("sparse", "cuda", (10, 100), 20)


def test_the_identity_of_dense_is_unchanged_and_sparse_names_the_rule():
    spec = RunSpec(method="kstarts", sparsity=0.95, options={"k": 4})
    assert spec.hash() == "6776fe1b587d"  # pinned in tests/test_cli.py: stored runs keep theirs
    asked = RunSpec(method="kstarts", sparsity=0.95, options={"k": 4}, training={"compute": "dense"})
    assert asked.hash() == spec.hash()
    ident = {c: RunSpec(method="kstarts", sparsity=0.95, options={"k": 4}, training={"compute": c}).identity()
             for c in ("sparse", "auto")}
    assert all(i["compute_rule"] == sparse.RULE_VERSION and i["training"]["compute"] == c for c, i in ident.items())
    assert len({RunSpec(method="random", training={"compute": c}).hash() for c in sparse.COMPUTES}) == 3
    with pytest.raises(Exception, match="compute"):
        RunSpec(training={"compute": "fast"})


def _runs(method, options, compute, seeds=(0, 1, 2)):
    return [api.run(RunSpec(method=method, dataset="digits", arch="mlp", sparsity=0.9, epochs=3, seed=s,
                            options=options, training={"compute": compute}, device="cpu", threads=1))
            for s in seeds]


@pytest.mark.parametrize("method,options", [("random", {}), ("kstarts", {"k": 2})])
def test_a_whole_run_agrees_with_dense_compute(method, options):
    dense, sparse_ = _runs(method, options, "dense"), _runs(method, options, "sparse")
    for d, s in zip(dense, sparse_):
        assert set(s.compute_layers.values()) == {"sparse"} and set(d.compute_layers.values()) == {"dense"}
        assert 0 < s.training_seconds < s.seconds
        if method == "random":  # the mask does not depend on trained weights
            assert d.layers == s.layers and d.extra == s.extra
    mean = lambda rs: statistics.mean(r.test_accuracy for r in rs)  # noqa: E731
    assert abs(mean(dense) - mean(sparse_)) <= 0.02


def test_the_model_leaves_training_dense_with_its_pruned_weights_zero(tmp_path):
    config = RunSpec(method="random", sparsity=0.9, epochs=2, training={"compute": "sparse"})
    ckpt = tmp_path / "m.pt"
    result = api.run(config, save_model=ckpt)
    saved = api.load(ckpt)
    dense_keys = set(torch.load(ckpt, weights_only=True)["state_dict"])
    assert all(k.endswith((".weight", ".bias")) for k in dense_keys)
    for name, mask in saved["mask"].items():
        assert (saved["state_dict"][name][~mask] == 0).all() and (saved["state_dict"][name][mask] != 0).all()
        assert result.layers[name]["kept"] == int(mask.sum())


def test_a_group_of_seeds_stacks_only_when_every_seed_trains_dense(monkeypatch):
    stacked = []
    monkeypatch.setattr(loop, "train_stacked", lambda pairs, steps: stacked.append(len(pairs)) or [None] * len(pairs))
    configs = [RunSpec(method="random", sparsity=0.9, epochs=2, seed=s, training={"compute": "sparse"})
               for s in (0, 1)]
    out = api.run_group(configs)
    assert stacked == [] and all(set(r.compute_layers.values()) == {"sparse"} for r in out)


@pytest.mark.parametrize("bias", [True, False])
def test_the_output_is_no_view_so_an_in_place_operation_may_follow(bias):
    """The product comes back contiguous, as an ``nn.Linear``'s does (a model may ``view`` it),
    and owns its storage: ``relu_`` on it is allowed, and the gradients through two sparse
    layers are those of the dense ones."""
    g = torch.Generator().manual_seed(2)
    linear, after = nn.Linear(30, 20, bias=bias), nn.Linear(20, 10)
    mask, mask2 = torch.rand(20, 30, generator=g) > 0.7, torch.rand(10, 20, generator=g) > 0.7
    with torch.no_grad():
        linear.weight.mul_(mask)
        after.weight.mul_(mask2)
    first, second = sparse.SparseLinear(linear, mask), sparse.SparseLinear(after, mask2)
    x = torch.randn(8, 30, generator=g, requires_grad=True)
    hidden = first(x)
    assert not hidden._is_view() and hidden.is_contiguous() and hidden.view(-1).shape == (160,)
    out = second(hidden.relu_())
    ref = after(linear(x).relu())
    assert torch.allclose(out, ref, atol=1e-5)
    grads = torch.autograd.grad(out.sum(), (x, first.values))
    want = torch.autograd.grad(ref.sum(), (x, linear.weight))
    assert torch.allclose(grads[0], want[0], atol=1e-5) and torch.allclose(grads[1], want[1][mask], atol=1e-5)


def test_the_csr_matrix_is_built_once_and_sees_the_values_change_in_place():
    """W's CSR tensor is built once per mask over the values' own storage: an optimizer's
    in-place step is what the next product computes with; values in another storage (a copy)
    are computed with too, building their CSR afresh."""
    g = torch.Generator().manual_seed(3)
    linear = nn.Linear(12, 9)
    mask = torch.rand(9, 12, generator=g) > 0.5
    layer = sparse.SparseLinear(linear, mask)
    x = torch.randn(4, 12, generator=g)
    layer(x)
    built = layer.csr
    assert built.w.values().data_ptr() == layer.values.data_ptr()
    with torch.no_grad():
        layer.values.mul_(2)
    layer.write_back()
    assert torch.allclose(layer(x), linear(x), atol=1e-6) and layer.csr is built
    x.requires_grad_(True)
    assert torch.allclose(torch.autograd.grad(layer(x).sum(), x)[0],
                          torch.autograd.grad(linear(x).sum(), x)[0], atol=1e-6)  # Wᵀ's values follow too
    other = layer.values.detach().clone() * 3
    assert torch.allclose(sparse._Product.apply(x, other, None, built),
                          sparse._Product.apply(x, other, None, layer.st), atol=1e-6)


def test_torchs_beta_warning_is_silenced_where_the_layer_is_built_only():
    """torch warns once per process at the first CSR tensor; building a SparseLinear hides that
    one warning (it runs under ``-W error`` here) and adds no process-wide filter for it."""
    code = ("import torch, warnings; from torch import nn; from initprune import sparse; "
            "layer = sparse.SparseLinear(nn.Linear(6, 4), torch.rand(4, 6) > 0.5); "
            "layer(torch.randn(3, 6, requires_grad=True)).sum().backward(); "
            "assert not [f for f in warnings.filters if f[1] is not None and 'CSR' in f[1].pattern], "
            "warnings.filters")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
