"""The chain-rule tape against SymPy's own ``diff``: values, kinks, degenerate points.

``compile_derivatives`` never calls SymPy's ``diff`` on the expression; SymPy only supplies
the derivative of each function and tape operation.  Here SymPy's ``diff`` of the whole
expression (``Derivatives.gradient``/``hessian``, our own formulas, never user text) is
evaluated independently with ``lambdify`` at 40 digits and must agree with the tape.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import pytest
import sympy
from hypothesis import HealthCheck, assume, example, given, settings
from test_expr_properties import points, variable_trees

from gradcheck_cli import formulas
from gradcheck_cli.checks import Case, run_case
from gradcheck_cli.expr import Node, parse, to_text
from gradcheck_cli.symbolic import analyze_point, compile_derivatives, differentiate

# The engine's conventions for SymPy's kink functions (see the symbolic module docstring).
_CONVENTIONS: dict[str, Any] = {
    "RealAbs": mpmath.fabs,
    "Sign": mpmath.sign,
    "Relu": lambda x: max(x, 0),
    "Heaviside": lambda x, h0=0.5: 1 if x > 0 else (0 if x < 0 else h0),
    "DiracDelta": lambda *a: 0,
    "Floor": mpmath.floor,
    "Ceil": mpmath.ceil,
    "Cbrt": lambda x: mpmath.sign(x) * mpmath.cbrt(abs(x)),
    "Expm1": mpmath.expm1,
    "Elu": lambda x, a: x if x > 0 else a * mpmath.expm1(x),
    "LeakyRelu": lambda x, s: x if x > 0 else s * x,
    "Clamp": lambda x, lo, hi: min(max(x, lo), hi),
    # SymPy's mpmath printer has no cot: it rewrites cot(u) as 1/tan(u) *and* every tanh in
    # u as -I*tan(I*x), so the reference went through complex numbers, and max() of an mpc
    # raised "no ordering relation" (max(x, cot(1.5 + tanh(x)))). mpmath's own cot is real.
    "cot": mpmath.cot,
}


def sympy_reference(text: str, point: dict[str, float], order: int = 2) -> list[Any]:
    """Value, gradient and Hessian (row-major) from SymPy's diff, evaluated at 40 digits."""
    d = differentiate(parse(text), order)
    outputs = [d.value, *d.gradient]
    if d.hessian is not None:
        outputs += [h for row in d.hessian for h in row]
    fn = sympy.lambdify(d.symbols, outputs, modules=[_CONVENTIONS, "mpmath"])
    with mpmath.workdps(40):
        return fn(*(mpmath.mpf(point[v]) for v in d.expr.variables))


def tape(text: str, point: dict[str, float], order: int = 2) -> list[Any]:
    c = compile_derivatives(differentiate(parse(text), order))
    return c.evaluate_vector([point[v] for v in c.variables], "exact")


def _real(v: Any) -> float:
    # lambdify's mpmath printing returns mpc with a zero imaginary part for some functions.
    if isinstance(v, mpmath.mpc):
        assert v.imag == 0, v
        return float(v.real)
    return float(v)


def assert_agree(ours: list[Any], ref: list[Any], context: Any, rel: float = 1e-12) -> float:
    """Equal to rel, with an absolute floor scaled by the largest output (cancellation)."""
    scale = 1 + max(abs(_real(r)) for r in ref)
    worst = 0.0
    for k, (a, b) in enumerate(zip(ours, ref, strict=True)):
        a, b = _real(a), _real(b)
        assert math.isfinite(a) and math.isfinite(b), (context, k, a, b)
        err = abs(a - b) / (abs(b) + scale)
        assert err <= rel, (context, k, a, b)
        worst = max(worst, err)
    return worst


# ------------------------------------------------------------------ random expressions


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variable_trees, points)
@example(parse("max(x, cot(1.5 + tanh(x)))").root, {"x": -0.3, "y": 0.7, "z": 1.1})
@example(parse("max(x, cot(1.5 + tanh(x)))").root, {"x": 0.5, "y": 0.7, "z": 1.1})
def test_tape_gradient_and_hessian_equal_sympy_diff(tree: Node, point: dict[str, float]) -> None:
    text = to_text(tree)
    e = parse(text)
    pt = {v: point[v] for v in e.variables}
    analysis = analyze_point(e, pt)
    assert analysis.error is None, analysis.error  # the guards keep every point in the domain
    assume(not analysis.kinks)
    assert_agree(tape(text, pt), sympy_reference(text, pt), (text, pt))


# ------------------------------------------------------------------------- by hand


@pytest.mark.parametrize(
    ("text", "point"),
    [
        # kinks, away from them and at them (the conventions: abs'(0) = relu'(0) = 0)
        ("abs(x)*y + relu(y - x)", {"x": -0.7, "y": 0.4}),
        ("abs(x)", {"x": 0.0}),
        ("relu(x)", {"x": 0.0}),
        ("abs(x)*x + relu(x)**2", {"x": 0.0}),
        ("abs(acos(0.9*tanh(x)))", {"x": 0.3}),
        # log with a base, constant and variable
        ("log(x, 2)", {"x": 8.0}),
        ("log(x, y)", {"x": 3.0, "y": 2.0}),
        ("log(x*y, y + 1)", {"x": 0.5, "y": 1.7}),
        # powers: variable exponent, variable base and exponent, constant base
        ("x**y", {"x": 2.0, "y": 3.0}),
        ("x**y", {"x": 0.5, "y": -1.5}),
        ("(x**2 + 1)**sin(y)", {"x": -1.2, "y": 0.8}),
        ("2**x + E**(x*y) + x**0.1 + x**(1/3)", {"x": 1.3, "y": -0.4}),
        # min and max, apart and tied (ties split 0.5/0.5)
        ("max(x, y)*min(x, 2*y)", {"x": 1.5, "y": -0.5}),
        ("max(x, y)", {"x": 1.0, "y": 1.0}),
        ("min(x, y)", {"x": 2.0, "y": 2.0}),
        ("max(x, y)**2 + min(x*y, 1)", {"x": 1.0, "y": 1.0}),
        # the tape folds exact constants as SymPy does
        ("x*(3 - 3) + 0*log(x) + x**0 + sin(0)*x", {"x": 2.0}),
        ("sigmoid(x) + 1/(1 + exp(-x)) + softplus(x) + log1p(x**2)", {"x": 0.4}),
        # found by the property test: the reference must not evaluate cot through complex
        ("max(x, cot(1.5 + tanh(x)))", {"x": -0.3}),
        ("max(x, cot(1.5 + tanh(x)))", {"x": 0.5}),
    ],
)
def test_tape_equals_sympy_by_hand(text: str, point: dict[str, float]) -> None:
    assert_agree(tape(text, point), sympy_reference(text, point), text)


# ---------------------------------------------------------- where the two differ


def test_compile_does_not_build_sympy_expressions(monkeypatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("compile_derivatives built the SymPy expression")

    compile_derivatives(differentiate(parse("sin(x)*max(x, y)**2 + log(y, 3)"), 2))
    monkeypatch.setattr(formulas, "to_sympy", refuse)
    d = differentiate(parse("sin(x)*max(x, y)**3 + log(x, 3)"), 2)
    ev = compile_derivatives(d).evaluate({"x": 0.5, "y": 0.25}, "exact")
    assert ev.hessian is not None
    with pytest.raises(AssertionError, match="built the SymPy expression"):
        d.formulas()


def test_zero_base_with_a_variable_exponent_is_nan_as_in_sympy() -> None:
    # SymPy's rule b**e*(e'*log(b) + b'*e/b) is NaN for b = 0 (0/0); its derivative is 0.
    value, grad, hess = tape("0**x", {"x": 0.0})
    assert value == 1 and mpmath.isnan(grad) and hess == 0
    assert differentiate(parse("0**x"), 2).formulas() == {"x": "nan"}


def test_derivative_follows_our_tree_not_sympys_simplification() -> None:
    # SymPy turns sqrt(x)**2 into x (derivative 1 everywhere); the engine and the tape follow
    # the tree: 2*sqrt(x) * 1/(2*sqrt(x)) is 0*inf at 0, and the left side is undefined.
    value, grad, _ = tape("sqrt(x)**2", {"x": 0.0})
    assert value == 0 and mpmath.isnan(grad)
    assert sympy_reference("sqrt(x)**2", {"x": 0.0})[1] == 1
    (r,) = run_case(Case("sqrt(x)**2", ({"x": 0.0},)))
    assert r.status == "pass", r.message
    assert r.derivative == {"x": "1"}  # the display formula is still SymPy's
    assert math.isnan(r.one_sided["x"][0]) and r.one_sided["x"][1] == pytest.approx(1.0)
    # Away from 0 both agree.
    assert_agree(tape("sqrt(x)**2", {"x": 2.0}), sympy_reference("sqrt(x)**2", {"x": 2.0}), 2)


def test_complex_intermediate_is_a_domain_error() -> None:
    # log(x, x) at -1 is log(-1)/log(-1) = 1 + 0j: the engine computes NaN; it is not 1.
    a = analyze_point(parse("log(x, x)"), {"x": -1.0})
    assert a.error is not None and a.error.startswith("log(x, x) is undefined here")
    (r,) = run_case(Case("abs(log(x, x))", ({"x": -1.0},)))
    assert r.status == "error"
    # A complex value reaching sign() in the tape gives NaN, not a TypeError.
    out = tape("abs(log(x, x))", {"x": -1.0}, order=1)
    assert mpmath.isnan(out[1])
