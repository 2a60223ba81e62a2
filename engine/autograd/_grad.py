"""`backward` and `grad`: torch's argument handling in front of the backward loop (graph.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.autograd.graph import run_backward
from engine.tensor import Tensor, _wrap


def _as_tuple(x: Any) -> tuple:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_grads(outputs: tuple[Tensor, ...], grads: tuple, create_graph: bool) -> list[Tensor]:
    if len(grads) != len(outputs):
        raise RuntimeError(
            "grad can be implicitly created only for scalar outputs"
            if not grads
            else f"Mismatch in number of grad_outputs: got {len(grads)} for {len(outputs)} outputs"
        )
    out = []
    for i, (o, g) in enumerate(zip(outputs, grads, strict=True)):
        if g is None:
            if not o._requires_grad:
                raise RuntimeError(
                    f"element {i} of tensors does not require grad and does not have a grad_fn"
                )
            if o._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            d = o._data
            g = _wrap(d.dtype.type(1) if d.ndim == 0 else np.ones(d.shape, dtype=d.dtype))
        elif not isinstance(g, Tensor):
            g = _wrap(np.full(np.shape(o._data), g, dtype=o._data.dtype))
        elif g.shape != o.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and output[{i}] "
                f"has a shape of {o.shape}."
            )
        elif g._data.dtype != o._data.dtype:
            g = g.to(o.dtype)  # gradients flow in the dtype of what they are gradients of
        out.append(g)
    return out


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of `tensors` into the .grad of leaves (or of `inputs`)."""
    outputs = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(outputs)
    if isinstance(grad_tensors, Tensor):
        grads = (grad_tensors,)
    if retain_graph is None:
        retain_graph = create_graph
    targets = _as_tuple(inputs) if inputs is not None else None
    if targets is not None and not targets:
        raise RuntimeError("'inputs' argument to backward() cannot be empty.")
    run_backward(outputs, _root_grads(outputs, grads, create_graph), retain_graph,
                 create_graph, inputs=targets, accumulate=True)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    only_inputs: bool = True,
    allow_unused: bool | None = None,
    is_grads_batched: bool = False,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of `outputs` w.r.t. `inputs`, returned; .grad is never touched."""
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    if not ins:
        raise RuntimeError("grad requires non-empty inputs.")
    for t in ins:
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    grads = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outs)
    if isinstance(grad_outputs, Tensor):
        grads = (grad_outputs,)
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    result = run_backward(outs, _root_grads(outs, grads, create_graph), retain_graph,
                          create_graph, inputs=ins, accumulate=False, allow_unused=allow_unused)
    if materialize_grads:
        result = [
            g if g is not None else _wrap(np.zeros(np.shape(t._data), dtype=t._data.dtype))
            for g, t in zip(result, ins, strict=True)
        ]
    return tuple(result)
