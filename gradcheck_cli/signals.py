"""SIGINT and SIGTERM as an exception: the run stops, ends its workers, reports, exits 128 + N.

Every command runs inside `stop_signals()`, so this module imports nothing heavy: the
process tools live in runner.py, which only commands that run cases load.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Interrupted", "stop_signals"]


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: stop, end the workers, report, exit 128 + signal."""

    def __init__(self, signum: int, ran: int = 0) -> None:
        super().__init__(signum, ran)
        self.signum = signum
        self.ran = ran  # cases whose outcome was reported before the signal

    @property
    def name(self) -> str:
        """'SIGINT' or 'SIGTERM'."""
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM, as shells report them."""
        return 128 + self.signum


class _StopSignals:
    """SIGINT and SIGTERM raise Interrupted, except inside `deferred()` (then on leaving it)."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self.depth = 0

    def handle(self, signum: int, _frame: Any) -> None:
        if self.pending is not None:
            return  # already stopping: let the clean-up finish
        self.pending = signum
        if not self.depth:
            raise Interrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal until the block ends (a report entry is written whole)."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            raise Interrupted(self.pending)


@contextmanager
def stop_signals() -> Iterator[_StopSignals]:
    """Turn SIGINT and SIGTERM into Interrupted for the block's duration (main thread)."""
    guard = _StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    old = {sig: signal.signal(sig, guard.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield guard
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
