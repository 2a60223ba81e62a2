"""Exact derivatives: the public face of three modules split by concern.

- gradcheck_cli/formulas.py: the AST as SymPy, and display formulas (built only when shown);
- gradcheck_cli/tape.py: the exact tape (value, gradient, Hessian; float or 40 digits);
- gradcheck_cli/point.py: point analysis (domains, kinks, one-sided derivatives).

Kinks follow the engine's (PyTorch's) conventions so that "exact" means "what a correct
engine returns" (gradcheck_cli/sympy_functions.py has the functions that encode them).
"""

from __future__ import annotations

from gradcheck_cli.formulas import Derivatives, differentiate, to_sympy
from gradcheck_cli.point import Kink, PointAnalysis, analyze_point, one_sided
from gradcheck_cli.sympy_functions import RealAbs, Relu, Sign
from gradcheck_cli.tape import EXACT_DPS, Compiled, Evaluation, compile_derivatives

__all__ = [
    "EXACT_DPS",
    "Compiled",
    "Derivatives",
    "Evaluation",
    "Kink",
    "PointAnalysis",
    "RealAbs",
    "Relu",
    "Sign",
    "analyze_point",
    "compile_derivatives",
    "differentiate",
    "one_sided",
    "to_sympy",
]
