"""Checking users' own callables: `assert_gradcheck(fn, inputs)` in any test runner.

`check_callable` is the one checker of a callable's gradients (a smoke run that names the
user's file:line, gradcheck, gradgradcheck for order 2, blame on a failure); the command
line's batch runner calls it too. Everything here is plain data and plain text: importing
this module never imports SymPy, Rich, Click or the command line.
"""

from __future__ import annotations

import inspect
import os
import sysconfig
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.autograd import GradcheckError, gradcheck, gradgradcheck, numpy_gradcheck
from engine.autograd.blame import blame
from engine.autograd.frameworks import Adapter, BackwardError, for_inputs, for_name

if TYPE_CHECKING:
    from engine.autograd.gradcheck import JacobianMismatch

__all__ = ["CallableCheck", "assert_gradcheck", "check_callable", "describe_exception"]

DEFAULT_ATOL, DEFAULT_RTOL = 1e-5, 1e-3  # engine.autograd.gradcheck's defaults
STATUS_MARK = {"pass": "✓ PASS", "fail": "✗ FAIL", "error": "! ERROR"}
HEADERS = ("status", "case", "point", "value", "auto−sym", "num−sym")
WIDTHS = (8, 0, 18, 13, 9, 9)  # 0: the case column takes what is left of the width


def _package_dir(module: Any) -> str:
    return str(Path(module.__file__).resolve().parent) + os.sep


# Frames in these directories are ours (the engine's, NumPy's, the interpreter's), not the
# user's; callers add their own (the command line adds its package).
_ENGINE_DIRS = (_package_dir(np), str(Path(__file__).resolve().parent) + os.sep)
_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve()) + os.sep
_INSTALLED = tuple(
    str(Path(sysconfig.get_paths()[key]).resolve()) + os.sep for key in ("purelib", "platlib")
)


def _shown(path: str) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def is_internal(filename: str, internal: Sequence[str] = ()) -> bool:
    """Whether a source file is ours or the interpreter's rather than the user's."""
    if not filename or filename.startswith("<"):
        return True
    path = str(Path(filename).resolve())
    stdlib = path.startswith(_STDLIB) and not path.startswith(_INSTALLED)
    return stdlib or path.startswith(_ENGINE_DIRS) or path.startswith(tuple(internal))


def user_frame(exc: BaseException, internal: Sequence[str] = ()) -> str | None:
    """'file.py:42' of the innermost traceback frame in the user's code, if any."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown(exc.filename)}:{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not is_internal(frame.filename, internal):
            return f"{_shown(frame.filename)}:{frame.lineno}"
    return None


def describe_exception(exc: BaseException, doing: str, internal: Sequence[str] = ()) -> str:
    """'ValueError: bad (raised at ops.py:12 while ...)' in one line."""
    # A SyntaxError's str repeats "(file, line N)", which the location says better.
    raw = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    text = raw.strip().splitlines()[0] if raw.strip() else ""
    where = user_frame(exc, internal)
    at = f" at {where}" if where else ""
    doing = f" {doing}" if doing else ""
    return f"{type(exc).__name__}{': ' + text if text else ''} (raised{at}{doing})"


@dataclass
class CallableCheck:
    """The verdict on one callable: what the batch report's row and the assertion show."""

    name: str
    target: str
    status: str = "error"  # "pass" | "fail" | "error"
    message: str | None = None
    value: float | None = None
    notes: list[str] = field(default_factory=list)
    blame: dict[str, Any] | None = None
    inputs: list[str] = field(default_factory=list)  # 'x: float64[3] given', one per input
    shapes: str = ""  # 'x[3] w[3,2]'
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    # The failing Jacobian block as data (the worst elements, for a renderer's table).
    mismatch: JacobianMismatch | None = None


def _smoke(fn: Callable[..., Any], inputs: Sequence[Any], fw: Adapter
           ) -> tuple[float | None, str | None]:
    """Run forward and one backward; (scalar value or None, error message or None).

    gradcheck turns an exception in a backward into "backward raised ..." and lets one in
    forward escape with our frames on top; run both once here so that the user hears the
    file and line of their own code. The inputs' framework (engine, torch, JAX, or NumPy
    with the user's grad) runs both.
    """
    try:
        outs = [o for o in fw.call(fn, tuple(inputs)) if fw.is_array(o)]
    except Exception as exc:
        return None, describe_exception(exc, "in forward")
    if not outs:
        return None, f"the function returned no {fw.name} array"
    first = fw.to_numpy(outs[0])
    value = float(first.reshape(-1)[0]) if len(outs) == 1 and first.size == 1 else None
    live = [o for o in outs if fw.is_floating(o) and fw.requires_grad(o)]
    if not live:
        return value, "no output requires grad: the function does not depend on its inputs"
    ones = [fw.from_numpy(np.ones(tuple(o.shape), dtype=fw.dtype_of(o))) for o in live]
    try:
        fw.vjp(fn, tuple(inputs), fw.diff_indices(inputs), live, ones)
    except BackwardError as exc:
        return value, str(exc)
    except Exception as exc:
        return value, describe_exception(exc, f"in {fw.backward_name}")
    return value, None


def _blame(fn: Callable[..., Any], inputs: Sequence[Any], seed: int, order: int = 1
           ) -> tuple[dict | None, str]:
    """(the culprit as JSON-able data, or None; one line for the report)."""
    framework = for_inputs(list(inputs)).name
    if framework not in ("engine", "torch"):
        return None, f"blame: not available for {framework} code (engine and torch only)"
    try:
        found = blame(fn, list(inputs), order=order, seed=seed)
    except Exception as exc:  # blame re-runs user code: it may fail where gradcheck did not
        problem = describe_exception(exc, "")
        return None, f"blame: could not check the nodes one by one: {problem}"
    culprit = found.culprit
    if culprit is None:
        return None, (
            "blame: every node's backward agrees with its own forward; the error is in how "
            "they are connected (a detached or missing path, or a forward made of non-engine "
            "code)"
        )
    data = {
        "node": culprit.name,
        "index": culprit.index,
        "class": culprit.user_class,
        "location": culprit.location,
        "input": culprit.input_index,
        "hint": culprit.hint,
        "description": culprit.describe(),
    }
    return data, f"blame: {culprit.describe()}"


def param_names(fn: Callable[..., Any]) -> list[str]:
    """fn's positional parameter names (a Function's forward's, after ctx), or []."""
    owner = getattr(fn, "__self__", None)
    # A Function's apply takes *args: its forward(ctx, ...) has the names.
    named_by = owner.forward if isinstance(owner, type) else fn
    try:
        params = [
            p.name
            for p in inspect.signature(named_by).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return []
    return params[1:] if named_by is not fn else params


def target_of(fn: Callable[..., Any]) -> str:
    """'module:qualname' of a callable ('mod:LogCosh.apply' for a Function's apply)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__module__}:{owner.__qualname__}.{fn.__name__}"
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _described(fn: Callable[..., Any], inputs: Sequence[Any], fw: Adapter
               ) -> tuple[list[str], str]:
    """('x: float64[3] given' per tensor input, 'x[3] ...'), named after fn's parameters."""
    params = param_names(fn)
    diff = set(fw.diff_indices(inputs))
    long, short = [], []
    for i, x in enumerate(inputs):
        if not fw.is_array(x):
            continue
        name = params[i] if i < len(params) else f"x{i}"
        dims = tuple(x.shape)
        text = f"{name}: {fw.dtype_of(x)}[{', '.join(map(str, dims))}] given"
        long.append(text if i in diff else text + " (no grad)")
        short.append(f"{name}[{','.join(map(str, dims))}]")
    return long, " ".join(short)


def check_callable(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    name: str,
    target: str = "",
    atol: float | None = None,
    rtol: float | None = None,
    order: int = 1,
    fast_mode: bool = False,
    seed: int = 0,
    described: Sequence[str] = (),
    shapes: str = "",
    with_blame: bool = True,
    grad: Callable[..., Any] | None = None,
    requires_grad: Sequence[bool] | None = None,
) -> CallableCheck:
    """gradcheck (and gradgradcheck for order 2) of fn at inputs; never raises for user code.

    inputs are engine tensors, torch.Tensors or JAX arrays; or, with `grad` (fn's
    hand-written derivative, see numpy_gradcheck), NumPy arrays, `requires_grad` saying
    which inputs grad differentiates (default: every floating array).
    """
    result = CallableCheck(name=name, target=target or target_of(fn))
    try:
        fw = for_inputs(list(inputs)) if grad is None else for_name(
            "numpy", grad=grad, requires_grad=requires_grad)
        fw.diff_indices(inputs)
    except (TypeError, ValueError) as exc:  # mixed frameworks, a mask of the wrong length
        result.message = str(exc)
        return result
    if described:
        result.inputs, result.shapes = list(described), shapes
    else:
        result.inputs, result.shapes = _described(fn, inputs, fw)
    tolerances = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    result.atol = tolerances.get("atol", DEFAULT_ATOL)
    result.rtol = tolerances.get("rtol", DEFAULT_RTOL)
    # IEEE warnings from user code at perturbed points are the checker's business, not output.
    with np.errstate(all="ignore"):
        result.value, problem = _smoke(fn, inputs, fw)
        if problem is not None:
            result.message = problem
            return result
        checks: list[tuple[str, Callable[..., Any], int]] = [("gradcheck", gradcheck, 1)]
        if grad is not None:  # the failure names grad and its file:line: no other blame

            def check_numpy(f: Callable[..., Any], xs: tuple, **kwargs: Any) -> bool:
                return numpy_gradcheck(f, grad, xs, requires_grad=requires_grad, **kwargs)

            checks = [("numpy_gradcheck", check_numpy, 0)]
        elif order == 2:
            checks.append(("gradgradcheck", gradgradcheck, 2))
        for label, checker, blame_order in checks:
            try:
                checker(fn, tuple(inputs), fast_mode=fast_mode, seed=seed, **tolerances)
            except GradcheckError as exc:
                lines = str(exc).splitlines()
                result.status = "fail"
                result.mismatch = getattr(exc, "mismatch", None)
                result.notes = [
                    f"{label}: {line}" if i == 0 else line for i, line in enumerate(lines)
                ]
                summary = f"{label} failed: {lines[0].rstrip(',')}" if lines else label
                if with_blame and blame_order:
                    result.blame, line = _blame(fn, inputs, seed, blame_order)
                    if result.blame:
                        summary = line
                    else:
                        result.notes.append(line)
                result.message = summary
                return result
            except Exception as exc:
                result.message = describe_exception(exc, f"in {label}")
                return result
    result.status = "pass"
    return result


def to_text(check: CallableCheck, title: str, width: int = 100) -> str:
    """The row `gradcheck check` prints for a callable, as plain text at a fixed width."""
    fixed = sum(WIDTHS) + len(WIDTHS)
    widths = [w or max(12, width - fixed) for w in WIDTHS]
    value = "-" if check.value is None else f"{check.value:.10g}"
    cells = (STATUS_MARK[check.status], check.name, check.shapes, value, "-", "-")

    def row(cells: Sequence[str]) -> str:
        padded = []
        for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            cell = cell if len(cell) <= w else cell[: w - 1] + "…"
            padded.append(cell.rjust(w) if i >= 3 else cell.ljust(w))
        return " ".join(padded).rstrip()

    lines = [title, row(HEADERS), row(cells)]
    details = [check.message] if check.message else []
    if check.inputs:
        details.append("inputs: " + "; ".join(check.inputs))
    details += check.notes
    for line in details:
        # Lines that start with a space are preformatted columns (gradcheck's worst elements).
        if line.startswith(" "):
            lines.append(" " * 9 + line)
        else:
            lines += textwrap.wrap(line, width, initial_indent=" " * 9, subsequent_indent=" " * 9)
    return "\n".join(lines)


def assert_gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    order: int = 1,
    fast_mode: bool = False,
    seed: int = 0,
    name: str | None = None,
    blame: bool = True,
) -> None:
    """Assert that fn's backward agrees with finite differences at inputs (gradcheck).

    inputs: a tensor or a sequence of them (those with requires_grad are checked), as for
    `engine.autograd.gradcheck`, whose tolerances atol and rtol are (defaults 1e-5, 1e-3):
    engine tensors, torch.Tensors (fn is PyTorch code) or JAX arrays (fn is JAX code).
    order=2 also runs gradgradcheck. On failure the AssertionError's message is the row
    `gradcheck check` prints, in plain text, naming the node whose own derivative is wrong
    (the user's Function class and the file:line of its backward) when blame finds one.
    """
    __tracebackhide__ = True  # pytest shows the user's call, not this function's source
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, not {order!r}")
    tensors = tuple(inputs) if isinstance(inputs, Sequence) else (inputs,)
    # 'mod:model' rather than 'mod:test_x.<locals>.model', which says nothing more.
    module, _, qualname = target_of(fn).partition(":")
    short = qualname.rsplit("<locals>.", 1)[-1]
    target = f"{module}:{short}"
    result = check_callable(
        fn,
        tensors,
        name=name or short,
        target=target,
        atol=atol,
        rtol=rtol,
        order=order,
        fast_mode=fast_mode,
        seed=seed,
        with_blame=blame,
    )
    if result.status != "pass":
        # The verdict comes first: it is the line pytest's `-r` summary and CI logs show.
        word = "failed" if result.status == "fail" else "error"
        reason = (result.message or "gradient mismatch").splitlines()[0]
        verdict = f"gradcheck {word} for {target}: {reason}"
        raise AssertionError(verdict + "\n" + to_text(result, f"assert_gradcheck({target})"))
