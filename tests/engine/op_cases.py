"""One differentiable call per row of the op table, shared by the op tests.

Each case is (function of tensors, input shapes, domain). Inputs are drawn from the
domain in float64; `fn` uses only public engine calls, so the same lambda runs under
torch for the differential tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POS = (0.2, 2.0)  # strictly positive inputs (log, sqrt, ...)
UNIT = (-0.9, 0.9)  # inside (-1, 1) (asin, acos)
ANY = (-2.0, 2.0)


@dataclass(frozen=True)
class OpCase:
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    domain: tuple[float, float] = ANY
    smooth: bool = True  # whether a second derivative check makes sense at random points
    rtol: float = 1e-6  # against finite differences (looser where the op rounds to float32)


def _mask(t: Any) -> Any:
    return t > 0


CASES: dict[str, OpCase] = {
    "add": OpCase(lambda a, b: a + b, ((2, 3), (3,))),
    "sub": OpCase(lambda a, b: a - b, ((2, 1), (1, 3))),
    "rsub": OpCase(lambda a: 1.5 - a, ((3,),)),
    "mul": OpCase(lambda a, b: a * b, ((2, 3), (2, 1))),
    "div": OpCase(lambda a, b: a / b, ((3,), (2, 3)), POS),
    "neg": OpCase(lambda a: -a, ((2, 2),)),
    "reciprocal": OpCase(lambda a: 2.0 / a, ((3,),), POS),
    "pow": OpCase(lambda a: a ** 3, ((3,),)),
    "pow_tensor": OpCase(lambda a, b: a ** b, ((3,), (2, 3)), POS),
    "rpow": OpCase(lambda a: 2.0 ** a, ((3,),)),
    "abs": OpCase(lambda a: a.abs(), ((4,),)),
    "sign": OpCase(lambda a: a.sign() * a, ((4,),)),
    "exp": OpCase(lambda a: a.exp(), ((3,),)),
    "log": OpCase(lambda a: a.log(), ((3,),), POS),
    "log1p": OpCase(lambda a: a.log1p(), ((3,),), POS),
    "sqrt": OpCase(lambda a: a.sqrt(), ((3,),), POS),
    "sin": OpCase(lambda a: a.sin(), ((3,),)),
    "cos": OpCase(lambda a: a.cos(), ((3,),)),
    "tan": OpCase(lambda a: a.tan(), ((3,),), UNIT),
    "asin": OpCase(lambda a: a.asin(), ((3,),), UNIT),
    "acos": OpCase(lambda a: a.acos(), ((3,),), UNIT),
    "atan": OpCase(lambda a: a.atan(), ((3,),)),
    "sinh": OpCase(lambda a: a.sinh(), ((3,),)),
    "cosh": OpCase(lambda a: a.cosh(), ((3,),)),
    "tanh": OpCase(lambda a: a.tanh(), ((3,),)),
    "sigmoid": OpCase(lambda a: a.sigmoid(), ((3,),)),
    "relu": OpCase(lambda a: a.relu(), ((5,),), smooth=False),
    "clamp": OpCase(lambda a: a.clamp(-0.5, 0.7), ((5,),), smooth=False),
    "clamp_tensor": OpCase(lambda a, lo, hi: a.clamp(lo, hi + 2.5), ((4,), (4,), (4,)),
                           smooth=False),
    "maximum": OpCase(lambda a, b: a.maximum(b), ((3,), (2, 3)), smooth=False),
    "minimum": OpCase(lambda a, b: a.minimum(b), ((3,), (2, 3)), smooth=False),
    "where": OpCase(lambda a, b: a.where(_mask(a), b), ((2, 3), (3,)), smooth=False),
    # Rounding to float32 makes tiny finite-difference steps meaningless: a linear case.
    "to": OpCase(lambda a: a.float() * 3.0, ((3,),), rtol=1e-4, smooth=False),
    "clone": OpCase(lambda a: a.clone(), ((3,),)),
    "sum": OpCase(lambda a: a.sum(), ((2, 3),)),
    "sum_dim": OpCase(lambda a: a.sum(dim=1, keepdim=False) ** 2, ((2, 3),)),
    "mean": OpCase(lambda a: a.mean(), ((2, 3),)),
    "mean_dim": OpCase(lambda a: a.mean(0, keepdim=True) ** 2, ((2, 3),)),
    "prod": OpCase(lambda a: a.prod(), ((2, 3),)),
    "prod_dim": OpCase(lambda a: a.prod(1), ((2, 3),)),
    "max": OpCase(lambda a: a.max(), ((2, 3),), smooth=False),
    "min": OpCase(lambda a: a.min(), ((2, 3),), smooth=False),
    "max_dim": OpCase(lambda a: a.max(1).values, ((2, 3),), smooth=False),
    "min_dim": OpCase(lambda a: a.min(0, keepdim=True).values, ((2, 3),), smooth=False),
    "dot": OpCase(lambda a, b: a @ b, ((3,), (3,))),
    "mv": OpCase(lambda a, b: a @ b, ((2, 3), (3,))),
    "mm": OpCase(lambda a, b: a @ b, ((2, 3), (3, 4))),
    "matmul": OpCase(lambda a, b: a @ b, ((2, 2, 3), (3, 4))),
    "view": OpCase(lambda a: a.view(3, 2) * 1.0, ((2, 3),)),
    "unsafe_view": OpCase(lambda a: a.t().reshape(6), ((2, 3),)),
    "squeeze": OpCase(lambda a: a.squeeze(), ((1, 3, 1),)),
    "squeeze_dim": OpCase(lambda a: a.squeeze(0), ((1, 3),)),
    "squeeze_dims": OpCase(lambda a: a.squeeze((0, 2)), ((1, 3, 1),)),
    "unsqueeze": OpCase(lambda a: a.unsqueeze(1), ((3,),)),
    "expand": OpCase(lambda a: a.expand(2, 3), ((1, 3),)),
    "transpose": OpCase(lambda a: a.transpose(0, 1), ((2, 3),)),
    "permute": OpCase(lambda a: a.permute(2, 0, 1), ((2, 3, 4),)),
    "select": OpCase(lambda a: a[1], ((3, 2),)),
    "slice": OpCase(lambda a: a[1:3], ((4, 2),)),
    "index": OpCase(lambda a: a[[0, 2, 0]], ((3, 2),)),
    "index_put_add": OpCase(lambda a: a[[1, 1, 0]] * a[[1, 1, 0]], ((3,),)),
    "copy_slices": OpCase(lambda a, b: _setitem(a, b), ((3, 2), (2,))),
    "cat": OpCase(lambda a, b: _cat(a, b), ((2, 3), (1, 3))),
    "stack": OpCase(lambda a, b: _stack(a, b), ((2, 3), (2, 3))),
    # The math functions of the expression language (issue 14).
    "asinh": OpCase(lambda a: a.asinh(), ((3,),)),
    "acosh": OpCase(lambda a: (a + 1.0).acosh(), ((3,),), POS),
    "atanh": OpCase(lambda a: a.atanh(), ((3,),), UNIT),
    "erf": OpCase(lambda a: a.erf(), ((3,),)),
    "erfc": OpCase(lambda a: a.erfc(), ((3,),)),
    "log2": OpCase(lambda a: a.log2(), ((3,),), POS),
    "log10": OpCase(lambda a: a.log10(), ((3,),), POS),
    "exp2": OpCase(lambda a: a.exp2(), ((3,),)),
    "expm1": OpCase(lambda a: a.expm1(), ((3,),)),
    "atan2": OpCase(lambda a, b: _lib(a).atan2(a, b), ((2, 3), (3,))),
    "hypot": OpCase(lambda a, b: _lib(a).hypot(a, b), ((3,), (2, 3))),
    "floor": OpCase(lambda a: a.floor() * a, ((4,),), smooth=False),
    "ceil": OpCase(lambda a: a.ceil() * a, ((4,),), smooth=False),
}


def _lib(t: Any) -> Any:
    import sys

    return sys.modules[type(t).__module__.split(".")[0]]


def _setitem(a: Any, b: Any) -> Any:
    c = a * 1.0
    c[1] = b
    return c


def _cat(a: Any, b: Any) -> Any:
    import sys

    lib = sys.modules[type(a).__module__.split(".")[0]]
    return lib.cat([a, b], dim=0)


def _stack(a: Any, b: Any) -> Any:
    import sys

    lib = sys.modules[type(a).__module__.split(".")[0]]
    return lib.stack([a, b], dim=1)
