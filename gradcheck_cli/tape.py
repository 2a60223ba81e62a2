"""The exact tape: value, gradient and Hessian of an expression as one instruction tape.

``compile_derivatives`` runs reverse mode over our AST straight onto a flat, hash-consed
instruction tape.  Each table function contributes SymPy's derivative of its own formula
(RealAbs, Relu, Max ... included), computed once per process on Dummy symbols; each operator
the textbook rule; the Hessian is reverse mode again over the gradient's instructions, one
sweep per variable, each instruction differentiated by SymPy's rule for it.  A tiny
interpreter runs the tape in float64/float32 (NumPy scalars, IEEE semantics) or at high
precision (mpmath), with the table's scalar column.  Nothing is generated as Python source,
so no user text can reach ``exec``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import sympy

from gradcheck_cli.expr import ROWS, Expr, Node, OpRow, fold
from gradcheck_cli.formulas import number
from gradcheck_cli.scalars import MPMATH, NUMPY
from gradcheck_cli.sympy_functions import NAMESPACE

if TYPE_CHECKING:
    from gradcheck_cli.formulas import Derivatives

__all__ = ["EXACT_DPS", "Compiled", "Evaluation", "compile_derivatives"]

# Working precision of "exact" evaluation: 40 decimal digits, ~133 bits.
EXACT_DPS = 40

# Instruction: (opcode, argument slots, payload).  Slots 0..n-1 hold the variables.
_Instr = tuple[str, tuple[int, ...], Any]

# SymPy function -> the table row that evaluates its tape instruction (sin, Heaviside...).
_HEADS: dict[Any, str] = {
    getattr(NAMESPACE, head): row.name for row in ROWS.values() for head in row.heads
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
        ns = MPMATH if backend == "mp" else NUMPY
        inf = mpmath.inf if backend == "mp" else backend(np.inf)
        nan = mpmath.nan if backend == "mp" else backend(np.nan)
        slots: list[Any] = list(inputs)
        if noise is not None:
            rng, eps = noise
            consts = [c * (1 + eps * rng.uniform(-1, 1)) for c in consts]
            slots = [v * (1 + eps * rng.uniform(-1, 1)) for v in slots]
        for op, args, payload in self.instructions:
            try:
                v = _step(op, args, payload, slots, consts, ns, inf)
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
    ns: Any,
    inf: Any,
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
        return ns.pow(slots[args[0]], slots[args[1]])
    if op == "recip":
        x = slots[args[0]]
        # IEEE semantics in both backends: 1/0 is inf (mpmath would raise).
        return 1 / x if x != 0 else inf
    return ROWS[op].scalar(ns, *(slots[a] for a in args))


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
        name = _HEADS.get(e.func)
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
    value = ROWS[op].sympy(NAMESPACE, *args)
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
def _call_rule(name: str, arity: int) -> tuple[_Template, tuple[_Template, ...]]:
    build = ROWS[name].sympy
    rule = _CALL_RULES.get((build, arity))
    if rule is None:
        args = _dummies(arity)
        formula = build(NAMESPACE, *args)
        partials = tuple(_template(formula.diff(a), args) for a in args)
        rule = _CALL_RULES[(build, arity)] = (_template(formula, args), partials)
    return rule


def _op_rule(op: str, arity: int, k: int) -> _Template:
    rule = _OP_RULES.get((op, arity, k))
    if rule is None:
        args = _dummies(arity)
        formula = ROWS[op].sympy(NAMESPACE, *args)
        rule = _OP_RULES[(op, arity, k)] = _template(formula.diff(args[k]), args)
    return rule


# A slot computed by a table function: (its rule, its argument slots).
_Calls = dict[int, tuple[tuple[_Template, tuple[_Template, ...]], tuple[int, ...]]]


class _Lowering:
    """What the table's ``tape`` column sees: the tape's arithmetic and ``formula``, which
    emits a function by its SymPy formula and records SymPy's partials for reverse mode."""

    def __init__(self, tape: _Tape, calls: _Calls):
        self.tape = tape
        self.calls = calls
        self.lowered: set[int] = set()
        self.add, self.mul, self.neg = tape.add, tape.mul, tape.neg
        self.recip, self.pow = tape.recip, tape.pow

    def formula(self, name: str, args: Sequence[int]) -> int:
        """The slot of table function `name` applied to argument slots."""
        rule = _call_rule(name, len(args))
        slot = rule[0].apply(self.tape, args)
        # The function's own derivative applies, unless the slot is already known (the same
        # subexpression written out): either is the same function.
        if self.tape.depends[slot] and slot not in self.lowered:
            self.calls[slot] = (rule, tuple(args))
        self.lowered.add(slot)
        return slot


def _lower(tape: _Tape, expr: Expr, calls: _Calls) -> int:
    """Our AST onto the tape, a fold over the table's tape column; the root's slot."""
    var_slot = {name: i for i, name in enumerate(expr.variables)}
    lowering = _Lowering(tape, calls)

    def leaf(node: Node) -> int:
        if node.kind == "num":
            return tape.const(number(node.value))  # type: ignore[arg-type]
        if node.kind == "const":
            return tape.const(sympy.pi if node.value == "pi" else sympy.E)
        return var_slot[str(node.value)]

    def interior(row: OpRow, node: Node, args: list[int]) -> int:
        slot = row.tape(lowering, *args)
        lowering.lowered.add(slot)
        return slot

    return fold(expr.root, leaf, interior)[id(expr.root)]


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


