"""The math-like namespaces the table's ``scalar`` column runs with.

MATH (stdlib only) lives in gradcheck_cli/table.py, so that parsing imports no NumPy.
One vocabulary (math's names, plus sec/csc/cot, exp2, cbrt, min2/max2) over four number
systems: Python floats (constant folding, the numeric witness), complex numbers (the complex
step), mpmath (exact evaluation, point analysis) and NumPy scalars (the float32/float64 tape,
IEEE semantics: inf and NaN rather than exceptions).
"""

from __future__ import annotations

import cmath
import math
from typing import Any

import mpmath
import numpy as np

from gradcheck_cli.table import MATH, Reciprocals, max2, min2

__all__ = ["COMPLEX", "MATH", "MPMATH", "NUMPY"]



class COMPLEX(Reciprocals):
    """Complex numbers, for the complex step of the smooth rows (analytic continuations)."""

    sin, cos, tan = cmath.sin, cmath.cos, cmath.tan
    asin, acos, atan = cmath.asin, cmath.acos, cmath.atan
    sinh, cosh, tanh, asinh, acosh, atanh = (
        cmath.sinh, cmath.cosh, cmath.tanh, cmath.asinh, cmath.acosh, cmath.atanh
    )
    exp, log, log10, sqrt = cmath.exp, cmath.log, cmath.log10, cmath.sqrt

    @staticmethod
    def log1p(z: complex) -> complex:
        # Precise enough for the complex step: the imaginary part, h / (1 + x), is exact.
        return cmath.log(1 + z)

    @staticmethod
    def expm1(z: complex) -> complex:
        return cmath.exp(z) - 1

    @staticmethod
    def exp2(z: complex) -> complex:
        return cmath.exp(z * math.log(2))

    @staticmethod
    def log2(z: complex) -> complex:
        return cmath.log(z) / math.log(2)

    @staticmethod
    def pow(a: complex, b: complex) -> complex:
        return a**b

    @staticmethod
    def hypot(a: complex, b: complex) -> complex:
        return cmath.sqrt(a * a + b * b)

    @staticmethod
    def erf(z: complex) -> complex:
        return complex(mpmath.erf(mpmath.mpc(z)))

    @staticmethod
    def erfc(z: complex) -> complex:
        return complex(mpmath.erfc(mpmath.mpc(z)))



def _mp_pow(b: Any, e: Any) -> Any:
    if b == 0 and e < 0:
        return mpmath.inf
    return mpmath.power(b, e)


def _mp_cbrt(x: Any) -> Any:
    # mpmath's cbrt is the principal root (complex for x < 0); the language's is real.
    return -mpmath.cbrt(-x) if x < 0 else mpmath.cbrt(x)


class MPMATH:
    """mpmath at the working precision: a complex result marks a point outside the domain."""

    sin, cos, tan = mpmath.sin, mpmath.cos, mpmath.tan
    sec, csc, cot = mpmath.sec, mpmath.csc, mpmath.cot
    asin, acos, atan, atan2 = mpmath.asin, mpmath.acos, mpmath.atan, mpmath.atan2
    sinh, cosh, tanh, asinh, acosh, atanh = (
        mpmath.sinh, mpmath.cosh, mpmath.tanh, mpmath.asinh, mpmath.acosh, mpmath.atanh
    )
    exp, expm1, log, log10, log1p = mpmath.exp, mpmath.expm1, mpmath.log, mpmath.log10, mpmath.log1p
    sqrt, fabs, floor, ceil, erf, erfc, hypot = (
        mpmath.sqrt, mpmath.fabs, mpmath.floor, mpmath.ceil, mpmath.erf, mpmath.erfc, mpmath.hypot
    )
    pow, cbrt = staticmethod(_mp_pow), staticmethod(_mp_cbrt)
    min2, max2 = staticmethod(min2), staticmethod(max2)

    @staticmethod
    def exp2(x: Any) -> Any:
        return mpmath.power(2, x)

    @staticmethod
    def log2(x: Any) -> Any:
        return mpmath.log(x, 2)


def _np_special(fn: Any) -> Any:
    def f(x: Any) -> Any:
        return type(x)(fn(float(x))) if isinstance(x, np.floating) else np.float64(fn(float(x)))

    return staticmethod(f)


class NUMPY(Reciprocals):
    """NumPy scalars (np.float64, np.float32): IEEE results, no exceptions."""

    sin, cos, tan, asin, acos, atan, atan2 = (
        np.sin, np.cos, np.tan, np.arcsin, np.arccos, np.arctan, np.arctan2
    )
    sinh, cosh, tanh, asinh, acosh, atanh = (
        np.sinh, np.cosh, np.tanh, np.arcsinh, np.arccosh, np.arctanh
    )
    exp, exp2, expm1, log, log2, log10, log1p = (
        np.exp, np.exp2, np.expm1, np.log, np.log2, np.log10, np.log1p
    )
    sqrt, cbrt, fabs, floor, ceil, hypot, pow = (
        np.sqrt, np.cbrt, np.abs, np.floor, np.ceil, np.hypot, np.power
    )
    min2, max2 = np.minimum, np.maximum
    erf, erfc = _np_special(math.erf), _np_special(math.erfc)

