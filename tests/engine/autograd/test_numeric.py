"""engine.autograd.numeric against mpmath references, and the verdict rule."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.autograd import numeric as nm

mp.mp.dps = 40

# (name, numpy function, mpmath function, points): smooth functions at awkward points.
SMOOTH = [
    ("sin", np.sin, mp.sin, [1.0, -3.0, 1e-6, 1e4, 1e8]),
    ("cos", np.cos, mp.cos, [1.0, 1e4]),
    ("log", np.log, mp.log, [1e-6, 2.0, 1e8]),
    ("exp", np.exp, mp.exp, [1e-6, 10.0, -20.0]),
    ("sqrt", np.sqrt, mp.sqrt, [1e-6, 1e8]),
    ("tanh", np.tanh, mp.tanh, [0.3, 5.0]),
    ("x log x", lambda x: x * np.log(x), lambda x: x * mp.log(x), [1e8]),
    ("expm1 - x", lambda x: np.exp(x) - 1 - x, lambda x: mp.exp(x) - 1 - x, [1e-3, 1.0]),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda x: 1 / (1 + mp.exp(-x)), [2.0, -30.0]),
    ("pole", lambda x: 1 / (x - 0.999), lambda x: 1 / (x - mp.mpf(0.999)), [1.0]),
    ("x^2 at 1e8", lambda x: x**2, lambda x: x**2, [1e8]),
]
CASES = [(name, f, mf, x) for name, f, mf, xs in SMOOTH for x in xs]


def _reference(mf, x: float) -> float:
    return float(mp.diff(mf, mp.mpf(x)))


@pytest.mark.parametrize(("name", "f", "mf", "x"), CASES, ids=[f"{c[0]}@{c[3]:g}" for c in CASES])
def test_richardson_matches_mpmath(name, f, mf, x):
    ref = _reference(mf, x)
    res = nm.gradient(lambda v: f(v[0]), [x], complex_safe=False)
    assert res.method == "richardson"
    actual = abs(res.value[0] - ref)
    assert actual <= 1e-9 * abs(ref)
    # The error estimate is honest: it bounds the actual error (with the rounding floor).
    assert actual <= 4 * res.error[0] + 1e-15 * abs(ref)


@pytest.mark.parametrize(("name", "f", "mf", "x"), CASES, ids=[f"{c[0]}@{c[3]:g}" for c in CASES])
def test_auto_detects_complex_safe_functions(name, f, mf, x):
    ref = _reference(mf, x)
    res = nm.gradient(lambda v: f(v[0]), [x])
    assert res.method == "complex-step"
    actual = abs(res.value[0] - ref)
    # Machine precision, up to the cancellation inside f' itself (e^x - 1 at 1e-3).
    assert actual <= 1e-14 * abs(ref)
    assert actual <= 4 * res.error[0] + 4 * np.finfo(float).eps * abs(ref)


def test_single_steps_fail_where_the_ladder_does_not():
    # A fixed step of 1e-6 (torch) drowns in rounding noise for log at 1e8 and under a large
    # output offset; a step scaled by |x| alone is far too coarse for sin at 1e4.
    cases = [
        (np.log, 1e8, 1e-8, {"step": 1e-6}),
        (lambda t: 1e6 + np.sin(t), 1.0, math.cos(1.0), {"step": 1e-6}),
        (np.sin, 1e4, math.cos(1e4), {"method": "central"}),
    ]
    for f, x, ref, single in cases:
        res = nm.gradient(lambda v, f=f: f(v[0]), [x], **single)
        assert abs(res.value[0] - ref) > 1e-6 * abs(ref)
        good = nm.gradient(lambda v, f=f: f(v[0]), [x], complex_safe=False)
        assert abs(good.value[0] - ref) < 1e-7 * abs(ref)
        assert abs(good.value[0] - ref) <= 4 * good.error[0]


@pytest.mark.parametrize(
    "f",
    [
        lambda v: np.abs(v[0]) + 1e8 * v[1],  # abs of a complex is its modulus
        lambda v: np.linalg.norm(v) + v[0],  # a norm is real even for complex input
        lambda v: float(v[0]) ** 2 + v[1],  # float() of a complex raises
        lambda v: v.real[0] ** 3 * v[1],  # .real throws the derivative away
        lambda v: np.conj(v[0]) * v[0] + v[1],  # |z|^2 is not analytic
    ],
    ids=["abs", "norm", "float", "real", "conj"],
)
def test_complex_probe_rejects_unsafe_functions(f):
    x = np.array([1.3, 2.0])
    res = nm.gradient(f, x)
    assert res.method != "complex-step"
    exact = nm.gradient(f, x, complex_safe=False)
    np.testing.assert_allclose(res.value, exact.value)


def test_complex_safe_true_is_trusted_and_fails_loudly():
    res = nm.gradient(lambda v: np.sin(v[0]) * v[1], [0.5, 2.0], complex_safe=True)
    assert res.method == "complex-step"
    np.testing.assert_allclose(res.value, [2 * math.cos(0.5), math.sin(0.5)], rtol=1e-15)
    with pytest.raises(TypeError):
        nm.gradient(lambda v: float(v[0]), [0.5], complex_safe=True)


def test_choose_step_is_realised_and_scaled():
    x = np.array([0.0, 1e-6, 0.1, 3.0, 1e4, 1e8, -1e8])
    h = nm.choose_step(x)
    assert np.all((x + h) - x == h)
    np.testing.assert_allclose(
        h, np.cbrt(np.finfo(float).eps) * np.maximum(1, np.abs(x)), rtol=1e-8
    )
    h32 = nm.choose_step(np.float32(1e4), np.float32)
    assert h32 > h[4]  # a coarser dtype needs a larger step
    assert np.float32(1e4) + np.float32(h32) - np.float32(1e4) == np.float32(h32)


def test_jacobian_of_a_vector_function():
    def f(v):
        return np.array([v[0] * v[1], np.sin(v[0]) + v[2] ** 2, np.exp(v[1] * v[2])])

    x = np.array([0.7, -1.2, 0.4])
    exact = np.array(
        [
            [x[1], x[0], 0.0],
            [math.cos(x[0]), 0.0, 2 * x[2]],
            [0.0, x[2] * math.exp(x[1] * x[2]), x[1] * math.exp(x[1] * x[2])],
        ]
    )
    for cs in (None, False):
        res = nm.jacobian(f, x, complex_safe=cs)
        assert res.value.shape == res.error.shape == (3, 3)
        np.testing.assert_allclose(res.value, exact, rtol=1e-10, atol=1e-12)


def test_hessian_matches_exact():
    def f(v):
        return np.sin(v[0]) * np.exp(v[1]) + v[0] ** 2 * v[1] ** 3

    x0, x1 = 0.3, 0.7
    exact = np.array(
        [
            [
                -math.sin(x0) * math.exp(x1) + 2 * x1**3,
                math.cos(x0) * math.exp(x1) + 6 * x0 * x1**2,
            ],
            [0.0, math.sin(x0) * math.exp(x1) + 6 * x0**2 * x1],
        ]
    )
    exact[1, 0] = exact[0, 1]
    res = nm.hessian(f, [x0, x1])
    np.testing.assert_allclose(res.value, exact, rtol=1e-7)
    assert np.all(np.abs(res.value - exact) <= 4 * res.error + 1e-12)
    np.testing.assert_allclose(nm.hessian(f, [x0, x1], method="central").value, exact, rtol=1e-4)


def test_evaluations_are_counted():
    calls = []

    def f(v):
        calls.append(1)
        return np.sum(v**2)

    for method in ("richardson", "central"):
        calls.clear()
        res = nm.gradient(f, [1.0, 2.0], method=method)
        assert res.evaluations == len(calls)
    calls.clear()
    res = nm.gradient(lambda v: f(v) * 1.0, [1.0, 2.0])
    assert res.method == "complex-step" and res.evaluations == len(calls)


def test_domain_edge_goes_one_sided():
    # x * exp(x) written through sqrt: NaN at x - h for every step, derivative 1 at 0.
    res = nm.gradient(lambda v: np.sqrt(v[0]) ** 2 * np.exp(v[0]), [0.0], complex_safe=False)
    assert res.method == "one-sided"
    assert abs(res.value[0] - 1.0) < 1e-9
    # A declared domain: f is only valid for x >= 1; the derivative at the edge is 2.
    res = nm.gradient(lambda v: v[0] ** 2, [1.0], domain=lambda v: v[0] >= 1.0, complex_safe=False)
    assert res.method == "one-sided"
    assert abs(res.value[0] - 2.0) < 1e-8
    # math.log raises outside its domain instead of returning NaN.
    res = nm.gradient(lambda v: math.log(v[0]), [1e-3], complex_safe=False)
    assert abs(res.value[0] - 1e3) < 1e-6


def test_float32_function_gets_an_honest_error_estimate():
    def f(v):
        v32 = v.astype(np.float32)
        return np.float32(np.sin(v32[0]) * np.exp(v32[1]))

    x = np.array([0.5, 0.25], dtype=np.float32).astype(np.float64)
    exact = np.array([math.cos(x[0]) * math.exp(x[1]), math.sin(x[0]) * math.exp(x[1])])
    res = nm.gradient(f, x, dtype=np.float32)
    assert res.method == "richardson"
    assert np.all(np.abs(res.value - exact) <= 4 * res.error)
    assert np.all(res.error < 1e-3)


def test_directional_derivative():
    x = np.array([0.3, -0.8, 1.5])
    v = np.array([1.0, -1.0, 1.0])
    res = nm.directional(lambda z: np.array([np.sum(np.sin(z)), z[0] * z[1]]), x, v)
    exact = [np.sum(np.cos(x) * v), x[1] * v[0] + x[0] * v[1]]
    np.testing.assert_allclose(res.value, exact, rtol=1e-12)


def test_scan_steps_draws_the_v():
    steps, est = nm.scan_steps(lambda v: np.exp(v[0]), [1.0], 0)
    err = np.abs(est - math.e)
    assert steps.shape == est.shape == (61,)
    assert np.all(steps > 0)
    best = int(np.argmin(err))
    # Rounding error on the small side, truncation error on the large side.
    assert err[0] > 1e3 * err[best] and err[-1] > 1e3 * err[best]
    h = nm.choose_step(1.0)
    assert abs(steps[best] - h) / h < 10


def test_compare_rule():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    ok = nm.compare(a, a + 1e-9, np.zeros_like(a), atol=1e-8, rtol=0)
    assert ok.ok and ok.scale == pytest.approx(4.0)
    bad = nm.compare(a, a * [[1, 1], [1, 1.001]], np.zeros_like(a), atol=1e-6, rtol=1e-6)
    assert not bad.ok and bad.mismatch.tolist() == [[False, False], [False, True]]
    # Tolerances are relative to the Jacobian's scale: a tiny wrong gradient is caught.
    tiny = nm.compare(2e-9 * a, 1e-9 * a, np.zeros_like(a))
    assert not tiny.ok
    # An imprecise numeric reference widens the bound instead of crying wolf.
    loose = nm.compare(a, a + 1e-3, np.full_like(a, 1e-3), atol=1e-8, rtol=0)
    assert loose.ok
    # NaN against a number is a mismatch; NaN against NaN is not.
    nan = nm.compare(np.array([np.nan, 1.0]), np.array([1.0, 1.0]), np.zeros(2))
    assert nan.mismatch.tolist() == [True, False]
    assert nm.compare(np.array([np.nan]), np.array([np.nan]), np.zeros(1)).ok


def _coefficients(bound: float) -> st.SearchStrategy[float]:
    # Zero, or of magnitude at least 1e-100: coefficients near the underflow threshold make
    # f's differences subnormal, where a float has too few significant bits for any finite
    # difference to meet a relative bound (a limit of float64, not of the method).
    return st.one_of(st.just(0.0), st.floats(1e-100, bound), st.floats(-bound, -1e-100))


@settings(max_examples=40, deadline=None)
@given(
    a=_coefficients(10),
    b=st.floats(0.1, 5),
    c=_coefficients(3),
    x=st.floats(-4, 4),
    y=st.floats(0.05, 20),
)
def test_property_gradient_matches_exact(a, b, c, x, y):
    def f(v):
        return a * np.sin(b * v[0]) * np.log(v[1]) + c * v[0] ** 3 / v[1]

    exact = np.array(
        [
            a * b * math.cos(b * x) * math.log(y) + 3 * c * x**2 / y,
            a * math.sin(b * x) / y - c * x**3 / y**2,
        ]
    )
    scale = (
        abs(a) * b * (1 + abs(math.log(y)))
        + abs(a) / y
        + abs(c) * (3 * x**2 / y + abs(x) ** 3 / y**2)
    )
    res = nm.gradient(f, [x, y], complex_safe=False)
    assert np.all(np.abs(res.value - exact) <= 1e-9 * scale + 1e-20)
    assert np.all(np.abs(res.value - exact) <= 4 * res.error + 1e-13 * scale)


@settings(max_examples=25, deadline=None)
@given(x=st.floats(-1e3, 1e3).filter(lambda t: abs(t) > 1e-3), k=st.integers(1, 5))
def test_property_complex_step_on_polynomials_is_exact(x, k):
    res = nm.gradient(lambda v: v[0] ** k + 3 * v[0], [x])
    exact = k * x ** (k - 1) + 3
    assert res.method == "complex-step"
    assert abs(res.value[0] - exact) <= 1e-14 * (abs(k * x ** (k - 1)) + 3)


def test_complex_step_is_kept_where_the_whole_derivative_is_zero():
    # x^2 + 3x at -1.5 (found by the property above): an all-zero complex-step Jacobian once
    # weighted its probe direction by inf / inf and fell back to Richardson.
    res = nm.gradient(lambda v: v[0] ** 2 + 3 * v[0], [-1.5])
    assert res.method == "complex-step" and res.value[0] == 0.0


@pytest.mark.parametrize(
    ("f", "df", "x"),
    [
        # Cancellation: the noise of f is that of its large terms, not eps * |f|.
        (
            lambda t: np.sqrt(t + 1) - np.sqrt(t),
            lambda t: 0.5 / math.sqrt(t + 1) - 0.5 / math.sqrt(t),
            1e4,
        ),
        (lambda t: np.log(1 + t) - t, lambda t: 1 / (1 + t) - 1, 1e-3),
        (lambda t: np.exp(t) - 1 - t, lambda t: math.expm1(t), 1e-3),
        # A wiggle far smaller than a huge trend: large steps average it away.
        (
            lambda t: np.sin(3.8154 * t) + 1.4474 * t * t,
            lambda t: 3.8154 * math.cos(3.8154 * t) + 2 * 1.4474 * t,
            315403.96,
        ),
        (
            lambda t: np.sin(3.8154 * t) + 1.4474 * t * t,
            lambda t: 3.8154 * math.cos(3.8154 * t) + 2 * 1.4474 * t,
            -555666.98,
        ),
        # Two rungs agreeing by luck at large steps once stopped the ladder too early.
        (
            lambda t: np.sin(3.9985 * t) + 0.7348 * t * t,
            lambda t: 3.9985 * math.cos(3.9985 * t) + 2 * 0.7348 * t,
            145.2184089,
        ),
    ],
    ids=[
        "sqrt(x+1)-sqrt(x)",
        "log(1+x)-x",
        "exp(x)-1-x",
        "wiggle@3e5",
        "wiggle@-5.6e5",
        "lucky@145",
    ],
)
def test_hard_cases_get_honest_errors(f, df, x):
    res = nm.gradient(lambda v: f(v[0]), [x], complex_safe=False)
    exact = df(x)
    assert abs(res.value[0] - exact) <= 4 * res.error[0]
    assert abs(res.value[0] - exact) <= 1e-7 * abs(exact)


def test_nearly_zero_input_is_scaled_like_zero():
    """Found by the property test: at x = 4.9e-162 the step ladder sat near 1e-160, where the
    rounding noise of f over h made the error estimate 1e128 and cost accuracy."""
    a = 0.001953125

    def f(v):
        return a * np.sin(v[0]) * np.log(v[1])

    res = nm.gradient(f, [4.920079257402044e-162, 2.0], complex_safe=False)
    exact = a * math.log(2.0)
    assert abs(res.value[0] - exact) <= 1e-12 * exact
    assert res.error[0] <= 1e-12 * exact


# ------------------------------------------------------------------- staged estimates


def _never(value, error, floor):
    return np.zeros(value.shape, dtype=bool)


@pytest.mark.parametrize(("name", "f", "mf", "x"), CASES, ids=[f"{c[0]}@{c[3]:g}" for c in CASES])
def test_first_estimate_is_honest_or_undefined(name, f, mf, x):
    """The first estimate's error bounds its actual error; NaN (refine) where it cannot."""
    ref = _reference(mf, x)
    res = nm.staged_jacobian(lambda v: f(v[0]), [x], _never)
    assert res.evaluations == 4 and res.method == "first estimate"
    value, error = res.value[0, 0], res.error[0, 0]
    if np.isfinite(value):
        assert abs(value - ref) <= 4 * error + 1e-15 * abs(ref)


def test_first_estimate_is_precise_on_ordinary_points():
    # Smooth functions at O(1) points: the first estimate decides the verdict by itself.
    for f, df in ((np.sin, np.cos), (np.exp, np.exp), (np.tanh, lambda t: 1 - np.tanh(t) ** 2)):
        x = np.linspace(-2, 2, 9)
        res = nm.staged_jacobian(lambda v, f=f: f(v), x, _never)
        assert np.allclose(np.diag(res.value), df(x), rtol=1e-9, atol=0)
        assert np.all(np.diag(res.error) <= 1e-9 * np.maximum(np.abs(df(x)), 1))


def test_only_undecided_columns_are_refined():
    x = np.array([0.3, -1.1, 2.0, 0.7])
    W = np.arange(16.0).reshape(4, 4) / 10

    def f(v):
        return np.sin(W @ v)

    def second_column(value, error, floor):
        need = np.zeros(value.shape, dtype=bool)
        need[2, 1] = True
        return need

    first = nm.staged_jacobian(f, x, _never, detect=[False])
    staged = nm.staged_jacobian(f, x, second_column, detect=[False])
    rich = nm.jacobian(f, x, complex_safe=False)
    assert first.evaluations == 1 + 3 * 4
    assert staged.method == "richardson" and staged.evaluations > first.evaluations
    assert staged.value[2, 1] == rich.value[2, 1] and staged.error[2, 1] == rich.error[2, 1]
    assert np.array_equal(
        np.delete(staged.value.ravel(), 2 * 4 + 1), np.delete(first.value.ravel(), 9)
    )


@pytest.mark.parametrize("n", [2, 7, 64, 1000])
def test_elementwise_structure_costs_a_few_evaluations_not_n(n):
    x = np.linspace(-1.5, 1.5, n)
    res = nm.staged_jacobian(lambda v: np.sin(v) * np.exp(v), x, _never)
    # The probes are the first estimate's nodes: three more evaluations only for the nodes
    # that fewer than three bits leave out.
    bits = int(np.ceil(np.log2(n)))
    assert res.evaluations == 1 + 2 * bits + max(0, 3 - bits)
    expected = np.diag((np.cos(x) + np.sin(x)) * np.exp(x))
    assert np.max(np.abs(res.value - expected)) <= 1e-9 * np.max(np.abs(expected))


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_probed_first_estimate_agrees_with_the_block_one(n):
    """The structure probes' own evaluations (the hot path) against the whole-block
    perturbation (the plain one, still the retry's): both honest, and within their errors."""
    x = np.linspace(-1.5, 1.5, n) + 0.01

    def f(v):
        return np.sin(v) * np.exp(v)

    exact = (np.cos(x) + np.sin(x)) * np.exp(x)
    res = nm.staged_jacobian(f, x, _never)
    ev = nm._Counted(f, None)
    f0 = ev(x)
    cols = np.arange(n)
    h = nm._first_step(x, np.dtype(np.float64))
    owner = nm._owners(ev, x, f0, cols, h).owner
    assert np.array_equal(owner, cols)
    block, block_error = nm._first_block(ev, x, f0, cols, h, owner, False)
    probed, probed_error = np.diag(res.value), np.diag(res.error)
    assert np.all(np.abs(probed - exact) <= 4 * probed_error)
    assert np.all(np.abs(np.diag(block) - exact) <= 4 * np.diag(block_error))
    assert np.all(np.abs(probed - np.diag(block)) <= 4 * (probed_error + np.diag(block_error)))
    off = ~np.eye(n, dtype=bool)
    assert np.all(res.value[off] == 0) and np.all(block[off] == 0)


def test_gather_structure_broadcast_and_permutation():
    rng = np.random.default_rng(5)
    perm = rng.permutation(12)
    x = rng.uniform(-1, 1, 12)
    # Each output element reads one input element (a permutation; then broadcast over 3 rows).
    res = nm.staged_jacobian(lambda v: np.tile(v[perm] ** 3, 3), x, _never)
    assert res.evaluations == 1 + 2 * 4
    exact = np.zeros((36, 12))
    for r in range(36):
        exact[r, perm[r % 12]] = 3 * x[perm[r % 12]] ** 2
    assert np.allclose(res.value, exact, rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    "f",
    [
        lambda v: v**2 + 0.01 * v[0],  # every output also reads v[0]
        lambda v: v + np.sum(v) * 1e-3 - np.sum(v) * 1e-3,  # mixes only through rounding
        lambda v: np.cumsum(v),
        lambda v: v * np.random.default_rng().uniform(1, 1 + 1e-15),  # not deterministic
    ],
    ids=["reads-v0", "rounding", "cumsum", "random"],
)
def test_structure_detection_never_assumes_independence(f):
    x = np.linspace(0.2, 1.4, 16)
    res = nm.staged_jacobian(f, x, _never)
    assert res.evaluations > 1 + 2 * 4 + 3  # fell back to one column at a time
    rich = nm.jacobian(f, x, complex_safe=False)
    assert np.all(np.abs(res.value - rich.value) <= 4 * (res.error + rich.error) + 1e-12)


def test_explicit_step_is_pytorchs_central_difference():
    x = np.array([0.5, 1.5])
    h = 1e-4
    res = nm.staged_jacobian(np.sin, x, _never, detect=[False], step=h)
    # Divided by the step floating point realised, (x + h) - (x - h), as numeric.jacobian does.
    central = [(np.sin(t + h) - np.sin(t - h)) / ((t + h) - (t - h)) for t in x]
    assert res.method == "central" and res.evaluations == 1 + 3 * 2
    assert np.allclose(np.diag(res.value), central, rtol=1e-11, atol=0)
    assert np.allclose(np.diag(res.value), np.cos(x), rtol=1e-8, atol=0)


def test_staged_directional_is_along_the_realised_direction():
    # Mixed scales: the step (~1e-5, set by the small coordinates) is below an ulp of 3e11,
    # so x + t v is rounded there.
    x = np.array([3e11, 0.5, -2.0])
    v = np.array([1.0, -1.0, 1.0])

    def f(t):
        return np.array([t[0] * 1e-6 + np.sin(t[1]) + t[2] ** 2])

    res, realised = nm.staged_directional(f, x, v[None, :], lambda *a: np.zeros(1, dtype=bool))
    grad = np.array([1e-6, np.cos(0.5), -4.0])
    assert res.method == "first estimate" and res.evaluations == 4
    assert not np.array_equal(realised[0], v)
    assert abs(res.value[0, 0] - grad @ realised[0]) <= 4 * res.error[0, 0]
    refined, dirs = nm.staged_directional(f, x, v[None, :], lambda *a: np.ones(1, dtype=bool))
    assert refined.method == "richardson" and np.array_equal(dirs[0], v)


@pytest.mark.parametrize(("name", "f", "mf", "x"), CASES, ids=[f"{c[0]}@{c[3]:g}" for c in CASES])
def test_ladder_floor_is_below_every_richardson_error(name, f, mf, x):
    """staged_jacobian tells the verdict that no refined error can be below this floor."""
    seen = []

    def record(value, error, floor):
        seen.append(floor)
        return np.ones(value.shape, dtype=bool)

    res = nm.staged_jacobian(lambda v: f(v[0]), [x], record)
    assert res.method in ("richardson", "one-sided")
    assert res.error[0, 0] >= seen[0][0, 0]


def test_an_independent_block_is_refined_on_one_ladder():
    # Under an offset of 1e8 no first estimate is precise enough: the ladder is needed, and
    # one ladder serves all 300 coordinates, structural zeros included.
    x = np.linspace(0.5, 1.5, 300)
    res = nm.staged_jacobian(
        lambda v: 1e8 + np.sin(v), x, lambda value, error, floor: error > 10 * floor
    )
    assert res.method == "richardson" and res.evaluations < 120
    assert np.max(np.abs(np.diag(res.value) - np.cos(x))) <= 4 * np.max(np.diag(res.error))


def test_a_dependence_below_the_first_probes_resolution_keeps_an_honest_error():
    """Under an offset of 1e8 a dependence of 1e-4 does not change f at steps of 1e-5.

    The first probes call the function elementwise; the wide ones see the dependence, so the
    structural zeros keep their coarse error bars and the columns are refined one by one.
    """
    x = np.linspace(0.5, 1.5, 32)
    res = nm.staged_jacobian(
        lambda v: 1e8 + np.sin(v) + 1e-4 * v[0], x, lambda value, error, floor: error > 10 * floor
    )
    assert np.all(np.abs(res.value[1:, 0] - 1e-4) <= 4 * res.error[1:, 0])
    off = ~np.eye(32, dtype=bool)
    off[:, 0] = False
    assert np.all(np.abs(res.value[off]) <= 4 * res.error[off])


# ------------------------------------------------------------------- batched evaluations


def _always(value, error, floor):
    return np.ones(value.shape, dtype=bool)


_W = np.random.default_rng(5).standard_normal((7, 6))
BATCHED = {
    # name: f of one point, the same f over a stack of points (P, n) -> (P, m), x
    # (a sum along the last axis, so that one point and a stack round alike; a matmul of a
    # stack may sum in another order, which changes the last bits and no verdict)
    "dense": (
        lambda v: np.tanh((_W * v).sum(-1)),
        lambda s: np.tanh((_W * s[:, None, :]).sum(-1)),
        np.linspace(-1, 1, 6),
    ),
    "elementwise": (
        lambda v: np.sin(v) * np.exp(v),
        lambda s: np.sin(s) * np.exp(s),
        np.linspace(-1, 1, 40),
    ),
    "offset 1e8": (lambda v: 1e8 + np.sin(3 * v), lambda s: 1e8 + np.sin(3 * s), np.ones(4)),
    "log near its edge": (np.log, np.log, np.array([1e-6, 0.5, 3.0])),
}


@pytest.mark.parametrize("refine", [_never, _always], ids=["first estimate", "ladder"])
@pytest.mark.parametrize("name", BATCHED)
def test_a_batched_f_gives_the_same_numbers_in_fewer_calls(name, refine):
    f, many, x = BATCHED[name]
    one = nm.staged_jacobian(f, x, refine)
    stacked = nm.staged_jacobian(f, x, refine, batched=many)
    assert np.array_equal(one.value, stacked.value, equal_nan=True)
    assert np.array_equal(one.error, stacked.error, equal_nan=True)
    assert np.array_equal(one.step, stacked.step) and one.method == stacked.method
    assert one.calls == one.evaluations
    # Every stage's points in a few calls: the first estimates of all columns in one, a
    # ladder's rungs in chunks of several, for every column at once.
    assert stacked.calls <= 8 if refine is _never else stacked.calls <= one.calls / 5


def test_a_batched_directional_derivative_gives_the_same_numbers_in_fewer_calls():
    f, many, x = BATCHED["dense"]
    dirs = np.random.default_rng(6).standard_normal((3, 6))
    for refine in (lambda *a: np.zeros(3, bool), lambda *a: np.ones(3, bool)):
        (one, real1), (stacked, real2) = (
            nm.staged_directional(f, x, dirs, refine),
            nm.staged_directional(f, x, dirs, refine, batched=many),
        )
        assert np.array_equal(one.value, stacked.value)
        assert np.array_equal(one.error, stacked.error) and np.array_equal(real1, real2)
        assert stacked.calls < one.calls / 3


def test_a_stack_that_fails_is_evaluated_point_by_point():
    """A stack raising (one point outside the domain) must not turn the others into NaN."""

    def many(stack):
        if np.any(stack <= 0):
            raise ValueError("math domain error")
        return np.log(stack)

    x = np.array([1e-6, 2.0])
    one = nm.staged_jacobian(np.log, x, _always)
    stacked = nm.staged_jacobian(np.log, x, _always, batched=many)
    assert np.array_equal(one.value, stacked.value) and np.array_equal(one.error, stacked.error)
    assert np.all(np.isfinite(stacked.value.diagonal()))
