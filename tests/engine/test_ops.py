"""Every row of the op table: gradients and second derivatives against finite differences,
broadcasting, and (when torch is installed) values, gradients and node names against torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_cases import CASES

import engine
from engine._ops import OPS


def test_every_op_has_a_case():
    assert set(OPS) == set(CASES)


def _inputs(case, seed, lib=engine):
    rng = np.random.default_rng(seed)
    lo, hi = case.domain
    arrays = [rng.uniform(lo, hi, s) for s in case.shapes]
    return arrays, [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]


def _scalarize(out, weights):
    return (out * engine.tensor(weights)).sum()


def _numeric_grad(f, arrays, k, h=1e-6):
    """Central differences of the scalar f(*arrays) w.r.t. arrays[k]."""
    g = np.zeros_like(arrays[k])
    for idx in np.ndindex(arrays[k].shape):
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[k][idx] += h
        minus[k][idx] -= h
        g[idx] = (f(*plus) - f(*minus)) / (2 * h)
    return g


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_finite_differences(name):
    case = CASES[name]
    arrays, xs = _inputs(case, seed=1)
    out = case.fn(*xs)
    weights = np.random.default_rng(2).uniform(0.5, 1.5, tuple(out.shape))

    def f(*arrs):
        with engine.no_grad():
            ts = [engine.tensor(a, dtype=engine.float64) for a in arrs]
            return float((case.fn(*ts) * engine.tensor(weights)).sum().item())

    _scalarize(out, weights).backward()
    for k, x in enumerate(xs):
        np.testing.assert_allclose(
            x.grad.numpy(), _numeric_grad(f, arrays, k, h=1e-6 if case.rtol < 1e-5 else 1e-2),
            rtol=case.rtol, atol=1e-7, err_msg=name
        )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.plain))
def test_plain_rules_on_arrays_give_the_tensor_rules_numbers(name, dtype):
    # Without create_graph a plain row's rules run on the arrays; with it, on tensors. The
    # formulas are the same, so the numbers must be the same to the bit.
    case = CASES[name]
    arrays, _ = _inputs(case, seed=3)
    weights = np.random.default_rng(4).uniform(0.5, 1.5, 64)
    grads = {}
    for create_graph in (False, True):
        xs = [engine.tensor(a, dtype=getattr(engine, dtype), requires_grad=True) for a in arrays]
        out = case.fn(*xs)
        w = engine.tensor(weights[: out.numel()].reshape(tuple(out.shape)), dtype=out.dtype)
        grads[create_graph] = engine.autograd.grad((out * w).sum(), xs, create_graph=create_graph)
    for plain, tensor in zip(grads[False], grads[True], strict=True):
        assert plain.dtype == tensor.dtype and plain.shape == tensor.shape, name
        np.testing.assert_array_equal(plain.numpy(), tensor.detach().numpy(), err_msg=name)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.smooth))
def test_second_derivative_matches_finite_differences(name):
    """d/dx of (v . grad) through create_graph=True, against differences of the gradient."""
    case = CASES[name]
    arrays, xs = _inputs(case, seed=3)
    out = case.fn(*xs)
    weights = np.random.default_rng(4).uniform(0.5, 1.5, tuple(out.shape))
    grads = engine.autograd.grad(_scalarize(out, weights), xs, create_graph=True)
    vs = [np.random.default_rng(5 + k).uniform(-1, 1, g.shape) for k, g in enumerate(grads)]
    s = sum((g * engine.tensor(v)).sum() for g, v in zip(grads, vs, strict=True))
    # A linear op's gradient does not depend on its input: no graph, a zero second derivative.
    second = engine.autograd.grad(s, xs, allow_unused=True) if s.requires_grad else [None] * len(xs)

    def f(*arrs):
        ts = [engine.tensor(a, dtype=engine.float64, requires_grad=True) for a in arrs]
        gs = engine.autograd.grad(_scalarize(case.fn(*ts), weights), ts, allow_unused=True)
        return sum(float((g.numpy() * v).sum()) for g, v in zip(gs, vs, strict=True)
                   if g is not None)

    for k, g2 in enumerate(second):
        expected = _numeric_grad(f, arrays, k, h=1e-5)
        got = np.zeros_like(arrays[k]) if g2 is None else g2.detach().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)


BINARY = ["add", "sub", "mul", "div", "pow_tensor", "maximum", "minimum"]


@st.composite
def broadcast_shapes(draw):
    shape = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    other = [draw(st.sampled_from([n, 1])) for n in shape]
    other = other[draw(st.integers(0, len(other))):]
    return tuple(shape), tuple(other)


@given(shapes=broadcast_shapes(), name=st.sampled_from(BINARY), flip=st.booleans())
def test_broadcasting_gradients_sum_back_to_input_shapes(shapes, name, flip):
    a_shape, b_shape = shapes[::-1] if flip else shapes
    rng = np.random.default_rng(0)
    a = engine.tensor(rng.uniform(0.5, 2, a_shape), dtype=engine.float64, requires_grad=True)
    b = engine.tensor(rng.uniform(0.5, 2, b_shape), dtype=engine.float64, requires_grad=True)
    fn = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
          "div": lambda: a / b, "pow_tensor": lambda: a ** b,
          "maximum": lambda: engine.maximum(a, b), "minimum": lambda: engine.minimum(a, b)}[name]
    out = fn()
    out.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    # The gradient of sum(a op b) w.r.t. b equals the per-element derivative summed over the
    # broadcast dimensions: check it against finite differences on b.
    def f(barr):
        with engine.no_grad():
            return float({"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
                          "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
                          "pow_tensor": lambda x, y: x ** y,
                          "maximum": engine.maximum, "minimum": engine.minimum}[name](
                a.detach(), engine.tensor(barr, dtype=engine.float64)).sum().item())
    np.testing.assert_allclose(
        b.grad.numpy(), _numeric_grad(lambda arr: f(arr), [b.detach().numpy().copy()], 0),
        rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    case = CASES[name]
    results = []
    for lib in (engine, torch):
        arrays, xs = _inputs(case, seed=7, lib=lib)
        out = case.fn(*xs)
        g_out = lib.tensor(np.random.default_rng(8).uniform(-1, 1, tuple(out.shape)),
                           dtype=lib.float64)
        grads = lib.autograd.grad(out, xs, g_out, create_graph=True)
        results.append((out.detach().numpy().copy(), [g.detach().numpy().copy() for g in grads],
                        out.grad_fn.name().rsplit("::", 1)[-1], out.dtype.is_floating_point))
    (o1, g1, n1, f1), (o2, g2, n2, f2) = results
    tol = 1e-12 if o1.dtype == np.float64 else 1e-6  # float32 kernels may differ by an ulp
    np.testing.assert_allclose(o1, o2, rtol=tol, atol=tol)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert n1 == n2
