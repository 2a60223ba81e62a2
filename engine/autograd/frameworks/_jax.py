"""JAX: jax.Array inputs and a JAX function, the analytic side from `jax.vjp` (`jax.jvp`,
by `jax.linearize`, for the Jacobian when it has fewer columns than rows).

JAX has no `requires_grad`: every floating input is differentiated. x64 is handled
explicitly: the function runs under the caller's setting for the arrays it was given, and
under `jax.enable_x64(True)` whenever the checker hands it float64 arrays (the float64
numeric reference and the float64 re-run of a float32 function), so that a float32 check
gets a float64 reference even when x64 is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from engine.autograd.frameworks import Adapter

# Calls of one function (and static arguments) run op by op before it is compiled.
_JIT_AFTER = 48


class JaxAdapter(Adapter):
    """JAX arrays; VJPs by jax.vjp, one linearisation per run, reused for every cotangent."""

    name = "jax"
    backward_name = "vjp"

    def __init__(self) -> None:
        self._vjps: dict[int, tuple[tuple, Callable]] = {}
        self._jvps: dict[int, tuple[tuple, Callable | None]] = {}
        self._compiled: dict[tuple, tuple[Callable, Callable | None]] = {}
        self._calls: dict[tuple, int] = {}

    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, jax.Array)

    def to_numpy(self, obj: Any) -> np.ndarray:
        return np.asarray(obj)

    def dtype_of(self, obj: Any) -> np.dtype:
        return np.dtype(obj.dtype)

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        with _precision([values]):
            return jnp.asarray(values)

    def requires_grad(self, obj: Any) -> bool:
        return self.is_floating(obj)

    def call(self, func: Callable[..., Any], args: Sequence[Any]) -> tuple:
        with _precision(args):
            compiled = self._jit(func, args)
            if compiled is not None:
                try:
                    out = compiled(*args)
                    return tuple(out) if isinstance(out, tuple | list) else (out,)
                except Exception:  # noqa: BLE001 - not traceable (Python control flow on
                    # values, NumPy calls): run it op by op from now on, as the user does.
                    self._compiled[self._key(func, args)] = (func, None)
            return super().call(func, args)

    @staticmethod
    def _key(func: Callable[..., Any], args: Sequence[Any]) -> tuple:
        return (id(func), tuple(i for i, a in enumerate(args) if _static(a)))

    def _jit(self, func: Callable[..., Any], args: Sequence[Any]) -> Callable | None:
        """func under jax.jit (non-array arguments static) once it has been called often,
        None before that or if it does not trace.

        Compiling costs tens of milliseconds; a call op by op, about one.  Most checks settle
        in a dozen evaluations, so only a function the checker keeps evaluating (the
        Richardson ladder, many inputs) is compiled, after which each call costs
        microseconds instead of a dispatch per op.
        """
        key = self._key(func, args)
        entry = self._compiled.get(key)
        if entry is None:
            calls = self._calls[key] = self._calls.get(key, 0) + 1
            if calls < _JIT_AFTER:
                return None
            # Holding func keeps its id ours for as long as the entry lives.
            entry = self._compiled[key] = (func, jax.jit(func, static_argnums=key[1]))
        return entry[1]

    def _floating_outputs(self, func: Callable[..., Any], args: tuple, diff: Sequence[int]
                          ) -> Callable[..., tuple]:
        """func as a function of the differentiated inputs, returning its float outputs."""

        def restricted(*values: Any) -> tuple:
            full = list(args)
            for i, v in zip(diff, values, strict=True):
                full[i] = v
            return tuple(o for o in super(JaxAdapter, self).call(func, full)
                         if self.is_floating(o))

        return restricted

    def vjp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], outs: Sequence[Any],
        cotangents: Sequence[Any],
    ) -> list[Any]:
        entry = self._vjps.get(id(args))
        with _precision(args):
            if entry is None or entry[0] is not args:
                _, pullback = jax.vjp(
                    self._floating_outputs(func, args, diff), *[args[i] for i in diff]
                )
                # Keyed by the inputs' identity, and holding them, so the key stays theirs.
                entry = self._vjps[id(args)] = (args, pullback)
            return list(entry[1](tuple(cotangents)))

    def jvp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], tangents: Sequence[Any]
    ) -> list[Any] | None:
        """By one jax.linearize per run, reused for every tangent; None for a function
        without forward mode (a custom_vjp: its rule is a vjp, which the rows check)."""
        entry = self._jvps.get(id(args))
        with _precision(args):
            if entry is None or entry[0] is not args:
                _, forward = jax.linearize(
                    self._floating_outputs(func, args, diff), *[args[i] for i in diff]
                )
                entry = self._jvps[id(args)] = (args, forward)
            if entry[1] is None:
                return None
            try:
                return list(entry[1](*tangents))
            except TypeError:  # "can't apply forward-mode autodiff (jvp) to a custom_vjp"
                self._jvps[id(args)] = (args, None)
                return None

    def first_derivative(
        self, func: Callable[..., Any], n_in: int, diff: Sequence[int]
    ) -> Callable[..., tuple]:
        def gradients(*args: Any) -> tuple:
            ins, gos = tuple(args[:n_in]), args[n_in:]
            _, pullback = jax.vjp(self._floating_outputs(func, ins, diff), *[ins[i] for i in diff])
            return tuple(pullback(tuple(gos)))

        return gradients

    def note(self, dtypes: Sequence[np.dtype]) -> str:
        if jax.config.jax_enable_x64:
            return ""
        return (
            "(JAX x64 is off: the function was checked in float32, as it runs for you; the "
            "numeric reference and the float64 re-run used jax.enable_x64)\n"
        )


def _static(arg: Any) -> bool:
    """Arguments jit must treat as constants: anything hashable that is not an array."""
    if isinstance(arg, jax.Array | np.ndarray):
        return False
    try:
        hash(arg)
    except TypeError:
        return False
    return True


def _precision(arrays: Sequence[Any]) -> contextlib.AbstractContextManager:
    """x64 on while float64 arrays are made or used; the caller's setting otherwise."""
    wide = any(getattr(a, "dtype", None) == np.float64 for a in arrays)
    if wide and not jax.config.jax_enable_x64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()
