"""Rendered text at a pinned width: the grad table, the trace tree, batch rows, the V-plot."""

from __future__ import annotations

import io
import math
import os
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import RenderableType

from gradcheck_cli.checks import CaseResult
from gradcheck_cli.render import (
    BatchTable,
    case_details,
    grad_view,
    make_console,
    status_text,
    summary_line,
    trace_tree,
    v_plot,
)
from gradcheck_cli.report import Tally
from gradcheck_cli.results import CallableResult, Outcome
from gradcheck_cli.results import error_row as error_result
from gradcheck_cli.trace import StepScan, TraceGraph, TraceNode

sys.path.insert(0, str(Path(__file__).parent))
from test_report import make_result  # noqa: E402

WIDTH = 100


def render(renderable: RenderableType, color: bool = False, width: int = WIDTH) -> str:
    """Render at the pinned width; trailing blanks (Rich pads titles) are not part of the text."""
    buffer = io.StringIO()
    console = make_console(color, file=buffer)
    console.width = width
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


GRAD_GOLDEN = """\
x*x + 2*x + 1  at x=3  =  16

gradient
d/d  autograd  SymPy formula  SymPy  numeric   ± est.  auto−sym  num−sym
────────────────────────────────────────────────────────────────────────
x           8  2*x + 2            8        8  1.0e-12         0        0

✓ PASS  autograd, SymPy and finite differences agree  (max error: autograd 0, numeric 1.2e-11)"""

GRAD_FAIL_GOLDEN = """\
x*x + 2*x + 1  at x=3  =  16

gradient
d/d  autograd  SymPy formula  SymPy  numeric   ± est.  auto−sym  num−sym
────────────────────────────────────────────────────────────────────────
x           9  2*x + 2            8        8  1.0e-12   1.0e+00        0

Hessian
d²/d·d·  autograd  SymPy formula  SymPy  numeric  auto−sym  num−sym
───────────────────────────────────────────────────────────────────
x,x             2  2                  2        2         0        0

note: not differentiable here: a made-up note
✗ FAIL  autograd disagrees with SymPy at x  (max error: autograd 1.0e+00, numeric 1.2e-11)"""

LONG_FORMULA_GOLDEN = """\
log(1 + exp(a*b))  at a=0.7, b=-1.2  =  0.3588698997

gradient
d/d       autograd          SymPy        numeric  auto−sym  num−sym
───────────────────────────────────────────────────────────────────
a    -0.3618417408  -0.3618417408  -0.3618417408         0        0
b     0.2110743488   0.2110743488   0.2110743488   2.8e-17        0
SymPy formulas
d/da = b*exp(a*b)/(exp(a*b) + 1)
d/db = a*exp(a*b)/(exp(a*b) + 1)

✓ PASS  autograd, SymPy and finite differences agree"""


def test_grad_view_golden() -> None:
    assert render(grad_view(make_result())) == GRAD_GOLDEN


def test_grad_view_with_hessian_notes_and_failure_golden() -> None:
    hessian = {src: {"x": {"x": 2.0}} for src in ("autograd", "symbolic", "numeric")}
    result = make_result(
        "fail", auto=9.0, hessian=hessian, message="autograd disagrees with SymPy at x"
    )
    result.hessian_derivative = {"x": {"x": "2"}}
    result.notes.append("not differentiable here: a made-up note")
    assert render(grad_view(result)) == GRAD_FAIL_GOLDEN


def test_formulas_move_under_the_table_when_it_would_not_fit_golden() -> None:
    a, b = "-0.3618417408", "0.2110743488"
    result = CaseResult(
        name="logistic",
        expr="log(1 + exp(a*b))",
        point={"a": 0.7, "b": -1.2},
        status="pass",
        value=0.3588698997,
        derivative={"a": "b*exp(a*b)/(exp(a*b) + 1)", "b": "a*exp(a*b)/(exp(a*b) + 1)"},
        gradient={
            "autograd": {"a": float(a), "b": float(b) + 2.8e-17},
            "symbolic": {"a": float(a), "b": float(b)},
            "numeric": {"a": float(a), "b": float(b)},
        },
    )
    assert render(grad_view(result), width=80) == LONG_FORMULA_GOLDEN
    wide = render(grad_view(result), width=100).splitlines()
    assert wide[3].split() == ["d/d", "autograd", "SymPy", "formula", "SymPy", "numeric"] + [
        "auto−sym",
        "num−sym",
    ]


def test_colour_only_when_asked_and_words_carry_the_verdict(monkeypatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # what a real terminal would report
    monkeypatch.delenv("NO_COLOR", raising=False)
    buffer = io.StringIO()
    console = make_console(True, file=buffer)
    console.print(status_text("fail"))
    assert "\x1b[" in buffer.getvalue() and "✗ FAIL" in buffer.getvalue()
    assert "\x1b[" not in render(status_text("fail"), color=False)
    assert render(status_text("error")) == "! ERROR"


def graph_of_quadratic() -> TraceGraph:
    """x*x + 2*x + 1 at x=3 as the lowering produces it: each subexpression once."""
    nodes = (
        TraceNode(0, "x", "var", None, 3.0, 8.0, (), True),
        TraceNode(1, "x*x", "mul", "MulBackward0", 9.0, 1.0, (0, 0), False),
        TraceNode(2, "2", "const", None, 2.0, None, (), False),
        TraceNode(3, "2*x", "mul", "MulBackward0", 6.0, 1.0, (2, 0), False),
        TraceNode(4, "x*x + 2*x", "add", "AddBackward0", 15.0, 1.0, (1, 3), False),
        TraceNode(5, "1", "const", None, 1.0, None, (), False),
        TraceNode(6, "x*x + 2*x + 1", "add", "AddBackward0", 16.0, 1.0, (4, 5), False),
    )
    return TraceGraph("x*x + 2*x + 1", {"x": 3.0}, nodes)


TREE_GOLDEN = """\
#6 x*x + 2*x + 1 = 16   AddBackward0 · grad 1
├── #4 x*x + 2*x = 15   AddBackward0 · grad 1
│   ├── #1 x*x = 9   MulBackward0 · grad 1
│   │   ├── #0 x = 3   leaf · grad 8
│   │   └── #0 x  ↑ see #0 above
│   └── #3 2*x = 6   MulBackward0 · grad 1
│       ├── #2 2   constant
│       └── #0 x  ↑ see #0 above
└── #5 1   constant"""


def test_trace_tree_golden() -> None:
    assert render(trace_tree(graph_of_quadratic())) == TREE_GOLDEN


# Golden text at the widths people meet: 60 (a split pane), 80 (every pipe and CI log), 120.
# The files are golden/<view>-<width>.txt; GRADCHECK_UPDATE_GOLDEN=1 rewrites them from the
# current code (then read the diff before committing it).
WIDTHS = (60, 80, 120)
GOLDEN = Path(__file__).parent / "golden"


def assert_golden(view: str, width: int, text: str) -> None:
    """Compare with golden/<view>-<width>.txt (or rewrite it, when asked to)."""
    path = GOLDEN / f"{view}-{width}.txt"
    if os.environ.get("GRADCHECK_UPDATE_GOLDEN"):
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8"), f"{path} differs"


def two_variable_result() -> CaseResult:
    """sin(x)*exp(-y**2) at x=1, y=0.5 with the Hessian: long numbers, long formulas."""
    g = {"x": 0.4207878589, "y": -0.6553382619}
    xx, xy, yy = -0.6553382619, -0.4207878589, -0.6553382619
    h = {"x": {"x": xx, "y": xy}, "y": {"x": xy, "y": yy}}
    off = {"x": {"x": xx + 1.6e-12, "y": xy + 2.7e-12}, "y": {"x": xy, "y": yy + 7e-12}}
    return CaseResult(
        name="sin(x)*exp(-y**2)",
        expr="sin(x)*exp(-y**2)",
        point={"x": 1.0, "y": 0.5},
        status="pass",
        value=0.6553382619,
        derivative={"x": "exp(-y**2)*cos(x)", "y": "-2*y*exp(-y**2)*sin(x)"},
        gradient={"autograd": dict(g), "symbolic": dict(g), "numeric": dict(g)},
        error={
            "autograd_vs_symbolic": 0.0,
            "numeric_vs_symbolic": 0.0,
            "hessian_autograd_vs_symbolic": 0.0,
            "hessian_numeric_vs_symbolic": 7e-12,
        },
        hessian={"autograd": h, "symbolic": h, "numeric": off},
        numeric_error={"x": 4.3e-16, "y": 6.9e-16},
        hessian_derivative={
            "x": {"x": "-exp(-y**2)*sin(x)", "y": "-2*y*exp(-y**2)*cos(x)"},
            "y": {"y": "4*y**2*exp(-y**2)*sin(x) - 2*exp(-y**2)*sin(x)"},
        },
    )


def batch_text(width: int) -> str:
    """Two files: a pass, a failure, a long name with a long point, and an error row."""
    buffer = io.StringIO()
    console = make_console(False, file=buffer)
    console.width = width
    table = BatchTable(console)
    wrong = make_result("fail", name="wrong", auto=9.0, message="autograd disagrees with SymPy")
    long = make_result(name="logistic loss of a linear model, second order")
    long.point = {"weight": -0.3618417408, "bias": 0.2110743488, "x": 3.0}
    long.value = -1234567.891
    table.add(Outcome("seed.toml", [make_result(), wrong, long], 0.1))
    message = "other.yaml: case 1 (bad key): unknown key 'expct' (did you mean 'expect'?)"
    bad = error_result("bad key", "x", message, "other.yaml: case 1 (bad key)")
    table.add(Outcome("other.yaml", [bad], 0.0))
    table.finish()
    console.print(summary_line(table.tally, 0.25, "shard 1/2"))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def softplus_graph() -> TraceGraph:
    """log(1 + exp(alpha*beta)) at alpha=0.7, beta=-1.2, the culprit marked."""
    blame = "Softplus.backward at examples/ci/mathops/ops.py:32: off by a factor of 2"
    nodes = (
        TraceNode(0, "alpha", "var", None, 0.7, -0.3618417408, (), True),
        TraceNode(1, "beta", "var", None, -1.2, 0.2110743488, (), True),
        TraceNode(2, "alpha*beta", "mul", "MulBackward0", -0.84, 0.3015347840, (0, 1), False),
        TraceNode(3, "exp(alpha*beta)", "exp", "ExpBackward0", 0.4317105234, 0.698467, (2,), False),
        TraceNode(4, "1", "const", None, 1.0, None, (), False),
        TraceNode(5, "1 + exp(alpha*beta)", "add", "AddBackward0", 1.43171, 0.69847, (4, 3), False),
        TraceNode(
            6, "log(1 + exp(alpha*beta))", "log", "LogBackward0", 0.35887, 1.0, (5,), False, blame
        ),
    )
    return TraceGraph("log(1 + exp(alpha*beta))", {"alpha": 0.7, "beta": -1.2}, nodes, blame)


@pytest.mark.parametrize("width", WIDTHS)
def test_grad_view_golden_at_three_widths(width: int) -> None:
    assert_golden("grad", width, render(grad_view(two_variable_result()), width=width))


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_table_golden_at_three_widths(width: int) -> None:
    assert_golden("batch", width, batch_text(width))


@pytest.mark.parametrize("width", WIDTHS)
def test_trace_tree_golden_at_three_widths(width: int) -> None:
    assert_golden("tree", width, render(trace_tree(softplus_graph()), width=width))


@pytest.mark.parametrize("width", WIDTHS)
def test_no_number_is_ever_cut_and_no_line_is_too_long(width: int) -> None:
    texts = [
        batch_text(width),
        render(grad_view(two_variable_result()), width=width),
        render(trace_tree(softplus_graph()), width=width),
    ]
    numbers = ["0.4207878589", "-0.6553382619", "-1234567.891", "1.2e-11", "7.0e-12"]
    for text in texts:
        assert max(cell_len(line) for line in text.splitlines()) <= width
        assert "…" not in text
    joined = "\n".join(texts[:2])
    for number in numbers:
        assert number in joined, number


def test_batch_table_counts_every_result() -> None:
    buffer = io.StringIO()
    table = BatchTable(make_console(False, file=buffer))
    table.add(Outcome("seed.toml", [make_result(), make_result("fail", auto=9.0)], 0.1))
    table.add(Outcome("other.yaml", [make_result("error")], 0.0))
    assert table.tally == Tally(total=3, passed=1, failed=1, errors=1)
    assert buffer.getvalue().count("status") == 1  # the last file waits for finish()
    table.finish()
    assert buffer.getvalue().count("status") == 2


def test_summary_line_words() -> None:
    assert render(summary_line(Tally(3, 3, 0, 0), 1.5)) == "3 passed in 1.50s"
    assert render(summary_line(Tally(4, 1, 0, 3), 0.0)) == "1 passed, 3 errors in 0.00s"


def test_v_plot_marks_the_chosen_step_under_its_column() -> None:
    steps = tuple(10.0 ** (k / 2) for k in range(-28, -1))
    # The classic V: round-off eps/h on the left, truncation h**2 on the right.
    errors = tuple(2.2e-16 / h + h * h for h in steps)
    chosen = steps[17]
    scan = StepScan("x", {"x": 1.0}, steps, errors, chosen)
    lines = render(v_plot(scan)).splitlines()
    assert lines[0] == "finite-difference error |numeric − SymPy| for d/dx at x=1"
    plot = [line for line in lines if "┤" in line]
    # One row per decade from the largest error (1e-1) down to the smallest (1e-11).
    assert [line.split()[0] for line in plot] == [f"1e{k:+03d}" for k in range(-1, -12, -1)]
    dots = sum(line.count("●") for line in plot)
    assert dots == len(steps)
    # Each step owns two characters after the axis; the caret sits under the chosen one.
    axis = plot[0].index("┤")
    caret_line = next(line for line in lines if line.strip() == "▲")
    assert caret_line.index("▲") == axis + 2 + 2 * 17
    # The bottom row of the V holds the column of the minimum error.
    bottom = next(line for line in reversed(plot) if "●" in line)
    best = min(range(len(errors)), key=errors.__getitem__)
    assert bottom[axis + 2 + 2 * best] == "●"
    assert "the checker's step h = 3.2e-06" in "\n".join(lines)


def test_v_plot_survives_exact_zeros_and_nans() -> None:
    steps = (1e-6, 1e-4, 1e-2)
    scan = StepScan("y", {"y": 2.0}, steps, (0.0, math.nan, 1e-3), 1e-4)
    text = render(v_plot(scan))
    assert "○" in text and text.count("●") == 1
    assert "○ exactly 0" in text


def mismatch_result() -> CallableResult:
    """A callable whose backward is off by a factor of 2: the worst elements as data."""
    from engine.autograd.gradcheck import JacobianMismatch, WorstElement

    worst = (
        WorstElement("(), (0,)", 0.2817862311, 0.1408931156, 0.1408931156, 3.15e-12),
        WorstElement("(), (5,)", 0.2768860512, 0.1384430256, 0.1384430256, 3.75e-12),
        WorstElement("(), (3,)", -0.1502007023, -0.07510035115, 0.07510035115, 3.78e-12),
        WorstElement("(), (2,)", -0.01424714, -0.0071235702, 0.0071235702, 3.79e-12),
    )
    mismatch = JacobianMismatch(0, 0, 6, 6, False, worst, 0.2817862311,
                                hint="the analytic gradient is 2 times the numeric one")
    lines = mismatch.lines()
    return CallableResult(
        name="log_cosh_loss", expr="mathops.ops:log_cosh_loss", point={}, status="fail",
        message="gradcheck.toml: case 5 (log_cosh_loss): blame: LogCosh.backward at "
                "mathops/ops.py:32: off by a factor of 2",
        notes=[f"gradcheck: {lines[0]}", *lines[1:]],
        inputs=["prediction: float64[6] in [-1, 1)", "target: float64[6] in [-1, 1) (no grad)"],
        shapes="prediction[6] target[6]", mismatch=mismatch,
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_blame_jacobian_table_golden_at_three_widths(width: int) -> None:
    text = render(case_details(mismatch_result()), width=width)
    assert_golden("mismatch", width, text)
    assert max(map(cell_len, text.splitlines())) <= width
    for w in mismatch_result().mismatch.worst:  # every number whole, on one line
        assert f"{w.analytic:.8g}" in text and f"{w.estimate:.3g}" in text


def test_the_reports_keep_the_worst_elements_as_text() -> None:
    from gradcheck_cli.report import detail_lines

    lines = detail_lines(mismatch_result())
    assert any(line.lstrip().startswith("(), (0,)") for line in lines)
