"""Blame: when a gradient is wrong, name the node whose own derivative is wrong.

Each node of a recorded graph is checked alone: its backward (a vector-Jacobian product
with a random cotangent) against a finite difference of its forward, at the node's own
inputs, in float64. The first wrong node in forward order is the culprit; for a custom
`Function` the report names its class and the file and line of its `backward`.

Second order (a gradgradcheck failure): every node is first checked as above, including the
nodes its backward built (a backward that calls another Function); then each node's
backward, as a function of the node's inputs and cotangent, is checked the same way against
its own double backward. A backward that leaves the graph (NumPy inside it, `.detach()`,
`.numpy()`) fails that check, and the report says so.

PyTorch code has no engine graph: `blame` records every custom `torch.autograd.Function`
applied while the function runs (blame_torch.py) and checks each alone the same way.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.autograd import numeric
from engine.autograd._grad import grad
from engine.autograd.frameworks import Adapter, for_inputs, for_name
from engine.autograd.function import FunctionCtx
from engine.autograd.grad_mode import enable_grad, no_grad
from engine.autograd.graph import AccumulateGrad, is_shape_only, keeping_inputs, record
from engine.tensor import Tensor, _wrap

_FULL_CHECK = 64  # inputs up to this size get a full numeric gradient; larger, directions
_DIRECTIONS = 4
# A double backward costs a first derivative per evaluation: directions sooner.
_FULL_CHECK_SECOND = 4


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
    order: int = 1  # 2: the check of the node's backward against its double backward
    n_inputs: int = 0  # order 2: the node's inputs; input_index past them is a cotangent

    def describe(self) -> str:
        """One line naming the node and what is wrong with it."""
        if self.ok:
            return f"{self.name}: ok"
        who = f"{self.user_class}.backward" if self.user_class else self.name
        where = f" at {self.location}" if self.location else ""
        if self.order == 2:
            what = self.hint or (
                f"its double backward (the derivative of its backward w.r.t. "
                f"{self._operand()}) is {self.analytic:.6g}, finite differences of its "
                f"backward say {self.numeric:.6g}"
            )
            if self.hint:
                what = f"double backward w.r.t. {self._operand()}: {what}"
            return f"{who}{where}: {what}"
        what = self.hint or (
            f"gradient of input {self.input_index} is {self.analytic:.6g}, "
            f"finite differences say {self.numeric:.6g}"
        )
        return f"{who}{where}: {what}"

    def _operand(self) -> str:
        i = self.input_index if self.input_index is not None else 0
        if self.order == 2 and i >= self.n_inputs:
            return f"the cotangent of output {i - self.n_inputs}"
        return f"input {i}"


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


def blame(fn: Callable[..., Any], inputs: Sequence[Any], *, order: int = 1, seed: int = 0,
          atol: float = 1e-8, rtol: float = 1e-6) -> Blame:
    """Run fn(*inputs) in float64 and check every node of its graph alone.

    order=2 also checks each node's backward against its double backward (what a
    gradgradcheck failure needs). torch.Tensor inputs: the nodes are the custom
    torch.autograd.Functions fn applies. The tolerances are tight because the reference is
    good: each node is small, checked in float64, against Richardson extrapolation whose own
    error estimate widens the bound.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, not {order!r}")
    adapter = for_inputs(list(inputs))
    if adapter.name == "torch":
        from engine.autograd.blame_torch import blame_torch

        return blame_torch(fn, inputs, order=order, seed=seed, atol=atol, rtol=rtol)
    if adapter.name != "engine":
        raise TypeError(f"blame works on engine and torch code, not {adapter.name}")
    xs = [
        _wrap(np.array(x._data, dtype=np.float64)).requires_grad_(x.requires_grad)
        if isinstance(x, Tensor) and x._data.dtype.kind == "f" else x
        for x in inputs
    ]
    with enable_grad(), keeping_inputs():
        out = fn(*xs)
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if isinstance(o, Tensor)]
    if order == 1:
        return blame_graph(outs, seed=seed, atol=atol, rtol=rtol)
    rng = np.random.default_rng(seed)
    live = [o for o in outs if o.requires_grad and o._data.dtype.kind == "f"]
    diff = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
    with enable_grad(), keeping_inputs():
        grads = grad(live, diff, [_wrap(rng.standard_normal(np.shape(o._data))) for o in live],
                      create_graph=True, allow_unused=True)
    forward = forward_order(outs)
    seen = set(forward)
    built = [n for n in forward_order([g for g in grads if g is not None]) if n not in seen]
    # First order, the nodes backward built included: a wrong Function called by a backward
    # is the culprit itself, before the backward that calls it.
    checks = [_check(node, i, rng, atol, rtol) for i, node in enumerate(forward + built)]
    if any(not c.ok for c in checks):
        return Blame(checks)
    adapter = for_name("engine")
    second = [check_op(adapter, _engine_op(node), i, rng, atol, rtol, order=2)
              for i, node in enumerate(forward)]
    return Blame(checks + second)


def _engine_op(node: Any) -> LocalOp:
    """An engine node as a LocalOp: its forward again, with a fresh node when grad flows."""
    forward, args, _ = _local(node)
    diff = [i for i, nxt in enumerate(_padded_next(node, len(args)))
            if nxt is not None and isinstance(args[i], Tensor)]
    user_class, location = _user_code(node)
    if isinstance(node, FunctionCtx):
        cls = node._cls

        def apply(values: list) -> list:
            out = cls.apply(*values)
            return list(out) if isinstance(out, tuple) else [out]
    else:
        op = node._op

        def apply(values: list) -> list:
            datas = [v._data if isinstance(v, Tensor) else v for v in values]
            return [record(op, op.forward(*datas), tuple(values))]

    return LocalOp(node.name(), apply, args, diff, user_class, location, node)


def blame_graph(outputs: Sequence[Tensor], *, seed: int = 0, atol: float = 1e-8,
                rtol: float = 1e-6) -> Blame:
    """Check every node of the graph behind `outputs` (before its backward has run, and
    recorded under `keeping_inputs()`, so that each node has the inputs it was applied to)."""
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
    if any(is_shape_only(a) for a in node._args):
        raise RuntimeError("blame needs the inputs of every node: record the graph under "
                           "engine.autograd.graph.keeping_inputs()")
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
    worst: _Worst = (0.0, None, None, None, None)
    for i, nxt in enumerate(node._next):
        if nxt is None or not isinstance(args[i], Tensor):
            continue
        x0 = np.array(args[i]._data, dtype=np.float64)

        def s(flat: np.ndarray, i: int = i, shape: tuple = x0.shape) -> float:
            values = list(args)
            values[i] = _wrap(flat.reshape(shape))
            return float(sum(np.sum(np.asarray(v._data) * np.asarray(o._data))
                             for v, o in zip(vs, forward(values), strict=True)))

        a = np.zeros(x0.shape) if analytic[i] is None else np.asarray(analytic[i]._data, float)
        worst = _worse(worst, _judge_input(s, x0, a, i, rng, atol, rtol))
    score, i, a_val, n_val, hint = worst
    return NodeCheck(index=index, name=node.name(), ok=i is None, input_index=i,
                     analytic=a_val, numeric=n_val, error=score, user_class=user_class,
                     location=location, hint=hint, node=node)


# (score, input index, analytic, numeric, hint) of the worst element; index None: all agree.
_Worst = tuple[float, int | None, float | None, float | None, str | None]


def _worse(a: _Worst, b: _Worst | None) -> _Worst:
    return a if b is None or b[0] <= a[0] else b


def _judge_input(s: Callable[[np.ndarray], float], x0: np.ndarray, a: np.ndarray, i: int,
                 rng: np.random.Generator, atol: float, rtol: float,
                 full: int = _FULL_CHECK) -> _Worst | None:
    """The analytic gradient `a` of the scalar s at x0 (input i) against finite differences:
    None when they agree, else the worst element."""
    if a.shape != x0.shape:
        return (np.inf, i, None, None,
                f"gradient of input {i} has shape {list(a.shape)}, expected {list(x0.shape)}")
    flat, af = x0.reshape(-1), a.reshape(-1)
    if flat.size <= full:
        res = numeric.gradient(s, flat)
        got, want, err = af, res.value, res.error
    else:
        dirs = rng.standard_normal((_DIRECTIONS, flat.size))
        results = [numeric.directional(s, flat, d) for d in dirs]
        got = dirs @ af
        want = np.array([r.value[0] for r in results])
        err = np.array([r.error[0] for r in results])
    verdict = numeric.compare(got, want, err, atol=atol, rtol=rtol)
    if verdict.ok:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(got - want) / verdict.bound
    k = int(np.nanargmax(ratio)) if ratio.size else 0
    score = float(ratio[k]) if ratio.size else 0.0
    return (score, i, float(got[k]), float(want[k]), _pattern(got, want))


# ------------------------------------------------------------------ any framework's op alone


@dataclass(frozen=True)
class LocalOp:
    """One op to check alone: `apply` runs it again (recording it when its inputs require
    grad) on values like `args`, its float64 inputs; `diff` are the inputs grad flows to."""

    name: str
    apply: Callable[[list], list]
    args: list
    diff: list[int]
    user_class: str | None = None
    location: str | None = None
    node: Any = None


def check_op(adapter: Adapter, op: LocalOp, index: int, rng: np.random.Generator, atol: float,
             rtol: float, order: int = 1) -> NodeCheck:
    """op's backward against finite differences of its forward (order 2: op's backward, as a
    function of its inputs and cotangents, against finite differences of that backward)."""
    n_inputs = len(op.args)
    checked, note = (op, []) if order == 1 else _backward_op(adapter, op, rng)
    full = _FULL_CHECK if order == 1 else _FULL_CHECK_SECOND
    worst = note if isinstance(note, tuple) else _judge_op(adapter, checked, rng, atol, rtol,
                                                           full)
    score, i, a_val, n_val, hint = worst or (0.0, None, None, None, None)
    if i is not None and isinstance(note, list) and note:
        hint = (f"the gradient it returns for input {note[0]} does not require grad: computed "
                "outside autograd (NumPy, .numpy(), .detach() or no_grad inside backward), it "
                "cannot be differentiated again")
    elif order == 2 and i is not None and hint in (None, _ZERO) and a_val == 0:
        hint = ("its backward uses this outside the graph (.detach(), NumPy, .numpy(), "
                "no_grad or @once_differentiable): the double backward is zero where finite "
                "differences of the backward are not")
    return NodeCheck(index=index, name=op.name, ok=i is None, input_index=i, analytic=a_val,
                     numeric=n_val, error=score, user_class=op.user_class,
                     location=op.location, hint=hint, node=op.node, order=order,
                     n_inputs=n_inputs)


def _judge_op(adapter: Adapter, op: LocalOp, rng: np.random.Generator, atol: float,
              rtol: float, full: int = _FULL_CHECK) -> _Worst | None:
    fw, lib = adapter, adapter.lib
    with lib.enable_grad():
        live = [a.detach().requires_grad_(True) if i in op.diff else a
                for i, a in enumerate(op.args)]
        try:
            outs = [o for o in op.apply(live) if fw.is_floating(o)]
        except Exception as exc:  # noqa: BLE001 - the op cannot run again: say why
            return (np.inf, op.diff[0], None, None, f"re-running it raised {_brief(exc)}")
        vs = [rng.standard_normal(tuple(o.shape)) for o in outs]
        tracked = [k for k, o in enumerate(outs) if fw.requires_grad(o)]
        grads: list = [None] * len(op.diff)
        if tracked:
            try:
                grads = list(lib.autograd.grad(
                    [outs[k] for k in tracked], [live[i] for i in op.diff],
                    [fw.from_numpy(vs[k].astype(fw.dtype_of(outs[k]))) for k in tracked],
                    allow_unused=True))
            except Exception as exc:  # noqa: BLE001 - a backward that raises is the culprit
                return (np.inf, op.diff[0], None, None, f"its backward raised {_brief(exc)}")
    x0s = [fw.to_numpy(op.args[i]).astype(np.float64) for i in op.diff]
    analytic = [np.zeros(x0.shape) if g is None else fw.to_numpy(g).astype(np.float64)
                for x0, g in zip(x0s, grads, strict=True)]

    def s(flats: list[np.ndarray]) -> float:
        values = list(op.args)
        for i, flat, x0 in zip(op.diff, flats, x0s, strict=True):
            values[i] = fw.from_numpy(flat.reshape(x0.shape).astype(np.float64))
        with lib.no_grad():
            out = [o for o in op.apply(values) if fw.is_floating(o)]
        return float(sum(np.sum(v * fw.to_numpy(o)) for v, o in zip(vs, out, strict=True)))

    if full < _FULL_CHECK and _agrees_jointly(s, x0s, analytic, rng, atol, rtol):
        return None
    worst: _Worst = (0.0, None, None, None, None)
    for k, i in enumerate(op.diff):
        def s_k(flat: np.ndarray, k: int = k) -> float:
            return s([flat if j == k else x.reshape(-1) for j, x in enumerate(x0s)])

        worst = _worse(worst, _judge_input(s_k, x0s[k], analytic[k], i, rng, atol, rtol, full))
    return None if worst[1] is None else worst


def _agrees_jointly(s: Callable[[list[np.ndarray]], float], x0s: list[np.ndarray],
                    analytic: list[np.ndarray], rng: np.random.Generator, atol: float,
                    rtol: float) -> bool:
    """A cheap screen: the derivative along random directions through all inputs at once.
    When it agrees the op passes; when not, each input is checked to say which is wrong."""
    if any(a.shape != x.shape for a, x in zip(analytic, x0s, strict=True)):
        return False
    sizes = np.cumsum([0] + [x.size for x in x0s])
    flat0 = np.concatenate([x.reshape(-1) for x in x0s])
    a = np.concatenate([g.reshape(-1) for g in analytic])

    def joint(flat: np.ndarray) -> float:
        return s([flat[sizes[k] : sizes[k + 1]] for k in range(len(x0s))])

    dirs = rng.standard_normal((2, flat0.size))
    results = [numeric.directional(joint, flat0, d) for d in dirs]
    got = dirs @ a
    want = np.array([r.value[0] for r in results])
    err = np.array([r.error[0] for r in results])
    return numeric.compare(got, want, err, atol=atol, rtol=rtol).ok


def _backward_op(adapter: Adapter, op: LocalOp, rng: np.random.Generator
                 ) -> tuple[LocalOp, _Worst | list[int]]:
    """op's backward as an op of (inputs..., cotangents...), and the inputs whose gradient
    it returns outside the graph (not requiring grad although the inputs do: right only if
    that gradient is constant), or a failure if it raises."""
    fw, lib = adapter, adapter.lib
    n = len(op.args)
    with lib.no_grad():
        outs = [o for o in op.apply(list(op.args)) if fw.is_floating(o)]
    cots = [fw.from_numpy(rng.standard_normal(tuple(o.shape))) for o in outs]

    def apply(values: list) -> list:
        xs, gs = list(values[:n]), values[n:]
        with lib.enable_grad():
            for i in op.diff:  # a first derivative needs inputs that require grad
                if not fw.requires_grad(xs[i]):
                    xs[i] = xs[i].detach().requires_grad_(True)
            out = [o for o in op.apply(xs) if fw.is_floating(o)]
            pairs = [(o, g) for o, g in zip(out, gs, strict=True) if fw.requires_grad(o)]
            grads = lib.autograd.grad([p[0] for p in pairs], [xs[i] for i in op.diff],
                                      [p[1] for p in pairs], create_graph=True,
                                      allow_unused=True)
        return [g if g is not None else fw.from_numpy(np.zeros(tuple(xs[i].shape)))
                for g, i in zip(grads, op.diff, strict=True)]

    backward = LocalOp(op.name, apply, list(op.args) + cots,
                       list(op.diff) + list(range(n, n + len(cots))),
                       op.user_class, op.location, op.node)
    with lib.enable_grad():
        live = [a.detach().requires_grad_(True) if i in backward.diff else a
                for i, a in enumerate(backward.args)]
        try:
            results = apply(live)
        except Exception as exc:  # noqa: BLE001 - a backward that raises is the culprit
            return backward, (np.inf, op.diff[0], None, None, f"its backward raised {_brief(exc)}")
    detached = [k for k, r in zip(op.diff, results, strict=True) if not fw.requires_grad(r)]
    return backward, detached


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_ZERO = "zero where finite differences are not (a missing or detached path?)"


def _pattern(got: np.ndarray, want: np.ndarray) -> str | None:
    """Recognisable ways a derivative goes wrong: a constant factor, a sign, one element."""
    mask = np.abs(want) > 1e-12
    if mask.any():
        ratio = got[mask] / want[mask]
        if np.allclose(ratio, ratio[0], rtol=1e-4, atol=0):
            r = float(ratio[0])
            if r == 0:
                return _ZERO
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
    return backward_location(node._cls)


def backward_location(cls: type) -> tuple[str, str | None]:
    """(qualified name, "file.py:42" of its backward) of a custom Function class."""
    backward = inspect.unwrap(cls.backward)
    try:
        path = inspect.getsourcefile(backward)
        line = inspect.getsourcelines(backward)[1]
    except (OSError, TypeError):
        return cls.__qualname__, None
    where = os.path.relpath(path) if path and not os.path.relpath(path).startswith("..") else path
    return cls.__qualname__, f"{where}:{line}"


__all__ = ["Blame", "LocalOp", "NodeCheck", "backward_location", "blame", "blame_graph",
           "check_op", "forward_order"]
