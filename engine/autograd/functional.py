"""jacobian and hessian of a function of tensors, built on autograd.grad.

Loaded by engine/__init__.py after the op table, whose `stack` it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine._api import stack
from engine._grad_mode import enable_grad
from engine.autograd._grad import grad
from engine.tensor import Tensor, _wrap


def _as_tuple(x: Any) -> tuple[tuple, bool]:
    return ((x,), True) if isinstance(x, Tensor) else (tuple(x), False)


def jacobian(
    func: Callable[..., Any],
    inputs: Tensor | tuple[Tensor, ...],
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
) -> Any:
    """d func(inputs) / d inputs, shaped output.shape + input.shape, per output and input."""
    ins, single_in = _as_tuple(inputs)
    with enable_grad():
        ins = tuple(t.detach().requires_grad_(True) for t in ins)
        outs, single_out = _as_tuple(func(*ins))
        rows = []
        for out in outs:
            flat = out.reshape(-1)
            blocks = [np.zeros((flat.numel(), *t.shape), dtype=t._data.dtype) for t in ins]
            graph_blocks: list[list[Any]] = [[] for _ in ins]
            for k in range(flat.numel()):
                if not flat._requires_grad:
                    break
                gs = grad(flat[k], ins, retain_graph=True, create_graph=create_graph,
                          allow_unused=True)
                for j, g in enumerate(gs):
                    if create_graph:
                        graph_blocks[j].append(g if g is not None else _wrap(blocks[j][k]))
                    elif g is not None:
                        blocks[j][k] = g._data
            row = []
            for j, t in enumerate(ins):
                # (a tuple: with 0-d outputs and inputs the shape is empty)
                shape = (*out.shape, *t.shape)
                if create_graph and graph_blocks[j]:
                    row.append(stack(graph_blocks[j]).reshape(shape))
                else:
                    row.append(_wrap(blocks[j].reshape(shape)))
            rows.append(row[0] if single_in else tuple(row))
    return rows[0] if single_out else tuple(rows)


def hessian(
    func: Callable[..., Tensor],
    inputs: Tensor | tuple[Tensor, ...],
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
) -> Any:
    """Second derivatives of a scalar function, shaped input_i.shape + input_j.shape."""
    ins, single_in = _as_tuple(inputs)

    def gradient(*xs: Tensor) -> tuple[Tensor, ...]:
        out = func(*xs)
        if out.numel() != 1:
            raise RuntimeError(
                "The function given to hessian should return a single element Tensor"
            )
        gs = grad(out, xs, create_graph=True, allow_unused=True)
        return tuple(
            g if g is not None else _wrap(np.zeros(x.shape, dtype=x._data.dtype)).requires_grad_()
            for g, x in zip(gs, xs, strict=True)
        )

    jac = jacobian(gradient, ins, create_graph=create_graph)
    if single_in:
        return jac[0][0]
    return jac
