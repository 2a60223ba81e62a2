"""engine's own tensors: the reference adapter (PyTorch's names, so torch's is a subclass)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

# This module is loaded on first use (frameworks.for_name/for_inputs), when engine has
# finished initialising: engine's own adapter can import engine at module level.
import engine
from engine.autograd.frameworks import Adapter


class EngineAdapter(Adapter):
    """Tensors of a module with PyTorch's names: `tensor`, `requires_grad`, `autograd.grad`."""

    name = "engine"

    @property
    def lib(self) -> ModuleType:
        return engine

    def is_array(self, obj: Any) -> bool:
        return isinstance(obj, self.lib.Tensor)

    def to_numpy(self, obj: Any) -> np.ndarray:
        return np.asarray(obj.detach().numpy())

    def from_numpy(self, values: np.ndarray, requires_grad: bool = False) -> Any:
        lib = self.lib
        dtype = lib.float64 if values.dtype == np.float64 else lib.float32
        t = lib.tensor(values.astype(values.dtype.type, copy=True), dtype=dtype)
        return t.requires_grad_(True) if requires_grad else t

    def requires_grad(self, obj: Any) -> bool:
        return bool(obj.requires_grad)

    def call(self, func: Callable[..., Any], args: Sequence[Any]) -> tuple:
        lib = self.lib
        if lib.is_grad_enabled():  # the usual case: no context to enter (once per evaluation)
            return super().call(func, args)
        with lib.enable_grad():
            return super().call(func, args)

    def vjp(
        self, func: Callable[..., Any], args: tuple, diff: Sequence[int], outs: Sequence[Any],
        cotangents: Sequence[Any],
    ) -> list[Any]:
        return list(
            self.lib.autograd.grad(
                list(outs),
                [args[i] for i in diff],
                grad_outputs=list(cotangents),
                retain_graph=True,
                allow_unused=True,
            )
        )

    def first_derivative(
        self, func: Callable[..., Any], n_in: int, diff: Sequence[int]
    ) -> Callable[..., tuple]:
        lib = self.lib

        def gradients(*args: Any) -> tuple:
            ins, gos = args[:n_in], args[n_in:]
            outs = [o for o in self.call(func, ins) if self.is_floating(o) and o.requires_grad]
            with lib.enable_grad():
                grads = lib.autograd.grad(
                    outs, [ins[i] for i in diff], grad_outputs=list(gos), create_graph=True,
                    allow_unused=True,
                )
            return tuple(g for g in grads if g is not None)

        return gradients
