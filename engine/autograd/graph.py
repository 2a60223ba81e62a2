"""The graph: nodes, recording an op, and the one backward loop.

This module knows no op by name. An op is an `OpDef` (engine/_ops.py) whose derivative
rules are written in engine ops; a `Node` remembers an op's arguments and its edges to
the nodes that produced them; `run_backward` walks the nodes in topological order with an
explicit stack, so graph depth is limited by memory, never by Python's recursion limit.
"""

from __future__ import annotations

import functools
import gc
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.autograd.grad_mode import state
from engine.tensor import Tensor, VersionCounter, _wrap

_new = object.__new__
_LOOP_REFS = 3  # references to a popped gradient: the loop's variable, a parameter, getrefcount

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


class Node:
    """A recorded op application: what `tensor.grad_fn` returns (e.g. `MulBackward0`)."""

    __slots__ = ("_op", "_args", "_next", "_nrs", "_versions", "_out", "_out_vc", "_hooks", "_fit")
    _n_outputs = 1

    def name(self) -> str:
        """The node's name, as torch names it (`MulBackward0`)."""
        return self._op.node_name

    @property
    def next_functions(self) -> tuple[tuple[Any, int], ...]:
        nrs = self._nrs or (0,) * len(self._next)
        return tuple(zip(self._next, nrs, strict=True))

    def __repr__(self) -> str:
        return f"<{self.name().rsplit('::', 1)[-1]} object at {id(self):#x}>"

    # ---- saved state ---------------------------------------------------------------------
    def _saved_args(self) -> tuple:
        args = self._args
        if args is None:
            raise RuntimeError(FREED_MESSAGE)
        versions = self._versions
        for k, i in enumerate(self._op.saves):
            a = args[i]
            # Tensors never written in place have no counter: nothing to check.
            if isinstance(a, Tensor) and a._vc is not None and self._reads(i):
                now = a._vc.v
                then = 0 if versions is None else versions[k]
                if now != then:
                    raise RuntimeError(_modified_message(a, now, then))
        return args

    def _reads(self, i: int) -> bool:
        # Whether a rule that will run reads input i (torch saves `self` for mul only when
        # `other` needs a gradient, so only then can modifying it break backward).
        reads = self._op.reads
        if reads is None:
            return True
        return any(nxt is not None and i in reads[j] for j, nxt in enumerate(self._next))

    def _saved_output(self, create_graph: bool) -> Tensor:
        if self._out is None:
            raise RuntimeError(FREED_MESSAGE)
        now = self._out_vc.v
        if now:
            out = _wrap(self._out)
            out._grad_fn = self
            raise RuntimeError(_modified_message(out, now, 0))
        out = _wrap(self._out)
        if create_graph:
            # The output as the rule's input carries this very node as its history, which is
            # what makes exp's derivative exp(x) differentiable again (as torch's SavedVariable).
            out._grad_fn = self
            out._requires_grad = True
        return out

    def _release(self) -> None:
        op = self._op
        if op.saves or op.saves_output:
            self._args = None
            self._out = None
            return
        # Ops that save no values (add, sum, view...) need only shapes and dtypes: a second
        # backward works, as in torch. Array inputs give way to zero-strided stand-ins so
        # the graph does not keep their memory alive; scalars cost nothing to keep.
        args = self._args
        for a in args:
            if isinstance(a, Tensor) and type(a._data) is np.ndarray and a._data.nbytes > 4096:
                self._args = tuple(_shape_only(a) if isinstance(a, Tensor) else a for a in args)
                return

    def _apply(self, g: Tensor, wanted: Sequence[bool] | None, create_graph: bool) -> list:
        op = self._op
        args = self._saved_args() if op.saves else self._args
        if args is None:
            raise RuntimeError(FREED_MESSAGE)
        if op.saves_output:
            args = (*args, self._saved_output(create_graph))
        rules = op.rules
        nexts = self._next
        if wanted is not None:
            nexts = [m if w else None for m, w in zip(nexts, wanted, strict=True)]
        if op.variadic:
            grads = [None if m is None else rules(g, i, *args) for i, m in enumerate(nexts)]
        elif len(nexts) == 1:
            grads = [rules[0](g, *args)]  # the only edge of a node is never None
        else:
            grads = [None if m is None else rules[i](g, *args) for i, m in enumerate(nexts)]
        if op.broadcasts and self._fit:
            for i, gi in enumerate(grads):
                a = args[i]
                if gi is not None and isinstance(a, Tensor) and (
                    gi._data.shape != a._data.shape or gi._data.dtype != a._data.dtype
                ):
                    grads[i] = _fit(gi, a)
        return grads

    # ---- hooks ---------------------------------------------------------------------------
    def _retain(self, nr: int, ref: Callable[[], Tensor | None]) -> None:
        hooks = self._hooks = self._hooks or {}
        hooks.setdefault(("retain", nr), []).append(ref)

    def _add_tensor_hook(self, nr: int, hook: Callable) -> Any:
        from engine.tensor import _HookHandle

        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault(("pre", nr), []), hook)

    def register_hook(self, fn: Callable) -> Any:
        """Call fn(grad_inputs, grad_outputs) after this node runs."""
        from engine.tensor import _HookHandle

        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault("post", []), fn)

    def register_prehook(self, fn: Callable) -> Any:
        """Call fn(grad_outputs) before this node runs; it may return replacements."""
        from engine.tensor import _HookHandle

        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault("prenode", []), fn)


class AccumulateGrad:
    """The node behind a leaf: adds the incoming gradient into `variable.grad`."""

    __slots__ = ("_variable", "__weakref__")
    _n_outputs = 1
    _next = ()
    _hooks = None

    def __init__(self, variable: Tensor) -> None:
        import weakref

        # A weak reference: the leaf holds this node, and a cycle would defeat refcounting.
        self._variable = weakref.ref(variable)

    @property
    def variable(self) -> Tensor | None:
        return self._variable()

    def name(self) -> str:
        """torch's name for this node."""
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"


def accumulator(t: Tensor) -> AccumulateGrad:
    """The leaf's AccumulateGrad node, created on first use."""
    acc = t._acc
    if acc is None:
        acc = t._acc = AccumulateGrad(t)
    return acc


def edge(t: Any) -> Any:
    """The node a gradient for `t` must flow to, or None when `t` needs none."""
    if isinstance(t, Tensor) and t._requires_grad:
        fn = t._grad_fn
        return fn if fn is not None else (t._acc or accumulator(t))
    return None


def record(op: Any, out: Any, args: tuple, fit: bool = True) -> Tensor:
    """Wrap `out` as the result of `op` on `args`, with a node if grad must flow."""
    t = _wrap(out)
    if not state.enabled:
        return t
    n = op.n_inputs if not op.variadic else len(args) - op.n_static
    nexts = []
    has_edge = has_nr = False
    for k in range(n):
        a = args[k]
        if isinstance(a, Tensor) and a._requires_grad:
            fn = a._grad_fn
            if fn is None:
                fn = a._acc or accumulator(a)
            elif a._output_nr:
                has_nr = True
            nexts.append(fn)
            has_edge = True
        else:
            nexts.append(None)
    if not has_edge:
        return t
    node = _new(Node)
    node._op = op
    node._args = args
    node._next = tuple(nexts)
    node._nrs = (
        tuple(a._output_nr if isinstance(a, Tensor) else 0 for a in args[:n]) if has_nr else None
    )
    node._hooks = None
    node._fit = fit  # False when the op's gradients surely match their inputs' shape and dtype
    node._versions = None
    for i in op.saves:
        vc = getattr(args[i], "_vc", None)
        if vc is not None and vc.v:
            node._versions = tuple(
                getattr(getattr(args[j], "_vc", None), "v", 0) for j in op.saves
            )
            break
    if op.saves_output:
        node._out = out
        node._out_vc = t._vc = VersionCounter()
    else:
        node._out = None
        node._out_vc = None
    t._grad_fn = node
    t._requires_grad = True
    return t


def _shape_only(t: Tensor) -> Tensor:
    return _stub(t._data.shape, t._data.dtype, t._requires_grad)


@functools.lru_cache(maxsize=256)
def _stub(shape: tuple[int, ...], dtype: np.dtype, requires_grad: bool) -> Tensor:
    # A read-only, zero-strided array: it has the shape and dtype and no memory, so one
    # stand-in serves every node that needs it.
    stub = _wrap(np.broadcast_to(np.zeros((), dtype), shape))
    stub._requires_grad = requires_grad
    return stub


def _fit(g: Tensor, like: Any) -> Tensor:
    """Sum a broadcast gradient back to the input's shape and give it the input's dtype."""
    if not isinstance(like, Tensor):
        return g
    shape = like._data.shape
    if g._data.shape != shape:
        from engine._broadcast import sum_to

        g = sum_to(g, shape)
    if g._data.dtype != like._data.dtype:
        g = g.to(like.dtype)
    return g


def _modified_message(t: Tensor, now: int, then: int) -> str:
    kind = f"[engine.{t.dtype._tensor_type} [{', '.join(map(str, t.shape))}]]"
    fn = t._grad_fn
    where = ""
    if fn is not None:
        op_name = re.sub(r"Backward\d*$", "", fn.name())
        where = f", which is output {t._output_nr} of {op_name},"
    return (
        f"one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: {kind}{where} is at version {now}; expected version {then} "
        f"instead. Hint: the backtrace further above shows the operation that failed to "
        f"compute its gradient. The variable in question was changed in there or anywhere later."
    )


def _add(a: Tensor | None, b: Tensor) -> Tensor:
    return b if a is None else a + b


def _store_grad(t: Tensor, g: Tensor, create_graph: bool, owned: bool = False) -> None:
    """Accumulate `g` into t.grad the way torch's AccumulateGrad does."""
    old = t._grad
    if old is None:
        if create_graph or owned:
            t._grad = g
        else:
            # A private copy: the same gradient may reach several leaves (a + b), or be a
            # view of another array.
            t._grad = _wrap(g._data.copy())
    elif create_graph or state.enabled or old._requires_grad:
        # Out of place: with a graph, or when the old gradient is itself part of one (from
        # create_graph), where writing into it would corrupt what that graph saved.
        t._grad = old + g
    else:
        old.add_(g)  # grad mode is off here: the in-place op's one-NumPy-call path


def _run_pre_hooks(node: Any, g: Any, create_graph: bool) -> Any:
    hooks = node._hooks
    for nr in range(node._n_outputs):
        gi = g[nr] if node._n_outputs > 1 else g
        for hook in hooks.get(("pre", nr), ()):
            r = hook(gi)
            if r is not None:
                gi = r
        for ref in hooks.get(("retain", nr), ()):
            t = ref()
            if t is not None and gi is not None:
                # A retained gradient is a value of its own (torch clones it), never an
                # alias of a tensor that a create_graph graph may have saved.
                old = t._grad
                if old is not None:
                    t._grad = old + gi
                else:
                    t._grad = gi.clone() if create_graph else _wrap(gi._data.copy())
        if node._n_outputs > 1:
            g[nr] = gi
        else:
            g = gi
    for hook in hooks.get("prenode", ()):
        r = hook((g,) if node._n_outputs == 1 else tuple(g))
        if r is not None:
            g = r[0] if node._n_outputs == 1 else list(r)
    return g


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
    accumulate: bool = True,
    allow_unused: bool = True,
) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` to the leaves (or to `inputs`).

    With `accumulate`, gradients are added into `.grad` (of every leaf, or only of
    `inputs`); without, the gradients reaching `inputs` are returned (autograd.grad).
    """
    root_nodes = []
    for i, r in enumerate(roots):
        node = edge(r)
        if node is None:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        root_nodes.append((node, r._output_nr))

    # Targets: where the gradient w.r.t. each of `inputs` can be read.
    targets: dict[Any, list[tuple[int, int]]] = {}
    if inputs is not None:
        for k, t in enumerate(inputs):
            node = t._grad_fn if t._grad_fn is not None else accumulator(t)
            targets.setdefault(node, []).append((k, t._output_nr))

    # Pass 1: count each node's incoming edges from the reachable graph (explicit stack).
    deps: dict[Any, int] = {}
    stack = [n for n, _ in root_nodes]
    seen = set(stack)
    order = []
    keep_order = inputs is not None
    while stack:
        node = stack.pop()
        if keep_order:
            order.append(node)
        for m in node._next:
            if m is not None:
                deps[m] = deps.get(m, 0) + 1
                if m not in seen:
                    seen.add(m)
                    stack.append(m)

    needed = None
    if inputs is not None:
        needed = _needed_nodes(order, deps, targets)
        deps = {}
        for node in order:
            if node in needed:
                for m in node._next:
                    if m is not None and m in needed:
                        deps[m] = deps.get(m, 0) + 1

    buffers: dict[Any, Any] = {}
    for (node, nr), g in zip(root_nodes, root_grads, strict=True):
        _accumulate(buffers, node, nr, g)

    captured: list[Tensor | None] = [None] * (len(inputs) if inputs is not None else 0)
    ready = [n for n, _ in root_nodes if deps.get(n, 0) == 0]
    ready = list(dict.fromkeys(ready))
    prev_mode = state.enabled
    state.enabled = create_graph
    # Backward allocates many short-lived tensors and creates no cycles; the cyclic
    # collector would only re-walk the (large) live graph, so it waits until we finish.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while ready:
            node = ready.pop()
            g = buffers.pop(node, None)
            if node._hooks is not None and g is not None:
                g = _run_pre_hooks(node, g, create_graph)
            if targets and node in targets:
                _capture(node, g, targets[node], captured, inputs, accumulate, create_graph)
            if type(node) is AccumulateGrad:
                if g is not None and accumulate and (inputs is None or node in targets):
                    _accumulate_leaf(node, g, create_graph)
                continue
            nexts = node._next
            wanted = None
            if needed is not None:
                wanted = [m is not None and m in needed for m in nexts]
                if not any(wanted):
                    continue
            grads = node._apply(g, wanted, create_graph) if g is not None else None
            if grads is not None and node._hooks is not None and "post" in node._hooks:
                for hook in node._hooks["post"]:
                    hook(tuple(grads), (g,) if node._n_outputs == 1 else tuple(g))
            nrs = node._nrs
            for i, m in enumerate(nexts):
                if m is None or (wanted is not None and not wanted[i]):
                    continue
                gi = grads[i] if grads is not None else None
                if gi is not None:
                    if m._n_outputs == 1:
                        old = buffers.get(m)
                        buffers[m] = gi if old is None else old + gi
                    else:
                        _accumulate(buffers, m, nrs[i] if nrs else 0, gi)
                d = deps[m] - 1
                deps[m] = d
                if d == 0:
                    ready.append(m)
            # Drop this step's references now: a leaf's gradient is stolen (not copied)
            # only when the loop variable is its last holder.
            grads = gi = old = g = None
            if not retain_graph:
                node._release()
    finally:
        state.enabled = prev_mode
        if gc_was_enabled:
            gc.enable()

    if inputs is None or accumulate:
        return None
    if not allow_unused:
        for k, g in enumerate(captured):
            if g is None:
                raise RuntimeError(
                    f"The differentiated Tensor at index {k} appears to not have been used in "
                    f"the graph. Set allow_unused=True if this is the desired behavior."
                )
    return captured


def _capture(node: Any, g: Any, slots: list, captured: list, inputs: Any, accumulate: bool,
             create_graph: bool) -> None:
    for k, nr in slots:
        gk = g[nr] if node._n_outputs > 1 and g is not None else g
        captured[k] = gk
        if accumulate and gk is not None and type(node) is not AccumulateGrad:
            _store_grad(inputs[k], gk, create_graph)  # backward(inputs=[non-leaf])


def _accumulate_leaf(node: AccumulateGrad, g: Tensor, create_graph: bool) -> None:
    t = node._variable()
    if t is None:
        return
    for hook in (t._x or {}).get("hooks", ()):
        r = hook(g)
        if r is not None:
            g = r
    # Like torch, steal the gradient instead of copying it when nothing else can see it:
    # referenced only here and by the backward loop, over an array of its own.
    data = g._data
    owned = (
        type(data) is np.ndarray and data.base is None
        and sys.getrefcount(g) <= _LOOP_REFS and sys.getrefcount(data) <= 3
    )
    _store_grad(t, g, create_graph, owned)


def _accumulate(buffers: dict, node: Any, nr: int, g: Tensor) -> None:
    if node._n_outputs == 1:
        old = buffers.get(node)
        buffers[node] = g if old is None else old + g
    else:
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node._n_outputs
        slots[nr] = g if slots[nr] is None else slots[nr] + g


def _needed_nodes(order: list, deps: dict, targets: dict) -> set:
    """The nodes that lie on some path from a root to a target."""
    indeg = dict(deps)
    topo = []
    ready = [n for n in order if indeg.get(n, 0) == 0]
    while ready:
        node = ready.pop()
        topo.append(node)
        for m in node._next:
            if m is not None:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
    needed = set()
    for node in reversed(topo):
        if node in targets or any(m is not None and m in needed for m in node._next):
            needed.add(node)
    return needed
