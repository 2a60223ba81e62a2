"""Cases in, verdicts out: autograd against exact SymPy derivatives, finite differences third.

Pure computation (no I/O, no Rich).  An expression is parsed, differentiated and compiled
once per case; every point then costs one exact evaluation, one engine build and one numeric
estimate.  User errors never raise: they become ``status="error"`` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import mpmath
import numpy as np

from gradcheck_cli.expr import CONSTANT_VALUES, Expr, ExprError, Node, parse, postorder, row_of
from gradcheck_cli.lower import to_engine
from gradcheck_cli.results import CaseResult, error_row
from gradcheck_cli.scalars import COMPLEX, MATH
from gradcheck_cli.schema import Case
from gradcheck_cli.symbolic import (
    Compiled,
    Derivatives,
    analyze_point,
    compile_derivatives,
    differentiate,
    one_sided,
)

__all__ = [
    "DEFAULT_TOLERANCES",
    "Case",
    "CaseResult",
    "Prepared",
    "numeric_derivatives",
    "prepare",
    "run_case",
    "scalar_function",
    "show_formulas",
]

# (atol, rtol) per engine dtype: torch.testing.assert_close's defaults.  Lower-precision dtypes
# also get a measured rounding slack per point (see _rounding_slack).
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1e-5, 1.3e-6),
}
_FLOAT_MAX = {
    "float64": float(np.finfo(np.float64).max),
    "float32": float(np.finfo(np.float32).max),
}


# ------------------------------------------------------------------------------ prepare


@dataclass(frozen=True)
class Prepared:
    """Everything computed once per expression and order, reused across points."""

    expr: Expr
    derivatives: Derivatives
    compiled: Compiled
    function: Callable[[np.ndarray], Any]
    smooth: bool  # no kinks anywhere in the expression: the complex step is valid


@lru_cache(maxsize=256)
def prepare(text: str, order: int = 1) -> Prepared:
    """Parse, differentiate, compile: raises ExprError for bad text."""
    expr = parse(text)
    derivs = differentiate(expr, order)
    compiled = compile_derivatives(derivs)
    return Prepared(
        expr=expr,
        derivatives=derivs,
        compiled=compiled,
        function=scalar_function(expr),
        smooth=expr.smooth,
    )


# ---------------------------------------------------------------------- numeric witness


def scalar_function(expr: Expr) -> Callable[[np.ndarray], Any]:
    """A float64 evaluator f(x) of the expression, x in variable order.

    Real input is computed with math, complex input (the complex step) with complex
    numbers: the table's scalar column over a flat program of our AST; no source is
    generated.
    """
    var_index = {n: i for i, n in enumerate(expr.variables)}
    nodes = list(postorder(expr.root))
    programs: dict[Any, list[tuple[int, Any, Any, Any]]] = {}

    def program(ns: Any) -> list[tuple[int, Any, Any, Any]]:
        # (kind, step, first, second), one program per namespace with each row's function
        # bound to it: the finite-difference witness runs this n + 1 times or more (4,000
        # times for 2,000 variables), so leaves are read inline, and one- and two-argument
        # steps are spelled out instead of built as *args.
        if ns not in programs:
            steps: list[tuple[int, Any, Any, Any]] = []
            slot: dict[int, int] = {}
            for node in nodes:
                slot[id(node)] = len(steps)
                args = [slot[id(a)] for a in node.args]
                if node.kind == "var":
                    steps.append((_READ, None, var_index[str(node.value)], 0))
                elif not args:
                    steps.append((_CONSTANT, None, _constant(node), 0))
                elif len(args) <= 2:
                    steps.append((len(args), row_of(node).scalar_with(ns), args[0], args[-1]))
                else:
                    steps.append((_MANY, row_of(node).scalar_with(ns), tuple(args), 0))
            programs[ns] = steps
        return programs[ns]

    def f(x: np.ndarray) -> Any:
        arr = np.asarray(x).reshape(-1)
        if np.iscomplexobj(arr):
            ns: Any = COMPLEX
            xs: list[Any] = [complex(v) for v in arr]
        else:
            ns, xs = MATH, [float(v) for v in arr]
        vals: list[Any] = []
        push = vals.append
        for kind, step, a, b in program(ns):
            if kind == 2:
                push(step(vals[a], vals[b]))
            elif kind == 1:
                push(step(vals[a]))
            elif kind == _READ:
                push(xs[a])
            elif kind == _CONSTANT:
                push(a)
            else:
                push(step(*[vals[k] for k in a]))
        return vals[-1]

    return f


_READ, _CONSTANT, _MANY = 0, -1, 3  # the other kinds of step: 1 and 2 arguments


def _constant(node: Node) -> float:
    if node.kind == "num":
        return float(node.value)  # type: ignore[arg-type]
    return CONSTANT_VALUES[str(node.value)]


def numeric_derivatives(
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    *,
    complex_safe: bool,
    order: int = 1,
    gradient_of: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[Any, Any]:
    """The one door to finite differences: (gradient result, Hessian result or None).

    With ``gradient_of`` (the exact gradient formulas in float64), the Hessian is the
    finite-difference Jacobian of that gradient, as torch's gradgradcheck differentiates the
    analytic gradient numerically: n extrapolated first differences of an O(n) tape, so its
    cost grows with the Hessian's entries, where second differences of f cost n**2 * |f|.
    Results have ``value``, ``error``, ``method`` (engine.autograd.numeric.NumericResult).
    """
    from engine.autograd import numeric

    with np.errstate(all="ignore"):
        try:
            grad = numeric.gradient(f, x, complex_safe=complex_safe)
        except (ArithmeticError, ValueError, TypeError):
            # Overflow or a domain edge on the complex path: the real ladder copes with NaN.
            grad = numeric.gradient(f, x, complex_safe=False)
        if order != 2:
            return grad, None
        if gradient_of is None:
            return grad, numeric.hessian(f, x)
        jac = numeric.jacobian(gradient_of, x, complex_safe=False)
        value = (jac.value + jac.value.T) / 2
        error = np.maximum(jac.error, jac.error.T) + np.abs(jac.value - jac.value.T) / 2
        hess = dataclasses.replace(jac, value=value, error=error)
    return grad, hess


def _gradient_function(compiled: Compiled) -> Callable[[np.ndarray], np.ndarray]:
    """The exact gradient formulas evaluated in float64, as a function of the point."""

    def g(x: np.ndarray) -> np.ndarray:
        out = compiled.evaluate_vector(list(np.ravel(x)), "float64")
        return np.array([float(v) for v in out[1:]])

    return g


# --------------------------------------------------------------------------------- run


def run_case(case: Case) -> list[CaseResult]:
    """Check a case at each of its points; user errors become status "error", never raise."""
    points = case.points or ({},)
    name = case.name or case.expr
    if case.dtype not in DEFAULT_TOLERANCES:
        return [
            _error(case, name, p, f"dtype must be float32 or float64, not {case.dtype!r}")
            for p in points
        ]
    if case.order not in (1, 2):
        return [_error(case, name, p, f"order must be 1 or 2, not {case.order!r}") for p in points]
    try:
        prep = prepare(case.expr, case.order)
        prep.derivatives.formulas(simplify=False)  # the report's `derivative` (cached)
    except ExprError as exc:
        return [_error(case, name, p, f"cannot parse expression: {exc}") for p in points]
    except RecursionError:
        return [
            _error(case, name, p, "expression too complex for exact differentiation")
            for p in points
        ]
    except ValueError as exc:  # SymPy left a derivative unevaluated: no exact reference
        return [_error(case, name, p, f"no exact derivative: {exc}") for p in points]
    results = [_run_point(case, name, prep, p) for p in points]
    if case.location:
        for r in results:
            if r.message and not r.message.startswith(case.location):
                r.message = f"{case.location}: {r.message}"
    return results


def show_formulas(result: CaseResult, order: int) -> None:
    """Fill a result's formulas for people: simplified where short, the Hessian's too."""
    if not result.derivative:
        return
    derivs = prepare(result.expr, order).derivatives
    result.derivative = dict(derivs.formulas())
    result.hessian_derivative = derivs.hessian_formulas()


def _error(case: Case, name: str, point: dict[str, float], message: str) -> CaseResult:
    return error_row(name, case.expr, message, case.location, point=point, dtype=case.dtype)


def _tolerances(case: Case) -> tuple[float, float]:
    atol, rtol = DEFAULT_TOLERANCES[case.dtype]
    return (
        atol if case.atol is None else float(case.atol),
        rtol if case.rtol is None else float(case.rtol),
    )


def _point_problem(prep: Prepared, case: Case, point: dict[str, Any]) -> str | None:
    names = prep.expr.variables
    missing = [v for v in names if v not in point]
    if missing:
        return (
            f"no value for {', '.join(missing)} "
            f"(the expression uses {', '.join(names) or 'no variables'})"
        )
    extra = [k for k in point if k not in names]
    if extra:
        return (
            f"unknown variable {', '.join(extra)} in the point "
            f"(the expression uses {', '.join(names) or 'no variables'})"
        )
    for k, v in point.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"{k} = {v!r} is not a number"
        if not math.isfinite(v):
            return f"{k} = {v} is not a finite number"
    if case.expect is not None:
        unknown = [k for k in case.expect if k not in names]
        if unknown:
            return (
                f"expect names unknown variable {', '.join(unknown)} "
                f"(the expression uses {', '.join(names) or 'no variables'})"
            )
        for k, v in case.expect.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return f"expect {k} = {v!r} is not a number"
    return None


def _f(v: Any) -> float:
    """A float from an mpf/mpc/NumPy scalar (NaN for a complex value)."""
    if isinstance(v, mpmath.mpc):
        return float(v.real) if v.imag == 0 else math.nan
    return float(v)


def _close(a: float, b: float, atol: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _diff(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b)


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def _run_point(case: Case, name: str, prep: Prepared, point: dict[str, Any]) -> CaseResult:
    result = _error(case, name, point, "")
    # The contract's `derivative` field: SymPy's gradient, printed but not simplified (the
    # terminal view asks for the simplified formulas, and the Hessian's, in show_formulas).
    result.derivative = dict(prep.derivatives.formulas(simplify=False))
    result.atol, result.rtol = _tolerances(case)
    problem = _point_problem(prep, case, point)
    if problem is not None:
        result.message = problem
        return result
    point = {k: float(v) for k, v in point.items()}
    result.point = dict(point)
    analysis = analyze_point(prep.expr, point, case.dtype)
    if analysis.error is not None:
        result.message = f"{analysis.error} (column {analysis.column})"
        return result
    exact = prep.compiled.evaluate(point, "exact")
    # The reference value is the tape's (each function by its SymPy formula, at 40 digits);
    # analyze_point's evaluation of our AST only vets domains and kinks.
    result.value = _f(exact.value)
    if not analysis.kinks:
        undefined = [n for n, g in exact.gradient.items() if not _is_number(g)]
        if undefined:
            result.message = f"the derivative d/d{undefined[0]} is undefined at this point"
            return result
    huge = _overflowing(exact, _FLOAT_MAX[case.dtype])
    if huge is not None:
        result.message = f"{huge} overflows {case.dtype}"
        return result
    try:
        # The engine computes in NumPy: IEEE warnings (0 * inf at a kink) are not messages.
        with np.errstate(all="ignore"):
            auto_grad, auto_hess, auto_value = _autograd(prep.expr, point, case.dtype, case.order)
    except Exception as exc:  # an engine failure is a finding to report, not a crash
        result.message = f"engine error: {type(exc).__name__}: {exc}"
        return result
    _fill(result, case, prep, point, exact, analysis, auto_grad, auto_hess, auto_value)
    return result


def _is_number(v: Any) -> bool:
    """A real number (possibly infinite), not NaN and not complex."""
    if isinstance(v, mpmath.mpc):
        return v.imag == 0 and not mpmath.isnan(v.real)
    return not mpmath.isnan(v)


def _overflowing(exact: Any, limit: float) -> str | None:
    """The first finite exact derivative beyond the dtype's range, described, or None."""
    entries = [(f"d/d{n}", v) for n, v in exact.gradient.items()]
    if exact.hessian is not None:
        entries += [(f"d2/d{a}d{b}", v) for a, row in exact.hessian.items() for b, v in row.items()]
    for label, v in entries:
        if isinstance(v, mpmath.mpf) and mpmath.isfinite(v) and abs(v) > limit:
            return f"the exact {label} = {mpmath.nstr(v, 6, max_fixed=0)}"
    return None


def _autograd(
    expr: Expr, point: dict[str, float], dtype: str, order: int
) -> tuple[dict[str, float], dict[str, dict[str, float]] | None, float]:
    """Gradient (and Hessian) of the expression by the engine's reverse mode."""
    lowered = to_engine(expr, point, dtype, retain_grad=False)
    names = list(lowered.leaves)
    value = float(lowered.output.item())
    if not names:
        return {}, ({} if order == 2 else None), value
    if order == 1:
        return lowered.backward(), None, value
    import engine

    inputs = [lowered.leaves[n] for n in names]
    grads = engine.autograd.grad(lowered.output, inputs, create_graph=True, allow_unused=True)
    gradient = {
        n: (float(g.item()) if g is not None else 0.0) for n, g in zip(names, grads, strict=True)
    }
    hessian: dict[str, dict[str, float]] = {}
    for n, g in zip(names, grads, strict=True):
        if g is None or not g.requires_grad:
            # The gradient does not depend on the inputs: that row of the Hessian is zero.
            hessian[n] = dict.fromkeys(names, 0.0)
            continue
        row = engine.autograd.grad(g, inputs, retain_graph=True, allow_unused=True)
        hessian[n] = {
            m: (float(r.item()) if r is not None else 0.0) for m, r in zip(names, row, strict=True)
        }
    return gradient, hessian, value


def _fill(
    result: CaseResult,
    case: Case,
    prep: Prepared,
    point: dict[str, float],
    exact: Any,
    analysis: Any,
    auto_grad: dict[str, float],
    auto_hess: dict[str, dict[str, float]] | None,
    auto_value: float,
) -> None:
    names = prep.expr.variables
    atol, rtol = result.atol, result.rtol
    sym_grad = {n: _f(exact.gradient[n]) for n in names}
    x = np.array([point[n] for n in names], dtype=np.float64)
    num_grad: dict[str, float] = {}
    num_err: dict[str, float] = {}
    num_hess = None
    if names:
        gradient_of = None
        if case.order == 2:
            gradient_of = _gradient_function(prepare(case.expr, 1).compiled)
        grad_res, hess_res = numeric_derivatives(
            prep.function, x, complex_safe=prep.smooth, order=case.order, gradient_of=gradient_of
        )
        num_grad = {n: float(v) for n, v in zip(names, np.ravel(grad_res.value), strict=True)}
        num_err = {n: float(v) for n, v in zip(names, np.ravel(grad_res.error), strict=True)}
        result.numeric_method = grad_res.method
        if hess_res is not None:
            hv = np.asarray(hess_res.value)
            num_hess = {
                a: {b: float(hv[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)
            }
    result.gradient = {"autograd": auto_grad, "symbolic": sym_grad, "numeric": num_grad}
    result.numeric_error = num_err
    result.error = {
        "autograd_vs_symbolic": max((_diff(auto_grad[n], sym_grad[n]) for n in names), default=0.0),
        "numeric_vs_symbolic": max((_diff(num_grad[n], sym_grad[n]) for n in names), default=0.0),
    }
    failures: list[str] = []
    kinked = bool(analysis.kinks)
    slack: dict[str, float] = {}
    if kinked:
        _kink_notes(result, prep, point, analysis, auto_grad, sym_grad, failures)
    else:
        # An explicit tolerance is the user's final word; the slack refines the defaults.
        defaults = case.atol is None and case.rtol is None
        slack = _rounding_slack(prep, point, case.dtype, names) if defaults else {}
        result.rounding = {n: v for n, v in slack.items() if n}
        for n in names:
            result.differentiable[n] = math.isfinite(sym_grad[n])
            extra = slack.get(n, 0.0)
            if not _close(auto_grad[n], sym_grad[n], atol + extra, rtol):
                failures.append(
                    f"d/d{n}: autograd {_fmt(auto_grad[n])} but exact {_fmt(sym_grad[n])} "
                    f"(|diff| {_diff(auto_grad[n], sym_grad[n]):.3g} > "
                    f"{atol + extra + rtol * abs(sym_grad[n]):.3g})"
                )
    value_slack = slack.get("", 0.0) if not kinked else 0.0
    if not _close(auto_value, result.value or 0.0, atol + value_slack, rtol):
        failures.append(f"value: engine {_fmt(auto_value)} but exact {_fmt(result.value or 0.0)}")
    if case.expect is not None:
        worst = 0.0
        for n, want in case.expect.items():
            worst = max(worst, _diff(auto_grad[n], float(want)))
            if not _close(auto_grad[n], float(want), atol, rtol):
                failures.append(
                    f"d/d{n}: autograd {_fmt(auto_grad[n])} but expected {_fmt(float(want))}"
                )
        result.error["autograd_vs_expect"] = worst
    # The numeric estimate is a witness: its disagreement is flagged, never a failure.
    agrees = True
    for n in names:
        bound = 4 * num_err.get(n, math.inf) + atol + rtol * abs(sym_grad[n])
        # An infinite bound (an infinite exact derivative) vouches for nothing.
        within = math.isfinite(bound) and _diff(num_grad[n], sym_grad[n]) <= bound
        if not (_close(num_grad[n], sym_grad[n], 0, 0) or within):
            agrees = False
            if not kinked:
                result.notes.append(
                    f"numeric estimate for d/d{n} ({_fmt(num_grad[n])}, error estimate "
                    f"{num_err.get(n, math.nan):.2g}) disagrees with the exact "
                    f"{_fmt(sym_grad[n])}: the function may be ill-conditioned here"
                )
    result.numeric_agrees = agrees
    if case.order == 2 and exact.hessian is not None:
        _hessian(result, names, exact, auto_hess, num_hess, atol, rtol, kinked, failures)
    result.status = "fail" if failures else "pass"
    result.message = "; ".join(failures) if failures else None


# The slack is this multiple of the Monte Carlo rounding spread: the spread samples the error
# distribution a few times, the engine's own rounding is one more draw from it.
_ROUNDING_FACTOR = 4.0


def _rounding_slack(
    prep: Prepared, point: dict[str, float], dtype: str, names: tuple[str, ...]
) -> dict[str, float]:
    """Extra absolute tolerance per output ("" is the value) for a float32 engine.

    An ill-conditioned chain (cos of a large exp, tanh of a large sinh) loses digits in
    float32 whatever the implementation; simulating float32 rounding at every operation of
    the exact formulas measures how many.
    """
    if dtype != "float32":
        return {}
    eps = float(np.finfo(np.float32).eps)
    spread = prep.compiled.rounding_spread(point, eps)
    keys = ["", *names]
    return {k: _ROUNDING_FACTOR * spread[i] for i, k in enumerate(keys)}


def _hessian(
    result: CaseResult,
    names: tuple[str, ...],
    exact: Any,
    auto_hess: dict[str, dict[str, float]] | None,
    num_hess: dict[str, dict[str, float]] | None,
    atol: float,
    rtol: float,
    kinked: bool,
    failures: list[str],
) -> None:
    sym = {a: {b: _f(exact.hessian[a][b]) for b in names} for a in names}
    auto = auto_hess or {a: {} for a in names}
    num = num_hess or {a: {} for a in names}
    result.hessian = {"autograd": auto, "symbolic": sym, "numeric": num}
    pairs = [(a, b) for a in names for b in names]
    result.error["hessian_autograd_vs_symbolic"] = max(
        (_diff(auto[a][b], sym[a][b]) for a, b in pairs), default=0.0
    )
    result.error["hessian_numeric_vs_symbolic"] = max(
        (_diff(num[a][b], sym[a][b]) for a, b in pairs if b in num[a]), default=0.0
    )
    if kinked:
        # Second derivatives at a kink are conventions all the way down: report only.
        result.notes.append("the Hessian is not checked at a non-differentiable point")
        return
    for a, b in pairs:
        if not _close(auto[a][b], sym[a][b], atol, rtol):
            failures.append(f"d2/d{a}d{b}: autograd {_fmt(auto[a][b])} but exact {_fmt(sym[a][b])}")


def _kink_notes(
    result: CaseResult,
    prep: Prepared,
    point: dict[str, float],
    analysis: Any,
    auto_grad: dict[str, float],
    sym_grad: dict[str, float],
    failures: list[str],
) -> None:
    """At a kink: one-sided derivatives, the engine's convention, and a lenient verdict.

    Autograd passes for a variable if it equals the convention value (SymPy's derivative with
    torch's rules), either one-sided derivative, or lies between them (a subgradient); an
    infinite or undefined one-sided derivative also admits a non-finite autograd value.
    """
    atol, rtol = result.atol, result.rtol
    where = ", ".join(f"{k.text} (column {k.column})" for k in analysis.kinks)
    result.notes.append(f"not differentiable here: kink at {where}")
    for n in prep.expr.variables:
        left, right = (_f(v) for v in one_sided(prep.compiled, point, n))
        result.one_sided[n] = (left, right)
        same = _close(left, right, atol, rtol) and math.isfinite(left)
        result.differentiable[n] = same
        a, conv = auto_grad[n], sym_grad[n]
        ok = (
            _close(a, conv, atol, rtol)
            or _close(a, left, atol, rtol)
            or _close(a, right, atol, rtol)
        )
        if not ok and math.isfinite(left) and math.isfinite(right) and math.isfinite(a):
            lo, hi = min(left, right), max(left, right)
            ok = lo - atol <= a <= hi + atol
        if not ok and math.isnan(left) and math.isnan(right):
            # Undefined on both sides (0**x at 0): there is nothing to hold autograd to.
            ok = True
            result.notes.append(f"d/d{n} cannot be checked here: undefined on both sides")
        if not ok and not same:
            # Where the derivative does not exist an undefined (NaN/inf) autograd value is an
            # honest answer, e.g. sqrt(x**2) at 0 gives 0 * inf in the chain rule, in torch too.
            ok = not math.isfinite(a)
        if not same:
            result.notes.append(
                f"d/d{n} is not defined here: left derivative {_fmt(left)}, right derivative "
                f"{_fmt(right)}; the engine's convention (relu'(0) = abs'(0) = 0, min/max "
                f"split ties 0.5/0.5) gives {_fmt(conv)}"
            )
        elif not _close(conv, left, atol, rtol):
            result.notes.append(
                f"d/d{n}: both one-sided derivatives are {_fmt(left)}, but the kink "
                f"conventions give {_fmt(conv)}"
            )
        if not ok:
            failures.append(
                f"d/d{n}: autograd {_fmt(a)} is neither the convention {_fmt(conv)} nor "
                f"between the one-sided derivatives {_fmt(left)} and {_fmt(right)}"
            )
