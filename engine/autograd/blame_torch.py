"""Blame for PyTorch code: which custom torch.autograd.Function has the wrong backward.

torch's graph does not keep what a Function received, so the function is run once while
every `Function.apply` is recorded (the class, and copies of the actual arguments); each
recorded application is then checked alone at those arguments, in float64, exactly as
blame.py checks an engine node. torch's own ops are trusted: only users' Functions are
candidates. For a second-order failure the Functions applied while the backward is built
(with create_graph) are recorded too, and each Function's backward is checked against its
double backward.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.autograd.blame import Blame, LocalOp, backward_location, check_op
from engine.autograd.frameworks import for_name

__all__ = ["Applied", "blame_torch", "recording"]

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Applied:
    """One `Function.apply`: the class, copies of its arguments, which of them needed grad."""

    cls: type
    args: tuple
    kwargs: dict
    requires_grad: tuple[bool, ...]


def _copy(a: Any) -> Any:
    return a.detach().clone() if isinstance(a, torch.Tensor) else a


def _is_user_function(cls: type) -> bool:
    """A Function subclass that defines its own forward, torch's own aside."""
    module = cls.__module__ or ""
    return "forward" in cls.__dict__ and module.partition(".")[0] != "torch"


def _user_functions() -> list[type]:
    """Every torch.autograd.Function subclass alive that defines forward, torch's own aside."""
    found, stack, seen = [], list(torch.autograd.Function.__subclasses__()), set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        if _is_user_function(cls):
            found.append(cls)
    return found


@contextlib.contextmanager
def recording() -> Iterator[list[Applied]]:
    """Record every custom Function applied inside the block, in the order they start.

    Each user Function's `forward` is wrapped for the duration of the block (not `apply`:
    `op = MyFunction.apply` at import time holds the original). The ctx passed to forward
    says which class is applied (a subclass may inherit forward) and which inputs need grad.
    Functions defined inside the block (a class statement in the function checked) are
    wrapped as they are created: torch's metaclass initialises every subclass.
    """
    calls: list[Applied] = []

    def wrap(owner: type, original: Callable[..., Any]) -> Callable[..., Any]:
        with_ctx = owner.setup_context is torch.autograd.Function.setup_context

        def forward(*args: Any, **kwargs: Any) -> Any:
            if with_ctx:
                ctx, inputs = args[0], args[1:]
                cls = getattr(ctx, "_forward_cls", owner)
                wanted = tuple(getattr(ctx, "needs_input_grad", ()))
            else:
                cls, inputs = owner, args
                wanted = tuple(isinstance(a, torch.Tensor) and a.requires_grad for a in args)
            if any(wanted):
                # Copied before forward runs, so that an in-place forward does not change them.
                calls.append(Applied(cls, tuple(_copy(a) for a in inputs), dict(kwargs),
                                     wanted))
            return original(*args, **kwargs)

        return forward

    patched: list[tuple[type, Any]] = []

    def patch(cls: type) -> None:
        descriptor = cls.__dict__["forward"]
        patched.append((cls, descriptor))
        cls.forward = staticmethod(wrap(cls, descriptor.__get__(None, cls)))

    meta = type(torch.autograd.Function)
    init = meta.__dict__["__init__"]

    def init_and_patch(cls: type, *args: Any, **kwargs: Any) -> None:
        init(cls, *args, **kwargs)
        if _is_user_function(cls):
            patch(cls)

    with _LOCK:
        for cls in _user_functions():
            patch(cls)
        meta.__init__ = init_and_patch
        try:
            yield calls
        finally:
            meta.__init__ = init
            for cls, descriptor in patched:
                cls.forward = descriptor


def _float64(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.detach().to(torch.float64).requires_grad_(x.requires_grad)
    return x


def _local_op(call: Applied) -> tuple[LocalOp, bool]:
    """The recorded application as a LocalOp, in float64 when its forward runs in float64
    (second: whether it does)."""
    cls, kwargs = call.cls, call.kwargs

    def apply(values: list) -> list:
        out = cls.apply(*values, **kwargs)
        return list(out) if isinstance(out, tuple | list) else [out]

    args = [
        a.to(torch.float64) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
        for a in call.args
    ]
    wide = True
    try:
        with torch.no_grad():
            apply(args)
    except Exception:  # noqa: BLE001 - float32-only code: checked in its own precision
        args, wide = list(call.args), False
    diff = [
        i for i, (a, wanted) in enumerate(zip(call.args, call.requires_grad, strict=True))
        if wanted and a.is_floating_point()
    ]
    name, location = backward_location(cls)
    return LocalOp(f"{cls.__name__}Backward", apply, args, diff, name, location), wide


def _run(fn: Callable[..., Any], xs: list, order: int, seed: int) -> list[Applied]:
    """fn(*xs) (and for order 2 its create_graph backward), recording Functions applied."""
    with recording() as calls, torch.enable_grad():
        out = fn(*xs)
        if order == 2:
            outs = [o for o in (out if isinstance(out, tuple | list) else (out,))
                    if isinstance(o, torch.Tensor) and o.requires_grad]
            diff = [x for x in xs if isinstance(x, torch.Tensor) and x.requires_grad]
            rng = np.random.default_rng(seed)
            cots = [torch.from_numpy(rng.standard_normal(tuple(o.shape))).to(o.dtype)
                    for o in outs]
            torch.autograd.grad(outs, diff, cots, create_graph=True, allow_unused=True)
    return calls


def blame_torch(fn: Callable[..., Any], inputs: Sequence[Any], *, order: int = 1,
                seed: int = 0, atol: float = 1e-8, rtol: float = 1e-6) -> Blame:
    """Check every custom torch.autograd.Function fn applies, alone, at what it received."""
    try:
        calls = _run(fn, [_float64(x) for x in inputs], order, seed)
    except Exception:  # noqa: BLE001 - fn does not run in float64 (float32 parameters...)
        calls = _run(fn, [x.detach().requires_grad_(x.requires_grad)
                          if isinstance(x, torch.Tensor) else x for x in inputs], order, seed)
    adapter = for_name("torch")
    rng = np.random.default_rng(seed)
    ops = [_local_op(c) for c in calls]
    # An op that only runs in float32 is held to float32's tolerances.
    tols = [(atol, rtol) if wide else (max(atol, 1e-4), max(rtol, 1e-3)) for _, wide in ops]
    checks = [check_op(adapter, op, i, rng, *tol)
              for i, ((op, _), tol) in enumerate(zip(ops, tols, strict=True))]
    if order == 1 or any(not c.ok for c in checks):
        return Blame(checks)
    return Blame(checks + [check_op(adapter, op, i, rng, *tol, order=2)
                           for i, ((op, _), tol) in enumerate(zip(ops, tols, strict=True))])
