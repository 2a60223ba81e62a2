"""The PyTorch surface that tutorials use beyond the op table: devices, factories, dtypes,
tensor methods, legacy constructors, the known deviations. Same results and kinds of errors
as torch; skipped cleanly without torch."""

from __future__ import annotations

import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch")


def _plain(v):
    """A comparable value: tensors as (dtype name, values), containers element by element."""
    if isinstance(v, engine.Tensor | torch.Tensor):
        return ("tensor", str(v.dtype).split(".")[-1], tuple(v.shape),
                np.round(np.asarray(v.detach().numpy(), dtype=np.float64), 5).tolist(),
                v.requires_grad)
    if isinstance(v, engine.device | torch.device):
        return ("device", str(v), repr(v))
    if isinstance(v, tuple | list):
        return type(v).__name__ if type(v).__name__ in ("tuple", "list") else "tuple", \
            [_plain(x) for x in v]
    if isinstance(v, engine.dtype | torch.dtype):
        return ("dtype", str(v).split(".")[-1])
    if isinstance(v, str):
        return v.replace("engine.", "torch.")
    return v


def _both(fn):
    out = []
    for lib in (engine, torch):
        try:
            out.append(("ok", _plain(fn(lib))))
        except Exception as e:  # noqa: BLE001 - the kind of error is what is compared
            out.append(("error", type(e)))
    return out


SAME = {
    "device objects": lambda t: [t.device("cpu"), t.device("cuda:1"), t.device("cuda", 0),
                                 str(t.device("cpu")), t.device("cpu") == t.device("cpu")],
    "tensor.device": lambda t: [t.ones(2).device, str(t.ones(2).device), t.ones(2).is_cuda],
    "availability": lambda t: [t.cuda.is_available(), t.cuda.device_count(),
                               t.backends.mps.is_available(), t.accelerator.is_available(),
                               t.accelerator.current_accelerator()],
    "device= on factories": lambda t: [
        f(device=d) for d in ("cpu", t.device("cpu"), None)
        for f in (lambda **k: t.zeros(2, **k), lambda **k: t.ones(2, 2, **k),
                  lambda **k: t.full((2,), 3.0, **k), lambda **k: t.eye(2, **k),
                  lambda **k: t.arange(3, **k), lambda **k: t.linspace(0, 1, 5, **k),
                  lambda **k: t.tensor([1, 2], **k), lambda **k: t.zeros_like(t.ones(2), **k),
                  lambda **k: t.ones_like(t.ones(2), **k), lambda **k: t.empty(2, **k).shape)],
    "dtype= and requires_grad= on factories": lambda t: [
        t.zeros(2, dtype=t.float64, requires_grad=True), t.ones(2, 1, dtype=t.int32),
        t.full((2,), 7), t.full((2,), 7.5), t.full((1,), True), t.eye(2, 3, dtype=t.long),
        t.arange(0, 1, 0.25), t.arange(5, dtype=t.float32), t.arange(1, 10, 3),
        t.linspace(-1, 1, 4, dtype=t.float64), t.logspace(0, 2, 3),
        t.full_like(t.ones(2), 2, dtype=t.int64), t.ones(2).new_ones(3),
        t.ones(2, dtype=t.float64).new_zeros((2, 2)), t.ones(2).new_full((2,), 4.0),
        t.ones(2).new_tensor([1, 2]), t.zeros(2, 3).new_empty(1).shape],
    "shapes of random factories": lambda t: [
        (x.shape, x.dtype, x.requires_grad) for x in [
            t.rand(2, 3), t.randn((4,), dtype=t.float64), t.randint(0, 5, (3, 2)),
            t.randint(5, (2,)), t.randperm(4), t.rand_like(t.ones(2, 2)),
            t.randn_like(t.ones(3), dtype=t.float64), t.randn(2, requires_grad=True),
            t.normal(0.0, 1.0, (3,)), t.randint_like(t.ones(2), 3)]],
    "default dtype": lambda t: _default_dtype(t),
    "to and cpu": lambda t: [t.ones(2).to("cpu"), t.ones(2).to(t.device("cpu"), t.float64),
                             t.ones(2).to(dtype=t.int64), t.ones(2).cpu(),
                             t.ones(2).to(t.zeros(1, dtype=t.float64))],
    "type names": lambda t: [t.ones(2).type(), t.ones(2).long().type(), t.ones(2).bool().type(),
                             t.ones(2).type(t.float64), t.ones(2).type("torch.IntTensor"),
                             t.ones(1).double().type()],
    "legacy constructors": lambda t: [t.FloatTensor([1, 2]), t.LongTensor([1, 2]),
                                      t.LongTensor(2, 3).shape, t.Tensor([1, 2]),
                                      t.DoubleTensor([[1.5]]), t.BoolTensor([True]),
                                      isinstance(t.ones(2), t.FloatTensor),
                                      isinstance(t.ones(2), t.LongTensor)],
    "Variable": lambda t: [t.autograd.Variable(t.ones(2), requires_grad=True),
                           isinstance(t.ones(1), t.autograd.Variable)],
    "linear algebra": lambda t: _linalg(t),
    "statistics": lambda t: _stats(t),
    "selection": lambda t: _selection(t),
    "rearranging": lambda t: _rearranging(t),
    "comparisons": lambda t: _comparisons(t),
    "grad-mode decorator": lambda t: _decorated(t),
    "clone detach idioms": lambda t: _clone_detach(t),
    "Size slicing": lambda t: [str(t.ones(2, 3, 4).size()[1:]), t.ones(2, 3).shape[-1],
                               t.ones(2, 3).size(1), str(t.ones(2, 3).shape)],
    "hessian of 0-d inputs": lambda t: t.autograd.functional.hessian(
        lambda x, y: x * x * y + y.exp(), (t.tensor(1.0), t.tensor(2.0))),
    "jacobian of 0-d inputs": lambda t: t.autograd.functional.jacobian(
        lambda x, y: x * x * y, (t.tensor(1.0), t.tensor(2.0))),
}


def _default_dtype(t):
    before = t.get_default_dtype()
    t.set_default_dtype(t.float64)
    try:
        made = [t.tensor([1.5]), t.ones(2), t.tensor(1) / 2, t.arange(0.0, 1.0, 0.5),
                t.Tensor([1]), repr(t.tensor([1.5])), repr(t.ones(1, dtype=t.float32)),
                t.get_default_dtype()]
    finally:
        t.set_default_dtype(before)
    return [before, *made, t.get_default_dtype()]


def _linalg(t):
    a = t.tensor([[1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    v = t.tensor([0.5, -1.5], requires_grad=True)
    b = t.tensor([[[1.0, 0.0], [2.0, 1.0]]])
    outs = [t.mm(a, a), t.mv(a, v), t.dot(v, v), t.outer(v, v), t.bmm(b, b), a.norm(),
            t.norm(a, dim=1), a.norm(p=1), t.linalg.norm(v), t.linalg.vector_norm(a, ord=3),
            t.linalg.vector_norm(a, ord=float("inf"), dim=0), v @ a, a @ v, a.t() @ a,
            t.addmm(v, a, a), a.matmul(a), v.ger(v), t.matmul(b, v)]
    sum(o.sum() for o in outs if o.requires_grad).backward()
    return [*outs, [n.grad_fn.name() for n in outs if n.grad_fn], a.grad, v.grad]


def _stats(t):
    x = t.tensor([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]], requires_grad=True)
    outs = [x.std(), x.var(1), x.std(0, unbiased=False), t.var(x, dim=1, keepdim=True),
            x.var(correction=0), x.logsumexp(1), t.logsumexp(x, dim=(0, 1)), x.softmax(1),
            t.softmax(x, dim=0), x.log_softmax(-1), t.log_softmax(x, 1), x.cumsum(1),
            t.cumsum(x, dim=0)]
    sum(o.sum() for o in outs).backward()
    return [*outs, x.grad, t.tensor([1, 2, 3]).cumsum(0)]


def _selection(t):
    x = t.tensor([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]], requires_grad=True)
    idx = t.tensor([[2, 0], [1, 1]])
    s = x.sort(1)
    sd = t.sort(x, dim=0, descending=True)
    k = x.topk(2)
    ks = t.topk(x, 1, dim=0, largest=False)
    outs = [s.values, s.indices, sd.values, sd.indices, k.values, k.indices, ks.values,
            ks.indices, x.gather(1, idx), t.gather(x, 0, t.tensor([[1, 0, 1]])),
            x.index_select(1, t.tensor([2, 2, 0])), t.index_select(x, 0, t.tensor([1])),
            x.masked_fill(x > 1.5, -1.0), x.argmax(), x.argmax(1), x.argmin(0),
            x.argsort(1), t.zeros(2, 3).scatter_add(1, idx, x[:, :2]),
            t.where(x > 1, x, t.zeros_like(x)), x.max(1).values, x.min(0).indices]
    sum(o.sum() for o in outs if o.requires_grad).backward()
    return [*outs, x.grad]


def _rearranging(t):
    x = t.arange(24.0).reshape(2, 3, 4).requires_grad_()
    outs = [x.flatten(), x.flatten(1), t.flatten(x, 0, 1), x.unflatten(2, (2, 2)),
            x.repeat(1, 2, 1), x[0].tile(2), t.tile(x[0, 0], (2, 1)), *x.chunk(2, 2),
            *x.split(2, 1), *t.split(x, [1, 3], dim=2), x.narrow(2, 1, 2),
            t.narrow(x, 0, 1, 1), x.flip(0), t.flip(x, [1, 2]), *x.unbind(1), x.view(6, 4),
            x.view_as(t.zeros(4, 6)), x.reshape_as(t.zeros(24)), x.tril(), t.triu(x[0], 1)]
    sum((o * o).sum() for o in outs).backward()
    return [*outs, [o.grad_fn.name() for o in outs], x.grad]


def _comparisons(t):
    a = t.tensor([1.0, 2.0, float("inf"), float("nan")])
    b = t.tensor([1.0, 3.0, float("inf"), 0.0])
    return [a == b, a != b, a < b, a <= b, a > b, a >= b, t.logical_xor(a > 1, b > 1),
            (a > 1) & (b > 1), (a > 1) | (b > 1), ~(a > 1), (a > 1) ^ (b > 1), t.isinf(a),
            t.isnan(a), t.isfinite(a), t.isclose(a, b), a.eq(b), t.count_nonzero(a > 1),
            t.nonzero(a > 1), a.nonzero(as_tuple=True), t.equal(a[:2], a[:2]),
            t.allclose(a[:1], b[:1]), (a > 1).any(), (a > 1).all()]


def _decorated(t):
    @t.no_grad()
    def frozen(x):
        return x * 2

    @t.enable_grad()
    def live(x):
        return x * 2

    x = t.ones(2, requires_grad=True)
    with t.no_grad():
        y = live(x)
    return [frozen(x).requires_grad, y.requires_grad, t.is_grad_enabled()]


def _clone_detach(t):
    x = t.tensor([1.0, 2.0], requires_grad=True)
    y = x.clone().detach()
    z = x.detach().clone().requires_grad_(True)
    w = t.tensor(x.detach().numpy())
    y += 1
    return [y, z, w, x, z.is_leaf, y.requires_grad]


@pytest.mark.parametrize("case", sorted(SAME))
def test_same_as_torch(case):
    (k1, a), (k2, b) = _both(SAME[case])
    assert k1 == k2 == "ok", (a, b)
    assert a == b


ERRORS = {
    "cuda()": lambda t: t.ones(2).cuda(),
    "to('cuda')": lambda t: t.ones(2).to("cuda"),
    "factory on cuda": lambda t: t.zeros(2, device="cuda"),
    "unknown device": lambda t: t.device("gpu"),
    "int default dtype": lambda t: t.set_default_dtype(t.int64),
    "cat sizes": lambda t: t.cat([t.ones(2, 3), t.ones(2, 4)]),
    "cat ranks": lambda t: t.cat([t.ones(2, 3), t.ones(3)]),
    "stack sizes": lambda t: t.stack([t.ones(2), t.ones(3)]),
    "negative slice step": lambda t: t.ones(3)[::-1],
    "negative slice step, written": lambda t: t.ones(3).__setitem__(slice(None, None, -1), 0),
    "zero slice step": lambda t: t.ones(3)[::0],
    "mm of vectors": lambda t: t.mm(t.ones(2), t.ones(2)),
    "bmm batches": lambda t: t.bmm(t.ones(2, 2, 2), t.ones(3, 2, 2)),
    "dot of matrices": lambda t: t.dot(t.ones(2, 2), t.ones(2, 2)),
    "gather rank": lambda t: t.ones(2, 3).gather(1, t.tensor([0, 1])),
    "gather float index": lambda t: t.ones(2, 3).gather(1, t.tensor([[0.0]])),
    "index_select out of range": lambda t: t.ones(2, 3).index_select(1, t.tensor([3])),
    "masked_fill float mask": lambda t: t.ones(2).masked_fill(t.ones(2), 0.0),
    "topk too large": lambda t: t.ones(3).topk(4),
    "repeat too few": lambda t: t.ones(2, 2).repeat(2),
    "narrow past the end": lambda t: t.ones(3).narrow(0, 2, 2),
    "split sizes": lambda t: t.ones(3).split([1, 1]),
    "chunk zero": lambda t: t.ones(3).chunk(0),
    "std of ints": lambda t: t.tensor([1, 2]).std(),
    "norm of ints": lambda t: t.linalg.vector_norm(t.tensor([1, 2])),
    "softmax of ints": lambda t: t.tensor([1, 2]).softmax(0),
    "t of 3-D": lambda t: t.ones(2, 2, 2).t(),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_same_kind_of_error(case):
    (kind_e, e), (kind_t, t) = _both(ERRORS[case])
    assert kind_e == kind_t == "error", (e, t)
    assert issubclass(e, t) or issubclass(t, e), (e, t)
