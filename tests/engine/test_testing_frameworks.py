"""engine.testing.assert_gradcheck on PyTorch and JAX code: silent when right, the table and
the blamed Function (torch) when wrong."""

from __future__ import annotations

import inspect
import os

import pytest

from engine.testing import assert_gradcheck


def test_torch_functions_pass_fail_and_are_blamed():
    torch = pytest.importorskip("torch")

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * g * x

    class SquareOff(Square):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2.002 * g * x

    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64, requires_grad=True)
    assert_gradcheck(Square.apply, (x,), order=2)
    assert_gradcheck(Square.apply, (x.detach().float().requires_grad_(),))

    def model(a):
        return torch.tanh(SquareOff.apply(torch.sin(a))).sum()

    with pytest.raises(AssertionError) as info:
        assert_gradcheck(model, (x,))
    where = os.path.relpath(inspect.getsourcefile(SquareOff))
    line = inspect.getsourcelines(SquareOff.backward)[1]
    text = str(info.value)
    assert f"blame: {SquareOff.__qualname__}.backward at {where}:{line}" in text
    assert "factor of 1.001" in text


def test_torch_second_order_failure_names_the_detaching_backward():
    torch = pytest.importorskip("torch")

    class Detached(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * g * x.detach() ** 2

    x = torch.tensor([0.5, -1.25, 2.0], dtype=torch.float64, requires_grad=True)
    assert_gradcheck(Detached.apply, (x,))
    with pytest.raises(AssertionError, match="Detached.backward at .*: double backward"):
        assert_gradcheck(Detached.apply, (x,), order=2)


def test_jax_functions_pass_and_fail_with_the_table():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (-g * jnp.cos(x),))
    x = jnp.linspace(-1.0, 1.0, 4)
    assert_gradcheck(jnp.sin, (x,), order=2)
    with pytest.raises(AssertionError) as info:
        assert_gradcheck(f, (x,))
    text = str(info.value)
    assert "sign flipped" in text and "blame: not available for jax code" in text
