"""numpy_gradcheck: a NumPy function's hand-written derivative against finite differences.

The same checker as gradcheck (numeric reference, verdict rule, failure table); the
analytic side is the user's `grad` (CONTRACT §3's shapes, see frameworks/_numpy.py), and a
failure names it with its file and line, and the output and input that disagree.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.autograd.frameworks import for_name
from engine.autograd.gradcheck import GradcheckError, _gradcheck, _Options

__all__ = ["numpy_gradcheck"]


def numpy_gradcheck(
    fn: Callable[..., Any],
    grad: Callable[..., Any],
    inputs: Any,
    *,
    requires_grad: Sequence[bool] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    fast_mode: bool = False,
    scale_tolerances: bool = True,
    projections: int = 4,
    seed: int = 0,
    batched: bool = False,
) -> bool:
    """Check grad(*inputs), fn's hand-written derivative, against finite differences of fn.

    fn takes NumPy arrays (and other constants) and returns one array. For each input that
    requires grad (requires_grad: one bool per input; default every floating array), grad
    returns the gradient (the input's shape) when fn's output is a scalar, else the
    Jacobian (output.shape + input.shape); a tuple when several inputs require grad.
    Tolerances, fast_mode and the verdict are gradcheck's; True, False with
    raise_exception=False, or GradcheckError naming grad and the pair that disagrees.
    float32 inputs get a float64 reference (fn and grad re-run on float64 copies).
    batched=True: fn broadcasts over a leading dimension of the inputs that require grad
    (a stack of points in one call), as gradcheck's batched.
    """
    # A contraction with zeros is zero: check_undefined_grad has nothing to learn.
    options = _Options.pick({**locals(), "check_undefined_grad": False})
    tupled = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)
    tupled = tuple(np.asarray(x) if isinstance(x, np.generic) else x for x in tupled)
    adapter = for_name("numpy", grad=grad, requires_grad=requires_grad)
    try:
        return _gradcheck(adapter, fn, tupled, options)
    except GradcheckError as exc:
        raise GradcheckError(
            f"{describe(grad)} disagrees with finite differences of {_name(fn)}:\n{exc}"
        ) from None


def _name(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def describe(grad: Callable[..., Any]) -> str:
    """'grad function mod:name (file.py:12)': where the hand-written derivative lives."""
    where = ""
    try:
        target = inspect.unwrap(grad)
        path = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
        if path:
            rel = os.path.relpath(path)
            where = f" ({path if rel.startswith('..') else rel}:{line})"
    except (OSError, TypeError, ValueError):
        pass
    return f"grad function {_name(grad)}{where}"
