"""What the checker needs from an array library: one adapter per framework.

gradcheck's numeric side and verdict work on float64 NumPy arrays; everything that depends
on whose arrays the user passed (how to recognise them, convert them, run the function and
get vector-Jacobian products from its autograd) sits behind `Adapter`. One subclass per
framework: engine (`_engine.py`), PyTorch (`_torch.py`), JAX (`_jax.py`) and NumPy with a
hand-written derivative (`_numpy.py`). torch and jax are imported only when the inputs are
theirs: an input can only be a `torch.Tensor` if torch is already imported, so detection
looks in `sys.modules` and never imports anything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Adapter", "BackwardError", "for_inputs", "for_name", "missing_package"]

# framework name -> (module that defines the adapter, the pip extra that installs it)
_EXTRAS = {"torch": "gradcheck[torch]", "jax": "gradcheck[jax]"}


class BackwardError(Exception):
    """The analytic side is unusable (wrong shape, raised): the message says why."""


class Adapter:
    """The framework-specific half of a gradient check; subclasses fill in the methods."""

    name = "?"
    backward_name = "backward"  # what the user wrote: a backward, a grad function, a vjp
    error_type: type[RuntimeError] | None = None  # raised on failure; None: GradcheckError

    # ---- arrays -------------------------------------------------------------------------
    def is_array(self, obj: Any) -> bool:
        """An array of this framework (inputs and outputs that are not are constants)."""
        raise NotImplementedError

    def to_numpy(self, obj: Any) -> np.ndarray:
        """The values, as a NumPy array of the array's own dtype (no copy when possible)."""
        raise NotImplementedError

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        """A new array of this framework holding `values`, in `values`' dtype."""
        raise NotImplementedError

    def dtype_of(self, obj: Any) -> np.dtype:
        """The NumPy dtype of an array's values."""
        return self.to_numpy(obj).dtype

    def is_floating(self, obj: Any) -> bool:
        return self.is_array(obj) and np.issubdtype(self.dtype_of(obj), np.floating)

    def diff_indices(self, inputs: Sequence[Any]) -> list[int]:
        """The positions of the inputs whose gradients are checked."""
        return [i for i, t in enumerate(inputs) if self.is_array(t) and self.requires_grad(t)]

    def requires_grad(self, obj: Any) -> bool:
        """An array the analytic side differentiates (an input) or differentiates (an output)."""
        raise NotImplementedError

    # ---- evaluation ---------------------------------------------------------------------
    def call(self, func: Callable[..., Any], args: Sequence[Any]) -> tuple:
        """func(*args) as a tuple of outputs, with gradients tracked."""
        out = func(*args)
        return tuple(out) if isinstance(out, tuple | list) else (out,)

    def vjp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], outs: Sequence[Any],
        cotangents: Sequence[Any],
    ) -> list[Any]:
        """The gradients of sum(cotangent * out) with respect to args[i] for i in diff.

        outs are the outputs of call(func, args) that require grad, with one cotangent each
        (arrays of this framework). Entries are arrays of this framework or None (unused).
        """
        raise NotImplementedError

    def jvp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], tangents: Sequence[Any]
    ) -> list[Any] | None:
        """The directional derivatives of func's floating outputs along tangents (one per
        args[i], i in diff), or None where the framework has no forward mode for func (then
        the Jacobian is built from VJPs, one per output element)."""
        return None

    def first_derivative(
        self, func: Callable[..., Any], n_in: int, diff: Sequence[int]
    ) -> Callable[..., tuple]:
        """g(*inputs, *grad_outputs): func's input gradients, differentiable again."""
        raise NotImplementedError

    def own_check(self, name: str, args: tuple, kwargs: dict[str, Any]) -> bool:
        """The framework's own checker, for flags our checker does not judge (torch only)."""
        raise NotImplementedError(f"{self.name} has no checker of its own to run")

    def note(self, dtypes: Sequence[np.dtype]) -> str:
        """A line for failure messages: which precision was checked, when not obvious."""
        return ""


def _loaded(module: str) -> Any:
    return sys.modules.get(module)


def for_inputs(inputs: Sequence[Any]) -> Adapter:
    """The adapter for the arrays in `inputs`: engine, torch or jax (never imports them)."""
    from engine.autograd.frameworks._engine import EngineAdapter

    kinds = []
    engine = EngineAdapter()
    torch, jax = _loaded("torch"), _loaded("jax")
    for x in inputs:
        if engine.is_array(x):
            kind = "engine"
        elif torch is not None and isinstance(x, torch.Tensor):
            kind = "torch"
        elif jax is not None and isinstance(x, jax.Array):
            kind = "jax"
        else:
            continue
        if kind not in kinds:
            kinds.append(kind)
    if len(kinds) > 1:
        raise TypeError(
            f"gradcheck: the inputs mix {' and '.join(kinds)} arrays; pass one framework's"
        )
    if not kinds:
        if any(isinstance(x, np.ndarray) for x in inputs):
            raise TypeError(
                "gradcheck: NumPy arrays have no autograd to check; pass the hand-written "
                "derivative to engine.autograd.numpy_gradcheck(fn, grad, inputs)"
            )
        return engine
    return for_name(kinds[0])


def missing_package(name: str) -> str | None:
    """None when framework `name` can be used, else what to install (one line)."""
    if name in ("engine", "numpy"):
        return None
    import importlib.util

    if importlib.util.find_spec(name) is None:
        return f"framework {name!r} needs the {name} package: pip install '{_EXTRAS[name]}'"
    return None


def for_name(name: str, **options: Any) -> Adapter:
    """The adapter for a framework by name: "engine", "torch", "jax" or "numpy"."""
    if name == "engine":
        from engine.autograd.frameworks._engine import EngineAdapter

        return EngineAdapter()
    if name == "torch":
        from engine.autograd.frameworks._torch import TorchAdapter

        return TorchAdapter()
    if name == "jax":
        from engine.autograd.frameworks._jax import JaxAdapter

        return JaxAdapter()
    if name == "numpy":
        from engine.autograd.frameworks._numpy import NumpyAdapter

        return NumpyAdapter(**options)
    raise ValueError(f"unknown framework {name!r} (engine, torch, jax or numpy)")
