"""numpy_gradcheck: hand-written NumPy derivatives (scipy's `jac=`) against finite differences."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from engine.autograd import GradcheckError, numpy_gradcheck

A = np.random.default_rng(0).standard_normal((3, 4))


def loss(x):
    return np.sum(np.sin(A @ x) ** 2)


def loss_grad(x):
    s = A @ x
    return A.T @ (2 * np.sin(s) * np.cos(s))


def loss_grad_half(x):
    s = A @ x
    return A.T @ (np.sin(s) * np.cos(s))  # wrong on purpose: the chain rule's 2 is missing


def outer_tanh(x, y):
    return np.tanh(np.outer(x, y))


def outer_tanh_jac(x, y):
    s = 1 - np.tanh(np.outer(x, y)) ** 2
    jx = np.einsum("ij,ik->ijk", s * y[None, :], np.eye(x.size))
    jy = np.einsum("ij,jk->ijk", s * x[:, None], np.eye(y.size))
    return jx, jy


X = np.linspace(-1.0, 1.0, 4)
Y = np.array([0.5, -2.0, 1.5])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_right_gradients_and_jacobians_pass(dtype, fast_mode):
    x = X.astype(dtype)
    assert numpy_gradcheck(loss, loss_grad, (x,), fast_mode=fast_mode)
    assert numpy_gradcheck(outer_tanh, outer_tanh_jac, (x, Y.astype(dtype)), fast_mode=fast_mode)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_a_wrong_gradient_is_named_with_file_line_and_the_pair(dtype, fast_mode):
    x = X.astype(dtype)
    assert numpy_gradcheck(loss, loss_grad_half, x, raise_exception=False, fast_mode=fast_mode) \
        is False
    with pytest.raises(GradcheckError) as info:
        numpy_gradcheck(loss, loss_grad_half, x, fast_mode=fast_mode)
    first, *rest = str(info.value).splitlines()
    line = loss_grad_half.__code__.co_firstlineno
    assert first.startswith("grad function test_handwritten:loss_grad_half (")
    assert f"test_handwritten.py:{line})" in first
    assert "finite differences of test_handwritten:loss" in first
    assert "Jacobian mismatch for output 0 with respect to input 0" in "\n".join(rest)
    assert "factor of 0.5" in str(info.value)


def test_the_wrong_block_of_a_jacobian_is_the_one_reported():
    def half_wrong(x, y):
        jx, jy = outer_tanh_jac(x, y)
        return jx, -jy

    with pytest.raises(GradcheckError, match="with respect to input 1") as info:
        numpy_gradcheck(outer_tanh, half_wrong, (X, Y))
    assert "sign flipped" in str(info.value)


def test_constants_and_requires_grad():
    def f(x, data, k):
        return np.sum((x - data) ** 2) * k

    def g(x, data, k):
        return 2 * (x - data) * k

    data = np.array([0.1, 0.2, 0.3, 0.4])
    assert numpy_gradcheck(f, g, (X, data, 3), requires_grad=[True, False, False])
    with pytest.raises(GradcheckError, match="grad returned 1 array for 2 inputs"):
        numpy_gradcheck(f, g, (X, data, 3))
    with pytest.raises(ValueError, match="requires_grad has 2 entries for 3 inputs"):
        numpy_gradcheck(f, g, (X, data, 3), requires_grad=[True, False])
    with pytest.raises(ValueError, match="input 2 requires grad"):
        numpy_gradcheck(f, g, (X, data, 3), requires_grad=[True, False, True])


@pytest.mark.parametrize(
    ("grad", "message"),
    [
        (lambda x: np.ones(3), r"has shape \[3\], expected \[4\] \(the gradient, as fn's output"),
        (lambda x: (np.ones(4), np.ones(4)), "grad returned 2 arrays for 1 input"),
        (lambda x: 1 / 0, "grad raised ZeroDivisionError"),
        (lambda x: np.array(["a"] * 4), "has dtype <U1, not a real number"),
    ],
    ids=["wrong shape", "too many", "raises", "not numbers"],
)
def test_grads_of_wrong_shape_or_raising_fail_the_check_with_a_message(grad, message):
    with pytest.raises(GradcheckError, match=message):
        numpy_gradcheck(loss, grad, X)
    assert numpy_gradcheck(loss, grad, X, raise_exception=False) is False


def test_jacobian_shape_is_output_shape_plus_input_shape():
    with pytest.raises(GradcheckError, match=r"expected \[4, 3, 4\] \(the Jacobian"):
        numpy_gradcheck(outer_tanh, lambda x, y: (np.ones((4, 4)), np.ones((4, 3, 3))), (X, Y))


def test_fn_must_return_one_array():
    with pytest.raises(TypeError, match="one output array"):
        numpy_gradcheck(lambda x: (x, x), lambda x: np.eye(4), X)


def test_agrees_with_scipy_where_scipy_has_a_number_and_says_more():
    optimize = pytest.importorskip("scipy.optimize")
    # scipy's check_grad: a norm for a human to interpret; ours: a verdict and the elements.
    assert optimize.check_grad(loss, loss_grad_half, X) > 0.1
    assert optimize.check_grad(loss, loss_grad, X) < 1e-5
    assert numpy_gradcheck(loss, loss_grad, X)


def test_importing_engine_imports_neither_torch_nor_jax():
    code = (
        "import sys, engine, engine.testing, engine.autograd.frameworks;"
        "import numpy as np;"
        "engine.autograd.numpy_gradcheck(np.sin, lambda x: np.diag(np.cos(x)), np.ones(3));"
        "bad = [m for m in ('torch', 'jax', 'sympy', 'rich', 'click') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("fast_mode", [False, True], ids=["full", "fast"])
def test_a_batched_fn_gives_the_same_verdicts_in_fewer_calls(fast_mode):
    calls = [0]

    def stacked_loss(x):  # x @ A.T: one point (4,) or a stack of points (P, 4)
        calls[0] += 1
        return np.sum(np.sin(x @ A.T) ** 2, axis=-1)

    x = np.linspace(-1, 1, 4)
    for grad, right in ((loss_grad, True), (loss_grad_half, False)):
        verdicts, counts = [], []
        for batched in (False, True):
            calls[0] = 0
            verdicts.append(numpy_gradcheck(stacked_loss, grad, x, batched=batched,
                                            fast_mode=fast_mode, raise_exception=False))
            counts.append(calls[0])
        assert verdicts == [right, right]
        assert counts[1] < counts[0]
