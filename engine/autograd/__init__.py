"""Reverse-mode automatic differentiation: backward, grad, Function, gradcheck.

`engine.autograd.functional` (jacobian, hessian) is loaded by engine/__init__.py once the op
table exists, since it computes with ops.
"""

from __future__ import annotations

from engine._grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from engine.autograd._grad import backward, grad
from engine.autograd.function import Function, FunctionCtx, once_differentiable
from engine.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from engine.autograd.handwritten import numpy_gradcheck
from engine.autograd.variable import Variable

__all__ = [
    "Function",
    "FunctionCtx",
    "GradcheckError",
    "Variable",
    "backward",
    "enable_grad",
    "functional",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "no_grad",
    "numpy_gradcheck",
    "once_differentiable",
    "set_grad_enabled",
]
