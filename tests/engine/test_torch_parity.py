"""Differential tests: the same calls on engine and torch give the same numbers, flags,
node names and kinds of errors. Skipped cleanly when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

import engine

torch = pytest.importorskip("torch")


def _both(fn):
    out = []
    for lib in (engine, torch):
        try:
            out.append(("ok", fn(lib)))
        except Exception as e:  # noqa: BLE001 - the kind of error is what is compared
            out.append(("error", type(e)))
    return out


ERRORS = {
    "broadcast mismatch": lambda t: t.randn(2, 3) + t.randn(2, 4),
    "matmul shapes": lambda t: t.randn(2, 3) @ t.randn(2, 3),
    "implicit grad of non-scalar": lambda t: (t.ones(2, requires_grad=True) * 2).backward(),
    "backward without grad": lambda t: t.tensor(1.0).backward(),
    "in-place on leaf": lambda t: t.ones(2, requires_grad=True).add_(1),
    "int requires grad": lambda t: t.tensor([1, 2], requires_grad=True),
    "numpy of grad tensor": lambda t: t.ones(1, requires_grad=True).numpy(),
    "item of many": lambda t: t.ones(2).item(),
    "index out of range": lambda t: t.ones(3)[3],
    "hook without grad": lambda t: t.ones(1).register_hook(lambda g: g),
    "bad view": lambda t: t.ones(2).view(-1, 3),
    "view of transpose": lambda t: t.ones(3, 3).t().view(9),
    "dim out of range": lambda t: t.ones(2, 2).sum(dim=3),
    "second backward": lambda t: _twice(t),
    "stack unequal": lambda t: t.stack([t.ones(2), t.ones(3)]),
    "non-leaf requires_grad=False": lambda t: _unflag(t),
    "int to float in place": lambda t: t.tensor([1, 2]).add_(0.5),
    "gelu of int": lambda t: t.nn.functional.gelu(t.tensor([1, 2])),
    "gelu approximate": lambda t: t.nn.functional.gelu(t.ones(2), approximate="erf"),
    "silu of int": lambda t: t.nn.functional.silu(t.tensor([1, 2])),
    "elu of int": lambda t: t.nn.functional.elu(t.tensor([1, 2])),
    "leaky_relu of int": lambda t: t.nn.functional.leaky_relu(t.tensor([1, 2])),
    "logsigmoid of int": lambda t: t.nn.functional.logsigmoid(t.tensor([1, 2])),
}


def _twice(t):
    x = t.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward()
    y.backward()


def _unflag(t):
    y = t.ones(1, requires_grad=True) * 2
    y.requires_grad = False


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_same_kind_of_error(case):
    (kind_e, e), (kind_t, t) = _both(ERRORS[case])
    assert kind_e == kind_t == "error"
    assert issubclass(e, t) or issubclass(t, e), (e, t)


FLAGS = {
    "leaf flags": lambda t: [(x.is_leaf, x.requires_grad, x.grad_fn is None) for x in
                             [t.tensor(1.0, requires_grad=True), t.tensor(1.0)]],
    "result flags": lambda t: [(y.is_leaf, y.requires_grad, y.grad_fn.name()) for y in
                               [t.tensor(1.0, requires_grad=True) * 2]],
    "no_grad result": lambda t: _no_grad_flags(t),
    "detach": lambda t: [(d.is_leaf, d.requires_grad) for d in
                         [(t.tensor(1.0, requires_grad=True) * 2).detach()]],
    "next_functions": lambda t: [(n.name() if n is not None else None, k) for n, k in
                                 (t.tensor(1.0, requires_grad=True) * 2 + 1)
                                 .grad_fn.next_functions],
    "reflected next_functions": lambda t: [
        [(n.name() if n is not None else None, k) for n, k in y.grad_fn.next_functions]
        for x in [t.tensor(1.0, requires_grad=True)] for y in (1 + x, 2 * x, 1.5 - x)],
    "dtypes": lambda t: [str((a + b).dtype).split(".")[1] for a, b in [
        (t.tensor([1, 2]), 1.5), (t.tensor([1.0]), t.tensor(1.0, dtype=t.float64)),
        (t.tensor(True), 2), (t.tensor([1, 2]), t.tensor([1, 2])),
        (t.tensor(1, dtype=t.int32), t.tensor(1))]],
    "numpy scalars": lambda t: _numpy_scalar_dtypes(t),
    "repr": lambda t: [repr(x).replace("torch.", "").replace("engine.", "") for x in [
        t.tensor([[1.5, -2.25], [1e-3, 100.0]]), t.tensor([1e10, 1.0]),
        t.arange(12).reshape(3, 4), t.tensor([True, False]), t.ones(2, dtype=t.float64),
        t.tensor(0.1234567), t.tensor([-0.0, 0.5]), t.zeros(3, requires_grad=True)]],
    "activation modules": lambda t: [repr(m) for m in [
        t.nn.GELU(), t.nn.GELU("tanh"), t.nn.SiLU(), t.nn.ELU(alpha=0.5), t.nn.LeakyReLU(0.2),
        t.nn.Softsign(), t.nn.LogSigmoid()]],
    "activations at kinks and extremes": lambda t: [
        [round(v, 6) for v in f(x).tolist()] + [round(v, 6) for v in g.tolist()]
        for x in [t.tensor([-1e3, -0.0, 0.0, 1e3], dtype=t.float64, requires_grad=True)]
        for f in [t.nn.functional.gelu, t.nn.functional.silu, t.nn.functional.elu,
                  lambda v: t.nn.functional.leaky_relu(v, 0.3), t.nn.functional.softsign,
                  t.nn.functional.logsigmoid]
        for g in t.autograd.grad(f(x).sum(), x)],
    "softsign of int": lambda t: [str(t.nn.functional.softsign(t.tensor([1, -3])).dtype)
                                  .split(".")[1]],
}


def _numpy_scalar_dtypes(t):
    # torch takes a NumPy scalar as a Python number: float32 stays float32, on either side
    # (NumPy itself would make np.float64 win), and the gradient keeps the input's dtype.
    x = t.tensor([1.0, 2.0], requires_grad=True)
    results = [x * np.float64(2), np.float64(1.25) + x, np.float32(1.5) * x, x - np.float32(1),
               t.tensor([1, 2]) * np.float64(1.5), t.tensor([1, 2]) + np.int64(3),
               x.double() + np.float32(1)]
    sum(r.sum() for r in results if r.requires_grad).backward()
    return [str(r.dtype).split(".")[1] for r in results] + [str(x.grad.dtype).split(".")[1]]


def _no_grad_flags(t):
    x = t.tensor(1.0, requires_grad=True)
    with t.no_grad():
        y = x * 2
    return [(y.requires_grad, y.grad_fn is None, t.is_grad_enabled())]


@pytest.mark.parametrize("case", sorted(FLAGS))
def test_same_flags_names_and_repr(case):
    (k1, a), (k2, b) = _both(FLAGS[case])
    assert k1 == k2 == "ok"
    assert a == b


def test_same_numbers_on_random_graphs():
    rng = np.random.default_rng(1)
    for _ in range(20):
        data = rng.uniform(0.5, 1.5, (3, 4))
        results = []
        for lib in (engine, torch):
            x = lib.tensor(data, requires_grad=True)
            y = (x.exp() * x.sin() / (1 + x ** 2)).log1p()
            z = (y @ x.t()).tanh().sum(dim=0).max() + y.mean(dim=1).prod()
            z.backward()
            results.append((z.item(), x.grad.numpy().copy()))
        assert np.isclose(results[0][0], results[1][0], rtol=1e-12)
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)


def test_leaf_hooks_run_in_torchs_order_in_every_step():
    # torch runs a leaf's AccumulateGrad as soon as its gradient is complete, not after every
    # other node: w2's hook comes before h's, w1's after, in every step of a training loop.
    def order(lib):
        seen = []
        w1 = lib.tensor([1.0, 2.0], requires_grad=True)
        w2 = lib.tensor([3.0, 4.0], requires_grad=True)
        for name, t in (("w1", w1), ("w2", w2)):
            t.register_hook(lambda g, name=name: seen.append((name, g.tolist())))
        for _ in range(3):
            h = (lib.tensor([0.5, 0.25]) * w1).tanh()
            h.register_hook(lambda g: seen.append(("h", g.tolist())))
            ((h * w2).sum() + (w2 * w2).sum()).backward()
            with lib.no_grad():
                for w in (w1, w2):
                    w -= 0.1 * w.grad
                    w.grad = None
        return seen

    ours, theirs = order(engine), order(torch)
    assert [n for n, _ in ours] == [n for n, _ in theirs] == ["w2", "h", "w1"] * 3
    for (_, a), (_, b) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_grad_reaches_a_leaf_through_a_graph_recorded_before_its_last_backward():
    # l1's graph (retained) holds the accumulator w had before l1.backward; l2's holds the one
    # w got after: autograd.grad of their sum w.r.t. w adds both, as torch does.
    def grads(lib):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        l1 = (w * w).sum()
        l1.backward(retain_graph=True)
        first = lib.autograd.grad(l1, w, retain_graph=True)[0]
        both = lib.autograd.grad(l1 + (w * 3).sum(), w)[0]
        return w.grad.tolist(), first.tolist(), both.tolist()

    assert grads(engine) == grads(torch) == ([2.0, 4.0], [2.0, 4.0], [5.0, 7.0])
