"""Exact derivatives, with SymPy as the source of every derivative rule (never from text).

Values: ``compile_derivatives`` runs reverse mode over our AST straight onto a flat,
hash-consed instruction tape.  Each table function contributes SymPy's derivative of its own
formula (RealAbs, Relu, Max ... included), computed once per process on Dummy symbols; each
operator the textbook rule; the Hessian is reverse mode again over the gradient's
instructions, each differentiated by SymPy's rule for it.  A tiny interpreter runs the tape
either in float64/float32 (NumPy scalars, IEEE semantics) or at high precision (mpmath).
SymPy's ``diff`` of the whole expression, whose constructors and assumption queries cost more
than everything else, is paid only for the display formulas (``Derivatives.formulas``).
Nothing is generated as Python source, so no user text can reach ``exec``.

Kinks follow the engine's (PyTorch's) conventions so that "exact" means "what a correct
engine returns": abs'(0) = sign(0) = 0, relu'(0) = 0 (Heaviside with H(0) = 0), and min/max
split ties 0.5/0.5 (SymPy's Heaviside(0) = 1/2 in the derivative of Max/Min).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import mpmath
import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from gradcheck_cli.expr import FUNCTIONS, Expr, Node, postorder, to_text

__all__ = [
    "Compiled",
    "Derivatives",
    "Evaluation",
    "Kink",
    "PointAnalysis",
    "analyze_point",
    "compile_derivatives",
    "differentiate",
    "one_sided",
    "to_sympy",
]

# Working precision of "exact" evaluation: 40 decimal digits, ~133 bits.
EXACT_DPS = 40


# ---------------------------------------------------------------- kink-aware functions


class RealAbs(sympy.Function):
    """|x| for a real argument, with the engine's derivative sign(x) (so abs'(0) = 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number:
            return sympy.Abs(x)
        if x.is_extended_nonnegative:
            return x
        if x.is_extended_nonpositive:
            return -x
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return Sign(self.args[0])

    def _eval_is_extended_real(self) -> bool:
        return True

    def _eval_is_extended_nonnegative(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"abs({printer._print(self.args[0])})"


class Sign(sympy.Function):
    """sign(x) whose derivative is 0, as the engine's: abs''(x) is 0, with no DiracDelta."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number:
            return sympy.sign(x)
        if x.is_extended_positive:
            return sympy.S.One
        if x.is_extended_negative:
            return sympy.S.NegativeOne
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero

    def _eval_is_extended_real(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"sign({printer._print(self.args[0])})"


class Relu(sympy.Function):
    """max(x, 0) with the engine's derivative Heaviside(x, 0) (so relu'(0) = 0)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number:
            return sympy.Max(x, 0)
        if x.is_extended_nonnegative:
            return x
        if x.is_extended_nonpositive:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.Heaviside(self.args[0], 0)

    def _eval_is_extended_real(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"relu({printer._print(self.args[0])})"


class _Namespace:
    """What the table's ``sympy`` column sees: SymPy plus our kink-aware functions."""

    abs_ = RealAbs
    relu = Relu

    def __getattr__(self, name: str) -> Any:
        return getattr(sympy, name)


_S = _Namespace()


# --------------------------------------------------------------------------- AST -> SymPy


def _number(value: int | float) -> sympy.Expr:
    # Floats stay binary floats: the engine sees fl(0.1), so "x - 0.1" at x = 0.1 is an exact
    # zero for both, and a kink there is seen by both.
    return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)


def _symbol(name: str) -> sympy.Symbol:
    # Points are finite reals; saying so also spares SymPy ~15% of its assumption queries.
    return sympy.Symbol(name, real=True, finite=True)


def to_sympy(expr: Expr | Node, symbols: dict[str, sympy.Symbol] | None = None) -> sympy.Expr:
    """The SymPy expression of a tree; variables become finite real Symbols, user's names."""
    root = expr.root if isinstance(expr, Expr) else expr
    symbols = {} if symbols is None else symbols
    done: dict[int, sympy.Expr] = {}
    for node in postorder(root):
        done[id(node)] = _sympy_node(node, done, symbols)
    return done[id(root)]


def _sympy_node(
    node: Node, done: dict[int, sympy.Expr], symbols: dict[str, sympy.Symbol]
) -> sympy.Expr:
    kind = node.kind
    if kind == "num":
        return _number(node.value)  # type: ignore[arg-type]
    if kind == "const":
        return sympy.pi if node.value == "pi" else sympy.E
    if kind == "var":
        name = str(node.value)
        if name not in symbols:
            symbols[name] = _symbol(name)
        return symbols[name]
    args = [done[id(a)] for a in node.args]
    if kind == "call":
        return FUNCTIONS[str(node.value)].sympy(_S, *args)
    if kind == "neg":
        return -args[0]
    if kind in ("+", "-", "*", "/"):
        # Chains a + b + c ... are flattened into one n-ary Add/Mul: building them pairwise
        # would re-flatten at every step (quadratic in the length of a long sum).
        return _flat_chain(node, done)
    return sympy.Pow(args[0], args[1])


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
        syms = tuple(symbols.get(v) or _symbol(v) for v in self.expr.variables)
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
    if e.has(RealAbs, Relu, sympy.Heaviside):
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


# ----------------------------------------------------------------------- compiled tapes

# Instruction: (opcode, argument slots, payload).  Slots 0..n-1 hold the variables.
_Instr = tuple[str, tuple[int, ...], Any]

_SYMPY_FUNCS: dict[Any, str] = {
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.asin: "asin",
    sympy.acos: "acos",
    sympy.atan: "atan",
    sympy.sinh: "sinh",
    sympy.cosh: "cosh",
    sympy.tanh: "tanh",
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.sign: "sign",
    sympy.Heaviside: "heaviside",
    sympy.DiracDelta: "delta",
    RealAbs: "abs",
    sympy.Abs: "abs",
    Relu: "relu",
    Sign: "sign",
    sympy.Max: "max",
    sympy.Min: "min",
    sympy.sec: "sec",
    sympy.csc: "csc",
    sympy.cot: "cot",
}


def _heaviside(x: Any, h0: Any = 0.5) -> Any:
    return 1 if x > 0 else (0 if x < 0 else h0)


def _sign(x: Any) -> Any:
    return 1 if x > 0 else (-1 if x < 0 else 0)


def _mp_pow(b: Any, e: Any) -> Any:
    if b == 0 and e < 0:
        return mpmath.inf
    return mpmath.power(b, e)


def _np_pow(b: Any, e: Any) -> Any:
    return np.power(b, e)


# Each backend: number conversion, functions by opcode, power.  Heaviside and sign follow
# the engine's conventions; DiracDelta (the derivative of a step) is 0, as in the engine.
_MP_FUNCS: dict[str, Callable[..., Any]] = {
    "sin": mpmath.sin,
    "cos": mpmath.cos,
    "tan": mpmath.tan,
    "asin": mpmath.asin,
    "acos": mpmath.acos,
    "atan": mpmath.atan,
    "sinh": mpmath.sinh,
    "cosh": mpmath.cosh,
    "tanh": mpmath.tanh,
    "exp": mpmath.exp,
    "log": mpmath.log,
    "sign": _sign,
    "heaviside": _heaviside,
    "delta": lambda *a: 0,
    "abs": mpmath.fabs,
    "relu": lambda x: x if x > 0 else 0 * x,
    "max": max,
    "min": min,
    "sec": mpmath.sec,
    "csc": mpmath.csc,
    "cot": mpmath.cot,
    "sqrt": mpmath.sqrt,
    "inf": lambda: mpmath.inf,
}
_NP_FUNCS: dict[str, Callable[..., Any]] = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "exp": np.exp,
    "log": np.log,
    "sign": np.sign,
    "heaviside": lambda x, h0=0.5: np.heaviside(x, h0),
    "delta": lambda x, *a: x * 0,
    "abs": np.abs,
    "relu": lambda x: np.maximum(x, 0.0),
    "max": np.maximum,
    "min": np.minimum,
    "sec": lambda x: 1 / np.cos(x),
    "csc": lambda x: 1 / np.sin(x),
    "cot": lambda x: 1 / np.tan(x),
    "sqrt": np.sqrt,
    "inf": lambda: np.float64(np.inf),
}


@dataclass(frozen=True)
class Evaluation:
    """Values at one point: value, gradient and Hessian by variable name (floats or mpf)."""

    value: Any
    gradient: dict[str, Any]
    hessian: dict[str, dict[str, Any]] | None = None


@dataclass
class Compiled:
    """Value, gradient and Hessian of one expression as a CSE'd instruction tape."""

    variables: tuple[str, ...]
    instructions: list[_Instr]
    outputs: list[int]  # slots of value, gradient..., hessian row-major
    order: int
    constants: list[sympy.Expr] = field(default_factory=list)
    _consts_cache: dict[Any, list[Any]] = field(default_factory=dict, repr=False)

    def evaluate(self, point: dict[str, float], precision: str = "float64") -> Evaluation:
        """Evaluate at a point: "exact" (mpmath, 40 digits), "float64" or "float32" (NumPy)."""
        return self._package(self.evaluate_vector([point[v] for v in self.variables], precision))

    def evaluate_vector(self, x: Sequence[Any], precision: str = "exact") -> list[Any]:
        """Raw outputs (value, gradient, Hessian row-major) at a point in variable order."""
        if precision == "exact":
            with mpmath.workdps(EXACT_DPS):
                return self._run([mpmath.mpf(float(v)) for v in x], "mp")
        if precision not in ("float64", "float32"):
            raise ValueError(
                f"precision must be 'exact', 'float64' or 'float32', got {precision!r}"
            )
        dtype = np.dtype(precision).type
        with np.errstate(all="ignore"):
            return self._run([dtype(v) for v in x], dtype)

    def _package(self, raw: list[Any]) -> Evaluation:
        names = self.variables
        n = len(names)
        gradient = dict(zip(names, raw[1 : 1 + n], strict=True))
        hessian = None
        if self.order == 2:
            flat = raw[1 + n :]
            hessian = {
                a: {b: flat[i * n + j] for j, b in enumerate(names)} for i, a in enumerate(names)
            }
        return Evaluation(raw[0], gradient, hessian)

    def _consts(self, backend: Any) -> list[Any]:
        """Constants converted once per backend: mpmath (per precision) or a NumPy type."""
        key = ("mp", mpmath.mp.dps) if backend == "mp" else backend
        if key not in self._consts_cache:
            convert = _mp_constant if backend == "mp" else (lambda c: backend(_np_constant(c)))
            self._consts_cache[key] = [convert(c) for c in self.constants]
        return self._consts_cache[key]

    def rounding_spread(
        self, point: dict[str, float], eps: float, samples: int = 4, seed: int = 0
    ) -> list[float]:
        """How far the outputs move when every operation rounds with relative error eps.

        Monte Carlo arithmetic: the float64 tape is rerun with each result (constants and
        inputs included) scaled by 1 + eps*u, u uniform in [-1, 1]; the largest deviation per
        output estimates what a lower-precision computation of the same formulas can lose.
        """
        x = [np.float64(point[v]) for v in self.variables]
        with np.errstate(all="ignore"):
            base = [float(v) for v in self._run(x, np.float64)]
            rng = np.random.default_rng(seed)
            spread = [0.0] * len(base)
            for _ in range(samples):
                noisy = self._run(x, np.float64, noise=(rng, eps))
                for k, (a, b) in enumerate(zip(noisy, base, strict=True)):
                    d = abs(float(a) - b)
                    if np.isfinite(d):
                        spread[k] = max(spread[k], d)
        return spread

    def _run(
        self, inputs: list[Any], backend: Any, noise: tuple[Any, float] | None = None
    ) -> list[Any]:
        """Run the tape: backend "mp" or a NumPy scalar type (np.float64, np.float32)."""
        consts = self._consts(backend)
        funcs = _MP_FUNCS if backend == "mp" else _NP_FUNCS
        power = _mp_pow if backend == "mp" else _np_pow
        nan = mpmath.nan if backend == "mp" else backend(np.nan)
        slots: list[Any] = list(inputs)
        if noise is not None:
            rng, eps = noise
            consts = [c * (1 + eps * rng.uniform(-1, 1)) for c in consts]
            slots = [v * (1 + eps * rng.uniform(-1, 1)) for v in slots]
        for op, args, payload in self.instructions:
            try:
                v = _step(op, args, payload, slots, consts, funcs, power)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                v = nan  # TypeError: a complex value reached a comparison (sign, max)
            if noise is not None:
                v = v * (1 + eps * rng.uniform(-1, 1))
            slots.append(v)
        return [slots[i] for i in self.outputs]


def _step(
    op: str,
    args: tuple[int, ...],
    payload: Any,
    slots: list[Any],
    consts: list[Any],
    funcs: dict[str, Callable[..., Any]],
    power: Callable[..., Any],
) -> Any:
    if op == "const":
        return consts[payload]
    if op == "add":
        total = slots[args[0]]
        for a in args[1:]:
            total = total + slots[a]
        return total
    if op == "mul":
        prod = slots[args[0]]
        for a in args[1:]:
            prod = prod * slots[a]
        return prod
    if op == "pow":
        return power(slots[args[0]], slots[args[1]])
    if op == "recip":
        x = slots[args[0]]
        # IEEE semantics in both backends: 1/0 is inf (mpmath would raise).
        return 1 / x if x != 0 else funcs["inf"]()
    return funcs[op](*(slots[a] for a in args))


def _np_constant(c: sympy.Expr) -> Any:
    try:
        return np.float64(float(c))
    except TypeError:  # zoo, or a complex constant: not a real number
        return np.float64(np.inf if c is sympy.zoo or c is sympy.oo else np.nan)


def _mp_constant(c: sympy.Expr) -> Any:
    if c is sympy.zoo or c is sympy.oo:
        return mpmath.inf
    if c is sympy.S.NegativeInfinity:
        return -mpmath.inf
    if c is sympy.nan:
        return mpmath.nan
    if isinstance(c, sympy.Float):
        return mpmath.mpf(c._mpf_)
    if isinstance(c, sympy.Rational):
        return mpmath.mpf(int(c.p)) / int(c.q)
    return mpmath.mpmathify(c.evalf(mpmath.mp.dps + 5))


class _TapeCompiler:
    """SymPy expressions -> instructions, iteratively, each distinct subexpression once."""

    def __init__(self, symbols: Sequence[sympy.Symbol]):
        self.instructions: list[_Instr] = []
        self.constants: list[sympy.Expr] = []
        self.slot: dict[sympy.Basic, int] = {s: i for i, s in enumerate(symbols)}
        self.n_inputs = len(symbols)

    def _emit(self, op: str, args: tuple[int, ...], payload: Any = None) -> int:
        self.instructions.append((op, args, payload))
        return self.n_inputs + len(self.instructions) - 1

    def compile(self, root: sympy.Expr) -> int:
        stack: list[tuple[sympy.Expr, bool]] = [(root, False)]
        while stack:
            e, expanded = stack.pop()
            if e in self.slot:
                continue
            if e.is_Atom or expanded or not e.args:
                self.slot[e] = self._leaf(e) if (e.is_Atom or not e.args) else self._node(e)
                continue
            stack.append((e, True))
            stack.extend((a, False) for a in e.args)
        return self.slot[root]

    def _leaf(self, e: sympy.Expr) -> int:
        if e.is_Symbol:
            raise ValueError(f"internal error: unbound symbol {e}")
        self.constants.append(e)
        return self._emit("const", (), len(self.constants) - 1)

    def _node(self, e: sympy.Expr) -> int:
        args = tuple(self.slot[a] for a in e.args)
        if e.is_Add:
            return self._emit("add", args)
        if e.is_Mul:
            return self._emit("mul", args)
        if e.is_Pow:  # (x**(1/2) and x**-1 become sqrt and recip on the _Tape)
            return self._emit("pow", args)
        name = _SYMPY_FUNCS.get(e.func)
        if name is None:
            raise ValueError(f"internal error: no evaluator for {e.func}")
        return self._emit(name, args)


# ------------------------------------------------------------------ the chain rule, on a tape


class _Tape:
    """An instruction tape under construction, hash-consed: each distinct instruction once.

    Slots 0..n-1 are the inputs.  Constants are SymPy numbers.  The identities SymPy applies
    when it builds a sum or a product (x + 0, 1*x, 0*x, x**1, x**0, exact rational arithmetic)
    are applied here too, so that derivatives stay as small as SymPy's and a structurally zero
    term (abs'' = sign' = 0) never meets an infinite factor.  Floats are not folded: their
    arithmetic is left to the evaluator, exact at 40 digits.
    """

    def __init__(self, n_inputs: int):
        self.n_inputs = n_inputs
        self.instructions: list[_Instr] = []
        self.constants: list[sympy.Expr] = []
        self.depends: list[bool] = [True] * n_inputs  # per slot: does it vary with the inputs?
        self.values: dict[int, sympy.Expr] = {}  # constant slots -> their SymPy number
        self._index: dict[tuple[Any, ...], int] = {}
        self.zero = self.const(sympy.S.Zero)
        self.one = self.const(sympy.S.One)
        self.minus_one = self.const(sympy.S.NegativeOne)
        self.nan = self.const(sympy.nan)

    def _emit(self, op: str, args: tuple[int, ...]) -> int:
        key = (op, args)
        slot = self._index.get(key)
        if slot is None:
            slot = self.n_inputs + len(self.instructions)
            self.instructions.append((op, args, None))
            depends = self.depends
            depends.append(any(map(depends.__getitem__, args)))
            self._index[key] = slot
        return slot

    def const(self, c: sympy.Expr) -> int:
        key = ("const", type(c), c)  # Integer(2) and Float(2.0) stay apart
        slot = self._index.get(key)
        if slot is None:
            slot = self.n_inputs + len(self.instructions)
            self.instructions.append(("const", (), len(self.constants)))
            self.constants.append(c)
            self.depends.append(False)
            self.values[slot] = c
            self._index[key] = slot
        return slot

    def _rational(self, slot: int) -> sympy.Rational | None:
        c = self.values.get(slot)
        return c if isinstance(c, sympy.Rational) else None

    def op(self, op: str, args: Sequence[int]) -> int:
        """The slot of op(*args), simplified where SymPy would simplify it."""
        if op == "add":
            return self.add(*args)
        if op == "mul":
            return self.mul(*args)
        if op == "pow":
            return self.pow(args[0], args[1])
        if op == "recip":
            return self.recip(args[0])
        exact = [self._rational(a) for a in args]
        if all(c is not None for c in exact):
            # SymPy evaluates a function of exact numbers when the result is exact too
            # (sin(0) = 0, Heaviside(0) = 1/2): a structural zero must stay one.
            value = _exact_value(op, tuple(exact))
            if value is not None:
                return self.const(value)
        return self._emit(op, tuple(args))

    def add(self, *args: int) -> int:
        values = self.values
        if not any(a in values for a in args):  # the common case: no constant to fold
            return self._emit("add", tuple(sorted(args))) if len(args) > 1 else args[0]
        terms: list[int] = []
        total: sympy.Rational = sympy.S.Zero
        for a in args:
            c = values.get(a)
            if isinstance(c, sympy.Rational):
                total += c
            elif c is sympy.nan:  # NaN absorbs, as in SymPy
                return self.nan
            else:
                terms.append(a)
        if total != 0:
            terms.append(self.const(total))
        if len(terms) <= 1:
            return terms[0] if terms else self.zero
        return self._emit("add", tuple(sorted(terms)))

    def mul(self, *args: int) -> int:
        values = self.values
        if not any(a in values for a in args):
            return self._emit("mul", tuple(sorted(args))) if len(args) > 1 else args[0]
        if len(args) == 2 and self.one in args:
            return args[0] if args[1] == self.one else args[1]
        factors: list[int] = []
        product: sympy.Rational = sympy.S.One
        for a in args:
            c = values.get(a)
            if isinstance(c, sympy.Rational):
                product *= c
            elif c is sympy.nan:  # NaN absorbs, as in SymPy
                return self.nan
            elif c is not None and c.is_zero:  # 0.0*x is 0 for SymPy too
                return self.zero
            else:
                factors.append(a)
        if product == 0:
            return self.zero
        if product != 1:
            factors.append(self.const(product))
        if len(factors) <= 1:
            return factors[0] if factors else self.one
        return self._emit("mul", tuple(sorted(factors)))

    def neg(self, a: int) -> int:
        c = self.values.get(a)
        if isinstance(c, sympy.Float):
            return self.const(-c)  # exact: a sign flip
        return self.mul(self.minus_one, a)

    def recip(self, a: int) -> int:
        c = self._rational(a)
        if c is not None and c != 0:
            return self.const(1 / c)
        return self._emit("recip", (a,))

    def pow(self, base: int, exponent: int) -> int:
        e = self._rational(exponent)
        if e is not None:
            if e == 1:
                return base
            if e == 0:
                return self.one
            if e == -1:
                return self.recip(base)
            if e == sympy.S.Half:
                return self._emit("sqrt", (base,))
            b = self._rational(base)
            # Exact powers of exact numbers are folded; the parser bounds their size.
            if b is not None and e.is_Integer and (b != 0 or e > 0):
                return self.const(b**e)
        if self._rational(base) == 1:
            return self.one
        return self._emit("pow", (base, exponent))

    def to_compiled(self, variables: tuple[str, ...], outputs: list[int], order: int) -> Compiled:
        """The live part of the tape (what the outputs need), renumbered."""
        n = self.n_inputs
        live = [False] * (n + len(self.instructions))
        stack = list(outputs)
        while stack:
            s = stack.pop()
            if not live[s]:
                live[s] = True
                if s >= n:
                    stack.extend(self.instructions[s - n][1])
        if all(live[n + k] or op == "const" for k, (op, _, _) in enumerate(self.instructions)):
            # Nothing to drop but unused constants (cheap to load): keep the numbering.
            return Compiled(variables, self.instructions, outputs, order, self.constants)
        new_slot = list(range(n))
        instructions: list[_Instr] = []
        constants: list[sympy.Expr] = []
        for k, (op, args, payload) in enumerate(self.instructions):
            new_slot.append(n + len(instructions))
            if not live[n + k]:
                continue
            if op == "const":
                constants.append(self.constants[payload])
                payload = len(constants) - 1
            instructions.append((op, tuple(new_slot[a] for a in args), payload))
        return Compiled(variables, instructions, [new_slot[s] for s in outputs], order, constants)


@lru_cache(maxsize=1024)
def _exact_value(op: str, args: tuple[sympy.Rational, ...]) -> sympy.Rational | None:
    """SymPy's value of a function at exact numbers if it is an exact number, else None."""
    value = _OP_SYMPY[op](*args)
    return value if isinstance(value, sympy.Rational) else None


@dataclass(frozen=True)
class _Template:
    """A SymPy formula over its arguments as instructions on local slots (args first)."""

    instructions: tuple[tuple[str, tuple[int, ...], Any], ...]  # const payload: the number
    output: int

    def apply(self, tape: _Tape, args: Sequence[int]) -> int:
        """Emit the formula on the tape with the given argument slots; its result's slot."""
        slots = list(args)
        for op, local, payload in self.instructions:
            if op == "const":
                slots.append(tape.const(payload))
            else:
                slots.append(tape.op(op, [slots[i] for i in local]))
        return slots[self.output]


def _template(formula: sympy.Expr, args: Sequence[sympy.Symbol]) -> _Template:
    compiler = _TapeCompiler(args)
    output = compiler.compile(formula)
    instructions = tuple(
        (op, local, compiler.constants[payload] if op == "const" else None)
        for op, local, payload in compiler.instructions
    )
    return _Template(instructions, output)


def _dummies(n: int) -> tuple[sympy.Dummy, ...]:
    return tuple(sympy.Dummy(f"u{i}", real=True, finite=True) for i in range(n))


# Derivative rules, all from SymPy, built once per process on first use.  A table function
# (keyed by its SymPy column and arity): its formula and SymPy's partial derivatives of it.
# A tape operation (what those formulas are made of): SymPy's partial derivative of it.
_CALL_RULES: dict[tuple[Any, int], tuple[_Template, tuple[_Template, ...]]] = {}
_OP_RULES: dict[tuple[str, int, int], _Template] = {}
# Tape operation -> the SymPy function it evaluates; ours where the engine's kinks differ.
_OP_SYMPY: dict[str, Any] = {
    **{name: f for f, name in _SYMPY_FUNCS.items()},
    "abs": RealAbs,
    "sign": Sign,
    "sqrt": sympy.sqrt,
}


def _call_rule(name: str, arity: int) -> tuple[_Template, tuple[_Template, ...]]:
    build = FUNCTIONS[name].sympy
    rule = _CALL_RULES.get((build, arity))
    if rule is None:
        args = _dummies(arity)
        formula = build(_S, *args)
        partials = tuple(_template(formula.diff(a), args) for a in args)
        rule = _CALL_RULES[(build, arity)] = (_template(formula, args), partials)
    return rule


def _op_rule(op: str, arity: int, k: int) -> _Template:
    rule = _OP_RULES.get((op, arity, k))
    if rule is None:
        args = _dummies(arity)
        formula = _OP_SYMPY[op](*args)
        rule = _OP_RULES[(op, arity, k)] = _template(formula.diff(args[k]), args)
    return rule


# A slot computed by a table function: (its rule, its argument slots).
_Calls = dict[int, tuple[tuple[_Template, tuple[_Template, ...]], tuple[int, ...]]]


def _lower(tape: _Tape, expr: Expr, calls: _Calls) -> int:
    """Our AST onto the tape (functions by their SymPy formulas); the root's slot."""
    var_slot = {name: i for i, name in enumerate(expr.variables)}
    done: dict[int, int] = {}
    lowered: set[int] = set()
    for node in postorder(expr.root):
        kind = node.kind
        args = [done[id(a)] for a in node.args]
        if kind == "num":
            slot = tape.const(_number(node.value))  # type: ignore[arg-type]
        elif kind == "const":
            slot = tape.const(sympy.pi if node.value == "pi" else sympy.E)
        elif kind == "var":
            slot = var_slot[str(node.value)]
        elif kind == "call":
            rule = _call_rule(str(node.value), len(args))
            slot = rule[0].apply(tape, args)
            # The function's own derivative applies, unless the slot is already known
            # (the same subexpression written out): either is the same function.
            if tape.depends[slot] and slot not in lowered:
                calls[slot] = (rule, tuple(args))
        elif kind == "neg":
            slot = tape.neg(args[0])
        elif kind == "+":
            slot = tape.add(args[0], args[1])
        elif kind == "-":
            slot = tape.add(args[0], tape.neg(args[1]))
        elif kind == "*":
            slot = tape.mul(args[0], args[1])
        elif kind == "/":
            slot = tape.mul(args[0], tape.recip(args[1]))
        else:
            slot = tape.pow(args[0], args[1])
        done[id(node)] = slot
        lowered.add(slot)
    return done[id(expr.root)]


def _partials(tape: _Tape, slot: int, calls: _Calls) -> list[tuple[int, int]]:
    """(argument slot, slot of d slot / d argument) for each argument that varies."""
    depends = tape.depends
    if slot in calls:
        (_, rules), args = calls[slot]
        return [(a, r.apply(tape, args)) for a, r in zip(args, rules, strict=True) if depends[a]]
    op, args, _ = tape.instructions[slot - tape.n_inputs]
    if op == "add":
        return [(a, tape.one) for a in args if depends[a]]
    if op == "mul":
        return [(a, tape.mul(*args[:k], *args[k + 1 :])) for k, a in enumerate(args) if depends[a]]
    if op == "recip":
        return [(args[0], tape.neg(tape.pow(args[0], tape.const(sympy.Integer(-2)))))]
    if op == "pow":
        base, exponent = args
        out: list[tuple[int, int]] = []
        if depends[base]:
            # b * a**(b - 1): with a constant b, the exponent is folded (x**2 -> 2*x).
            lowered = tape.pow(base, tape.add(exponent, tape.minus_one))
            out.append((base, tape.mul(exponent, lowered)))
        if depends[exponent]:
            # SymPy's rule, b**e*(e'*log(b) + b'*e/b), is NaN for a constant base 0 (b'/b = 0/0).
            zero_base = tape.values.get(base) == 0
            d = tape.nan if zero_base else tape.mul(slot, tape.op("log", (base,)))
            out.append((exponent, d))
        return out
    return [
        (a, _op_rule(op, len(args), k).apply(tape, args)) for k, a in enumerate(args) if depends[a]
    ]


def _reverse(tape: _Tape, root: int, calls: _Calls) -> dict[int, int]:
    """Reverse mode from one slot: the adjoint slot of every slot it varies with.

    Slots are numbered in topological order, so visiting the reachable ones from the highest
    number down visits each after everything that uses it; the adjoints accumulate (a + a).
    """
    if not tape.depends[root]:
        return {}
    n = tape.n_inputs
    reached = {root}
    stack = [root]
    while stack:
        s = stack.pop()
        if s < n:
            continue
        args = calls[s][1] if s in calls else tape.instructions[s - n][1]
        for a in args:
            if tape.depends[a] and a not in reached:
                reached.add(a)
                stack.append(a)
    adjoint = {root: tape.one}
    for s in sorted(reached, reverse=True):
        g = adjoint.get(s)
        if g is None or s < n:
            continue
        for a, d in _partials(tape, s, calls):
            term = tape.mul(g, d)
            if term == tape.zero:
                continue
            prev = adjoint.get(a)
            adjoint[a] = term if prev is None else tape.add(prev, term)
    return adjoint


def compile_derivatives(d: Derivatives) -> Compiled:
    """Value, exact gradient and (order 2) Hessian of an expression as one instruction tape.

    Reverse mode over our AST: each table function contributes SymPy's own derivative of its
    formula, each operator the textbook rule, and the Hessian is reverse mode again over the
    gradient's instructions (each differentiated by SymPy's rule for it).  The tape is
    hash-consed, so every distinct subexpression of value, gradient and Hessian is computed
    once.  No SymPy ``diff`` of the expression itself: that is what ``formulas()`` pays.
    """
    names = d.expr.variables
    n = len(names)
    tape = _Tape(n)
    calls: _Calls = {}
    root = _lower(tape, d.expr, calls)
    adjoint = _reverse(tape, root, calls)
    gradient = [adjoint.get(i, tape.zero) for i in range(n)]
    outputs = [root, *gradient]
    if d.order == 2:
        rows: list[list[int]] = []
        for i, g in enumerate(gradient):
            second = _reverse(tape, g, calls)
            # Symmetric: the lower triangle repeats the upper one, slot for slot.
            rows.append([rows[j][i] if j < i else second.get(j, tape.zero) for j in range(n)])
        outputs += [h for row in rows for h in row]
    return tape.to_compiled(names, outputs, d.order)


# ----------------------------------------------------------- the point: domain and kinks


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
    kinks: list[Kink] = []
    with mpmath.workdps(EXACT_DPS):
        limit = mpmath.mpf(float(np.finfo(np.dtype(dtype)).max))  # converted once, not per node
        for node in postorder(expr.root):
            args = [values[id(a)] for a in node.args]
            try:
                v = _mp_node(node, args, point)
            except ZeroDivisionError:
                return PointAnalysis(None, f"division by zero in {_short(node)}", node.column)
            except (ArithmeticError, ValueError) as exc:  # mpmath giving up on a huge number
                return PointAnalysis(
                    None, f"{_short(node)} cannot be evaluated: {exc}", node.column
                )
            problem = _domain_problem(node, args, v)
            if problem is None and abs(v) > limit:
                problem = f"{_short(node)} = {_fmt(v)} overflows {dtype}"
            if problem is not None:
                return PointAnalysis(None, problem, node.column)
            kink = _kink(node, args) if node.kind in ("call", "**") else None
            if kink is not None:
                kinks.append(kink)
            values[id(node)] = v
        value = values[id(expr.root)]
    return PointAnalysis(value, None, 0, tuple(kinks))


def _mp_node(node: Node, args: list[Any], point: dict[str, float]) -> Any:
    kind = node.kind
    if kind == "num":
        return mpmath.mpf(node.value)  # type: ignore[arg-type]
    if kind == "const":
        return +mpmath.pi if node.value == "pi" else +mpmath.e
    if kind == "var":
        return mpmath.mpf(float(point[str(node.value)]))
    if kind == "neg":
        return -args[0]
    if kind == "call":
        try:
            return FUNCTIONS[str(node.value)].scalar(mpmath, *args)
        except ZeroDivisionError:  # log(x, 1): reported as outside the domain
            return mpmath.nan
    a, b = args
    if kind == "+":
        return a + b
    if kind == "-":
        return a - b
    if kind == "*":
        return a * b
    if kind == "/":
        if b == 0:
            raise ZeroDivisionError
        return a / b
    if a == 0 and b < 0:
        raise ZeroDivisionError
    return mpmath.power(a, b)


def _domain_problem(node: Node, args: list[Any], v: Any) -> str | None:
    # A function of real numbers with a complex result left the real line on the way, even
    # when the imaginary part cancels: log(x, x) at x = -1 is log(-1)/log(-1) = 1 + 0j.
    if isinstance(v, mpmath.mpc):
        bad = v.imag != 0 or node.kind == "call" or not mpmath.isfinite(v)
    else:
        bad = not mpmath.isfinite(v)
    if not bad:
        return None
    if node.kind == "call":
        fdef = FUNCTIONS[str(node.value)]
        shown = ", ".join(_fmt(a) for a in args)
        domain = fdef.domain
        if len(args) == 1:
            domain = domain.split("; ")[0]  # "; base ..." is about log(x, b) only
        where = f" ({domain})" if domain else ""
        return (
            f"{_short(node)} is undefined here: {node.value}({shown}) is outside the domain{where}"
        )
    if node.kind == "**":
        return (
            f"{_short(node)} is undefined here: ({_fmt(args[0])})**({_fmt(args[1])}) "
            "is not a real number"
        )
    return f"{_short(node)} is not a finite real number here"


def _kink(node: Node, args: list[Any]) -> Kink | None:
    if node.kind == "call":
        fdef = FUNCTIONS[str(node.value)]
        if fdef.kink is not None and fdef.kink(*args):
            return Kink(_short(node), str(node.value), node.column)
        return None
    if node.kind == "**":
        base, exponent = args
        # At base 0 the derivative of b**e is infinite for e < 1 (sqrt-like) and involves
        # log(0) with respect to a variable exponent.
        variable_exponent = any(n.kind == "var" for n in postorder(node.args[1]))
        if base == 0 and ((exponent != 0 and exponent < 1) or variable_exponent):
            return Kink(_short(node), "**", node.column)
    return None


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
