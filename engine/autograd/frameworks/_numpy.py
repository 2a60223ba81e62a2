"""NumPy: a function `fn` of arrays with a hand-written derivative `grad`.

`grad` is called with the same arguments as `fn`; for each input that requires grad it
returns the gradient (the input's shape) when fn's output is a scalar, else the Jacobian
(shape `output.shape + input.shape`); a tuple when several inputs require grad. The
checker's vector-Jacobian products are contractions of those blocks with the cotangent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.autograd.frameworks import Adapter, BackwardError


class NumpyAdapter(Adapter):
    """Plain arrays; the analytic side is the user's `grad`, called once per run."""

    name = "numpy"
    backward_name = "grad"

    def __init__(self, grad: Callable[..., Any], requires_grad: Sequence[bool] | None = None):
        self.grad = grad
        self.mask = None if requires_grad is None else [bool(r) for r in requires_grad]
        self._jacobians: dict[int, tuple[tuple, list[np.ndarray]]] = {}

    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def to_numpy(self, obj: Any) -> np.ndarray:
        return obj

    def dtype_of(self, obj: Any) -> np.dtype:
        return obj.dtype

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        return np.array(values, copy=True)

    def diff_indices(self, inputs: Sequence[Any]) -> list[int]:
        if self.mask is None:
            return [i for i, x in enumerate(inputs) if self.is_floating(x)]
        if len(self.mask) != len(inputs):
            raise ValueError(
                f"requires_grad has {len(self.mask)} entries for {len(inputs)} inputs"
            )
        for i, wanted in enumerate(self.mask):
            if wanted and not self.is_floating(inputs[i]):
                raise ValueError(f"input {i} requires grad but is not a floating NumPy array")
        return [i for i, wanted in enumerate(self.mask) if wanted]

    def requires_grad(self, obj: Any) -> bool:
        return self.is_floating(obj)

    def call(self, func: Callable[..., Any], args: Sequence[Any]) -> tuple:
        out = func(*args)
        if isinstance(out, tuple | list):
            raise TypeError(
                f"fn returned a {type(out).__name__}: a NumPy check takes one output array"
            )
        return (np.asarray(out),)

    def vjp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], outs: Sequence[Any],
        cotangents: Sequence[Any],
    ) -> list[Any]:
        entry = self._jacobians.get(id(args))
        if entry is None or entry[0] is not args:
            # Keyed by the inputs' identity, and holding them, so the key stays theirs.
            entry = self._jacobians[id(args)] = (args, self.jacobians(args, diff, outs[0].shape))
        (cot,) = cotangents
        return [np.tensordot(cot, block, axes=cot.ndim) for block in entry[1]]

    def jacobians(self, args: tuple, diff: Sequence[int], out_shape: tuple) -> list[np.ndarray]:
        """grad(*args), validated: one block of shape out_shape + input shape per input."""
        got = self.grad(*args)
        if not isinstance(got, tuple):  # a list is one array's values, as np.asarray reads it
            got = (got,)
        if len(got) != len(diff):
            raise BackwardError(
                f"grad returned {len(got)} array{'s' if len(got) != 1 else ''} for "
                f"{len(diff)} input{'s' if len(diff) != 1 else ''} that require grad "
                f"(inputs {list(diff)})"
            )
        blocks = []
        for i, g in zip(diff, got, strict=True):
            block = np.asarray(g)
            in_shape = np.shape(args[i])
            expected = tuple(out_shape) + tuple(in_shape)
            if block.dtype.kind not in "fiu":
                raise BackwardError(
                    f"grad's result for input {i} has dtype {block.dtype}, not a real number"
                )
            if block.shape != expected:
                if int(np.prod(out_shape, dtype=np.int64)) == 1 and block.shape == in_shape:
                    block = block.reshape(expected)  # a size-1 output: its gradient will do
                else:
                    what = "the gradient, as fn's output is a scalar" if not out_shape else (
                        "the Jacobian: output shape + input shape"
                    )
                    raise BackwardError(
                        f"grad's result for input {i} has shape {list(block.shape)}, expected "
                        f"{list(expected)} ({what})"
                    )
            blocks.append(block)
        return blocks
