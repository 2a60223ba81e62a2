"""SymPy functions with the engine's (torch's) derivatives, and the namespace the table sees.

SymPy's own Abs, sign, floor and Max differentiate to sign, DiracDelta, an unevaluated
Derivative and Heaviside(0) = 1/2: what "exact" must mean here is what a correct engine
returns, so the functions with kinks are ours: abs'(0) = sign(0) = 0, sign' = floor' = ceil'
= 0, relu'(0) = 0, leaky_relu'(0) = the slope, elu'(0) = alpha, and clamp passes the gradient
at its bounds (torch's clamp_backward_min_max for the bounds themselves).
"""

from __future__ import annotations

from typing import Any

import mpmath
import sympy

from gradcheck_cli.sympy_startup import defer_tensor_module

defer_tensor_module()  # before the first sum SymPy evaluates: see sympy_startup

__all__ = ["NAMESPACE", "PIECEWISE", "SympyNamespace"]

_H = sympy.Heaviside


class _Real(sympy.Function):
    """A real-valued function printed as ``name(args)``."""

    _name = ""

    def _eval_is_extended_real(self) -> bool:
        return True

    def _sympystr(self, printer: Any) -> str:
        return f"{self._name}({', '.join(printer._print(a) for a in self.args)})"


class RealAbs(_Real):
    """|x| for a real argument, with the engine's derivative sign(x) (so abs'(0) = 0)."""

    nargs = 1
    _name = "abs"

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

    def _eval_is_extended_nonnegative(self) -> bool:
        return True


class Sign(_Real):
    """sign(x) whose derivative is 0, as the engine's: abs''(x) is 0, with no DiracDelta."""

    nargs = 1
    _name = "sign"

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


class Relu(_Real):
    """max(x, 0) with the engine's derivative Heaviside(x, 0) (so relu'(0) = 0)."""

    nargs = 1
    _name = "relu"

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
        return _H(self.args[0], 0)


class _Step(_Real):
    """floor and ceil: piecewise constant, derivative 0 (torch's FloorBackward0)."""

    nargs = 1
    _sympy_func: Any = None

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_number:
            return cls._sympy_func(x)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero


class Floor(_Step):
    _name = "floor"
    _sympy_func = sympy.floor


class Ceil(_Step):
    _name = "ceil"
    _sympy_func = sympy.ceiling


class Cbrt(_Real):
    """The real cube root (SymPy's cbrt is the principal one, complex for x < 0)."""

    nargs = 1
    _name = "cbrt"

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_Rational:
            return sympy.real_root(x, 3)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 1 / (3 * Cbrt(self.args[0]) ** 2)

    # evalf at a number (Max and Min compare their arguments numerically: max(x, cbrt(pi)))
    _imp_ = staticmethod(lambda x: mpmath.sign(x) * mpmath.cbrt(abs(mpmath.mpf(x))))


class Expm1(_Real):
    """exp(x) - 1, printed and evaluated as one function (accurate near 0)."""

    nargs = 1
    _name = "expm1"

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:
        if x.is_zero:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.exp(self.args[0])

    _imp_ = staticmethod(lambda x: mpmath.expm1(mpmath.mpf(x)))  # evalf, as Cbrt's


class _PositivePart(_Real):
    """x if x > 0 else ``_below(x, p)``, for a parameter p; torch takes the second branch at 0."""

    nargs = 2

    @staticmethod
    def _below(x: sympy.Expr, p: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    @classmethod
    def eval(cls, x: sympy.Expr, p: sympy.Expr) -> sympy.Expr | None:
        # A number must evaluate: Max/Min refuse an argument they cannot compare.
        if x.is_extended_positive:
            return x
        if x.is_extended_nonpositive:
            return cls._below(x, p)
        return None


class Elu(_PositivePart):
    """x if x > 0 else alpha*(exp(x) - 1)."""

    _name = "elu"

    @staticmethod
    def _below(x: sympy.Expr, a: sympy.Expr) -> sympy.Expr:
        return a * Expm1(x)

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x, a = self.args
        if argindex == 1:
            return _H(x, 0) + _H(-x, 1) * a * sympy.exp(x)
        return _H(-x, 1) * Expm1(x)


class LeakyRelu(_PositivePart):
    """x if x > 0 else slope*x; torch's derivative at 0 is the slope."""

    _name = "leaky_relu"

    @staticmethod
    def _below(x: sympy.Expr, s: sympy.Expr) -> sympy.Expr:
        return s * x

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x, s = self.args
        if argindex == 1:
            return _H(x, 0) + _H(-x, 1) * s
        return _H(-x, 1) * x


class Clamp(_Real):
    """min(max(x, lo), hi) with torch's gradients: x passes where lo <= x <= hi (bounds
    included), lo takes x < lo while lo < hi, hi takes x > hi, and all of it when hi < lo."""

    nargs = 3
    _name = "clamp"

    @classmethod
    def eval(cls, x: sympy.Expr, lo: sympy.Expr, hi: sympy.Expr) -> sympy.Expr | None:
        if x.is_number and lo.is_number and hi.is_number:
            return sympy.Min(sympy.Max(x, lo), hi)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        x, lo, hi = self.args
        if argindex == 1:
            return _H(x - lo, 1) * _H(hi - x, 1)
        if argindex == 2:
            return _H(lo - x, 0) * _H(hi - lo, 0)
        above, inverted = _H(x - hi, 0), _H(lo - hi, 0)
        return above + inverted - above * inverted


# Functions whose derivative is a convention at their kinks: never shown "simplified".
PIECEWISE = (RealAbs, Sign, Relu, Floor, Ceil, Elu, LeakyRelu, Clamp, sympy.Heaviside)


class SympyNamespace:
    """What the table's ``sympy`` column sees: SymPy plus the functions above."""

    RealAbs, Sign, Relu, Floor, Ceil = RealAbs, Sign, Relu, Floor, Ceil
    Cbrt, Expm1, Elu, LeakyRelu, Clamp = Cbrt, Expm1, Elu, LeakyRelu, Clamp

    def __getattr__(self, name: str) -> Any:
        return getattr(sympy, name)


NAMESPACE = SympyNamespace()
