"""Sparse compute: a Linear whose mask is final trains on its kept weights only.

A masked dense layer costs a dense layer's time whatever its sparsity. Here a layer of ``n_out``
x ``n_in`` weights with ``nnz`` kept computes

- the forward ``y = x Wᵀ + b`` as a CSR product ``(W xᵀ)ᵀ`` (``torch.sparse.mm``),
- the input gradient ``∂x = g W`` as ``(Wᵀ gᵀ)ᵀ`` with the transposed CSR structure,
- the weight gradient only at the kept positions: ``(gᵀ x)`` sampled at W's pattern (SDDMM,
  ``torch.sparse.sampled_addmm``; measured faster than gathering ``g[:, rows] * x[:, cols]``,
  and than the dense ``gᵀ x`` gathered, from 90% sparsity up),

in one ``autograd.Function`` whose saved state is the CSR structure, computed once per mask (its
transpose too), and whose trained tensor is a 1-d ``values`` Parameter of the kept weights in
CSR order. W's CSR tensor is built once too, over the values' own storage (``Bound``), so the
optimizer's in-place step needs no rebuild; the input's transpose is made once a step and serves
the forward and the weight gradient both (``_Product``). The optimizer holds ``values`` in place
of the dense weight, so momentum, Adam's moments and weight decay exist for the kept values
only, and a pruned weight is not stored at all: zero by construction. ``to_sparse`` swaps a
model's chosen Linear layers for ``SparseLinear`` (the bias stays the same Parameter);
``SparseLinear.write_back`` puts the kept values back into the dense weight, zeros elsewhere,
and ``to_dense`` swaps the original layers back in, so a model leaves training as it came in.

The sums run in another order than the dense product's, so results agree with masked dense
within float tolerance, not bitwise (tests/test_sparse.py).

``compute: auto`` asks ``RULES``: per device kind, tiers of the density under which a layer of
at least so many weights pays sparse, committed from ``benchmarks/sparse.py``'s measurement
(never measured at run time); ``RULE_VERSION`` is part of a run's identity whenever compute is
not dense.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

COMPUTES = ("dense", "sparse", "auto")

# Raise when the kernels or RULES change: a run that asked for sparse or auto computes otherwise.
# 2: _Product's layouts (xᵀ made contiguous once, the bias added inside the product), W's CSR built
# once, and the 300x100 tier of RULES.
RULE_VERSION = 2
# device kind -> tiers (most density, fewest weights): ``auto`` computes a Linear sparse where one
# tier holds. From benchmarks/sparse.py (one thread, batch 128, 5 interleaved rounds, this
# project's 2-core CPU at load 11-14; benchmarks/latest.json, "sparse_compute"): forward + input
# gradient + weight gradient of one layer, median ratio sparse / masked dense at s = 0.9, 0.95,
# 0.98, 0.99: 300x784 0.64, 0.55, 0.30, 0.29; 256x784 0.69, 0.69, 0.32, 0.42; 784x256 0.54, 0.43,
# 0.24, 0.21 (all pay: the first tier); 100x300 0.92, 0.93, 0.79, 0.77 (pays from 0.98 on, the
# second tier; the whole lenet300 epoch at 0.98 and 0.99 agreed: every layer sparse 0.45 and 0.46
# of dense, only the first 0.62 and 0.52); 64x256 1.27, 0.96, 1.03, 1.17 and 256x64 0.96, 1.00,
# 1.06, 1.37 (even at best); 10x100 1.7 - 3.2 (never: a sparse call's fixed cost of tens of
# microseconds is the small layer's whole time). CUDA: not measured, so auto stays dense there.
RULES: dict[str, tuple[tuple[float, int], ...]] = {
    "cpu": ((0.1, 100_000), (0.02, 20_000)),
}


@dataclass(frozen=True)
class Structure:
    """A mask's CSR structure, and its transpose's, computed once: ``index`` the flat positions
    of the kept weights in CSR (row-major) order, ``perm`` the order of the values in the
    transpose's CSR."""

    shape: tuple[int, int]  # (n_out, n_in)
    index: Tensor
    crow: Tensor
    col: Tensor
    crow_t: Tensor
    col_t: Tensor
    perm: Tensor

    @staticmethod
    def of(mask: Tensor) -> Structure:
        n_out, n_in = mask.shape
        index = mask.flatten().nonzero().flatten()
        rows, cols = index // n_in, index % n_in
        perm = torch.argsort(cols * n_out + rows)
        # int32 indices: torch's CPU kernels (MKL) take them as they are, int64 ones are converted every call
        small = torch.int32 if len(index) < 2**31 - 1 else torch.int64
        st = Structure((n_out, n_in), index, _crow(rows, n_out).to(small), cols.to(small),
                       _crow(cols[perm], n_in).to(small), rows[perm].to(small), perm)
        with warnings.catch_warnings():  # torch's "CSR support is in beta", said once per process at the
            # first CSR tensor built; the kernels used here are tested (tests/test_sparse.py)
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            values = torch.zeros(len(index), device=mask.device)
            torch.sparse_csr_tensor(st.crow, st.col, values, st.shape, check_invariants=True)  # once, checked
            torch.sparse_csr_tensor(st.crow_t, st.col_t, values, st.shape[::-1], check_invariants=True)
        return st

    def matrix(self, values: Tensor) -> Tensor:
        """W (n_out x n_in) as CSR with these values."""
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape, check_invariants=False)

    def transposed(self, values: Tensor, gathered: bool = False) -> Tensor:
        """Wᵀ (n_in x n_out) as CSR (``gathered``: the values are in the transpose's order already)."""
        values = values if gathered else values.index_select(0, self.perm)
        return torch.sparse_csr_tensor(self.crow_t, self.col_t, values, self.shape[::-1], check_invariants=False)


class Bound:
    """A ``Structure`` bound to one values tensor: W and Wᵀ as CSR tensors built once, W over the
    values' own storage (an optimizer's in-place step is seen without a rebuild), Wᵀ over a
    buffer the values are gathered into whenever it is asked for. Asked about any other tensor
    (another storage: a copy, a cast), it builds them afresh, as ``Structure`` does."""

    def __init__(self, st: Structure, values: Tensor):
        self.st, self.shape = st, st.shape
        self._values = values.detach()
        self._vt = self._values.index_select(0, st.perm)
        self.w, self.wt = st.matrix(self._values), st.transposed(self._vt, gathered=True)

    def _mine(self, values: Tensor) -> bool:
        return values.data_ptr() == self._values.data_ptr() and values.dtype == self._values.dtype

    def matrix(self, values: Tensor) -> Tensor:
        return self.w if self._mine(values) else self.st.matrix(values)

    def transposed(self, values: Tensor) -> Tensor:
        if not self._mine(values):
            return self.st.transposed(values)
        torch.index_select(self._values, 0, self.st.perm, out=self._vt)
        return self.wt


def _crow(rows: Tensor, n: int) -> Tensor:
    crow = torch.zeros(n + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n), 0)
    return crow


class _Product(torch.autograd.Function):
    """y = x Wᵀ + b with W sparse: every product a CSR one, the weight gradient an SDDMM.

    The CSR kernels take and give row-major matrices, and the products are those of the
    transposes (``yᵀ = W xᵀ``), so the layout decides the time: ``xᵀ`` is made contiguous once,
    saved, and serves the SDDMM too (which reads it as a column-major ``x``: 2.5x faster than a
    row-major one), and the bias is added inside the product. ``y`` comes back contiguous, as an
    ``nn.Linear``'s does (a model may ``view`` it), and owns its storage (no view: an in-place
    ``relu_`` may follow)."""

    @staticmethod
    def forward(ctx, x: Tensor, values: Tensor, bias: Tensor | None, st: Structure | Bound) -> Tensor:
        n_out, n_in = st.shape
        xt = x.reshape(-1, n_in).mT.contiguous()
        if bias is None:
            yt = torch.sparse.mm(st.matrix(values), xt)
        else:
            yt = torch.addmm(bias[:, None], st.matrix(values), xt)
        out = torch.empty(*x.shape[:-1], n_out, dtype=yt.dtype, device=yt.device)
        out.view(-1, n_out).copy_(yt.mT)
        ctx.save_for_backward(xt, values)
        ctx.st, ctx.lead, ctx.has_bias = st, x.shape[:-1], bias is not None
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        xt, values = ctx.saved_tensors
        st = ctx.st
        gt = g.reshape(-1, st.shape[0]).mT.contiguous()
        gx = gv = gb = None
        if ctx.needs_input_grad[0]:
            # contiguous, as a dense layer's input gradient is: the ReLU's backward before it
            # runs 10x slower on a transposed gradient (115 against 12 µs a batch of 128x300)
            gx = torch.sparse.mm(st.transposed(values), gt).mT.contiguous().view(*ctx.lead, st.shape[1])
        if ctx.needs_input_grad[1]:
            gv = torch.sparse.sampled_addmm(st.matrix(values), gt, xt.mT, beta=0.0).values()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gt.sum(1)
        return gx, gv, gb, None


class SparseLinear(nn.Module):
    """An ``nn.Linear`` under a final mask, computing on its kept weights only. ``values`` (1-d,
    CSR order) is the trained Parameter; ``bias`` is the Linear's own. ``linear`` is the layer
    it stands in for (held outside the module tree, so its dense weight is no parameter here)."""

    def __init__(self, linear: nn.Linear, mask: Tensor):
        super().__init__()
        self.st = Structure.of(mask.to(linear.weight.device))
        self.values = nn.Parameter(linear.weight.detach().flatten()[self.st.index].clone(),
                                   requires_grad=linear.weight.requires_grad)
        self.bias = linear.bias
        self.csr: Bound | None = None
        self.__dict__["linear"] = linear
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        if self.csr is None or not self.csr._mine(self.values):  # built once per mask (and values storage)
            self.csr = Bound(self.st, self.values)
        return _Product.apply(x, self.values, self.bias, self.csr)

    @torch.no_grad()
    def write_back(self) -> None:
        """The kept values into the dense weight; every other weight zero."""
        w = self.linear.weight
        w.zero_()
        w.view(-1)[self.st.index] = self.values.detach()

    def take(self, dense: Tensor) -> Tensor:
        """A tensor shaped like the weight (an optimizer state), at the kept positions."""
        return dense.flatten()[self.st.index].clone()

    def put(self, values: Tensor) -> Tensor:
        """Values (an optimizer state) as a tensor shaped like the weight, zeros elsewhere."""
        out = torch.zeros(self.st.shape, dtype=values.dtype, device=values.device)
        out.view(-1)[self.st.index] = values
        return out

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kept={len(self.st.index)}"


def identity(compute: str) -> dict:
    """What a run's identity adds for ``compute``: nothing for dense (its neutral value, so stored
    identities stay), else the rule's version (the setting itself is in the training settings)."""
    return {} if compute == "dense" else {"compute_rule": RULE_VERSION}


def eligible(model: nn.Module) -> dict[str, nn.Linear]:
    """The layers sparse compute can take, by their weight's name: plain ``nn.Linear`` (a
    subclass may compute otherwise) whose weight no other layer shares. Conv layers stay dense."""
    users: dict[int, int] = {}
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, Tensor):
            users[id(w)] = users.get(id(w), 0) + 1
    return {f"{name}.weight" if name else "weight": m for name, m in model.named_modules()
            if name and type(m) is nn.Linear and users[id(m.weight)] == 1}


def decide(compute: str, device_kind: str, shape: tuple[int, ...], kept: int) -> bool:
    """Whether a Linear of this weight shape and kept count computes sparse under ``compute``.
    ``sparse``: whenever it is pruned at all; ``auto``: where ``RULES`` says it pays."""
    numel = 1
    for d in shape:
        numel *= d
    if compute == "dense" or kept >= numel:
        return False
    if compute == "sparse":
        return True
    return any(kept / numel <= density and numel >= fewest for density, fewest in RULES.get(device_kind, ()))


def plan(model: nn.Module, mask: dict[str, Tensor], compute: str, device_kind: str) -> dict[str, str]:
    """Per prunable weight name, "sparse" or "dense": what each layer computes with."""
    if compute not in COMPUTES:
        raise ValueError(f"compute must be one of {', '.join(COMPUTES)}, got {compute!r}")
    layers = eligible(model)
    return {n: "sparse" if n in layers and decide(compute, device_kind, tuple(m.shape), int(m.sum())) else "dense"
            for n, m in mask.items()}


def to_sparse(model: nn.Module, mask: dict[str, Tensor], names) -> dict[str, SparseLinear]:
    """Swap the Linear layers of ``names`` (weight names) for ``SparseLinear`` under ``mask``."""
    layers = eligible(model)
    out = {}
    for name in names:
        linear = layers[name]
        out[name] = layer = SparseLinear(linear, mask[name])
        _swap(model, name.removesuffix("weight").removesuffix("."), layer)
    return out


def to_dense(model: nn.Module, layers: dict[str, SparseLinear]) -> None:
    """Write each layer's values back and put the original Linear back in its place."""
    for name, layer in layers.items():
        layer.write_back()
        _swap(model, name.removesuffix("weight").removesuffix("."), layer.linear)


def _swap(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
