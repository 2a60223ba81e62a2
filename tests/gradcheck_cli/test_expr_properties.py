"""Property tests: random expressions over the whole function table, and a parser fuzz.

Random trees are built with domain guards (log of a positive value, asin of |u| < 1, ...) so
that random points are in the domain; the engine, SymPy and finite differences must agree.
"""

from __future__ import annotations

import ast
import builtins
import math
import time
from contextlib import contextmanager
from typing import Any
from unittest import mock

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcheck_cli.checks import Case, numeric_derivatives, run_case, scalar_function
from gradcheck_cli.expr import (
    CONSTANTS,
    FUNCTIONS,
    OPERATORS,
    Expr,
    ExprError,
    Node,
    is_name,
    parse,
    postorder,
    suggest,
    to_text,
)
from gradcheck_cli.lower import to_engine
from gradcheck_cli.symbolic import analyze_point, compile_derivatives, differentiate
from gradcheck_cli.table import ROWS, SPELLINGS, UNSUPPORTED, canonical

VARIABLES = ("x", "y", "z")


def num(v: int | float) -> Node:
    return Node("num", v)


def call(name: str, *args: Node) -> Node:
    return Node("call", name, tuple(args))


def binary(op: str, a: Node, b: Node) -> Node:
    return Node(op, None, (a, b))


def positive(u: Node) -> Node:
    """exp(tanh(u)): in (1/e, e), smooth, never overflows."""
    return call("exp", call("tanh", u))


def unit(u: Node) -> Node:
    """0.9*tanh(u): strictly inside (-1, 1)."""
    return binary("*", num(0.9), call("tanh", u))


def bounded(u: Node) -> Node:
    """3*tanh(u): keeps exp, sinh and cosh far from overflow."""
    return binary("*", num(3), call("tanh", u))


# Every row of the table, each with the guard that keeps its argument in the domain.
GUARDED = {
    "sin": lambda a: call("sin", a[0]),
    "cos": lambda a: call("cos", a[0]),
    "tan": lambda a: call("tan", call("tanh", a[0])),
    "asin": lambda a: call("asin", unit(a[0])),
    "acos": lambda a: call("acos", unit(a[0])),
    "atan": lambda a: call("atan", a[0]),
    "sinh": lambda a: call("sinh", bounded(a[0])),
    "cosh": lambda a: call("cosh", bounded(a[0])),
    "tanh": lambda a: call("tanh", a[0]),
    "exp": lambda a: call("exp", bounded(a[0])),
    "log": lambda a: call("log", positive(a[0])),
    "log2": lambda a: call("log", positive(a[0]), num(2)),
    "log1p": lambda a: call("log1p", unit(a[0])),
    "sqrt": lambda a: call("sqrt", positive(a[0])),
    "abs": lambda a: call("abs", a[0]),
    "sigmoid": lambda a: call("sigmoid", a[0]),
    "relu": lambda a: call("relu", a[0]),
    "softplus": lambda a: call("softplus", a[0]),
    "min": lambda a: call("min", a[0], a[1]),
    "max": lambda a: call("max", a[0], a[1]),
    "min3": lambda a: call("min", a[0], a[1], num(0.5)),
    "max3": lambda a: call("max", Node("neg", None, (num(0.5),)), a[0], a[1]),
    "sec": lambda a: call("sec", call("tanh", a[0])),
    "csc": lambda a: call("csc", binary("+", num(1.5), call("tanh", a[0]))),
    "cot": lambda a: call("cot", binary("+", num(1.5), call("tanh", a[0]))),
    "asinh": lambda a: call("asinh", a[0]),
    "acosh": lambda a: call("acosh", binary("+", num(2), call("tanh", a[0]))),
    "atanh": lambda a: call("atanh", unit(a[0])),
    "atan2": lambda a: call("atan2", a[0], positive(a[1])),
    "erf": lambda a: call("erf", a[0]),
    "erfc": lambda a: call("erfc", a[0]),
    "log2f": lambda a: call("log2", positive(a[0])),
    "log10": lambda a: call("log10", positive(a[0])),
    "exp2": lambda a: call("exp2", bounded(a[0])),
    "expm1": lambda a: call("expm1", bounded(a[0])),
    "cbrt": lambda a: call("cbrt", a[0]),
    "square": lambda a: call("square", a[0]),
    "sign": lambda a: binary("*", call("sign", a[0]), a[1]),
    "floor": lambda a: binary("+", call("floor", a[0]), a[1]),
    "ceil": lambda a: binary("*", call("ceil", a[0]), a[1]),
    "hypot": lambda a: call("hypot", a[0], a[1]),
    "gelu": lambda a: call("gelu", a[0]),
    "silu": lambda a: call("silu", a[0]),
    "elu": lambda a: call("elu", a[0]),
    "elu2": lambda a: call("elu", a[0], num(0.5)),
    "leaky_relu": lambda a: call("leaky_relu", a[0], num(0.25)),
    "softsign": lambda a: call("softsign", a[0]),
    "logsigmoid": lambda a: call("logsigmoid", a[0]),
    "clamp": lambda a: call("clamp", a[0], Node("neg", None, (num(0.5),)), a[1]),
    "+": lambda a: binary("+", a[0], a[1]),
    "-": lambda a: binary("-", a[0], a[1]),
    "*": lambda a: binary("*", a[0], a[1]),
    "/": lambda a: binary("/", a[0], positive(a[1])),
    "**int": lambda a: binary("**", a[0], num(2)),
    "**real": lambda a: binary("**", positive(a[0]), call("tanh", a[1])),
    "neg": lambda a: Node("neg", None, (a[0],)),
}
assert {k for k in GUARDED if k in FUNCTIONS} == set(FUNCTIONS)
assert {k for k in GUARDED if k in OPERATORS or k.startswith("**")} >= set(OPERATORS) - {"**"}

variables = st.sampled_from(VARIABLES).map(lambda v: Node("var", v))
leaves = st.one_of(
    variables,
    variables,
    st.sampled_from([1, 2, 3, 0.5, 1.5, 0.25]).map(num),
    st.sampled_from(["pi", "E"]).map(lambda c: Node("const", c)),
)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.builds(
        lambda k, a, b: GUARDED[k]((a, b)), st.sampled_from(sorted(GUARDED)), children, children
    )


trees = st.recursive(leaves, _extend, max_leaves=8)


def _with_variable(tree: Node, var: Node) -> Node:
    has_var = any(n.kind == "var" for n in postorder(tree))
    return tree if has_var else binary("*", tree, var)


variable_trees = st.builds(_with_variable, trees, variables)
coordinates = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, allow_infinity=False)
points = st.fixed_dictionaries({v: coordinates for v in VARIABLES})

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@SETTINGS
@given(trees)
def test_text_round_trip(tree: Node) -> None:
    text = to_text(tree)
    e = parse(text)
    assert e.root == tree
    assert to_text(e) == text


@SETTINGS
@given(variable_trees, points)
def test_engine_sympy_and_finite_differences_agree(tree: Node, point: dict[str, float]) -> None:
    e = parse(to_text(tree))
    pt = {v: point[v] for v in e.variables}
    analysis = analyze_point(e, pt)
    assert analysis.error is None, analysis.error  # the guards keep every point in the domain
    assume(not analysis.kinks)
    compiled = compile_derivatives(differentiate(e))
    exact = compiled.evaluate(pt, "exact")
    low = to_engine(e, pt, retain_grad=False)
    with np.errstate(all="ignore"):
        auto = low.backward()
    sym = {v: float(exact.gradient[v]) for v in e.variables}
    scale = 1.0 + max(abs(s) for s in sym.values()) + abs(float(exact.value))
    for v in e.variables:
        # 1e-9 relative, with an absolute floor far below any real error for zero gradients.
        assert abs(auto[v] - sym[v]) <= 1e-9 * abs(sym[v]) + 1e-12 * scale, (to_text(e), v)
    assert float(low.output.item()) == pytest.approx(float(exact.value), rel=1e-9, abs=1e-12)
    x = np.array([pt[v] for v in e.variables])
    grad, _ = numeric_derivatives(scalar_function(e), x, complex_safe=e.smooth)
    for i, v in enumerate(e.variables):
        # A kink within the stencil (max(x, y) at x = 0, y = 1e-12) is invisible to any finite
        # difference whose steps are larger than its distance: the estimate is then of the
        # other branch's slope. That is what the CLI reports as "ill-conditioned"; here such
        # points are skipped, found as a jump in the exact derivative across the stencil.
        if _jumps_within(compiled, pt, v, 30 * float(grad.step[i]), sym[v]):
            continue
        bound = 4 * grad.error[i] + 1e-6 * (1 + abs(sym[v]))
        assert abs(grad.value[i] - sym[v]) <= bound, (to_text(e), v, grad.method)


def _jumps_within(compiled: Any, pt: dict[str, float], v: str, h: float, g: float) -> bool:
    """Whether the exact d/dv changes by a jump (not by curvature) between pt -/+ h along v."""
    values = []
    for s in (-h, h):
        shifted = dict(pt, **{v: pt[v] + s})
        d = compiled.evaluate(shifted, "exact").gradient[v]
        try:
            values.append(float(d))
        except (TypeError, ValueError):
            return True  # undefined next door: a domain edge within the stencil
    return any(not np.isfinite(d) or abs(d - g) > 1e-2 * (1 + abs(g)) for d in values)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variable_trees, points)
def test_run_case_passes_on_random_expressions(tree: Node, point: dict[str, float]) -> None:
    e = parse(to_text(tree))
    r = run_case(Case(to_text(e), ({v: point[v] for v in e.variables},), order=2))[0]
    assert r.status == "pass", (r.expr, r.point, r.message)


# ------------------------------------------------------------------------------- fuzz

ALPHABET = "xyzab0123456789.eE+-*/^(),  sincolgqrtbmpx_!$#'\"\t\n[]{}@%=<>&|~`λ;:"
VALID = [
    "x**2 + 2*x + 1",
    "sin(x)*exp(-y**2)",
    "log(1 + exp(a*b))",
    "max(x, y) - min(x, 2)/sqrt(abs(y) + 1)",
    "log(x, 2) + softplus(-x)^3 + sigmoid(relu(y))",
    "9**9**9",
]


@contextmanager
def nothing_runs():
    """Refuse eval/exec and any compile that is not to an AST, for the block."""
    real_compile = builtins.compile

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("code was compiled")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("code was evaluated")

    with (
        mock.patch.object(builtins, "compile", only_ast),
        mock.patch.object(builtins, "eval", refuse),
        mock.patch.object(builtins, "exec", refuse),
    ):
        yield


def parse_or_error(text: str) -> Expr | None:
    start = time.perf_counter()
    with nothing_runs():
        try:
            e = parse(text)
        except ExprError as err:
            assert err.column >= 1 and "\n" not in str(err)
            e = None
    assert time.perf_counter() - start < 30.0  # a hang guard, not a benchmark (shared CI)
    if e is not None:
        assert parse(to_text(e)) == e
    return e


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_fuzz_alphabet(text: str) -> None:
    parse_or_error(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_any_unicode(text: str) -> None:
    parse_or_error(text)


@st.composite
def mutations(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        ch = draw(st.sampled_from(ALPHABET))
        if kind == "insert":
            text = text[:i] + ch + text[i:]
        elif kind == "delete":
            text = text[:i] + text[i + 1 :]
        elif kind == "replace":
            text = text[:i] + ch + text[i + 1 :]
        else:
            text = text[:i] + text[i:] * draw(st.integers(2, 50))
    return text


@settings(max_examples=300, deadline=None)
@given(mutations())
def test_fuzz_mutations_of_valid_expressions(text: str) -> None:
    parse_or_error(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations(), points)
def test_fuzzed_cases_never_raise(text: str, point: dict[str, float]) -> None:
    try:
        names = parse(text).variables
    except ExprError:
        names = ()
    values = {**point, "a": 0.5, "b": -0.5}
    with np.errstate(all="ignore"):
        results = run_case(Case(text, ({v: values.get(v, 0.3) for v in names},)))
    for r in results:
        assert r.status in ("pass", "fail", "error")
        if r.status == "error":
            assert r.message and "\n" not in r.message


def test_exact_reference_is_not_a_float_shadow() -> None:
    # exp(x) - 1 - x at 1e-17 is 5e-35: float64 says 0, the 40-digit reference does not.
    e = parse("exp(x) - 1 - x")
    a = analyze_point(e, {"x": 1e-17})
    with mpmath.workdps(40):
        assert abs(a.value - mpmath.mpf(1e-17) ** 2 / 2) < mpmath.mpf(10) ** -39
    assert float(a.value) == pytest.approx(5e-35, rel=1e-5)
    assert math.exp(1e-17) - 1 - 1e-17 != float(a.value)


# ------------------------------------------------------------------ suggestion quality

# Every name the language knows something about: a function, an alias, a constant, or a
# function it refuses on purpose. None of them may be "corrected" into another name.
KNOWN = sorted(SPELLINGS | set(UNSUPPORTED) | set(CONSTANTS))
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A known name with one to two slips: a letter inserted, dropped, replaced, swapped."""
    name = draw(st.sampled_from(KNOWN))
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.integers(0, max(0, len(name) - 1)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap", "case"]))
        ch = draw(st.sampled_from(LETTERS))
        if kind == "insert":
            name = name[:i] + ch + name[i:]
        elif kind == "delete" and len(name) > 1:
            name = name[:i] + name[i + 1 :]
        elif kind == "replace":
            name = name[:i] + ch + name[i + 1 :]
        elif kind == "swap" and i + 1 < len(name):
            name = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        else:
            name = name.swapcase()
    return name


@pytest.mark.parametrize("name", KNOWN)
def test_no_known_name_gets_a_suggestion(name: str) -> None:
    assert suggest(name) is None
    try:
        parse(f"{name}(x)")
    except ExprError as exc:
        assert "did you mean" not in exc.message or name in CONSTANTS, exc.message


def _meaning(name: str) -> str | None:
    """The row a spelling calls, or None."""
    return canonical(name)


@settings(max_examples=400, deadline=None)
@given(st.one_of(near_misses(), st.text(alphabet=LETTERS, min_size=1, max_size=12)).filter(is_name))
def test_a_suggestion_is_a_near_miss_of_one_function_and_never_of_a_known_name(
    name: str,
) -> None:
    hint = suggest(name)
    if hint is None:
        return
    assert name not in KNOWN  # a known name is never "corrected"
    assert hint in SPELLINGS and _meaning(hint) is not None
    # A case slip of a known spelling is that spelling's function, not another one.
    folded = {_meaning(s) for s in SPELLINGS if s.lower() == name.lower()}
    if folded:
        assert _meaning(hint) in folded, (name, hint)
    # What the parser says is what suggest() says: one name, offered once.
    with pytest.raises(ExprError) as info:
        parse(f"{name}(x)")
    assert info.value.message == f"unknown function '{name}': did you mean {hint}?"
    # Accepting the hint gives an expression that parses (the user's next try works).
    arity = ROWS[_meaning(hint) or ""].arity[0]
    parse(f"{hint}({', '.join(['x'] * arity)})")
