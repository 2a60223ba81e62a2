"""The reference backward (graph.reference_backward, the specification) and the fast loop
(run_backward) give identical gradients on every graph of the op-case matrix, first and
second order, and the same errors on a freed or modified graph."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES

import engine
from engine.autograd.graph import reference_backward, run_backward, topological_order


def _graph(name, dtype):
    case = CASES[name]
    rng = np.random.default_rng(11)
    lo, hi = case.domain
    xs = [engine.tensor(rng.uniform(lo, hi, s), dtype=dtype, requires_grad=True)
          for s in case.shapes]
    out = case.fn(*xs)
    w = engine.tensor(rng.uniform(0.5, 1.5, tuple(out.shape)), dtype=out.dtype)
    # A diamond on top of the op (the output used twice) so that accumulation is exercised.
    # (Two paths, not three: a + b is b + a in floating point, (a + b) + c is not a + (c + b),
    # and the loops may meet the paths in different orders.)
    return xs, (out * w + out).sum()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_and_fast_loop_give_identical_gradients(name, dtype):
    results = []
    for loop in ("fast", "reference"):
        xs, loss = _graph(name, getattr(engine, dtype))
        one = engine.ones_like(loss)
        if loop == "fast":
            run_backward([loss], [one], retain_graph=False, create_graph=False)
        else:
            reference_backward([loss], [one])
        results.append([None if x.grad is None else x.grad.numpy().copy() for x in xs])
    for fast, ref in zip(*results, strict=True):
        assert (fast is None) == (ref is None), name
        if fast is not None:
            assert fast.dtype == ref.dtype and fast.shape == ref.shape, name
            np.testing.assert_array_equal(fast, ref, err_msg=name)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.smooth))
def test_reference_and_fast_loop_agree_on_second_derivatives(name):
    results = []
    for loop in ("fast", "reference"):
        xs, loss = _graph(name, engine.float64)
        grads = engine.autograd.grad(loss, xs, create_graph=True)
        s = sum(g.sum() for g in grads if g.requires_grad)
        if not isinstance(s, engine.Tensor) or not s.requires_grad:
            return  # a linear op: no second derivative to compare
        if loop == "fast":
            s.backward()
        else:
            reference_backward([s], [engine.ones_like(s)])
        results.append([None if x.grad is None else x.grad.numpy().copy() for x in xs])
    # Second-order graphs join three or more paths at a node, which the loops may add in
    # different orders: equal to rounding, not to the bit.
    for fast, ref in zip(*results, strict=True):
        assert (fast is None) == (ref is None), name
        if fast is not None:
            np.testing.assert_allclose(fast, ref, rtol=1e-13, atol=1e-15, err_msg=name)


def test_a_deep_chain_needs_no_recursion():
    x = engine.tensor(1.0, dtype=engine.float64, requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    assert len(topological_order([y.grad_fn])) == 20001
    reference_backward([y], [engine.ones_like(y)])
    assert np.isclose(x.grad.item(), 1.0001 ** 20000, rtol=1e-4)


def test_the_reference_frees_the_graph_and_sees_writes_as_the_fast_loop_does():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    reference_backward([y], [engine.ones_like(y)])
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        reference_backward([y], [engine.ones_like(y)])
    a = x * 2
    b = a * a
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        reference_backward([b.sum()], [engine.tensor(1.0)])


def test_the_reference_runs_hooks_and_retains_grads():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    h.register_hook(lambda g: g * 10)
    reference_backward([h.sum()], [engine.tensor(1.0)])
    np.testing.assert_array_equal(h.grad.numpy(), [10.0, 10.0])
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])
