"""The graph: nodes, recording an op, and the backward loop.

Read `reference_backward` first: it is the whole algorithm as a textbook writes it, and
the specification the fast loop is tested against. In short:

- recording (`record`): every op on tensors that require grad leaves a `Node` behind its
  output: the op (a row of engine/_ops.py, whose derivative rules are written in engine ops),
  the op's arguments, and one edge per input to the node that produced that input (a leaf's
  edge is its `AccumulateGrad`);
- applying a node (`Node._apply`): given the gradient of its output, the node's rules give
  the gradient of each input: the chain rule, one op at a time;
- the loop (`reference_backward`): visit the nodes from the root back to the leaves, each
  after every node that uses its output, so that its gradient is complete when it runs;
  where paths meet, gradients add up; at a leaf they land in `.grad`.

Everything else in this module makes that fast, and each piece is justified by a figure in
benchmarks/README.md ("Engine core" and issue 15's section): `record_pair` / `record_one`
(straight-line recording for one or two operands: the scalar graph), nodes that keep values
instead of tensors and their edges in two slots (GC pressure on 100k-node graphs), and
only the shapes of inputs whose values no rule reads (add's, tanh's: the MLP step's memory),
`_apply_arrays` (plain rules on NumPy arrays, no tensor per intermediate: the MLP step), and
`run_backward` (nodes taken latest-recorded first off a heap of sequence numbers instead of a
sort, which is torch's order and needs no counting pass: the scalar graph; a short path per
common node, stolen leaf gradients: the 1M-op chain). tests/engine/test_reference_backward.py
runs every graph of the op-case matrix through both loops and requires identical gradients.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import re
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from engine._broadcast import sum_to, sum_to_array
from engine._grad_mode import state
from engine.tensor import SEQUENCE, WRITES, Tensor, VersionCounter, _HookHandle, _wrap

_new = object.__new__
_LOOP_REFS = 3  # references to a popped gradient: the loop's variable, a parameter, getrefcount

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)


_MANY = object()  # Node._e1 of a node whose edges are all in _e0, as a tuple
_ABSENT = object()  # run_backward: a node with no gradient (nor None) yet, not yet queued
heappop, heappush = heapq.heappop, heapq.heappush
# Arguments that Node._release keeps as they are (the scalar graph's: nothing to do).
_SCALAR_TYPES = frozenset((int, float, bool, complex, np.float16, np.float32, np.float64))

# Node._fit: what the input gradients may need fitting to: nothing, their inputs' shapes
# (broadcasting happened), or shapes and dtypes (promotion happened, or not known).
FIT_NONE, FIT_SHAPE, FIT_ALL = 0, 1, 2


def _edges(node: Any) -> tuple:
    """A node's edges, one per input (a Node keeps them in two slots, other nodes in _next)."""
    if type(node) is not Node:
        return node._next
    if node._e1 is _MANY:
        return node._e0
    return (node._e0,) if node._op.n_inputs == 1 else (node._e0, node._e1)


class Node:
    """A recorded op application: what `tensor.grad_fn` returns (e.g. `MulBackward0`)."""

    __slots__ = (
        "_op", "_args", "_e0", "_e1", "_nrs", "_versions", "_seq", "_out", "_out_vc",
        "_hooks", "_fit",
    )
    _n_outputs = 1

    # The edges, one per input (None where no gradient flows). A node of one or two inputs
    # keeps them in two slots rather than in a tuple: a tuple per node would be one more
    # object for Python's cyclic collector to walk on every pass over a large graph. With one
    # input, _e1 is None, so backward walks every node of one or two inputs as the pair
    # (_e0, _e1), and a node of more as the tuple _e0 (with _e1 = _MANY).
    @property
    def _next(self) -> tuple:
        return _edges(self)

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
    # A node keeps its arguments. An input that requires grad and is clean (never written in
    # place, viewed or detached) is kept as its value, not as the tensor: the tensor may then
    # die with the user's last reference, which keeps a scalar graph at few live objects per
    # op. Backward rebuilds it from the value and the edge, which is its history. Its version
    # is read where a later write is recorded: on the producing node (`_out_vc`, see
    # `version_counter`) or, for a leaf, on the leaf itself.
    def _inputs(self) -> list:
        """The op's arguments, inputs kept as values rebuilt as tensors with their history."""
        args = self._args
        if args is None:
            raise RuntimeError(FREED_MESSAGE)
        out = list(args)
        for i, m in enumerate(self._next):
            if m is not None and not isinstance(out[i], Tensor):
                out[i] = _rebuilt(out[i], m, self._nrs[i] if self._nrs else 0)
        return out

    def _edge(self, i: int) -> Any:
        """The edge of input i (None past the inputs: static arguments)."""
        e1 = self._e1
        if e1 is _MANY:
            return self._e0[i] if i < len(self._e0) else None
        return self._e0 if i == 0 else e1 if i == 1 else None

    def _check_versions(self) -> None:
        args, versions = self._args, self._versions
        for k, i in enumerate(self._op.saves):
            a = args[i]
            if isinstance(a, Tensor):
                vc = a._vc
                then = 0 if versions is None else versions[k]
            else:
                m = self._edge(i)
                if m is None:
                    continue
                vc = _edge_counter(m)
                then = 0
            if vc is None or vc.v == then or not self._reads(i):
                continue
            if not isinstance(a, Tensor):
                # Named as the written tensor is now (torch: "output 0 of Add").
                owner = vc.owner() if vc.owner is not None else None
                if owner is None:
                    owner = _rebuilt(a, m, self._nrs[i] if self._nrs else 0)
                a = owner
            raise RuntimeError(_modified_message(a, vc.v, then))

    def _reads(self, i: int) -> bool:
        # Whether a rule that will run reads input i (torch saves `self` for mul only when
        # `other` needs a gradient, so only then can modifying it break backward).
        reads = self._op.reads
        if reads is None:
            return True
        return any(nxt is not None and i in reads[j] for j, nxt in enumerate(self._next))

    def _saved_output_value(self) -> Any:
        """The output the rules read, unless freed or written since."""
        if self._out is None:
            raise RuntimeError(FREED_MESSAGE)
        vc = self._out_vc
        if vc is not None and vc.v:
            out = _wrap(self._out)
            out._grad_fn = self
            raise RuntimeError(_modified_message(out, vc.v, 0))
        return self._out

    def _saved_output(self, create_graph: bool) -> Tensor:
        out = _wrap(self._saved_output_value())
        if create_graph:
            # The output as the rule's input carries this very node as its history, which is
            # what makes exp's derivative exp(x) differentiable again (as torch's SavedVariable).
            out._grad_fn = self
            out._requires_grad = True
        return out

    def _release(self) -> None:
        if self._op.frees:
            self._args = None
            self._out = None
            return
        # Ops that save no values (add, sum, view...) need only shapes and dtypes: a second
        # backward works, as in torch. Array inputs give way to zero-strided stand-ins so
        # the graph does not keep their memory alive; scalars cost nothing to keep (and the
        # scalar graph's `y + 1` nodes keep nothing else: no new tuple for them).
        args = self._args
        if not _SCALAR_TYPES.issuperset(map(type, args)):
            self._args = tuple(map(_shape_only, args))

    def _apply(self, g: Any, wanted: Sequence[bool] | None, create_graph: bool) -> list:
        """The gradients for the inputs, given the output's, as tensors: the rules run on
        tensors, so with `create_graph` they record a graph of their own."""
        op = self._op
        args = self._args
        if args is None:
            raise RuntimeError(FREED_MESSAGE)
        if op.saves and self._seq < WRITES[0]:
            self._check_versions()
        if not isinstance(g, Tensor):
            g = _wrap(g)
        args = self._inputs()
        if op.saves_output:
            args = (*args, self._saved_output(create_graph))
        rules = op.rules
        nexts = self._next
        if wanted is not None:  # (wanted may be padded to two: zip stops at the inputs)
            nexts = [m if w else None for m, w in zip(nexts, wanted)]  # noqa: B905
        if op.variadic:
            grads = [None if m is None else rules(g, i, *args) for i, m in enumerate(nexts)]
        elif len(nexts) == 1:
            grads = [rules[0](g, *args)]  # the only edge of a node is never None
        else:
            grads = [None if m is None else rules[i](g, *args) for i, m in enumerate(nexts)]
        if op.broadcasts and self._fit:
            _fit_all(grads, args)
        return grads

    def _apply_arrays(self, g: Any) -> list | None:
        """The gradients for the inputs as arrays: a `plain` op's rules run on the arrays.

        Backward without `create_graph` takes this path. A plain op's rules use only
        arithmetic that arrays share with tensors, so the same formulas give the same numbers
        without a tensor per intermediate. NumPy and torch promote mixed dtypes differently:
        where an operand may differ in dtype from the gradient (a node recorded with FIT_ALL,
        or a gradient that a hook or a tensor rule made), the operands are checked, and None
        sends the node to the tensor path.
        """
        args = self._args
        if args is None:
            raise RuntimeError(FREED_MESSAGE)
        op = self._op
        if op.saves and self._seq < WRITES[0]:  # (no write since: nothing to check)
            self._check_versions()
        fit = self._fit
        check = fit == FIT_ALL
        if isinstance(g, Tensor):
            g = g._data
            check = True
        if op.pair:
            # Two inputs (most ops), spelled out, rules called here: this runs once per node
            # of a scalar graph (the `_rules_on` call and its *datas cost a tenth of a node).
            d0, d1 = args
            if isinstance(d0, Tensor):
                d0 = d0._data
            if isinstance(d1, Tensor):
                d1 = d1._data
            if check and (_foreign(d0, g) or _foreign(d1, g)):
                return None
            rules = op.rules
            e0, e1 = self._e0, self._e1
            try:
                grads = [None if e0 is None else rules[0](g, d0, d1),
                         None if e1 is None else rules[1](g, d0, d1)]
            except RuntimeWarning:  # a user's filter made NumPy's warnings errors: be quiet
                with np.errstate(all="ignore"):
                    grads = self._rules_on(g, (d0, d1))
            if not fit:
                return grads
            datas = (d0, d1)
        else:
            datas = [a._data if isinstance(a, Tensor) else a for a in args]
            if check and any(_foreign(d, g) for d in datas):
                return None
            if op.saves_output:
                datas.append(self._saved_output_value())
            try:
                grads = self._rules_on(g, datas)
            except RuntimeWarning:  # as above
                with np.errstate(all="ignore"):
                    grads = self._rules_on(g, datas)
        if fit and op.broadcasts:  # (inputs with a gradient are NumPy values)
            for i, gi in enumerate(grads):
                if gi is not None and gi.shape != datas[i].shape:
                    grads[i] = sum_to_array(gi, datas[i].shape)
        return grads

    def _rules_on(self, g: Any, datas: Sequence) -> list:
        """The rules of the inputs that have an edge, on `datas`."""
        rules = self._op.rules
        if self._op.n_inputs == 1:
            return [rules[0](g, *datas)]  # the only edge of a node is never None
        if self._e1 is not _MANY:  # two inputs, spelled out: once per node of a scalar graph
            e0, e1 = self._e0, self._e1
            return [None if e0 is None else rules[0](g, *datas),
                    None if e1 is None else rules[1](g, *datas)]
        return [None if m is None else rules[i](g, *datas) for i, m in enumerate(self._e0)]

    # ---- hooks ---------------------------------------------------------------------------
    def _retain(self, nr: int, ref: Callable[[], Tensor | None]) -> None:
        hooks = self._hooks = self._hooks or {}
        hooks.setdefault(("retain", nr), []).append(ref)

    def _add_tensor_hook(self, nr: int, hook: Callable) -> Any:
        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault(("pre", nr), []), hook)

    def register_hook(self, fn: Callable) -> Any:
        """Call fn(grad_inputs, grad_outputs) after this node runs."""
        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault("post", []), fn)

    def register_prehook(self, fn: Callable) -> Any:
        """Call fn(grad_outputs) before this node runs; it may return replacements."""
        hooks = self._hooks = self._hooks or {}
        return _HookHandle(hooks.setdefault("prenode", []), fn)


class AccumulateGrad:
    """The node behind a leaf: adds the incoming gradient into `variable.grad`."""

    __slots__ = ("_variable", "_seq", "__weakref__")
    _n_outputs = 1
    _next = ()
    _e0 = _e1 = None  # no edges, as backward walks them
    _hooks = None

    def __init__(self, variable: Tensor) -> None:
        # A weak reference: the leaf holds this node, and a cycle would defeat refcounting.
        self._variable = weakref.ref(variable)
        # Created on the leaf's first use, so numbered before every node that consumes it:
        # run_backward (highest number first) runs it right after its last consumer, when its
        # gradient is complete, as torch runs an AccumulateGrad as soon as it is ready. Once a
        # backward has run it, `retire` hands the leaf's next use a new accumulator (numbered
        # then), and this one, which older retained graphs may still reach, runs last.
        self._seq = next(SEQUENCE)

    def retire(self) -> None:
        """After a backward ran it: last in any later backward, and no longer the leaf's."""
        if self._seq > 0:
            self._seq = -self._seq
        t = self._variable()
        if t is not None and t._acc is self:
            t._acc = None

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


def record(op: Any, out: Any, args: tuple, fit: int = FIT_ALL) -> Tensor:
    """Wrap `out` as the result of `op` on `args`, with a node if grad must flow."""
    if not state.enabled:
        return _wrap(out)
    n = op.n_inputs if not op.variadic else len(args) - op.n_static
    nexts = []
    kept = None
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
            if _kept(a, fn):
                kept = kept or list(args)
                kept[k] = a._data
        else:
            nexts.append(None)
    if not has_edge:
        return _wrap(out)
    nrs = (
        tuple(a._output_nr if isinstance(a, Tensor) else 0 for a in args[:n]) if has_nr else None
    )
    if n == 2:
        e0, e1 = nexts
    elif n == 1 and not op.variadic:
        e0, e1 = nexts[0], None
    else:
        e0, e1 = tuple(nexts), _MANY
    return _attach(op, out, args if kept is None else tuple(kept), e0, e1, nrs, fit,
                   _versions(op, args))


def record_pair(op: Any, out: Any, a: Any, b: Any, fit: int) -> Tensor:
    """`record` for an op of two operands, with grad mode on.

    The common case of every scalar graph and every layer, kept to a straight line. Inputs
    that are outputs of several (custom Functions, multi-output ops) take `record`. The node
    keeps clean inputs' values (see `_kept`), other operands as given.
    """
    edges = []
    kept = []
    written = False  # whether an operand has a version counter, to be remembered
    for x in a, b:
        e = None
        if isinstance(x, Tensor):
            if x._requires_grad:
                e = x._grad_fn
                if e is None:
                    e = x._acc or accumulator(x)
                elif type(e) is not Node:  # (a Node has one output: output_nr is 0)
                    return record(op, out, (a, b), fit)
            if x._vc is not None:
                written = True
            elif e is not None:
                x = x._data
        edges.append(e)
        kept.append(x)
    e0, e1 = edges
    if e0 is None and e1 is None:
        return _wrap(out)
    if op.saves:
        versions = _versions(op, (a, b)) if written else None
        return _attach(op, out, tuple(kept), e0, e1, None, fit, versions)
    # Values no rule reads: shapes are enough, and the memory goes now (for an array result:
    # the scalar graph's values cost nothing to keep).
    if type(out) is _ndarray and not state.keep_inputs:
        return _attach(op, out, (_shape_only(kept[0]), _shape_only(kept[1])), e0, e1, None, fit,
                       None)
    return _attach(op, out, tuple(kept), e0, e1, None, fit, None)


def record_one(op: Any, out: Any, x: Tensor, static: tuple) -> Tensor:
    """`record` for an op of one tensor that requires grad (and static arguments)."""
    fn = x._grad_fn
    if fn is None:
        fn = x._acc or accumulator(x)
    elif type(fn) is not Node:  # (as in record_pair)
        return record(op, out, (x, *static))
    # A static NumPy scalar may have made the output's dtype differ from x's.
    fit = FIT_ALL if out.dtype != x._data.dtype else FIT_NONE
    if not op.saves:  # (as in record_pair: tanh reads its output, a view op only shapes)
        if type(out) is _ndarray and not state.keep_inputs:
            return _attach(op, out, (_shape_only(x._data), *static), fn, None, None, fit, None)
        return _attach(op, out, (x._data if x._vc is None else x, *static), fn, None, None,
                       fit, None)
    if x._vc is None:
        return _attach(op, out, (x._data, *static), fn, None, None, fit, None)
    args = (x, *static)
    return _attach(op, out, args, fn, None, None, fit, _versions(op, args))


_ndarray = np.ndarray


def _attach(op: Any, out: Any, args: tuple, e0: Any, e1: Any, nrs: tuple | None, fit: int,
            versions: tuple | None) -> Tensor:
    """The node recording `op` (edges as in Node._e0/_e1) and its output tensor over `out`."""
    node = _new(Node)
    node._op = op
    node._args = args
    node._e0 = e0
    node._e1 = e1
    node._nrs = nrs
    node._hooks = None
    node._fit = fit
    node._versions = versions
    node._seq = next(SEQUENCE)  # (tensor.SEQUENCE: backward's order, and the write check)
    node._out = out if op.saves_output else None
    node._out_vc = None  # the output's counter, lent by `version_counter` when first needed
    return _wrap(out, node)


def _versions(op: Any, args: tuple) -> tuple[int, ...] | None:
    """The versions of the saved inputs now, unless all are at version 0."""
    if not op.saves:
        return None
    versions = []
    for i in op.saves:
        vc = getattr(args[i], "_vc", None)
        versions.append(0 if vc is None else vc.v)
    return tuple(versions) if any(versions) else None


def _rebuilt(value: Any, edge: Any, output_nr: int) -> Tensor:
    """A tensor over an input's kept value, with the history its edge records."""
    t = _wrap(value)
    t._requires_grad = True
    t._output_nr = output_nr
    if type(edge) is AccumulateGrad:
        t._acc = edge  # a leaf's stand-in: its gradient flows to the leaf's accumulator
    else:
        t._grad_fn = edge
    return t


def _foreign(d: Any, g: Any) -> bool:
    """Whether operand d is a NumPy value of another dtype than the gradient g."""
    t = type(d)
    # Operands of g's own type (float32 scalars, ...) share its dtype; arrays are checked.
    return (t is np.ndarray or (t is not type(g) and isinstance(d, np.generic))) and (
        d.dtype != g.dtype
    )


def _edge_counter(edge: Any) -> VersionCounter | None:
    """The version counter of the value behind an edge, if it has one yet."""
    if type(edge) is AccumulateGrad:
        leaf = edge._variable()
        return None if leaf is None else leaf._vc
    return getattr(edge, "_out_vc", None)


def _kept(a: Any, fn: Any) -> bool:
    """Whether input `a` (which requires grad, with edge `fn`) may be kept as its value."""
    return a._vc is None and not a._output_nr and (type(fn) is Node or fn is a._acc)


@contextlib.contextmanager
def keeping_inputs() -> Iterator[None]:
    """Nodes recorded inside keep the values of all their inputs, not only of those their
    rules read: what blame needs to replay every node alone at the inputs it had."""
    prev = state.keep_inputs
    state.keep_inputs = True
    try:
        yield
    finally:
        state.keep_inputs = prev


def is_shape_only(a: Any) -> bool:
    """Whether a node's kept argument is a stand-in made by `_shape_only`."""
    if isinstance(a, Tensor):
        return a is _stub(a._data.shape, a._data.dtype, a._requires_grad)
    return type(a) is np.ndarray and a is _stub(a.shape, a.dtype, True)._data


def _shape_only(a: Any) -> Any:
    """A stand-in with a's shape and dtype and no memory (a itself for a scalar)."""
    if type(a) is np.ndarray:
        return _stub(a.shape, a.dtype, True)._data
    if isinstance(a, Tensor):
        return _stub(a._data.shape, a._data.dtype, a._requires_grad)
    return a


@functools.lru_cache(maxsize=256)
def _stub(shape: tuple[int, ...], dtype: np.dtype, requires_grad: bool) -> Tensor:
    # A read-only, zero-strided array: it has the shape and dtype and no memory, so one
    # stand-in serves every node that needs it.
    stub = _wrap(np.broadcast_to(np.zeros((), dtype), shape))
    stub._requires_grad = requires_grad
    return stub


def _fit_all(grads: list, args: Sequence) -> None:
    """Fit each gradient to its input's shape and dtype where they differ, in place."""
    for i, gi in enumerate(grads):
        a = args[i]
        if gi is not None and isinstance(a, Tensor) and (
            gi._data.shape != a._data.shape or gi._data.dtype != a._data.dtype
        ):
            grads[i] = _fit(gi, a)


def _fit(g: Tensor, like: Any) -> Tensor:
    """Sum a broadcast gradient back to the input's shape and give it the input's dtype."""
    if not isinstance(like, Tensor):
        return g
    shape = like._data.shape
    if g._data.shape != shape:
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


# ---- the reference backward: the specification ------------------------------------------------
def topological_order(roots: Sequence[Any]) -> list:
    """The nodes reachable from `roots`, every node after all the nodes it feeds.

    A depth-first walk with an explicit stack (a 1,000,000-op chain is no harder than a short
    one): a node is emitted once all its inputs' nodes have been, so the reversed list starts
    at the roots and reaches each node only after everything that uses its output.
    """
    order: list = []
    seen: set = set()
    stack = [(node, False) for node in roots]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((m, False) for m in _edges(node) if m is not None and m not in seen)
    return order


def reference_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor],
                       retain_graph: bool = False, create_graph: bool = False) -> None:
    """Accumulate d(roots)/d(leaf) into every leaf's .grad: the plain loop `run_backward`
    is an optimisation of (same arguments, same numbers; see the module docstring)."""
    grads: dict = {}  # node -> the gradient of its output(s), summed over every path so far
    for root, g in zip(roots, root_grads, strict=True):
        _add_grad(grads, edge(root), root._output_nr, g)
    prev_mode = state.enabled
    state.enabled = create_graph  # the rules record a graph of their own only if asked to
    try:
        for node in reversed(topological_order([edge(r) for r in roots])):
            g = grads.pop(node, None)
            if g is None:
                continue  # no path from a root carries a gradient here
            if node._hooks:
                g = _run_pre_hooks(node, g, create_graph)
            if type(node) is AccumulateGrad:  # a leaf: the gradient lands in .grad
                _accumulate_leaf(node, g, create_graph)
                continue
            # The chain rule: the node's rules turn its output's gradient into its inputs'.
            input_grads = node._apply(g, None, create_graph)
            nrs = node._nrs or (0,) * len(_edges(node))
            for m, nr, gi in zip(_edges(node), nrs, input_grads, strict=False):
                if m is not None and gi is not None:
                    _add_grad(grads, m, nr, gi)
            if not retain_graph:
                node._release()
    finally:
        state.enabled = prev_mode


def _add_grad(grads: dict, node: Any, nr: int, g: Tensor) -> None:
    """grads[node] += g (per output, for a node with several)."""
    if node._n_outputs == 1:
        grads[node] = g if node not in grads else grads[node] + g
        return
    slots = grads.setdefault(node, [None] * node._n_outputs)
    slots[nr] = g if slots[nr] is None else slots[nr] + g


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
    accumulate: bool = True,
    allow_unused: bool = True,
) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` to the leaves (or to `inputs`): the fast loop.

    With `accumulate`, gradients are added into `.grad` (of every leaf, or only of
    `inputs`); without, the gradients reaching `inputs` are returned (autograd.grad).
    It computes what `reference_backward` computes; instead of a sorted node list it runs
    the nodes from the latest recorded back (a heap of sequence numbers), and gradients
    between `plain` nodes flow as NumPy arrays.
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
    needed = None
    if inputs is not None:
        # Only the nodes on a path from a root to a target run: count each reachable node's
        # incoming edges (explicit stack), then walk back from the targets.
        deps: dict[Any, int] = {}
        order = []
        stack = [n for n, _ in root_nodes]
        seen = set(stack)
        while stack:
            node = stack.pop()
            order.append(node)
            for m in node._next:
                if m is not None:
                    deps[m] = deps.get(m, 0) + 1
                    if m not in seen:
                        seen.add(m)
                        stack.append(m)
        # A leaf's gradient arrives at the accumulators the graph holds for it: its own, or
        # the ones it had before earlier backwards (AccumulateGrad.retire).
        held: dict[int, list[AccumulateGrad]] = {}
        for node in order:
            if type(node) is AccumulateGrad:
                held.setdefault(id(node._variable()), []).append(node)
        for k, t in enumerate(inputs):
            if t._grad_fn is not None:
                nodes = [t._grad_fn]
            else:
                own = accumulator(t)
                nodes = [own, *(a for a in held.get(id(t), ()) if a is not own)]
            for node in nodes:
                targets.setdefault(node, []).append((k, t._output_nr))
        needed = _needed_nodes(order, deps, targets)

    # Without create_graph, gradients flow as arrays between plain nodes (`_apply_arrays`);
    # any other node sees tensors. (Root gradients already have their outputs' dtypes.)
    raw = not create_graph
    buffers: dict[Any, Any] = {}  # node -> its gradient so far; a node here is in `heap`
    for (node, nr), g in zip(root_nodes, root_grads, strict=True):
        _accumulate(buffers, node, nr, g._data if raw else g)
    # The nodes to run, the latest recorded first (torch's order). Every consumer of a node
    # was recorded after it, so when a node comes off the heap, all its gradient has arrived:
    # no pass to count consumers first. A leaf's accumulator is numbered before its first
    # consumer, so it runs as soon as its gradient is complete (see AccumulateGrad).
    heap = [(-node._seq, node) for node in buffers]
    heapq.heapify(heap)

    captured: list[Tensor | None] = [None] * (len(inputs) if inputs is not None else 0)
    prev_mode = state.enabled
    state.enabled = create_graph
    # Backward allocates many short-lived tensors and creates no cycles; the cyclic
    # collector would only re-walk the (large) live graph, so it waits until we finish.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    # The common case (no create_graph, no inputs=, no hooks) takes a short path per node.
    simple = raw and not targets
    try:
        while heap:
            node = heappop(heap)[1]
            g = buffers.pop(node)
            kind = type(node)
            if kind is AccumulateGrad:
                # Drop the last node's references first: a leaf's gradient is stolen (not
                # copied) only when the loop variable is its last holder.
                grads = gi = old = None
                if targets and node in targets:
                    g = None if g is None else _as_tensors(g)
                    _capture(node, g, targets[node], captured, inputs, accumulate, create_graph)
                if g is not None and accumulate and (inputs is None or node in targets):
                    _accumulate_leaf(node, g, create_graph)
                node.retire()
                continue
            nexts = node._e0 if node._e1 is _MANY else (node._e0, node._e1)  # (see Node)
            if not (simple and kind is Node and node._hooks is None):
                g, nexts, grads = _node_grads(node, g, nexts, raw, create_graph, needed)
                if targets and node in targets:
                    _capture(node, g, targets[node], captured, inputs, accumulate, create_graph)
            elif g is None:
                grads = (None,) * len(nexts)
            else:
                grads = node._apply_arrays(g) if node._op.plain else None
                if grads is None:  # not plain, or operands of mixed dtypes
                    grads = node._apply(g, None, False)
            for i, m in enumerate(nexts):
                if m is None:
                    continue
                gi = grads[i]
                if m._n_outputs == 1:
                    old = buffers.get(m, _ABSENT)
                    if old is _ABSENT:  # the first gradient for m (None still runs m)
                        buffers[m] = gi
                        heappush(heap, (-m._seq, m))
                    elif gi is not None:
                        if old is None:
                            buffers[m] = gi
                        elif type(old) is type(gi) and type(gi) in _SCALAR_TYPES:
                            buffers[m] = old + gi  # two NumPy scalars of one dtype (scalar graph)
                        else:
                            buffers[m] = _sum_grads(old, gi)
                else:
                    if m not in buffers:
                        buffers[m] = None
                        heappush(heap, (-m._seq, m))
                    if gi is not None:
                        _accumulate(buffers, m, node._nrs[i] if node._nrs else 0, gi)
            if not retain_graph:
                if kind is Node and node._op.frees:  # Node._release's first case, without a call
                    node._args = node._out = None
                else:
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


def _node_grads(
    node: Any, g: Any, nexts: Sequence, raw: bool, create_graph: bool, needed: set | None
) -> tuple[Any, Sequence, Sequence]:
    """A node's gradient (after its hooks), edges and input gradients in the general case:
    hooks, `inputs=`, custom Functions. Edges that lead to no wanted input come back None."""
    if g is not None:
        g = _as_tensors(g)  # hooks and custom Functions see tensors
        if node._hooks is not None:
            g = _run_pre_hooks(node, g, create_graph)
    wanted = None
    if needed is not None:
        wanted = [m is not None and m in needed for m in nexts]
        nexts = [m if w else None for m, w in zip(nexts, wanted, strict=True)]
    if g is None or (wanted is not None and not any(wanted)):
        return g, nexts, (None,) * len(nexts)
    grads = None
    if raw and type(node) is Node and node._op.plain and wanted is None:
        grads = node._apply_arrays(g)
    if grads is None:
        grads = node._apply(g, wanted, create_graph)
    if node._hooks is not None and "post" in node._hooks:
        grads = [None if gi is None else _as_tensors(gi) for gi in grads]
        for hook in node._hooks["post"]:
            hook(tuple(grads), (g,) if node._n_outputs == 1 else tuple(g))
    return g, nexts, grads


def _capture(node: Any, g: Any, slots: list, captured: list, inputs: Any, accumulate: bool,
             create_graph: bool) -> None:
    for k, nr in slots:
        gk = g[nr] if node._n_outputs > 1 and g is not None else g
        if captured[k] is not None and gk is not None:  # a leaf's second accumulator
            gk = _sum_grads(captured[k], gk)
        captured[k] = gk
        if accumulate and gk is not None and type(node) is not AccumulateGrad:
            _store_grad(inputs[k], gk, create_graph)  # backward(inputs=[non-leaf])


def _accumulate_leaf(node: AccumulateGrad, g: Any, create_graph: bool) -> None:
    """Add a leaf's gradient (a tensor, or an array from the array path) into its .grad."""
    t = node._variable()
    if t is None:
        return
    hooks = t._x.get("hooks") if t._x else None
    if hooks:
        g = _as_tensors(g)
        for hook in hooks:
            r = hook(g)
            if r is not None:
                g = r
    # Like torch, steal the gradient instead of copying it when nothing else can see it:
    # referenced only here and by the backward loop, over an array of its own.
    if isinstance(g, Tensor):
        data = g._data
        owned = (
            type(data) is np.ndarray and data.base is None
            and sys.getrefcount(g) <= _LOOP_REFS and sys.getrefcount(data) <= 3
        )
    else:
        owned = type(g) is np.ndarray and g.base is None and sys.getrefcount(g) <= _LOOP_REFS
        g = _wrap(g)
    _store_grad(t, g, create_graph, owned)


def _accumulate(buffers: dict, node: Any, nr: int, g: Any) -> None:
    if node._n_outputs == 1:
        old = buffers.get(node)
        buffers[node] = g if old is None else _sum_grads(old, g)
    else:
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node._n_outputs
        slots[nr] = g if slots[nr] is None else _sum_grads(slots[nr], g)


def _sum_grads(a: Any, b: Any) -> Any:
    """Two gradients for one value added: as arrays when both are arrays of one dtype."""
    if isinstance(a, Tensor) or isinstance(b, Tensor) or a.dtype != b.dtype:
        return _as_tensors(a) + _as_tensors(b)  # torch's promotion, and a graph if one is built
    return a + b


def _as_tensors(g: Any) -> Any:
    """A gradient (or a multi-output node's list of them) as tensors."""
    if isinstance(g, Tensor):
        return g
    if isinstance(g, list):
        return [None if x is None else _as_tensors(x) for x in g]
    return _wrap(g)


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
