"""The table is the test matrix: every row, every column, at random points of its domain.

Each row is held to: its columns exist and fit together; its exact derivative (the tape)
equals mpmath's numerical derivative of its own scalar column at 40 digits; the engine's
gradient equals the exact one; the four scalar namespaces agree; its text round-trips; its
kinks follow torch's conventions and are reported; a point outside its domain is refused.
"""

from __future__ import annotations

import math
import random
from typing import Any

import mpmath
import numpy as np
import pytest
import sympy

from gradcheck_cli.checks import Case, numeric_derivatives, run_case, scalar_function
from gradcheck_cli.expr import (
    FUNCTIONS,
    OPERATORS,
    ROWS,
    ExprError,
    Node,
    parse,
    suggest,
    to_text,
)
from gradcheck_cli.formulas import differentiate
from gradcheck_cli.lower import to_engine
from gradcheck_cli.point import analyze_point
from gradcheck_cli.scalars import COMPLEX, MATH, MPMATH, NUMPY
from gradcheck_cli.sympy_functions import NAMESPACE
from gradcheck_cli.table import ALIASES, SPELLINGS, UNSUPPORTED
from gradcheck_cli.tape import compile_derivatives

VARS = ("x", "y", "z")
LITERALS = {"elu": 0.5, "leaky_relu": 0.2}  # the value given to a fixed (literal) argument
SPELLABLE = sorted(r for r in ROWS if ROWS[r].spellable)


def arities(name: str) -> list[int]:
    row = ROWS[name]
    return [*row.arity, *([row.arity[-1] + 1] if row.variadic else [])]


CASES = [(name, n) for name in SPELLABLE for n in arities(name)]


def node_for(name: str, n: int) -> tuple[Node, list[int]]:
    """The row applied to variables (and literals at its fixed positions); variable slots."""
    row = ROWS[name]
    args: list[Node] = []
    slots: list[int] = []
    for k in range(n):
        if k in row.fixed:
            args.append(Node("num", LITERALS[name]))
        else:
            args.append(Node("var", VARS[len(slots)]))
            slots.append(k)
    if row.operator:
        return Node(name, None, tuple(args)), slots
    return Node("call", name, tuple(args)), slots


def sample(name: str, n: int, rng: random.Random) -> list[float]:
    """Argument values inside the domain, away from kinks (integers for floor/ceil)."""
    row = ROWS[name]
    for _ in range(10_000):
        xs = [LITERALS[name] if k in row.fixed else rng.uniform(-2.5, 2.5) for k in range(n)]
        if not row.domain(*xs):
            continue
        near = [x + d for x in xs for d in (-0.05, 0.05)]
        if row.kink(xs, [True] * n) or (name in ("floor", "ceil") and
                                         any(math.floor(a) != math.floor(x) for a, x in
                                             zip(near[::2], near[1::2], strict=True))):
            continue
        if name == "atan2" and xs[1] < 0 and abs(xs[0]) < 0.05:
            continue  # next to the branch cut
        if name in ("min", "max", "clamp") and min(
            abs(a - b) for i, a in enumerate(xs) for b in xs[i + 1 :]
        ) < 0.05:
            continue
        return xs
    raise AssertionError(f"no point found in the domain of {name}")


def points(name: str, n: int, count: int = 4) -> list[list[float]]:
    rng = random.Random(f"{name}/{n}")
    return [sample(name, n, rng) for _ in range(count)]


# ---------------------------------------------------------------------------- columns


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_row_has_every_column(name: str) -> None:
    row = ROWS[name]
    for column in ("engine", "sympy", "scalar", "tape", "text", "domain", "kink"):
        assert callable(getattr(row, column)), (name, column)
    assert row.arity and row.name == name and row.op_name
    for head in row.heads:
        assert isinstance(getattr(NAMESPACE, head), type), (name, head)
    if row.spellable:
        n = row.arity[0]
        assert row.accepts(n) and not row.accepts(0)


def test_operators_and_functions_are_all_rows() -> None:
    assert set(OPERATORS) == {"+", "-", "*", "/", "**", "neg"}
    expected = set(
        "sin cos tan sec csc cot asin acos atan atan2 sinh cosh tanh asinh acosh atanh exp exp2 "
        "expm1 log log2 log10 log1p sqrt cbrt square abs sign floor ceil erf erfc hypot "
        "sigmoid relu softplus gelu silu elu leaky_relu softsign logsigmoid min max clamp".split()
    )
    assert set(FUNCTIONS) == expected
    assert set(ROWS) == expected | set(OPERATORS) | {"heaviside", "delta"}


def test_every_sympy_head_of_the_tape_has_a_row() -> None:
    # What SymPy's derivatives of every row contain must be evaluable on the tape.
    for name, n in CASES:
        node, _ = node_for(name, n)
        compile_derivatives(differentiate(parse(to_text(node)), 2))


# -------------------------------------------------------------------- exact derivative


def _mp_function(name: str, n: int, slots: list[int]) -> Any:
    row = ROWS[name]

    def f(*vs: Any) -> Any:
        args: list[Any] = [mpmath.mpf(LITERALS[name]) if k in row.fixed else None
                           for k in range(n)]
        for k, v in zip(slots, vs, strict=True):
            args[k] = v
        return row.scalar(MPMATH, *args)

    return f


@pytest.mark.parametrize(("name", "n"), CASES)
def test_exact_derivative_against_mpmath(name: str, n: int) -> None:
    node, slots = node_for(name, n)
    e = parse(to_text(node))
    compiled = compile_derivatives(differentiate(e, 2))
    f = _mp_function(name, n, slots)
    for xs in points(name, n):
        vs = [xs[k] for k in slots]
        out = compiled.evaluate_vector(vs, "exact")
        m = len(vs)
        with mpmath.workdps(50):
            mvs = [mpmath.mpf(v) for v in vs]
            value = f(*mvs)
            grads = [mpmath.diff(f, mvs, tuple(int(i == j) for i in range(m))) for j in range(m)]
            hess = [
                mpmath.diff(f, mvs, tuple(int(i == a) + int(i == b) for i in range(m)))
                for a in range(m)
                for b in range(m)
            ]
        scale = 1 + abs(value)
        assert abs(out[0] - value) <= 1e-30 * scale, (name, xs)
        for g, want in zip(out[1 : 1 + m], grads, strict=True):
            assert abs(g - want) <= 1e-25 * (1 + abs(want)), (name, xs, g, want)
        for h, want in zip(out[1 + m :], hess, strict=True):
            assert abs(h - want) <= 1e-18 * (1 + abs(want)), (name, xs, h, want)


@pytest.mark.parametrize(("name", "n"), CASES)
def test_engine_against_exact(name: str, n: int) -> None:
    node, slots = node_for(name, n)
    e = parse(to_text(node))
    compiled = compile_derivatives(differentiate(e, 1))
    for xs in points(name, n):
        point = {VARS[i]: xs[k] for i, k in enumerate(slots)}
        exact = compiled.evaluate(point, "exact")
        low = to_engine(e, point)
        assert float(low.output.item()) == pytest.approx(float(exact.value), rel=1e-13, abs=1e-15)
        auto = low.backward()
        for v in e.variables:
            assert auto[v] == pytest.approx(float(exact.gradient[v]), rel=1e-12, abs=1e-14), (
                name, xs, v)
        assert low.nodes[-1].op == ROWS[name].op_name


@pytest.mark.parametrize(("name", "n"), CASES)
def test_scalar_namespaces_agree(name: str, n: int) -> None:
    row = ROWS[name]
    for xs in points(name, n):
        with mpmath.workdps(30):
            want = float(row.scalar(MPMATH, *[mpmath.mpf(x) for x in xs]))
        assert float(row.scalar(MATH, *xs)) == pytest.approx(want, rel=1e-13, abs=1e-15)
        got = row.scalar(NUMPY, *[np.float64(x) for x in xs])
        assert float(got) == pytest.approx(want, rel=1e-13, abs=1e-15), name
        if row.smooth:
            z = row.scalar(COMPLEX, *[complex(x) for x in xs])
            assert complex(z).real == pytest.approx(want, rel=1e-13, abs=1e-15), name


@pytest.mark.parametrize(("name", "n"), CASES)
def test_bound_scalars_are_the_scalar_column(name: str, n: int) -> None:
    # The witness's evaluator binds each row to its namespace once (scalar_with): the same
    # numbers, bit for bit, as the column called with the namespace.
    row = ROWS[name]
    for ns, convert in ((MATH, float), (NUMPY, np.float64), (MPMATH, mpmath.mpf)) + (
        ((COMPLEX, complex),) if row.smooth else ()
    ):
        for xs in points(name, n):
            args = [convert(x) for x in xs]
            assert row.scalar_with(ns)(*args) == row.scalar(ns, *args), (name, ns)


@pytest.mark.parametrize(("name", "n"), CASES)
def test_numeric_witness_agrees(name: str, n: int) -> None:
    # The complex step for smooth rows, the real ladder for the others.
    node, slots = node_for(name, n)
    e = parse(to_text(node))
    compiled = compile_derivatives(differentiate(e, 1))
    for xs in points(name, n, 2):
        vs = [xs[k] for k in slots]
        exact = compiled.evaluate_vector(vs, "exact")
        grad, _ = numeric_derivatives(scalar_function(e), np.array(vs), complex_safe=e.smooth)
        for i in range(len(vs)):
            assert abs(grad.value[i] - float(exact[1 + i])) <= 4 * grad.error[i] + 1e-7 * (
                1 + abs(float(exact[1 + i]))), (name, xs)


@pytest.mark.parametrize(("name", "n"), CASES)
def test_text_round_trip(name: str, n: int) -> None:
    node, _ = node_for(name, n)
    text = to_text(node)
    assert parse(text).root == node
    assert to_text(parse(text)) == text


# ------------------------------------------------------------------------------ kinks

# (expression, point, gradient by torch's conventions); each is also a kink for the analysis.
KINKS = [
    ("abs(x)", {"x": 0.0}, {"x": 0.0}),
    ("relu(x)", {"x": 0.0}, {"x": 0.0}),
    ("sign(x)", {"x": 0.0}, {"x": 0.0}),
    ("floor(x)", {"x": 2.0}, {"x": 0.0}),
    ("ceil(x)", {"x": -1.0}, {"x": 0.0}),
    ("max(x, y)", {"x": 1.0, "y": 1.0}, {"x": 0.5, "y": 0.5}),
    ("min(x, y, z)", {"x": 1.0, "y": 2.0, "z": 1.0}, {"x": 0.5, "y": 0.0, "z": 0.5}),
    ("clamp(x, 0, 1)", {"x": 0.0}, {"x": 1.0}),
    ("clamp(x, 0, 1)", {"x": 1.0}, {"x": 1.0}),
    ("clamp(x, y, z)", {"x": 0.5, "y": 0.5, "z": 2.0}, {"x": 1.0, "y": 0.0, "z": 0.0}),
    ("leaky_relu(x, 0.2)", {"x": 0.0}, {"x": 0.2}),
    ("elu(x, 0.5)", {"x": 0.0}, {"x": 0.5}),
    ("cbrt(x)", {"x": 0.0}, {"x": math.nan}),  # torch has no cbrt: its composite gives 0*inf
    ("sqrt(x)", {"x": 0.0}, {"x": math.inf}),
    ("hypot(x, y)", {"x": 0.0, "y": 0.0}, {"x": math.nan, "y": math.nan}),
    ("atan2(y, x)", {"y": 0.0, "x": -1.0}, {"y": -1.0, "x": 0.0}),
]


@pytest.mark.parametrize(("text", "point", "convention"), KINKS)
def test_kinks_follow_torch_and_are_reported(text: str, point: dict, convention: dict) -> None:
    e = parse(text)
    assert analyze_point(e, point).kinks, text
    auto = to_engine(e, point).backward()
    for v, want in convention.items():
        if math.isnan(want):
            assert math.isnan(auto[v]), (text, v)
        else:
            assert auto[v] == want, (text, v, auto[v])
    [r] = run_case(Case(text, (point,)))
    assert r.status == "pass", (text, r.message)
    assert any("not differentiable" in n for n in r.notes), r.notes


@pytest.mark.parametrize(("text", "point", "convention"), KINKS)
def test_kink_conventions_are_torchs(text: str, point: dict, convention: dict) -> None:
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # noqa: N812

    fns = {
        "abs": torch.abs, "relu": torch.relu, "sign": torch.sign, "floor": torch.floor,
        "ceil": torch.ceil, "sqrt": torch.sqrt, "hypot": torch.hypot, "atan2": torch.atan2,
        "max": lambda *a: _fold(torch.maximum, a), "min": lambda *a: _fold(torch.minimum, a),
        "clamp": torch.clamp, "leaky_relu": F.leaky_relu, "elu": lambda x, a: F.elu(x, a),
        "cbrt": lambda x: torch.sign(x) * torch.abs(x) ** (1 / 3),
    }
    e = parse(text)
    name = str(e.root.value)
    tensors = {v: torch.tensor(point[v], dtype=torch.float64, requires_grad=True) for v in point}
    args = [tensors[str(a.value)] if a.kind == "var" else float(a.value) for a in e.root.args]
    out = fns[name](*args)
    grads = torch.autograd.grad(out, list(tensors.values()), allow_unused=True)
    for (v, _), g in zip(tensors.items(), grads, strict=True):
        got = 0.0 if g is None else float(g)
        want = convention[v]
        assert (math.isnan(got) and math.isnan(want)) or got == want, (text, v, got)


def _fold(fn: Any, args: Any) -> Any:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


# ---------------------------------------------------------------------------- domains

OUTSIDE = [
    ("asin(x)", {"x": 1.5}),
    ("acos(x)", {"x": -1.5}),
    ("acosh(x)", {"x": 0.5}),
    ("atanh(x)", {"x": 1.0}),
    ("log(x)", {"x": -1.0}),
    ("log(x, y)", {"x": 2.0, "y": 1.0}),
    ("log2(x)", {"x": 0.0}),
    ("log10(x)", {"x": -2.0}),
    ("log1p(x)", {"x": -1.0}),
    ("sqrt(x)", {"x": -0.5}),
    ("csc(x)", {"x": 0.0}),
    ("cot(x)", {"x": 0.0}),
    ("atan2(y, x)", {"y": 0.0, "x": 0.0}),
    ("x**y", {"x": -2.0, "y": 0.5}),
    ("x/y", {"x": 1.0, "y": 0.0}),
]


@pytest.mark.parametrize(("text", "point"), OUTSIDE)
def test_points_outside_the_domain_are_refused(text: str, point: dict) -> None:
    analysis = analyze_point(parse(text), point)
    assert analysis.error is not None and analysis.value is None, text
    [r] = run_case(Case(text, (point,)))
    assert r.status == "error" and r.message, text


def test_atan2_at_the_origin_says_why() -> None:
    analysis = analyze_point(parse("atan2(y, x)"), {"y": 0.0, "x": 0.0})
    assert analysis.error is not None and "no angle at the origin" in analysis.error


def test_domains_cover_every_row_with_a_restricted_domain() -> None:
    restricted = {n for n, r in FUNCTIONS.items() if r.domain_text}
    tested = {str(parse(t).root.value) for t, _ in OUTSIDE if parse(t).root.kind == "call"}
    assert restricted - {"tan", "sec"} <= tested  # tan and sec never hit a float pole exactly


# ---------------------------------------------------------------------------- aliases


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_aliases_parse_to_their_canonical_row(alias: str) -> None:
    target = ALIASES[alias]
    row = ROWS[target]
    n = row.arity[0]
    args = ", ".join(VARS[:n])
    canonical_text = (
        f"{VARS[0]}**{VARS[1]}" if target == "**" else f"{target}({args})"
    )
    assert parse(f"{alias}({args})") == parse(canonical_text)
    assert alias not in FUNCTIONS


def test_aliases_people_type() -> None:
    assert parse("ln(x)") == parse("log(x)")
    assert parse("arcsinh(x) + Abs(y)") == parse("asinh(x) + abs(y)")
    assert to_text(parse("power(x, 2)")) == "x**2"


def test_suggestions_never_turn_a_known_name_into_another_function() -> None:
    for name in [*SPELLINGS, *UNSUPPORTED]:
        assert suggest(name) is None, name
    for name in UNSUPPORTED:
        with pytest.raises(ExprError) as info:
            parse(f"{name}(x)")
        assert "did you mean" not in info.value.message, name


@pytest.mark.parametrize(
    ("typed", "meant"),
    [("sinn", "sin"), ("sqr", "sqrt"), ("SIN", "sin"), ("Log", "log"), ("expp", "exp"),
     ("tanhh", "tanh"), ("sigmod", "sigmoid"), ("cosine", None),
     ("acot", None), ("foo", None)],
)
def test_suggestions_are_near_misses(typed: str, meant: str | None) -> None:
    assert suggest(typed) == meant


def test_sympy_is_never_fed_user_text() -> None:
    # Every head the table names is a class of our namespace, never a string to sympify.
    assert all(isinstance(getattr(NAMESPACE, h), type) for r in ROWS.values() for h in r.heads)
    assert isinstance(ROWS["sin"].sympy(NAMESPACE, sympy.Symbol("x")), sympy.sin)
