"""`engine.nn.utils`: gradient clipping and parameter vectors, with torch's formulas."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

import engine
from engine import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def _params(parameters: Any) -> list[Tensor]:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: Any = None) -> Tensor:
    """Scale the gradients so that their joint norm is at most max_norm; return the norm."""
    grads = [p.grad for p in _params(parameters) if p.grad is not None]
    if not grads:
        return engine.tensor(0.0)
    norm_type = float(norm_type)
    norms = [engine.linalg.vector_norm(g.detach(), norm_type) for g in grads]
    if norm_type == math.inf:
        total = engine.stack(norms).max()
    else:
        total = engine.linalg.vector_norm(engine.stack(norms), norm_type)
    if error_if_nonfinite and not np.isfinite(total.item()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    # torch: clamp(max_norm / (total + 1e-6), max=1), applied to every gradient
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    with engine.no_grad():
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: Any = None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    with engine.no_grad():
        for p in _params(parameters):
            if p.grad is not None:
                p.grad.copy_(p.grad.clamp(-clip_value, clip_value))


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened into one vector."""
    return engine.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of `vec` into the parameters."""
    start = 0
    with engine.no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[start:start + n].view_as(p))
            start += n
