"""Blame: when a gradient is wrong, name the node whose own derivative is wrong.

Each node of a recorded graph is checked alone: its backward (a vector-Jacobian product
with a random cotangent) against a finite difference of its forward, at the node's own
inputs, in float64. The first wrong node in forward order is the culprit; for a custom
`Function` the report names its class and the file and line of its `backward`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.autograd import numeric
from engine.autograd.function import FunctionCtx
from engine.autograd.grad_mode import enable_grad, no_grad
from engine.autograd.graph import AccumulateGrad, record
from engine.tensor import Tensor, _wrap

_FULL_CHECK = 64  # inputs up to this size get a full numeric gradient; larger, directions
_DIRECTIONS = 4


@dataclass(frozen=True)
class NodeCheck:
    """The local check of one node: its backward against its own forward."""

    index: int  # position in forward (topological) order
    name: str  # torch's node name, e.g. "MulBackward0" or "MySoftplusBackward"
    ok: bool
    input_index: int | None  # the input whose gradient is wrong, if any
    analytic: float | None  # the worst element: the backward's value ...
    numeric: float | None  # ... the finite difference's ...
    error: float  # ... and the largest |analytic - numeric| over the bound (<= 1 passes)
    user_class: str | None  # a custom Function's qualified name
    location: str | None  # "file.py:42" of the custom backward
    hint: str | None
    node: Any = field(repr=False, compare=False)

    def describe(self) -> str:
        """One line naming the node and what is wrong with it."""
        if self.ok:
            return f"{self.name}: ok"
        who = f"{self.user_class}.backward" if self.user_class else self.name
        where = f" at {self.location}" if self.location else ""
        what = self.hint or (
            f"gradient of input {self.input_index} is {self.analytic:.6g}, "
            f"finite differences say {self.numeric:.6g}"
        )
        return f"{who}{where}: {what}"


@dataclass(frozen=True)
class Blame:
    """The local checks of every node, in forward order."""

    checks: list[NodeCheck]

    @property
    def culprit(self) -> NodeCheck | None:
        """The first node (in forward order) whose own derivative is wrong."""
        return next((c for c in self.checks if not c.ok), None)

    def __str__(self) -> str:
        c = self.culprit
        return "every node's derivative agrees with its forward" if c is None else c.describe()


def blame(fn: Callable[..., Tensor], inputs: Sequence[Any], *, seed: int = 0,
          atol: float = 1e-8, rtol: float = 1e-6) -> Blame:
    """Run fn(*inputs) in float64 and check every node of its graph alone.

    The tolerances are tight because the reference is good: each node is small, checked in
    float64, against Richardson extrapolation whose own error estimate widens the bound.
    """
    xs = [
        _wrap(np.array(x._data, dtype=np.float64)).requires_grad_(x.requires_grad)
        if isinstance(x, Tensor) and x._data.dtype.kind == "f" else x
        for x in inputs
    ]
    with enable_grad():
        out = fn(*xs)
    outs = out if isinstance(out, tuple) else (out,)
    return blame_graph([o for o in outs if isinstance(o, Tensor)], seed=seed, atol=atol, rtol=rtol)


def blame_graph(outputs: Sequence[Tensor], *, seed: int = 0, atol: float = 1e-8,
                rtol: float = 1e-6) -> Blame:
    """Check every node of the graph behind `outputs` (before its backward has run)."""
    rng = np.random.default_rng(seed)
    checks = []
    for index, node in enumerate(forward_order(outputs)):
        checks.append(_check(node, index, rng, atol, rtol))
    return Blame(checks)


def forward_order(outputs: Sequence[Tensor]) -> list[Any]:
    """The graph's nodes, inputs before the ops that use them (explicit stack, no recursion)."""
    roots = [o._grad_fn for o in outputs if o._grad_fn is not None]
    order, seen = [], set()
    stack = [(n, False) for n in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        for m in reversed(node._next):
            if m is not None and m not in seen and not isinstance(m, AccumulateGrad):
                stack.append((m, False))
    return order


def _as64(a: Any) -> Any:
    if isinstance(a, Tensor) and a._data.dtype.kind == "f":
        return _wrap(np.array(a._data, dtype=np.float64))
    return a


def _local(node: Any) -> tuple[Callable[[list], list[Tensor]], list[Any], int]:
    """(forward of the node alone on its inputs, its inputs in float64, output count)."""
    if isinstance(node, FunctionCtx):
        cls, args = node._cls, [_as64(a) for a in node._inputs]

        def forward(values: list) -> list[Tensor]:
            with no_grad():
                out = cls.forward(FunctionCtx(cls), *values)
            return list(out) if isinstance(out, tuple) else [out]

        return forward, args, node._n_outputs
    op = node._op
    if node._args is None:
        raise RuntimeError("blame needs a graph whose backward has not run (or retain_graph)")
    args = [_as64(a) for a in node._inputs()]

    def forward(values: list) -> list[Tensor]:
        datas = [v._data if isinstance(v, Tensor) else v for v in values]
        return [_wrap(op.forward(*datas))]

    return forward, args, 1


def _backward(node: Any, args: list, cotangents: list[Tensor]) -> list:
    """The node's own backward at float64 inputs: a fresh node of the same kind."""
    with enable_grad():
        live = [a.detach().requires_grad_() if isinstance(a, Tensor) and nxt is not None else a
                for a, nxt in zip(args, _padded_next(node, len(args)), strict=True)]
        if isinstance(node, FunctionCtx):
            out = node._cls.apply(*live)
            fresh = (out[0] if isinstance(out, tuple) else out)._grad_fn
        else:
            datas = [a._data if isinstance(a, Tensor) else a for a in live]
            fresh = record(node._op, node._op.forward(*datas), tuple(live))._grad_fn
    g = cotangents if isinstance(node, FunctionCtx) and node._n_outputs > 1 else cotangents[0]
    with no_grad():
        return fresh._apply(g, None, False)


def _padded_next(node: Any, n: int) -> list:
    nexts = list(node._next)
    return nexts + [None] * (n - len(nexts))


def _check(node: Any, index: int, rng: np.random.Generator, atol: float, rtol: float
           ) -> NodeCheck:
    forward, args, _ = _local(node)
    outs = forward(args)
    vs = [_wrap(rng.standard_normal(np.shape(o._data))) for o in outs]
    analytic = _backward(node, args, vs)
    user_class, location = _user_code(node)
    worst: tuple[float, int | None, float | None, float | None, str | None] = (
        0.0, None, None, None, None)
    for i, nxt in enumerate(node._next):
        if nxt is None or not isinstance(args[i], Tensor):
            continue
        x0 = np.array(args[i]._data, dtype=np.float64)
        shape = x0.shape

        def s(flat: np.ndarray, i: int = i, shape: tuple = shape) -> float:
            values = list(args)
            values[i] = _wrap(flat.reshape(shape))
            return float(sum(np.sum(np.asarray(v._data) * np.asarray(o._data))
                             for v, o in zip(vs, forward(values), strict=True)))

        a = np.zeros(shape) if analytic[i] is None else np.asarray(analytic[i]._data, float)
        if a.shape != shape:
            worst = max(worst, (np.inf, i, None, None, f"gradient of input {i} has shape "
                                f"{list(a.shape)}, expected {list(shape)}"),
                        key=lambda w: w[0])
            continue
        flat, af = x0.reshape(-1), a.reshape(-1)
        if flat.size <= _FULL_CHECK:
            res = numeric.gradient(s, flat)
            got, want, err = af, res.value, res.error
        else:
            dirs = rng.standard_normal((_DIRECTIONS, flat.size))
            results = [numeric.directional(s, flat, d) for d in dirs]
            got = dirs @ af
            want = np.array([r.value[0] for r in results])
            err = np.array([r.error[0] for r in results])
        verdict = numeric.compare(got, want, err, atol=atol, rtol=rtol)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(got - want) / verdict.bound
        k = int(np.nanargmax(ratio)) if ratio.size else 0
        score = float(ratio[k]) if ratio.size else 0.0
        if not verdict.ok and score > worst[0]:
            worst = (score, i, float(got[k]), float(want[k]), _pattern(got, want))
    score, i, a_val, n_val, hint = worst
    return NodeCheck(index=index, name=node.name(), ok=i is None, input_index=i,
                     analytic=a_val, numeric=n_val, error=score, user_class=user_class,
                     location=location, hint=hint, node=node)


def _pattern(got: np.ndarray, want: np.ndarray) -> str | None:
    """Recognisable ways a derivative goes wrong: a constant factor, a sign, one element."""
    mask = np.abs(want) > 1e-12
    if mask.any():
        ratio = got[mask] / want[mask]
        if np.allclose(ratio, ratio[0], rtol=1e-4, atol=0):
            r = float(ratio[0])
            if np.isclose(r, -1.0):
                return "off by a sign (the gradient has the wrong sign)"
            return f"off by a factor of {r:.6g}"
    wrong = ~np.isclose(got, want, rtol=1e-6, atol=1e-9)
    if wrong.sum() == 1:
        k = int(np.flatnonzero(wrong)[0])
        return f"wrong in one element only (index {k}: {got[k]:.6g} instead of {want[k]:.6g})"
    return None


def _user_code(node: Any) -> tuple[str | None, str | None]:
    if not isinstance(node, FunctionCtx):
        return None, None
    cls = node._cls
    backward = inspect.unwrap(cls.backward)
    try:
        path = inspect.getsourcefile(backward)
        line = inspect.getsourcelines(backward)[1]
    except (OSError, TypeError):
        return cls.__qualname__, None
    where = os.path.relpath(path) if path and not os.path.relpath(path).startswith("..") else path
    return cls.__qualname__, f"{where}:{line}"


__all__ = ["Blame", "NodeCheck", "blame", "blame_graph", "forward_order"]
