"""Cases that name a Python callable (`fn = "pkg.mod:func"`): the user's own backward, checked.

A callable case is validated like an expression case (keys, values, locations), but its code
is imported only behind an explicit gate (`--allow-python` or GRADCHECK_ALLOW_PYTHON=1). It
runs `engine.autograd.gradcheck` (and `gradgradcheck` for order 2) on seeded inputs, and on a
failure asks `engine.autograd.blame` which node's own derivative is wrong. Every outcome is a
`CaseResult` row (pass, fail, or error with the user's file:line), never an exception.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import math
import os
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcheck_cli.batch import (
    DEFAULT_KEYS,
    CaseInvalid,
    _check_setting,
    _kind,
    _number,
    suggest,
)
from gradcheck_cli.checks import CaseResult

__all__ = [
    "ALLOW_ENV",
    "FN_KEYS",
    "CallableCase",
    "CallableResult",
    "InputSpec",
    "UserCodeError",
    "check_callable",
    "load_callable",
    "make_inputs",
    "run_callable_case",
    "target_of",
    "to_callable_case",
    "trace_case",
]

ALLOW_ENV = "GRADCHECK_ALLOW_PYTHON"
FN_KEYS = ("name", "fn", "inputs", "seed", "atol", "rtol", "order", "dtype", "fast")
INPUT_KEYS = ("name", "shape", "values", "dtype", "low", "high", "requires_grad")
# The full check costs one backward per output element and a ladder of forwards per input
# element; past this many input elements a batch case should say `fast = true`.
MAX_ELEMENTS = 100_000
# "pkg.mod:func" or "pkg.mod:Class.attr": names only, so that nothing but an import and
# attribute lookups can ever happen to the text.
_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _package_dir(name: str) -> str:
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None and spec.origin else __file__
    return str(Path(origin).resolve().parent) + os.sep


# Frames in these files are ours (or NumPy's, or the interpreter's), not the user's.
_OURS = tuple(_package_dir(name) for name in ("gradcheck_cli", "engine", "numpy"))
_STDLIB = str(Path(sysconfig.get_paths()["stdlib"]).resolve()) + os.sep
_INSTALLED = tuple(
    str(Path(sysconfig.get_paths()[key]).resolve()) + os.sep for key in ("purelib", "platlib")
)


class UserCodeError(Exception):
    """The user's code could not be imported or raised; the message names file:line."""


@dataclass(frozen=True)
class InputSpec:
    """One positional input: explicit values, or a shape filled uniformly in [low, high)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None
    values: Any = None  # a number or nested tuples of numbers
    low: float = -1.0
    high: float = 1.0
    requires_grad: bool = True

    def brief(self) -> str:
        """'x[3,4]' (or 'x[]' for a scalar)."""
        import numpy as np

        shape = self.shape if self.values is None else np.shape(self.values)
        return f"{self.name}[{','.join(map(str, shape or ()))}]"

    def describe(self) -> str:
        """'x: float64[3, 4] in [-2, 2)' or 'x: float64[5] given'."""
        head = f"{self.name}: {self.dtype}"
        if self.values is not None:
            import numpy as np

            shape = ", ".join(map(str, np.shape(self.values)))
            text = f"{head}[{shape}] given"
            return text if self.requires_grad else text + " (no grad)"
        shape = ", ".join(map(str, self.shape or ()))
        text = f"{head}[{shape}] in [{self.low:g}, {self.high:g})"
        return text if self.requires_grad else text + " (no grad)"


@dataclass(frozen=True)
class CallableCase:
    """A check of a Python callable's gradients, as a batch file states it."""

    fn: str
    inputs: tuple[InputSpec, ...]
    name: str | None = None
    seed: int = 0
    atol: float | None = None
    rtol: float | None = None
    order: int = 1
    dtype: str = "float64"
    fast: bool = False
    location: str = ""
    allow_python: bool = False
    paths: tuple[str, ...] = ()

    @property
    def expr(self) -> str:
        """The target text, where reports show an expression."""
        return self.fn


@dataclass
class CallableResult(CaseResult):
    """A CaseResult for a callable: its inputs and, on failure, the blamed node."""

    inputs: list[str] = field(default_factory=list)
    shapes: str = ""  # 'x[3,4] w[3,2]': what the table shows in its point column
    blame: dict[str, Any] | None = None


# ---------------------------------------------------------------------------- validation


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseInvalid(f"'{key}' must be an integer, not {_kind(value)}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise CaseInvalid(f"'{key}' must be true or false, not {_kind(value)}")
    return value


def _values(key: str, value: Any, lenient: bool) -> Any:
    """Validate a number or a rectangular nested list of numbers (explicit stack)."""
    import numpy as np

    root: list[Any] = [None]
    stack: list[tuple[Any, list[Any], int, str]] = [(value, root, 0, key)]
    while stack:
        item, parent, slot, where = stack.pop()
        if isinstance(item, list):
            if not item:
                raise CaseInvalid(f"'{where}' is an empty list")
            copy: list[Any] = [None] * len(item)
            stack.extend((v, copy, i, f"{where}[{i}]") for i, v in enumerate(item))
            parent[slot] = copy
        else:
            number = _number(where, item, lenient)
            if not math.isfinite(number):
                raise CaseInvalid(f"'{where}' must be finite, not {item!r}")
            parent[slot] = number
    try:
        array = np.array(root[0], dtype=np.float64)
    except ValueError:
        raise CaseInvalid(f"'{key}' is not rectangular (rows of different lengths)") from None
    if array.size > MAX_ELEMENTS:
        raise CaseInvalid(f"'{key}' has {array.size} elements (at most {MAX_ELEMENTS})")
    return _frozen(array.tolist())


def _frozen(value: Any) -> Any:
    """Nested lists -> nested tuples, so that the case stays hashable and immutable."""
    if not isinstance(value, list):
        return value
    root: list[Any] = [None]
    stack: list[tuple[list[Any], list[Any], int]] = [(value, root, 0)]
    built: list[tuple[list[Any], list[Any], int]] = []
    while stack:
        item, parent, slot = stack.pop()
        copy = list(item)
        built.append((copy, parent, slot))
        for i, v in enumerate(item):
            if isinstance(v, list):
                stack.append((v, copy, i))
    # Children were appended after their parents: freeze from the innermost outwards.
    for copy, parent, slot in reversed(built):
        parent[slot] = tuple(copy)
    return root[0]


def _input(raw: Any, index: int, dtype: str, lenient: bool) -> InputSpec:
    where = f"inputs[{index}]"
    if not isinstance(raw, dict):
        raise CaseInvalid(f"'{where}' must be a table with 'shape' or 'values', not {_kind(raw)}")
    for key in raw:
        if key not in INPUT_KEYS:
            raise CaseInvalid(f"'{where}': unknown key '{key}'{suggest(str(key), INPUT_KEYS)}")
    name = raw.get("name", f"x{index}")
    if not isinstance(name, str) or not name.isidentifier():
        raise CaseInvalid(f"'{where}.name' must be an identifier, not {_kind(name)}")
    if "dtype" in raw:
        dtype = _check_setting("dtype", raw["dtype"], lenient)
    grad = _bool(f"{where}.requires_grad", raw.get("requires_grad", True))
    if ("shape" in raw) == ("values" in raw):
        raise CaseInvalid(f"'{where}' needs exactly one of 'shape' or 'values'")
    if "values" in raw:
        for key in ("low", "high"):
            if key in raw:
                raise CaseInvalid(f"'{where}.{key}' only goes with 'shape', not 'values'")
        values = _values(f"{where}.values", raw["values"], lenient)
        return InputSpec(name, dtype, values=values, requires_grad=grad)
    shape = raw["shape"]
    if not isinstance(shape, list) or any(
        isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in shape
    ):
        raise CaseInvalid(
            f"'{where}.shape' must be a list of positive integers ([] for a scalar), "
            f"not {_kind(shape)}"
        )
    if math.prod(shape) > MAX_ELEMENTS:
        raise CaseInvalid(
            f"'{where}.shape' has {math.prod(shape)} elements (at most {MAX_ELEMENTS})"
        )
    low = _number(f"{where}.low", raw.get("low", -1.0), lenient)
    high = _number(f"{where}.high", raw.get("high", 1.0), lenient)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise CaseInvalid(f"'{where}': need finite low < high, not low={low:g}, high={high:g}")
    return InputSpec(name, dtype, shape=tuple(shape), low=low, high=high, requires_grad=grad)


def to_callable_case(
    raw: dict[str, Any],
    defaults: dict[str, Any],
    location: str,
    lenient: bool,
    *,
    allow_python: bool = False,
    paths: Sequence[str] = (),
) -> CallableCase:
    """Validate a case table with 'fn' and build a CallableCase; raise CaseInvalid."""
    for key in raw:
        if key not in FN_KEYS:
            if key in ("at", "points", "expect"):
                hint = " (it belongs to expression cases, not to 'fn' cases)"
            else:
                hint = suggest(str(key), FN_KEYS)
            raise CaseInvalid(f"unknown key '{key}'{hint}")
    fn = raw["fn"]
    if not isinstance(fn, str):
        raise CaseInvalid(f"'fn' must be a string like \"pkg.module:function\", not {_kind(fn)}")
    if not _TARGET.fullmatch(fn):
        raise CaseInvalid(f"'fn' must look like \"pkg.module:function\", not {fn!r}")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise CaseInvalid(f"'name' must be a string, not {_kind(name)}")
    settings = dict(defaults)
    for key in DEFAULT_KEYS:
        if key in raw:
            settings[key] = _check_setting(key, raw[key], lenient)
    dtype = settings.get("dtype", "float64")
    if "inputs" not in raw:
        raise CaseInvalid("missing key 'inputs' (a list of { shape = [...] } or { values = ... })")
    listed = raw["inputs"]
    if not isinstance(listed, list) or not listed:
        raise CaseInvalid(f"'inputs' must be a non-empty list of tables, not {_kind(listed)}")
    inputs = tuple(_input(spec, i, dtype, lenient) for i, spec in enumerate(listed))
    if not any(spec.requires_grad for spec in inputs):
        raise CaseInvalid("no input requires grad: there is no gradient to check")
    seed = _int("seed", raw.get("seed", 0))
    if seed < 0:
        raise CaseInvalid(f"'seed' must be >= 0, not {seed}")
    return CallableCase(
        fn=fn,
        inputs=inputs,
        name=name,
        seed=seed,
        fast=_bool("fast", raw.get("fast", False)),
        location=location,
        allow_python=allow_python,
        paths=tuple(paths),
        **settings,
    )


# ------------------------------------------------------------------------ the user's code


def _shown(path: str) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel


def user_frame(exc: BaseException) -> str | None:
    """'file.py:42' of the innermost traceback frame in the user's code, if any."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_shown(exc.filename)}:{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if not frame.filename or frame.filename.startswith("<"):
            continue
        path = str(Path(frame.filename).resolve())
        stdlib = path.startswith(_STDLIB) and not path.startswith(_INSTALLED)
        if not path.startswith(_OURS) and not stdlib:
            return f"{_shown(frame.filename)}:{frame.lineno}"
    return None


def describe_exception(exc: BaseException, doing: str) -> str:
    """'ValueError: bad (raised at ops.py:12 while ...)' in one line."""
    # A SyntaxError's str repeats "(file, line N)", which the location says better.
    raw = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    text = raw.strip().splitlines()[0] if raw.strip() else ""
    where = user_frame(exc)
    at = f" at {where}" if where else ""
    doing = f" {doing}" if doing else ""
    return f"{type(exc).__name__}{': ' + text if text else ''} (raised{at}{doing})"


def _add_paths(paths: Sequence[str]) -> None:
    """Put --path directories first on sys.path (once each); workers do this too."""
    for path in reversed([str(Path(p).resolve()) for p in paths]):
        if path not in sys.path:
            sys.path.insert(0, path)


def load_callable(target: str, paths: Sequence[str] = ()) -> Callable[..., Any]:
    """Import 'pkg.mod:attr.attr' (no eval); a Function subclass gives its `apply`."""
    if not _TARGET.fullmatch(target):
        raise UserCodeError(f"'fn' must look like \"pkg.module:function\", not {target!r}")
    module_name, _, attrs = target.partition(":")
    _add_paths(paths)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UserCodeError(
                f"cannot import {module_name!r}: no module named {exc.name!r} "
                "(add its directory with --path DIR)"
            ) from None
        raise UserCodeError(describe_exception(exc, f"importing {module_name}")) from None
    except Exception as exc:  # anything the user's module does at import time
        raise UserCodeError(describe_exception(exc, f"importing {module_name}")) from None
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UserCodeError(f"{module_name!r} has no attribute {attrs!r}") from None
        except Exception as exc:  # a property or module __getattr__ that raises
            raise UserCodeError(describe_exception(exc, f"looking up {attrs}")) from None
    from engine.autograd import Function

    if isinstance(obj, type) and issubclass(obj, Function):
        return obj.apply
    if not callable(obj):
        raise UserCodeError(f"{target} is {type(obj).__name__}, not a function")
    return obj


def make_inputs(specs: Sequence[InputSpec], seed: int) -> list[Any]:
    """Engine tensors for the specs; random ones drawn in order from one seeded generator."""
    import numpy as np

    import engine

    rng = np.random.default_rng(seed)
    tensors = []
    for spec in specs:
        if spec.values is not None:
            data = np.array(spec.values, dtype=np.float64)
        else:
            data = rng.uniform(spec.low, spec.high, size=spec.shape)
        dtype = engine.float64 if spec.dtype == "float64" else engine.float32
        tensors.append(engine.tensor(data, dtype=dtype, requires_grad=spec.requires_grad))
    return tensors


# ------------------------------------------------------------------------------ checking


def _smoke(fn: Callable[..., Any], inputs: Sequence[Any]) -> tuple[float | None, str | None]:
    """Run forward and one backward; (scalar value or None, error message or None).

    gradcheck turns an exception in a backward into "backward raised ..." and lets one in
    forward escape with our frames on top; run both once here so that the user hears the
    file and line of their own code. The inputs' framework (engine, torch, JAX) runs both.
    """
    import numpy as np

    from engine.autograd.frameworks import for_inputs

    fw = for_inputs(list(inputs))
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
    except Exception as exc:
        return value, describe_exception(exc, "in backward")
    return value, None


def _blame(fn: Callable[..., Any], inputs: Sequence[Any], seed: int, order: int = 1
           ) -> tuple[dict | None, str]:
    """(the culprit as JSON-able data, or None; one line for the report)."""
    from engine.autograd.blame import blame
    from engine.autograd.frameworks import for_inputs

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
    location: str = "",
    with_blame: bool = True,
) -> CallableResult:
    """gradcheck (and gradgradcheck for order 2) of fn at inputs, as a report row."""
    import numpy as np

    from engine.autograd import GradcheckError, gradcheck, gradgradcheck

    result = CallableResult(
        name=name,
        expr=target or getattr(fn, "__qualname__", repr(fn)),
        point={},
        status="error",
        gradient={"autograd": {}, "symbolic": {}, "numeric": {}},
        location=location,
        inputs=list(described),
        shapes=shapes,
    )
    if not described:
        specs = _tensor_specs(fn, inputs)
        result.inputs = [spec.describe() for spec in specs]
        result.shapes = " ".join(spec.brief() for spec in specs)
    tolerances = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
    result.atol, result.rtol = tolerances.get("atol", 1e-5), tolerances.get("rtol", 1e-3)
    # IEEE warnings from user code at perturbed points are the checker's business, not output.
    with np.errstate(all="ignore"):
        result.value, problem = _smoke(fn, inputs)
        if problem is not None:
            result.message = problem
            return result
        checks: list[tuple[str, Callable[..., Any], int]] = [("gradcheck", gradcheck, 1)]
        if order == 2:
            checks.append(("gradgradcheck", gradgradcheck, 2))
        for label, checker, blame_order in checks:
            try:
                checker(fn, tuple(inputs), fast_mode=fast_mode, seed=seed, **tolerances)
            except GradcheckError as exc:
                lines = str(exc).splitlines()
                result.status = "fail"
                result.notes = [
                    f"{label}: {line}" if i == 0 else line for i, line in enumerate(lines)
                ]
                summary = f"{label} failed: {lines[0].rstrip(',')}" if lines else label
                if with_blame:
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


def _param_names(fn: Callable[..., Any]) -> list[str]:
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


def _tensor_specs(fn: Callable[..., Any], inputs: Sequence[Any]) -> list[InputSpec]:
    """Describe given tensors as InputSpecs (for assert_gradcheck's table)."""
    import numpy as np

    from engine.autograd.frameworks import for_inputs

    fw = for_inputs(list(inputs))
    diff = set(fw.diff_indices(inputs))
    params = _param_names(fn)
    specs = []
    for i, x in enumerate(inputs):
        name = params[i] if i < len(params) else f"x{i}"
        if not fw.is_array(x):
            continue
        specs.append(
            InputSpec(
                name,
                str(fw.dtype_of(x)),
                values=np.zeros(tuple(x.shape)).tolist(),
                requires_grad=i in diff,
            )
        )
    return specs


def _named(case: CallableCase, fn: Callable[..., Any]) -> list[InputSpec]:
    """The input specs, named after fn's parameters where the case did not name them."""
    params = _param_names(fn)
    return [
        dataclasses.replace(spec, name=params[i])
        if spec.name == f"x{i}" and i < len(params)
        else spec
        for i, spec in enumerate(case.inputs)
    ]


def run_callable_case(case: CallableCase) -> list[CaseResult]:
    """Check one callable case: an error row (never an exception) when it cannot run."""
    name = case.name or case.fn
    prefix = f"{case.location}: " if case.location else ""
    if not case.allow_python:
        message = (
            f"{prefix}'fn' cases import and run Python code, which is off by default: "
            f"run with --allow-python (or {ALLOW_ENV}=1) to check {case.fn}"
        )
        return [_error_row(case, name, message)]
    try:
        fn = load_callable(case.fn, case.paths)
    except UserCodeError as exc:
        return [_error_row(case, name, f"{prefix}{exc}")]
    try:
        inputs = make_inputs(case.inputs, case.seed)
    except Exception as exc:  # noqa: BLE001 - the engine refusing a spec is a bad case
        return [_error_row(case, name, f"{prefix}cannot build the inputs: {exc}")]
    named = _named(case, fn)
    result = check_callable(
        fn,
        inputs,
        name=name,
        target=case.fn,
        atol=case.atol,
        rtol=case.rtol,
        order=case.order,
        fast_mode=case.fast,
        seed=case.seed,
        described=[spec.describe() for spec in named],
        shapes=" ".join(spec.brief() for spec in named),
        location=case.location,
    )
    result.dtype = case.dtype
    if result.message is not None and prefix:
        result.message = prefix + result.message
    return [result]


def _error_row(case: CallableCase, name: str, message: str) -> CallableResult:
    return CallableResult(
        name=name,
        expr=case.fn,
        point={},
        status="error",
        gradient={"autograd": {}, "symbolic": {}, "numeric": {}},
        message=message,
        location=case.location,
        dtype=case.dtype,
        inputs=[spec.describe() for spec in case.inputs],
        shapes=" ".join(spec.brief() for spec in case.inputs),
    )


def trace_case(case: CallableCase) -> Any:
    """The traced engine graph of a callable case (blamed node marked); UserCodeError if
    the code may not be imported, cannot be, or raises."""
    from gradcheck_cli.trace import trace_callable

    if not case.allow_python:
        raise UserCodeError(
            f"'fn' cases import and run Python code: add --allow-python (or {ALLOW_ENV}=1) "
            f"to trace {case.fn}"
        )
    fn = load_callable(case.fn, case.paths)
    inputs = make_inputs(case.inputs, case.seed)
    names = [spec.name for spec in _named(case, fn)]
    import numpy as np

    try:
        with np.errstate(all="ignore"):
            return trace_callable(fn, inputs, names, case.fn)
    except Exception as exc:  # the user's forward or backward raised
        raise UserCodeError(describe_exception(exc, "while tracing")) from None
