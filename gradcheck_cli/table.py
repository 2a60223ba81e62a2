"""THE table of the expression language: every operator and function, one row each.

A row holds every implementation of its operation side by side, and every consumer is a fold
of the tree over one column: the printer (``text``), constant folding and the numeric witness
(``scalar`` with math or a complex namespace), the lowering to the engine (``engine``), the
SymPy formula (``sympy``), the exact tape (``tape``, by default the SymPy formula's own
derivative), the point analysis (``scalar`` with mpmath, ``domain``, ``kink``) and the complex
probe (``smooth``).  Adding a function is one row; tests/gradcheck_cli/test_table.py holds
every row to every column.

Columns take their library as the first argument (``E`` the engine, ``S`` SymPy plus our
kink-aware functions, ``m`` a math-like namespace from gradcheck_cli/scalars.py, ``T`` the
tape), so this module imports none of them: ``gradcheck --help`` reads it and stays fast.

The ML activations lower to engine.nn.functional (torch.nn.functional's rows).
Kinks follow torch: abs'(0) = sign' = floor' = ceil' = 0, relu'(0) = 0, leaky_relu'(0) = the
slope, elu'(0) = alpha, clamp passes the gradient at its bounds, min/max split ties 0.5/0.5,
atan2's derivative at the origin is 0 (the origin is outside its domain here: no angle).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALIASES",
    "ATOM_PREC",
    "MATH",
    "Reciprocals",
    "FUNCTIONS",
    "NEG_PREC",
    "OPERATORS",
    "ROWS",
    "SPELLINGS",
    "UNSUPPORTED",
    "OpRow",
    "canonical",
]

# Printing precedence: atoms and calls 6, ** 5 (right-assoc), unary minus 4, * / 3, + - 2.
ATOM_PREC = 6
NEG_PREC = 4
# A kink counts as "here" when its argument is zero up to float64 rounding of the inputs.
KINK_TOL = 1e-13

Printed = tuple[str, int]  # (text, precedence)


@dataclass(frozen=True)
class OpRow:
    """One operation of the language and every implementation of it, side by side.

    ``engine(E, *args)``: engine ops (tensors; literal arguments at ``literals`` positions
    arrive as Python numbers).  ``sympy(S, *exprs)``: the SymPy formula.  ``scalar(m, *xs)``:
    the value with a math-like namespace (math, the complex probe's, mpmath, NumPy scalars).
    ``tape(T, *slots)``: the row on the exact tape.  ``text(parts)``: printing, from the
    children's (text, precedence).  ``domain(*xs)``: true where the real value is defined;
    ``kink(xs, varies)``: true where it is not differentiable (``varies``: which arguments
    depend on a variable).  ``smooth``: analytic, so the complex step is valid.  ``heads``:
    the SymPy functions whose tape instruction this row evaluates.
    """

    name: str
    arity: tuple[int, ...]
    engine: Callable[..., Any]
    sympy: Callable[..., Any]
    scalar: Callable[..., Any]
    tape: Callable[..., Any]
    text: Callable[[Sequence[Printed]], Printed]
    domain: Callable[..., bool]
    kink: Callable[[Sequence[Any], Sequence[bool]], bool]
    domain_text: str = ""
    smooth: bool = True
    variadic: bool = False  # takes arity[-1] or more arguments
    literals: tuple[int, ...] = ()  # arguments the engine takes as Python numbers if literal
    fixed: tuple[int, ...] = ()  # arguments that must be literal numbers
    heads: tuple[str, ...] = ()
    operator: bool = False  # + - * / ** neg: written with symbols, not called
    spellable: bool = True  # users can type it (false: tape-only rows such as Heaviside)
    prec: int = ATOM_PREC
    op_name: str = ""  # the engine op a trace shows (add, mul...); a function's own name
    scalar_attr: str = ""  # the scalar column is just the namespace's function of this name
    plain: Callable[..., Any] | None = None  # the scalar column, needing no namespace

    def scalar_with(self, ns: Any) -> Callable[..., Any]:
        """The scalar column with the namespace bound once, for evaluators that run the row
        many times: the namespace's own function where the row is spelled so there."""
        if self.plain is not None:
            return self.plain
        found = getattr(ns, self.scalar_attr, None) if self.scalar_attr else None
        return found if found is not None else functools.partial(self.scalar, ns)

    def accepts(self, n: int) -> bool:
        """Whether the row takes n arguments."""
        return n in self.arity or (self.variadic and n >= self.arity[-1])

    def arity_text(self) -> str:
        """'1 argument', '1 or 2 arguments', 'at least 2 arguments'."""
        if self.variadic:
            return f"at least {self.arity[-1]} arguments"
        want = " or ".join(str(n) for n in self.arity)
        return f"{want} argument{'' if self.arity == (1,) else 's'}"


# ------------------------------------------------------------------------------ printing


def _call_text(name: str) -> Callable[[Sequence[Printed]], Printed]:
    def text(parts: Sequence[Printed]) -> Printed:
        return f"{name}({', '.join(p[0] for p in parts)})", ATOM_PREC

    return text


def _infix(symbol: str, prec: int, spaced: bool) -> Callable[[Sequence[Printed]], Printed]:
    joint = f" {symbol} " if spaced else symbol

    def text(parts: Sequence[Printed]) -> Printed:
        (lt, lp), (rt, rp) = parts
        left = lt if lp >= prec else f"({lt})"
        # Left-associative: an equal-precedence right operand keeps its parentheses, and a
        # negated right operand gets them for readability (a - (-b), not a - -b).
        right = rt if rp > prec and rp != NEG_PREC else f"({rt})"
        return f"{left}{joint}{right}", prec

    return text


def _power_text(parts: Sequence[Printed]) -> Printed:
    (lt, lp), (rt, rp) = parts
    # Right-associative: the left side needs parentheses for anything but an atom.
    left = lt if lp > 5 else f"({lt})"
    right = rt if rp >= 5 else f"({rt})"
    return f"{left}**{right}", 5


def _neg_text(parts: Sequence[Printed]) -> Printed:
    text, prec = parts[0]
    return "-" + (text if prec >= NEG_PREC else f"({text})"), NEG_PREC


# ------------------------------------------------------------------- domains and kinks


def _everywhere(*xs: Any) -> bool:
    return True


def _never(xs: Sequence[Any], varies: Sequence[bool]) -> bool:
    return False


def _near_zero(a: Any) -> bool:
    return abs(a) <= KINK_TOL


def _tie(a: Any, b: Any) -> bool:
    return abs(a - b) <= KINK_TOL * max(1, abs(a), abs(b))


def _at(predicate: Callable[..., bool]) -> Callable[[Sequence[Any], Sequence[bool]], bool]:
    """A kink that depends on the argument values only."""

    def kink(xs: Sequence[Any], varies: Sequence[bool]) -> bool:
        return bool(predicate(*xs))

    return kink


def _is_integer(v: Any) -> bool:
    return v == math.floor(v) if abs(v) < 2**62 else True


def _pow_domain(a: Any, b: Any) -> bool:
    return a > 0 or (a == 0 and b >= 0) or (a < 0 and _is_integer(b))


def _pow_kink(xs: Sequence[Any], varies: Sequence[bool]) -> bool:
    # At base 0 the derivative of b**e is infinite for e < 1 (sqrt-like) and involves log(0)
    # with respect to a variable exponent.
    base, exponent = xs
    return base == 0 and ((exponent != 0 and exponent < 1) or varies[1])


def _extreme_kink(xs: Sequence[Any], varies: Sequence[bool]) -> bool:
    # Not differentiable where the winner ties with another argument.
    top = sorted(xs, reverse=True)
    low = sorted(xs)
    return _tie(top[0], top[1]) or _tie(low[0], low[1])


def _clamp_kink(xs: Sequence[Any], varies: Sequence[bool]) -> bool:
    x, lo, hi = xs
    return _tie(x, lo) or _tie(x, hi) or _tie(lo, hi)


def _on_integer(x: Any) -> bool:
    return abs(x - round(x)) <= KINK_TOL * max(1, abs(x))


# ------------------------------------------------------------------------- scalar pieces


def _sigmoid_scalar(m: Any, x: Any) -> Any:
    # Two branches so that neither overflows: exp of a large positive number never happens.
    if x.real >= 0:
        return 1 / (1 + m.exp(-x))
    z = m.exp(x)
    return z / (1 + z)


def _softplus_scalar(m: Any, x: Any) -> Any:
    if x.real > 0:
        return x + m.log1p(m.exp(-x))
    return m.log1p(m.exp(x))


def _log(ns: Any, x: Any, b: Any = None) -> Any:
    """log(x), or log(x, b) = log(x) / log(b), in any namespace."""
    return ns.log(x) if b is None else ns.log(x) / ns.log(b)


def _log_domain(x: Any, b: Any = None) -> bool:
    return x > 0 and (b is None or (b > 0 and b != 1))


def _heaviside(m: Any, x: Any, h0: Any = 0.5) -> Any:
    return 1 if x > 0 else (0 if x < 0 else h0)


def _sign(m: Any, x: Any) -> Any:
    return 1 if x > 0 else (-1 if x < 0 else 0 * x)


def _chain(fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    """fn folded left over two or more arguments: min(a, b, c) = min(min(a, b), c)."""
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


def _elu_scalar(m: Any, x: Any, alpha: Any = 1.0) -> Any:
    return x if x > 0 else alpha * m.expm1(x)


def _leaky_scalar(m: Any, x: Any, slope: Any = 0.01) -> Any:
    return x if x > 0 else slope * x


# -------------------------------------------------------------------------- engine pieces


def _softplus_engine(E: Any, x: Any) -> Any:
    # log1p(exp(x)) overflows for large x; above 40 softplus(x) == x in float64.  clamp's
    # gradient is 1 up to and including the bound and relu takes over beyond it, so the
    # lowering is smooth (unlike relu(x) + log1p(exp(-|x|)), whose gradient at 0 is 0).
    return E.log1p(E.exp(E.clamp(x, max=40.0))) + E.relu(x - 40.0)


def _functional(E: Any) -> Any:
    """engine.nn.functional (torch.nn.functional): where the ML activations live."""
    return E.nn.functional


def _cbrt_engine(E: Any, x: Any) -> Any:
    # torch has no cbrt: the real cube root as sign(x) * |x|**(1/3), derivative |x|**(-2/3)/3.
    return E.sign(x) * E.abs(x) ** (1 / 3)


def _clamp_engine(E: Any, x: Any, lo: Any, hi: Any) -> Any:
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        return E.clamp(x, float(lo), float(hi))
    lo = lo if not isinstance(lo, (int, float)) else E.full_like(x, float(lo))
    hi = hi if not isinstance(hi, (int, float)) else E.full_like(x, float(hi))
    return E.clamp(x, lo, hi)


def _pow_engine(E: Any, a: Any, b: Any) -> Any:
    # A literal exponent stays a Python number, as in hand-written torch code (x ** 2): the
    # engine's scalar-exponent rule is the one users rely on.
    if isinstance(b, (int, float)):
        return a ** (int(b) if float(b).is_integer() else float(b))
    return a**b


# ------------------------------------------------------- the math-like namespace of floats


def min2(a: Any, b: Any) -> Any:
    """The smaller of two numbers (the first on a tie)."""
    return a if a <= b else b


def max2(a: Any, b: Any) -> Any:
    """The larger of two numbers (the first on a tie)."""
    return a if a >= b else b


class Reciprocals:
    """sec, csc and cot from a namespace's cos, sin and tan (math and NumPy lack them)."""

    @classmethod
    def sec(cls, x: Any) -> Any:
        return 1 / cls.cos(x)  # type: ignore[attr-defined]

    @classmethod
    def csc(cls, x: Any) -> Any:
        return 1 / cls.sin(x)  # type: ignore[attr-defined]

    @classmethod
    def cot(cls, x: Any) -> Any:
        return 1 / cls.tan(x)  # type: ignore[attr-defined]


class MATH(Reciprocals):
    """Python floats (math raises on domain errors; callers turn that into NaN)."""

    sin, cos, tan, asin, acos, atan, atan2 = (
        math.sin, math.cos, math.tan, math.asin, math.acos, math.atan, math.atan2
    )
    sinh, cosh, tanh, asinh, acosh, atanh = (
        math.sinh, math.cosh, math.tanh, math.asinh, math.acosh, math.atanh
    )
    exp, exp2, expm1, log, log2, log10, log1p = (
        math.exp, math.exp2, math.expm1, math.log, math.log2, math.log10, math.log1p
    )
    sqrt, cbrt, fabs, floor, ceil, erf, erfc, hypot, pow = (
        math.sqrt, math.cbrt, math.fabs, math.floor, math.ceil, math.erf, math.erfc,
        math.hypot, math.pow,
    )
    min2, max2 = staticmethod(min2), staticmethod(max2)


# ---------------------------------------------------------------------------- the rows


def _operator(
    name: str, op_name: str, arity: int, engine: Callable, sympy: Callable,
    scalar: Callable | None, tape: Callable, text: Callable, prec: int, **flags: Any,
) -> OpRow:
    """An operator row; scalar None: Python's own arithmetic, ``flags["plain"]``, in every
    namespace."""
    flags.setdefault("domain", _everywhere)
    flags.setdefault("kink", _never)
    if scalar is None:
        plain = flags["plain"]

        def scalar(m: Any, *xs: Any) -> Any:
            return plain(*xs)

    return OpRow(name, (arity,), engine, sympy, scalar, tape, text, operator=True, prec=prec,
                 op_name=op_name, **flags)


def _via_formula(name: str) -> Callable[..., Any]:
    """The default tape column: the row's SymPy formula and SymPy's derivatives of it."""

    def tape(T: Any, *slots: int) -> int:
        return T.formula(name, slots)

    return tape


def _via_chain(name: str) -> Callable[..., Any]:
    """n-ary min/max on the tape as the engine computes them: a left fold of the binary rule."""

    def tape(T: Any, *slots: int) -> int:
        return _chain(lambda a, b: T.formula(name, (a, b)), slots)

    return tape


def _function(
    name: str,
    engine: Callable | None = None,
    sympy: Callable | None = None,
    scalar: Callable | None = None,
    *,
    arity: tuple[int, ...] = (1,),
    heads: tuple[str, ...] | None = None,
    domain: Callable[..., bool] = _everywhere,
    kink: Callable[[Sequence[Any], Sequence[bool]], bool] = _never,
    **flags: Any,
) -> OpRow:
    """A function row; engine, SymPy and math-like namespaces all spell it `name` by default."""

    def same(ns: Any, *xs: Any) -> Any:
        return getattr(ns, name)(*xs)

    flags.setdefault("op_name", name)
    if scalar is None:
        flags["scalar_attr"] = name
    return OpRow(
        name,
        arity,
        engine or same,
        sympy or same,
        scalar or same,
        flags.pop("tape", None) or _via_formula(name),
        _call_text(name),
        domain,
        kink,
        heads=(name,) if heads is None else heads,
        **flags,
    )


def _tape_only(
    name: str, scalar: Callable, heads: tuple[str, ...], arity: tuple[int, ...]
) -> OpRow:
    """A function that appears in SymPy's derivatives only (Heaviside, DiracDelta)."""

    def refuse(*args: Any) -> Any:
        raise TypeError(f"{name} is a tape instruction, not a function of the language")

    def sympy(S: Any, *args: Any) -> Any:
        return getattr(S, heads[0])(*args)

    return OpRow(name, arity, refuse, sympy, scalar, refuse, _call_text(name), _everywhere,
                 _never, heads=heads, spellable=False, smooth=False, op_name=name)


_UNIT = "-1 <= x <= 1"

ROWS: dict[str, OpRow] = {
    r.name: r
    for r in (
        # ------------------------------------------------------------- operators
        _operator("+", "add", 2, lambda E, a, b: a + b, lambda S, a, b: a + b, None,
                  lambda T, a, b: T.add(a, b), _infix("+", 2, True), 2, plain=operator.add),
        _operator("-", "sub", 2, lambda E, a, b: a - b, lambda S, a, b: a - b, None,
                  lambda T, a, b: T.add(a, T.neg(b)), _infix("-", 2, True), 2,
                  plain=operator.sub),
        _operator("*", "mul", 2, lambda E, a, b: a * b, lambda S, a, b: a * b, None,
                  lambda T, a, b: T.mul(a, b), _infix("*", 3, False), 3, plain=operator.mul),
        _operator("/", "div", 2, lambda E, a, b: a / b, lambda S, a, b: a / b, None,
                  lambda T, a, b: T.mul(a, T.recip(b)), _infix("/", 3, False), 3,
                  domain=lambda a, b: b != 0, domain_text="denominator != 0",
                  plain=operator.truediv),
        _operator("**", "pow", 2, _pow_engine, lambda S, a, b: S.Pow(a, b),
                  lambda m, a, b: m.pow(a, b), lambda T, a, b: T.pow(a, b), _power_text, 5,
                  domain=_pow_domain, kink=_pow_kink, literals=(1,),
                  domain_text="base > 0, or an integer exponent, or base 0 and exponent >= 0"),
        _operator("neg", "neg", 1, lambda E, a: -a, lambda S, a: -a, None,
                  lambda T, a: T.neg(a), _neg_text, NEG_PREC, plain=operator.neg),
        # ------------------------------------------------------------ functions
        _function("sin"),
        _function("cos"),
        _function("tan", domain_text="cos(x) != 0"),
        _function("sec", engine=lambda E, x: 1 / E.cos(x), domain_text="cos(x) != 0"),
        _function("csc", engine=lambda E, x: 1 / E.sin(x), domain=lambda x: x != 0,
                  domain_text="sin(x) != 0"),
        _function("cot", engine=lambda E, x: 1 / E.tan(x), domain=lambda x: x != 0,
                  domain_text="sin(x) != 0"),
        _function("asin", domain=lambda x: -1 <= x <= 1, domain_text=_UNIT),
        _function("acos", domain=lambda x: -1 <= x <= 1, domain_text=_UNIT),
        _function("atan"),
        _function("atan2", arity=(2,), domain=lambda y, x: y != 0 or x != 0,
                  kink=_at(lambda y, x: _near_zero(y) and x < 0), smooth=False,
                  domain_text="(y, x) != (0, 0): no angle at the origin"),
        _function("sinh"),
        _function("cosh"),
        _function("tanh"),
        _function("asinh"),
        _function("acosh", domain=lambda x: x >= 1, domain_text="x >= 1"),
        _function("atanh", domain=lambda x: -1 < x < 1, domain_text="-1 < x < 1"),
        _function("exp"),
        _function("exp2", sympy=lambda S, x: S.Pow(2, x), heads=()),
        _function("expm1", sympy=lambda S, x: S.Expm1(x), heads=("Expm1",)),
        _function("log", _log, _log, _log, arity=(1, 2), domain=_log_domain,
                  domain_text="x > 0; base b > 0, b != 1"),
        _function("log2", sympy=lambda S, x: S.log(x, 2), heads=(), domain=lambda x: x > 0,
                  domain_text="x > 0"),
        _function("log10", sympy=lambda S, x: S.log(x, 10), heads=(), domain=lambda x: x > 0,
                  domain_text="x > 0"),
        _function("log1p", sympy=lambda S, x: S.log(1 + x), heads=(), domain=lambda x: x > -1,
                  domain_text="x > -1"),
        _function("sqrt", kink=_at(_near_zero), domain=lambda x: x >= 0, domain_text="x >= 0",
                  heads=()),
        _function("cbrt", engine=_cbrt_engine, sympy=lambda S, x: S.Cbrt(x), heads=("Cbrt",),
                  kink=_at(_near_zero), smooth=False),
        _function("square", engine=lambda E, x: x**2, sympy=lambda S, x: x**2,
                  scalar=lambda m, x: x * x, heads=()),
        _function("abs", sympy=lambda S, x: S.RealAbs(x), scalar=lambda m, x: m.fabs(x),
                  heads=("RealAbs", "Abs"), kink=_at(_near_zero), smooth=False),
        _function("sign", scalar=_sign, sympy=lambda S, x: S.Sign(x), heads=("Sign", "sign"),
                  kink=_at(_near_zero), smooth=False),
        _function("floor", sympy=lambda S, x: S.Floor(x), heads=("Floor",),
                  kink=_at(_on_integer), smooth=False),
        _function("ceil", sympy=lambda S, x: S.Ceil(x), heads=("Ceil",),
                  kink=_at(_on_integer), smooth=False),
        _function("erf"),
        _function("erfc"),
        _function("hypot", arity=(2,), sympy=lambda S, x, y: S.sqrt(x**2 + y**2), heads=(),
                  kink=_at(lambda x, y: _near_zero(x) and _near_zero(y))),
        _function("sigmoid", sympy=lambda S, x: 1 / (1 + S.exp(-x)), scalar=_sigmoid_scalar,
                  heads=()),
        _function("relu", sympy=lambda S, x: S.Relu(x),
                  scalar=lambda m, x: x if x > 0 else 0 * x, heads=("Relu",),
                  kink=_at(_near_zero), smooth=False),
        _function("softplus", engine=_softplus_engine, sympy=lambda S, x: S.log(1 + S.exp(x)),
                  scalar=_softplus_scalar, heads=()),
        _function("gelu", engine=lambda E, x: _functional(E).gelu(x),
                  sympy=lambda S, x: x * (1 + S.erf(x / S.sqrt(2))) / 2,
                  scalar=lambda m, x: x * (1 + m.erf(x / m.sqrt(2))) / 2, heads=()),
        _function("silu", engine=lambda E, x: _functional(E).silu(x),
                  sympy=lambda S, x: x / (1 + S.exp(-x)),
                  scalar=lambda m, x: x * _sigmoid_scalar(m, x), heads=()),
        _function("elu", engine=lambda E, x, a=1.0: _functional(E).elu(x, alpha=float(a)),
                  sympy=lambda S, x, a=1.0: S.Elu(x, a),
                  scalar=_elu_scalar, arity=(1, 2), heads=("Elu",), literals=(1,), fixed=(1,),
                  kink=_at(lambda x, a=1.0: _near_zero(x) and a != 1), smooth=False),
        _function("leaky_relu",
                  engine=lambda E, x, s=0.01: _functional(E).leaky_relu(x, float(s)),
                  sympy=lambda S, x, s=0.01: S.LeakyRelu(x, s), scalar=_leaky_scalar,
                  arity=(1, 2), heads=("LeakyRelu",), literals=(1,), fixed=(1,),
                  kink=_at(lambda x, s=0.01: _near_zero(x) and s != 1), smooth=False),
        _function("softsign", engine=lambda E, x: _functional(E).softsign(x),
                  sympy=lambda S, x: x / (1 + S.RealAbs(x)),
                  scalar=lambda m, x: x / (1 + m.fabs(x)), heads=(), smooth=False),
        _function("logsigmoid", engine=lambda E, x: _functional(E).logsigmoid(x),
                  sympy=lambda S, x: -S.log(1 + S.exp(-x)),
                  scalar=lambda m, x: -_softplus_scalar(m, -x), heads=()),
        _function("min", engine=lambda E, *a: _chain(E.minimum, a),
                  sympy=lambda S, *a: S.Min(*a), scalar=lambda m, *a: _chain(m.min2, a),
                  arity=(2,), variadic=True, heads=("Min",), tape=_via_chain("min"),
                  kink=_extreme_kink, smooth=False),
        _function("max", engine=lambda E, *a: _chain(E.maximum, a),
                  sympy=lambda S, *a: S.Max(*a), scalar=lambda m, *a: _chain(m.max2, a),
                  arity=(2,), variadic=True, heads=("Max",), tape=_via_chain("max"),
                  kink=_extreme_kink, smooth=False),
        _function("clamp", engine=_clamp_engine, sympy=lambda S, x, lo, hi: S.Clamp(x, lo, hi),
                  scalar=lambda m, x, lo, hi: m.min2(m.max2(x, lo), hi), arity=(3,),
                  heads=("Clamp",), literals=(1, 2), kink=_clamp_kink, smooth=False),
        # ------------------------------------------- in SymPy's derivatives only
        _tape_only("heaviside", _heaviside, ("Heaviside",), (1, 2)),
        _tape_only("delta", lambda m, x, *k: 0 * x, ("DiracDelta",), (1, 2)),
    )
}

OPERATORS: dict[str, OpRow] = {k: r for k, r in ROWS.items() if r.operator}
FUNCTIONS: dict[str, OpRow] = {
    k: r for k, r in ROWS.items() if not r.operator and r.spellable
}

# Spellings people type -> the canonical row (NumPy, SymPy, torch and textbook names).
ALIASES: dict[str, str] = {
    "ln": "log",
    "Abs": "abs",
    "fabs": "abs",
    "absolute": "abs",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "arctan2": "atan2",
    "arcsinh": "asinh",
    "arccosh": "acosh",
    "arctanh": "atanh",
    "power": "**",
    "pow": "**",
    "ceiling": "ceil",
    "Min": "min",
    "Max": "max",
    "clip": "clamp",
    "sgn": "sign",
    "swish": "silu",
    "expit": "sigmoid",
}

# Every name that calls a row: canonical names and aliases.
SPELLINGS: frozenset[str] = frozenset(FUNCTIONS) | frozenset(ALIASES)

# Functions people write that the language does not have: never "corrected" into another.
UNSUPPORTED: dict[str, str] = {
    name: hint
    for names, hint in (
        ("acot arccot", "write atan(1/x)"),
        ("asec arcsec", "write acos(1/x)"),
        ("acsc arccsc", "write asin(1/x)"),
        ("sech", "write 1/cosh(x)"),
        ("csch", "write 1/sinh(x)"),
        ("coth", "write 1/tanh(x)"),
        ("acoth arccoth", "write atanh(1/x)"),
        ("sinc", "write sin(x)/x"),
        ("logit", "write log(x/(1 - x))"),
        ("exp10", "write 10**x"),
        ("cosine sine tangent", "the language spells it sin, cos, tan"),
        ("round trunc frac mod fmod rem", "not differentiable, and not in the language"),
        ("lgamma gammaln digamma erfinv erfcinv factorial", "not in the language"),
    )
    for name in names.split()
}


def canonical(spelling: str) -> str | None:
    """The row a function name calls (``ln`` -> ``log``, ``power`` -> ``**``), or None."""
    if spelling in FUNCTIONS:
        return spelling
    return ALIASES.get(spelling)
