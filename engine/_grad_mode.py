"""Grad mode: whether ops record the graph. Thread-local, as in torch. A leaf module: it imports
nothing of engine, so every layer can read it."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _State(threading.local):
    enabled = True
    # Whether nodes keep the values of inputs their rules never read (add's, tanh's input):
    # off, they keep shapes only and the memory goes at once, as torch's nodes save nothing
    # for them; blame turns it on, to replay each node at the inputs it really had.
    keep_inputs = False


state = _State()


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return state.enabled


class _Mode:
    """A context manager and decorator that sets grad mode and restores it on exit."""

    _enable: bool

    def __enter__(self) -> None:
        self._prev = state.enabled
        state.enabled = self._enable

    def __exit__(self, *exc: object) -> None:
        state.enabled = self._prev

    def __call__(self, fn: Callable[_P, _R]) -> Callable[_P, _R]:
        mode = type(self)

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with mode():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_Mode):  # noqa: N801 - torch's name
    """Ops inside record no graph."""

    _enable = False


class enable_grad(_Mode):  # noqa: N801
    """Ops inside record the graph, even within `no_grad`."""

    _enable = True


class set_grad_enabled(_Mode):  # noqa: N801
    """Set grad mode now (as a function) or for a block (as a context manager)."""

    def __init__(self, mode: bool) -> None:
        self._prev = state.enabled
        self._enable = bool(mode)
        state.enabled = self._enable

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        state.enabled = self._prev

    def __call__(self, fn: Callable[_P, _R]) -> Callable[_P, _R]:
        state.enabled = self._prev  # as a decorator it must not change the mode at definition
        enable = self._enable

        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with set_grad_enabled(enable):
                return fn(*args, **kwargs)

        return wrapper
