"""Exact derivatives with SymPy, built from our AST (never from text).

The gradient and Hessian are SymPy expressions; for evaluation they are compiled once per
expression, through common-subexpression elimination, into a flat instruction tape that a
tiny interpreter runs either in float64 (NumPy scalars, IEEE semantics) or at high precision
(mpmath).  Nothing is generated as Python source, so no user text can reach ``exec``.

Kinks follow the engine's (PyTorch's) conventions so that "exact" means "what a correct
engine returns": abs'(0) = sign(0) = 0, relu'(0) = 0 (Heaviside with H(0) = 0), and min/max
split ties 0.5/0.5 (SymPy's Heaviside(0) = 1/2 in the derivative of Max/Min).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    """The expression, its gradient and (order 2) Hessian as SymPy expressions."""

    expr: Expr
    symbols: tuple[sympy.Symbol, ...]
    value: sympy.Expr
    gradient: tuple[sympy.Expr, ...]
    hessian: tuple[tuple[sympy.Expr, ...], ...] | None = None

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
    """Exact gradient (and Hessian when order == 2) of a parsed expression."""
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    symbols: dict[str, sympy.Symbol] = {}
    value = to_sympy(expr, symbols)
    syms = tuple(symbols.get(v) or _symbol(v) for v in expr.variables)
    gradient = tuple(value.diff(s) for s in syms)
    hessian = None
    if order == 2:
        rows = []
        for i, gi in enumerate(gradient):
            row = []
            for j, s in enumerate(syms):
                # Symmetric: reuse the upper triangle rather than differentiate twice.
                row.append(rows[j][i] if j < i else gi.diff(s))
            rows.append(tuple(row))
        hessian = tuple(rows)
    return Derivatives(expr, syms, value, gradient, hessian)


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
            except (ZeroDivisionError, ValueError, OverflowError):
                v = nan
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


def compile_derivatives(d: Derivatives) -> Compiled:
    """Flatten value, gradient and Hessian into one tape, each distinct subexpression once.

    This is common-subexpression elimination by structural hashing over all outputs together
    (the Hessian reuses the gradient's terms, the gradient the value's).  ``sympy.cse`` finds
    the same shared subtrees but costs more than the whole evaluation it saves here.
    """
    outputs_exprs: list[sympy.Expr] = [d.value, *d.gradient]
    if d.hessian is not None:
        outputs_exprs += [h for row in d.hessian for h in row]
    compiler = _TapeCompiler(d.symbols)
    outputs = [compiler.compile(e) for e in outputs_exprs]
    order = 2 if d.hessian is not None else 1
    return Compiled(d.expr.variables, compiler.instructions, outputs, order, compiler.constants)


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
        if e.is_Pow:
            exponent = e.args[1]
            if exponent == sympy.S.Half:
                return self._emit("sqrt", (args[0],))
            if exponent == -1:
                return self._emit("recip", (args[0],))
            return self._emit("pow", args)
        name = _SYMPY_FUNCS.get(e.func)
        if name is None:
            raise ValueError(f"internal error: no evaluator for {e.func}")
        return self._emit(name, args)


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
    limit = float(np.finfo(np.dtype(dtype)).max)
    values: dict[int, Any] = {}
    kinks: list[Kink] = []
    with mpmath.workdps(EXACT_DPS):
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
            kink = _kink(node, args)
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
    bad = isinstance(v, mpmath.mpc) and v.imag != 0
    bad = bad or mpmath.isnan(v) or mpmath.isinf(v)
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
    if isinstance(v, mpmath.mpc):
        return v.imag == 0
    return not (isinstance(v, float) and math.isnan(v))
