"""Running cases: isolation, time and memory limits, parallelism, signals.

Expression cases are our own bounded code: with --jobs 1 they run in this process; with N,
this process is one of the N: it runs chunks itself (the first one imports SymPy and warms
every cache the cases need) and forks up to N - 1 workers that inherit all of it and take
other chunks. (N forks beside a coordinating parent cost more CPU than they save on a
loaded machine.)
A callable case runs the user's code, which may raise anything, exit, crash, loop forever
or eat memory, so it always runs in a worker process that this module owns:

- each worker is a `multiprocessing` process started by the forkserver (engine and NumPy
  already imported, nothing of this process inherited), in its own process group, stdin
  from /dev/null, stdout and stderr into a capture file, an address-space limit
  (RLIMIT_AS), faulthandler armed (expression workers are set up the same way);
- a worker is reused for the next case, so after each callable case it puts back what the
  case may have changed and another case's verdict depends on (`_Baseline`);
- a worker runs one case at a time and reports it over a pipe; the parent waits with a
  deadline per case (`multiprocessing.connection.wait`);
- a worker that dies or overruns its deadline is killed with its whole process group,
  its case becomes an `error` row saying what happened and where (faulthandler's dump
  names the user's file and line), and a fresh worker takes the remaining cases.

concurrent.futures is not used for the workers: it cannot stop one task that overruns,
and a worker that dies breaks its whole pool without saying which task killed it.
"""

from __future__ import annotations

import copy
import faulthandler
import functools
import gc
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import signal
import sys
import sysconfig
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gradcheck_cli.results import CallableResult, Outcome, error_rows
from gradcheck_cli.schema import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    CallableCase,
    Case,
    CaseProblem,
    Item,
)

__all__ = [
    "RunOptions",
    "Runner",
    "WorkerLost",
    "run_item",
]

# Expression cases per task: big enough to amortise the pipe, small enough that --fail-fast
# stops soon and results stream out steadily.
CHUNK = 8
# Cases read ahead of the oldest unfinished one: memory stays flat however long the batch.
WINDOW = 64
OUTPUT_HEAD = OUTPUT_TAIL = 1500  # bytes of the user's output kept from each end
DUMP_WAIT = 0.3  # seconds given to faulthandler to write a stuck worker's stack
_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<func>.+)$')


@dataclass(frozen=True)
class RunOptions:
    """How a batch runs: processes, the default time limit per case, memory per worker."""

    jobs: int = 1
    timeout: float = DEFAULT_TIMEOUT  # seconds, for cases without their own 'timeout'
    memory_mb: int = DEFAULT_MEMORY_MB  # address space of a worker; 0: unlimited
    debug: bool = False


class WorkerLost(Exception):
    """A worker running a call (not a case) died or overran its deadline."""


# ---------------------------------------------------------------------- one case, here


def run_item(path: str, item: Case | CallableCase | CaseProblem, debug: bool = False) -> Outcome:
    """Run one case in this process (or turn a CaseProblem into its error row), timing it.

    A callable case runs the user's code here: the batch calls this inside workers only.
    """
    start = time.perf_counter()
    if isinstance(item, CaseProblem):
        results = error_rows(item, item.message)
    else:
        try:
            if isinstance(item, CallableCase):
                from gradcheck_cli.callables import run_callable_case

                results = run_callable_case(item)
            else:
                from gradcheck_cli.checks import run_case

                results = run_case(item)
        except Exception as exc:  # a bug in the checker must not sink the other cases
            if debug:
                raise
            results = error_rows(item, f"internal error: {type(exc).__name__}: {exc}")
    return Outcome(path, results, time.perf_counter() - start)


def _guarded(path: str, item: Any, debug: bool) -> Outcome:
    """run_item in a worker: user code that raises SystemExit and the like is a row too."""
    start = time.perf_counter()
    try:
        return run_item(path, item, debug)
    except BaseException as exc:  # noqa: B036 - the point: nothing of the user's ends the run
        from gradcheck_cli.callables import describe

        message = f"{describe(exc, '')}: the case's code may not end the run"
        return Outcome(path, error_rows(item, message), time.perf_counter() - start)


# ----------------------------------------------------------------------- the worker side


def _watch_parent(alive: Any) -> None:
    """End this worker's process group when the parent dies (its end of `alive` closes)."""
    try:
        alive.recv()
    except (EOFError, OSError):
        pass
    os.killpg(os.getpgrp(), signal.SIGKILL)


# Modules whose attributes a case may rebind (a monkeypatch) and the checker relies on.
_WATCHED = ("builtins", "engine", "gradcheck_cli", "math", "numpy", "os", "random", "sys")


@functools.cache
def _library() -> tuple[str, ...]:
    """The interpreter's library directories (stdlib, site-packages), each ending in '/'."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple({os.path.join(sysconfig.get_path(name), "") for name in names})


class _Baseline:
    """What a reused worker looked like before its first case, put back after every case.

    A case may change global state: monkeypatch NumPy or the engine, set the engine's default
    dtype, grad mode or seed, NumPy's error state, the working directory, sys.path, the
    environment, torch's default dtype or grad mode. Without this the next case in the same
    worker would be checked under that state. The user's own modules (neither the library's
    nor a package loaded before the first case) are forgotten too, so every case imports
    them afresh, as a case run alone does, with whatever they set at import time.
    """

    def __init__(self) -> None:
        import numpy as np

        from engine import _creation, _grad_mode

        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.environ = dict(os.environ)
        self.modules = set(sys.modules)
        self.packages = {name.partition(".")[0] for name in self.modules}
        self.bindings = [
            (vars(module), dict(vars(module)))
            for name, module in list(sys.modules.items())
            if name.partition(".")[0] in _WATCHED and module is not None
        ]
        self.numpy_errors = np.geterr()
        self.grad_mode = _grad_mode.state.enabled
        self.random = copy.deepcopy(_creation.source)

    def restore(self) -> None:
        """Undo what the last case changed (see the class docstring)."""
        import numpy as np

        from engine import _creation, _grad_mode

        for name in set(sys.modules) - self.modules:
            module = sys.modules[name]
            where = getattr(module, "__file__", None) or next(
                iter(getattr(module, "__path__", None) or ()), None
            )
            if (
                name.partition(".")[0] not in self.packages
                and where
                and not str(where).startswith(_library())
            ):
                del sys.modules[name]
        for namespace, saved in self.bindings:
            for key in namespace.keys() - saved.keys():
                if not isinstance(namespace[key], type(os)):  # a submodule imported since
                    del namespace[key]
            for key, value in saved.items():
                if namespace.get(key, saved) is not value:
                    namespace[key] = value
        sys.path[:] = self.path
        if os.environ != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        try:
            os.chdir(self.cwd)
        except OSError:  # the case removed it: later cases run where the worker can
            pass
        np.seterr(**self.numpy_errors)
        _grad_mode.state.enabled = self.grad_mode
        _creation.source = copy.deepcopy(self.random)
        torch = sys.modules.get("torch")
        if torch is not None:  # torch's own defaults: it was imported by a case
            torch.set_default_dtype(torch.float32)
            torch.set_grad_enabled(True)


def _worker_main(
    conn: Any, alive: Any, capture: str, memory_mb: int, inherited: tuple[int, ...]
) -> None:
    """A worker: run what the parent sends, one message per case, until told to stop.

    ``inherited``: descriptors a forked worker closes, the parent's ends of its own pipes and
    of the other workers' (a worker learns of the parent's death from EOF on ``alive``,
    which no other process may hold open). Not a blanket close: multiprocessing's own
    sentinel pipe must stay open, or the parent sees every fork as ended at once.
    """
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setpgrp()  # the runner ends the worker and whatever the user's code started at once
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(capture, os.O_WRONLY | os.O_APPEND)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    # A crash or a stuck case leaves the Python stack in the capture file: it names the line.
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_watch_parent, args=(alive,), daemon=True).start()
    baseline = _Baseline()
    conn.send(("ready", os.fstat(1).st_size))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        kind, payload, debug = message
        if kind == "run":
            for index, (path, item) in enumerate(payload):
                outcome = _guarded(path, item, debug)
                restored = not isinstance(item, CallableCase) or _restore(baseline)
                _reply(conn, ("done", index, outcome), path, item)
                if not restored:
                    return  # the parent starts a fresh worker for the next case
        else:
            function, argument = payload
            try:
                reply: tuple[Any, ...] = ("value", function(argument))
            except BaseException as exc:  # noqa: B036 - a call reports, it does not end us
                from gradcheck_cli.callables import describe

                reply = ("raised", str(exc) if isinstance(exc, Exception) else describe(exc, ""))
            restored = _restore(baseline)
            _reply(conn, reply, "", None)
            if not restored:
                return


def _restore(baseline: _Baseline) -> bool:
    """Put the baseline back; False if the case broke something that cannot be put back."""
    try:
        baseline.restore()
    except Exception:
        return False
    return True


def _reply(conn: Any, reply: tuple[Any, ...], path: str, item: Any) -> None:
    """Send a reply with the capture file's size after it (the parent cuts output there)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the user's code closed or replaced it
            pass
    offset = os.fstat(1).st_size
    try:
        conn.send((*reply, offset))
    except Exception as exc:  # something in the reply cannot be pickled
        message = f"internal error: the worker could not send the result: {exc}"
        if item is None:
            conn.send(("raised", message, offset))
        else:
            conn.send(("done", reply[1], Outcome(path, error_rows(item, message), 0.0), offset))


# ----------------------------------------------------------------------- the parent side


STARTUP_TIMEOUT = 120.0  # seconds a new worker may take to be ready (a loaded machine)
# What the forkserver imports once, before it forks any worker: the engine and NumPy.
PRELOAD = ["gradcheck_cli.runner", "gradcheck_cli.callables"]


def _context(forked: bool) -> Any:
    """Callable cases' workers come from the forkserver (a clean interpreter); expression
    cases' are forks of this process, which has SymPy imported and the caches warm."""
    if forked:
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    if not _preloaded:
        ctx.set_forkserver_preload(PRELOAD)
        _preloaded.append(True)
    return ctx


_preloaded: list[bool] = []


def _trimmed(path: str, start: int, end: int | None = None) -> str:
    """The capture file from start to end (or EOF), head and tail kept when it is long."""
    try:
        with open(path, "rb") as file:
            end = os.fstat(file.fileno()).st_size if end is None else end
            size = end - start
            if size <= 0:
                return ""
            file.seek(start)
            if size <= OUTPUT_HEAD + OUTPUT_TAIL:
                data = file.read(size)
            else:
                head = file.read(OUTPUT_HEAD)
                file.seek(end - OUTPUT_TAIL)
                skipped = size - OUTPUT_HEAD - OUTPUT_TAIL
                data = (
                    head
                    + f"\n[... {skipped} bytes not shown ...]\n".encode()
                    + file.read(OUTPUT_TAIL)
                )
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def _split_dump(text: str) -> tuple[str, str | None]:
    """(output without faulthandler's stack dump, 'file:line in func' of the user's frame)."""
    from engine.testing import _shown, is_internal
    from gradcheck_cli.callables import INTERNAL

    lines = text.splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith(("Fatal Python error", "Thread 0x", "Current thread 0x", "Stack ("))
    ]
    if not starts:
        return text, None
    where = None
    for line in lines[starts[0] :]:
        match = _FRAME.match(line)
        if match and not is_internal(match["file"], INTERNAL):
            where = f"{_shown(match['file'])}:{match['line']} in {match['func']}"
            break
    return "\n".join(lines[: starts[0]]).rstrip("\n"), where


def _how_it_ended(exitcode: int | None, memory_mb: int) -> str:
    """What a worker's exit code says about how the user's code ended it."""
    if exitcode is None:
        return "its worker process vanished"
    if exitcode >= 0:
        return f"its code ended the worker process with exit code {exitcode} (os._exit?)"
    name = (
        signal.Signals(-exitcode).name
        if -exitcode in signal.Signals._value2member_map_
        else (f"signal {-exitcode}")
    )
    if -exitcode == signal.SIGKILL:
        limit = f" or passed the {memory_mb} MB memory limit" if memory_mb else ""
        return f"its worker process was killed by SIGKILL (killed from outside{limit})"
    return f"its worker process was killed by {name}"


@dataclass
class _Task:
    """Consecutive cases sent to one worker: (sequence number, file, case) each."""

    cases: list[tuple[int, str, Any]]

    @property
    def forked(self) -> bool:
        """Whether it runs on a forked worker: no user code in it, only expression cases."""
        return not any(isinstance(item, CallableCase) for _, _, item in self.cases)


class _Worker:
    """One worker process, its pipe, its capture file and the task it is running."""

    def __init__(
        self, options: RunOptions, forked: bool = False, others: Iterable[int] = ()
    ) -> None:
        ctx = _context(forked)
        self.forked = forked
        fd, self.capture = tempfile.mkstemp(prefix="gradcheck-output-")
        os.close(fd)
        self.conn, child = ctx.Pipe()
        watch, self.alive = ctx.Pipe(duplex=False)
        # A fork inherits the parent's ends of its pipes and of the other workers' (others).
        inherited = (self.conn.fileno(), self.alive.fileno(), *others) if forked else ()
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, watch, self.capture, options.memory_mb, inherited),
            daemon=True,
            name="gradcheck-worker",
        )
        if forked:
            # The fork's collector must not walk (and so copy, page by page) the parent's
            # heap: SymPy's objects are frozen for the fork, as the gc docs advise.
            gc.freeze()
            try:
                self.process.start()
            finally:
                gc.unfreeze()
        else:
            self.process.start()
        child.close()
        watch.close()
        # Time limits start once the worker is ready: a slow start is not the case's fault.
        try:
            ready = self.conn.poll(STARTUP_TIMEOUT) and self.conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            code = self.process.exitcode
            raise RuntimeError(f"a worker process did not start (exit code {code})")
        self.offset = 0  # where the output of the running case starts in the capture file
        self.task: _Task | None = None
        self.index = 0
        self.deadline = float("inf")

    def send(self, message: Any, timeout: float) -> None:
        self.conn.send(message)
        self.deadline = time.monotonic() + timeout

    def kill(self, keep_output: bool = False) -> None:
        """End the worker and its process group now; remove its capture file unless kept."""
        for end in (lambda: os.killpg(self.process.pid, signal.SIGKILL), self.process.kill):
            try:
                end()
            except (OSError, AttributeError):  # gone already, or never started
                pass
        self.process.join(5)
        for connection in (self.conn, self.alive):
            connection.close()
        if not keep_output:
            self.remove_output()

    def remove_output(self) -> None:
        try:
            os.unlink(self.capture)
        except OSError:
            pass

    def stop(self) -> None:
        """Ask an idle worker to exit, then make sure it and its group are gone."""
        try:
            self.conn.send(None)
            self.process.join(1)
        except OSError:
            pass
        self.kill()


class Runner:
    """Runs cases with isolation and limits; owns its workers (a context manager)."""

    def __init__(self, options: RunOptions = RunOptions()) -> None:
        self.options = options
        self._idle: list[_Worker] = []
        self._busy: list[_Worker] = []
        self._warm = False  # this process has run an expression case (the forks inherit it)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every worker (killing busy ones with their process groups)."""
        for worker in self._busy:
            worker.kill()
        for worker in self._idle:
            worker.stop()
        self._idle, self._busy = [], []

    # ------------------------------------------------------------------ running cases

    def run(self, items: Iterable[Item]) -> Iterator[Outcome]:
        """Outcomes in the items' order; stops early when the caller stops iterating."""
        if self.options.jobs <= 1:
            for path, item in items:
                if isinstance(item, CallableCase):
                    yield self.run_isolated(path, item)
                else:
                    yield run_item(path, item, self.options.debug)
            return
        yield from self._parallel(items)

    def run_isolated(self, path: str, item: Any) -> Outcome:
        """Run one case in a worker, whatever kind it is (the pytest plugin's callables)."""
        done: dict[int, Outcome] = {}
        pending: deque[_Task] = deque([_Task([(0, path, item)])])
        while 0 not in done:
            if pending:
                self._start(pending.popleft())
            self._wait(done, pending)
        return done[0]

    def _tasks(self, items: Iterable[Item]) -> Iterator[_Task]:
        """Consecutive expression cases in chunks of CHUNK; every callable case alone."""
        chunk: list[tuple[int, str, Any]] = []
        for seq, (path, item) in enumerate(items):
            if isinstance(item, CallableCase):
                if chunk:
                    yield _Task(chunk)
                    chunk = []
                yield _Task([(seq, path, item)])
                continue
            chunk.append((seq, path, item))
            if len(chunk) == CHUNK:
                yield _Task(chunk)
                chunk = []
        if chunk:
            yield _Task(chunk)

    def _parallel(self, items: Iterable[Item]) -> Iterator[Outcome]:
        done: dict[int, Outcome] = {}
        pending: deque[_Task] = deque()
        tasks = self._tasks(items)
        next_seq, pulled, exhausted = 0, 0, False
        while True:
            while not exhausted and pulled - next_seq < WINDOW * self.options.jobs:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                pending.append(task)
                pulled = task.cases[-1][0] + 1
            if not self._warm and pending and pending[0].forked:
                # The batch starts with expression cases: the first chunk runs here before
                # anything is handed out (it imports SymPy and fills the caches every fork
                # inherits), so the batch's first results come in order.
                self._run_here(pending.popleft(), done)
            self._hand_out(pending)
            while next_seq in done:
                yield done.pop(next_seq)
                next_seq += 1
            if exhausted and not pending and not self._busy and not done:
                return
            mine = next((t for t in pending if t.forked), None)
            if mine is not None:
                # This process is one of the --jobs: it runs an expression chunk itself,
                # then collects what the workers finished meanwhile.
                pending.remove(mine)
                self._run_here(mine, done)
                if self._busy:
                    self._wait(done, pending, block=False)
            elif self._busy:
                self._wait(done, pending)

    def _run_here(self, task: _Task, done: dict[int, Outcome]) -> None:
        """Run an expression chunk in this process (what forks made later inherit)."""
        for seq, path, item in task.cases:
            done[seq] = run_item(path, item, self.options.debug)
        self._warm = True

    def _hand_out(self, pending: deque[_Task]) -> None:
        """Start pending tasks on free workers: callable cases on up to --jobs workers,
        expression chunks on up to --jobs - 1 forks (this process is the other one), and
        only once this process has warmed up what the forks inherit."""
        for task in list(pending):
            if len(self._busy) >= self.options.jobs:
                return
            if task.forked and (not self._warm or len(self._busy) >= self.options.jobs - 1):
                continue
            pending.remove(task)
            self._start(task)

    def _worker(self, forked: bool) -> _Worker:
        """An idle worker of the kind asked for, or a new one."""
        for worker in self._idle:
            if worker.forked == forked:
                self._idle.remove(worker)
                if worker.process.is_alive():
                    return worker
                worker.kill()  # it ended while idle (a case broke what it must put back)
                break
        others = [fd for w in self._idle + self._busy for fd in (w.conn.fileno(), w.alive.fileno())]
        return _Worker(self.options, forked, others if forked else ())

    def _start(self, task: _Task) -> None:
        items = [(path, item) for _, path, item in task.cases]
        while True:
            worker = self._worker(task.forked)
            try:
                worker.send(("run", items, self.options.debug), self._limit(items[0][1]))
            except OSError:  # it ended just now: take another
                worker.kill()
                continue
            break
        worker.task, worker.index = task, 0
        self._busy.append(worker)

    def _limit(self, item: Any) -> float:
        own = getattr(item, "timeout", None)
        return own if own is not None else self.options.timeout

    def _wait(self, done: dict[int, Outcome], pending: deque[_Task], block: bool = True) -> None:
        """Wait for the next message, death or deadline among the busy workers (with
        block=False, only take what is there)."""
        now = time.monotonic()
        timeout = max(0.0, min(w.deadline for w in self._busy) - now) if block else 0.0
        waitables: list[Any] = [w.conn for w in self._busy]
        waitables += [w.process.sentinel for w in self._busy]
        multiprocessing.connection.wait(waitables, timeout)
        for worker in list(self._busy):
            alive = True
            try:
                while alive and worker.conn.poll():
                    alive = self._receive(worker, done)
            except (EOFError, OSError):
                alive = False
            if not alive or not worker.process.is_alive():
                if worker.task is not None:  # it died running a case
                    self._lose(worker, done, pending, None)
                else:  # it ended between cases
                    self._busy.remove(worker)
                    worker.kill()
                continue
            if worker.task is None:
                self._busy.remove(worker)
                self._idle.append(worker)
            elif time.monotonic() >= worker.deadline:
                self._lose(worker, done, pending, self._limit(self._current(worker)[2]))

    @staticmethod
    def _current(worker: _Worker) -> tuple[int, str, Any]:
        assert worker.task is not None
        return worker.task.cases[worker.index]

    def _receive(self, worker: _Worker, done: dict[int, Outcome]) -> bool:
        """Take one message from a worker; False if it was not a case's result."""
        message = worker.conn.recv()
        if message[0] != "done":
            return False
        _, index, outcome, offset = message
        seq, _, _ = self._current(worker)
        assert index == worker.index
        output = _trimmed(worker.capture, worker.offset, offset)
        for result in outcome.results:
            if isinstance(result, CallableResult):
                result.output = output
        worker.offset = offset
        done[seq] = outcome
        worker.index += 1
        assert worker.task is not None
        if worker.index == len(worker.task.cases):
            worker.task = None
            worker.deadline = float("inf")
            if worker.offset > 2**20:  # idle: start its capture file afresh
                os.truncate(worker.capture, 0)
                worker.offset = 0
        else:
            worker.deadline = time.monotonic() + self._limit(self._current(worker)[2])
        return True

    def _lose(
        self,
        worker: _Worker,
        done: dict[int, Outcome],
        pending: deque[_Task],
        timed_out: float | None,
    ) -> None:
        """The worker died or overran: its case is an error row, the rest of its task goes on."""
        seq, path, item = self._current(worker)
        assert worker.task is not None
        rest = worker.task.cases[worker.index + 1 :]
        message, output = self._post_mortem(worker, timed_out)
        self._busy.remove(worker)
        if rest:
            pending.appendleft(_Task(rest))
        spent = timed_out or 0.0
        done[seq] = Outcome(path, error_rows(item, message, output), spent)

    def _post_mortem(self, worker: _Worker, timed_out: float | None) -> tuple[str, str]:
        """(one line on how the case ended, its output), then the worker is gone."""
        if timed_out is not None and worker.process.is_alive():
            mark = os.path.getsize(worker.capture)
            try:
                os.kill(worker.process.pid, signal.SIGUSR1)  # faulthandler: dump the stack
            except OSError:
                pass
            until = time.monotonic() + DUMP_WAIT
            while time.monotonic() < until and os.path.getsize(worker.capture) == mark:
                time.sleep(0.01)
            time.sleep(0.02)  # let the dump finish
        worker.kill(keep_output=True)
        output, where = _split_dump(_trimmed(worker.capture, worker.offset))
        worker.remove_output()
        at = f" at {where}" if where else ""
        if timed_out is not None:
            message = (
                f"timed out after {timed_out:g} s{at} (the case's time limit: "
                "its 'timeout' key or --timeout)"
            )
        else:
            ended = _how_it_ended(worker.process.exitcode, self.options.memory_mb)
            message = f"the case did not finish: {ended}{at}"
        return message, output

    # ------------------------------------------------------------------------- calls

    def call(self, function: Callable[[Any], Any], argument: Any, timeout: float) -> Any:
        """function(argument) in a worker; WorkerLost if it dies or overruns, UserCodeError-like
        messages come back as WorkerLost too (the function's own exceptions as their text)."""
        worker = self._worker(False)
        worker.send(("call", (function, argument), self.options.debug), timeout)
        self._busy.append(worker)
        try:
            ready = multiprocessing.connection.wait([worker.conn, worker.process.sentinel], timeout)
            if worker.conn in ready or worker.conn.poll():
                try:
                    kind, value, _offset = worker.conn.recv()
                except (EOFError, OSError):
                    kind, value = "lost", None
                if kind == "value":
                    self._busy.remove(worker)
                    self._idle.append(worker)
                    return value
                if kind == "raised":
                    self._busy.remove(worker)
                    self._idle.append(worker)
                    raise WorkerLost(value)
            # Nothing ready: the deadline passed. Else it died (its exit status may come later).
            timed_out = None if ready else timeout
            self._busy.remove(worker)
            worker.task = None
            message, _ = self._post_mortem(worker, timed_out)
            raise WorkerLost(message)
        finally:
            if worker in self._busy:
                self._busy.remove(worker)
                worker.kill()
