"""Custom ops: subclass `Function` with `forward(ctx, ...)` and `backward(ctx, *grads)`.

As in torch, `Function.apply` runs `forward` with grad mode off, then records one node
(named `<Class>Backward`) whose outputs are the returned tensors; `ctx` is that node.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from engine._broadcast import sum_to
from engine._grad_mode import no_grad, state
from engine.autograd.graph import _MANY, FREED_MESSAGE, _modified_message, edge
from engine.tensor import SEQUENCE, Tensor, VersionCounter, _wrap


class FunctionCtx:
    """The `ctx` of forward and backward, and the node in the graph."""

    _n_outputs = 1
    _e1 = _MANY  # backward walks a node's edges as `_e0` (see graph.Node)

    @property
    def _e0(self) -> tuple:
        return self._next

    def __init__(self, cls: type) -> None:
        self._cls = cls
        self._hooks = None
        self._next: tuple = ()
        self._nrs = None
        self._to_save: tuple = ()
        self._saved: list | None = None
        self._non_differentiable: set[int] = set()
        self._materialize_grads = True
        self._dirty: tuple = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    # ---- the ctx API ---------------------------------------------------------------------
    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep tensors for backward; read them back as ctx.saved_tensors."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    "save_for_backward can only save variables, but argument "
                    f"{tensors.index(t)} is of type {type(t).__name__}"
                )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple[Tensor | None, ...]:
        if self._saved is None:
            if self._to_save:  # still inside forward
                return self._to_save
            raise RuntimeError(FREED_MESSAGE)
        out = []
        for entry in self._saved:
            if entry is None:
                out.append(None)
                continue
            kind, t, version = entry
            if kind == "output":
                # An output is kept as data plus its index: holding the output Tensor here
                # would make a cycle through its grad_fn (this very node).
                data, nr, vc = t
                if vc.v != version:
                    raise RuntimeError(_modified_message(_wrap(data), vc.v, version))
                t = _wrap(data)
                if state.enabled:
                    t._grad_fn, t._output_nr, t._requires_grad = self, nr, True
            elif (0 if t._vc is None else t._vc.v) != version:
                raise RuntimeError(_modified_message(t, t._vc.v, version))
            out.append(t)
        return tuple(out)

    @property
    def saved_variables(self) -> tuple[Tensor | None, ...]:
        return self.saved_tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        """Outputs that get no gradient (indices, masks)."""
        self._non_differentiable = {id(t) for t in tensors}

    def mark_dirty(self, *tensors: Tensor) -> None:
        """Inputs modified in place by forward."""
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """Whether backward gets zeros (True) or None for outputs that got no gradient."""
        self._materialize_grads = value

    # ---- the node API --------------------------------------------------------------------
    def name(self) -> str:
        """`<Class>Backward`, as torch names a custom function's node."""
        return f"{self._cls.__name__}Backward"

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        nrs = self._nrs or (0,) * len(self._next)
        return tuple(zip(self._next, nrs, strict=True))

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"

    def _apply(self, g: Any, wanted: Any, create_graph: bool) -> list:
        grads = list(g) if self._n_outputs > 1 else [g]
        for i, gi in enumerate(grads):
            if gi is None and self._materialize_grads:
                shape, dtype = self._out_meta[i]
                grads[i] = _wrap(np.zeros(shape, dtype=dtype))
        result = self._cls.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self._next)
        if len(result) != n:
            if len(result) > n and all(r is None for r in result[n:]):
                result = result[:n]
            else:
                raise RuntimeError(
                    f"function {self.name()} returned an incorrect number of gradients "
                    f"(expected {n}, got {len(result)})"
                )
        out = []
        for i, (gi, nxt) in enumerate(zip(result, self._next, strict=True)):
            if nxt is None or gi is None:
                out.append(None)
                continue
            if not isinstance(gi, Tensor):
                raise TypeError(
                    f"function {self.name()} returned a gradient different than None at "
                    f"position {i + 1}, but the corresponding forward input was not a Variable"
                )
            shape, dtype = self._in_meta[i]
            if gi._data.shape != shape:
                gi = _reduce_to(gi, shape, self.name(), i)
            if gi._data.dtype != dtype:
                gi = gi.to(dtype)
            out.append(gi)
        return out

    def _release(self) -> None:
        self._saved = None
        self._to_save = ()


def _reduce_to(g: Tensor, shape: tuple[int, ...], name: str, i: int) -> Tensor:
    # torch accepts a gradient that broadcasts to the input's shape and sums it back;
    # anything else is an error naming the function and the position.
    try:
        np.broadcast_shapes(shape, g._data.shape)
        expandable = np.broadcast_shapes(shape, g._data.shape) == g._data.shape
    except ValueError:
        expandable = False
    if not expandable or len(shape) > g.ndim:
        raise RuntimeError(
            f"Function {name} returned an invalid gradient at index {i} - got "
            f"{list(g._data.shape)} but expected shape compatible with {list(shape)}"
        )
    return sum_to(g, shape)


class Function:
    """Base class for custom differentiable ops."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        """Compute the outputs (runs with grad mode off)."""
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Tensor) -> Any:
        """Return one gradient per forward input (None where there is none)."""
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run forward and, when grad is needed, record a `<Class>Backward` node."""
        ctx = FunctionCtx(cls)
        tracking = state.enabled
        ctx.needs_input_grad = tuple(
            isinstance(a, Tensor) and a._requires_grad and tracking for a in args
        )
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        if not any(ctx.needs_input_grad):
            ctx._release()
            return outputs
        ctx._next = tuple(edge(a) if tracking else None for a in args)
        ctx._seq = next(SEQUENCE)  # after its inputs' nodes, as every node (see graph.Node)
        # The inputs themselves, so that blame can re-run this function alone (no cycle:
        # an input never refers to the node of a function it is passed to).
        ctx._inputs = args
        if any(isinstance(a, Tensor) and a._output_nr for a in args):
            ctx._nrs = tuple(a._output_nr if isinstance(a, Tensor) else 0 for a in args)
        ctx._in_meta = tuple(
            (np.shape(a._data), a._data.dtype) if isinstance(a, Tensor) else None for a in args
        )
        ctx._n_outputs = len(outs)
        ctx._out_meta = []
        wrapped = []
        inputs = {id(a) for a in args if isinstance(a, Tensor)}
        for nr, o in enumerate(outs):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                ctx._out_meta.append(((), np.float32))
                continue
            ctx._out_meta.append((np.shape(o._data), o._data.dtype))
            if id(o) in ctx._non_differentiable or o._data.dtype.kind != "f":
                wrapped.append(o)
                continue
            # An output that is an input (or aliases one) becomes a new tensor object,
            # as torch returns a view: the input keeps its own identity and history.
            t = o if id(o) not in inputs else _wrap(o._storage())
            if t._vc is None:
                t._vc = VersionCounter()
            t._grad_fn, t._output_nr, t._requires_grad = ctx, nr, True
            wrapped.append(t)
        ctx._saved = _pack_saved(ctx, wrapped)
        ctx._to_save = ()
        return wrapped[0] if single else tuple(wrapped)


def _pack_saved(ctx: FunctionCtx, outputs: list) -> list:
    by_id = {id(o): nr for nr, o in enumerate(outputs) if isinstance(o, Tensor)}
    packed = []
    for t in ctx._to_save:
        if t is None:
            packed.append(None)
        elif id(t) in by_id and t._grad_fn is ctx:
            packed.append(("output", (t._storage(), by_id[id(t)], t._vc), t._vc.v))
        else:
            packed.append(("input", t, 0 if t._vc is None else t._vc.v))
    return packed


def once_differentiable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a backward as not itself differentiable: it runs with grad mode off."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, *args: Any) -> Any:
        with no_grad():
            return fn(ctx, *args)

    return wrapper
