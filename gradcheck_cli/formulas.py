"""Display formulas: our AST as a SymPy expression, and SymPy's derivatives of it, on demand.

The values a check compares come from the exact tape (gradcheck_cli/tape.py); SymPy's
``diff`` of the whole expression, whose constructors and assumption queries cost more than
everything else, is paid only when a formula is shown, and ``simplify`` (which imports far
more of SymPy) only for short formulas on the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sympy
from sympy.printing.str import StrPrinter

from gradcheck_cli.expr import ROWS, Expr, Node, OpRow, fold, postorder, row_of
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
    done: dict[int, sympy.Expr] = {}
    return to_sympy_fold(root, done, {} if symbols is None else symbols)[id(root)]


def to_sympy_fold(
    root: Node, done: dict[int, sympy.Expr], symbols: dict[str, sympy.Symbol]
) -> dict[int, sympy.Expr]:
    """Every subtree's SymPy expression, keyed by id(node), into ``done``; the links inside
    a chain a + b - c ... or a * b / c ... (see ``chain_links``) get None: only the whole
    chain is built, once, as one n-ary Add or Mul."""
    links = chain_links(root)

    def leaf(node: Node) -> sympy.Expr:
        if node.kind == "num":
            return number(node.value)  # type: ignore[arg-type]
        if node.kind == "const":
            return sympy.pi if node.value == "pi" else sympy.E
        name = str(node.value)
        if name not in symbols:
            symbols[name] = symbol(name)
        return symbols[name]

    def interior(row: OpRow, node: Node, args: list[sympy.Expr]) -> sympy.Expr | None:
        if node.kind in _CHAINS:
            if id(node) in links:
                return None
            # Building a chain pairwise would re-flatten at every step, and every link's
            # own value costs its length: quadratic in the length of a sum or product.
            terms = [_term(done[id(o)], op) for o, op in chain_operands(node)]
            return sympy.Add(*terms) if node.kind in _ADDITIVE else sympy.Mul(*terms)
        return row.sympy(NAMESPACE, *args)

    return fold(root, leaf, interior, done)  # type: ignore[arg-type]


_ADDITIVE = ("+", "-")
_MULTIPLICATIVE = ("*", "/")
_CHAINS = _ADDITIVE + _MULTIPLICATIVE


def _family(kind: str) -> tuple[str, ...]:
    return _ADDITIVE if kind in _ADDITIVE else _MULTIPLICATIVE if kind in _MULTIPLICATIVE else ()


def chain_links(root: Node) -> set[int]:
    """ids of the chain nodes used only as the left operand of a node of their own family
    (the inner links of a + b + c, a * b / c): their chain is handled whole at its top."""
    left_only: dict[int, bool] = {}
    for node in postorder(root):
        family = _family(node.kind)
        for i, arg in enumerate(node.args):
            if arg.kind not in _CHAINS:
                continue
            inner = i == 0 and arg.kind in family
            left_only[id(arg)] = left_only.get(id(arg), True) and inner
    return {key for key, inner in left_only.items() if inner}


def chain_operands(node: Node) -> list[tuple[Node, str]]:
    """(operand, the operator before it) along the chain topped by ``node``, left to right:
    a - b + c gives (a, '+'), (b, '-'), (c, '+'); a / b gives (a, '*'), (b, '/')."""
    family = _family(node.kind)
    pairs: list[tuple[Node, str]] = []
    cur = node
    while cur.kind in family:
        pairs.append((cur.args[1], cur.kind))
        cur = cur.args[0]
    pairs.append((cur, family[0]))
    pairs.reverse()
    return pairs


def _term(value: sympy.Expr, op: str) -> sympy.Expr:
    """An operand as a term of its chain's Add or Mul."""
    return -value if op == "-" else sympy.Pow(value, -1) if op == "/" else value


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
    _shown: dict[tuple[str, bool], Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def _sympy(self) -> tuple[tuple[sympy.Symbol, ...], sympy.Expr]:
        symbols: dict[str, sympy.Symbol] = {}
        value = to_sympy(self.expr, symbols)
        return tuple(symbols.get(v) or symbol(v) for v in self.expr.variables), value

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """The SymPy symbols of the variables, in the expression's order."""
        return self._sympy[0]

    @property
    def value(self) -> sympy.Expr:
        """The expression as SymPy sees it."""
        return self._sympy[1]

    @cached_property
    def gradient(self) -> tuple[sympy.Expr, ...]:
        """SymPy's gradient (its ``diff``), one formula per variable: the reference."""
        return tuple(self.value.diff(s) for s in self.symbols)

    @cached_property
    def hessian(self) -> tuple[tuple[sympy.Expr, ...], ...] | None:
        """SymPy's Hessian (None below order 2)."""
        if self.order != 2:
            return None
        rows: list[tuple[sympy.Expr | None, ...]] = []
        for i, gi in enumerate(self.shown_gradient):
            # Symmetric: reuse the upper triangle rather than differentiate twice.
            rows.append(
                tuple(
                    rows[j][i] if j < i else None if gi is None else gi.diff(s)
                    for j, s in enumerate(self.symbols)
                )
            )
        return tuple(rows)

    @cached_property
    def shown_gradient(self) -> tuple[sympy.Expr, ...]:
        """The gradient for display, by reverse mode over our AST in SymPy arithmetic.

        Each node costs a few SymPy constructions, so a flat product of n factors costs
        O(n**2) terms in all, where SymPy's ``diff`` of it costs O(n**3) constructions (47 s
        for 60 factors).  The result is the same expression (the table's SymPy formulas,
        SymPy's own partials of them); ``gradient`` keeps SymPy's diff as the reference.
        """
        return _reverse_mode(self.expr, self.symbols)

    def formulas(self, simplify: bool = True) -> dict[str, str]:
        """Formulas of the gradient, keyed by variable name; ``simplify`` tries SymPy's
        simplify on short ones (for people; it imports much of SymPy on first use)."""
        key = ("gradient", simplify)
        if key not in self._shown:
            pairs = zip(self.expr.variables, self.shown_gradient, strict=True)
            if simplify:  # the plain texts first (the report's, often already made)
                plain = self.formulas(simplify=False)
                self._shown[key] = {v: _tidy(g, plain[v]) for v, g in pairs}
            else:
                self._shown[key] = {v: _display(g) for v, g in pairs}
        return self._shown[key]

    def hessian_formulas(self, simplify: bool = True) -> dict[str, dict[str, str]] | None:
        """Formulas of the Hessian, or None below order 2: only ever built for display."""
        if self.order != 2:
            return None
        key = ("hessian", simplify)
        if key not in self._shown:
            names = self.expr.variables
            assert self.hessian is not None
            if simplify:
                plain = self.hessian_formulas(simplify=False)
                assert plain is not None
                self._shown[key] = {
                    a: {b: _tidy(h, plain[a][b]) for b, h in zip(names, row, strict=True)}
                    for a, row in zip(names, self.hessian, strict=True)
                }
            else:
                self._shown[key] = {
                    a: {b: _display(h) for b, h in zip(names, row, strict=True)}
                    for a, row in zip(names, self.hessian, strict=True)
                }
        return self._shown[key]


# A product's partial derivatives are products of all its other factors: n of them, of
# n - 1 factors each. Beyond this many factors they are not built (nor shown): for the
# 2000-factor product that is 4 million factors of SymPy construction and printing.
MAX_SHOWN_FACTORS = 200
NOT_SHOWN = f"(not shown: the derivative of a product of more than {MAX_SHOWN_FACTORS} factors)"


def _reverse_mode(expr: Expr, symbols: tuple[sympy.Symbol, ...]) -> tuple[sympy.Expr | None, ...]:
    """d expr / d symbol for each symbol (None: too large to show, see MAX_SHOWN_FACTORS):
    adjoints collected as term lists, summed once per node, children visited after every
    parent (reverse postorder), no recursion; a chain a + b - c, a * b / c is one n-ary node
    (its inner links are skipped), so a sum or product of n terms costs O(n) constructions."""
    values: dict[int, sympy.Expr] = {}
    to_sympy_fold(expr.root, values, dict(zip(expr.variables, symbols, strict=True)))
    links = chain_links(expr.root)
    terms: dict[int, list[sympy.Expr | None]] = {id(expr.root): [sympy.S.One]}
    gradient: dict[str, list[sympy.Expr | None]] = {v: [] for v in expr.variables}
    for node in reversed(list(postorder(expr.root))):
        pending = terms.pop(id(node), None)
        if not pending or id(node) in links:
            continue
        g = _sum(pending)
        if node.kind == "var":
            gradient[str(node.value)].append(g)
            continue
        if not node.args or g == 0:
            continue
        if node.kind in _CHAINS:
            pairs = chain_operands(node)
            children = [o for o, _ in pairs]
            partials = _chain_partials(node.kind, [(values[id(o)], op) for o, op in pairs])
        else:
            children = list(node.args)
            partials = _sympy_partials(node, [values[id(a)] for a in node.args])
        for child, partial in zip(children, partials, strict=True):
            if partial != 0 and values[id(child)].free_symbols:
                terms.setdefault(id(child), []).append(
                    None if g is None or partial is None else g * partial
                )
    return tuple(_sum(gradient[v]) for v in expr.variables)


def _sum(terms: list[sympy.Expr | None]) -> sympy.Expr | None:
    return None if any(t is None for t in terms) else sympy.Add(*terms)


def _chain_partials(kind: str, operands: list[tuple[sympy.Expr, str]]) -> list[sympy.Expr | None]:
    """The partial derivatives of a chain with respect to each operand (value, operator)."""
    if kind in _ADDITIVE:
        return [sympy.S.NegativeOne if op == "-" else sympy.S.One for _, op in operands]
    if len(operands) > MAX_SHOWN_FACTORS:
        return [None] * len(operands)
    factors = [_term(value, op) for value, op in operands]
    partials: list[sympy.Expr | None] = []
    for i, (value, op) in enumerate(operands):
        others = sympy.Mul(*factors[:i], *factors[i + 1 :])
        partials.append(-others / value**2 if op == "/" else others)
    return partials


def _sympy_partials(node: Node, args: list[sympy.Expr]) -> list[sympy.Expr]:
    kind = node.kind
    if kind == "+":
        return [sympy.S.One, sympy.S.One]
    if kind == "-":
        return [sympy.S.One, sympy.S.NegativeOne]
    if kind == "neg":
        return [sympy.S.NegativeOne]
    if kind == "*":
        return [args[1], args[0]]
    if kind == "/":
        return [1 / args[1], -args[0] / args[1] ** 2]
    row = row_of(node)
    dummies, partials = _partial_formulas(row.name, len(args))
    swap = dict(zip(dummies, args, strict=True))
    out = [p.xreplace(swap) for p in partials]
    if kind == "**" and args[0] == 0:
        # b**e*log(b) at a constant base 0 is 0*zoo: undefined, as SymPy's diff says (nan).
        out[1] = sympy.nan
    return out


_PARTIALS: dict[tuple[str, int], tuple[tuple[sympy.Dummy, ...], tuple[sympy.Expr, ...]]] = {}


def _partial_formulas(
    name: str, arity: int
) -> tuple[tuple[sympy.Dummy, ...], tuple[sympy.Expr, ...]]:
    """SymPy's partial derivatives of a row's formula on Dummy symbols, once per process."""
    key = (name, arity)
    if key not in _PARTIALS:
        dummies = tuple(sympy.Dummy(f"u{i}", real=True, finite=True) for i in range(arity))
        formula = ROWS[name].sympy(NAMESPACE, *dummies)
        _PARTIALS[key] = dummies, tuple(formula.diff(d) for d in dummies)
    return _PARTIALS[key]


def differentiate(expr: Expr, order: int = 1) -> Derivatives:
    """The derivatives of a parsed expression to order 1 or 2 (SymPy's formulas on demand)."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    return Derivatives(expr, order)


# Tidying can take seconds on large formulas and minutes on large powers (it expands
# (x + 1)**9999), so display only tries it on short formulas with small exponents.
_SIMPLIFY_MAX_CHARS = 40
_SIMPLIFY_MAX_EXPONENT = 8


def _monomial(e: sympy.Expr) -> bool:
    """A rational number times powers of symbols: already as short as the tidies make it
    (1-3 ms of theirs per formula, most of a one-shot's formulas)."""
    factors = e.args if e.is_Mul else (e,)
    for f in factors:
        base, exponent = (f.base, f.exp) if f.is_Pow else (f, sympy.S.One)
        if not (f.is_Rational or (base.is_Symbol and exponent.is_Integer)):
            return False
    return True


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


def _display(e: sympy.Expr | None) -> str:
    """A formula's text: SymPy's, in its default term order unless long."""
    if e is None:
        return NOT_SHOWN
    text = _UNORDERED.doprint(e)
    if len(text) > _ORDERED_MAX_CHARS:
        return text
    return str(e)


def _tidy(e: sympy.Expr | None, text: str) -> str:
    """``text`` (``_display(e)``), or a shorter form of a short formula by the cheap tidies."""
    if e is None or len(text) > _SIMPLIFY_MAX_CHARS or _monomial(e) or not _simplifiable(e):
        return text
    for tidy in _TIDY:
        try:
            simpler = str(tidy(e))
        except Exception:  # tidying is cosmetic; never let it fail a check
            continue
        if len(simpler) < len(text):
            text = simpler
    return text


# The cheap parts of sympy.simplify, which itself imports sympy.physics (0.3 s) on first
# use: common factors pulled out, and rational functions cancelled.
_TIDY = (sympy.factor_terms, sympy.cancel)
