"""The expression parser: grammar, canonical text, errors with columns, hostile input."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gradcheck_cli.expr import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Expr,
    ExprError,
    Node,
    parse,
    postorder,
    to_text,
)

# ---------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("text", "canonical", "variables"),
    [
        ("x**2 + 2*x + 1", "x**2 + 2*x + 1", ("x",)),
        ("x^2", "x**2", ("x",)),
        ("x ^ y ^ z", "x**y**z", ("x", "y", "z")),
        ("(x**y)**z", "(x**y)**z", ("x", "y", "z")),
        ("sin(x)*exp(-y**2)", "sin(x)*exp(-y**2)", ("x", "y")),
        ("log(1 + exp(a*b))", "log(1 + exp(a*b))", ("a", "b")),
        ("log(x, 2)", "log(x, 2)", ("x",)),
        ("-x**2", "-x**2", ("x",)),
        ("(-x)**2", "(-x)**2", ("x",)),
        ("a-(b-c)", "a - (b - c)", ("a", "b", "c")),
        ("a - b - c", "a - b - c", ("a", "b", "c")),
        ("a/(b*c)", "a/(b*c)", ("a", "b", "c")),
        ("2**-x", "2**(-x)", ("x",)),
        ("a*-b", "a*(-b)", ("a", "b")),
        ("+x", "x", ("x",)),
        ("--x", "--x", ("x",)),
        ("1e-3*x + 2.5", "0.001*x + 2.5", ("x",)),
        (".5 + 5.", "0.5 + 5.0", ()),
        ("e*pi*E", "E*pi*E", ()),
        ("y + x + y", "y + x + y", ("y", "x")),
        ("max(x, y) - min(y, x)", "max(x, y) - min(y, x)", ("x", "y")),
        ("x\t+\ny", "x + y", ("x", "y")),
        ("lambda*x", "lambda*x", ("lambda", "x")),
        ("(((x)))", "x", ("x",)),
    ],
)
def test_parse_and_canonical_text(text: str, canonical: str, variables: tuple[str, ...]) -> None:
    e = parse(text)
    assert to_text(e) == canonical
    assert e.variables == variables
    assert e.text == text
    assert parse(canonical) == e


def test_sympy_function_names_are_plain_variables() -> None:
    e = parse("gamma + beta*E1 - I*S/N + Q")
    assert e.variables == ("gamma", "beta", "E1", "I", "S", "N", "Q")
    assert all(n.kind in ("var", "+", "-", "*", "/") for n in postorder(e.root))


def test_constants() -> None:
    assert parse("e").root == Node("const", "E")
    assert parse("E").root == Node("const", "E")
    assert parse("pi").root == Node("const", "pi")
    assert set(CONSTANTS) == {"pi", "E", "e"}


def test_numbers_keep_int_and_float_apart() -> None:
    assert parse("3").root.value == 3 and isinstance(parse("3").root.value, int)
    assert parse("3.0").root.value == 3.0 and isinstance(parse("3.0").root.value, float)
    assert parse("3") != parse("3.0")


def test_equality_and_hash_ignore_columns() -> None:
    a, b = parse("sin(x) + 1"), parse("  sin( x )+1")
    assert a == b and hash(a) == hash(b)
    assert a.root.column != b.root.column
    assert parse("x + y") != parse("y + x")


def test_contract_functions_are_rows() -> None:
    # CONTRACT §2's list; tests/gradcheck_cli/test_table.py holds every row to every column.
    contract = (
        "sin cos tan asin acos atan sinh cosh tanh exp log log1p sqrt abs sigmoid relu "
        "softplus min max"
    ).split()
    assert set(contract) <= set(FUNCTIONS)
    for name in contract:
        text = f"{name}({', '.join(['x'] * FUNCTIONS[name].arity[0])})"
        assert parse(text).root.kind == "call"


def test_long_plain_sum_is_not_a_nesting_problem() -> None:
    text = " + ".join(f"x{i}" for i in range(500))
    e = parse(text)
    assert len(e.variables) == 500
    assert parse(to_text(e)) == e


# ----------------------------------------------------------------------------- errors

ERRORS = [
    ("", "empty expression", 1),
    ("   ", "empty expression", 1),
    ("2x", "missing operator: did you mean 2*x?", 2),
    ("x y", "missing operator: did you mean x*y?", 3),
    ("3 sin(x)", "missing operator: did you mean 3*sin?", 3),
    ("(x+1)(x-1)", "missing operator: did you mean (x+1)*(x-1)?", 6),
    ("2(x)", "missing operator: did you mean 2*(x)?", 2),
    ("abs(x)abs(y)", "missing operator: did you mean abs(x)*abs(y)?", 7),
    ("sinn(x)", "unknown function 'sinn': did you mean sin?", 1),
    ("sqr(x)", "unknown function 'sqr': did you mean sqrt?", 1),
    ("x(y+1)", "unknown function 'x' (to multiply, write x*(...))", 1),
    ("pi(2)", "'pi' is a constant, not a function: did you mean pi*(...)?", 1),
    ("sin x", "function 'sin' needs parentheses, e.g. sin(x)", 1),
    ("1 + exp", "function 'exp' needs parentheses, e.g. exp(x)", 5),
    ("sin()", "sin() takes 1 argument, got 0", 1),
    ("log(x, 2, 3)", "log() takes 1 or 2 arguments, got 3", 1),
    ("max(x)", "max() takes at least 2 arguments, got 1", 1),
    ("1 + clamp(x, y)", "clamp() takes 3 arguments, got 2", 5),
    ("elu(x, y)", "elu()'s argument 2 must be a number", 8),
    ("acot(x)", "unknown function 'acot': write atan(1/x)", 1),
    ("x²y", "missing operator: did you mean x²*y?", 3),
    ("exp(x,)", "missing argument after ','", 6),
    ("x, y", "unexpected ',' (commas only separate function arguments)", 2),
    ("()", "empty parentheses", 1),
    ("x $ y", "unexpected character '$'", 3),
    ("x ? y", "unexpected character '?'", 3),
    ("x!", "unexpected character '!'", 2),
    ("x # note", "unexpected character '#'", 3),
    ("`x`", "unexpected character '`'", 1),
    ("'x'", "quotes are not allowed in an expression", 1),
    ("x % 2", "unsupported operator '%'", 3),
    ("x // 2", "unsupported operator '//'", 3),
    ("x == y", "unsupported operator '=='", 3),
    ("x = 1", "unsupported operator '='", 3),
    ("x.real", "unsupported operator '.'", 2),
    ("x[0]", "unsupported operator '['", 2),
    ("x @ y", "unsupported operator '@'", 3),
    ("x; y", "unsupported operator ';'", 2),
    ("lambda: 1", "unsupported operator ':'", 7),
    ("x if y else z", "'if' is not supported: use + - * / ** ^ and function calls", 3),
    ("x and y", "'and' is not supported: use + - * / ** ^ and function calls", 3),
    ("not x", "'not' is not supported: use + - * / ** ^ and function calls", 1),
    ("x + ", "expression ends unexpectedly after '+'", 4),
    ("x ** ", "expression ends unexpectedly after '**'", 5),
    ("* x", "expression starts with '*'", 1),
    ("x +* y", "unexpected '*'", 4),
    ("(x", "unclosed '('", 1),
    ("sin(x", "unclosed '('", 4),
    ("x)", "unmatched ')'", 2),
    ("exp(x))", "unmatched ')'", 7),
    ("1.2.3", "malformed number '1.2.3'", 1),
    ("0x10", "unsupported number '0x10' (write decimal numbers)", 1),
    ("0b101", "unsupported number '0b101' (write decimal numbers)", 1),
    ("1_000", "unsupported number '1_000' (write decimal numbers)", 1),
    ("1j", "complex numbers are not supported: '1j'", 1),
    ("1e999", "number too large: '1e999'", 1),
    ("9**9**9**9", "exponent 9**9 is too large (limit 10000 in magnitude)", 5),
    ("x**(10**10)", "exponent 10**10 is too large (limit 10000 in magnitude)", 2),
    ("x^(10^10)", "exponent 10**10 is too large (limit 10000 in magnitude)", 2),
    ("x**-100000", "exponent -100000 is too large (limit 10000 in magnitude)", 2),
    ("2**(2**17)", "exponent 2**17 is too large (limit 10000 in magnitude)", 2),
    ("x**exp(100)", "exponent exp(100) is too large (limit 10000 in magnitude)", 2),
    (
        "(2**1000)**1000",
        "constant too large to compute exactly (about 2000000 bits, limit 65536)",
        10,
    ),
    (
        "(1+2**-1000)**1000",
        "constant too large to compute exactly (about 2001000 bits, limit 65536)",
        13,
    ),
    ("__import__('os')", "quotes are not allowed in an expression", 12),
    ("__import__(os)", "unknown function '__import__' (to multiply, write __import__*(...))", 1),
    ("exec(x)", "unknown function 'exec' (to multiply, write exec*(...))", 1),
    ("expp(x)", "unknown function 'expp': did you mean exp?", 1),
    ("sigmoind(x)", "unknown function 'sigmoind': did you mean sigmoid?", 1),
]


@pytest.mark.parametrize(("text", "message", "column"), ERRORS)
def test_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as info:
        parse(text)
    err = info.value
    assert err.message == message
    assert err.column == column
    assert str(err) == f"{message} (column {column})"
    assert "\n" not in str(err)
    assert err.text == text
    assert isinstance(err, ValueError)


def test_caret_points_at_the_column() -> None:
    with pytest.raises(ExprError) as info:
        parse("1 + 2x")
    line, caret = info.value.caret().split("\n")
    assert line == "1 + 2x"
    assert caret == "     ^"


def test_caret_on_a_long_line_shows_a_window() -> None:
    text = "x + " * 100 + "$"
    with pytest.raises(ExprError) as info:
        parse(text)
    line, caret = info.value.caret().split("\n")
    assert line.startswith("...") and len(line) < 130
    assert line[caret.index("^")] == "$"


def test_length_limit() -> None:
    with pytest.raises(ExprError, match=r"expression too long \(100001 characters"):
        parse("x" * (MAX_LENGTH + 1))


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
        "sin(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
        "-" * 5000 + "x",
        "x**" * 5000 + "x",
        "+".join(["x"] * 30000),
        "(" * 30000 + "x",
    ],
    ids=["parens", "calls", "negations", "power-tower", "long-sum", "unclosed"],
)
def test_deep_or_huge_input_is_refused_quickly(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ExprError, match="too deeply nested|too complex|unclosed"):
        parse(text)
    assert time.perf_counter() - start < 10.0  # a hang guard, not a benchmark (shared CI)


def test_maximum_nesting_is_accepted_and_round_trips() -> None:
    text = "sin(" * (MAX_DEPTH - 2) + "x" + ")" * (MAX_DEPTH - 2)
    e = parse(text)
    assert parse(to_text(e)) == e


def test_hostile_input_runs_nothing(tmp_path) -> None:  # noqa: ANN001
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('os').system('touch {marker}')",
        f"eval(\"open('{marker}', 'w')\")",
        "().__class__.__bases__[0].__subclasses__()",
        f"exec(compile('open({marker!r}, \"w\")', 'x', 'exec'))",
    ]
    for text in payloads:
        with pytest.raises(ExprError):
            parse(text)
    assert not marker.exists()


def test_expr_module_imports_neither_sympy_nor_engine() -> None:
    code = (
        "import sys, gradcheck_cli.expr as m; m.parse('sin(x)**2'); "
        "print(sorted(k for k in ('sympy', 'engine', 'numpy', 'torch') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_repr_and_expr_helpers() -> None:
    e = parse("abs(x) + y")
    assert repr(e.root) == "Node('abs(x) + y')"
    assert not e.smooth and parse("sin(x)").smooth
    assert isinstance(e, Expr)
    assert [n.kind for n in postorder(parse("x*(x+1)").root)] == ["var", "var", "num", "+", "*"]
