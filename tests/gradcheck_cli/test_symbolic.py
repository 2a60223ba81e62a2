"""Exact derivatives: formulas, exact and float64 evaluation, kinks, domains, no eval."""

from __future__ import annotations

import builtins
import math

import mpmath
import numpy as np
import pytest
import sympy

from gradcheck_cli.expr import parse
from gradcheck_cli.symbolic import (
    RealAbs,
    Relu,
    analyze_point,
    compile_derivatives,
    differentiate,
    one_sided,
    to_sympy,
)


def exact(text: str, point: dict[str, float], order: int = 1):
    d = differentiate(parse(text), order)
    return d, compile_derivatives(d).evaluate(point, "exact")


def test_contract_example() -> None:
    d, ev = exact("x**2 + 2*x + 1", {"x": 3.0})
    assert d.formulas() == {"x": "2*x + 2"}
    assert ev.value == 16 and ev.gradient == {"x": 8}


def test_gradient_formulas_keep_user_names() -> None:
    d = differentiate(parse("gamma*beta + sin(E1)*I"))
    assert d.formulas() == {"gamma": "beta", "beta": "gamma", "E1": "I*cos(E1)", "I": "sin(E1)"}


def test_hessian_formulas_and_values() -> None:
    d, ev = exact("sin(x)*exp(-y**2)", {"x": 1.0, "y": 0.5}, order=2)
    formulas = d.hessian_formulas()
    assert formulas is not None
    assert formulas["x"]["y"] == formulas["y"]["x"] == "-2*y*exp(-y**2)*cos(x)"
    assert ev.hessian is not None
    want = -math.sin(1.0) * math.exp(-0.25)
    assert float(ev.hessian["x"]["x"]) == pytest.approx(want, rel=1e-15)
    assert float(ev.hessian["x"]["y"]) == float(ev.hessian["y"]["x"])


def test_exact_is_high_precision() -> None:
    # d/dx log(1 + x) at 1e-20: float64 log1p is exact here, naive float would round 1 + x.
    _, ev = exact("log(1 + x)", {"x": 1e-20})
    with mpmath.workdps(40):
        assert abs(ev.gradient["x"] - (1 - mpmath.mpf(1e-20))) < mpmath.mpf(10) ** -35
    assert ev.gradient["x"] != 1


def test_float64_and_exact_agree_and_compile_once() -> None:
    d = differentiate(parse("log(1 + exp(a*b)) + sqrt(a^2 + b^2 + 1) + tanh(a - 2*b)"), 2)
    c = compile_derivatives(d)
    n_instructions = len(c.instructions)
    for a, b in [(0.1, 0.2), (-1.5, 2.0), (3.0, -0.7)]:
        fl = c.evaluate({"a": a, "b": b})
        ex = c.evaluate({"a": a, "b": b}, "exact")
        for v in ("a", "b"):
            assert float(fl.gradient[v]) == pytest.approx(float(ex.gradient[v]), rel=1e-13)
    assert len(c.instructions) == n_instructions


def test_float32_evaluation_rounds_like_float32() -> None:
    c = compile_derivatives(differentiate(parse("x*0.1 + sin(x)")))
    f32 = c.evaluate({"x": 1.3}, "float32")
    assert isinstance(f32.value, np.float32)
    assert float(f32.gradient["x"]) == pytest.approx(0.1 + math.cos(1.3), rel=1e-6)
    assert float(f32.gradient["x"]) != float(c.evaluate({"x": 1.3}).gradient["x"])
    with pytest.raises(ValueError, match="precision must be"):
        c.evaluate({"x": 1.0}, "float16")


def test_compile_shares_subexpressions() -> None:
    d = differentiate(parse("y*sin(x) + sin(x)**2 + cos(x)"))
    c = compile_derivatives(d)
    ops = [op for op, _, _ in c.instructions]
    assert ops.count("sin") == 1 and ops.count("cos") == 1


def test_numbers_stay_binary_floats() -> None:
    # The engine sees fl(0.1): x - 0.1 at x = 0.1 must be an exact zero for SymPy too.
    a = analyze_point(parse("x - 0.1"), {"x": 0.1})
    assert a.value == 0
    assert to_sympy(parse("2.5*x")).has(sympy.Float)


def test_long_sums_are_flattened() -> None:
    text = " + ".join(f"x{i}**2" for i in range(400))
    e = to_sympy(parse(text))
    assert isinstance(e, sympy.Add) and len(e.args) == 400


def test_log_with_base() -> None:
    d, ev = exact("log(x, 2)", {"x": 8.0})
    assert ev.value == 3
    assert float(ev.gradient["x"]) == pytest.approx(1 / (8 * math.log(2)), rel=1e-15)
    assert d.formulas() == {"x": "1/(x*log(2))"}


# ---------------------------------------------------------------------------- kinks


@pytest.mark.parametrize(
    ("text", "point", "convention", "left", "right"),
    [
        ("abs(x)", {"x": 0.0}, {"x": 0}, {"x": -1}, {"x": 1}),
        ("relu(x)", {"x": 0.0}, {"x": 0}, {"x": 0}, {"x": 1}),
        (
            "max(x, y)",
            {"x": 1.0, "y": 1.0},
            {"x": 0.5, "y": 0.5},
            {"x": 0, "y": 0},
            {"x": 1, "y": 1},
        ),
        (
            "min(x, y)",
            {"x": 2.0, "y": 2.0},
            {"x": 0.5, "y": 0.5},
            {"x": 1, "y": 1},
            {"x": 0, "y": 0},
        ),
        ("abs(x - 0.1)", {"x": 0.1}, {"x": 0}, {"x": -1}, {"x": 1}),
    ],
)
def test_kinks_follow_the_engine_convention(text, point, convention, left, right) -> None:
    e = parse(text)
    a = analyze_point(e, point)
    assert a.error is None and len(a.kinks) == 1
    d, ev = exact(text, point)
    c = compile_derivatives(d)
    for v in e.variables:
        assert ev.gradient[v] == convention[v]
        lo, hi = one_sided(c, point, v)
        assert float(lo) == pytest.approx(left[v], abs=1e-9)
        assert float(hi) == pytest.approx(right[v], abs=1e-9)


def test_sqrt_at_zero_is_infinite_on_the_right_undefined_on_the_left() -> None:
    e = parse("sqrt(x)")
    a = analyze_point(e, {"x": 0.0})
    assert [k.function for k in a.kinks] == ["sqrt"]
    d, ev = exact("sqrt(x)", {"x": 0.0})
    assert mpmath.isinf(ev.gradient["x"])
    lo, hi = one_sided(compile_derivatives(d), {"x": 0.0}, "x")
    assert mpmath.isnan(lo) and hi == mpmath.inf


def test_no_kink_away_from_it() -> None:
    assert analyze_point(parse("abs(x) + relu(y) + max(x, y)"), {"x": 1.0, "y": 2.0}).kinks == ()


def test_kink_functions_print_readably() -> None:
    x = sympy.Symbol("x", real=True)
    assert str(RealAbs(x)) == "abs(x)" and str(Relu(x)) == "relu(x)"
    assert RealAbs(-3) == 3 and Relu(-3) == 0 and Relu(2) == 2
    assert str(Relu(x).diff(x)) == "Heaviside(x, 0)"


# --------------------------------------------------------------------------- domains


@pytest.mark.parametrize(
    ("text", "point", "message", "column"),
    [
        (
            "log(x)",
            {"x": -1.0},
            "log(x) is undefined here: log(-1.0) is outside the domain (x > 0)",
            1,
        ),
        ("1 + log(x)", {"x": 0.0}, "log(x) is undefined here: log(0.0) is outside the domain", 5),
        (
            "sqrt(x)",
            {"x": -1.0},
            "sqrt(x) is undefined here: sqrt(-1.0) is outside the domain (x >= 0)",
            1,
        ),
        ("1/x", {"x": 0.0}, "division by zero in 1/x", 2),
        ("1/(x - 1)", {"x": 1.0}, "division by zero in 1/(x - 1)", 2),
        (
            "asin(x)",
            {"x": 2.0},
            "asin(x) is undefined here: asin(2.0) is outside the domain (-1 <= x <= 1)",
            1,
        ),
        (
            "acos(2*x)",
            {"x": 1.0},
            "acos(2*x) is undefined here: acos(2.0) is outside the domain",
            1,
        ),
        (
            "log1p(x)",
            {"x": -2.0},
            "log1p(x) is undefined here: log1p(-2.0) is outside the domain (x > -1)",
            1,
        ),
        (
            "x**y",
            {"x": -2.0, "y": 0.5},
            "x**y is undefined here: (-2.0)**(0.5) is not a real number",
            2,
        ),
        ("x**-1", {"x": 0.0}, "division by zero in x**(-1)", 2),
        (
            "log(x, 1)",
            {"x": 2.0},
            "log(x, 1) is undefined here: log(2.0, 1.0) is outside the domain",
            1,
        ),
    ],
)
def test_domain_errors_are_clear(text, point, message, column) -> None:
    a = analyze_point(parse(text), point)
    assert a.error is not None and a.error.startswith(message)
    assert a.column == column


def test_domain_error_seen_even_when_sympy_simplifies_it_away() -> None:
    # SymPy turns sqrt(x)**2 into x; the engine computes NaN at x = -1.
    assert to_sympy(parse("sqrt(x)**2")) == sympy.Symbol("x", real=True, finite=True)
    assert analyze_point(parse("sqrt(x)**2"), {"x": -1.0}).error is not None


def test_negative_base_integer_power_is_fine() -> None:
    a = analyze_point(parse("x**3"), {"x": -2.0})
    assert a.error is None and a.value == -8


# ------------------------------------------------------------------------ no eval


def test_pipeline_never_evaluates_text(monkeypatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError(f"evaluated text: {args[:1]!r}")

    real_compile = builtins.compile

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        import ast

        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compiled code")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", only_ast)
    text = "log(1 + exp(a*b)) + sin(a)*cos(b)^2 - sqrt(a^2 + b^2 + 3) + abs(a)*relu(b)"
    d = differentiate(parse(text), 2)
    c = compile_derivatives(d)
    d.formulas()
    c.evaluate({"a": 0.4, "b": -0.2}, "exact")
    c.evaluate({"a": 0.4, "b": -0.2})
    analyze_point(d.expr, {"a": 0.4, "b": -0.2})


def test_order_is_validated() -> None:
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        differentiate(parse("x"), 3)


def test_second_derivative_through_abs_is_evaluated() -> None:
    # Found by the property test: SymPy's sign(u) left Derivative(sign(acos(...)), x) behind.
    d, ev = exact("abs(acos(0.9*tanh(x)))", {"x": 0.3}, order=2)
    assert d.hessian is not None and not d.hessian[0][0].has(sympy.Derivative)
    assert differentiate(parse("abs(x)"), 2).hessian == ((0,),)
    assert ev.hessian is not None and mpmath.isfinite(ev.hessian["x"]["x"])


def test_monomials_skip_the_tidies_because_they_cannot_shorten_them() -> None:
    from gradcheck_cli import formulas

    rng = np.random.default_rng(14)
    names = sympy.symbols("x y T k m", real=True, finite=True)
    for _ in range(150):
        coeff = sympy.Rational(int(rng.integers(-12, 13)) or 1, int(rng.integers(1, 9)))
        powers = [s ** int(rng.integers(-3, 4)) for s in rng.choice(names, 3, replace=False)]
        e = sympy.Mul(coeff, *powers)
        assert formulas._monomial(e), e
        text = formulas._display(e)
        assert all(len(str(tidy(e))) >= len(text) for tidy in formulas._TIDY), e
    # Not monomials: the tidies still get their chance (and here shorten the text).
    x, y = names[:2]
    for e, tidied in [(x / (x * y + x), "1/(y + 1)"), (x**2 * y + x**2, "x**2*(y + 1)")]:
        assert not formulas._monomial(e)
        assert formulas._tidy(e, formulas._display(e)) == tidied
