"""Point analysis: our AST evaluated exactly at a point, node by node, against the table's
domain and kink predicates; and one-sided derivatives where a kink is active.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from gradcheck_cli.expr import Expr, Node, OpRow, postorder, row_of, to_text
from gradcheck_cli.scalars import MPMATH
from gradcheck_cli.tape import EXACT_DPS, Compiled

__all__ = ["Kink", "PointAnalysis", "analyze_point", "one_sided"]


@dataclass(frozen=True)
class Kink:
    """A non-differentiable spot active at the point: which subexpression and where."""

    text: str
    function: str
    column: int


@dataclass(frozen=True)
class PointAnalysis:
    """High-precision value of the expression at a point, its domain error and its kinks."""

    value: Any
    error: str | None = None
    column: int = 0
    kinks: tuple[Kink, ...] = ()


def _short(node: Node, limit: int = 40) -> str:
    text = to_text(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(v: Any) -> str:
    """Six significant digits; astronomically large numbers as a power of ten."""
    if isinstance(v, mpmath.mpf) and mpmath.isfinite(v) and v != 0:
        exponent = mpmath.log10(abs(v))
        if abs(exponent) > 1e6:
            return f"{'-' if v < 0 else ''}10**({mpmath.nstr(exponent, 6)})"
    return mpmath.nstr(v, 6) if isinstance(v, (mpmath.mpf, mpmath.mpc)) else repr(v)


def analyze_point(expr: Expr, point: dict[str, float], dtype: str = "float64") -> PointAnalysis:
    """Evaluate our AST exactly at a point, node by node: domain errors and active kinks.

    SymPy's simplification could hide a domain error (sqrt(x)**2 is x for SymPy, NaN for the
    engine at x = -1), so the check walks our own tree, not the SymPy one.  A subexpression
    beyond the dtype's range is an error too: the engine can only return inf or NaN there,
    and stopping at it keeps mpmath away from exp(exp(exp(10))) (minutes, then a crash).
    """
    values: dict[int, Any] = {}
    varies: dict[int, bool] = {}
    kinks: list[Kink] = []
    with mpmath.workdps(EXACT_DPS):
        limit = mpmath.mpf(float(np.finfo(np.dtype(dtype)).max))  # converted once, not per node
        for node in postorder(expr.root):
            if not node.args:
                values[id(node)] = _leaf_value(node, point)
                varies[id(node)] = node.kind == "var"
                continue
            row = row_of(node)
            args = [values[id(a)] for a in node.args]
            varies[id(node)] = any(varies[id(a)] for a in node.args)
            problem = _domain_problem(row, node, args)
            if problem is not None:
                return PointAnalysis(None, problem, node.column)
            try:
                v = row.scalar(MPMATH, *args)
            except ZeroDivisionError:
                return PointAnalysis(None, f"division by zero in {_short(node)}", node.column)
            except (ArithmeticError, ValueError) as exc:  # mpmath giving up on a huge number
                return PointAnalysis(
                    None, f"{_short(node)} cannot be evaluated: {exc}", node.column
                )
            problem = _value_problem(row, node, args, v)
            if problem is None and abs(v) > limit:
                problem = f"{_short(node)} = {_fmt(v)} overflows {dtype}"
            if problem is not None:
                return PointAnalysis(None, problem, node.column)
            if row.kink(args, [varies[id(a)] for a in node.args]):
                kinks.append(Kink(_short(node), row.name, node.column))
            values[id(node)] = v
        value = values[id(expr.root)]
    return PointAnalysis(value, None, 0, tuple(kinks))


def _leaf_value(node: Node, point: dict[str, float]) -> Any:
    if node.kind == "num":
        return mpmath.mpf(node.value)  # type: ignore[arg-type]
    if node.kind == "const":
        return +mpmath.pi if node.value == "pi" else +mpmath.e
    return mpmath.mpf(float(point[str(node.value)]))


def _domain_problem(row: OpRow, node: Node, args: list[Any]) -> str | None:
    """The table's domain predicate, as a message."""
    if row.domain(*args):
        return None
    if row.name == "/" or (row.name == "**" and args[0] == 0):
        return f"division by zero in {_short(node)}"
    if row.name == "**":
        return (
            f"{_short(node)} is undefined here: ({_fmt(args[0])})**({_fmt(args[1])}) "
            "is not a real number"
        )
    shown = ", ".join(_fmt(a) for a in args)
    domain = row.domain_text
    if len(args) == 1:
        domain = domain.split("; ")[0]  # "; base ..." is about log(x, b) only
    where = f" ({domain})" if domain else ""
    return f"{_short(node)} is undefined here: {node.value}({shown}) is outside the domain{where}"


def _value_problem(row: OpRow, node: Node, args: list[Any], v: Any) -> str | None:
    # A function of real numbers with a complex result left the real line on the way, even
    # when the imaginary part cancels: log(x, x) at x = -1 is log(-1)/log(-1) = 1 + 0j.
    if isinstance(v, mpmath.mpc):
        bad = v.imag != 0 or not row.operator or not mpmath.isfinite(v)
    else:
        bad = not mpmath.isfinite(v)
    if not bad:
        return None
    if not row.operator:
        shown = ", ".join(_fmt(a) for a in args)
        return f"{_short(node)} is undefined here: {node.value}({shown}) is not a finite real"
    return f"{_short(node)} is not a finite real number here"


def one_sided(compiled: Compiled, point: dict[str, float], variable: str) -> tuple[Any, Any]:
    """Left and right derivatives along one variable, at high precision (inf if unbounded).

    The exact gradient is evaluated just left and right of the point, at two distances: if
    it grows as the distance shrinks (sqrt at 0), the one-sided derivative is infinite.
    Undefined sides (sqrt left of 0) are NaN.
    """
    names = compiled.variables
    k = names.index(variable)
    base = [float(point[v]) for v in names]
    scale = max(1.0, abs(base[k]))
    result = []
    for sign in (-1, 1):
        estimates = []
        for h in (1e-8 * scale, 1e-11 * scale):
            with mpmath.workdps(EXACT_DPS):
                x = [mpmath.mpf(v) for v in base]
                x[k] += sign * mpmath.mpf(h)
                out = compiled._run(x, "mp")
            g = out[1 + k]
            estimates.append(g if _is_real(g) else mpmath.nan)
        far, near = estimates
        if mpmath.isnan(near) or mpmath.isnan(far):
            result.append(mpmath.nan)
        elif abs(near) > 4 * abs(far) + 1:
            result.append(mpmath.inf if near > 0 else -mpmath.inf)
        else:
            result.append(near)
    return result[0], result[1]


def _is_real(v: Any) -> bool:
    # A complex value, even with a zero imaginary part, went through a complex intermediate
    # (sqrt(x)**2 left of 0): undefined on the real line, NaN for the engine.
    if isinstance(v, mpmath.mpc):
        return False
    return not (isinstance(v, float) and math.isnan(v))

