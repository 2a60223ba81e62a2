"""Display formulas: our AST as a SymPy expression, and SymPy's derivatives of it, on demand.

The values a check compares come from the exact tape (gradcheck_cli/tape.py); SymPy's
``diff`` of the whole expression, whose constructors and assumption queries cost more than
everything else, is paid only when a formula is shown, and ``simplify`` (which imports far
more of SymPy) only for short formulas on the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy
from sympy.printing.str import StrPrinter

from gradcheck_cli.expr import Expr, Node, OpRow, fold
from gradcheck_cli.sympy_functions import NAMESPACE, PIECEWISE

__all__ = ["Derivatives", "differentiate", "number", "symbol", "to_sympy"]


# --------------------------------------------------------------------------- AST -> SymPy


def number(value: int | float) -> sympy.Expr:
    """A SymPy number: Integer for ints, a binary Float for floats."""
    # Floats stay binary floats: the engine sees fl(0.1), so "x - 0.1" at x = 0.1 is an exact
    # zero for both, and a kink there is seen by both.
    return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)


def symbol(name: str) -> sympy.Symbol:
    """The SymPy symbol of a variable."""
    # Points are finite reals; saying so also spares SymPy ~15% of its assumption queries.
    return sympy.Symbol(name, real=True, finite=True)


def to_sympy(expr: Expr | Node, symbols: dict[str, sympy.Symbol] | None = None) -> sympy.Expr:
    """The SymPy expression of a tree (a fold over the table's sympy column); variables
    become finite real Symbols with the user's names."""
    root = expr.root if isinstance(expr, Expr) else expr
    symbols = {} if symbols is None else symbols
    done: dict[int, sympy.Expr] = {}

    def leaf(node: Node) -> sympy.Expr:
        if node.kind == "num":
            return number(node.value)  # type: ignore[arg-type]
        if node.kind == "const":
            return sympy.pi if node.value == "pi" else sympy.E
        name = str(node.value)
        if name not in symbols:
            symbols[name] = symbol(name)
        return symbols[name]

    def interior(row: OpRow, node: Node, args: list[sympy.Expr]) -> sympy.Expr:
        if node.kind in _CHAINS:
            # Chains a + b + c ... are flattened into one n-ary Add/Mul: building them
            # pairwise would re-flatten at every step (quadratic in the length of a sum).
            return _flat_chain(node, done)
        return row.sympy(NAMESPACE, *args)

    return fold(root, leaf, interior, done)[id(root)]


_CHAINS = ("+", "-", "*", "/")


def _flat_chain(node: Node, done: dict[int, sympy.Expr]) -> sympy.Expr:
    additive = node.kind in ("+", "-")
    terms: list[sympy.Expr] = []
    cur = node
    # Walk down the left spine of the chain; right operands are already converted.
    while cur.kind in (("+", "-") if additive else ("*", "/")):
        right = done[id(cur.args[1])]
        if cur.kind == "-":
            right = -right
        elif cur.kind == "/":
            right = sympy.Pow(right, -1)
        terms.append(right)
        cur = cur.args[0]
    terms.append(done[id(cur)])
    terms.reverse()
    return sympy.Add(*terms) if additive else sympy.Mul(*terms)


# --------------------------------------------------------------------------- derivatives


@dataclass(frozen=True)
class Derivatives:
    """A parsed expression and the order of its derivatives; SymPy's formulas on demand.

    The values that checks compare come from ``compile_derivatives`` (a chain rule over our
    AST, no SymPy ``diff``); the SymPy expressions below are built only when asked for, for
    display: SymPy's constructors and assumption queries cost more than all the rest.
    """

    expr: Expr
    order: int = 1

    @cached_property
    def _sympy(self) -> tuple[tuple[sympy.Symbol, ...], sympy.Expr, tuple[sympy.Expr, ...]]:
        symbols: dict[str, sympy.Symbol] = {}
        value = to_sympy(self.expr, symbols)
        syms = tuple(symbols.get(v) or symbol(v) for v in self.expr.variables)
        return syms, value, tuple(value.diff(s) for s in syms)

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """The SymPy symbols of the variables, in the expression's order."""
        return self._sympy[0]

    @property
    def value(self) -> sympy.Expr:
        """The expression as SymPy sees it."""
        return self._sympy[1]

    @property
    def gradient(self) -> tuple[sympy.Expr, ...]:
        """SymPy's gradient, one formula per variable."""
        return self._sympy[2]

    @cached_property
    def hessian(self) -> tuple[tuple[sympy.Expr, ...], ...] | None:
        """SymPy's Hessian (None below order 2)."""
        if self.order != 2:
            return None
        rows: list[tuple[sympy.Expr, ...]] = []
        for i, gi in enumerate(self.gradient):
            # Symmetric: reuse the upper triangle rather than differentiate twice.
            rows.append(
                tuple(rows[j][i] if j < i else gi.diff(s) for j, s in enumerate(self.symbols))
            )
        return tuple(rows)

    def formulas(self) -> dict[str, str]:
        """Display formulas of the gradient, keyed by variable name."""
        return {v: _display(g) for v, g in zip(self.expr.variables, self.gradient, strict=True)}

    def hessian_formulas(self) -> dict[str, dict[str, str]] | None:
        """Display formulas of the Hessian, or None below order 2."""
        if self.hessian is None:
            return None
        names = self.expr.variables
        return {
            a: {b: _display(h) for b, h in zip(names, row, strict=True)}
            for a, row in zip(names, self.hessian, strict=True)
        }


def differentiate(expr: Expr, order: int = 1) -> Derivatives:
    """The derivatives of a parsed expression to order 1 or 2 (SymPy's formulas on demand)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    return Derivatives(expr, order)


# simplify() can take seconds on large formulas and minutes on large powers (it expands
# (x + 1)**9999), so display only tries it on short formulas with small exponents.
_SIMPLIFY_MAX_CHARS = 40
_SIMPLIFY_MAX_EXPONENT = 8


def _simplifiable(e: sympy.Expr) -> bool:
    if e.has(*PIECEWISE):
        return False
    for p in e.atoms(sympy.Pow):
        exponent = p.exp
        if not exponent.is_Number or abs(exponent) > _SIMPLIFY_MAX_EXPONENT:
            return False
    return True


# SymPy's default term ordering (2*x + 2, not 2 + 2*x) costs more than the whole derivative
# evaluation on long formulas; those are printed in SymPy's internal order instead.
_ORDERED_MAX_CHARS = 80
_UNORDERED = StrPrinter({"order": "none"})


def _display(e: sympy.Expr) -> str:
    text = _UNORDERED.doprint(e)
    if len(text) > _ORDERED_MAX_CHARS:
        return text
    text = str(e)
    if len(text) <= _SIMPLIFY_MAX_CHARS and _simplifiable(e):
        try:
            simpler = str(sympy.simplify(e))
        except Exception:  # simplification is cosmetic; never let it fail a check
            return text
        if len(simpler) < len(text):
            return simpler
    return text


