"""engine.autograd.gradcheck on JAX arrays and JAX functions (custom_vjp), x64 on and off."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import framework_catalogue as fc  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from engine.autograd import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

# JAX runs op by op here (no jit), ~1 ms a call: a dozen cases, one of every kind.
KINDS = (
    "sin", "sin: sign flip", "sin: factor 1.0001", "sin: one element 1% off",
    "sin(3x): forgotten chain factor", "x|x|: wrong where x<0", "matmul: transposed",
    "add bias: first row only", "softmax: missing the sum term", "cube (2nd)",
    "cube (2nd): detached x", "cube (2nd): NumPy inside backward",
    "cube (2nd) via CubeGrad: its backward off by 2",
)
CASES = [c for c in fc.catalogue(fc.jax_ops()) if c.name in KINDS]


@pytest.fixture(params=[False, True], ids=["x64 off", "x64 on"])
def x64(request):
    with jax.enable_x64(request.param):
        yield request.param


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_catalogue_verdicts(case: fc.Case, dtype: str):
    assert fc.verdict(case, dtype) is (not case.wrong)


@pytest.mark.parametrize("case", CASES[:4], ids=[c.name for c in CASES[:4]])
def test_fast_mode_verdicts(case: fc.Case):
    assert fc.verdict(case, "float32", fast_mode=True) is (not case.wrong)


def test_plain_jax_functions_with_several_inputs_and_outputs(x64):
    x = jnp.linspace(-1.0, 1.0, 5)
    w = jnp.asarray(np.arange(15.0).reshape(5, 3) / 10)

    def f(a, b, n):
        return jnp.tanh(a @ b) * n, jnp.sum(a**2)

    assert gradcheck(f, (x, w, 3))
    assert gradgradcheck(lambda a: jnp.sin(a) * a, (x,))
    assert gradcheck(jax.jit(lambda a: jnp.exp(a).sum()), (x,))


def test_the_precision_checked_is_stated_when_x64_is_off(x64):
    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * jnp.cos(x) * 1.001,))
    x = jnp.linspace(-1.0, 1.0, 4, dtype=jnp.float32)
    with pytest.raises(GradcheckError) as info:
        gradcheck(f, (x,))
    message = str(info.value)
    assert ("JAX x64 is off" in message) is (not x64)
    assert "float64 re-run" in message or "float32" in message
    assert x.dtype == jnp.float32 and not (jax.config.jax_enable_x64 and not x64)


def test_float32_jax_function_without_x64_gets_a_float64_reference():
    # Without the float64 reference, float32 rounding would hide an error of 1e-4.
    @jax.custom_vjp
    def f(x):
        return jnp.exp(x)

    f.defvjp(lambda x: (jnp.exp(x), x), lambda x, g: (g * jnp.exp(x) * 1.0001,))
    with jax.enable_x64(False):
        x = jnp.linspace(-1.0, 1.0, 4)
        assert x.dtype == jnp.float32
        assert not gradcheck(f, (x,), raise_exception=False)
        assert gradcheck(jnp.exp, (x,))
        assert not jax.config.jax_enable_x64  # the caller's setting is left as it was


def test_wrong_shaped_custom_vjp_is_a_failed_check():
    @jax.custom_vjp
    def f(x, b):
        return x + b

    f.defvjp(lambda x, b: (x + b, None), lambda r, g: (g, g))  # b's gradient not reduced
    x, b = jnp.ones((3, 2)), jnp.ones(2)
    with pytest.raises(GradcheckError, match="vjp raised"):
        gradcheck(f, (x, b))


@pytest.mark.parametrize("factor", [1.0, 1.0001])
def test_batched_jax_function_gives_the_same_verdict(x64, factor):
    """(Calls are not counted here: the adapter compiles func, whose body then runs only
    when traced; the numeric module's tests count the calls a stack saves.)"""
    W = jnp.asarray(np.random.default_rng(8).standard_normal((8, 5)))

    @jax.custom_vjp
    def dense(x):
        return jnp.tanh(x @ W.T)

    def fwd(x):
        y = dense(x)
        return y, y

    def bwd(y, g):
        return (factor * (g * (1 - y * y)) @ W,)

    dense.defvjp(fwd, bwd)
    x = jnp.asarray(np.linspace(-1, 1, 5))
    verdicts = [
        gradcheck(dense, (x,), batched=batched, raise_exception=False) for batched in (False, True)
    ]
    assert verdicts[0] == verdicts[1] == (factor == 1.0)


def _outer(a):
    # 2 inputs, 12 outputs: the Jacobian has fewer columns than rows
    return jnp.sin(jnp.outer(jnp.arange(1.0, 7.0), a)).reshape(-1)


@jax.custom_jvp
def _outer_custom(a):
    return _outer(a)


@_outer_custom.defjvp
def _outer_custom_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    k = jnp.arange(1.0, 7.0)
    cos = jnp.cos(jnp.outer(k, a))
    wrong = cos.at[3, 1].multiply(1.01)  # one element of the rule off by 1%
    return _outer(a), (wrong * jnp.outer(k, t)).reshape(-1)


def test_fewer_columns_than_rows_uses_forward_mode_and_judges_custom_jvp_rules(
    x64, monkeypatch
):
    from engine.autograd.frameworks._jax import JaxAdapter

    calls = {"vjp": 0, "jvp": 0}
    for name in calls:
        original = getattr(JaxAdapter, name)

        def counted(self, *args, _name=name, _original=original):
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(JaxAdapter, name, counted)
    a = jnp.asarray([0.3, -0.7])
    assert gradcheck(_outer, (a,))
    # two JVPs (one per column) instead of twelve VJPs per run (x64 off: float32, and its
    # float64 re-run); VJPs for zero grad_outputs and the reentrance check only
    assert calls == {"jvp": 2 if x64 else 4, "vjp": 3}
    with pytest.raises(GradcheckError, match="only one element is wrong"):
        gradcheck(_outer_custom, (a,))


def test_a_custom_vjp_with_fewer_inputs_than_outputs_is_checked_by_its_vjp(x64):
    def build(factor):
        @jax.custom_vjp
        def f(a):
            return _outer(a)

        def bwd(a, g):
            k = jnp.arange(1.0, 7.0)
            return ((jnp.cos(jnp.outer(k, a)) * k[:, None] * g.reshape(6, 2)).sum(0) * factor,)

        f.defvjp(lambda a: (_outer(a), a), bwd)
        return f

    a = jnp.asarray([0.3, -0.7])
    assert gradcheck(build(1.0), (a,))
    assert not gradcheck(build(1.001), (a,), raise_exception=False)
