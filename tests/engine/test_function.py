"""engine.autograd.Function: custom ops, their nodes, ctx, and torch's errors."""

from __future__ import annotations

import numpy as np
import pytest

import engine
from engine.autograd import Function


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        assert not engine.is_grad_enabled()  # forward runs with grad off
        result = x.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, g):
        (result,) = ctx.saved_tensors
        return g * result


class MulAdd(Function):
    @staticmethod
    def forward(ctx, x, y, scale):
        ctx.save_for_backward(x, y)
        ctx.scale = scale
        return x * y * scale, x + y

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        x, y = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False, False)
        return g_prod * y * ctx.scale + g_sum, None, None


def test_custom_function_gradient_node_and_double_backward():
    x = engine.tensor([0.5, 1.0], dtype=engine.float64, requires_grad=True)
    y = Exp.apply(x)
    assert y.grad_fn.name() == "ExpBackward" and not y.is_leaf
    assert y.grad_fn.next_functions[0][0].variable is x
    (g,) = engine.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), np.exp([0.5, 1.0]))
    (g2,) = engine.autograd.grad(g.sum(), x)  # backward was written in engine ops
    np.testing.assert_allclose(g2.numpy(), np.exp([0.5, 1.0]))


def test_multiple_outputs_and_needs_input_grad():
    x = engine.tensor([1.0, 2.0], requires_grad=True)
    y = engine.tensor([3.0, 4.0])
    prod, total = MulAdd.apply(x, y, 2.0)
    assert total.grad_fn is prod.grad_fn and total.output_nr == 1
    (prod.sum() + total.sum()).backward()
    assert x.grad.tolist() == [7.0, 9.0]
    x.grad = None
    prod, _ = MulAdd.apply(x, y, 2.0)
    prod.sum().backward()  # the unused output's gradient is materialised as zeros
    assert x.grad.tolist() == [6.0, 8.0]


def test_no_node_without_grad():
    y = Exp.apply(engine.tensor([1.0]))
    assert y.grad_fn is None


def test_wrong_number_of_gradients_is_torchs_error():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return (g,)

    a = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"function BadBackward returned an incorrect number "
                                           r"of gradients \(expected 2, got 1\)"):
        Bad.apply(a, a).sum().backward()


def test_wrong_gradient_shape_is_torchs_error():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return engine.ones(3)

    a = engine.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Function BadBackward returned an invalid gradient "
                                           r"at index 0 - got \[3\] but expected shape "
                                           r"compatible with \[2\]"):
        Bad.apply(a).sum().backward()


def test_matches_torch_function():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (engine, torch):
        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 3 * g * x ** 2

        x = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        y = Cube.apply(x)
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (g2,) = lib.autograd.grad(g.sum(), x)
        results.append((type(y.grad_fn).__name__ if lib is torch else y.grad_fn.name(),
                        g.tolist(), g2.tolist()))
    assert results[0] == results[1]
