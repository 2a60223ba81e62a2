"""Cases that name a Python callable (`fn = "pkg.mod:func"`): the user's own backward, checked.

A callable case's code is imported only behind an explicit gate (`--allow-python` or
GRADCHECK_ALLOW_PYTHON=1) and, in a batch, only inside a worker process of runner.py. How
a case's inputs are built and its callable checked or traced is one row of FRAMEWORKS per
framework; the engine's row runs `engine.testing.check_callable` (gradcheck, gradgradcheck
for order 2, blame on a failure). Every outcome is a row (pass, fail, or error with the
user's file:line), never an exception.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.autograd.frameworks import missing_package
from engine.testing import CallableCheck, check_callable, describe_exception, param_names
from gradcheck_cli.results import CallableResult, CaseResult, error_rows
from gradcheck_cli.schema import TARGET, CallableCase, InputSpec

__all__ = [
    "ALLOW_ENV",
    "FRAMEWORKS",
    "Framework",
    "UserCodeError",
    "load_callable",
    "run_callable_case",
    "trace_case",
]

ALLOW_ENV = "GRADCHECK_ALLOW_PYTHON"
# Frames in the command line's own files are not the user's either.
INTERNAL = (str(Path(__file__).resolve().parent) + os.sep,)


class UserCodeError(Exception):
    """The user's code could not be imported or raised; the message names file:line."""


def describe(exc: BaseException, doing: str) -> str:
    """One line for an exception of user code: type, message, the user's file:line."""
    return describe_exception(exc, doing, INTERNAL)


def _add_paths(paths: Sequence[str]) -> None:
    """Put --path directories first on sys.path (once each)."""
    for path in reversed([str(Path(p).resolve()) for p in paths]):
        if path not in sys.path:
            sys.path.insert(0, path)


def load_callable(target: str, paths: Sequence[str] = ()) -> Callable[..., Any]:
    """Import 'pkg.mod:attr.attr' (no eval); a Function subclass gives its `apply`."""
    if not TARGET.fullmatch(target):
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
        raise UserCodeError(describe(exc, f"importing {module_name}")) from None
    except Exception as exc:  # anything the user's module does at import time
        raise UserCodeError(describe(exc, f"importing {module_name}")) from None
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UserCodeError(f"{module_name!r} has no attribute {attrs!r}") from None
        except Exception as exc:  # a property or module __getattr__ that raises
            raise UserCodeError(describe(exc, f"looking up {attrs}")) from None
    from engine.autograd import Function

    if isinstance(obj, type) and issubclass(obj, Function):
        return obj.apply
    if not callable(obj):
        raise UserCodeError(f"{target} is {type(obj).__name__}, not a function")
    return obj


def named_inputs(case: CallableCase, fn: Callable[..., Any]) -> list[InputSpec]:
    """The input specs, named after fn's parameters where the case did not name them."""
    params = param_names(fn)
    return [
        dataclasses.replace(spec, name=params[i])
        if spec.name == f"x{i}" and i < len(params)
        else spec
        for i, spec in enumerate(case.inputs)
    ]


# ------------------------------------------------------------------- one row per framework


def input_values(specs: Sequence[InputSpec], seed: int) -> list[Any]:
    """The specs' values as NumPy arrays of their dtypes; random ones drawn in order from one
    seeded generator, so that every framework's case gets the same numbers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if spec.values is not None:
            data = np.array(spec.values, dtype=np.float64)
        else:
            data = rng.uniform(spec.low, spec.high, size=spec.shape)
        arrays.append(data.astype(spec.dtype))
    return arrays


def engine_inputs(specs: Sequence[InputSpec], seed: int) -> list[Any]:
    """Engine tensors for the specs."""
    import engine

    return [
        engine.tensor(data, dtype=engine.float64 if data.dtype == "float64" else engine.float32,
                      requires_grad=spec.requires_grad)
        for spec, data in zip(specs, input_values(specs, seed), strict=True)
    ]


def torch_inputs(specs: Sequence[InputSpec], seed: int) -> list[Any]:
    """torch.Tensors for the specs (the same numbers as engine_inputs)."""
    import torch

    return [
        torch.from_numpy(data).requires_grad_(spec.requires_grad)
        for spec, data in zip(specs, input_values(specs, seed), strict=True)
    ]


def jax_inputs(specs: Sequence[InputSpec], seed: int) -> list[Any]:
    """JAX arrays for the specs; float64 ones made under x64 (JAX has no requires_grad: an
    input with requires_grad = false is still differentiated by jax.vjp)."""
    import jax
    import jax.numpy as jnp

    arrays = []
    for data in input_values(specs, seed):
        with jax.enable_x64(data.dtype == "float64" or jax.config.jax_enable_x64):
            arrays.append(jnp.asarray(data))
    return arrays


def _engine_check(
    case: CallableCase, fn: Callable[..., Any], inputs: list[Any], specs: list[InputSpec],
    **numpy: Any,
) -> CallableCheck:
    """check_callable on the case (engine, torch and JAX code; numpy's row adds its grad)."""
    return check_callable(
        fn,
        inputs,
        name=case.name or case.fn,
        target=case.fn,
        atol=case.atol,
        rtol=case.rtol,
        order=case.order,
        fast_mode=case.fast,
        seed=case.seed,
        described=[spec.describe() for spec in specs],
        shapes=" ".join(spec.brief() for spec in specs),
        **numpy,
    )


def _numpy_check(
    case: CallableCase, fn: Callable[..., Any], inputs: list[Any], specs: list[InputSpec]
) -> CallableCheck:
    grad = load_callable(case.grad or "", case.paths)
    return _engine_check(case, fn, inputs, specs, grad=grad,
                         requires_grad=[spec.requires_grad for spec in case.inputs])


def _engine_trace(fn: Callable[..., Any], inputs: list[Any], names: list[str], target: str):
    from gradcheck_cli.trace import trace_callable

    return trace_callable(fn, inputs, names, target)


def _torch_trace(fn: Callable[..., Any], inputs: list[Any], names: list[str], target: str):
    from gradcheck_cli.trace import trace_torch

    return trace_torch(fn, inputs, names, target)


def _no_trace(framework: str) -> Callable[..., Any]:
    def refuse(fn: Callable[..., Any], inputs: list[Any], names: list[str], target: str):
        raise UserCodeError(f"trace draws engine and PyTorch graphs: {framework} cases are "
                            "checked, not traced")

    return refuse


@dataclass(frozen=True)
class Framework:
    """How the callable cases of one framework are run: inputs, check, trace."""

    name: str
    # (specs, seed) -> the positional inputs fn is called with
    make_inputs: Callable[[Sequence[InputSpec], int], list[Any]]
    # (case, fn, inputs, named specs) -> the verdict
    check: Callable[[CallableCase, Callable[..., Any], list[Any], list[InputSpec]], CallableCheck]
    # (fn, inputs, input names, target) -> a TraceGraph
    trace: Callable[[Callable[..., Any], list[Any], list[str], str], Any]


FRAMEWORKS: dict[str, Framework] = {
    "engine": Framework("engine", engine_inputs, _engine_check, _engine_trace),
    "torch": Framework("torch", torch_inputs, _engine_check, _torch_trace),
    "jax": Framework("jax", jax_inputs, _engine_check, _no_trace("JAX")),
    "numpy": Framework("numpy", input_values, _numpy_check, _no_trace("NumPy")),
}


# ------------------------------------------------------------------------------ running


def _gate(case: CallableCase, doing: str) -> None:
    if not case.allow_python:
        raise UserCodeError(
            f"'fn' cases import and run Python code, which is off by default: "
            f"run with --allow-python (or {ALLOW_ENV}=1) to {doing} {case.fn}"
        )


def _error_row(case: CallableCase, message: str) -> CaseResult:
    return error_rows(case, message)[0]


def run_callable_case(case: CallableCase) -> list[CaseResult]:
    """Check one callable case: an error row (never an exception) when it cannot run.

    This imports and runs the user's code in the calling process: the batch runner calls
    it only inside its worker processes.
    """
    framework = FRAMEWORKS[case.framework]
    missing = missing_package(case.framework)
    if missing is not None:
        return [_error_row(case, missing)]
    try:
        _gate(case, "check")
        fn = load_callable(case.fn, case.paths)
    except UserCodeError as exc:
        return [_error_row(case, str(exc))]
    try:
        inputs = framework.make_inputs(case.inputs, case.seed)
    except Exception as exc:  # the framework refusing a spec is a bad case
        return [_error_row(case, f"cannot build the inputs: {exc}")]
    try:
        check = framework.check(case, fn, inputs, named_inputs(case, fn))
    except UserCodeError as exc:  # the numpy row's grad could not be imported
        return [_error_row(case, str(exc))]
    message = check.message
    if message is not None and case.location:
        message = f"{case.location}: {message}"
    return [
        CallableResult(
            name=check.name,
            expr=case.fn,
            point={},
            status=check.status,
            value=check.value,
            gradient={"autograd": {}, "symbolic": {}, "numeric": {}},
            message=message,
            notes=check.notes,
            location=case.location,
            atol=check.atol,
            rtol=check.rtol,
            dtype=case.dtype,
            inputs=check.inputs,
            shapes=check.shapes,
            blame=check.blame,
            mismatch=check.mismatch,
        )
    ]


def trace_case(case: CallableCase) -> Any:
    """The traced graph of a callable case (blamed node marked); UserCodeError if the code
    may not be imported, cannot be, or raises. Runs user code: call it in a worker."""
    import numpy as np

    framework = FRAMEWORKS[case.framework]
    _gate(case, "trace")
    missing = missing_package(case.framework)
    if missing is not None:
        raise UserCodeError(missing)
    fn = load_callable(case.fn, case.paths)
    inputs = framework.make_inputs(case.inputs, case.seed)
    names = [spec.name for spec in named_inputs(case, fn)]
    try:
        with np.errstate(all="ignore"):
            return framework.trace(fn, inputs, names, case.fn)
    except Exception as exc:  # the user's forward or backward raised
        raise UserCodeError(describe(exc, "while tracing")) from None
